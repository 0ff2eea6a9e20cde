//! The policy as tables: every cell of SPEC §2 for every role, the R1–R7 and R10 cases,
//! district isolation, grant expiry to the second, and a property test that nobody outside a
//! document's audience can read it.

use proptest::prelude::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::id::{DistrictId, DossierId, OrgId, PersonId, TeamId, UserId};
use crate::principal::{Claims, Principal, Role};
use crate::relationship::{Grant, Relationships};

const NOW: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

fn principal(
    user: &str,
    role: Role,
    district: &str,
    team: &str,
    org: &str,
    person: &str,
    citywide: bool,
) -> Principal {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Principal::from_claims(&Claims {
        sub: user.into(),
        role,
        district: opt(district),
        team: opt(team),
        org: opt(org),
        person: opt(person),
        citywide,
    })
    .unwrap()
}

/// The cast of the tables, by short name.
fn cast(name: &str) -> Principal {
    use Role::*;
    match name {
        "w1" => principal("w1", Worker, "noord", "t1", "", "", false),
        "w2" => principal("w2", Worker, "noord", "t1", "", "", false),
        "grantee" => principal("w3", Worker, "noord", "t1", "", "", false),
        "expired" => principal("w4", Worker, "noord", "t1", "", "", false),
        "colleague" => principal("w5", Worker, "noord", "t1", "", "", false),
        "otherteam" => principal("w6", Worker, "noord", "t2", "", "", false),
        "moved" => principal("w9", Worker, "zuid", "t1", "", "", false),
        "citywide" => principal("w7", Worker, "zuid", "tc", "", "", true),
        "cw_assigned" => principal("w8", Worker, "zuid", "tc", "", "", true),
        "res_p1" => principal("r1", Resident, "", "", "", "p1", false),
        "res_p2" => principal("r2", Resident, "", "", "", "p2", false),
        "res_other" => principal("r9", Resident, "", "", "", "p9", false),
        "bo" => principal("b1", Backoffice, "noord", "", "", "", false),
        "bo_zuid" => principal("b2", Backoffice, "zuid", "", "", "", false),
        "bo_city" => principal("b3", Backoffice, "", "", "", "", true),
        "ggd" => principal("pa1", Partner, "", "", "ggd", "", false),
        "reclass" => principal("pa2", Partner, "", "", "reclassering", "", false),
        "manager" => principal("m1", Manager, "noord", "t1", "", "", false),
        "fg" => principal("f1", PrivacyOfficer, "", "", "", "", false),
        "admin" => principal("a1", Admin, "", "", "", "", false),
        other => panic!("no cast member {other}"),
    }
}

fn dossier() -> Relationships {
    let id = |s: &str| UserId::new(s).unwrap();
    let mut rel = Relationships::new(
        DossierId(uuid::Uuid::nil()),
        DistrictId::new("noord").unwrap(),
        TeamId::new("t1").unwrap(),
    );
    // w9 was assigned while in district noord and has since moved to zuid (R3).
    rel.assigned = vec![id("w1"), id("w2"), id("w8"), id("w9")];
    rel.grants = vec![
        Grant {
            user: id("w3"),
            reason: "crisis call at night".into(),
            granted_at: NOW - Duration::hours(1),
            expires_at: NOW + Duration::hours(7),
        },
        Grant {
            user: id("w4"),
            reason: "earlier crisis".into(),
            granted_at: NOW - Duration::hours(9),
            expires_at: NOW - Duration::hours(1),
        },
    ];
    rel.linked_persons = vec![PersonId::new("p1").unwrap(), PersonId::new("p2").unwrap()];
    rel.partners = vec![OrgId::new("ggd").unwrap()];
    rel.applicants = vec![(1, PersonId::new("p1").unwrap())];
    rel
}

/// Sync mode per principal and document: `W` read-write, `R` read-only, `-` denied.
const SPEC_TABLE: &str = "
               plan  record  view/p1  view/p2  maatwerk/1  partner/ggd  partner/reclassering  meta
w1             W     W       -        -        W           W            W                     R
w2             W     W       -        -        W           W            W                     R
cw_assigned    W     W       -        -        W           W            W                     R
grantee        R     R       -        -        -           -            -                     R
expired        -     -       -        -        -           -            -                     -
colleague      -     -       -        -        -           -            -                     -
otherteam      -     -       -        -        -           -            -                     -
moved          -     -       -        -        -           -            -                     -
citywide       -     -       -        -        -           -            -                     -
res_p1         W     -       R        -        R           -            -                     -
res_p2         W     -       -        R        -           -            -                     -
res_other      -     -       -        -        -           -            -                     -
bo             -     -       -        -        W           -            -                     -
bo_city        -     -       -        -        W           -            -                     -
bo_zuid        -     -       -        -        -           -            -                     -
ggd            -     -       -        -        -           W            -                     -
reclass        -     -       -        -        -           -            -                     -
manager        -     -       -        -        -           -            -                     -
fg             -     -       -        -        -           -            -                     -
admin          -     -       -        -        -           -            -                     -
";

