//! The end of retention in the hub (R23, I6): a closed dossier whose destroy-by date has come is
//! forgotten in memory first — so nothing can load it again — then every connection holding one
//! of its documents is told `revoked` (`destroyed`) and the store destroys it and its data key
//! (crypto-shredding, issue 18), keeping proof without content. Devices offline at that moment
//! purge it at their next sync, when the server answers its ids like unknown ones.

use regie_core::id::DossierId;
use regie_sync_protocol::DocumentId;
use time::Date;

use super::{Hub, HubError, now};
use crate::audit::{AuditAction, AuditEvent};
use crate::storage::retention::Destruction;

impl Hub {
    /// Destroys every closed dossier whose destroy-by date is `today` or earlier; returns the
    /// proofs.
    pub async fn destroy_due(&self, today: Date) -> Result<Vec<Destruction>, HubError> {
        let mut proofs = Vec::new();
        for dossier in self.store.due_for_destruction(today).await? {
            proofs.push(
                self.destroy(dossier, "retention_ended", ("regie-server", "system"))
                    .await?,
            );
        }
        Ok(proofs)
    }

    /// Destroys one dossier now, for `reason` (`retention_ended`, or `erasure_granted` when a
    /// resident's erasure request covers the whole dossier, R21), on `actor`'s (user, role)
    /// account: forgotten in memory, devices told `revoked`, everything stored deleted with a
    /// proof and an audit row in one transaction, freed pages wiped.
    pub async fn destroy(
        &self,
        dossier: DossierId,
        reason: &str,
        actor: (&str, &str),
    ) -> Result<Destruction, HubError> {
        let t = now();
        self.forget_destroyed(dossier);
        // The destruction, its proof and its audit row: one transaction.
        let proof = self
            .store
            .destroy_dossier(dossier, reason, t, |proof| {
                let mut ev = AuditEvent::new(t, actor.0, actor.1, AuditAction::Destroy);
                ev.dossier = Some(dossier.to_string());
                ev.detail = Some(format!(
                    "{reason}: {} documents, {} changes, {} bytes and data key {} destroyed",
                    proof.documents,
                    proof.changes,
                    proof.bytes,
                    proof.key_id.as_deref().unwrap_or("(none)")
                ));
                ev
            })
            .await?;
        Ok(proof)
    }

    /// Forgets destroyed `dossier` in memory, so nothing can load it again, and tells every
    /// connection holding one of its documents `revoked` (`destroyed`): on the instance that
    /// destroys it and on every other (issue 17).
    pub(super) fn forget_destroyed(&self, dossier: DossierId) {
        let documents: Vec<DocumentId> = self
            .dossiers
            .write()
            .remove(&dossier)
            .map(|e| e.documents.into_values().collect())
            .unwrap_or_default();
        {
            let mut by_doc = self.by_document.write();
            let mut slots = self.slots.lock();
            for doc in &documents {
                by_doc.remove(doc);
                slots.pop(doc);
            }
        }
        for doc in documents {
            self.revoke_everywhere(doc, "destroyed");
        }
    }
}
