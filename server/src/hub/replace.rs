//! Replacing a server-written view (I1, R7): Automerge keeps deleted content in a document's
//! history, so a `view/<person>` from which an entry leaves (its subjects changed) or loses text
//! cannot just be edited — a device syncing it later would still receive what no longer concerns
//! its resident. Instead the server rebuilds the view from `record` without history, stores it
//! under a new id while destroying the old one's changes, tells every connection holding the
//! old id `replaced`, and refuses the old id forever, pointing whoever may read the view to the
//! new one.

use automerge::Automerge;
use regie_core::document;
use regie_core::id::{DocumentKey, DocumentKind, DossierId, PersonId};
use regie_core::policy::{Action, decide};
use regie_core::principal::Principal;
use regie_core::projection::{self, ViewEntry};
use regie_sync_protocol::{DocumentId, Message};

use super::{DocInner, Hub, HubError, now};

impl Hub {
    /// Whether updating `view` to `keep` and `changed` would delete anything from it.
    pub(super) async fn view_loses_content(
        &self,
        view: DocumentId,
        keep: &[String],
        changed: &[ViewEntry],
    ) -> Result<bool, HubError> {
        let Some((dossier, key)) = self.locate(view) else {
            return Ok(false);
        };
        let slot = self.slot(view, dossier, &key).await?;
        let inner = slot.inner.lock().await;
        Ok(projection::loses_content(&inner.doc, keep, changed))
    }

    /// Rebuilds `view` from `record` and replaces it under a new id.
    pub(super) async fn replace_view(
        &self,
        view: DocumentId,
        record: &Automerge,
        person: &PersonId,
    ) -> Result<DocumentId, HubError> {
        let Some((dossier, key)) = self.locate(view) else {
            return Ok(view);
        };
        let slot = self.slot(view, dossier, &key).await?;
        let inner = slot.inner.lock().await;
        let mut fresh = projection::rebuild(&inner.doc, record, person);
        self.swap(view, dossier, &key, &inner, &fresh.save()).await
    }

    /// Stores `snapshot` as the document that replaces `old` (whose lock the caller holds as
    /// `inner`): the old changes destroyed in one transaction, the new id taken into memory, every
    /// connection holding `old` told `replaced`, and `old` refused forever. A write that was
    /// waiting for `old`'s lock meanwhile cannot land: its changes would reference a document
    /// row that no longer exists, which the foreign key refuses.
    pub(super) async fn swap(
        &self,
        old: DocumentId,
        dossier: DossierId,
        key: &DocumentKey,
        inner: &DocInner,
        snapshot: &[u8],
    ) -> Result<DocumentId, HubError> {
        let new = DocumentId::new_random();
        self.store
            .replace_document(old, new, dossier, key, snapshot, now())
            .await?;
        {
            let mut by_doc = self.by_document.write();
            by_doc.remove(&old);
            by_doc.insert(new, (dossier, key.clone()));
        }
        if let Some(entry) = self.dossiers.write().get_mut(&dossier) {
            entry.documents.insert(key.clone(), new);
        }
        {
            let mut retired = self.retired.write();
            for target in retired.values_mut().filter(|t| **t == old) {
                *target = new;
            }
            retired.insert(old, new);
        }
        self.slots.lock().pop(&old);
        let sessions = self.sessions.read();
        for session in inner.peers.keys() {
            let Some(handle) = sessions.get(session) else {
                continue;
            };
            handle.docs.lock().remove(&old);
            handle.send(&Message::Replaced {
                sender_id: self.peer_id.clone(),
                target_id: handle.peer.clone(),
                document_id: old,
                new_document_id: new,
            });
        }
        Ok(new)
    }

    /// Rewrites document `id` by `edit` on a fork and replaces it by a copy of the result
    /// without history (R20, R21): nothing `edit` deleted or overwrote stays in any byte the
    /// store or a device holds afterwards. Returns the new id, or `None` when `edit` changed
    /// nothing (the document is left as it is). A record's views are projected again, so a
    /// view that loses content is replaced too.
    pub(crate) async fn rewrite(
        &self,
        id: DocumentId,
        edit: impl FnOnce(
            &mut automerge::transaction::Transaction<'_>,
            DocumentKind,
        ) -> Result<usize, automerge::AutomergeError>,
    ) -> Result<Option<DocumentId>, HubError> {
        let Some((dossier, key)) = self.locate(id) else {
            return Ok(None);
        };
        let slot = self.slot(id, dossier, &key).await?;
        let inner = slot.inner.lock().await;
        let mut fork = inner.doc.fork();
        let mut tx = fork.transaction();
        let changed =
            edit(&mut tx, key.kind()).map_err(|e| HubError::Corrupt(id, e.to_string()))?;
        tx.commit();
        if changed == 0 {
            return Ok(None);
        }
        let mut fresh = regie_core::document::rewrite::without_history(&fork);
        document::validate(key.kind(), &fresh).map_err(HubError::Schema)?;
        let new = self.swap(id, dossier, &key, &inner, &fresh.save()).await?;
        drop(inner);
        if key == DocumentKey::Record {
            let record = Automerge::load(&fresh.save())
                .map_err(|e| HubError::Corrupt(new, e.to_string()))?;
            self.project_record(dossier, &record, None, 0).await?;
        }
        Ok(Some(new))
    }

    /// The document that replaces retired `old`, if `who` may sync it; otherwise `None`, so
    /// the old id is answered like any unknown one.
    pub(super) fn replacement_for(&self, who: &Principal, old: DocumentId) -> Option<DocumentId> {
        let new = *self.retired.read().get(&old)?;
        let (dossier, key): (_, DocumentKey) = self.locate(new)?;
        let (rel, _) = self.relationships(dossier)?;
        decide(who, Action::Sync(&key), &rel, now())
            .is_allowed()
            .then_some(new)
    }
}
