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

/// Checks `new_changes` (already applied to `fork`) written by `who` into document `key` of the
/// dossier `rel` at `now`. `Ok` means the batch may be merged.
pub fn check_batch(
    who: &Principal,
    key: &DocumentKey,
    rel: &Relationships,
    now: OffsetDateTime,
    fork: &Automerge,
    new_changes: &[Change],
) -> Result<(), Rejection> {
    if new_changes.is_empty() {
        return Ok(());
    }
    if let Decision::Deny(reason) = decide(who, Action::Write(key), rel, now) {
        return Err(Rejection::denied(
            reason,
            None,
            new_changes.first().map(Change::hash),
        ));
    }
    // Each object's path is looked up once per batch (a typed sentence is one op per
    // character, all in the same text object).
    let mut object_paths: std::collections::HashMap<ObjectId, Option<Path>> =
        std::collections::HashMap::new();
    // What the schema must look at again: everything else was valid before the batch.
    let mut touched: std::collections::HashSet<Path> = std::collections::HashSet::new();
    for change in new_changes {
        let hash = change.hash();
        let expanded = change.decode();
        let start = expanded.start_op.get();
        for (i, op) in expanded.operations.iter().enumerate() {
            let base = object_paths
                .entry(op.obj.clone())
                .or_insert_with(|| object_path(fork, &op.obj))
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
            if let Decision::Deny(reason) = decide(who, Action::WritePath(key, &path), rel, now) {
                return Err(Rejection::denied(reason, Some(&path), Some(hash)));
            }
            // A new object inserted into a list is checked at its own index.
            let check = match (&op.action, op.insert) {
                (automerge::legacy::OpType::Make(_), true) => fork
                    .import_obj(&format!("{}@{}", start + i as u64, expanded.actor_id))
                    .ok()
                    .and_then(|id| exid_path(fork, &id))
                    .unwrap_or(path),
                _ => path,
            };
            touched.insert(check);
        }
    }
    document::validate_paths(key.kind(), fork, &touched).map_err(Rejection::schema)
}

#[cfg(test)]
mod tests;
