//! Changes to a dossier's relationships and the rows around them (assignments, resident links,
//! grants, partner shares, maatwerk applicants, tasks, approvals, closing): one at a time, each
//! planned from the dossier as memory holds it, committed with the edit of a server-written
//! document it implies, any new document and its audit rows in one transaction, and only then
//! taken into memory and told to devices (I8). Memory changes nowhere else, so SQL, memory and
//! devices cannot disagree after a refusal, a failure or two concurrent calls.

use automerge::transaction::Transaction;
use automerge::{AutomergeError, Change};
use regie_core::document;
use regie_core::id::{DocumentKey, DossierId};
use regie_sync_protocol::DocumentId;

use super::{DossierEntry, Hub, HubError};
use crate::audit::AuditEvent;
use crate::storage::{RelationEdit, Unit};

/// An edit of one of the dossier's documents, made by the server with the change.
pub type DocumentEdit = Box<dyn FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError> + Send>;

/// A planned change.
pub struct Relating {
    /// The rows it writes, in order.
    pub edits: Vec<RelationEdit>,
    /// The dossier as it will be once committed; memory takes its relationships and the new
    /// document from it.
    pub entry: DossierEntry,
    /// An edit of an existing document of the dossier (e.g. `meta`'s assigned workers), checked
    /// against the document's schema before anything commits.
    pub edit: Option<(DocumentKey, DocumentEdit)>,
    /// A document created with it: its id, key and first snapshot.
    pub new_document: Option<(DocumentId, DocumentKey, Vec<u8>)>,
    /// Its audit rows.
    pub audit: Vec<AuditEvent>,
}

impl Relating {
    /// A change of rows only.
    pub fn rows(edits: Vec<RelationEdit>, entry: DossierEntry, audit: AuditEvent) -> Relating {
        Relating {
            edits,
            entry,
            edit: None,
            new_document: None,
            audit: vec![audit],
        }
    }
}

impl Hub {
    /// Applies the change `plan` makes of the dossier as it stands, or nothing when it returns
    /// `None` (the change is already in place) or an error (nothing is written). Returns the
    /// dossier as it stands afterwards.
    pub async fn relate<E: From<HubError>>(
        &self,
        dossier: DossierId,
        at: time::OffsetDateTime,
        plan: impl FnOnce(&DossierEntry) -> Result<Option<Relating>, E>,
    ) -> Result<DossierEntry, E> {
        let _one_at_a_time = self.relating.lock().await;
        let current = self
            .dossier(dossier)
            .ok_or(HubError::NoSuchDossier(dossier))?;
        let Some(relating) = plan(&current)? else {
            return Ok(current);
        };
        let edited = match relating.edit {
            Some((key, edit)) => {
                let id = *current
                    .documents
                    .get(&key)
                    .ok_or(HubError::NoSuchDossier(dossier))?;
                Some((id, key, edit))
            }
            None => None,
        };
        let slot = match &edited {
            Some((id, key, _)) => Some(self.slot(*id, dossier, key).await?),
            None => None,
        };
        let mut inner = match &slot {
            Some(slot) => Some(slot.inner.lock().await),
            None => None,
        };
        // The edit is made on a fork and checked before anything commits.
        let mut forked = None;
        if let (Some(slot), Some(inner), Some((id, key, edit))) = (&slot, inner.as_mut(), edited) {
            self.latest(slot, inner).await?;
            let mut fork = inner.doc.clone();
            let mut tx = fork.transaction();
            edit(&mut tx).map_err(|e| HubError::Corrupt(id, e.to_string()))?;
            tx.commit();
            document::validate(key.kind(), &fork).map_err(HubError::Schema)?;
            let new = inner.doc.get_changes_added(&fork);
            forked = Some((id, fork, new, inner.last_seq));
        }
        let mut unit = Unit {
            dossier,
            at,
            edits: &relating.edits,
            new_document: None,
            changes: Vec::new(),
            audit: &relating.audit,
        };
        if let Some((id, key, bytes)) = &relating.new_document {
            unit.new_document = Some((*id, key, bytes.as_slice()));
        }
        if let Some((id, _, new, after)) = &forked {
            unit.changes
                .push((*id, *after, new.iter().map(Change::raw_bytes).collect()));
        }
        let seqs = self
            .store
            .commit_unit(&unit)
            .await
            .map_err(HubError::from)?;
        if let (Some(slot), Some(inner), Some((_, fork, _, _))) = (&slot, inner.as_mut(), forked) {
            inner.doc = fork;
            inner.last_seq = seqs[0];
            self.fan_out(slot, inner, None);
        }
        drop(inner);
        // Only what this change made is taken into memory: a view replaced meanwhile by a
        // record batch keeps its new id.
        if let Some((id, key, _)) = &relating.new_document {
            self.by_document.write().insert(*id, (dossier, key.clone()));
        }
        let entry = {
            let mut dossiers = self.dossiers.write();
            let entry = dossiers
                .entry(dossier)
                .or_insert_with(|| relating.entry.clone());
            entry.rel = relating.entry.rel.clone();
            if let Some((id, key, _)) = &relating.new_document {
                entry.documents.insert(key.clone(), *id);
            }
            entry.clone()
        };
        self.enforce(Some(dossier)).await;
        if matches!(relating.new_document, Some((_, DocumentKey::View(_), _))) {
            self.refresh_views(dossier).await?;
        }
        Ok(entry)
    }
}
