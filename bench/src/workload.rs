//! The seeded workload shared by every target: which dossiers exist, which device follows which
//! dossier, the documents' starting bytes (identical for Regie, the JS server and raw Automerge)
//! and the edits a device makes. Edits look like a field worker's: new `record` entries, words
//! appended to an entry's text, and rewording of the plan's `hulpvraag`, all within the schema
//! (a plan holds at most 200 goals, so volume goes into text and record entries).

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, Value};
use regie_core::document::{self, PersonRecord, Shape};
use regie_core::id::{DocumentKey, DocumentKind, DossierId, PersonId};
use regie_sync_protocol::DocumentId;

use crate::rng::Rng;

/// The district of every benchmark dossier and worker.
pub const DISTRICT: &str = "noord";
/// The team of every benchmark dossier and worker.
pub const TEAM: &str = "t1";
/// The HS256 secret the benchmark server and the load generator share.
pub const SECRET: &str = "regie-bench-secret-long-enough-for-hs256";
/// The `iss` of benchmark tokens.
pub const ISSUER: &str = "regie-bench";
/// The `aud` of benchmark tokens.
pub const AUDIENCE: &str = "regie";

/// One document of a dossier.
#[derive(Debug, Clone)]
pub struct DocSpec {
    /// Its key in the dossier.
    pub key: DocumentKey,
    /// Its automerge-repo id (a v4 UUID derived from the seed).
    pub id: DocumentId,
}

/// One dossier: plan, record and meta, and the workers assigned to it.
#[derive(Debug, Clone)]
pub struct DossierSpec {
    /// Position in the layout.
    pub index: usize,
    /// The dossier id.
    pub id: DossierId,
    /// plan, record, meta.
    pub docs: Vec<DocSpec>,
    /// Users of the devices that follow it.
    pub assigned: Vec<String>,
}

/// One simulated device: a worker's tablet.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    /// Position in the layout.
    pub index: usize,
    /// Its user (`w<index>`), a worker of [`DISTRICT`] and [`TEAM`].
    pub user: String,
    /// The dossiers it follows (indices).
    pub dossiers: Vec<usize>,
    /// Its automerge actor.
    pub actor: ActorId,
}

/// Who follows what.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The seed everything derives from.
    pub seed: u64,
    /// The dossiers.
    pub dossiers: Vec<DossierSpec>,
    /// The devices.
    pub devices: Vec<DeviceSpec>,
}

fn uuid(rng: &mut Rng) -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rng.bytes16()).into_uuid()
}

impl Layout {
    /// `devices` devices over `dossiers` dossiers, each device following `per_device` of them
    /// in a ring: device `i` follows dossiers `i·K/N + j` for `j < per_device` (mod K). With
    /// N = K and two per device, every dossier has two devices, and neighbours overlap.
    pub fn ring(seed: u64, devices: usize, dossiers: usize, per_device: usize) -> Layout {
        let root = Rng::new(seed);
        let mut ids = root.fork(1);
        let mut dossier_specs: Vec<DossierSpec> = (0..dossiers)
            .map(|index| DossierSpec {
                index,
                id: DossierId(uuid(&mut ids)),
                docs: [DocumentKey::Plan, DocumentKey::Record, DocumentKey::Meta]
                    .into_iter()
                    .map(|key| DocSpec {
                        key,
                        id: DocumentId::from_uuid(uuid(&mut ids)),
                    })
                    .collect(),
                assigned: Vec::new(),
            })
            .collect();
        let mut actors = root.fork(2);
        let device_specs: Vec<DeviceSpec> = (0..devices)
            .map(|index| {
                let base = index * dossiers / devices.max(1);
                let mut follows: Vec<usize> = (0..per_device.min(dossiers))
                    .map(|j| (base + j) % dossiers.max(1))
                    .collect();
                follows.dedup();
                DeviceSpec {
                    index,
                    user: format!("w{index}"),
                    dossiers: follows,
                    actor: ActorId::from(actors.bytes16().as_slice()),
                }
            })
            .collect();
        for d in &device_specs {
            for &k in &d.dossiers {
                dossier_specs[k].assigned.push(d.user.clone());
            }
        }
        Layout {
            seed,
            dossiers: dossier_specs,
            devices: device_specs,
        }
    }

