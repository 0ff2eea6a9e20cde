//! Rebase after `rejected` (I2, issue 5): the server refused a batch whole and will refuse every
//! later change built on it, so the device sets its local document aside, resets the document to
//! the server's version (the last heads the server acknowledged), and replays the local diff
//! since then as new changes, patch by patch, asking the policy about each one's path. Patches the
//! policy refuses are dropped and reported with the reason; if the replay as a whole still fails
//! the server's batch check (e.g. a schema limit), nothing is replayed and that is reported. The
//! new changes come from a fresh actor, so they never collide with the quarantined ones.

use automerge::transaction::{Transactable, Transaction};
use automerge::{Automerge, ChangeHash, ObjId, Patch, PatchAction, Prop, ROOT, ReadDoc, Value};
use regie_core::path::{Path, Segment};
use regie_core::policy::{Action, Decision, decide};
use regie_core::relationship::Relationships;
use regie_core::validation::check_batch;

use crate::client::{Client, now};
use crate::error::Result;
use crate::store::{DocumentInfo, DocumentWrite, RejectionRecord};

/// The outcome of replaying a local diff onto the server's version.
pub(crate) struct Replay {
    /// The rebased document.
    pub(crate) doc: Automerge,
    /// Patches replayed.
    pub(crate) replayed: usize,
    /// Patches dropped: `path: reason`.
    pub(crate) dropped: Vec<String>,
}

fn segment(prop: &Prop) -> Segment {
    match prop {
        Prop::Map(k) => Segment::Key(k.clone()),
        Prop::Seq(i) => Segment::Index(*i),
    }
}

/// The path a patch writes, in the policy's terms (as `check_batch` locates an operation: the
/// object's path plus the map key; list and text positions stop at the list or text).
fn patch_path(patch: &Patch) -> Option<Path> {
    let mut path = Path(patch.path.iter().map(|(_, p)| segment(p)).collect());
    match &patch.action {
        PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => {
            path = path.child(Segment::Key(key.clone()));
        }
        PatchAction::Increment {
            prop: Prop::Map(key),
            ..
        } => path = path.child(Segment::Key(key.clone())),
        PatchAction::Conflict { .. } | PatchAction::Mark { .. } => return None,
        _ => {}
    }
    Some(path)
}

/// The object in `tx` at the end of `patch.path`.
fn locate(tx: &Transaction<'_>, patch: &Patch) -> Option<ObjId> {
    let mut obj = ROOT;
    for (_, prop) in &patch.path {
        match tx.get(&obj, prop.clone()).ok()?? {
            (Value::Object(_), id) => obj = id,
            _ => return None,
        }
    }
    Some(obj)
}

fn put_value(
    tx: &mut Transaction<'_>,
    obj: &ObjId,
    at: Prop,
    value: &Value<'_>,
    insert: bool,
) -> Result<(), automerge::AutomergeError> {
    match (value, at) {
        (Value::Object(kind), Prop::Map(k)) => tx.put_object(obj, k, *kind).map(drop),
        (Value::Object(kind), Prop::Seq(i)) if insert => tx.insert_object(obj, i, *kind).map(drop),
        (Value::Object(kind), Prop::Seq(i)) => tx.put_object(obj, i, *kind).map(drop),
        (Value::Scalar(s), Prop::Map(k)) => tx.put(obj, k, s.as_ref().clone()),
        (Value::Scalar(s), Prop::Seq(i)) if insert => tx.insert(obj, i, s.as_ref().clone()),
        (Value::Scalar(s), Prop::Seq(i)) => tx.put(obj, i, s.as_ref().clone()),
    }
}

