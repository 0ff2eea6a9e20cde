//! The one automerge-repo test peer: a real WebSocket to a running server, local copies of the
//! documents it asked for with their sync states, and every protocol message it received kept
//! in order, so leak tests can scan them. Tests panic on what should not happen; the load
//! generator's measuring device drives a [`Connection`] itself.

use std::collections::HashMap;
use std::time::Duration;

use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, ChangeHash, ReadDoc};
use regie_sync_protocol::{DocumentId, Message, PeerId, decode};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::connection::{ConnectError, Dial, Plain};
use crate::text::{chunk_texts, document_texts};
use crate::wait::PATIENCE;

/// A server that can mint a token for a member of its test cast.
pub trait Cast: Dial {
    /// A token for cast member `who` (e.g. `worker`, `resident`).
    fn token(&self, who: &str) -> String;
}

/// A minimal automerge-repo peer over a real WebSocket.
pub struct Peer {
    conn: Plain,
    /// This peer's id.
    pub id: PeerId,
    /// Local copies with their sync states.
    pub docs: HashMap<DocumentId, (AutoCommit, sync::State)>,
    /// Every protocol message received, in order.
    pub received: Vec<Message>,
    /// Set when the server closed the connection.
    pub closed: bool,
    /// Non-sync messages read while waiting for an acknowledgement, handed out by `settle`.
    stash: Vec<Message>,
}

impl Peer {
    /// Opens `/sync` with `token` and joins. Fails with the HTTP status if the upgrade is refused.
    pub async fn connect(server: &impl Dial, token: &str) -> Result<Peer, u16> {
        let peer = format!("peer-{}", uuid::Uuid::new_v4().simple());
        Self::connect_as(server, token, &peer, None).await
    }

    /// Like [`Peer::connect`] with a chosen peer id and storage id.
    pub async fn connect_as(
        server: &impl Dial,
        token: &str,
        peer: &str,
        storage: Option<&str>,
    ) -> Result<Peer, u16> {
        match Self::try_connect_as(server, token, peer, storage).await {
            Ok(peer) => Ok(peer),
            Err(ConnectError::Refused(status)) => Err(status),
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`Peer::connect`] through yawc, offering permessage-deflate as a browser does.
    pub async fn connect_deflate(server: &impl Dial, token: &str) -> Result<Peer, ConnectError> {
        let peer = PeerId::new(format!("peer-{}", uuid::Uuid::new_v4().simple()));
        let path = format!("/sync?token={token}");
        let conn = Plain::open_deflate(server.socket_addr(), &path, peer, None, PATIENCE).await?;
        Ok(Peer::joined(conn))
    }

    /// Like [`Peer::connect_as`], with every way the server can refuse as a value (a hostile
    /// device in a test keeps trying where an honest one would stop).
    pub async fn try_connect_as(
        server: &impl Dial,
        token: &str,
        peer: &str,
        storage: Option<&str>,
    ) -> Result<Peer, ConnectError> {
        let path = format!("/sync?token={token}");
        let storage = storage.map(str::to_owned);
        let conn = Plain::open(
            server.socket_addr(),
            &path,
            PeerId::new(peer),
            storage,
            PATIENCE,
        )
        .await?;
        Ok(Peer::joined(conn))
    }

    fn joined(conn: Plain) -> Peer {
        Peer {
            id: conn.me.clone(),
            conn,
            docs: HashMap::new(),
            received: Vec::new(),
            closed: false,
            stash: Vec::new(),
        }
    }

    /// Connects as cast member `who`, requests `doc` and waits until its root has `key` (the
    /// document's skeleton has arrived), so the caller can edit it.
    pub async fn open(server: &impl Cast, who: &str, doc: DocumentId, key: &str) -> Peer {
        let mut peer = Peer::connect(server, &server.token(who)).await.unwrap();
        assert!(
            peer.fetch(doc, key).await,
            "{who} did not receive {key} of {doc:?}"
        );
        peer
    }

    /// Requests `doc` and waits until its root has `key`; whether it came in time.
    pub async fn fetch(&mut self, doc: DocumentId, key: &str) -> bool {
        self.request(doc).await;
        self.wait_for(doc, |d| d.get(automerge::ROOT, key).unwrap().is_some())
            .await
    }

    /// Sends a protocol message; a connection the server closed swallows it.
    pub async fn send(&mut self, m: &Message) {
        let _ = self.conn.send(m).await;
    }

    /// Sends bytes as one binary frame, whatever they are.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        let _ = self.conn.send_frame(WsMessage::Binary(bytes.into())).await;
    }

