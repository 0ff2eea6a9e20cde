//! The hub: every document in memory that someone is syncing, the peers syncing each one, and
//! the rules for moving bytes between them. An incoming sync message is authorized through the
//! policy, applied to a fork, checked with [`check_batch`], made durable, and only then merged
//! and fanned out (I2, I4); every outgoing message is re-authorized at the moment it is sent
//! (I1). Relationship changes and expired grants turn into `revoked` messages.
//!
//! Locking: each document has its own async mutex (`DocSlot::inner`), held across the storage
//! commit of a batch so that heads are never announced before their changes are durable. The
//! dossier table and the LRU are short std locks that are never held across an await.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex as StdMutex, RwLock};

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, Change, ReadDoc};
use regie_core::id::{DocumentKey, DossierId, PersonId, UserId};
use regie_core::policy::{Action, Decision, Mode, decide};
use regie_core::principal::Principal;
use regie_core::relationship::Relationships;
use regie_core::validation::{Rejection, Touched, check_batch, touched_paths};
use regie_core::{document, projection};
use regie_sync_protocol::{DocumentId, LimitError, Message, PeerId, check_sync_message};
use time::OffsetDateTime;
use tokio::sync::{Mutex, OnceCell};

use crate::audit::{AuditAction, AuditEvent};
use crate::storage::{StorageError, Store};

mod connection;
mod feed;
mod limits;
mod relate;
mod replace;
mod retention;
mod sessions;
mod share;
mod views;
mod write;

pub use connection::{Outbox, SessionHandle, SessionId};
pub use limits::{Limits, MAX_EPHEMERAL_BYTES, TokenBucket};
pub use relate::{DocumentEdit, Relating};

/// Compact a document's appended changes into a snapshot after this many.
const COMPACT_AFTER: i64 = 500;
/// Tests only: a change with this commit message makes the write path panic mid-batch.
#[cfg(feature = "fault-injection")]
pub const FAULT_PANIC: &str = "regie-fault-injection: panic";
/// New connections per user per second, sustained, and how many may open at once.
const CONNECTIONS_PER_SECOND: f64 = 1.0;
const CONNECTION_BURST: f64 = 20.0;
/// Peer ids whose owner is remembered; the oldest is forgotten first.
const PEER_OWNERS_REMEMBERED: usize = 100_000;

/// One admitted connection, counted against the limits until dropped.
pub struct ConnectionPermit {
    hub: Arc<Hub>,
    user: UserId,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut guard = self.hub.connections.lock();
        let (total, per_user) = &mut *guard;
        *total -= 1;
        if let Some(n) = per_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                per_user.remove(&self.user);
            }
        }
    }
}

/// A dossier as the hub keeps it: relationships, persons and its documents.
#[derive(Debug, Clone)]
pub struct DossierEntry {
    /// Who is related to it.
    pub rel: Arc<Relationships>,
    /// Its persons.
    pub persons: Vec<PersonId>,
    /// Its documents by key.
    pub documents: BTreeMap<DocumentKey, DocumentId>,
}

struct PeerSync {
    state: sync::State,
    mode: Mode,
    /// Set when a batch from this peer was rejected: its later changes depend on the rejected
    /// ones, so nothing it sends is merged until it resets to heads the server knows (I2).
    blocked: Option<Rejection>,
    /// Changes this peer sent whose dependencies the server lacks (a Bloom filter's false
    /// "you have it" makes a device skip a parent). Kept for this peer alone — never in the
    /// shared document, where another device's batch would have to answer for them — and
    /// applied with its next batch; until then its sync messages ask for `missing`.
    queued: Vec<Change>,
    /// What the queued changes still wait for.
    missing: Vec<automerge::ChangeHash>,
}

/// Changes one peer may have waiting for their dependencies.
const QUEUED_PER_PEER: usize = 1024;

fn fresh_state(mode: Mode) -> sync::State {
    match mode {
        Mode::Write => sync::State::new(),
        Mode::Read => sync::State::new_read_only(),
    }
}

struct DocInner {
    doc: Automerge,
    last_seq: i64,
    snapshot_seq: i64,
    peers: HashMap<SessionId, PeerSync>,
    /// Ephemeral messages relayed lately, and the document's relay budget.
    ephemeral: limits::EphemeralLog,
}