#[test]
fn every_cell_of_the_spec_table_holds_for_every_role() {
    let rel = dossier();
    let mut lines = SPEC_TABLE.lines().filter(|l| !l.trim().is_empty());
    let keys: Vec<DocumentKey> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|k| k.parse().unwrap())
        .collect();
    let mut failures = Vec::new();
    for line in lines {
        let mut cells = line.split_whitespace();
        let who = cast(cells.next().unwrap());
        for (key, want) in keys.iter().zip(cells) {
            let got = match decide(&who, Action::Sync(key), &rel, NOW) {
                Decision::Allow {
                    mode: Mode::Write, ..
                } => "W",
                Decision::Allow {
                    mode: Mode::Read, ..
                } => "R",
                Decision::Deny(_) => "-",
            };
            // Read must agree with Sync: anything synced is readable.
            assert_eq!(
                decide(&who, Action::Read(key), &rel, NOW).is_allowed(),
                got != "-"
            );
            if got != want {
                failures.push(format!("{} on {key}: want {want}, got {got}", who.user));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn server_written_documents_are_written_by_nobody() {
    let rel = dossier();
    for name in ["w1", "res_p1", "bo", "ggd", "grantee"] {
        for key in ["meta", "view/p1"] {
            let key: DocumentKey = key.parse().unwrap();
            assert_eq!(
                decide(&cast(name), Action::Write(&key), &rel, NOW),
                Decision::Deny(DenyReason::ServerWrittenDocument)
            );
        }
    }
}

/// `(who, document, path, allowed)` for path-level write rules.
const PATH_TABLE: &[(&str, &str, &str, bool)] = &[
    // R1: assigned workers write the whole plan and record.
    ("w1", "plan", "evaluations/0/date", true),
    ("w1", "plan", "goals/0/owner", true),
    ("w1", "record", "entries/3/text", true),
    // R8: the resident co-edits the plan, except the fields reserved to workers.
    ("res_p1", "plan", "hulpvraag", true),
    ("res_p1", "plan", "goals/2/title", true),
    ("res_p1", "plan", "goals/2/actions/1/done", true),
    ("res_p1", "plan", "agreements/0/text", true),
    ("res_p1", "plan", "goals/2/owner", false),
    ("res_p1", "plan", "goals/2/actions/1/owner", false),
    ("res_p1", "plan", "evaluations", false),
    ("res_p1", "plan", "evaluations/0/summary", false),
    ("res_p1", "record", "statements/0/text", false),
    ("res_p1", "maatwerk/1", "decision/outcome", false),
    // R6: back office writes only the decision of a maatwerk extract.
    ("bo", "maatwerk/1", "decision/outcome", true),
    ("bo", "maatwerk/1", "request/assessed_need", false),
    ("w1", "maatwerk/1", "request/assessed_need", true),
    ("w1", "maatwerk/1", "decision/outcome", false),
    // R5: a partner writes only its status; workers write the assignment.
    ("ggd", "partner/ggd", "status/updates/0/state", true),
    (
        "ggd",
        "partner/ggd",
        "assignment/actions/0/description",
        false,
    ),
    (
        "w1",
        "partner/ggd",
        "assignment/actions/0/description",
        true,
    ),
    ("w1", "partner/ggd", "status/updates/0/state", false),
    // R2: an emergency grant reads, never writes.
    ("grantee", "plan", "hulpvraag", false),
    ("grantee", "record", "entries/0/text", false),
];

#[test]
fn path_rules_allow_exactly_the_write_column() {
    let rel = dossier();
    for &(name, key, path, want) in PATH_TABLE {
        let key: DocumentKey = key.parse().unwrap();
        let path = Path::parse(path);
        let got = decide(&cast(name), Action::WritePath(&key, &path), &rel, NOW);
        assert_eq!(
            got.is_allowed(),
            want,
            "{name} writing {key} at {path}: {got:?}"
        );
    }
}

#[test]
fn a_resident_writing_a_reserved_plan_field_is_told_the_path_is_reserved() {
    let key = DocumentKey::Plan;
    let path = Path::parse("goals/0/owner");
    assert_eq!(
        decide(
            &cast("res_p1"),
            Action::WritePath(&key, &path),
            &dossier(),
            NOW
        ),
        Decision::Deny(DenyReason::PathReserved)
    );
}

#[test]
fn the_basis_of_each_access_is_the_relationship_that_grants_it() {
    let rel = dossier();
    let basis = |name: &str, key: &str| match decide(
        &cast(name),
        Action::Sync(&key.parse().unwrap()),
        &rel,
        NOW,
    ) {
        Decision::Allow { basis, .. } => Some(basis),
        Decision::Deny(_) => None,
    };
    assert_eq!(basis("w1", "record"), Some(Basis::Assignment));
    assert_eq!(basis("grantee", "record"), Some(Basis::BreakGlass));
    assert_eq!(basis("res_p1", "plan"), Some(Basis::ResidentLink));
    assert_eq!(basis("bo", "maatwerk/1"), Some(Basis::Backoffice));
    assert_eq!(basis("ggd", "partner/ggd"), Some(Basis::PartnerInvolvement));
}

#[test]
fn r3_district_isolation_denies_with_its_own_reason_even_when_assigned() {
    let rel = dossier();
    assert_eq!(
        decide(&cast("moved"), Action::Read(&DocumentKey::Plan), &rel, NOW),
        Decision::Deny(DenyReason::OtherDistrict)
    );
    assert_eq!(
        decide(
            &cast("bo_zuid"),
            Action::Read(&DocumentKey::Maatwerk(1)),
            &rel,
            NOW
        ),
        Decision::Deny(DenyReason::OtherDistrict)
    );
    assert!(
        decide(
            &cast("cw_assigned"),
            Action::Read(&DocumentKey::Record),
            &rel,
            NOW
        )
        .is_allowed()
    );
}

#[test]
fn roles_without_dossier_access_are_denied_everything() {
    let rel = dossier();
    for name in ["manager", "fg", "admin"] {
        for action in [
            Action::Read(&DocumentKey::Plan),
            Action::Export,
            Action::BreakGlass {
                reason: Some("curious"),
            },
        ] {
            assert_eq!(
                decide(&cast(name), action, &rel, NOW),
                Decision::Deny(DenyReason::RoleHasNoDossierAccess)
            );
        }
    }
}

#[test]
fn a_grant_holds_until_the_second_before_it_expires_and_not_at_that_second() {
    let mut rel = dossier();
    let expires = NOW + Duration::hours(8);
    rel.grants = vec![Grant {
        user: UserId::new("w5").unwrap(),
        reason: "r".into(),
        granted_at: NOW,
        expires_at: expires,
    }];
    let colleague = cast("colleague");
    let read = |t| decide(&colleague, Action::Read(&DocumentKey::Record), &rel, t);
    assert!(
        !read(NOW - Duration::seconds(1)).is_allowed(),
        "not before it starts"
    );
    assert!(read(NOW).is_allowed());
    assert!(read(expires - Duration::seconds(1)).is_allowed());
    assert_eq!(read(expires), Decision::Deny(DenyReason::GrantExpired));
}

#[test]
fn r2_breaking_the_glass_needs_a_team_colleague_and_a_reason() {
    let rel = dossier();
    let bg = |name: &str, reason| {
        decide(
            &cast(name),
            Action::BreakGlass {
                reason: Some(reason),
            },
            &rel,
            NOW,
        )
    };
    assert_eq!(
        bg("colleague", "   "),
        Decision::Deny(DenyReason::ReasonRequired)
    );
    assert_eq!(
        bg(
            "colleague",
            "client in crisis, assigned workers unreachable"
        ),
        Decision::Allow {
            basis: Basis::TeamMembership,
            mode: Mode::Read
        }
    );
    assert_eq!(
        bg("otherteam", "reason"),
        Decision::Deny(DenyReason::NotTeamColleague)
    );
    assert_eq!(
        bg("moved", "reason"),
        Decision::Deny(DenyReason::OtherDistrict)
    );
    assert!(
        bg("citywide", "reason").is_allowed(),
        "citywide workers cross districts and teams"
    );
    assert_eq!(
        bg("w1", "reason"),
        Decision::Deny(DenyReason::AlreadyHasAccess)
    );
    assert_eq!(
        bg("grantee", "reason"),
        Decision::Deny(DenyReason::AlreadyHasAccess)
    );
    assert!(
        bg("expired", "again").is_allowed(),
        "an ended grant can be asked for anew"
    );
    assert_eq!(
        bg("res_p1", "reason"),
        Decision::Deny(DenyReason::NotTeamColleague)
    );
}

#[test]
fn r19_only_assigned_workers_and_linked_residents_may_export() {
    let rel = dossier();
    let allowed: Vec<&str> = [
        "w1",
        "grantee",
        "res_p1",
        "res_other",
        "bo",
        "ggd",
        "colleague",
    ]
    .into_iter()
    .filter(|n| decide(&cast(n), Action::Export, &rel, NOW).is_allowed())
    .collect();
    assert_eq!(allowed, ["w1", "res_p1"]);
}

#[test]
fn r10_the_access_review_lists_everyone_who_can_reach_the_dossier_and_why() {
    let lines = access_review(&dossier(), NOW);
    let show: Vec<String> = lines
        .iter()
        .map(|l| {
            format!(
                "{} {:?} {}",
                l.who,
                l.basis,
                l.documents
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect();
    assert_eq!(
        show,
        [
            "worker:w1 Assignment plan,record,maatwerk/*,partner/ggd,meta",
            "worker:w2 Assignment plan,record,maatwerk/*,partner/ggd,meta",
            "worker:w8 Assignment plan,record,maatwerk/*,partner/ggd,meta",
            "worker:w9 Assignment plan,record,maatwerk/*,partner/ggd,meta",
            "worker:w3 BreakGlass plan,record,meta",
            "person:p1 ResidentLink plan,view/p1,maatwerk/1",
            "person:p2 ResidentLink plan,view/p2",
            "backoffice:noord Backoffice maatwerk/*",
            "org:ggd PartnerInvolvement partner/ggd",
        ]
    );
}

// ---- property: nobody outside a document's audience reads it --------------------------------

/// The audience of SPEC §2 restated independently of the implementation.
fn in_audience(p: &Principal, key: &DocumentKey, rel: &Relationships, now: OffsetDateTime) -> bool {
    let district_ok = p.citywide || p.district.as_ref() == Some(&rel.district);
    let assigned = p.role == Role::Worker && district_ok && rel.assigned.contains(&p.user);
    let granted = p.role == Role::Worker
        && district_ok
        && rel
            .grants
            .iter()
            .any(|g| g.user == p.user && g.granted_at <= now && now < g.expires_at);
    let linked = p.role == Role::Resident
        && p.person
            .as_ref()
            .is_some_and(|x| rel.linked_persons.contains(x));
    match key {
        DocumentKey::Plan => assigned || granted || linked,
        DocumentKey::Record | DocumentKey::Meta => assigned || granted,
        DocumentKey::View(person) => linked && p.person.as_ref() == Some(person),
        DocumentKey::Maatwerk(n) => {
            let applicant = rel
                .applicants
                .iter()
                .any(|(m, a)| m == n && p.person.as_ref() == Some(a));
            assigned || (linked && applicant) || (p.role == Role::Backoffice && district_ok)
        }
        DocumentKey::Partner(org) => {
            assigned
                || (p.role == Role::Partner
                    && p.org.as_ref() == Some(org)
                    && rel.partners.contains(org))
        }
    }
}

fn small_id<T: std::str::FromStr + std::fmt::Debug>(
    prefix: &'static str,
) -> impl Strategy<Value = T>
where
    T::Err: std::fmt::Debug,
{
    (0..3u8).prop_map(move |i| format!("{prefix}{i}").parse().unwrap())
}

fn arb_principal() -> impl Strategy<Value = Principal> {
    (
        proptest::sample::select(Role::ALL.to_vec()),
        small_id::<UserId>("u"),
        proptest::option::of(small_id::<DistrictId>("d")),
        proptest::option::of(small_id::<TeamId>("t")),
        proptest::option::of(small_id::<OrgId>("o")),
        proptest::option::of(small_id::<PersonId>("p")),
        any::<bool>(),
    )
        .prop_map(
            |(role, user, district, team, org, person, citywide)| Principal {
                user,
                role,
                district,
                team,
                org,
                person,
                citywide,
            },
        )
}

fn arb_relationships() -> impl Strategy<Value = Relationships> {
    (
        small_id::<DistrictId>("d"),
        small_id::<TeamId>("t"),
        proptest::collection::vec(small_id::<UserId>("u"), 0..3),
        proptest::collection::vec((small_id::<UserId>("u"), -10i64..10, 0i64..10), 0..3),
        proptest::collection::vec(small_id::<PersonId>("p"), 0..3),
        proptest::collection::vec(small_id::<OrgId>("o"), 0..3),
        proptest::collection::vec((0..3u32, small_id::<PersonId>("p")), 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(district, team, assigned, grants, linked_persons, partners, applicants, closed)| {
                Relationships {
                    dossier: DossierId(uuid::Uuid::nil()),
                    district,
                    team,
                    assigned,
                    grants: grants
                        .into_iter()
                        .map(|(user, start, len)| Grant {
                            user,
                            reason: "r".into(),
                            granted_at: NOW + Duration::hours(start),
                            expires_at: NOW + Duration::hours(start + len),
                        })
                        .collect(),
                    linked_persons,
                    partners,
                    applicants,
                    closed,
                    restricted: Vec::new(),
                    contributions: Vec::new(),
                }
            },
        )
}

fn arb_key() -> impl Strategy<Value = DocumentKey> {
    prop_oneof![
        Just(DocumentKey::Plan),
        Just(DocumentKey::Record),
        Just(DocumentKey::Meta),
        small_id::<PersonId>("p").prop_map(DocumentKey::View),
        (0..3u32).prop_map(DocumentKey::Maatwerk),
        small_id::<OrgId>("o").prop_map(DocumentKey::Partner),
    ]
}

proptest! {
    #[test]
    fn no_principal_outside_a_documents_audience_is_ever_allowed_to_read_it(
        p in arb_principal(), rel in arb_relationships(), key in arb_key(), minutes in -600i64..600,
    ) {
        let now = NOW + Duration::minutes(minutes);
        for action in [Action::Read(&key), Action::Sync(&key), Action::Write(&key)] {
            if decide(&p, action, &rel, now).is_allowed() {
                prop_assert!(in_audience(&p, &key, &rel, now), "{p:?} may {action:?} outside the audience");
            }
        }
        // Conversely the audience is never locked out of reading.
        prop_assert_eq!(decide(&p, Action::Read(&key), &rel, now).is_allowed(), in_audience(&p, &key, &rel, now));
    }
}

// ---- closing, withdrawing consent, maatwerk applicants ---------------------------------------

fn closing(moment: &str, argued: bool) -> crate::share::Triage {
    crate::share::Triage {
        id: "c1".into(),
        moment: moment.into(),
        recipient: None,
        items: Default::default(),
        argued,
        discussed_or_explained: true,
        superseded: false,
    }
}

#[test]
fn r18_an_assigned_worker_closes_only_on_a_complete_closing_or_handover_triage() {
    let rel = dossier();
    let close = |who: &str, t: Option<&crate::share::Triage>| {
        decide(&cast(who), Action::Close { triage: t }, &rel, NOW)
    };
    assert!(close("w1", Some(&closing("afsluiting", true))).is_allowed());
    assert!(close("w1", Some(&closing("overdracht", true))).is_allowed());
    assert_eq!(close("w1", None), Decision::Deny(DenyReason::TriageMissing));
    assert_eq!(
        close("w1", Some(&closing("plan", true))),
        Decision::Deny(DenyReason::TriageMissing)
    );
    assert_eq!(
        close("w1", Some(&closing("afsluiting", false))),
        Decision::Deny(DenyReason::TriageIncomplete)
    );
    for outsider in ["grantee", "colleague", "res_p1", "bo", "ggd"] {
        assert!(
            !close(outsider, Some(&closing("afsluiting", true))).is_allowed(),
            "{outsider}"
        );
    }
}

#[test]
fn r18_a_closed_dossier_is_still_read_by_its_audience_and_written_by_nobody() {
    let mut rel = dossier();
    rel.closed = true;
    let keys: Vec<DocumentKey> = ["plan", "record", "maatwerk/1", "partner/ggd"]
        .iter()
        .map(|k| k.parse().unwrap())
        .collect();
    for who in ["w1", "res_p1", "bo", "ggd"] {
        for key in &keys {
            let read = decide(&cast(who), Action::Read(key), &dossier(), NOW).is_allowed();
            assert_eq!(
                decide(&cast(who), Action::Read(key), &rel, NOW).is_allowed(),
                read
            );
            if let Decision::Allow { mode, .. } = decide(&cast(who), Action::Sync(key), &rel, NOW) {
                assert_eq!(mode, Mode::Read, "{who} syncs {key} read-only");
                assert_eq!(
                    decide(&cast(who), Action::Write(key), &rel, NOW),
                    Decision::Deny(DenyReason::DossierClosed)
                );
            }
        }
    }
    assert_eq!(
        decide(
            &cast("w1"),
            Action::Close {
                triage: Some(&closing("afsluiting", true))
            },
            &rel,
            NOW
        ),
        Decision::Deny(DenyReason::DossierClosed)
    );
}

#[test]
fn r16_consent_is_withdrawn_by_an_assigned_worker_or_by_whoever_gave_it() {
    let rel = dossier();
    let p1 = [PersonId::new("p1").unwrap()];
    let withdraw = |who: &str| {
        decide(
            &cast(who),
            Action::WithdrawConsent { given_by: &p1 },
            &rel,
            NOW,
        )
    };
    assert!(withdraw("w1").is_allowed());
    assert!(withdraw("res_p1").is_allowed());
    for other in [
        "res_p2",
        "res_other",
        "grantee",
        "colleague",
        "bo",
        "ggd",
        "manager",
    ] {
        assert!(!withdraw(other).is_allowed(), "{other}");
    }
}

#[test]
fn r7_a_maatwerk_extract_reaches_its_applicant_and_no_other_household_member() {
    let rel = dossier();
    let m1 = DocumentKey::Maatwerk(1);
    let m2 = DocumentKey::Maatwerk(2);
    assert!(decide(&cast("res_p1"), Action::Read(&m1), &rel, NOW).is_allowed());
    assert!(!decide(&cast("res_p2"), Action::Read(&m1), &rel, NOW).is_allowed());
    assert!(
        !decide(&cast("res_p1"), Action::Read(&m2), &rel, NOW).is_allowed(),
        "no applicant, no resident"
    );
    assert!(decide(&cast("bo"), Action::Read(&m2), &rel, NOW).is_allowed());
}

#[test]
fn r11_a_worker_registers_signals_and_dossiers_only_for_their_own_team_and_district() {
    let rel = dossier();
    let team = Decision::Allow {
        basis: Basis::TeamMembership,
        mode: Mode::Write,
    };
    for what in [Registration::Signal, Registration::Dossier] {
        let register = |name: &str| decide(&cast(name), Action::Register(what), &rel, NOW);
        for name in ["w1", "colleague", "grantee"] {
            assert_eq!(register(name), team, "{name} is in the team");
        }
        assert_eq!(
            register("otherteam"),
            Decision::Deny(DenyReason::NotTeamMember)
        );
        assert_eq!(register("moved"), Decision::Deny(DenyReason::OtherDistrict));
        assert_eq!(
            register("citywide"),
            Decision::Deny(DenyReason::NotTeamMember),
            "citywide crosses districts, not teams"
        );
        for name in ["res_p1", "bo", "ggd"] {
            assert_eq!(
                register(name),
                Decision::Deny(DenyReason::NotTeamMember),
                "{name} registers nothing"
            );
        }
        for name in ["manager", "fg"] {
            assert_eq!(
                register(name),
                Decision::Deny(DenyReason::RoleHasNoDossierAccess)
            );
        }
    }
}

#[test]
fn a_citywide_worker_registers_for_their_own_team_in_any_district() {
    let rel = Relationships::new(
        DossierId(uuid::Uuid::nil()),
        DistrictId::new("noord").unwrap(),
        TeamId::new("tc").unwrap(),
    );
    assert!(
        decide(
            &cast("citywide"),
            Action::Register(Registration::Signal),
            &rel,
            NOW
        )
        .is_allowed()
    );
}

#[test]
fn a_functional_admin_registers_dossiers_for_any_team_but_never_handles_signals() {
    let rel = dossier();
    let admin = cast("admin");
    assert_eq!(
        decide(&admin, Action::Register(Registration::Dossier), &rel, NOW),
        Decision::Allow {
            basis: Basis::Administration,
            mode: Mode::Write
        }
    );
    assert_eq!(
        decide(&admin, Action::Register(Registration::Signal), &rel, NOW),
        Decision::Deny(DenyReason::RoleHasNoDossierAccess),
        "a signal's summary is content"
    );
    assert_eq!(
        decide(&admin, Action::Read(&DocumentKey::Meta), &rel, NOW),
        Decision::Deny(DenyReason::RoleHasNoDossierAccess),
        "registering a dossier opens nothing of it"
    );
}

/// Who may ask each oversight and administration question of the dossier `dossier()` (team
/// t1): `true` where the policy allows. SPEC §1 and I5: managers and admins manage assignments,
/// assigned workers and admins link residents, only assigned workers see tasks.
#[test]
fn oversight_and_administration_are_decided_by_the_policy_as_a_table() {
    let rel = dossier();
    let mut other_team = dossier();
    other_team.team = TeamId::new("t2").unwrap();
    let members = [
        "w1",
        "grantee",
        "colleague",
        "moved",
        "res_p1",
        "bo",
        "ggd",
        "manager",
        "fg",
        "admin",
    ];
    let table: [(&str, Action<'_>, &Relationships, [bool; 10]); 13] = [
        (
            "assign",
            Action::ManageAssignments,
            &rel,
            [
                false, false, false, false, false, false, false, true, false, true,
            ],
        ),
        (
            "assign, other team",
            Action::ManageAssignments,
            &other_team,
            [
                false, false, false, false, false, false, false, false, false, true,
            ],
        ),
        (
            "link",
            Action::ManageResidents,
            &rel,
            [
                true, false, false, false, false, false, false, false, false, true,
            ],
        ),
        (
            "tasks",
            Action::WorkOn,
            &rel,
            [
                true, false, false, false, false, false, false, false, false, false,
            ],
        ),
        (
            "statement",
            Action::AddStatement,
            &rel,
            [
                false, false, false, false, true, false, false, false, false, false,
            ],
        ),
        (
            "summary",
            Action::ReadReport(ReportTier::Summary),
            &rel,
            [
                false, false, false, false, false, false, false, true, true, false,
            ],
        ),
        (
            "summary, other team",
            Action::ReadReport(ReportTier::Summary),
            &other_team,
            [
                false, false, false, false, false, false, false, false, true, false,
            ],
        ),
        (
            "detail",
            Action::ReadReport(ReportTier::Detail),
            &rel,
            [
                false, false, false, false, false, false, false, false, true, false,
            ],
        ),
        (
            "review",
            Action::ReviewAccess,
            &rel,
            [
                false, false, false, false, false, false, false, true, true, false,
            ],
        ),
        (
            "review, other team",
            Action::ReviewAccess,
            &other_team,
            [
                false, false, false, false, false, false, false, false, true, false,
            ],
        ),
        (
            "record review",
            Action::RecordAccessReview,
            &rel,
            [
                false, false, false, false, false, false, false, true, false, false,
            ],
        ),
        (
            "registers",
            Action::ReadRegisters,
            &rel,
            [
                false, false, false, false, false, false, false, false, true, false,
            ],
        ),
        (
            "own access log",
            Action::ReadOwnAccessLog,
            &rel,
            [
                false, false, false, false, true, false, false, false, false, false,
            ],
        ),
    ];
    for (what, action, rel, expected) in table {
        for (member, allowed) in members.iter().zip(expected) {
            assert_eq!(
                decide(&cast(member), action, rel, NOW).is_allowed(),
                allowed,
                "{member} / {what}"
            );
        }
    }
}

#[test]
fn a_closed_dossier_keeps_its_tasks_visible_but_links_no_more_residents() {
    let mut rel = dossier();
    rel.closed = true;
    assert!(decide(&cast("w1"), Action::WorkOn, &rel, NOW).is_allowed());
    assert_eq!(
        decide(&cast("w1"), Action::ManageResidents, &rel, NOW),
        Decision::Deny(DenyReason::DossierClosed)
    );
}

#[test]
fn a_manager_is_told_why_a_report_is_refused() {
    let mut other_team = dossier();
    other_team.team = TeamId::new("t2").unwrap();
    let manager = cast("manager");
    assert_eq!(
        decide(
            &manager,
            Action::ReadReport(ReportTier::Summary),
            &other_team,
            NOW
        ),
        Decision::Deny(DenyReason::OtherTeam)
    );
    assert_eq!(
        decide(
            &manager,
            Action::ReadReport(ReportTier::Detail),
            &dossier(),
            NOW
        ),
        Decision::Deny(DenyReason::PrivacyOfficerOnly)
    );
}

/// One R19–R22 question as a row: who, for whom, the subject's age, and the expected answer
/// (`A` allowed, `-` not in audience / absent, `Y` too young, `S` subject acts alone).
#[test]
fn r16_ages_decide_who_invokes_a_right_for_whom() {
    let rel = dossier();
    let p = |s: &str| PersonId::new(s).unwrap();
    let (p1, p3) = (p("p1"), p("p3"));
    // p3 is a child with p1 (linked) holding authority; p2 is linked without authority.
    let gezag_p1 = [p1.clone()];
    type Row<'a> = (&'a str, &'a PersonId, Option<u32>, &'a [PersonId], &'a str);
    let rows: [Row<'_>; 16] = [
        ("res_p1", &p1, Some(40), &[], "A"),
        ("res_p1", &p1, None, &[], "A"),
        ("res_p1", &p1, Some(12), &gezag_p1, "A"),
        ("res_p1", &p1, Some(11), &[], "Y"),
        ("res_p1", &p3, Some(15), &gezag_p1, "A"),
        ("res_p1", &p3, Some(11), &gezag_p1, "A"),
        ("res_p1", &p3, Some(16), &gezag_p1, "S"),
        ("res_p1", &p3, None, &gezag_p1, "S"),
        ("res_p2", &p3, Some(10), &gezag_p1, "-"),
        ("res_p2", &p1, Some(40), &[], "-"),
        ("res_other", &p1, Some(40), &[], "-"),
        ("w1", &p3, Some(3), &gezag_p1, "A"),
        ("grantee", &p1, Some(40), &[], "-"),
        ("colleague", &p1, Some(40), &[], "-"),
        ("manager", &p1, Some(40), &[], "-"),
        ("fg", &p1, Some(40), &[], "-"),
    ];
    for (who, person, age, gezag, want) in rows {
        let subject = RightsSubject { person, age, gezag };
        let got = match decide(&cast(who), Action::ExerciseRight(subject), &rel, NOW) {
            Decision::Allow { .. } => "A",
            Decision::Deny(DenyReason::TooYoungToActAlone) => "Y",
            Decision::Deny(DenyReason::SubjectActsAlone) => "S",
            Decision::Deny(_) => "-",
        };
        assert_eq!(got, want, "{who} for {person} aged {age:?}");
    }
}

#[test]
fn rights_requests_are_handled_by_assigned_workers_and_escalations_by_manager_then_officer() {
    use crate::rights::EscalationLevel::{Manager, PrivacyOfficer};
    let mut rel = dossier();
    let allowed = |who: &str, action, rel: &Relationships| decide(&cast(who), action, rel, NOW);
    for who in ["w1", "w2"] {
        assert!(allowed(who, Action::HandleRightsRequest, &rel).is_allowed());
    }
    for who in [
        "grantee",
        "colleague",
        "res_p1",
        "manager",
        "fg",
        "admin",
        "bo",
    ] {
        assert!(
            !allowed(who, Action::HandleRightsRequest, &rel).is_allowed(),
            "{who}"
        );
    }
    assert!(allowed("manager", Action::DecideEscalation(Manager), &rel).is_allowed());
    assert_eq!(
        allowed("fg", Action::DecideEscalation(Manager), &rel),
        Decision::Deny(DenyReason::TeamManagerOnly)
    );
    assert!(allowed("fg", Action::DecideEscalation(PrivacyOfficer), &rel).is_allowed());
    for who in ["manager", "w1", "res_p1", "admin"] {
        assert_eq!(
            allowed(who, Action::DecideEscalation(PrivacyOfficer), &rel),
            Decision::Deny(DenyReason::PrivacyOfficerOnly),
            "{who}"
        );
    }
    for who in ["w1", "res_p1", "admin"] {
        assert!(!allowed(who, Action::DecideEscalation(Manager), &rel).is_allowed());
    }
    // Rights outlive the help: a closed dossier's requests are still decided.
    rel.closed = true;
    assert!(allowed("w1", Action::HandleRightsRequest, &rel).is_allowed());
    rel.team = TeamId::new("t2").unwrap();
    assert_eq!(
        allowed("manager", Action::DecideEscalation(Manager), &rel),
        Decision::Deny(DenyReason::OtherTeam)
    );
}

#[test]
fn the_privacy_officer_keeps_the_registers_and_managers_and_officer_read_the_council_report() {
    let rel = dossier();
    assert!(decide(&cast("fg"), Action::KeepRegisters, &rel, NOW).is_allowed());
    for who in ["manager", "admin", "w1", "res_p1", "bo", "ggd"] {
        assert_eq!(
            decide(&cast(who), Action::KeepRegisters, &rel, NOW),
            Decision::Deny(DenyReason::PrivacyOfficerOnly),
            "{who}"
        );
    }
    for who in ["fg", "manager"] {
        assert!(decide(&cast(who), Action::ReadCouncilReport, &rel, NOW).is_allowed());
    }
    for who in ["admin", "w1", "res_p1", "bo", "ggd"] {
        assert!(!decide(&cast(who), Action::ReadCouncilReport, &rel, NOW).is_allowed());
    }
}

#[test]
fn r21_nothing_about_a_restricted_person_is_shared_until_the_restriction_is_lifted() {
    use crate::share::{Ground, Recipient, ShareRequest, Triage};
    let mut rel = dossier();
    let p1 = PersonId::new("p1").unwrap();
    let items: std::collections::BTreeSet<String> = ["e1".to_owned()].into();
    let triage = Triage {
        id: "t1".into(),
        moment: "share".into(),
        recipient: Some("backoffice".into()),
        items: items.clone(),
        argued: true,
        discussed_or_explained: true,
        superseded: false,
    };
    let subjects = [p1.clone()];
    let ask = |rel: &Relationships| {
        decide(
            &cast("w1"),
            Action::Share(ShareRequest {
                recipient: &Recipient::Backoffice,
                items: &items,
                triage: Some(&triage),
                ground: Ground::Application,
                subjects: &subjects,
            }),
            rel,
            NOW,
        )
    };
    assert!(ask(&rel).is_allowed());
    rel.restricted = vec![p1.clone()];
    assert_eq!(ask(&rel), Decision::Deny(DenyReason::ProcessingRestricted));
    rel.restricted.clear();
    assert!(ask(&rel).is_allowed(), "lifted");
}

#[test]
fn r21_no_record_entry_is_written_about_a_restricted_person_and_others_as_before() {
    let mut rel = dossier();
    let p1 = PersonId::new("p1").unwrap();
    let p2 = PersonId::new("p2").unwrap();
    rel.restricted = vec![p1.clone()];
    let about = |who: &str, persons: &[PersonId], rel: &Relationships| {
        decide(&cast(who), Action::RecordAbout(persons), rel, NOW)
    };
    assert_eq!(
        about("w1", &[p2.clone(), p1.clone()], &rel),
        Decision::Deny(DenyReason::ProcessingRestricted)
    );
    assert!(about("w1", std::slice::from_ref(&p2), &rel).is_allowed());
    // Otherwise it is writing `record`: who may not write it still may not.
    assert_eq!(
        about("otherteam", std::slice::from_ref(&p2), &rel),
        decide(
            &cast("otherteam"),
            Action::Write(&DocumentKey::Record),
            &rel,
            NOW
        )
    );
    rel.restricted.clear();
    assert!(about("w1", &[p1], &rel).is_allowed(), "lifted");
}

#[test]
fn r15_a_contribution_goes_on_only_to_recipients_its_contributor_agreed_to() {
    use crate::relationship::Contribution;
    use crate::share::{Ground, Recipient, ShareRequest, Triage};
    let mut rel = dossier();
    let items: std::collections::BTreeSet<String> = ["e1".to_owned(), "e2".to_owned()].into();
    let triage = Triage {
        id: "t1".into(),
        moment: "share".into(),
        recipient: Some("backoffice".into()),
        items: items.clone(),
        argued: true,
        discussed_or_explained: true,
        superseded: false,
    };
    let subjects = [PersonId::new("p1").unwrap()];
    let ask = |who: &str, rel: &Relationships| {
        decide(
            &cast(who),
            Action::Share(ShareRequest {
                recipient: &Recipient::Backoffice,
                items: &items,
                triage: Some(&triage),
                ground: Ground::Application,
                subjects: &subjects,
            }),
            rel,
            NOW,
        )
    };
    assert!(
        ask("w1", &rel).is_allowed(),
        "nothing contributed: as before"
    );
    rel.contributions = vec![Contribution {
        entry: "e2".into(),
        contributor: "partner:ggd".into(),
        agreed: vec!["partner:veiligthuis".into()],
    }];
    assert_eq!(
        ask("w1", &rel),
        Decision::Deny(DenyReason::ContributorAgreementMissing),
        "an agreement for another recipient does not count"
    );
    rel.contributions[0].agreed.push("backoffice".into());
    assert!(ask("w1", &rel).is_allowed(), "agreed");
    // What a worker brought in themselves, they share on their own triage.
    rel.contributions[0] = Contribution {
        entry: "e2".into(),
        contributor: "w1".into(),
        agreed: Vec::new(),
    };
    assert!(ask("w1", &rel).is_allowed());
    assert_eq!(
        ask("w2", &rel),
        Decision::Deny(DenyReason::ContributorAgreementMissing)
    );
}

#[test]
fn r15_the_contributor_or_an_assigned_worker_records_the_agreement() {
    let rel = dossier();
    let agree = |who: &str, contributor: &str| {
        decide(&cast(who), Action::AgreeOnward { contributor }, &rel, NOW).is_allowed()
    };
    assert!(agree("ggd", "partner:ggd"), "the partner for itself");
    assert!(
        !agree("ggd", "partner:veiligthuis"),
        "not for another partner"
    );
    assert!(!agree("ggd", "w2"));
    assert!(
        agree("w1", "partner:ggd"),
        "an assigned worker, for the contributor"
    );
    for who in ["manager", "fg", "admin", "bo", "res_p1", "otherteam"] {
        assert!(!agree(who, "partner:ggd"), "{who}");
    }
}