    /// Sends a text frame (not part of the protocol).
    pub async fn send_text(&mut self, text: &str) {
        let _ = self.conn.send_frame(WsMessage::Text(text.into())).await;
    }

    /// The next protocol message, or None on close or after [`PATIENCE`].
    pub async fn next(&mut self) -> Option<Message> {
        self.next_within(PATIENCE).await
    }

    /// The next protocol message, or None on close or after `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Message> {
        loop {
            let frame = match tokio::time::timeout(wait, self.conn.next_frame()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => {
                    self.closed = true;
                    return None;
                }
                Ok(Some(Ok(f))) => f,
            };
            match frame {
                WsMessage::Binary(b) => {
                    let m = decode(&b).expect("server frames decode");
                    // A sync exchange converges in a handful of round trips; thousands mean a loop.
                    assert!(
                        self.received.len() < 5_000,
                        "sync does not converge: {:?}",
                        self.received.last()
                    );
                    self.received.push(m.clone());
                    return Some(m);
                }
                WsMessage::Close(_) => {
                    self.closed = true;
                    return None;
                }
                _ => continue,
            }
        }
    }

    fn target(&self) -> PeerId {
        self.conn.server.clone()
    }

    /// Asks for a document (automerge-repo `request`).
    pub async fn request(&mut self, doc: DocumentId) {
        let (d, st) = self
            .docs
            .entry(doc)
            .or_insert_with(|| (AutoCommit::new(), sync::State::new()));
        let data = d
            .sync()
            .generate_sync_message(st)
            .map(|m| m.encode())
            .unwrap_or_default();
        let m = Message::Request {
            sender_id: self.id.clone(),
            target_id: self.target(),
            document_id: doc,
            data,
        };
        self.send(&m).await;
    }

    /// Sends whatever the document has that the server lacks.
    pub async fn push(&mut self, doc: DocumentId) {
        let target = self.target();
        let (d, st) = self.docs.get_mut(&doc).expect("known document");
        let msg = d.sync().generate_sync_message(st);
        if let Some(m) = msg {
            let m = Message::Sync {
                sender_id: self.id.clone(),
                target_id: target,
                document_id: doc,
                data: m.encode(),
            };
            self.send(&m).await;
        }
    }

    /// Edits a local document, pushes the change and keeps syncing until the server has it or
    /// refuses it; returns the change's hash. Automerge's Bloom filter can wrongly claim the
    /// server already has a change (about 1 in 100); the server then asks for it, and only a
    /// writer that keeps listening answers — so an edit followed by another peer's `wait_for`
    /// could otherwise time out.
    pub async fn edit(
        &mut self,
        doc: DocumentId,
        f: impl FnOnce(&mut AutoCommit),
    ) -> Option<ChangeHash> {
        let (d, _) = self.docs.get_mut(&doc).expect("known document");
        f(d);
        let hash = d.commit();
        self.push(doc).await;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if self.server_has_ours(doc) {
                return hash;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(m) = self.next_within(left).await else {
                return hash;
            };
            match m {
                Message::Sync {
                    document_id, data, ..
                } => self.apply_sync(document_id, &data).await,
                other => {
                    let refused = matches!(
                        other,
                        Message::Rejected { .. }
                            | Message::Error { .. }
                            | Message::DocUnavailable { .. }
                    );
                    self.stash.push(other);
                    if refused {
                        return hash;
                    }
                }
            }
        }
    }

    /// Whether the server's last announced heads of `doc` include all of ours.
    fn server_has_ours(&mut self, doc: DocumentId) -> bool {
        let (d, st) = self.docs.get_mut(&doc).expect("known document");
        let ours = d.get_heads();
        st.their_heads
            .as_ref()
            .is_some_and(|theirs| ours.iter().all(|h| theirs.contains(h)))
    }

    /// The heads of `doc` the server announced last (empty before it announced any): a change
    /// among or below them is committed on the server.
    pub fn server_heads(&self, doc: DocumentId) -> Vec<ChangeHash> {
        self.docs
            .get(&doc)
            .and_then(|(_, st)| st.their_heads.clone())
            .unwrap_or_default()
    }

    /// Applies a sync message from the server and answers it.
    async fn apply_sync(&mut self, document_id: DocumentId, data: &[u8]) {
        let target = self.target();
        let (d, st) = self
            .docs
            .entry(document_id)
            .or_insert_with(|| (AutoCommit::new(), sync::State::new()));
        d.sync()
            .receive_sync_message(st, sync::Message::decode(data).unwrap())
            .unwrap();
        let reply = d.sync().generate_sync_message(st);
        if let Some(reply) = reply {
            let m = Message::Sync {
                sender_id: self.id.clone(),
                target_id: target,
                document_id,
                data: reply.encode(),
            };
            self.send(&m).await;
        }
    }

    /// Handles incoming messages (applying syncs and answering them) until nothing arrives for
    /// `quiet`. Returns the non-sync messages seen. For showing that something does *not*
    /// arrive; to wait for something that will, use [`Peer::wait_for`].
    pub async fn settle(&mut self, quiet: Duration) -> Vec<Message> {
        let mut others = std::mem::take(&mut self.stash);
        while let Some(m) = self.next_within(quiet).await {
            match m {
                Message::Sync {
                    document_id, data, ..
                } => self.apply_sync(document_id, &data).await,
                other => others.push(other),
            }
        }
        others
    }

    /// Waits until `pred` holds for the document, syncing meanwhile; false after [`PATIENCE`]
    /// or once the connection is gone.
    pub async fn wait_for(&mut self, doc: DocumentId, pred: impl Fn(&AutoCommit) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if self.docs.get(&doc).is_some_and(|(d, _)| pred(d)) {
                return true;
            }
            if self.closed {
                return false;
            }
            self.settle(Duration::from_millis(50)).await;
        }
        false
    }

    /// Waits until this peer and the server announce the same heads of `doc` (it holds all the
    /// server has, and the server all it has), syncing meanwhile; false after [`PATIENCE`] or
    /// once the connection is gone.
    pub async fn wait_in_sync(&mut self, doc: DocumentId) -> bool {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if let Some((d, st)) = self.docs.get_mut(&doc) {
                let ours = d.get_heads();
                if !ours.is_empty() && st.their_heads.as_ref() == Some(&ours) {
                    return true;
                }
            }
            if self.closed {
                return false;
            }
            self.settle(Duration::from_millis(50)).await;
        }
        false
    }

    /// A document's local copy.
    pub fn doc(&mut self, doc: DocumentId) -> &mut AutoCommit {
        &mut self.docs.get_mut(&doc).expect("known document").0
    }

    /// Whether `sentinel` occurs anywhere in what this peer received or holds: the decoded
    /// operations of every change in every sync message, every loadable document's materialized
    /// content, and the local documents.
    pub fn saw(&mut self, sentinel: &str) -> bool {
        let mut texts = Vec::new();
        for m in &self.received {
            if let Message::Sync { data, .. } | Message::Request { data, .. } = m
                && let Ok(msg) = sync::Message::decode(data)
            {
                for chunk in msg.changes.iter() {
                    texts.extend(chunk_texts(chunk));
                }
            }
        }
        for (d, _) in self.docs.values_mut() {
            texts.extend(document_texts(d.document()));
        }
        texts.iter().any(|t| t.contains(sentinel))
    }

    /// Sends the document's last local change in a hand-built sync message, the way a client
    /// that ignores the server's read-only flag would.
    pub async fn force_push(&mut self, doc: DocumentId) {
        let target = self.target();
        let (d, _) = self.docs.get_mut(&doc).expect("known document");
        let change = d
            .get_last_local_change()
            .expect("a local change")
            .raw_bytes()
            .to_vec();
        let message = sync::Message {
            heads: d.get_heads(),
            need: Vec::new(),
            have: Vec::new(),
            changes: vec![change].into(),
            flags: None,
            version: sync::MessageVersion::V1,
        };
        let m = Message::Sync {
            sender_id: self.id.clone(),
            target_id: target,
            document_id: doc,
            data: message.encode(),
        };
        self.send(&m).await;
    }

    /// Drops the local copy and its sync state, and asks for the server's version again: what a
    /// device does to reset after a rejection.
    pub async fn reset(&mut self, doc: DocumentId) {
        self.docs.remove(&doc);
        self.request(doc).await;
    }

    /// The documents the server has answered with `doc-unavailable` so far, without repeats.
    pub fn unavailable(&self) -> Vec<DocumentId> {
        let mut out: Vec<DocumentId> = Vec::new();
        for m in &self.received {
            if let Message::DocUnavailable { document_id, .. } = m
                && !out.contains(document_id)
            {
                out.push(*document_id);
            }
        }
        out
    }

    /// Whether any sync message for `doc` has arrived.
    pub fn synced(&self, doc: DocumentId) -> bool {
        self.received
            .iter()
            .any(|m| matches!(m, Message::Sync { document_id, .. } if *document_id == doc))
    }
}
