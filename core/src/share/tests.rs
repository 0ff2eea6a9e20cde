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
            Action::ApproveWeighing { decided_by: &anna },
            &rel(),
            datetime!(2026-11-22 10:00 UTC),
        )
        .is_allowed()
    };
    assert!(approve(&worker("bram", "t1")));
    assert!(!approve(&worker("anna", "t1")), "not your own weighing");
    assert!(!approve(&worker("otto", "t2")), "not another team");
}
