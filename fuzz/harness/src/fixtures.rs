//! The world the targets run against: one dossier (district, team, an assigned worker, a
//! linked resident, an involved partner, a maatwerk applicant), principals of several roles, a
//! fixed time, and real documents of Regie's schemas built from `regie_core` skeletons with
//! content a worker and a resident would write. Built once per process.

use std::sync::OnceLock;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Automerge, ObjType, ROOT, ReadDoc};
use regie_core::document;
use regie_core::id::{DistrictId, DocumentKey, DossierId, OrgId, PersonId, TeamId, UserId};
use regie_core::principal::{Principal, Role};
use regie_core::relationship::Relationships;
use time::OffsetDateTime;

/// The dossier's district, team, users and persons.
pub(crate) const DISTRICT: &str = "noord";
pub(crate) const TEAM: &str = "wijkteam-noord";
pub(crate) const WORKER: &str = "worker-1";
pub(crate) const RESIDENT: &str = "resident-1";
pub(crate) const PERSON: &str = "p-1";
pub(crate) const ORG: &str = "org-1";

/// A fixed `now`: 2026-01-01T00:00:00Z.
pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600).expect("a valid time")
}

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("a valid id")
}

/// The dossier everyone below is related to.
pub(crate) fn relationships() -> &'static Relationships {
    static REL: OnceLock<Relationships> = OnceLock::new();
    REL.get_or_init(|| {
        let mut rel = Relationships::new(
            DossierId(uuid_like()),
            id::<DistrictId>(DISTRICT),
            id::<TeamId>(TEAM),
        );
        rel.assigned.push(id::<UserId>(WORKER));
        rel.linked_persons.push(id::<PersonId>(PERSON));
        rel.partners.push(id::<OrgId>(ORG));
        rel.applicants.push((1, id::<PersonId>(PERSON)));
        rel
    })
}

fn uuid_like() -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
}

/// The principals whose batches the receive path checks: the assigned worker, the linked
/// resident, the involved partner and a citywide back-office user.
pub(crate) fn principals() -> &'static [Principal] {
    static PRINCIPALS: OnceLock<Vec<Principal>> = OnceLock::new();
    PRINCIPALS.get_or_init(|| {
        let base = |user: &str, role| Principal {
            user: id(user),
            role,
            district: None,
            team: None,
            org: None,
            person: None,
            citywide: false,
        };
        vec![
            Principal {
                district: Some(id(DISTRICT)),
                team: Some(id(TEAM)),
                ..base(WORKER, Role::Worker)
            },
            Principal {
                person: Some(id(PERSON)),
                ..base(RESIDENT, Role::Resident)
            },
            Principal {
                org: Some(id(ORG)),
                ..base("partner-1", Role::Partner)
            },
            Principal {
                citywide: true,
                ..base("backoffice-1", Role::Backoffice)
            },
        ]
    })
}

/// One document of the dossier: the server's copy and a device's copy of the same state.
pub(crate) struct Doc {
    /// Which document of the dossier.
    pub(crate) key: DocumentKey,
    /// The server's copy, forked for every incoming message.
    pub(crate) server: Automerge,
    /// A device that has synced it completely, with its own actor.
    pub(crate) device: AutoCommit,
}

/// The documents the receive path forks: a plan and a record with content, a maatwerk extract
/// and a partner document as the server creates them.
pub(crate) fn documents() -> &'static [Doc] {
    static DOCS: OnceLock<Vec<Doc>> = OnceLock::new();
    DOCS.get_or_init(|| {
        [
            (DocumentKey::Plan, plan()),
            (DocumentKey::Record, record()),
            (
                DocumentKey::Maatwerk(1),
                server_made(DocumentKey::Maatwerk(1)),
            ),
            (
                DocumentKey::Partner(id(ORG)),
                server_made(DocumentKey::Partner(id(ORG))),
            ),
        ]
        .into_iter()
        .map(|(key, server)| Doc {
            device: AutoCommit::load(&server.save())
                .expect("a saved document loads")
                .with_actor(ActorId::from([0x0d; 16])),
            key,
            server,
        })
        .collect()
    })
}

