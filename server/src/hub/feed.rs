//! Several instances on one PostgreSQL database (issue 17). Each instance follows the change
//! feed (`storage/feed.rs`): a document another instance changed is caught up from SQL if it is
//! in memory here and fanned out to this instance's devices (re-authorized per peer as always);
//! a dossier another instance changed (relationships, closing, documents, destruction) is loaded
//! again and every connection re-checked, as the local path does. The write path validates
//! against the latest committed state: the dossier's relationships are loaded again when another
//! instance changed them since, and a batch whose document moved on elsewhere fails its commit
//! (`Stale`), is caught up and checked again. Resident views are projected by the committing
//! instance only; the others receive them like any change. On SQLite nothing here runs.

#[allow(clippy::wildcard_imports)]
use super::*;

use crate::storage::feed::{Changed, FeedEntry, Heard};

/// How often a commit that lost the race for its document to another instance is made again
/// before its error is returned (which ends a device's connection or fails a server edit).
const ATTEMPTS: usize = 32;

/// Whether `result` of attempt `attempt` lost the race for its document (`Stale`) and is to be
/// made again — after a growing, jittered pause (up to `attempt` ms, at most 20), so that
/// instances racing for one document take turns instead of losing to each other in lockstep.
/// The one retry rule of the write path and of server edits.
pub(super) async fn try_again<T>(result: &Result<T, HubError>, attempt: usize) -> bool {
    use ring::rand::SecureRandom;
    if attempt >= ATTEMPTS
        || !matches!(
            result,
            Err(HubError::Storage(StorageError::Stale("changes")))
        )
    {
        return false;
    }
    let mut byte = [0_u8; 1];
    // A failed random source only means no jitter.
    let _ = ring::rand::SystemRandom::new().fill(&mut byte);
    let ceiling_us = attempt.min(20) as u64 * 1000;
    tokio::time::sleep(std::time::Duration::from_micros(
        ceiling_us * u64::from(byte[0]) / 255,
    ))
    .await;
    true
}

/// What this instance has taken into memory of the feed.
pub(super) struct Follow {
    /// The feed's head when the hub loaded: every dossier change up to it was loaded.
    start: i64,
    /// Per dossier, the last feed entry of a state change taken into memory after `start`.
    known: StdMutex<HashMap<DossierId, i64>>,
    /// The last entry of other instances applied; held while catching up.
    seen: Mutex<i64>,
}

impl Follow {
    /// Following from `start`, the feed's head read before the hub loaded anything.
    pub(super) fn new(start: i64) -> Follow {
        Follow {
            start,
            known: StdMutex::new(HashMap::new()),
            seen: Mutex::new(start),
        }
    }

    fn known(&self, dossier: DossierId) -> i64 {
        self.known
            .lock()
            .get(&dossier)
            .copied()
            .unwrap_or(self.start)
    }

    fn learned(&self, dossier: DossierId, seq: i64) {
        let mut known = self.known.lock();
        let at = known.entry(dossier).or_insert(self.start);
        *at = (*at).max(seq);
    }
}

impl Hub {
    /// Follows the other instances' commits until the hub is dropped (PostgreSQL); `None` on
    /// SQLite, where one instance owns the store.
    pub async fn follow(self: &Arc<Self>) -> Result<Option<tokio::task::JoinHandle<()>>, HubError> {
        let Some(mut listener) = self.store.listen().await? else {
            return Ok(None);
        };
        // What committed between loading and listening.
        self.catch_up_feed(false).await?;
        let hub = Arc::downgrade(self);
        Ok(Some(tokio::spawn(async move {
            let mut failed = false;
            loop {
                // After a failed catch-up, try again soon rather than wait for another commit.
                let heard = if failed {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    Heard::Reconnected
                } else {
                    listener.next().await
                };
                let Some(hub) = hub.upgrade() else { break };
                failed = false;
                if heard != Heard::Nothing
                    && let Err(e) = hub.catch_up_feed(heard == Heard::Reconnected).await
                {
                    tracing::warn!(error = %e, "could not catch up with the change feed");
                    failed = true;
                }
            }
        })))
    }

    /// Applies every feed entry of other instances after the last one applied; after a
    /// reconnect (`after_absence`), first checks that the feed still holds them all, and loads
    /// everything again when entries it never read were pruned meanwhile.
    pub async fn catch_up_feed(&self, after_absence: bool) -> Result<usize, HubError> {
        let mut seen = self.follow.seen.lock().await;
        if after_absence && self.store.feed_floor().await? > *seen + 1 {
            tracing::error!(
                "the change feed was pruned past what this instance applied; loading everything again"
            );
            let head = self.store.feed_head().await?;
            self.reload_everything().await?;
            *seen = head;
        }
        let mut applied = 0;
        loop {
            let entries = self.store.feed_after(*seen).await?;
            let Some(last) = entries.last().map(|e| e.seq) else {
                break;
            };
            applied += entries.len();
            self.apply_feed(&entries).await?;
            *seen = last;
        }
        crate::metrics::feed_applied(applied);
        Ok(applied)
    }

