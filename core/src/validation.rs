//! Validated writes (I2): given a batch of incoming changes already applied to a *fork* of a
//! document, [`check_batch`] decides whether the batch may be merged. Every operation of every
//! new change is located (its path from the root) and put to the policy as
//! [`Action::WritePath`]; then the fork's whole state is checked against the kind's schema.
//! One forbidden operation rejects the whole batch, because Automerge changes are hash-linked
//! and a later change cannot be kept without the earlier ones.

use automerge::legacy::{Key, ObjectId};
use automerge::{Automerge, Change, ChangeHash};
use serde::Serialize;
use time::OffsetDateTime;

use crate::document::{self, SchemaError};
use crate::id::DocumentKey;
use crate::path::{Path, Segment, exid_path, object_path};
use crate::policy::{Action, Decision, DenyReason, decide};
use crate::principal::Principal;
use crate::relationship::Relationships;

/// Why a batch was rejected; carried to the sender in a `rejected` message and to quarantine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The stable reason code (`path_reserved`, `read_only_access`, `schema`, `malformed_change`…).
    pub code: &'static str,
    /// Where in the document, when one path is to blame.
    pub path: Option<String>,
    /// The change that carried the first offending operation, if one did.
    #[serde(skip)]
    pub change: Option<ChangeHash>,
    /// A human-readable explanation without document content.
    pub detail: String,
}

impl Rejection {
    fn denied(reason: DenyReason, path: Option<&Path>, change: Option<ChangeHash>) -> Self {
        Rejection {
            code: reason.code(),
            path: path.map(ToString::to_string),
            change,
            detail: match path {
                Some(p) => format!("writing {p} is not allowed: {}", reason.code()),
                None => format!("writing this document is not allowed: {}", reason.code()),
            },
        }
    }

    fn schema(e: SchemaError) -> Self {
        Rejection {
            code: "schema",
            path: Some(e.path.to_string()),
            change: None,
            detail: e.to_string(),
        }
    }
}

pub use crate::path::Touched;

/// Checks `new_changes` (already applied to `fork`) written by `who` into document `key` of the
/// dossier `rel` at `now`. `Ok` means the batch may be merged, and holds the paths it touched.
pub fn check_batch(
    who: &Principal,
    key: &DocumentKey,
    rel: &Relationships,
    now: OffsetDateTime,
    fork: &Automerge,
    new_changes: &[Change],
) -> Result<Touched, Rejection> {
    if new_changes.is_empty() {
        return Ok(Touched::new());
    }
    if let Decision::Deny(reason) = decide(who, Action::Write(key), rel, now) {
        return Err(Rejection::denied(
            reason,
            None,
            new_changes.first().map(Change::hash),
        ));
    }
    let touched = locate(fork, new_changes, |hash, path| {
        match decide(who, Action::WritePath(key, path), rel, now) {
            Decision::Deny(reason) => Err(Rejection::denied(reason, Some(path), Some(hash))),
            Decision::Allow { .. } => Ok(()),
        }
    })?;
    // What the schema must look at again: everything else was valid before the batch.
    document::validate_paths(key.kind(), fork, &touched).map_err(Rejection::schema)?;
    if *key == DocumentKey::Record && !rel.restricted.is_empty() {
        for (path, subjects) in crate::projection::touched_entry_subjects(fork, &touched) {
            if let Decision::Deny(reason) = decide(who, Action::RecordAbout(&subjects), rel, now) {
                return Err(Rejection::denied(
                    reason,
                    Some(&path),
                    new_changes.first().map(Change::hash),
                ));
            }
        }
    }
    Ok(touched)
}

/// The paths `changes` (already applied to `doc`) touched, for a batch no policy has to check
/// (the server's own edits). A change whose object the document lacks touches nothing.
pub fn touched_paths(doc: &Automerge, changes: &[Change]) -> Touched {
    locate(doc, changes, |_, _| Ok(())).unwrap_or_default()
}

/// Locates every operation of `changes` in `doc`, hands each written path to `allow`, and
/// returns what the batch touched.
fn locate(
    doc: &Automerge,
    changes: &[Change],
    mut allow: impl FnMut(ChangeHash, &Path) -> Result<(), Rejection>,
) -> Result<Touched, Rejection> {
    // Each object's path is looked up once per batch (a typed sentence is one op per
    // character, all in the same text object).
    let mut object_paths: std::collections::HashMap<ObjectId, Option<Path>> =
        std::collections::HashMap::new();
    let mut touched = Touched::new();
    for change in changes {
        let hash = change.hash();
        let expanded = change.decode();
        let start = expanded.start_op.get();
        for (i, op) in expanded.operations.iter().enumerate() {
            let base = object_paths
                .entry(op.obj.clone())
                .or_insert_with(|| object_path(doc, &op.obj))
                .clone();
            let Some(mut path) = base else {
                return Err(Rejection {
                    code: "malformed_change",
                    path: None,
                    change: Some(hash),
                    detail: "an operation refers to an object the document does not have".into(),
                });
            };
            if let Key::Map(k) = &op.key {
                path = path.child(Segment::Key(k.to_string()));
            }
            allow(hash, &path)?;
            // A new object inserted into a list is checked at its own index.
            let check = match (&op.action, op.insert) {
                (automerge::legacy::OpType::Make(_), true) => doc
                    .import_obj(&format!("{}@{}", start + i as u64, expanded.actor_id))
                    .ok()
                    .and_then(|id| exid_path(doc, &id))
                    .unwrap_or(path),
                _ => path,
            };
            touched.insert(check);
        }
    }
    Ok(touched)
}

#[cfg(test)]
mod tests;
