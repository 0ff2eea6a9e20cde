//! Sharing by decision as a table: no triage, an incomplete one, one for another recipient or
//! fewer items, missing consent, an application outside the back office, and four eyes with
//! and without a second worker of the team.

use std::collections::BTreeSet;

use automerge::{ObjType, ROOT, ReadDoc, transaction::Transactable};
use time::macros::datetime;

use super::*;
use crate::consent::{Consenter, Gap, GapReason};
use crate::document::skeleton;
use crate::id::{DistrictId, DocumentKind, DossierId, TeamId, UserId};
use crate::policy::{Action, Decision, DenyReason, decide};
use crate::principal::{Claims, Role};
use crate::relationship::Relationships;

fn worker(sub: &str, team: &str) -> Principal {
    Principal::from_claims(&Claims {
        sub: sub.into(),
        role: Role::Worker,
        district: Some("noord".into()),
        team: Some(team.into()),
        org: None,
        person: None,
        citywide: false,
    })
    .unwrap()
}

fn rel() -> Relationships {
    let mut r = Relationships::new(
        DossierId(uuid::Uuid::nil()),
        DistrictId::new("noord").unwrap(),
        TeamId::new("t1").unwrap(),
    );
    r.assigned = vec![UserId::new("anna").unwrap()];
    r
}

fn record_with_triage(
    recipient: &str,
    items: &[&str],
    argued: bool,
    discussed: bool,
) -> automerge::AutoCommit {
    let mut d = skeleton(DocumentKind::Record);
    let list = d.get(ROOT, "triage").unwrap().unwrap().1;
    let t = d.insert_object(&list, 0, ObjType::Map).unwrap();
    d.put(&t, "id", "t1").unwrap();
    d.put(&t, "moment", "share").unwrap();
    d.put(&t, "recipient", recipient).unwrap();
    let l = d.put_object(&t, "items", ObjType::List).unwrap();
    for (i, item) in items.iter().enumerate() {
        d.insert(&l, i, *item).unwrap();
    }
    for k in ["purpose", "doelbinding", "proportionaliteit", "decision"] {
        d.put(&t, k, "onderbouwd").unwrap();
    }
    d.put(
        &t,
        "subsidiariteit",
        if argued { "geen lichter middel" } else { "" },
    )
    .unwrap();
    d.put(&t, "discussed_with_resident", discussed).unwrap();
    d.commit();
    d
}

fn items(i: &[&str]) -> BTreeSet<String> {
    i.iter().map(|s| s.to_string()).collect()
}

fn check(
    record: &automerge::AutoCommit,
    who: &Principal,
    recipient: Recipient,
    wanted: &[&str],
    ground: Ground<'_>,
) -> Decision {
    let t = triage(record, "t1");
    let wanted = items(wanted);
    let request = ShareRequest {
        recipient: &recipient,
        items: &wanted,
        triage: t.as_ref(),
        ground,
        subjects: &[],
    };
    decide(
        who,
        Action::Share(request),
        &rel(),
        datetime!(2026-11-22 10:00 UTC),
    )
}

fn ggd() -> Recipient {
    Recipient::Partner(OrgId::new("ggd").unwrap())
}

#[test]
fn a_share_follows_only_a_complete_triage_for_that_recipient_and_those_items() {
    let anna = worker("anna", "t1");
    let covered = [Coverage::Covered];
    let consent = Ground::Consent(&covered);
    let good = record_with_triage("partner:ggd", &["contact", "actie"], true, true);
    assert!(check(&good, &anna, ggd(), &["contact"], consent).is_allowed());
    assert_eq!(
        check(&good, &anna, ggd(), &["contact", "diagnose"], consent),
        Decision::Deny(DenyReason::TriageMissing)
    );
    assert_eq!(
        check(&good, &anna, Recipient::Backoffice, &["contact"], consent),
        Decision::Deny(DenyReason::TriageMissing)
    );
    assert_eq!(
        check(
            &skeleton(DocumentKind::Record),
            &anna,
            ggd(),
            &["contact"],
            consent
        ),
        Decision::Deny(DenyReason::TriageMissing)
    );
    let unargued = record_with_triage("partner:ggd", &["contact"], false, true);
    assert_eq!(
        check(&unargued, &anna, ggd(), &["contact"], consent),
        Decision::Deny(DenyReason::TriageIncomplete)
    );
    let undiscussed = record_with_triage("partner:ggd", &["contact"], true, false);
    assert_eq!(
        check(&undiscussed, &anna, ggd(), &["contact"], consent),
        Decision::Deny(DenyReason::TriageIncomplete)
    );
}