/// One document in memory.
struct DocSlot {
    id: DocumentId,
    dossier: DossierId,
    key: DocumentKey,
    inner: Mutex<DocInner>,
}

/// A hub failure: storage or a stored document that does not load.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored document does not load, or a server edit failed.
    #[error("document {0} is unusable: {1}")]
    Corrupt(DocumentId, String),
    /// A server edit built from API input would break the document's schema; nothing changed.
    #[error("{0}")]
    Schema(document::SchemaError),
    /// The dossier is not (or no longer) known.
    #[error("no dossier {0}")]
    NoSuchDossier(DossierId),
}

/// What became of one incoming sync message.
#[derive(Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Processed (maybe merged changes, maybe nothing new).
    Synced,
    /// The document is unknown or not readable: answered with `doc-unavailable`.
    Unavailable,
    /// The batch was rejected and quarantined: answered with `rejected`.
    Rejected,
    /// The message broke a limit or could not be read: the connection is being closed.
    Refused,
}

/// The in-memory sync engine shared by all connections.
pub struct Hub {
    store: Arc<Store>,
    /// This server's peer id: short, since every sync message carries it (as the sender, or as
    /// the device's target); the storage id's first characters keep servers apart.
    pub peer_id: PeerId,
    /// This server's storage id.
    pub storage_id: String,
    dossiers: RwLock<HashMap<DossierId, DossierEntry>>,
    by_document: RwLock<HashMap<DocumentId, (DossierId, DocumentKey)>>,
    slots: StdMutex<lru::LruCache<DocumentId, Arc<OnceCell<Arc<DocSlot>>>>>,
    /// Retired document ids and the document that replaces each (refused forever, I1/I6).
    retired: RwLock<HashMap<DocumentId, DocumentId>>,
    sessions: RwLock<HashMap<SessionId, Arc<SessionHandle>>>,
    next_session: std::sync::atomic::AtomicU64,
    /// Which user first used each peer id (I7: a peer id cannot be squatted).
    peer_owners: StdMutex<lru::LruCache<PeerId, UserId>>,
    /// Live connections in all and per user.
    connections: StdMutex<(usize, HashMap<UserId, usize>)>,
    /// New connections each user may still open (a token bucket per user, so that
    /// reconnecting does not refill a connection's message budget).
    openings: StdMutex<lru::LruCache<UserId, TokenBucket>>,
    /// What one device may cost.
    limits: Limits,
    /// Benchmarks only: skip gating, validation and audit to measure what privacy costs.
    bypass: std::sync::atomic::AtomicBool,
    /// Held while a relationship change is planned, committed and taken into memory.
    relating: Mutex<()>,
    /// Devices reported lost (R24, R29): (user, client storage id), refused at join.
    revoked_devices: RwLock<std::collections::HashSet<(UserId, String)>>,
    /// What this instance has applied of other instances' commits (issue 17).
    follow: feed::Follow,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl Hub {
    /// Loads the dossier table and document index from `store`; documents load lazily.
    pub async fn load(store: Arc<Store>, hot_documents: usize) -> Result<Hub, HubError> {
        let storage_id = store.storage_id().await?;
        // Read before anything is loaded: what other instances commit later is caught up.
        let follow = feed::Follow::new(store.feed_head().await?);
        // Independent reads, side by side: on SQLite each runs on a worker thread of its own
        // connection while this one takes the rows of another in.
        let (mut all_persons, relationships, restrictions, contributions, index) = tokio::try_join!(
            store.all_persons(),
            store.all_relationships(),
            store.restrictions(),
            store.contributions(None),
            store.document_index(),
        )?;
        let mut dossiers = HashMap::with_capacity(relationships.len());
        for rel in relationships {
            let persons = all_persons.remove(&rel.dossier).unwrap_or_default();
            dossiers.insert(
                rel.dossier,
                DossierEntry {
                    rel: Arc::new(rel),
                    persons,
                    documents: BTreeMap::new(),
                },
            );
        }
        for (dossier, person) in restrictions {
            if let Some(entry) = dossiers.get_mut(&dossier) {
                Arc::make_mut(&mut entry.rel).restricted.push(person);
            }
        }
        for (dossier, contribution) in contributions {
            if let Some(entry) = dossiers.get_mut(&dossier) {
                Arc::make_mut(&mut entry.rel)
                    .contributions
                    .push(contribution);
            }
        }
        let mut by_document = HashMap::with_capacity(index.len());
        for row in index {
            if let Some(entry) = dossiers.get_mut(&row.dossier) {
                entry.documents.insert(row.key.clone(), row.id);
            }
            by_document.insert(row.id, (row.dossier, row.key));
        }
        let retired = store.retired_documents().await?.into_iter().collect();
        let revoked_devices = store
            .revoked_devices()
            .await?
            .into_iter()
            .filter_map(|(user, device)| Some((user.parse().ok()?, device)))
            .collect();
        let cap = std::num::NonZeroUsize::new(hot_documents.max(1)).expect("at least one");
        Ok(Hub {
            store,
            peer_id: PeerId::new(format!("r{}", &storage_id[..8])),
            storage_id,
            dossiers: RwLock::new(dossiers),
            by_document: RwLock::new(by_document),
            slots: StdMutex::new(lru::LruCache::new(cap)),
            retired: RwLock::new(retired),
            sessions: RwLock::new(HashMap::new()),
            next_session: std::sync::atomic::AtomicU64::new(1),
            peer_owners: StdMutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(PEER_OWNERS_REMEMBERED).expect("not zero"),
            )),
            connections: StdMutex::new((0, HashMap::new())),
            openings: StdMutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(PEER_OWNERS_REMEMBERED).expect("not zero"),
            )),
            limits: Limits::default(),
            bypass: std::sync::atomic::AtomicBool::new(false),
            relating: Mutex::new(()),
            revoked_devices: RwLock::new(revoked_devices),
            follow,
        })
    }

    /// The hub with these limits instead of the defaults.
    pub fn with_limits(mut self, limits: Limits) -> Hub {
        self.limits = limits;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Turns off gating, write validation and audit, so a benchmark can measure what they cost.
    /// Exists only with the `bench` feature and has no flag: never a production option.
    #[cfg(feature = "bench")]
    pub fn bypass_privacy_for_benchmarks(&self) {
        self.bypass
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn privacy(&self) -> bool {
        !self.bypass.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Appends to the audit log (I3).
    async fn audit(&self, ev: &AuditEvent) -> Result<(), HubError> {
        if self.privacy() {
            self.store.append_audit(ev).await?;
        }
        Ok(())
    }

    /// Documents in memory, documents known in all, and bytes waiting in every connection's
    /// outbox (read by `/metrics`).
    pub fn occupancy(&self) -> (usize, usize, usize) {
        let hot = self.slots.lock().len();
        let known = self.by_document.read().len();
        let queued = self
            .sessions
            .read()
            .values()
            .map(|s| s.queued_bytes())
            .sum();
        (hot, known, queued)
    }

    /// Whether a document is in memory now.
    pub fn is_hot(&self, id: DocumentId) -> bool {
        self.slots.lock().contains(&id)
    }

    /// The store behind the hub.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A dossier's entry.
    pub fn dossier(&self, id: DossierId) -> Option<DossierEntry> {
        self.dossiers.read().get(&id).cloned()
    }

    /// Every dossier (for listings).
    pub fn dossiers(&self) -> Vec<DossierEntry> {
        self.dossiers.read().values().cloned().collect()
    }

    /// Registers a new or changed dossier entry and re-checks every connection syncing its
    /// documents, revoking what they may no longer read.
    pub async fn put_dossier(&self, entry: DossierEntry) {
        let id = entry.rel.dossier;
        {
            let mut by_doc = self.by_document.write();
            for (key, doc) in &entry.documents {
                by_doc.insert(*doc, (id, key.clone()));
            }
        }
        self.dossiers.write().insert(id, entry);
        self.enforce(Some(id)).await;
    }

    // ---- documents -----------------------------------------------------------------------

    fn cached_slot(&self, id: DocumentId) -> Option<Arc<DocSlot>> {
        self.slots
            .lock()
            .peek(&id)
            .and_then(|cell| cell.get().cloned())
    }

    async fn slot(
        &self,
        id: DocumentId,
        dossier: DossierId,
        key: &DocumentKey,
    ) -> Result<Arc<DocSlot>, HubError> {
        let cell = {
            let mut slots = self.slots.lock();
            if let Some(cell) = slots.get(&id) {
                cell.clone()
            } else {
                // Evict cold documents: least recently used first, never one with live peers.
                while slots.len() >= slots.cap().get() {
                    let victim = slots.iter().rev().find_map(|(doc, cell)| {
                        let idle = cell
                            .get()
                            .is_none_or(|s| s.inner.try_lock().is_ok_and(|i| i.peers.is_empty()));
                        idle.then_some(*doc)
                    });
                    match victim {
                        Some(doc) => drop(slots.pop(&doc)),
                        None => break,
                    }
                }
                let cell = Arc::new(OnceCell::new());
                slots.put(id, cell.clone());
                cell
            }
        };
        let slot = cell
            .get_or_try_init(|| async {
                let stored = self.store.load_document(id).await?;
                let mut doc = match &stored.snapshot {
                    Some(bytes) => {
                        Automerge::load(bytes).map_err(|e| HubError::Corrupt(id, e.to_string()))?
                    }
                    None => Automerge::new(),
                };
                let changes = stored
                    .changes
                    .iter()
                    .map(|c| {
                        Change::from_bytes(c.clone())
                            .map_err(|e| HubError::Corrupt(id, e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                doc.apply_changes(changes)
                    .map_err(|e| HubError::Corrupt(id, e.to_string()))?;
                let snapshot_seq = stored.last_seq - stored.changes.len() as i64;
                Ok::<_, HubError>(Arc::new(DocSlot {
                    id,
                    dossier,
                    key: key.clone(),
                    inner: Mutex::new(DocInner {
                        doc,
                        last_seq: stored.last_seq,
                        snapshot_seq,
                        peers: HashMap::new(),
                        ephemeral: Default::default(),
                    }),
                }))
            })
            .await?;
        Ok(slot.clone())
    }

    /// Where a document id belongs, if it exists.
    pub fn locate(&self, id: DocumentId) -> Option<(DossierId, DocumentKey)> {
        self.by_document.read().get(&id).cloned()
    }

    fn relationships(&self, dossier: DossierId) -> Option<(Arc<Relationships>, Vec<PersonId>)> {
        self.dossiers
            .read()
            .get(&dossier)
            .map(|e| (e.rel.clone(), e.persons.clone()))
    }

    /// A document's current state, for server-side reads (e.g. projections).
    pub async fn snapshot(&self, doc_id: DocumentId) -> Result<Option<Automerge>, HubError> {
        let Some((dossier, key)) = self.locate(doc_id) else {
            return Ok(None);
        };
        let slot = self.slot(doc_id, dossier, &key).await?;
        let inner = slot.inner.lock().await;
        Ok(Some(inner.doc.clone()))
    }

    fn event(
        &self,
        handle: &SessionHandle,
        action: AuditAction,
        dossier: DossierId,
        key: &DocumentKey,
        persons: &[PersonId],
        t: OffsetDateTime,
    ) -> AuditEvent {
        let mut ev = AuditEvent::new(
            t,
            handle.principal.user.as_str(),
            handle.principal.role.as_str(),
            action,
        );
        ev.dossier = Some(dossier.to_string());
        ev.document = Some(key.to_string());
        ev.persons = Some(subjects(key, persons));
        ev.device = Some(
            handle
                .storage_id
                .clone()
                .unwrap_or_else(|| handle.peer.to_string()),
        );
        ev
    }
}

/// The persons a document concerns: one for a resident view, the household otherwise.
pub fn subjects(key: &DocumentKey, persons: &[PersonId]) -> String {
    match key {
        DocumentKey::View(p) => p.to_string(),
        _ => persons
            .iter()
            .map(PersonId::as_str)
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// The audit code of a basis.
pub fn basis_code(basis: regie_core::policy::Basis) -> String {
    serde_json::to_value(basis)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
