//! Sessions and fan-out: admission within the connection limits, peer ids bound to their
//! first user, the registry of live sessions, graceful shutdown, refusals of input that breaks a
//! limit, relayed ephemeral messages, sending every peer what it lacks (each re-authorized when
//! sent, I1) and revoking what a connection may no longer read (R28).

#[allow(clippy::wildcard_imports)]
use super::*;

impl Hub {
    /// Admits a new connection of `principal` within the connection limits; the permit counts
    /// it until dropped.
    pub fn admit(self: &Arc<Self>, principal: &Principal) -> Result<ConnectionPermit, String> {
        let mut guard = self.connections.lock();
        let (total, per_user) = &mut *guard;
        if *total >= self.limits.connections {
            crate::metrics::limit_refused("max_connections");
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
            crate::metrics::limit_refused("connections_per_second");
            return Err(
                "too many new connections for this user; wait a moment before reconnecting".into(),
            );
        }
        let mine = per_user.entry(principal.user.clone()).or_default();
        if *mine >= self.limits.connections_per_user {
            crate::metrics::limit_refused("max_connections_per_user");
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

    /// Whether `user`'s device with client storage `storage` was reported lost (R24, R29).
    pub fn device_revoked(&self, user: &UserId, storage: Option<&str>) -> bool {
        storage.is_some_and(|s| {
            self.revoked_devices
                .read()
                .contains(&(user.clone(), s.to_owned()))
        })
    }

    /// Revokes a lost device once its revocation is committed: its connections close now and
    /// it is refused at every later join.
    pub fn revoke_device(&self, user: &UserId, storage: &str) {
        self.revoked_devices
            .write()
            .insert((user.clone(), storage.to_owned()));
        for handle in self.sessions.read().values() {
            if &handle.principal.user == user && handle.storage_id.as_deref() == Some(storage) {
                handle.close("this device was reported lost and is revoked".into());
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
    pub(super) async fn refuse_input(
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
        crate::metrics::limit_refused(problem.code());
        ev.outcome = problem.code().into();
        ev.detail = Some("sync message refused before automerge".into());
        self.audit(&ev).await?;
        handle.close(problem.to_string());
        Ok(())
    }

    /// Sends every peer of the document what it lacks, re-authorizing each one now (I1). A
    /// peer whose sync state makes Automerge panic is dropped and its connection closed; the
    /// others are served as if it had never been there.
    pub(super) fn fan_out(&self, slot: &DocSlot, inner: &mut DocInner, only: Option<SessionId>) {
        self.fan_out_to(slot, inner, |sid| only.is_none_or(|o| o == sid));
    }

    /// Sends the sync answers a session owes (see [`Hub::receive_sync`]'s `defer_reply`): one
    /// per document, with the document's latest heads, re-authorized now (I1).
    pub async fn answer_owed(&self, session: SessionId, handle: &SessionHandle) {
        let owed: Vec<DocumentId> = std::mem::take(&mut *handle.owed.lock());
        for doc in owed {
            if let Some(slot) = self.cached_slot(doc) {
                let mut inner = slot.inner.lock().await;
                self.fan_out(&slot, &mut inner, Some(session));
            }
        }
    }

    /// [`Hub::fan_out`] to the peers `to` selects.
    pub(super) fn fan_out_to(
        &self,
        slot: &DocSlot,
        inner: &mut DocInner,
        to: impl Fn(SessionId) -> bool,
    ) {
        let _timer = crate::metrics::FanOutTimer::start();
        let Some((rel, _)) = self.relationships(slot.dossier) else {
            return;
        };
        let sessions = self.sessions.read();
        let t = now();
        let DocInner { doc, peers, .. } = inner;
        let mut broken = Vec::new();
        for (sid, peer) in peers
            .iter_mut()
            .filter(|(sid, p)| to(**sid) && p.blocked.is_none())
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
                                .filter(|h| doc.get_change_meta_by_hash(h).is_none()),
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
            crate::metrics::limit_refused("ephemeral_bytes");
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

    /// Tells every connection holding `doc` that it is `revoked` for `reason`, and forgets it
    /// there.
    pub(super) fn revoke_everywhere(&self, doc: DocumentId, reason: &str) {
        let sessions: Vec<_> = self.sessions.read().values().cloned().collect();
        for handle in sessions {
            if handle.docs.lock().remove(&doc) {
                handle.send(&Message::Revoked {
                    sender_id: self.peer_id.clone(),
                    target_id: handle.peer.clone(),
                    document_id: doc,
                    reason: reason.into(),
                });
            }
        }
    }

    /// Tells every connection syncing `old` that it was replaced by `new` (R20, R21) and stops
    /// syncing `old` there; used when another instance replaced it.
    pub(super) fn tell_replaced_everywhere(&self, old: DocumentId, new: DocumentId) {
        let sessions: Vec<_> = self.sessions.read().values().cloned().collect();
        for handle in sessions {
            if handle.docs.lock().remove(&old) {
                handle.send(&Message::Replaced {
                    sender_id: self.peer_id.clone(),
                    target_id: handle.peer.clone(),
                    document_id: old,
                    new_document_id: new,
                });
            }
        }
    }
}
