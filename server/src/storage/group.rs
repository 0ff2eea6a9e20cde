//! Group commit (I4 to the platter, cheaply): with `synchronous = FULL` every commit waits for
//! the disk, so the write path does not commit alone. Each batch of changes (with its audit row)
//! is handed to one committer task, which takes every batch waiting at that moment — from any
//! document and connection — into one transaction, commits it once, and only then answers each
//! batch with its sequence number. A failed group acknowledges nothing; its batches are then
//! tried one by one, so one bad batch never fails the others.

use std::sync::Arc;

use regie_sync_protocol::DocumentId;
use sqlx::AnyPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::dialect::Dialect;
use super::keys::Keys;
use super::{Chain, Result, StorageError};
use crate::audit::AuditEvent;

/// At most this many batches share one commit.
const GROUP_MAX: usize = 256;

/// A batch waiting for the next group commit.
pub(super) struct Pending {
    pub(super) doc: DocumentId,
    pub(super) after_seq: i64,
    pub(super) changes: Vec<Vec<u8>>,
    pub(super) audit: Option<AuditEvent>,
    pub(super) done: oneshot::Sender<Result<i64>>,
}

/// What a test observes of each commit: the batches it made durable, in order.
pub type CommitObserver = Arc<dyn Fn(&[(DocumentId, i64)]) + Send + Sync>;

/// Starts the committer; it ends when every sender is gone.
pub(super) fn start(
    pool: AnyPool,
    dialect: Dialect,
    tail: Arc<Mutex<Vec<u8>>>,
    keys: Arc<Keys>,
    origin: String,
    observer: Option<CommitObserver>,
) -> mpsc::UnboundedSender<Pending> {
    let (send, mut receive) = mpsc::unbounded_channel::<Pending>();
    tokio::spawn(async move {
        while let Some(first) = receive.recv().await {
            let mut group = vec![first];
            while group.len() < GROUP_MAX {
                match receive.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            match commit(
                &pool,
                dialect,
                &tail,
                &keys,
                &origin,
                &group,
                observer.as_ref(),
            )
            .await
            {
                Ok(seqs) => {
                    for (pending, seq) in group.into_iter().zip(seqs) {
                        let _ = pending.done.send(Ok(seq));
                    }
                }
                Err(e) if group.len() == 1 => {
                    let _ = group.pop().expect("one").done.send(Err(e));
                }
                Err(e) => {
                    tracing::warn!(error = %e, batches = group.len(), "a group commit failed; committing its batches one by one");
                    for pending in group {
                        let alone = commit(
                            &pool,
                            dialect,
                            &tail,
                            &keys,
                            &origin,
                            std::slice::from_ref(&pending),
                            observer.as_ref(),
                        )
                        .await
                        .map(|seqs| seqs[0]);
                        let _ = pending.done.send(alone);
                    }
                }
            }
        }
    });
    send
}

/// Commits `group` in one transaction; returns each batch's last sequence number.
async fn commit(
    pool: &AnyPool,
    dialect: Dialect,
    tail: &Mutex<Vec<u8>>,
    keys: &Keys,
    origin: &str,
    group: &[Pending],
    observer: Option<&CommitObserver>,
) -> Result<Vec<i64>> {
    let mut tail = tail.lock().await;
    let mut tx = pool.begin().await?;
    let mut chain = Chain::new(dialect, &tail);
    let mut seqs = Vec::with_capacity(group.len());
    for pending in group {
        let changes: Vec<&[u8]> = pending.changes.iter().map(Vec::as_slice).collect();
        // Several instances (issue 17): appended only after the sequence the writer validated
        // against, with a feed entry for the other instances (`feed.rs`).
        seqs.push(
            super::feed::append_changes(
                &mut tx,
                dialect,
                keys,
                origin,
                pending.doc,
                pending.after_seq,
                &changes,
            )
            .await?,
        );
        if let Some(ev) = &pending.audit {
            chain.append(&mut tx, ev).await?;
        }
    }
    tx.commit().await?;
    chain.commit_to(&mut tail);
    if let Some(observe) = observer {
        let made: Vec<(DocumentId, i64)> = group
            .iter()
            .map(|p| p.doc)
            .zip(seqs.iter().copied())
            .collect();
        observe(&made);
    }
    Ok(seqs)
}

/// The committer is gone: the store is shutting down.
pub(super) fn gone() -> StorageError {
    StorageError::Database(sqlx::Error::PoolClosed)
}