fn server_made(key: DocumentKey) -> Automerge {
    let mut doc = document::skeleton(key.kind()).with_actor(ActorId::from([0x5e; 16]));
    doc.document().clone()
}

/// A plan as a worker and a resident fill it in.
fn plan() -> Automerge {
    let mut doc =
        document::skeleton(DocumentKey::Plan.kind()).with_actor(ActorId::from([0x5e; 16]));
    let mut worker = doc.fork().with_actor(ActorId::from([0x01; 16]));
    let hulpvraag = worker
        .get(ROOT, "hulpvraag")
        .ok()
        .flatten()
        .map(|(_, id)| id)
        .expect("the skeleton has a hulpvraag");
    let _ = worker.splice_text(&hulpvraag, 0, 0, "Schulden en een huurachterstand");
    let goals = worker
        .get(ROOT, "goals")
        .ok()
        .flatten()
        .map(|(_, id)| id)
        .expect("the skeleton has goals");
    let goal = worker
        .insert_object(&goals, 0, ObjType::Map)
        .expect("a goal");
    let _ = worker.put(&goal, "id", "g-1");
    let _ = worker.put(&goal, "title", "Schulden in beeld");
    let _ = worker.put(&goal, "owner", "worker");
    let _ = worker.put(&goal, "status", "open");
    let actions = worker
        .put_object(&goal, "actions", ObjType::List)
        .expect("actions");
    let action = worker
        .insert_object(&actions, 0, ObjType::Map)
        .expect("an action");
    let _ = worker.put(&action, "id", "a-1");
    let _ = worker.put(&action, "description", "Post sorteren");
    let _ = worker.put(&action, "due", "2026-02-01");
    worker.commit();
    let mut resident = worker.fork().with_actor(ActorId::from([0x02; 16]));
    let agreements = resident
        .get(ROOT, "agreements")
        .ok()
        .flatten()
        .map(|(_, id)| id)
        .expect("the skeleton has agreements");
    let agreement = resident
        .insert_object(&agreements, 0, ObjType::Map)
        .expect("an agreement");
    let _ = resident.put(&agreement, "id", "ag-1");
    let _ = resident.put(&agreement, "text", "Elke week samen de post openen");
    resident.commit();
    doc.merge(&mut worker).expect("merge");
    doc.merge(&mut resident).expect("merge");
    let doc = doc.document().clone();
    document::validate(DocumentKey::Plan.kind(), &doc).expect("the plan is valid");
    doc
}

/// A record with one entry about the linked person.
fn record() -> Automerge {
    let mut doc =
        document::skeleton(DocumentKey::Record.kind()).with_actor(ActorId::from([0x5e; 16]));
    let mut worker: AutoCommit = doc.fork().with_actor(ActorId::from([0x01; 16]));
    let entries = worker
        .get(ROOT, "entries")
        .ok()
        .flatten()
        .map(|(_, id)| id)
        .expect("the skeleton has entries");
    let entry = worker
        .insert_object(&entries, 0, ObjType::Map)
        .expect("an entry");
    let _ = worker.put(&entry, "id", "e-1");
    let _ = worker.put(&entry, "kind", "fact");
    let _ = worker.put(&entry, "category", "conversation");
    let subjects = worker
        .put_object(&entry, "subjects", ObjType::List)
        .expect("subjects");
    let _ = worker.insert(&subjects, 0, PERSON);
    let text = worker
        .put_object(&entry, "text", ObjType::Text)
        .expect("text");
    let _ = worker.splice_text(&text, 0, 0, "Gesprek over de huurachterstand");
    worker.commit();
    doc.merge(&mut worker).expect("merge");
    let doc = doc.document().clone();
    document::validate(DocumentKey::Record.kind(), &doc).expect("the record is valid");
    doc
}
