//! Batches checked on a fork: allowed edits pass, a forbidden operation anywhere rejects the
//! batch with its path and change, and schema violations reject too.

use automerge::{AutoCommit, Automerge, ObjType, ROOT, ReadDoc, transaction::Transactable};
use time::macros::datetime;

use super::*;
use crate::document::skeleton;
use crate::id::{DistrictId, DocumentKind, DossierId, OrgId, PersonId, TeamId, UserId};
use crate::principal::{Claims, Role};

const NOW: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

fn rel() -> Relationships {
    let mut r = Relationships::new(
        DossierId(uuid::Uuid::nil()),
        DistrictId::new("noord").unwrap(),
        TeamId::new("t1").unwrap(),
    );
    r.assigned = vec![UserId::new("w1").unwrap()];
    r.linked_persons = vec![PersonId::new("p1").unwrap()];
    r.partners = vec![OrgId::new("ggd").unwrap()];
    r
}

fn who(role: Role) -> Principal {
    let (sub, district, team, org, person) = match role {
        Role::Worker => ("w1", Some("noord"), Some("t1"), None, None),
        Role::Resident => ("r1", None, None, None, Some("p1")),
        Role::Backoffice => ("b1", Some("noord"), None, None, None),
        Role::Partner => ("pa1", None, None, Some("ggd"), None),
        _ => unreachable!(),
    };
    let s = |o: Option<&str>| o.map(str::to_owned);
    Principal::from_claims(&Claims {
        sub: sub.into(),
        role,
        district: s(district),
        team: s(team),
        org: s(org),
        person: s(person),
        citywide: false,
    })
    .unwrap()
}

/// The server's copy of a document and a client's fork of it that makes `edit`; returns the
/// server-side fork with the client's changes applied, and those changes.
fn batch(kind: DocumentKind, edit: impl FnOnce(&mut AutoCommit)) -> (Automerge, Vec<Change>) {
    let mut server = skeleton(kind);
    let base = server.get_heads();
    let mut client = server.fork();
    edit(&mut client);
    client.commit();
    let changes: Vec<Change> = client.get_changes(&base);
    let mut fork = server.document().clone();
    fork.apply_changes(changes.clone()).unwrap();
    let _ = server.commit();
    (fork, changes)
}

fn check(
    role: Role,
    key: &str,
    kind: DocumentKind,
    edit: impl FnOnce(&mut AutoCommit),
) -> Result<(), Rejection> {
    let (fork, changes) = batch(kind, edit);
    check_batch(
        &who(role),
        &key.parse().unwrap(),
        &rel(),
        NOW,
        &fork,
        &changes,
    )
    .map(|_| ())
}

fn add_goal(doc: &mut AutoCommit, owner: Option<&str>) {
    let goals = doc.get(ROOT, "goals").unwrap().unwrap().1;
    let g = doc.insert_object(&goals, 0, ObjType::Map).unwrap();
    doc.put(&g, "id", "g1").unwrap();
    doc.put(&g, "title", "Schulden op orde").unwrap();
    if let Some(o) = owner {
        doc.put(&g, "owner", o).unwrap();
    }
}

#[test]
fn a_resident_may_add_a_goal_without_an_owner() {
    assert_eq!(
        check(Role::Resident, "plan", DocumentKind::Plan, |d| add_goal(
            d, None
        )),
        Ok(())
    );
}

#[test]
fn a_resident_setting_a_goal_owner_is_rejected_at_that_path() {
    let err = check(Role::Resident, "plan", DocumentKind::Plan, |d| {
        add_goal(d, Some("worker"))
    })
    .unwrap_err();
    assert_eq!(
        (err.code, err.path.as_deref()),
        ("path_reserved", Some("goals/0/owner"))
    );
    assert!(err.change.is_some());
}

#[test]
fn a_worker_may_set_the_owner() {
    assert_eq!(
        check(Role::Worker, "plan", DocumentKind::Plan, |d| add_goal(
            d,
            Some("partner:ggd")
        )),
        Ok(())
    );
}

