//! A live connection as the hub sees it: who is connected, the peer id bound at `join` and the
//! alias other peers see instead of it, an outbox bounded in bytes (a reader that does not keep
//! up is closed rather than buffered without end, I7), its ephemeral budget, and the refusals it
//! met (each document's first one audited at once, the rest counted and audited as one row when
//! the connection ends).

use parking_lot::Mutex as StdMutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use regie_core::id::{DocumentKey, DossierId};
use regie_core::principal::Principal;
use regie_sync_protocol::{DocumentId, Message, PeerId, encode};
use tokio::sync::{mpsc, watch};

use super::limits::{TokenBucket, ephemeral_bucket};

/// Frames queued for one connection, whatever their size.
const OUTBOX_FRAMES: usize = 4096;
/// Documents whose refusals one connection counts separately; beyond, they share one count.
const REFUSALS_TRACKED: usize = 4096;

/// A connection's identity inside the hub.
pub type SessionId = u64;

/// Refusals of one document on one connection after the first (which was audited at once).
#[derive(Debug)]
pub(super) struct Refusals {
    pub(super) dossier: DossierId,
    pub(super) key: DocumentKey,
    pub(super) reason: &'static str,
    pub(super) more: u32,
}

/// A live connection as the hub sees it.
pub struct SessionHandle {
    /// Who is connected.
    pub principal: Arc<Principal>,
    /// The peer id bound at `join`.
    pub peer: PeerId,
    /// What other peers see as this connection's sender id: peer ids are never revealed, so
    /// none can be learned and squatted.
    pub alias: PeerId,
    /// The client's storage id, when it has storage.
    pub storage_id: Option<String>,
    outbox: mpsc::Sender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    outbox_limit: usize,
    kill: watch::Sender<Option<String>>,
    /// Documents this session is syncing.
    pub(super) docs: StdMutex<HashSet<DocumentId>>,
    /// Ephemeral messages this connection may still have relayed.
    pub(super) ephemeral: StdMutex<TokenBucket>,
    pub(super) refusals: StdMutex<HashMap<DocumentId, Refusals>>,
    /// Documents whose sync answer this session is owed (coalesced, see `Hub::answer_owed`).
    pub(super) owed: StdMutex<Vec<DocumentId>>,
}

/// The receiving end of a connection's outbox, drained by the connection's writer.
pub struct Outbox {
    frames: mpsc::Receiver<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    kill: watch::Receiver<Option<String>>,
}

impl Outbox {
    /// The next frame to send, or `Err(reason)` once the connection is to be closed, or `None`
    /// when the hub let go of it.
    pub async fn next(&mut self) -> Option<Result<Vec<u8>, String>> {
        tokio::select! {
            biased;
            reason = Self::killed(&mut self.kill) => Some(Err(reason)),
            frame = self.frames.recv() => frame.map(Ok),
        }
    }

    /// Completes when the connection is to be closed, with the reason.
    pub async fn closed(&mut self) -> String {
        Self::killed(&mut self.kill).await
    }

    async fn killed(kill: &mut watch::Receiver<Option<String>>) -> String {
        let reason = kill
            .wait_for(Option::is_some)
            .await
            .map(|r| r.clone().unwrap_or_default());
        match reason {
            Ok(reason) => reason,
            // The handle is gone: nothing will ever ask to close, so never complete.
            Err(_) => std::future::pending().await,
        }
    }

    /// Marks a frame of `len` bytes as written to the socket.
    pub fn sent(&self, len: usize) {
        self.queued.fetch_sub(len, Ordering::Relaxed);
    }
}

impl SessionHandle {
    /// A handle for a freshly joined connection and the outbox its writer drains; at most
    /// `outbox_limit` bytes wait in it (one larger frame may, alone).
    pub fn new(
        principal: Arc<Principal>,
        peer: PeerId,
        storage_id: Option<String>,
        outbox_limit: usize,
    ) -> (Self, Outbox) {
        let (tx, rx) = mpsc::channel(OUTBOX_FRAMES);
        let queued = Arc::new(AtomicUsize::new(0));
        let (kill, kill_rx) = watch::channel(None);
        let alias = PeerId::new(format!("peer-{}", uuid::Uuid::new_v4().simple()));
        let handle = SessionHandle {
            principal,
            peer,
            alias,
            storage_id,
            outbox: tx,
            queued: queued.clone(),
            outbox_limit,
            kill,
            docs: StdMutex::new(HashSet::new()),
            ephemeral: StdMutex::new(ephemeral_bucket()),
            refusals: StdMutex::new(HashMap::new()),
            owed: StdMutex::new(Vec::new()),
        };
        let outbox = Outbox {
            frames: rx,
            queued,
            kill: kill_rx,
        };
        (handle, outbox)
    }

