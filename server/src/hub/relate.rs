//! Relationship changes (assignments, resident links, grants): one at a time, each planned
//! from the dossier as memory holds it, committed with `meta`'s edit, any new document and the
//! audit row in one transaction, and only then taken into memory and told to devices (I8).
//! Memory changes nowhere else, so SQL, memory and devices cannot disagree after a refusal, a
//! failure or two concurrent calls.

use automerge::Change;
use regie_core::document;
use regie_core::id::{DocumentKey, DossierId, PersonId};
use regie_sync_protocol::DocumentId;

use super::{DossierEntry, Hub, HubError};
use crate::audit::AuditEvent;
use crate::storage::{RelationEdit, Unit};

/// A planned relationship change.
pub struct Relating {
    /// The row it writes.
    pub edit: RelationEdit,
    /// The dossier as it will be once committed; memory takes its relationships and the new
    /// view from it.
    pub entry: DossierEntry,
    /// Whether `meta`'s list of assigned workers follows `entry`.
    pub meta_follows: bool,
    /// A resident view created with it: its id, person and first snapshot.
    pub new_view: Option<(DocumentId, PersonId, Vec<u8>)>,
    /// Its audit row.
    pub audit: AuditEvent,
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
        // `meta` is edited on a fork and checked against its schema before anything commits.
        let meta = match current.documents.get(&DocumentKey::Meta) {
            Some(&id) if relating.meta_follows => {
                Some((id, self.slot(id, dossier, &DocumentKey::Meta).await?))
            }
            _ => None,
        };
        let mut locked = match &meta {
            Some((id, slot)) => Some((*id, slot, slot.inner.lock().await)),
            None => None,
        };
        let mut edited = None;
        if let Some((id, _, inner)) = locked.as_mut() {
            let mut fork = inner.doc.clone();
            let mut tx = fork.transaction();
            document::set_assigned(&mut tx, &relating.entry.rel.assigned)
                .map_err(|e| HubError::Corrupt(*id, e.to_string()))?;
            tx.commit();
            document::validate(DocumentKey::Meta.kind(), &fork).map_err(HubError::Schema)?;
            let new = inner.doc.get_changes_added(&fork);
            edited = Some((fork, new, inner.last_seq));
        }
        let view_key = relating
            .new_view
            .as_ref()
            .map(|(_, person, _)| DocumentKey::View(person.clone()));
        let mut unit = Unit {
            dossier,
            at,
            relation: Some(&relating.edit),
            new_document: None,
            changes: Vec::new(),
            audit: std::slice::from_ref(&relating.audit),
        };
        if let (Some((id, _, bytes)), Some(key)) = (&relating.new_view, &view_key) {
            unit.new_document = Some((*id, key, bytes.as_slice()));
        }
        if let (Some((id, _, _)), Some((_, new, after))) = (&locked, &edited) {
            unit.changes
                .push((*id, *after, new.iter().map(Change::raw_bytes).collect()));
        }
        let seqs = self
            .store
            .commit_unit(&unit)
            .await
            .map_err(HubError::from)?;
        if let (Some((_, slot, inner)), Some((fork, _, _))) = (locked.as_mut(), edited) {
            inner.doc = fork;
            inner.last_seq = seqs[0];
            self.fan_out(slot, inner, None);
        }
        drop(locked);
        // Only what this change made is taken into memory: a view replaced meanwhile by a
        // record batch keeps its new id.
        if let (Some((id, _, _)), Some(key)) = (&relating.new_view, &view_key) {
            self.by_document.write().insert(*id, (dossier, key.clone()));
        }
        let entry = {
            let mut dossiers = self.dossiers.write();
            let entry = dossiers.entry(dossier).or_insert(relating.entry.clone());
            entry.rel = relating.entry.rel.clone();
            if let (Some((id, _, _)), Some(key)) = (&relating.new_view, view_key) {
                entry.documents.insert(key, *id);
            }
            entry.clone()
        };
        self.enforce(Some(dossier)).await;
        if relating.new_view.is_some() {
            self.refresh_views(dossier).await?;
        }
        Ok(entry)
    }
}
