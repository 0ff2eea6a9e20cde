//! The write path (I2, I4): an incoming sync message is bounded, authorized through the policy,
//! applied to a fork, checked with `check_batch`, committed with its audit row, and only then
//! merged and fanned out; a refused batch is quarantined and its peer blocked until it resets.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Hub {
    /// Handles a `request` or `sync` from a session. Documents the principal may not read are
    /// answered exactly like unknown ones. With `defer_reply` (the session has more of the
    /// device's messages waiting) the sync answer to the sender is owed instead of sent, and
    /// [`Hub::answer_owed`] sends one answer per document once the burst is handled; other
    /// peers hear of new heads at once either way.
    pub async fn receive_sync(
        &self,
        session: SessionId,
        handle: &SessionHandle,
        doc_id: DocumentId,
        data: &[u8],
        defer_reply: bool,
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
        let located = match self.locate(doc_id) {
            // Another instance may have made it a moment ago (issue 17): take in the change
            // feed before answering that it is unknown.
            None if self.store.is_shared() => {
                self.catch_up_feed(false).await?;
                self.locate(doc_id)
            }
            found => found,
        };
        let Some((dossier, key)) = located else {
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
        let slot = match self.slot(doc_id, dossier, &key).await {
            Ok(slot) => slot,
            // A block that fails its integrity check, or a dossier whose key was destroyed (its
            // rows back from a backup): nothing of it is served, and the device is answered as
            // for an unknown document (the store logged and counted it, I6).
            Err(HubError::Storage(
                StorageError::Tampered { .. } | StorageError::KeyDestroyed(_) | StorageError::NoKey,
            )) => return unavailable(),
            Err(e) => return Err(e),
        };
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
        let (outcome, touched) = if message.changes.is_empty() {
            let DocInner { doc, peers, .. } = &mut *inner;
            let peer = peers.get_mut(&session).expect("inserted above");
            if doc.receive_sync_message(&mut peer.state, message).is_err() {
                handle.close("malformed sync message".into());
            }
            (SyncOutcome::Synced, Touched::new())
        } else {
            // Several instances (issue 17): checked against the latest committed state.
            self.receive_changes_latest(
                &slot, &mut inner, session, handle, rel, persons, mode, message, data, t,
            )
            .await?
        };
        // Everyone hears of new heads; otherwise only the sender gets an answer, or peers would
        // keep answering each other's empty rounds forever.
        let changed = inner.doc.get_heads() != heads_before;
        if defer_reply {
            handle.owe(doc_id);
            if changed {
                self.fan_out_to(&slot, &mut inner, |sid| sid != session);
            }
        } else {
            self.fan_out(&slot, &mut inner, (!changed).then_some(session));
        }
        let consents_changed =
            changed && key == DocumentKey::Record && regie_core::share::touches_consents(&touched);
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
    pub(super) async fn receive_changes(
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
    ) -> Result<(SyncOutcome, Touched), HubError> {
        let mut fork = inner.doc.clone();
        let peer = &inner.peers[&session];
        let mut state = peer.state.clone();
        let blocked = peer.blocked.clone();
        let mut waiting = peer.queued.clone();
        if !waiting.is_empty() {
            // What this peer sent earlier may apply now; it is checked with this batch.
            let _ = fork.apply_changes(waiting.iter().cloned());
        }
        // The message's changes, parsed once: what the batch adds is read from them, not rebuilt
        // from the fork's operations (automerge 0.12 re-encodes a change from its op set).
        let incoming = incoming_changes(&message);
        // Look at what a read-only peer sent, so it can be told it was refused; it is never merged.
        state.read_only = false;
        let received = fork.receive_sync_message(&mut state, message);
        let new: Vec<Change> = match &incoming {
            Some(incoming) => added(&inner.doc, &fork, &waiting, incoming),
            None => inner.doc.get_changes_added(&fork),
        };
        let missing = fork.get_missing_deps(&[]);
        if !missing.is_empty() {
            // Changes the fork could not apply stay with this peer; the fork is only the place
            // where they were tried.
            match incoming {
                Some(incoming) => waiting.extend(incoming),
                None => {
                    if let Ok(incoming) = sync::Message::decode(data) {
                        waiting.extend(
                            incoming
                                .changes
                                .iter()
                                .filter_map(|bytes| Change::from_bytes(bytes.to_vec()).ok()),
                        );
                    }
                }
            }
            waiting.retain(|c| fork.get_change_meta_by_hash(&c.hash()).is_none());
            waiting.sort_by_key(Change::hash);
            waiting.dedup_by_key(|c| c.hash());
        } else {
            waiting.clear();
        }
        if waiting.len() > QUEUED_PER_PEER {
            crate::metrics::limit_refused("queued_changes_per_peer");
            handle.close(format!(
                "sync message refused: more than {QUEUED_PER_PEER} changes wait for changes this device never sent"
            ));
            return Ok((SyncOutcome::Refused, Touched::new()));
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
            (Ok(()), _, _) if !self.privacy() => Ok(touched_paths(&fork, &new)),
            (Ok(()), _, _) => check_batch(&handle.principal, &slot.key, rel, t, &fork, &new),
        };
        let touched = match verdict {
            Ok(touched) => touched,
            Err(rejection) => {
                let peer = inner.peers.get_mut(&session).expect("present");
                peer.blocked = Some(rejection.clone());
                peer.queued.clear();
                peer.missing.clear();
                self.reject(slot, handle, rel, persons, &new, rejection, t)
                    .await?;
                return Ok((SyncOutcome::Rejected, Touched::new()));
            }
        };
        if !new.is_empty() {
            let raw: Vec<&[u8]> = new.iter().map(Change::raw_bytes).collect();
            let commit_started = std::time::Instant::now();
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
            crate::metrics::batch_accepted(commit_started);
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
            // Only a record with resident views is projected (and only then are the touched
            // entries worth finding).
            if slot.key == DocumentKey::Record && !self.views(slot.dossier).is_empty() {
                let entries = projection::touched_entries(&inner.doc, &touched);
                self.project_record(slot.dossier, &inner.doc, Some(&entries), inner.last_seq)
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
        Ok((SyncOutcome::Synced, touched))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn reject(
        &self,
        slot: &DocSlot,
        handle: &SessionHandle,
        rel: &Relationships,
        persons: &[PersonId],
        new: &[Change],
        rejection: Rejection,
        t: OffsetDateTime,
    ) -> Result<(), HubError> {
        crate::metrics::batch_rejected(rejection.code);
        let hashes: Vec<String> = new.iter().map(|c| c.hash().to_string()).collect();
        let bytes: Vec<u8> = new.iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
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
        // The quarantined batch and the rejection's audit row: one transaction.
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
                &ev,
            )
            .await?;
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
}

/// The changes a sync message carries, parsed once. A V2 message joins its changes into one
/// chunk list; each is split at its storage-chunk header. `None` when anything is not a change
/// (a whole document, as a V2 message may send, or bytes that do not parse), so that the caller
/// asks the fork instead.
fn incoming_changes(message: &sync::Message) -> Option<Vec<Change>> {
    let mut changes = Vec::new();
    for mut rest in message.changes.iter() {
        while !rest.is_empty() {
            let len = regie_sync_protocol::chunk_len(rest)?;
            changes.push(Change::from_bytes(rest[..len].to_vec()).ok()?);
            rest = &rest[len..];
        }
    }
    Some(changes)
}

/// What `fork` holds that `doc` lacks, in the order it came (the peer's waiting changes first,
/// then the message's): the same set `doc.get_changes_added(fork)` returns when the fork was
/// `doc` plus `waiting` plus `incoming`, without re-encoding them from the fork's operations.
fn added(
    doc: &Automerge,
    fork: &Automerge,
    waiting: &[Change],
    incoming: &[Change],
) -> Vec<Change> {
    let mut seen = std::collections::HashSet::new();
    waiting
        .iter()
        .chain(incoming)
        .filter(|c| {
            let hash = c.hash();
            seen.insert(hash)
                && doc.get_change_meta_by_hash(&hash).is_none()
                && fork.get_change_meta_by_hash(&hash).is_some()
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    fn hashes(changes: &[Change]) -> std::collections::BTreeSet<automerge::ChangeHash> {
        changes.iter().map(Change::hash).collect()
    }

    #[test]
    fn what_a_batch_adds_is_what_automerge_finds_added_to_the_fork() {
        let mut server = Automerge::new();
        let mut tx = server.transaction();
        tx.put(automerge::ROOT, "a", 1).unwrap();
        tx.commit();
        let mut device = server.fork();
        for i in 0..3 {
            let mut tx = device.transaction();
            tx.put(automerge::ROOT, "b", i).unwrap();
            tx.commit();
        }
        let sent = device.get_changes(&server.get_heads());
        // One change came earlier and waited with the peer; the message repeats it and brings
        // the rest, and one more whose parent the server never got (it stays queued).
        let waiting = vec![sent[0].clone()];
        let mut orphan_source = device.fork();
        let mut tx = orphan_source.transaction();
        tx.put(automerge::ROOT, "c", 1).unwrap();
        tx.commit();
        let mut tx = orphan_source.transaction();
        tx.put(automerge::ROOT, "c", 2).unwrap();
        tx.commit();
        let orphan = orphan_source.get_last_local_change().unwrap();
        let incoming: Vec<Change> = sent.iter().cloned().chain([orphan]).collect();

        let mut fork = server.clone();
        fork.apply_changes(waiting.iter().cloned()).unwrap();
        fork.apply_changes(incoming.iter().cloned()).unwrap();
        let found = added(&server, &fork, &waiting, &incoming);
        assert_eq!(hashes(&found), hashes(&server.get_changes_added(&fork)));
        assert_eq!(found.len(), 3, "the orphan is not added");
    }

    #[test]
    fn changes_joined_into_one_chunk_are_read_one_by_one_and_anything_else_is_left_to_automerge() {
        let mut device = Automerge::new();
        for i in 0..3 {
            let mut tx = device.transaction();
            tx.put(automerge::ROOT, "b", i).unwrap();
            tx.commit();
        }
        let changes = device.get_changes(&[]);
        let joined: Vec<u8> = changes
            .iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect();
        let message = |chunks: Vec<Vec<u8>>| sync::Message {
            heads: device.get_heads(),
            need: Vec::new(),
            have: Vec::new(),
            changes: chunks.into(),
            flags: None,
            version: sync::MessageVersion::V2,
        };
        let read = incoming_changes(&message(vec![joined.clone()])).expect("three changes");
        assert_eq!(hashes(&read), hashes(&changes));
        // A whole document, a truncated change: the caller falls back to Automerge's own answer.
        assert!(incoming_changes(&message(vec![device.save()])).is_none());
        assert!(incoming_changes(&message(vec![joined[..joined.len() - 1].to_vec()])).is_none());
    }
}