    async fn apply_feed(&self, entries: &[FeedEntry]) -> Result<(), HubError> {
        let mut dossiers = std::collections::BTreeSet::new();
        let mut documents = std::collections::BTreeSet::new();
        let mut devices = false;
        for e in entries {
            match e.what {
                Changed::Dossier(d) => {
                    dossiers.insert(d);
                }
                Changed::Document(doc) => {
                    documents.insert(doc);
                }
                Changed::Devices => devices = true,
            }
        }
        if devices {
            self.revoke_lost_devices().await?;
        }
        // Dossiers first: a new document (a replaced view) is known before its changes.
        for dossier in dossiers {
            self.reload_dossier(dossier).await?;
        }
        for doc in documents {
            let Some(slot) = self.cached_slot(doc) else {
                continue; // Not in memory: loaded from SQL when next needed.
            };
            self.catch_up_and_tell(&slot).await?;
        }
        Ok(())
    }

    /// Every dossier loaded again and every document in memory caught up: for an instance that
    /// missed feed entries.
    async fn reload_everything(&self) -> Result<(), HubError> {
        let mut ids: std::collections::HashSet<DossierId> =
            self.dossiers.read().keys().copied().collect();
        ids.extend(
            self.store
                .all_relationships()
                .await?
                .into_iter()
                .map(|r| r.dossier),
        );
        for dossier in ids {
            self.reload_dossier(dossier).await?;
        }
        let hot: Vec<Arc<DocSlot>> = self
            .slots
            .lock()
            .iter()
            .filter_map(|(_, cell)| cell.get().cloned())
            .collect();
        for slot in hot {
            self.catch_up_and_tell(&slot).await?;
        }
        self.revoke_lost_devices().await?;
        Ok(())
    }

    /// Catches `slot` up with the store and tells its connections when anything was new.
    async fn catch_up_and_tell(&self, slot: &DocSlot) -> Result<(), HubError> {
        let mut inner = slot.inner.lock().await;
        if self.catch_up_document(slot, &mut inner).await? {
            self.fan_out(slot, &mut inner, None);
        }
        Ok(())
    }

    /// Closes and refuses every device reported lost, on whichever instance it was reported.
    async fn revoke_lost_devices(&self) -> Result<(), HubError> {
        for (user, device) in self.store.revoked_devices().await? {
            if let Ok(user) = user.parse() {
                self.revoke_device(&user, &device);
            }
        }
        Ok(())
    }