    /// Queues a message; a client too slow to drain its queue is disconnected rather than
    /// allowed to hold memory or up everyone else's fan-out.
    pub fn send(&self, message: &Message) {
        let frame = encode(message);
        let len = frame.len();
        let before = self.queued.fetch_add(len, Ordering::Relaxed);
        if before > 0 && before + len > self.outbox_limit {
            crate::metrics::limit_refused("max_outbox_bytes");
            self.queued.fetch_sub(len, Ordering::Relaxed);
            self.close(format!(
                "too slow: more than {} MiB wait to be sent; reconnect to resume",
                self.outbox_limit / (1024 * 1024)
            ));
            return;
        }
        match self.outbox.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                crate::metrics::limit_refused("outbox_frames");
                self.queued.fetch_sub(len, Ordering::Relaxed);
                self.close("too slow: the outgoing queue is full; reconnect to resume".into());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued.fetch_sub(len, Ordering::Relaxed);
            }
        }
    }

    /// Asks the connection to send an `error` with `reason` and close, dropping what waits in
    /// its outbox. The first reason wins.
    pub fn close(&self, reason: String) {
        self.kill.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// Completes once the connection is asked to close.
    pub async fn closed(&self) {
        let mut kill = self.kill.subscribe();
        // The sender lives in `self`, so waiting cannot fail.
        let _ = kill.wait_for(Option::is_some).await;
    }

    /// Marks `doc`'s sync answer as owed to this session.
    pub(super) fn owe(&self, doc: DocumentId) {
        let mut owed = self.owed.lock();
        if !owed.contains(&doc) {
            owed.push(doc);
        }
    }

    /// Bytes waiting in the outbox.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Records a refusal of `doc`; true when it is the first on this connection and must be
    /// audited now, false when it was only counted.
    pub(super) fn first_refusal(
        &self,
        doc: DocumentId,
        dossier: DossierId,
        key: &DocumentKey,
        reason: &'static str,
    ) -> bool {
        let mut refusals = self.refusals.lock();
        if let Some(r) = refusals.get_mut(&doc) {
            r.more = r.more.saturating_add(1);
            return false;
        }
        if refusals.len() >= REFUSALS_TRACKED {
            // Audited each: a connection probing this many documents is worth every row.
            return true;
        }
        refusals.insert(
            doc,
            Refusals {
                dossier,
                key: key.clone(),
                reason,
                more: 0,
            },
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regie_core::principal::{Claims, Role};

    fn handle(limit: usize) -> (SessionHandle, Outbox) {
        let principal = Principal::from_claims(&Claims {
            sub: "sanne".into(),
            role: Role::Resident,
            district: None,
            team: None,
            org: None,
            person: Some("p-sanne".into()),
            citywide: false,
        })
        .expect("a resident");
        SessionHandle::new(Arc::new(principal), PeerId::new("p"), None, limit)
    }

    fn bulky(bytes: usize) -> Message {
        Message::Error {
            message: "x".repeat(bytes),
        }
    }

    #[tokio::test]
    async fn a_reader_that_does_not_keep_up_is_closed_once_its_outbox_holds_the_limit() {
        let (handle, mut outbox) = handle(4096);
        for _ in 0..3 {
            handle.send(&bulky(1000));
        }
        assert!(handle.queued_bytes() > 3000);
        handle.send(&bulky(2000));
        let Some(Err(reason)) = outbox.next().await else {
            panic!("the connection is told to close first");
        };
        assert!(reason.starts_with("too slow"), "{reason}");
        assert!(handle.queued_bytes() <= 4096);
    }

    #[tokio::test]
    async fn one_frame_larger_than_the_limit_passes_when_nothing_waits() {
        let (handle, mut outbox) = handle(1024);
        handle.send(&bulky(5000));
        let Some(Ok(frame)) = outbox.next().await else {
            panic!("the frame is sent");
        };
        outbox.sent(frame.len());
        assert_eq!(handle.queued_bytes(), 0);
    }

    #[test]
    fn repeated_refusals_of_a_document_are_audited_once_and_counted() {
        let (handle, _outbox) = handle(1024);
        let doc = DocumentId::from_url("automerge:2VzPLXwa4R41PB944FYJS46nvFdj").expect("id");
        let dossier: DossierId = "00000000-0000-4000-8000-000000000001".parse().expect("id");
        assert!(handle.first_refusal(doc, dossier, &DocumentKey::Record, "not_in_audience"));
        for _ in 0..9 {
            assert!(!handle.first_refusal(doc, dossier, &DocumentKey::Record, "not_in_audience"));
        }
        assert_eq!(handle.refusals.lock()[&doc].more, 9);
    }
}