#[test]
fn one_forbidden_operation_among_allowed_ones_rejects_the_batch() {
    let err = check(Role::Resident, "plan", DocumentKind::Plan, |d| {
        let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
        d.splice_text(&h, 0, 0, "Ik wil weer werken").unwrap();
        d.commit();
        let ev = d.get(ROOT, "evaluations").unwrap().unwrap().1;
        let e = d.insert_object(&ev, 0, ObjType::Map).unwrap();
        d.put(&e, "id", "e1").unwrap();
        d.put(&e, "date", "2027-01-10").unwrap();
        d.commit();
        d.splice_text(&h, 0, 0, "Echt: ").unwrap();
    })
    .unwrap_err();
    assert_eq!(
        (err.code, err.path.as_deref()),
        ("path_reserved", Some("evaluations"))
    );
}

#[test]
fn back_office_writes_the_decision_but_not_the_request() {
    let decide = |d: &mut AutoCommit| {
        let dec = d.get(ROOT, "decision").unwrap().unwrap().1;
        d.put(&dec, "outcome", "granted").unwrap();
    };
    let request = |d: &mut AutoCommit| {
        let req = d.get(ROOT, "request").unwrap().unwrap().1;
        d.put(&req, "assessed_need", "more").unwrap();
    };
    assert_eq!(
        check(
            Role::Backoffice,
            "maatwerk/1",
            DocumentKind::Maatwerk,
            decide
        ),
        Ok(())
    );
    assert_eq!(
        check(
            Role::Backoffice,
            "maatwerk/1",
            DocumentKind::Maatwerk,
            request
        )
        .unwrap_err()
        .path
        .as_deref(),
        Some("request/assessed_need")
    );
}

#[test]
fn a_partner_writes_status_updates_only() {
    let status = |d: &mut AutoCommit| {
        let st = d.get(ROOT, "status").unwrap().unwrap().1;
        let ups = d.put_object(&st, "updates", ObjType::List).unwrap();
        let u = d.insert_object(&ups, 0, ObjType::Map).unwrap();
        d.put(&u, "action", "a1").unwrap();
        d.put(&u, "state", "accepted").unwrap();
    };
    assert_eq!(
        check(Role::Partner, "partner/ggd", DocumentKind::Partner, status),
        Ok(())
    );
    let contact = |d: &mut AutoCommit| {
        let a = d.get(ROOT, "assignment").unwrap().unwrap().1;
        d.put_object(&a, "contact", ObjType::Map).unwrap();
    };
    assert_eq!(
        check(Role::Partner, "partner/ggd", DocumentKind::Partner, contact)
            .unwrap_err()
            .code,
        "path_reserved"
    );
}

#[test]
fn a_resident_writing_the_record_is_rejected_before_any_path_is_looked_at() {
    let err = check(Role::Resident, "record", DocumentKind::Record, |d| {
        d.put(ROOT, "entries", "x").unwrap();
    })
    .unwrap_err();
    assert_eq!((err.code, err.path), ("not_in_audience", None));
}

#[test]
fn an_allowed_write_that_breaks_the_schema_is_rejected_as_schema() {
    let err = check(Role::Worker, "plan", DocumentKind::Plan, |d| {
        d.put(ROOT, "diagnosis", "confidential").unwrap();
    })
    .unwrap_err();
    assert_eq!(
        (err.code, err.path.as_deref()),
        ("schema", Some("diagnosis"))
    );
}

#[test]
fn an_empty_batch_is_accepted() {
    let mut doc = skeleton(DocumentKind::Plan);
    assert_eq!(
        check_batch(
            &who(Role::Resident),
            &DocumentKey::Plan,
            &rel(),
            NOW,
            &doc.document().clone(),
            &[]
        ),
        Ok(Default::default())
    );
}

// ---- property: the server document only holds operations their author was allowed -----------

mod property {
    use automerge::{ActorId, Automerge, ObjType, ROOT, ReadDoc, transaction::Transactable};
    use proptest::prelude::*;

    use super::*;

    /// One edit a role may try; many of them are forbidden for most roles.
    #[derive(Debug, Clone, Copy)]
    enum Edit {
        Hulpvraag,
        GoalWithoutOwner,
        GoalWithOwner,
        Evaluation,
        Request,
        Decision,
        Assignment,
        Status,
        UnknownRootKey,
    }