    /// Takes into memory what other instances committed to the document after what this one
    /// holds; whether anything was new.
    pub(super) async fn catch_up_document(
        &self,
        slot: &DocSlot,
        inner: &mut DocInner,
    ) -> Result<bool, HubError> {
        let stored = self.store.document_after(slot.id, inner.last_seq).await?;
        if stored.last_seq <= inner.last_seq {
            return Ok(false);
        }
        let corrupt = |e: automerge::AutomergeError| HubError::Corrupt(slot.id, e.to_string());
        if let Some(bytes) = &stored.snapshot {
            let mut loaded = Automerge::load(bytes).map_err(corrupt)?;
            inner.doc.merge(&mut loaded).map_err(corrupt)?;
            inner.snapshot_seq = stored.last_seq - stored.changes.len() as i64;
        }
        let changes = stored
            .changes
            .into_iter()
            .map(|c| Change::from_bytes(c).map_err(|e| HubError::Corrupt(slot.id, e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        inner.doc.apply_changes(changes).map_err(corrupt)?;
        inner.last_seq = stored.last_seq;
        Ok(true)
    }

    /// Loads `dossier` again as stored, then re-checks every connection syncing its documents
    /// (revoking what may no longer be read), or forgets it when it is gone (destroyed).
    async fn reload_dossier(&self, dossier: DossierId) -> Result<(), HubError> {
        let seq = self.store.dossier_feed_seq(dossier).await?;
        let Some((rel, persons, rows)) = self.store.dossier_state(dossier).await? else {
            self.forget_destroyed(dossier);
            return Ok(());
        };
        let mut documents = BTreeMap::new();
        for row in rows {
            documents.insert(row.key, row.id);
        }
        let gone: Vec<DocumentId> = self
            .dossier(dossier)
            .map(|e| {
                e.documents
                    .values()
                    .filter(|d| !documents.values().any(|n| n == *d))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        // Replaced documents: their ids are refused from now on, as on the instance that
        // replaced them, and their readers are told the new id.
        let mut retired: HashMap<DocumentId, DocumentId> = HashMap::new();
        if !gone.is_empty() {
            retired = self.store.retired_documents().await?.into_iter().collect();
            let mut by_doc = self.by_document.write();
            let mut slots = self.slots.lock();
            let mut known_retired = self.retired.write();
            for doc in &gone {
                by_doc.remove(doc);
                slots.pop(doc);
                if let Some(new) = retired.get(doc) {
                    known_retired.insert(*doc, *new);
                }
            }
        }
        self.follow.learned(dossier, seq);
        self.put_dossier(DossierEntry {
            rel: Arc::new(rel),
            persons,
            documents,
        })
        .await;
        for doc in gone {
            match retired.get(&doc) {
                Some(new) => self.tell_replaced_everywhere(doc, *new),
                None => self.revoke_everywhere(doc, "destroyed"),
            }
        }
        Ok(())
    }

    /// A dossier's entry as committed now (issue 17): on a shared database, a dossier another
    /// instance made or changed a moment ago — before this one heard of it through the feed —
    /// is loaded first, so an HTTP request is judged as a device's write is, on the latest
    /// committed relationships. On a store of its own, memory is the committed state.
    pub async fn current_dossier(&self, id: DossierId) -> Result<Option<DossierEntry>, HubError> {
        if self.store.is_shared() && self.store.dossier_feed_seq(id).await? > self.follow.known(id)
        {
            self.reload_dossier(id).await?;
        }
        Ok(self.dossier(id))
    }

    /// The dossier's relationships as committed now, when another instance changed them after
    /// what this one holds (taken into memory too); `None` when memory is current.
    async fn fresher_relationships(
        &self,
        dossier: DossierId,
    ) -> Result<Option<(Arc<Relationships>, Vec<PersonId>)>, HubError> {
        let seq = self.store.dossier_feed_seq(dossier).await?;
        if seq <= self.follow.known(dossier) {
            return Ok(None);
        }
        let Some((rel, persons, _)) = self.store.dossier_state(dossier).await? else {
            return Err(HubError::NoSuchDossier(dossier));
        };
        let rel = Arc::new(rel);
        if let Some(entry) = self.dossiers.write().get_mut(&dossier) {
            entry.rel = rel.clone();
            entry.persons = persons.clone();
        }
        self.follow.learned(dossier, seq);
        Ok(Some((rel, persons)))
    }

    /// [`Hub::receive_changes`] against the latest committed state (issue 17): with other
    /// instances on the database, the dossier's relationships are loaded again if one of them
    /// changed them, and a batch whose document another committed to first is caught up and
    /// checked again. One instance (SQLite): exactly `receive_changes`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn receive_changes_latest(
        &self,
        slot: &DocSlot,
        inner: &mut DocInner,
        session: SessionId,
        handle: &SessionHandle,
        mut rel: Arc<Relationships>,
        mut persons: Vec<PersonId>,
        mode: Mode,
        message: sync::Message,
        data: &[u8],
        t: OffsetDateTime,
    ) -> Result<(SyncOutcome, Touched), HubError> {
        if !self.store.is_shared() {
            return self
                .receive_changes(
                    slot, inner, session, handle, &rel, &persons, mode, message, data, t,
                )
                .await;
        }
        let mut message = Some(message);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if self.privacy()
                && let Some((fresh, fresh_persons)) =
                    self.fresher_relationships(slot.dossier).await?
            {
                rel = fresh;
                persons = fresh_persons;
            }
            let message = match message.take() {
                Some(m) => m,
                None => sync::Message::decode(data)
                    .map_err(|e| HubError::Corrupt(slot.id, e.to_string()))?,
            };
            let result = self
                .receive_changes(
                    slot, inner, session, handle, &rel, &persons, mode, message, data, t,
                )
                .await;
            if !try_again(&result, attempt).await {
                return result;
            }
            self.catch_up_document(slot, inner).await?;
        }
    }

    /// Before a server edit is made on a fork: what other instances committed to the document
    /// is taken in first, so the edit applies after it (nothing on SQLite).
    pub(super) async fn latest(
        &self,
        slot: &DocSlot,
        inner: &mut DocInner,
    ) -> Result<(), HubError> {
        if self.store.is_shared() {
            self.catch_up_document(slot, inner).await?;
        }
        Ok(())
    }

    /// Runs `sweep` unless another instance is running it now (advisory lock; always on
    /// SQLite); `None` when skipped.
    pub async fn sweep_alone<T, F>(&self, sweep: F) -> Result<Option<T>, HubError>
    where
        F: std::future::Future<Output = Result<T, HubError>>,
    {
        let Some(_guard) = self
            .store
            .sweep_alone(crate::storage::dialect::Lock::Sweep)
            .await?
        else {
            return Ok(None);
        };
        sweep.await.map(Some)
    }
}

impl Hub {
    /// Tests only: holds this instance's catch-up with the feed until the guard is dropped, as
    /// if its notifications were slow, so a test can race another instance.
    #[cfg(feature = "fault-injection")]
    pub async fn hold_feed(&self) -> tokio::sync::MutexGuard<'_, i64> {
        self.follow.seen.lock().await
    }
}