    /// The document of `dossier` with `key`.
    pub fn doc(&self, dossier: usize, key: &DocumentKey) -> DocumentId {
        self.dossiers[dossier]
            .docs
            .iter()
            .find(|d| &d.key == key)
            .map(|d| d.id)
            .expect("every dossier has plan, record and meta")
    }
}

/// The two persons of every benchmark household.
pub fn persons() -> Vec<PersonRecord> {
    ["p1", "p2"]
        .iter()
        .map(|p| PersonRecord {
            id: PersonId::new(*p).expect("valid id"),
            name: format!("Person {p}"),
            birth_date: None,
            gezag: Vec::new(),
        })
        .collect()
}

/// A document of `kind` holding every required root field, empty, as
/// [`regie_core::document::skeleton`] makes it, but with a fixed actor and time so that its
/// bytes (and change hash) are the same in every run.
pub fn skeleton(kind: DocumentKind, actor: &ActorId) -> Automerge {
    let mut doc = Automerge::new().with_actor(actor.clone());
    let mut tx = doc.transaction();
    for field in document::schema(kind).iter().filter(|f| f.required) {
        // Writing the empty value of a fresh document cannot fail.
        let _ = match field.shape {
            Shape::Map(_) => tx.put_object(ROOT, field.name, ObjType::Map).map(drop),
            Shape::List(..) => tx.put_object(ROOT, field.name, ObjType::List).map(drop),
            Shape::Text { .. } => tx.put_object(ROOT, field.name, ObjType::Text).map(drop),
            Shape::Bool => tx.put(ROOT, field.name, false),
            Shape::Int => tx.put(ROOT, field.name, 0),
            Shape::Enum(values) => tx.put(ROOT, field.name, values[0]),
            Shape::Date | Shape::Timestamp => tx.put(ROOT, field.name, ""),
        };
    }
    tx.commit_with(CommitOptions::default().with_time(0));
    doc
}

/// The starting bytes of a dossier's documents.
#[derive(Debug, Clone)]
pub struct DossierBytes {
    /// `plan`, saved.
    pub plan: Vec<u8>,
    /// `record`, saved.
    pub record: Vec<u8>,
    /// `meta`, saved.
    pub meta: Vec<u8>,
}

impl DossierBytes {
    /// The bytes for `key`.
    pub fn get(&self, key: &DocumentKey) -> &[u8] {
        match key {
            DocumentKey::Plan => &self.plan,
            DocumentKey::Record => &self.record,
            _ => &self.meta,
        }
    }
}

/// The starting documents of `dossier`: skeletons plus `history` seeded edits each in plan and
/// record, by two history actors (the dossier's earlier work).
pub fn dossier_bytes(layout: &Layout, dossier: usize, history: usize) -> DossierBytes {
    let root = Rng::new(layout.seed).fork(1_000_000 + dossier as u64);
    let skeleton_actor = ActorId::from([0xAAu8; 16].as_slice());
    let make = |kind: DocumentKind, stream: u64| {
        let mut doc = skeleton(kind, &skeleton_actor);
        let mut rng = root.fork(stream);
        let actors = [
            ActorId::from(rng.bytes16().as_slice()),
            ActorId::from(rng.bytes16().as_slice()),
        ];
        for i in 0..history {
            doc.set_actor(actors[i % 2].clone());
            edit(&mut doc, kind, &mut rng, &format!("h{dossier}-{i}"), 0);
        }
        doc.save()
    };
    let plan = make(DocumentKind::Plan, 1);
    let record = make(DocumentKind::Record, 2);
    let meta = meta_bytes(&layout.dossiers[dossier].assigned);
    DossierBytes { plan, record, meta }
}

