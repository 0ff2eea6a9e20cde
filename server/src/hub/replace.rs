//! Replacing a server-written view (I1, R7): Automerge keeps deleted content in a document's
//! history, so a `view/<person>` from which an entry leaves (its subjects changed) or loses text
//! cannot just be edited — a device syncing it later would still receive what no longer concerns
//! its resident. Instead the server rebuilds the view from `record` without history, stores it
//! under a new id while destroying the old one's changes, tells every connection holding the
//! old id `replaced`, and refuses the old id forever, pointing whoever may read the view to the
//! new one.

use automerge::Automerge;
use regie_core::id::{DocumentKey, PersonId};
use regie_core::policy::{Action, decide};
use regie_core::principal::Principal;
use regie_core::projection::{self, ViewEntry};
use regie_sync_protocol::{DocumentId, Message};

use super::{Hub, HubError, now};

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
        let new = DocumentId::new_random();
        self.store
            .replace_document(view, new, dossier, &key, &fresh.save(), now())
            .await?;
        {
            let mut by_doc = self.by_document.write();
            by_doc.remove(&view);
            by_doc.insert(new, (dossier, key.clone()));
        }
        if let Some(entry) = self.dossiers.write().get_mut(&dossier) {
            entry.documents.insert(key.clone(), new);
        }
        {
            let mut retired = self.retired.write();
            for target in retired.values_mut().filter(|t| **t == view) {
                *target = new;
            }
            retired.insert(view, new);
        }
        self.slots.lock().pop(&view);
        let sessions = self.sessions.read();
        for session in inner.peers.keys() {
            let Some(handle) = sessions.get(session) else {
                continue;
            };
            handle.docs.lock().remove(&view);
            handle.send(&Message::Replaced {
                sender_id: self.peer_id.clone(),
                target_id: handle.peer.clone(),
                document_id: view,
                new_document_id: new,
            });
        }
        Ok(new)
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
