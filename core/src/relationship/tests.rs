//! A device's view of a dossier ([`Relationships::as_seen_by`]) makes the policy answer for its
//! own principal exactly as the server's full relationships do, for every document and action.

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::id::DocumentKey;
use crate::path::Path;
use crate::policy::{Action, Decision, decide};
use crate::principal::{Claims, Role};

const NOW: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

fn principal(
    sub: &str,
    role: Role,
    district: &str,
    team: &str,
    org: &str,
    person: &str,
) -> Principal {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Principal::from_claims(&Claims {
        sub: sub.into(),
        role,
        district: opt(district),
        team: opt(team),
        org: opt(org),
        person: opt(person),
        citywide: false,
    })
    .unwrap()
}

/// The server's whole picture of one dossier.
fn server_view() -> Relationships {
    let mut rel = Relationships::new(
        DossierId::new_random(),
        DistrictId::new("noord").unwrap(),
        TeamId::new("t1").unwrap(),
    );
    rel.assigned = vec![UserId::new("w1").unwrap(), UserId::new("w2").unwrap()];
    rel.grants.push(Grant {
        user: UserId::new("w3").unwrap(),
        reason: "crisis at night".into(),
        granted_at: NOW - Duration::hours(1),
        expires_at: NOW + Duration::hours(7),
    });
    rel.linked_persons = vec![PersonId::new("p1").unwrap(), PersonId::new("p2").unwrap()];
    rel.partners = vec![
        OrgId::new("ggd").unwrap(),
        OrgId::new("veilig-thuis").unwrap(),
    ];
    rel.applicants = vec![(1, PersonId::new("p1").unwrap())];
    rel
}

fn keys() -> Vec<DocumentKey> {
    [
        "plan",
        "record",
        "meta",
        "view/p1",
        "view/p2",
        "maatwerk/1",
        "maatwerk/2",
        "partner/ggd",
        "partner/veilig-thuis",
    ]
    .iter()
    .map(|k| k.parse().unwrap())
    .collect()
}

const PATHS: [&str; 9] = [
    "hulpvraag",
    "goals/0/title",
    "goals/0/owner",
    "goals/0/actions/2/owner",
    "evaluations",
    "entries",
    "request/requested",
    "decision/outcome",
    "status/updates",
];

/// Every question the policy answers about one document.
fn answers(who: &Principal, key: &DocumentKey, rel: &Relationships) -> Vec<Decision> {
    let paths: Vec<Path> = PATHS.iter().map(|p| Path::parse(p)).collect();
    let mut out = vec![
        decide(who, Action::Read(key), rel, NOW),
        decide(who, Action::Write(key), rel, NOW),
        decide(who, Action::Sync(key), rel, NOW),
        decide(who, Action::Export, rel, NOW),
        decide(
            who,
            Action::BreakGlass {
                reason: Some("emergency"),
            },
            rel,
            NOW,
        ),
    ];
    out.extend(
        paths
            .iter()
            .map(|p| decide(who, Action::WritePath(key, p), rel, NOW)),
    );
    out
}

#[test]
fn a_device_view_built_from_the_listed_basis_decides_like_the_server() {
    let server = server_view();
    let cast = [
        principal("w1", Role::Worker, "noord", "t1", "", ""),
        principal("w3", Role::Worker, "noord", "t1", "", ""),
        principal("r1", Role::Resident, "", "", "", "p1"),
        principal("b1", Role::Backoffice, "noord", "", "", ""),
        principal("pa1", Role::Partner, "", "", "ggd", ""),
    ];
    for who in &cast {
        // What `GET /api/v1/me/documents` tells this principal: the basis of each document it
        // may sync (one basis per dossier and principal).
        let listed: Vec<(DocumentKey, Basis)> = keys()
            .into_iter()
            .filter_map(|k| match decide(who, Action::Sync(&k), &server, NOW) {
                Decision::Allow { basis, .. } => Some((k, basis)),
                Decision::Deny(_) => None,
            })
            .collect();
        assert!(!listed.is_empty(), "{} syncs something", who.user);
        for (listed_key, basis) in &listed {
            let device = Relationships::as_seen_by(
                who,
                server.dossier,
                server.district.clone(),
                server.team.clone(),
                *basis,
                listed_key,
            );
            // A device knows a maatwerk's applicant only from holding that maatwerk.
            let comparable = keys().into_iter().filter(|k| {
                k == listed_key
                    || who.role != Role::Resident
                    || !matches!(k, DocumentKey::Maatwerk(_))
            });
            for key in comparable {
                assert_eq!(
                    answers(who, &key, &device),
                    answers(who, &key, &server),
                    "{} on {key} with the view built from {listed_key}",
                    who.user
                );
            }
        }
    }
}

#[test]
fn a_device_view_holds_nobody_but_the_device_user() {
    let who = principal("r1", Role::Resident, "", "", "", "p1");
    let rel = Relationships::as_seen_by(
        &who,
        DossierId::new_random(),
        DistrictId::new("noord").unwrap(),
        TeamId::new("t1").unwrap(),
        Basis::ResidentLink,
        &DocumentKey::Plan,
    );
    assert_eq!(rel.linked_persons, vec![PersonId::new("p1").unwrap()]);
    assert!(rel.assigned.is_empty() && rel.grants.is_empty() && rel.partners.is_empty());
    assert!(rel.applicants.is_empty());
}
