//! Domain operations, apart from HTTP: used alike by handlers, sweeps and the demo. Each one
//! settles the caller's standing with the policy before it looks anything up (so an outsider
//! gets one answer whether or not the dossier exists), validates its input, and commits its SQL
//! change with the audit row in one transaction before memory and devices follow (I5, I8).

use std::sync::Arc;

use regie_core::document::{self, PersonRecord};
use regie_core::id::{DocumentKey, DossierId, PersonId, UserId};
use regie_core::policy::{Action, Decision, decide};
use regie_core::principal::Principal;
use regie_sync_protocol::DocumentId;
use time::OffsetDateTime;

use crate::audit::{AuditAction, AuditEvent};
use crate::hub::{DocumentEdit, DossierEntry, Hub, HubError, Relating};
use crate::storage::{RelationEdit, StorageError};

/// Why an operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The dossier (or what was asked of it) does not exist, or the caller has no standing to
    /// learn whether it does: the two look the same.
    #[error("not found")]
    NotFound,
    /// The caller has standing, but the thing named in the request is not there.
    #[error("{message}")]
    Missing {
        /// Stable code, e.g. `not_assigned`.
        code: &'static str,
        /// What to do.
        message: &'static str,
    },
    /// The request itself is wrong.
    #[error("{message}")]
    Invalid {
        /// Stable code.
        code: &'static str,
        /// What to do.
        message: String,
    },
    /// The request conflicts with the state of what it names (e.g. decided already).
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// What to do.
        message: String,
    },
    /// The caller has standing, but the policy refuses this particular request for a reason
    /// the caller may know (e.g. R16's ages).
    #[error("refused: {0}")]
    Refused(&'static str),
    /// The hub or the store failed, or a server-written document would break its schema.
    #[error(transparent)]
    Hub(#[from] HubError),
}

/// A [`DomainError::Invalid`]: the request itself is wrong (`code`), with what to do.
pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        code,
        message: message.into(),
    }
}

impl From<StorageError> for DomainError {
    fn from(e: StorageError) -> Self {
        DomainError::Hub(HubError::Storage(e))
    }
}

/// The dossier, if `who` may do `action` on it; otherwise [`DomainError::NotFound`], exactly as
/// for a dossier that does not exist.
pub async fn standing(
    hub: &Hub,
    who: &Principal,
    dossier: DossierId,
    action: Action<'_>,
    at: OffsetDateTime,
) -> Result<DossierEntry, DomainError> {
    let entry = hub
        .current_dossier(dossier)
        .await?
        .ok_or(DomainError::NotFound)?;
    allowed(who, &entry, action, at)?;
    Ok(entry)
}

fn allowed(
    who: &Principal,
    entry: &DossierEntry,
    action: Action<'_>,
    at: OffsetDateTime,
) -> Result<(), DomainError> {
    match decide(who, action, &entry.rel, at) {
        Decision::Allow { .. } => Ok(()),
        Decision::Deny(_) => Err(DomainError::NotFound),
    }
}

/// The audit row of a change to a dossier's relationships or the rows around them.
pub fn relate_event(
    who: &Principal,
    dossier: DossierId,
    at: OffsetDateTime,
    what: String,
) -> AuditEvent {
    let mut ev = AuditEvent::new(
        at,
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::Relate,
    );
    ev.dossier = Some(dossier.to_string());
    ev.detail = Some(what);
    ev
}

/// `meta`'s list of assigned workers, set to the one `entry` holds.
fn meta_lists(entry: &DossierEntry) -> (DocumentKey, DocumentEdit) {
    let assigned = entry.rel.assigned.clone();
    (
        DocumentKey::Meta,
        Box::new(move |tx| document::set_assigned(tx, &assigned)),
    )
}

/// Assigns `user` to the dossier (a functional admin, or the team's manager); `meta` lists them.
pub async fn assign(
    hub: &Hub,
    who: &Principal,
    dossier: DossierId,
    user: UserId,
    at: OffsetDateTime,
) -> Result<(), DomainError> {
    standing(hub, who, dossier, Action::ManageAssignments, at).await?;
    hub.relate::<DomainError>(dossier, at, |entry| {
        allowed(who, entry, Action::ManageAssignments, at)?;
        if entry.rel.is_assigned(&user) {
            return Ok(None);
        }
        let mut entry = entry.clone();
        Arc::make_mut(&mut entry.rel).assigned.push(user.clone());
        Ok(Some(Relating {
            audit: vec![relate_event(who, dossier, at, format!("assigned {user}"))],
            edits: vec![RelationEdit::Assign(user)],
            edit: Some(meta_lists(&entry)),
            entry,
            new_document: None,
        }))
    })
    .await?;
    Ok(())
}

