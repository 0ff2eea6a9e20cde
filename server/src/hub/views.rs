//! Server-written documents and the resident views derived from `record` (I1, R7, I8): a server
//! edit is committed before it is merged; every record batch is projected into the views, which
//! then record the record change they reflect, and views left behind by a stop are projected
//! again on start.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Hub {
    /// Applies a server-side edit (for `meta` and `view/<person>`, which only the server writes):
    /// commits it to storage, then merges and fans it out.
    pub async fn server_write(
        &self,
        doc_id: DocumentId,
        edit: impl Fn(
            &mut automerge::transaction::Transaction<'_>,
        ) -> Result<(), automerge::AutomergeError>,
    ) -> Result<(), HubError> {
        self.server_write_audited(doc_id, &[], edit).await
    }

    /// [`Hub::server_write`] of an edit made for someone (a statement, a withdrawal): its audit
    /// rows commit in the same transaction as its changes (I8).
    pub async fn server_write_audited(
        &self,
        doc_id: DocumentId,
        audit: &[AuditEvent],
        edit: impl Fn(
            &mut automerge::transaction::Transaction<'_>,
        ) -> Result<(), automerge::AutomergeError>,
    ) -> Result<(), HubError> {
        let Some((dossier, key)) = self.locate(doc_id) else {
            return Ok(());
        };
        let slot = self.slot(doc_id, dossier, &key).await?;
        let mut inner = slot.inner.lock().await;
        // Several instances (issue 17): the edit is made after what others committed, and made
        // again should one of them commit first meanwhile.
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.latest(&slot, &mut inner).await?;
            let result = self
                .server_write_once(&slot, &mut inner, dossier, &key, audit, &edit)
                .await;
            if !super::feed::try_again(&result, attempts).await {
                return result;
            }
        }
    }

    async fn server_write_once(
        &self,
        slot: &DocSlot,
        inner: &mut DocInner,
        dossier: DossierId,
        key: &DocumentKey,
        audit: &[AuditEvent],
        edit: &impl Fn(
            &mut automerge::transaction::Transaction<'_>,
        ) -> Result<(), automerge::AutomergeError>,
    ) -> Result<(), HubError> {
        let doc_id = slot.id;
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
            if !audit.is_empty() {
                self.store.append_audit_all(audit).await?;
            }
            return Ok(());
        }
        let raw: Vec<&[u8]> = new.iter().map(Change::raw_bytes).collect();
        inner.last_seq = if audit.is_empty() {
            self.store
                .append_changes(doc_id, inner.last_seq, &raw)
                .await?
        } else {
            let unit = crate::storage::Unit {
                dossier,
                at: now(),
                edits: &[],
                new_document: None,
                changes: vec![(doc_id, inner.last_seq, raw)],
                audit,
            };
            self.store.commit_unit(&unit).await?[0]
        };
        inner.doc = fork;
        if *key == DocumentKey::Record {
            let touched = touched_paths(&inner.doc, &new);
            let entries = projection::touched_entries(&inner.doc, &touched);
            self.project_record(dossier, &inner.doc, Some(&entries), inner.last_seq)
                .await?;
        }
        self.fan_out(slot, inner, None);
        Ok(())
    }

    /// The resident views of a dossier, by person.
    pub(super) fn views(&self, dossier: DossierId) -> Vec<(PersonId, DocumentId)> {
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
    pub(super) async fn project_record(
        &self,
        dossier: DossierId,
        record: &Automerge,
        touched: Option<&std::collections::BTreeSet<String>>,
        record_seq: i64,
    ) -> Result<(), HubError> {
        let views = self.views(dossier);
        if views.is_empty() {
            return Ok(());
        }
        for (person, view) in views {
            let (keep, changed) = projection::view_update(record, &person, touched);
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
            match self.refresh_views(*dossier).await {
                // A dossier whose key was destroyed (its rows back from a backup) or whose
                // blocks fail their check cannot be projected; it is never served either, and
                // the store logged it. The rest of the server starts.
                Err(HubError::Storage(
                    StorageError::KeyDestroyed(_)
                    | StorageError::Tampered { .. }
                    | StorageError::NoKey,
                )) => {
                    tracing::warn!(%dossier, "resident views not projected: the dossier's content cannot be read")
                }
                other => other?,
            }
        }
        Ok(behind.len())
    }
}