#[test]
fn grounds_consent_application_and_four_eyes() {
    let anna = worker("anna", "t1");
    let rec = record_with_triage("partner:ggd", &["contact"], true, true);
    let gap = Coverage::NotCovered {
        gaps: vec![Gap {
            consenter: Consenter::Subject(PersonId::new("p1").unwrap()),
            reason: GapReason::NoConsent,
        }],
    };
    assert_eq!(
        check(&rec, &anna, ggd(), &["contact"], Ground::Consent(&[gap])),
        Decision::Deny(DenyReason::ConsentMissing)
    );
    assert_eq!(
        check(&rec, &anna, ggd(), &["contact"], Ground::Consent(&[])),
        Decision::Deny(DenyReason::ConsentMissing)
    );
    assert_eq!(
        check(&rec, &anna, ggd(), &["contact"], Ground::Application),
        Decision::Deny(DenyReason::GroundNotApplicable)
    );
    let bo = record_with_triage("backoffice", &["hulpvraag"], true, true);
    assert!(
        check(
            &bo,
            &anna,
            Recipient::Backoffice,
            &["hulpvraag"],
            Ground::Application
        )
        .is_allowed()
    );

    let bram = worker("bram", "t1");
    let other_team = worker("otto", "t2");
    assert_eq!(
        check(&rec, &anna, ggd(), &["contact"], Ground::FourEyes(None)),
        Decision::Deny(DenyReason::SecondApprovalMissing)
    );
    assert_eq!(
        check(
            &rec,
            &anna,
            ggd(),
            &["contact"],
            Ground::FourEyes(Some(&anna))
        ),
        Decision::Deny(DenyReason::SecondApprovalMissing)
    );
    assert_eq!(
        check(
            &rec,
            &anna,
            ggd(),
            &["contact"],
            Ground::FourEyes(Some(&other_team))
        ),
        Decision::Deny(DenyReason::SecondApprovalMissing)
    );
    assert!(
        check(
            &rec,
            &anna,
            ggd(),
            &["contact"],
            Ground::FourEyes(Some(&bram))
        )
        .is_allowed()
    );
}

#[test]
fn only_an_assigned_worker_shares() {
    let rec = record_with_triage("partner:ggd", &["contact"], true, true);
    let covered = [Coverage::Covered];
    assert!(
        !check(
            &rec,
            &worker("carla", "t1"),
            ggd(),
            &["contact"],
            Ground::Consent(&covered)
        )
        .is_allowed()
    );
}

#[test]
fn consents_are_read_per_giver_from_the_record() {
    let mut d = skeleton(DocumentKind::Record);
    let list = d.get(ROOT, "consents").unwrap().unwrap().1;
    let c = d.insert_object(&list, 0, ObjType::Map).unwrap();
    d.put(&c, "id", "c1").unwrap();
    d.put(&c, "subject", "p-daan").unwrap();
    let by = d.put_object(&c, "given_by", ObjType::List).unwrap();
    d.insert(&by, 0, "p-daan").unwrap();
    d.insert(&by, 1, "p-sanne").unwrap();
    d.put(&c, "recipient", "ggd").unwrap();
    d.put(&c, "purpose", "jeugdgezondheidszorg").unwrap();
    let it = d.put_object(&c, "items", ObjType::List).unwrap();
    d.insert(&it, 0, "contact").unwrap();
    d.put(&c, "given_on", "2026-11-01").unwrap();
    d.put(&c, "withdrawn_on", "2026-11-20").unwrap();
    d.commit();
    let got = consents(&d);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].given_by.as_str(), "p-sanne");
    assert_eq!(
        got[0].withdrawn_on,
        Some(time::macros::date!(2026 - 11 - 20))
    );
    assert_eq!(d.length(&list), 1);
}

#[test]
fn a_weighing_is_approved_by_another_worker_of_the_team_only() {
    let anna = UserId::new("anna").unwrap();
    let approve = |who: &Principal| {
        decide(
            who,
            Action::ApproveWeighing {
                decided_by: Some(&anna),
            },
            &rel(),
            datetime!(2026-11-22 10:00 UTC),
        )
        .is_allowed()
    };
    assert!(approve(&worker("bram", "t1")));
    assert!(!approve(&worker("anna", "t1")), "not your own weighing");
    assert!(!approve(&worker("otto", "t2")), "not another team");
}

/// Appends a triage record of a dossier moment with `purpose` to `record`.
fn dossier_moment(record: &mut automerge::AutoCommit, id: &str, moment: &str, purpose: &str) {
    let list = record.get(ROOT, "triage").unwrap().unwrap().1;
    let at = record.length(&list);
    let t = record.insert_object(&list, at, ObjType::Map).unwrap();
    record.put(&t, "id", id).unwrap();
    record.put(&t, "moment", moment).unwrap();
    record.put(&t, "purpose", purpose).unwrap();
    record.commit();
}