/// Applies one patch to `tx`; false if its object is not there.
fn apply(tx: &mut Transaction<'_>, patch: &Patch) -> Result<bool, automerge::AutomergeError> {
    let Some(obj) = locate(tx, patch) else {
        return Ok(false);
    };
    match &patch.action {
        PatchAction::PutMap { key, value, .. } => {
            put_value(tx, &obj, Prop::Map(key.clone()), &value.0, false)?;
        }
        PatchAction::PutSeq { index, value, .. } => {
            put_value(tx, &obj, Prop::Seq(*index), &value.0, false)?;
        }
        PatchAction::Insert { index, values } => {
            for (i, (value, _, _)) in values.iter().enumerate() {
                put_value(tx, &obj, Prop::Seq(index + i), value, true)?;
            }
        }
        PatchAction::SpliceText { index, value, .. } => {
            tx.splice_text(&obj, *index, 0, &value.make_string())?;
        }
        PatchAction::DeleteMap { key } => tx.delete(&obj, key.as_str())?,
        PatchAction::DeleteSeq { index, length } => {
            tx.splice(
                &obj,
                *index,
                *length as isize,
                std::iter::empty::<automerge::ScalarValue>(),
            )?;
        }
        PatchAction::Increment { prop, value } => tx.increment(&obj, prop.clone(), *value)?,
        PatchAction::Conflict { .. } | PatchAction::Mark { .. } => {}
    }
    Ok(true)
}

/// Replays `local`'s edits since `server_heads` onto the server's version of the document, as
/// `who` under `rel` at `now` would be allowed to make them.
pub(crate) fn replay(
    local: &Automerge,
    server_heads: &[ChangeHash],
    who: &regie_core::principal::Principal,
    key: &regie_core::id::DocumentKey,
    rel: &Relationships,
    at: time::OffsetDateTime,
) -> Result<Replay> {
    let server_version = local.fork_at(server_heads)?;
    let mut doc = server_version.clone();
    doc.set_actor(automerge::ActorId::random());
    let patches = local.diff(server_heads, &local.get_heads());
    let (mut replayed, mut dropped) = (0, Vec::new());
    {
        let mut tx = doc.transaction();
        for patch in &patches {
            let Some(path) = patch_path(patch) else {
                continue;
            };
            if let Decision::Deny(reason) = decide(who, Action::WritePath(key, &path), rel, at) {
                dropped.push(format!("{path}: {}", reason.code()));
                continue;
            }
            match apply(&mut tx, patch) {
                Ok(true) => replayed += 1,
                Ok(false) => dropped.push(format!("{path}: its object was dropped")),
                Err(e) => dropped.push(format!("{path}: does not apply ({e})")),
            }
        }
        tx.commit();
    }
    let new = server_version.get_changes_added(&doc);
    if let Err(r) = check_batch(who, key, rel, at, &doc, &new) {
        dropped.push(format!(
            "{}: {} (nothing replayed)",
            r.path.as_deref().unwrap_or("/"),
            r.code
        ));
        return Ok(Replay {
            doc: server_version,
            replayed: 0,
            dropped,
        });
    }
    Ok(Replay {
        doc,
        replayed,
        dropped,
    })
}

impl Client {
    /// Handles `rejected` for one document: replays the permitted local edits onto the
    /// server's version, stores the result in place of the local document (one transaction,
    /// sync state reset), and records what happened. `doc` becomes the rebased document.
    pub(crate) async fn rebase(
        &self,
        info: DocumentInfo,
        doc: &mut Automerge,
        server_heads: &[ChangeHash],
        reason: String,
        detail: Option<String>,
        changes: Vec<String>,
    ) -> Result<RejectionRecord> {
        let who = self.principal().await?;
        let rel = Client::relationships(&who, &info);
        let t = now();
        let outcome = if server_heads.is_empty() {
            // Nothing acknowledged yet: the server's version is fetched again from scratch.
            Replay {
                doc: Automerge::new(),
                replayed: 0,
                dropped: vec!["/: no acknowledged version to replay onto".into()],
            }
        } else {
            replay(doc, server_heads, &who, &info.key, &rel, t)?
        };
        self.store
            .write(
                info.id,
                DocumentWrite {
                    snapshot: Some(outcome.doc.save()),
                    state: Some(None),
                    ..DocumentWrite::default()
                },
            )
            .await?;
        *doc = outcome.doc;
        let record = RejectionRecord {
            at: t,
            document_id: info.id,
            dossier: info.dossier,
            key: info.key,
            reason,
            detail,
            changes,
            replayed: outcome.replayed,
            dropped: outcome.dropped,
        };
        self.store.record_rejection(&record).await?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests;