    const EDITS: [Edit; 9] = [
        Edit::Hulpvraag,
        Edit::GoalWithoutOwner,
        Edit::GoalWithOwner,
        Edit::Evaluation,
        Edit::Request,
        Edit::Decision,
        Edit::Assignment,
        Edit::Status,
        Edit::UnknownRootKey,
    ];
    const ROLES: [Role; 4] = [
        Role::Worker,
        Role::Resident,
        Role::Backoffice,
        Role::Partner,
    ];

    fn apply(
        doc: &mut Automerge,
        edit: Edit,
        step: usize,
    ) -> Result<(), automerge::AutomergeError> {
        let mut tx = doc.transaction();
        let child = |tx: &automerge::transaction::Transaction<'_>, key: &str| {
            tx.get(ROOT, key).ok().flatten().map(|(_, id)| id)
        };
        match edit {
            Edit::Hulpvraag => {
                if let Some(h) = child(&tx, "hulpvraag") {
                    tx.splice_text(&h, 0, 0, "x")?;
                }
            }
            Edit::GoalWithoutOwner | Edit::GoalWithOwner => {
                if let Some(goals) = child(&tx, "goals") {
                    let g = tx.insert_object(&goals, 0, ObjType::Map)?;
                    tx.put(&g, "id", format!("g{step}"))?;
                    tx.put(&g, "title", "doel")?;
                    if matches!(edit, Edit::GoalWithOwner) {
                        tx.put(&g, "owner", "worker")?;
                    }
                }
            }
            Edit::Evaluation => {
                if let Some(ev) = child(&tx, "evaluations") {
                    let e = tx.insert_object(&ev, 0, ObjType::Map)?;
                    tx.put(&e, "id", format!("e{step}"))?;
                    tx.put(&e, "date", "2027-01-01")?;
                }
            }
            Edit::Request => {
                if let Some(r) = child(&tx, "request") {
                    tx.put(&r, "assessed_need", format!("need {step}"))?;
                }
            }
            Edit::Decision => {
                if let Some(d) = child(&tx, "decision") {
                    tx.put(&d, "outcome", "granted")?;
                }
            }
            Edit::Assignment => {
                if let Some(a) = child(&tx, "assignment") {
                    let c = tx.put_object(&a, "contact", ObjType::Map)?;
                    tx.put(&c, "name", "Anna")?;
                }
            }
            Edit::Status => {
                if let Some(s) = child(&tx, "status") {
                    let u = tx.put_object(&s, "updates", ObjType::List)?;
                    let m = tx.insert_object(&u, 0, ObjType::Map)?;
                    tx.put(&m, "action", "a1")?;
                    tx.put(&m, "state", "accepted")?;
                }
            }
            Edit::UnknownRootKey => {
                tx.put(ROOT, "smuggled", "x")?;
            }
        }
        tx.commit();
        Ok(())
    }

    proptest! {
        #[test]
        fn the_server_document_only_ever_holds_operations_their_author_was_allowed_to_write(
            kind in prop_oneof![Just("plan"), Just("maatwerk/1"), Just("partner/ggd")],
            steps in proptest::collection::vec((0..ROLES.len(), 0..EDITS.len()), 1..25),
        ) {
            let key: DocumentKey = kind.parse().unwrap();
            let mut server = skeleton(key.kind()).document().clone();
            let skeleton_heads = server.get_heads();
            let mut author = std::collections::HashMap::new();
            for (step, (r, e)) in steps.into_iter().enumerate() {
                let role = ROLES[r];
                // Each role writes with its own actor, from the server's current state.
                let actor = ActorId::from(vec![r as u8 + 1; 16]);
                author.insert(actor.clone(), role);
                let mut replica = server.clone().with_actor(actor);
                let before = replica.get_heads();
                apply(&mut replica, EDITS[e], step).unwrap();
                let new = replica.get_changes(&before);
                if check_batch(&who(role), &key, &rel(), NOW, &replica, &new).is_ok() {
                    server.apply_changes(new).unwrap();
                }
            }
            for change in server.get_changes(&skeleton_heads) {
                let role = author[change.actor_id()];
                for op in change.decode().operations {
                    let path = crate::path::op_path(&server, &op.obj, &op.key).expect("ops of merged changes resolve");
                    prop_assert!(
                        decide(&who(role), Action::WritePath(&key, &path), &rel(), NOW).is_allowed(),
                        "{role:?} wrote {path} in {key}"
                    );
                }
            }
            prop_assert_eq!(crate::document::validate(key.kind(), &server), Ok(()));
        }
    }

    /// Plan edits of a worker (who may write every path), valid and schema-breaking, at the
    /// root, in a new goal and deep inside an existing one.
    const PLAN_EDITS: usize = 12;

    fn apply_plan(
        doc: &mut Automerge,
        edit: usize,
        step: usize,
    ) -> Result<(), automerge::AutomergeError> {
        let mut tx = doc.transaction();
        let goals = tx.get(ROOT, "goals")?.map(|(_, id)| id);
        let first = match &goals {
            Some(g) if tx.length(g) > 0 => tx.get(g, 0)?.map(|(_, id)| id),
            _ => None,
        };
        match (edit, goals, first) {
            (0, Some(g), _) => {
                let new = tx.insert_object(&g, 0, ObjType::Map)?;
                tx.put(&new, "id", format!("g{step}"))?;
                tx.put(&new, "title", "doel")?;
            }
            (1, Some(g), _) => {
                // A goal without its required title.
                let new = tx.insert_object(&g, 0, ObjType::Map)?;
                tx.put(&new, "id", format!("g{step}"))?;
            }
            (2, _, Some(goal)) => tx.put(&goal, "status", "achieved")?,
            (3, _, Some(goal)) => tx.put(&goal, "status", "bogus")?,
            (4, _, Some(goal)) => tx.delete(&goal, "title")?,
            (5, _, Some(goal)) => {
                let actions = match tx.get(&goal, "actions")? {
                    Some((_, a)) => a,
                    None => tx.put_object(&goal, "actions", ObjType::List)?,
                };
                let a = tx.insert_object(&actions, 0, ObjType::Map)?;
                tx.put(&a, "id", format!("a{step}"))?;
                tx.put(&a, "description", "bellen")?;
            }
            (6, _, Some(goal)) => {
                if let Some((_, actions)) = tx.get(&goal, "actions")?
                    && let Some((_, a)) = tx.get(&actions, 0)?
                {
                    tx.put(&a, "description", "x".repeat(501))?;
                }
            }
            (7, _, Some(goal)) => tx.put(&goal, "smuggled", true)?,
            (8, _, _) => tx.delete(ROOT, "agreements")?,
            (9, _, _) => tx.put(ROOT, "hulpvraag", 7)?,
            (10, _, _) => {
                if let Some((_, ev)) = tx.get(ROOT, "evaluations")? {
                    let e = tx.insert_object(&ev, 0, ObjType::Map)?;
                    tx.put(&e, "id", format!("e{step}"))?;
                    tx.put(
                        &e,
                        "date",
                        if step.is_multiple_of(2) {
                            "2027-01-01"
                        } else {
                            "morgen"
                        },
                    )?;
                }
            }
            (11, Some(g), _) => {
                // A scalar where a goal should be.
                tx.insert(&g, 0, "geen doel")?;
            }
            _ => {}
        }
        tx.commit();
        Ok(())
    }

    proptest! {
        #[test]
        fn checking_only_what_a_batch_touched_judges_the_schema_like_checking_everything(
            steps in proptest::collection::vec(0..PLAN_EDITS, 1..30),
        ) {
            let key = DocumentKey::Plan;
            let mut server = skeleton(key.kind()).document().clone();
            for (step, edit) in steps.into_iter().enumerate() {
                let mut replica = server.clone().with_actor(ActorId::from(vec![7; 16]));
                let before = replica.get_heads();
                apply_plan(&mut replica, edit, step).unwrap();
                let new = replica.get_changes(&before);
                let incremental = check_batch(&who(Role::Worker), &key, &rel(), NOW, &replica, &new);
                let full = crate::document::validate(key.kind(), &replica);
                prop_assert_eq!(incremental.is_ok(), full.is_ok(), "edit {} at step {}: {:?} vs {:?}", edit, step, incremental, full);
                if incremental.is_ok() {
                    server.apply_changes(new).unwrap();
                }
            }
        }
    }
}