/// A `meta` document for a benchmark household with these assigned users: what the server's
/// `new_meta` writes, on a skeleton of a fixed actor at time 0, so that the same users give the
/// same bytes in every process. A store seeded once and reused (scenario (e)'s template) then
/// holds the very `meta` its devices start from; with `new_meta`'s random actor the devices'
/// copies were other changes the read-only server never takes, and they waited for it forever.
pub fn meta_bytes(assigned: &[String]) -> Vec<u8> {
    let assigned: Vec<regie_core::id::UserId> = assigned
        .iter()
        .filter_map(|u| regie_core::id::UserId::new(u.as_str()).ok())
        .collect();
    let mut doc = skeleton(DocumentKind::Meta, &ActorId::from([0xAAu8; 16].as_slice()));
    let mut tx = doc.transaction();
    // Writing fresh objects into a fresh document cannot fail.
    let _ = document::write_meta(
        &mut tx,
        &regie_core::id::DistrictId::new(DISTRICT).expect("valid id"),
        &regie_core::id::TeamId::new(TEAM).expect("valid id"),
        &assigned,
        &persons(),
    );
    tx.commit_with(CommitOptions::default().with_time(0));
    doc.save()
}

const WORDS: &[&str] = &[
    "gesprek",
    "afspraak",
    "school",
    "huur",
    "budget",
    "overleg",
    "thuis",
    "werk",
    "buurt",
    "planning",
    "contact",
    "huisbezoek",
    "voortgang",
    "evaluatie",
    "doel",
    "netwerk",
    "ondersteuning",
    "week",
    "morgen",
    "samen",
    "rustig",
    "gezin",
    "taken",
    "vervolg",
];