/// Ends the assignment of `user` (as the request names it, read only once the caller's standing
/// is settled); their devices are told `revoked`.
pub async fn unassign(
    hub: &Hub,
    who: &Principal,
    dossier: DossierId,
    user: &str,
    at: OffsetDateTime,
) -> Result<(), DomainError> {
    standing(hub, who, dossier, Action::ManageAssignments, at).await?;
    let user: UserId = user.parse().map_err(|_| DomainError::Invalid {
        code: "bad_request",
        message: "not a user id".into(),
    })?;
    hub.relate::<DomainError>(dossier, at, |entry| {
        allowed(who, entry, Action::ManageAssignments, at)?;
        if !entry.rel.is_assigned(&user) {
            return Err(DomainError::Missing {
                code: "not_assigned",
                message: "that user is not assigned to this dossier",
            });
        }
        let mut entry = entry.clone();
        Arc::make_mut(&mut entry.rel)
            .assigned
            .retain(|u| u != &user);
        Ok(Some(Relating {
            audit: vec![relate_event(who, dossier, at, format!("unassigned {user}"))],
            edits: vec![RelationEdit::Unassign(user)],
            edit: Some(meta_lists(&entry)),
            entry,
            new_document: None,
        }))
    })
    .await?;
    Ok(())
}

/// Links a person of the dossier to their resident account (an assigned worker or a functional
/// admin), creating `view/<person>` projected from `record`; returns the view's id.
pub async fn link_resident(
    hub: &Hub,
    who: &Principal,
    dossier: DossierId,
    person: PersonId,
    at: OffsetDateTime,
) -> Result<DocumentId, DomainError> {
    let entry = standing(hub, who, dossier, Action::ManageResidents, at).await?;
    if !entry.persons.contains(&person) {
        return Err(DomainError::Invalid {
            code: "bad_request",
            message: "that person is not part of this dossier".into(),
        });
    }
    // What the view shows of the person comes from `meta`, read before the change is planned.
    let record = match entry.documents.get(&DocumentKey::Meta) {
        Some(&meta) => hub
            .snapshot(meta)
            .await?
            .and_then(|doc| document::persons(&doc).into_iter().find(|p| p.id == person)),
        None => None,
    };
    let record = record.unwrap_or(PersonRecord {
        id: person.clone(),
        name: String::new(),
        birth_date: None,
        gezag: Vec::new(),
    });
    let key = DocumentKey::View(person.clone());
    let after = hub
        .relate::<DomainError>(dossier, at, |entry| {
            allowed(who, entry, Action::ManageResidents, at)?;
            if entry.rel.is_linked(&person) && entry.documents.contains_key(&key) {
                return Ok(None);
            }
            let mut entry = entry.clone();
            let new_document = (!entry.documents.contains_key(&key)).then(|| {
                let id = DocumentId::new_random();
                entry.documents.insert(key.clone(), id);
                (id, key.clone(), document::new_view(&record).save())
            });
            if !entry.rel.is_linked(&person) {
                Arc::make_mut(&mut entry.rel)
                    .linked_persons
                    .push(person.clone());
            }
            Ok(Some(Relating {
                new_document,
                ..Relating::rows(
                    vec![RelationEdit::Link(person.clone())],
                    entry,
                    relate_event(who, dossier, at, format!("linked resident {person}")),
                )
            }))
        })
        .await?;
    after
        .documents
        .get(&key)
        .copied()
        .ok_or(DomainError::NotFound)
}

/// Removes the resident link of `person` (as the request names it, read only once the caller's
/// standing is settled); their devices are told `revoked`.
pub async fn unlink_resident(
    hub: &Hub,
    who: &Principal,
    dossier: DossierId,
    person: &str,
    at: OffsetDateTime,
) -> Result<(), DomainError> {
    standing(hub, who, dossier, Action::ManageResidents, at).await?;
    let person: PersonId = person.parse().map_err(|_| DomainError::Invalid {
        code: "bad_request",
        message: "not a person id".into(),
    })?;
    hub.relate::<DomainError>(dossier, at, |entry| {
        allowed(who, entry, Action::ManageResidents, at)?;
        if !entry.rel.is_linked(&person) {
            return Err(DomainError::Missing {
                code: "not_linked",
                message: "that person is not linked",
            });
        }
        let mut entry = entry.clone();
        Arc::make_mut(&mut entry.rel)
            .linked_persons
            .retain(|p| p != &person);
        Ok(Some(Relating::rows(
            vec![RelationEdit::Unlink(person.clone())],
            entry,
            relate_event(who, dossier, at, format!("unlinked resident {person}")),
        )))
    })
    .await?;
    Ok(())
}
