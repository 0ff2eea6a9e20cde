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
use regie_core::validation::{Rejection, check_batch};
use regie_core::{document, projection};
use regie_sync_protocol::{DocumentId, LimitError, Message, PeerId, check_sync_message};
use time::OffsetDateTime;
use tokio::sync::{Mutex, OnceCell};

use crate::audit::{AuditAction, AuditEvent};
use crate::storage::{StorageError, Store};

mod connection;
mod limits;
mod relate;
mod replace;
mod retention;
mod share;

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
    /// This server's peer id.
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
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl Hub {
    /// Loads the dossier table and document index from `store`; documents load lazily.
    pub async fn load(store: Arc<Store>, hot_documents: usize) -> Result<Hub, HubError> {
        let storage_id = store.storage_id().await?;
        let mut dossiers = HashMap::new();
        let mut all_persons = store.all_persons().await?;
        for rel in store.all_relationships().await? {
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
        let mut by_document = HashMap::new();
        for row in store.document_index().await? {
            if let Some(entry) = dossiers.get_mut(&row.dossier) {
                entry.documents.insert(row.key.clone(), row.id);
            }
            by_document.insert(row.id, (row.dossier, row.key));
        }
        let retired = store.retired_documents().await?.into_iter().collect();
        let cap = std::num::NonZeroUsize::new(hot_documents.max(1)).expect("at least one");
        Ok(Hub {
            store,
            peer_id: PeerId::new(format!("regie-server-{}", &storage_id[..8])),
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

    // ---- sessions ------------------------------------------------------------------------

    /// Admits a new connection of `principal` within the connection limits; the permit counts
    /// it until dropped.
    pub fn admit(self: &Arc<Self>, principal: &Principal) -> Result<ConnectionPermit, String> {
        let mut guard = self.connections.lock();
        let (total, per_user) = &mut *guard;
        if *total >= self.limits.connections {
            return Err(format!(
                "the server is at its limit of {} connections; try again later",
                self.limits.connections
            ));
        }
        let opened = self
            .openings
            .lock()
            .get_or_insert_mut(principal.user.clone(), || {
                TokenBucket::new(CONNECTIONS_PER_SECOND, CONNECTION_BURST)
            })
            .try_take();
        if !opened {
            return Err(
                "too many new connections for this user; wait a moment before reconnecting".into(),
            );
        }
        let mine = per_user.entry(principal.user.clone()).or_default();
        if *mine >= self.limits.connections_per_user {
            return Err(format!(
                "too many connections for this user (limit {}); close another device's connection",
                self.limits.connections_per_user
            ));
        }
        *mine += 1;
        *total += 1;
        Ok(ConnectionPermit {
            hub: self.clone(),
            user: principal.user.clone(),
        })
    }

    /// Binds `peer` to `principal`'s user unless another user used it first; false then.
    pub fn bind_peer(&self, peer: &PeerId, principal: &Principal) -> bool {
        let mut owners = self.peer_owners.lock();
        match owners.get(peer) {
            Some(owner) => *owner == principal.user,
            None => {
                owners.put(peer.clone(), principal.user.clone());
                true
            }
        }
    }

    /// Registers a joined connection.
    pub fn add_session(&self, handle: SessionHandle) -> (SessionId, Arc<SessionHandle>) {
        let id = self
            .next_session
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let handle = Arc::new(handle);
        self.sessions.write().insert(id, handle.clone());
        (id, handle)
    }

    /// Asks every connection to close (the server is stopping) and waits, at most `patience`,
    /// until each has detached and persisted its sync states.
    pub async fn close_all_sessions(&self, patience: std::time::Duration) {
        for handle in self.sessions.read().values() {
            handle.close("the server is shutting down; reconnect in a moment".into());
        }
        let deadline = tokio::time::Instant::now() + patience;
        while !self.sessions.read().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Forgets a connection: detaches it from its documents and persists its sync states.
    pub async fn remove_session(&self, id: SessionId) {
        let Some(handle) = self.sessions.write().remove(&id) else {
            return;
        };
        let docs: Vec<DocumentId> = handle.docs.lock().drain().collect();
        for doc in docs {
            let Some(slot) = self.cached_slot(doc) else {
                continue;
            };
            let mut inner = slot.inner.lock().await;
            if let Some(peer) = inner.peers.remove(&id)
                && let (Some(storage), Mode::Write) = (&handle.storage_id, peer.mode)
                && let Err(e) = self
                    .store
                    .put_sync_state(&handle.principal.user, storage, doc, &peer.state.encode())
                    .await
            {
                tracing::warn!(error = %e, "could not persist a sync state");
            }
        }
        // Repeated refusals were counted, not audited one by one (I7): one row says how many.
        let refusals: Vec<_> = handle.refusals.lock().drain().map(|(_, r)| r).collect();
        for r in refusals.into_iter().filter(|r| r.more > 0) {
            let persons = self
                .relationships(r.dossier)
                .map(|(_, p)| p)
                .unwrap_or_default();
            let mut ev = self.event(
                &handle,
                AuditAction::Deny,
                r.dossier,
                &r.key,
                &persons,
                now(),
            );
            ev.outcome = r.reason.into();
            ev.detail = Some(format!("refused {} more times on this connection", r.more));
            if let Err(e) = self.audit(&ev).await {
                tracing::error!(error = %e, "could not audit repeated refusals");
            }
        }
    }

    /// Refuses a sync message that breaks a limit before Automerge sees it: audited once (the
    /// connection ends with it), then the connection is closed with an `error` naming the limit.
    async fn refuse_input(
        &self,
        handle: &SessionHandle,
        doc_id: DocumentId,
        problem: &LimitError,
    ) -> Result<(), HubError> {
        let mut ev = AuditEvent::new(
            now(),
            handle.principal.user.as_str(),
            handle.principal.role.as_str(),
            AuditAction::Deny,
        );
        if let Some((dossier, key)) = self.locate(doc_id) {
            let persons = self
                .relationships(dossier)
                .map(|(_, p)| p)
                .unwrap_or_default();
            ev = self.event(handle, AuditAction::Deny, dossier, &key, &persons, ev.at);
        }
        ev.outcome = problem.code().into();
        ev.detail = Some("sync message refused before automerge".into());
        self.audit(&ev).await?;
        handle.close(problem.to_string());
        Ok(())
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

    /// Handles a `request` or `sync` from a session. Documents the principal may not read are
    /// answered exactly like unknown ones.
    pub async fn receive_sync(
        &self,
        session: SessionId,
        handle: &SessionHandle,
        doc_id: DocumentId,
        data: &[u8],
    ) -> Result<SyncOutcome, HubError> {
        // I7: Regie reads the message and bounds its cost before any Automerge code does, and
        // before looking the document up, so the answer says nothing about whether it exists.
        // An empty payload holds nothing to bound: it is answered as an unreadable document,
        // or refused as malformed below.
        if let Err(problem) = (!data.is_empty())
            .then(|| check_sync_message(data, &self.limits.sync))
            .transpose()
        {
            self.refuse_input(handle, doc_id, &problem).await?;
            return Ok(SyncOutcome::Refused);
        }
        let unavailable = || {
            handle.send(&Message::DocUnavailable {
                sender_id: self.peer_id.clone(),
                target_id: handle.peer.clone(),
                document_id: doc_id,
            });
            Ok(SyncOutcome::Unavailable)
        };
        let Some((dossier, key)) = self.locate(doc_id) else {
            if let Some(new) = self.replacement_for(&handle.principal, doc_id) {
                handle.send(&Message::Replaced {
                    sender_id: self.peer_id.clone(),
                    target_id: handle.peer.clone(),
                    document_id: doc_id,
                    new_document_id: new,
                });
                return Ok(SyncOutcome::Unavailable);
            }
            return unavailable();
        };
        let Some((rel, persons)) = self.relationships(dossier) else {
            return unavailable();
        };
        let t = now();
        let decision = if self.privacy() {
            decide(&handle.principal, Action::Sync(&key), &rel, t)
        } else {
            Decision::Allow {
                basis: regie_core::policy::Basis::Assignment,
                mode: Mode::Write,
            }
        };
        let (basis, mode) = match decision {
            Decision::Allow { basis, mode } => (basis, mode),
            Decision::Deny(reason) => {
                if handle.first_refusal(doc_id, dossier, &key, reason.code()) {
                    let mut ev = self.event(handle, AuditAction::Deny, dossier, &key, &persons, t);
                    ev.outcome = reason.code().into();
                    self.audit(&ev).await?;
                }
                return unavailable();
            }
        };
        let message = match sync::Message::decode(data) {
            Ok(m) => m,
            Err(_) => {
                handle.close("malformed sync data: not an automerge sync message".into());
                return Ok(SyncOutcome::Refused);
            }
        };
        let slot = self.slot(doc_id, dossier, &key).await?;
        let mut inner = slot.inner.lock().await;
        if let std::collections::hash_map::Entry::Vacant(vacant) = inner.peers.entry(session) {
            // I3: the open is on record before the first byte of the document leaves.
            let mut ev = self.event(handle, AuditAction::Open, dossier, &key, &persons, t);
            ev.basis = Some(basis_code(basis));
            self.audit(&ev).await?;
            let state = match (mode, &handle.storage_id) {
                (Mode::Write, Some(storage)) => self
                    .store
                    .sync_state(&handle.principal.user, storage, doc_id)
                    .await?
                    .and_then(|b| sync::State::decode(&b).ok())
                    .unwrap_or_default(),
                (Mode::Write, None) => sync::State::new(),
                (Mode::Read, _) => sync::State::new_read_only(),
            };
            vacant.insert(PeerSync {
                state,
                mode,
                blocked: None,
                queued: Vec::new(),
                missing: Vec::new(),
            });
            handle.docs.lock().insert(doc_id);
        }
        {
            let DocInner { doc, peers, .. } = &mut *inner;
            let peer = peers.get_mut(&session).expect("registered above");
            if peer.blocked.is_some() {
                if message
                    .heads
                    .iter()
                    .all(|h| doc.get_change_meta_by_hash(h).is_some())
                {
                    // The device reset to heads the server knows: start over with it.
                    peer.blocked = None;
                    peer.state = fresh_state(mode);
                } else if message.changes.is_empty() {
                    // Answering would only restart the exchange about the rejected changes.
                    return Ok(SyncOutcome::Rejected);
                }
            }
        }
        let heads_before = inner.doc.get_heads();
        let outcome = if message.changes.is_empty() {
            let DocInner { doc, peers, .. } = &mut *inner;
            let peer = peers.get_mut(&session).expect("inserted above");
            if doc.receive_sync_message(&mut peer.state, message).is_err() {
                handle.close("malformed sync message".into());
            }
            SyncOutcome::Synced
        } else {
            self.receive_changes(
                &slot, &mut inner, session, handle, &rel, &persons, mode, message, data, t,
            )
            .await?
        };
        // Everyone hears of new heads; otherwise only the sender gets an answer, or peers would
        // keep answering each other's empty rounds forever.
        let changed = inner.doc.get_heads() != heads_before;
        self.fan_out(&slot, &mut inner, (!changed).then_some(session));
        let consents_changed = changed
            && key == DocumentKey::Record
            && regie_core::share::touches_consents(
                &inner.doc,
                &inner.doc.get_changes(&heads_before),
            );
        drop(inner);
        if consents_changed {
            let who = &handle.principal;
            self.reassess_consent_shares(dossier, (who.user.as_str(), who.role.as_str()), t.date())
                .await?;
        }
        Ok(outcome)
    }

    /// The write path: fork, check, commit, merge — or reject whole (I2, I4).
    #[allow(clippy::too_many_arguments)]
    async fn receive_changes(
        &self,
        slot: &DocSlot,
        inner: &mut DocInner,
        session: SessionId,
        handle: &SessionHandle,
        rel: &Relationships,
        persons: &[PersonId],
        mode: Mode,
        message: sync::Message,
        data: &[u8],
        t: OffsetDateTime,
    ) -> Result<SyncOutcome, HubError> {
        let mut fork = inner.doc.clone();
        let peer = &inner.peers[&session];
        let mut state = peer.state.clone();
        let blocked = peer.blocked.clone();
        let mut waiting = peer.queued.clone();
        if !waiting.is_empty() {
            // What this peer sent earlier may apply now; it is checked with this batch.
            let _ = fork.apply_changes(waiting.iter().cloned());
        }
        // Look at what a read-only peer sent, so it can be told it was refused; it is never merged.
        state.read_only = false;
        let received = fork.receive_sync_message(&mut state, message);
        let new: Vec<Change> = inner.doc.get_changes_added(&fork);
        let missing = fork.get_missing_deps(&[]);
        if !missing.is_empty() {
            // Changes the fork could not apply stay with this peer; the fork is only the place
            // where they were tried.
            // Rare (a Bloom filter's false positive): read the message's changes again rather
            // than copy them on every batch.
            if let Ok(incoming) = sync::Message::decode(data) {
                waiting.extend(
                    incoming
                        .changes
                        .iter()
                        .filter_map(|bytes| Change::from_bytes(bytes.to_vec()).ok()),
                );
            }
            waiting.retain(|c| fork.get_change_by_hash(&c.hash()).is_none());
            waiting.sort_by_key(Change::hash);
            waiting.dedup_by_key(|c| c.hash());
        } else {
            waiting.clear();
        }
        if waiting.len() > QUEUED_PER_PEER {
            handle.close(format!(
                "sync message refused: more than {QUEUED_PER_PEER} changes wait for changes this device never sent"
            ));
            return Ok(SyncOutcome::Refused);
        }
        #[cfg(feature = "fault-injection")]
        if new
            .iter()
            .any(|c| c.message().is_some_and(|m| m == FAULT_PANIC))
        {
            panic!("fault injected by a test");
        }
        let verdict = match (received, mode, blocked) {
            // Changes waiting for dependencies the server refused stay refused, for the same reason.
            (Ok(()), _, Some(earlier)) if !fork.get_missing_deps(&[]).is_empty() => {
                Err(Rejection {
                    detail: format!("depends on a change rejected earlier: {}", earlier.detail),
                    change: new.first().map(Change::hash),
                    ..earlier
                })
            }
            (Err(_), _, _) => Err(Rejection {
                code: "malformed_change",
                path: None,
                change: None,
                detail: "the sync message's changes do not apply".into(),
            }),
            (Ok(()), Mode::Read, _) if !new.is_empty() => Err(Rejection {
                code: if rel.closed {
                    regie_core::policy::DenyReason::DossierClosed.code()
                } else {
                    regie_core::policy::DenyReason::ReadOnlyAccess.code()
                },
                path: None,
                change: new.first().map(Change::hash),
                detail: "this audience may read this document but not write it".into(),
            }),
            (Ok(()), _, _) if !self.privacy() => Ok(()),
            (Ok(()), _, _) => check_batch(&handle.principal, &slot.key, rel, t, &fork, &new),
        };
        if let Err(rejection) = verdict {
            let peer = inner.peers.get_mut(&session).expect("present");
            peer.blocked = Some(rejection.clone());
            peer.queued.clear();
            peer.missing.clear();
            self.reject(slot, handle, rel, persons, &new, rejection, t)
                .await?;
            return Ok(SyncOutcome::Rejected);
        }
        if !new.is_empty() {
            let raw: Vec<&[u8]> = new.iter().map(Change::raw_bytes).collect();
            // I4: durable first; only then do the new heads become visible to anyone. The
            // write's audit row commits with it (I3).
            inner.last_seq = if self.privacy() {
                let mut ev = self.event(
                    handle,
                    AuditAction::Write,
                    rel.dossier,
                    &slot.key,
                    persons,
                    t,
                );
                ev.detail = Some(format!("{} changes", new.len()));
                self.store
                    .append_changes_audited(slot.id, inner.last_seq, &raw, &ev)
                    .await?
            } else {
                self.store
                    .append_changes(slot.id, inner.last_seq, &raw)
                    .await?
            };
            if missing.is_empty() {
                inner.doc = fork;
            } else {
                // The fork holds this peer's waiting changes in its queue: merge only what was
                // checked, so the shared document never holds them.
                inner
                    .doc
                    .apply_changes(new.iter().cloned())
                    .map_err(|e| HubError::Corrupt(slot.id, e.to_string()))?;
            }
            if slot.key == DocumentKey::Record {
                self.project_record(slot.dossier, &inner.doc, Some(&new), inner.last_seq)
                    .await?;
            }
            if inner.last_seq - inner.snapshot_seq >= COMPACT_AFTER {
                self.store
                    .compact(slot.id, &inner.doc.save(), inner.last_seq)
                    .await?;
                inner.snapshot_seq = inner.last_seq;
            }
        }
        let peer = inner.peers.get_mut(&session).expect("present");
        state.read_only = peer.mode == Mode::Read;
        peer.state = state;
        peer.queued = waiting;
        peer.missing = if peer.queued.is_empty() {
            Vec::new()
        } else {
            missing
        };
        Ok(SyncOutcome::Synced)
    }

    #[allow(clippy::too_many_arguments)]
    async fn reject(
        &self,
        slot: &DocSlot,
        handle: &SessionHandle,
        rel: &Relationships,
        persons: &[PersonId],
        new: &[Change],
        rejection: Rejection,
        t: OffsetDateTime,
    ) -> Result<(), HubError> {
        let hashes: Vec<String> = new.iter().map(|c| c.hash().to_string()).collect();
        let bytes: Vec<u8> = new.iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
        self.store
            .quarantine(
                t,
                &handle.principal.user,
                Some(handle.peer.as_str()),
                slot.id,
                rejection.code,
                rejection.path.as_deref(),
                &rejection.detail,
                &hashes.join(","),
                &bytes,
            )
            .await?;
        let mut ev = self.event(
            handle,
            AuditAction::Reject,
            rel.dossier,
            &slot.key,
            persons,
            t,
        );
        ev.outcome = rejection.code.into();
        ev.detail = rejection.path.clone();
        self.audit(&ev).await?;
        handle.send(&Message::Rejected {
            sender_id: self.peer_id.clone(),
            target_id: handle.peer.clone(),
            document_id: slot.id,
            reason: rejection.code.into(),
            detail: Some(rejection.detail),
            changes: hashes,
        });
        Ok(())
    }

    /// Sends every peer of the document what it lacks, re-authorizing each one now (I1). A
    /// peer whose sync state makes Automerge panic is dropped and its connection closed; the
    /// others are served as if it had never been there.
    fn fan_out(&self, slot: &DocSlot, inner: &mut DocInner, only: Option<SessionId>) {
        let Some((rel, _)) = self.relationships(slot.dossier) else {
            return;
        };
        let sessions = self.sessions.read();
        let t = now();
        let DocInner { doc, peers, .. } = inner;
        let mut broken = Vec::new();
        for (sid, peer) in peers
            .iter_mut()
            .filter(|(sid, p)| only.is_none_or(|o| o == **sid) && p.blocked.is_none())
        {
            let Some(handle) = sessions.get(sid) else {
                continue;
            };
            if self.privacy()
                && !decide(&handle.principal, Action::Read(&slot.key), &rel, t).is_allowed()
            {
                // The sweep will revoke it; until then it gets nothing.
                continue;
            }
            let generated = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                doc.generate_sync_message(&mut peer.state)
            }));
            match generated {
                Ok(Some(mut msg)) => {
                    // Ask for what this peer's waiting changes depend on (Automerge would,
                    // had they stayed in the shared document's queue).
                    if !peer.missing.is_empty() {
                        msg.need.extend(
                            peer.missing
                                .iter()
                                .filter(|h| doc.get_change_by_hash(h).is_none()),
                        );
                        msg.need.sort();
                        msg.need.dedup();
                    }
                    handle.send(&Message::Sync {
                        sender_id: self.peer_id.clone(),
                        target_id: handle.peer.clone(),
                        document_id: slot.id,
                        data: msg.encode(),
                    })
                }
                Ok(None) => {}
                Err(_) => {
                    tracing::error!(document = %slot.id, "automerge panicked generating a sync message; dropping that peer");
                    handle.close("internal error while syncing a document; reconnect".into());
                    broken.push(*sid);
                }
            }
        }
        for sid in broken {
            peers.remove(&sid);
        }
    }

    /// Relays an ephemeral message (presence) to the document's other readers, if the sender
    /// may sync it: under the sender's alias, once per (sender, session, count), within the
    /// connection's and the document's budgets, never back to its origin (I7). A message a
    /// peer forwards with another sender's id (automerge-repo passes them on) is dropped.
    pub fn relay_ephemeral(&self, session: SessionId, handle: &SessionHandle, message: &Message) {
        let Message::Ephemeral {
            sender_id,
            count,
            session_id,
            document_id,
            data,
            ..
        } = message
        else {
            return;
        };
        if sender_id != &handle.peer || !handle.ephemeral.lock().try_take() {
            return;
        }
        if data.len() > MAX_EPHEMERAL_BYTES {
            handle.close(format!(
                "ephemeral message refused: {} bytes exceed the limit of {MAX_EPHEMERAL_BYTES}",
                data.len()
            ));
            return;
        }
        let Some((dossier, key)) = self.locate(*document_id) else {
            return;
        };
        let Some((rel, _)) = self.relationships(dossier) else {
            return;
        };
        let t = now();
        if !decide(&handle.principal, Action::Sync(&key), &rel, t).is_allowed() {
            return;
        }
        let Some(slot) = self.cached_slot(*document_id) else {
            return;
        };
        let Ok(mut inner) = slot.inner.try_lock() else {
            return;
        };
        if !inner
            .ephemeral
            .admit(handle.alias.as_str(), session_id, *count)
        {
            return;
        }
        let sessions = self.sessions.read();
        for sid in inner.peers.keys().filter(|s| **s != session) {
            if let Some(other) = sessions.get(sid)
                && decide(&other.principal, Action::Read(&key), &rel, t).is_allowed()
            {
                other.send(&Message::Ephemeral {
                    sender_id: handle.alias.clone(),
                    target_id: other.peer.clone(),
                    count: *count,
                    session_id: session_id.clone(),
                    document_id: *document_id,
                    data: data.clone(),
                });
            }
        }
    }

    /// Re-checks every syncing connection (of one dossier, or all) against the policy now, and
    /// sends `revoked` for each document a connection may no longer read (R28).
    pub async fn enforce(&self, only: Option<DossierId>) {
        if !self.privacy() {
            return;
        }
        let sessions: Vec<(SessionId, Arc<SessionHandle>)> = self
            .sessions
            .read()
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let t = now();
        for (sid, handle) in sessions {
            let docs: Vec<DocumentId> = handle.docs.lock().iter().copied().collect();
            for doc in docs {
                let Some((dossier, key)) = self.locate(doc) else {
                    continue;
                };
                if only.is_some_and(|d| d != dossier) {
                    continue;
                }
                let (decision, persons) = match self.relationships(dossier) {
                    Some((rel, persons)) => (
                        decide(&handle.principal, Action::Sync(&key), &rel, t),
                        persons,
                    ),
                    None => (
                        Decision::Deny(regie_core::policy::DenyReason::NotInAudience),
                        Vec::new(),
                    ),
                };
                let Decision::Deny(reason) = decision else {
                    continue;
                };
                if let Some(slot) = self.cached_slot(doc) {
                    slot.inner.lock().await.peers.remove(&sid);
                }
                handle.docs.lock().remove(&doc);
                let mut ev = self.event(&handle, AuditAction::Revoke, dossier, &key, &persons, t);
                ev.outcome = reason.code().into();
                if let Err(e) = self.audit(&ev).await {
                    tracing::error!(error = %e, "could not audit a revocation");
                }
                handle.send(&Message::Revoked {
                    sender_id: self.peer_id.clone(),
                    target_id: handle.peer.clone(),
                    document_id: doc,
                    reason: reason.code().into(),
                });
            }
        }
    }

    /// Applies a server-side edit (for `meta` and `view/<person>`, which only the server writes):
    /// commits it to storage, then merges and fans it out.
    pub async fn server_write(
        &self,
        doc_id: DocumentId,
        edit: impl FnOnce(
            &mut automerge::transaction::Transaction<'_>,
        ) -> Result<(), automerge::AutomergeError>,
    ) -> Result<(), HubError> {
        let Some((dossier, key)) = self.locate(doc_id) else {
            return Ok(());
        };
        let slot = self.slot(doc_id, dossier, &key).await?;
        let mut inner = slot.inner.lock().await;
        let mut fork = inner.doc.clone();
        let mut tx = fork.transaction();
        edit(&mut tx).map_err(|e| HubError::Corrupt(doc_id, e.to_string()))?;
        tx.commit();
        // Server edits carry API input (statements, maatwerk requests, partner contacts). A view
        // is derived from a record already validated: checking it again on every batch would
        // only cost time on the write path.
        if !matches!(key, DocumentKey::View(_)) {
            document::validate(key.kind(), &fork).map_err(HubError::Schema)?;
        }
        let new = inner.doc.get_changes_added(&fork);
        if new.is_empty() {
            return Ok(());
        }
        let raw: Vec<&[u8]> = new.iter().map(Change::raw_bytes).collect();
        inner.last_seq = self
            .store
            .append_changes(doc_id, inner.last_seq, &raw)
            .await?;
        inner.doc = fork;
        if key == DocumentKey::Record {
            self.project_record(dossier, &inner.doc, Some(&new), inner.last_seq)
                .await?;
        }
        self.fan_out(&slot, &mut inner, None);
        Ok(())
    }

    /// The resident views of a dossier, by person.
    fn views(&self, dossier: DossierId) -> Vec<(PersonId, DocumentId)> {
        self.dossier(dossier)
            .map(|e| {
                e.documents
                    .iter()
                    .filter_map(|(k, d)| match k {
                        DocumentKey::View(p) => Some((p.clone(), *d)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Brings every resident view of the dossier up to date with `record` (as of its change
    /// `record_seq`) after `changes` (all entries when `None`), then records that they reflect
    /// it, so that a view left behind by a stop in between is found on start (I8). One way:
    /// views are written here and nowhere else (I1, R7).
    async fn project_record(
        &self,
        dossier: DossierId,
        record: &Automerge,
        changes: Option<&[Change]>,
        record_seq: i64,
    ) -> Result<(), HubError> {
        let views = self.views(dossier);
        if views.is_empty() {
            return Ok(());
        }
        for (person, view) in views {
            let (keep, changed) = projection::view_update(record, &person, changes);
            if self.view_loses_content(view, &keep, &changed).await? {
                self.replace_view(view, record, &person).await?;
                continue;
            }
            // Boxed: a view write never projects again, but the compiler cannot know that.
            Box::pin(self.server_write(view, move |tx| {
                projection::apply_to_view(tx, &keep, &changed)
            }))
            .await?;
        }
        // Replacement may have given views new ids: mark the ones that hold now.
        let views: Vec<DocumentId> = self.views(dossier).into_iter().map(|(_, v)| v).collect();
        self.store.mark_projected(&views, record_seq).await?;
        Ok(())
    }

    /// Rebuilds the views of a dossier from its record (e.g. for a newly linked resident).
    pub async fn refresh_views(&self, dossier: DossierId) -> Result<(), HubError> {
        let Some(record) = self
            .dossier(dossier)
            .and_then(|e| e.documents.get(&DocumentKey::Record).copied())
        else {
            return Ok(());
        };
        let slot = self.slot(record, dossier, &DocumentKey::Record).await?;
        let (doc, seq) = {
            let inner = slot.inner.lock().await;
            (inner.doc.clone(), inner.last_seq)
        };
        self.project_record(dossier, &doc, None, seq).await
    }

    /// Projects again every view that reflects less of its record than the store holds: the
    /// server stopped between a record batch's commit and its views' writes (I8). Run on start;
    /// returns how many dossiers it brought up to date.
    pub async fn catch_up_views(&self) -> Result<usize, HubError> {
        let behind = self.store.views_behind().await?;
        for dossier in &behind {
            self.refresh_views(*dossier).await?;
        }
        Ok(behind.len())
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
