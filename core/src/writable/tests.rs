//! The write rules are the policy's answers, path by path: a resident's plan has exactly the
//! reserved paths closed, a back office writes only `decision/*` of a maatwerk extract, nobody
//! writes a server-written document, and a closed dossier closes everything.

use time::macros::datetime;

use super::*;
use crate::id::{DistrictId, DossierId, OrgId, PersonId, TeamId, UserId};
use crate::principal::{Claims, Role};

const NOW: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

fn who(role: Role, sub: &str, district: Option<&str>, person: Option<&str>) -> Principal {
    Principal::from_claims(&Claims {
        sub: sub.into(),
        role,
        district: district.map(Into::into),
        team: district.map(|_| "t1".into()),
        org: (role == Role::Partner).then(|| "ggd".into()),
        person: person.map(Into::into),
        citywide: false,
    })
    .unwrap()
}

fn dossier() -> Relationships {
    let mut rel = Relationships::new(
        DossierId(uuid::Uuid::nil()),
        DistrictId::new("noord").unwrap(),
        TeamId::new("t1").unwrap(),
    );
    rel.assigned = vec![UserId::new("w1").unwrap()];
    rel.linked_persons = vec![PersonId::new("p1").unwrap()];
    rel.partners = vec![OrgId::new("ggd").unwrap()];
    rel.applicants = vec![(1, PersonId::new("p1").unwrap())];
    rel
}

fn denied(rules: &WriteRules) -> Vec<&str> {
    rules
        .paths
        .iter()
        .filter(|r| !r.allowed)
        .map(|r| r.path.as_str())
        .collect()
}

#[test]
fn schema_paths_list_every_field_list_and_item() {
    let plan = schema_paths(DocumentKind::Plan);
    for p in [
        "hulpvraag",
        "goals",
        "goals/*",
        "goals/*/owner",
        "goals/*/actions/*/owner",
        "evaluations/*/summary",
    ] {
        assert!(plan.contains(&p.to_owned()), "{p} in {plan:?}");
    }
    let record = schema_paths(DocumentKind::Record);
    assert!(record.contains(&"entries/*/subjects/*".to_owned()));
}

#[test]
fn a_resident_may_write_the_plan_except_the_reserved_paths() {
    let rules = write_rules(
        &who(Role::Resident, "r1", None, Some("p1")),
        &DocumentKey::Plan,
        &dossier(),
        NOW,
    );
    assert!(rules.writable);
    let mut expected: Vec<&str> = vec!["goals/*/owner", "goals/*/actions/*/owner"];
    expected.extend(
        schema_paths(DocumentKind::Plan)
            .iter()
            .filter(|p| p.starts_with("evaluations"))
            .map(|p| match p.as_str() {
                "evaluations" => "evaluations",
                "evaluations/*" => "evaluations/*",
                "evaluations/*/id" => "evaluations/*/id",
                "evaluations/*/date" => "evaluations/*/date",
                "evaluations/*/summary" => "evaluations/*/summary",
                other => panic!("unexpected {other}"),
            }),
    );
    let mut got = denied(&rules);
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
    assert!(
        rules
            .paths
            .iter()
            .filter(|r| !r.allowed)
            .all(|r| r.reason == Some(DenyReason::PathReserved))
    );
}

#[test]
fn the_back_office_writes_only_the_decision_of_a_maatwerk_extract() {
    let rules = write_rules(
        &who(Role::Backoffice, "b1", Some("noord"), None),
        &DocumentKey::Maatwerk(1),
        &dossier(),
        NOW,
    );
    assert!(rules.writable);
    for r in &rules.paths {
        assert_eq!(r.allowed, r.path.starts_with("decision"), "{r:?}");
    }
}

#[test]
fn server_written_documents_and_closed_dossiers_are_written_by_nobody() {
    let worker = who(Role::Worker, "w1", Some("noord"), None);
    let meta = write_rules(&worker, &DocumentKey::Meta, &dossier(), NOW);
    assert_eq!(
        (meta.writable, meta.reason),
        (false, Some(DenyReason::ServerWrittenDocument))
    );
    assert!(meta.paths.iter().all(|r| !r.allowed));

    let mut closed = dossier();
    closed.closed = true;
    let plan = write_rules(&worker, &DocumentKey::Plan, &closed, NOW);
    assert_eq!(
        (plan.writable, plan.reason),
        (false, Some(DenyReason::DossierClosed))
    );
    assert!(plan.paths.iter().all(|r| !r.allowed));

    let open = write_rules(&worker, &DocumentKey::Plan, &dossier(), NOW);
    assert!(open.writable && open.paths.iter().all(|r| r.allowed));
}