#[test]
fn after_the_purpose_changes_an_earlier_triage_no_longer_carries_a_share() {
    let anna = worker("anna", "t1");
    let covered = [Coverage::Covered];
    let consent = Ground::Consent(&covered);
    let mut record = record_with_triage("partner:ggd", &["contact"], true, true);
    dossier_moment(
        &mut record,
        "a1",
        "aanmelding",
        "ondersteuning bij schulden",
    );
    dossier_moment(
        &mut record,
        "v1",
        "vraagverheldering",
        " Ondersteuning bij schulden",
    );
    assert!(
        check(&record, &anna, ggd(), &["contact"], consent).is_allowed(),
        "the same purpose, worded alike, is no change"
    );
    dossier_moment(&mut record, "p1", "plan", "veiligheid van de kinderen");
    assert!(triage(&record, "t1").unwrap().superseded);
    assert!(!triage(&record, "p1").unwrap().superseded);
    assert_eq!(
        check(&record, &anna, ggd(), &["contact"], consent),
        Decision::Deny(DenyReason::PurposeChanged)
    );
}

#[test]
fn a_share_records_own_purpose_does_not_change_the_dossiers_purpose() {
    let mut record = record_with_triage("partner:ggd", &["contact"], true, true);
    dossier_moment(
        &mut record,
        "a1",
        "aanmelding",
        "ondersteuning bij schulden",
    );
    dossier_moment(&mut record, "s2", "share", "iets heel anders");
    assert!(!triage(&record, "t1").unwrap().superseded);
}

fn person(id: &str, born: &str, gezag: &[&str]) -> PersonRecord {
    PersonRecord {
        id: PersonId::new(id).unwrap(),
        name: id.into(),
        birth_date: Some(born.into()),
        gezag: gezag.iter().map(|g| PersonId::new(*g).unwrap()).collect(),
    }
}

#[test]
fn consent_coverage_asks_the_persons_r16_names_for_the_subjects_age_on_the_day() {
    let persons = [
        person("p-mam", "1980-01-01", &[]),
        person("p-kind", "2014-11-22", &["p-mam"]),
    ];
    let given = |by: &str| RecordedConsent {
        given_by: PersonId::new(by).unwrap(),
        concerning: PersonId::new("p-kind").unwrap(),
        recipient: OrgId::new("ggd").unwrap(),
        purpose: "dat".into(),
        items: items(&["contact"]),
        given_on: time::macros::date!(2026 - 11 - 01),
        expires_on: None,
        withdrawn_on: None,
    };
    let share = |on| ProposedShare {
        recipient: OrgId::new("ggd").unwrap(),
        purpose: "dat".into(),
        items: items(&["contact"]),
        on,
    };
    let kind = [PersonId::new("p-kind").unwrap()];
    let covered = |recorded: &[RecordedConsent], on| {
        consent_coverages(&persons, recorded, &kind, &share(on)).unwrap()[0].is_covered()
    };
    let eve = time::macros::date!(2026 - 11 - 21);
    let birthday = time::macros::date!(2026 - 11 - 22);
    assert!(covered(&[given("p-mam")], eve), "11: the parent decides");
    assert!(!covered(&[given("p-mam")], birthday), "12: the child too");
    assert!(covered(&[given("p-mam"), given("p-kind")], birthday));
    assert_eq!(
        consent_coverages(
            &persons,
            &[],
            &[PersonId::new("p-vreemd").unwrap()],
            &share(eve)
        ),
        Err(CoverageError::UnknownSubject(
            PersonId::new("p-vreemd").unwrap()
        ))
    );
    let no_date = [PersonRecord {
        birth_date: None,
        ..persons[1].clone()
    }];
    assert_eq!(
        consent_coverages(&no_date, &[], &kind, &share(eve)),
        Err(CoverageError::BirthDateMissing(kind[0].clone()))
    );
}

#[test]
fn only_a_triage_record_of_the_share_moment_carries_a_share() {
    let anna = worker("anna", "t1");
    let covered = [Coverage::Covered];
    let mut record = record_with_triage("partner:ggd", &["contact"], true, true);
    let list = record.get(ROOT, "triage").unwrap().unwrap().1;
    let t = record.get(&list, 0).unwrap().unwrap().1;
    record.put(&t, "moment", "plan").unwrap();
    record.commit();
    assert_eq!(
        check(
            &record,
            &anna,
            ggd(),
            &["contact"],
            Ground::Consent(&covered)
        ),
        Decision::Deny(DenyReason::TriageMissing)
    );
}