fn phrase(rng: &mut Rng) -> String {
    let n = 3 + rng.below(6);
    (0..n)
        .map(|_| WORDS[rng.below(WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

fn object(doc: &impl ReadDoc, obj: &ObjId, key: &str, ty: ObjType) -> Option<ObjId> {
    match doc.get(obj, key).ok()?? {
        (Value::Object(t), id) if t == ty => Some(id),
        _ => None,
    }
}

/// Makes one seeded edit to a `plan` or `record` document and commits it with `time` (the
/// load generator puts the edit's wall-clock time, in µs since the run's epoch, there so that a
/// receiving device can tell the latency). Returns the new change's hash; `None` for other kinds.
pub fn edit(
    doc: &mut Automerge,
    kind: DocumentKind,
    rng: &mut Rng,
    label: &str,
    time: i64,
) -> Option<ChangeHash> {
    let text = phrase(rng);
    let mut tx = doc.transaction();
    let done = match kind {
        DocumentKind::Record => (|| {
            let entries = object(&tx, &ROOT, "entries", ObjType::List)?;
            let n = tx.length(&entries);
            let existing = (n > 0 && (n >= 9_000 || !rng.chance(0.35)))
                .then(|| tx.get(&entries, rng.below(n)).ok().flatten())
                .flatten()
                .and_then(|(_, entry)| object(&tx, &entry, "text", ObjType::Text));
            match existing {
                Some(t) if tx.length(&t) < 19_000 => {
                    let len = tx.length(&t);
                    tx.splice_text(&t, len, 0, &format!(" {text}")).ok()
                }
                _ => {
                    let e = tx.insert_object(&entries, n, ObjType::Map).ok()?;
                    tx.put(&e, "id", format!("e-{label}")).ok()?;
                    tx.put(&e, "kind", ["fact", "opinion"][rng.below(2)]).ok()?;
                    let category = ["analysis", "conversation", "work_note"][rng.below(3)];
                    tx.put(&e, "category", category).ok()?;
                    tx.put_object(&e, "subjects", ObjType::List).ok()?;
                    let t = tx.put_object(&e, "text", ObjType::Text).ok()?;
                    tx.splice_text(&t, 0, 0, &text).ok()
                }
            }
        })(),
        DocumentKind::Plan => (|| {
            if rng.chance(0.1) {
                let agreements = object(&tx, &ROOT, "agreements", ObjType::List)?;
                let n = tx.length(&agreements);
                if n < 400 {
                    let a = tx.insert_object(&agreements, n, ObjType::Map).ok()?;
                    tx.put(&a, "id", format!("a-{label}")).ok()?;
                    let t = tx.put_object(&a, "text", ObjType::Text).ok()?;
                    return tx.splice_text(&t, 0, 0, &text).ok();
                }
            }
            let h = object(&tx, &ROOT, "hulpvraag", ObjType::Text)?;
            let len = tx.length(&h);
            if len >= 1_500 {
                let at = rng.below(len - 100);
                tx.splice_text(&h, at, 100, "").ok()?;
            }
            let len = tx.length(&h);
            let at = rng.below(len + 1);
            tx.splice_text(&h, at, 0, &format!("{text} ")).ok()
        })(),
        _ => None,
    };
    if done.is_none() {
        tx.rollback();
        return None;
    }
    tx.commit_with(CommitOptions::default().with_time(time)).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use regie_core::principal::{Claims, Principal, Role};
    use regie_core::relationship::Relationships;

    #[test]
    fn a_meta_document_has_the_same_bytes_every_time_and_the_servers_content() {
        let assigned = vec!["w0".to_owned(), "w1".to_owned()];
        let bytes = meta_bytes(&assigned);
        assert_eq!(
            bytes,
            meta_bytes(&assigned),
            "the same bytes in every process"
        );
        let copy = Automerge::load(&bytes).unwrap();
        document::validate(DocumentKind::Meta, &copy).unwrap();
        assert_eq!(document::assigned(&copy), assigned);
        assert_eq!(document::persons(&copy), persons());
    }

    #[test]
    fn ring_layout_gives_each_dossier_two_devices() {
        let l = Layout::ring(1, 10, 10, 2);
        assert!(l.dossiers.iter().all(|d| d.assigned.len() == 2));
        assert_eq!(l.devices[3].dossiers, vec![3, 4]);
        let one = Layout::ring(1, 1, 40, 40);
        assert_eq!(one.devices[0].dossiers.len(), 40);
    }

    #[test]
    fn edits_stay_valid_and_pass_the_write_check() {
        let layout = Layout::ring(9, 2, 2, 2);
        let bytes = dossier_bytes(&layout, 0, 30);
        let who = Principal::from_claims(&Claims {
            sub: "w0".into(),
            role: Role::Worker,
            district: Some(DISTRICT.into()),
            team: Some(TEAM.into()),
            org: None,
            person: None,
            citywide: false,
        })
        .unwrap();
        let mut rel = Relationships::new(
            layout.dossiers[0].id,
            DISTRICT.parse().unwrap(),
            TEAM.parse().unwrap(),
        );
        rel.assigned = vec!["w0".parse().unwrap()];
        for (kind, key, saved) in [
            (DocumentKind::Plan, DocumentKey::Plan, &bytes.plan),
            (DocumentKind::Record, DocumentKey::Record, &bytes.record),
        ] {
            let server = Automerge::load(saved).unwrap();
            let mut doc = Automerge::load(saved)
                .unwrap()
                .with_actor(ActorId::random());
            let mut rng = Rng::new(3);
            for i in 0..40 {
                assert!(edit(&mut doc, kind, &mut rng, &format!("t{i}"), 1).is_some());
            }
            document::validate(kind, &doc).unwrap();
            let new = server.get_changes_added(&doc);
            assert_eq!(new.len(), 40);
            regie_core::validation::check_batch(
                &who,
                &key,
                &rel,
                time::OffsetDateTime::now_utc(),
                &doc,
                &new,
            )
            .unwrap();
        }
        assert_eq!(
            Automerge::load(&dossier_bytes(&layout, 0, 30).plan)
                .unwrap()
                .get_heads(),
            Automerge::load(&bytes.plan).unwrap().get_heads(),
            "the same seed gives the same bytes"
        );
    }
}
