//! One WebSocket connection speaking the automerge-repo protocol: admission within the
//! connection limits, the `join` handshake that binds the peer id to its user, then a loop that
//! paces the device's messages, hands `request`/`sync` to the hub and relays `ephemeral`, while
//! a writer task drains the connection's bounded outbox. Anything malformed or over a limit gets
//! an `error` and the connection closes; a panic while handling one message ends that
//! connection only; other connections are never affected (I7). The loop runs over any
//! `Sink`/`Stream` of WebSocket messages, so it is tested without sockets.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use regie_core::principal::Principal;
use regie_sync_protocol::{
    MAX_MESSAGE_BYTES, Message, PROTOCOL_VERSION, PeerMetadata, decode, encode,
};
use tracing::Instrument;
use yawc::close::CloseCode;
use yawc::{Frame, HttpWebSocket, OpCode};

use crate::hub::{Hub, SessionHandle, SyncOutcome, TokenBucket};

/// How long a new connection may take to send `join`.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection may take to accept its `error` and close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// At most this many sync messages in a row share one answer per document.
const MAX_DEFERRED_ANSWERS: usize = 32;

/// Runs a WebSocket connection until the client leaves, misbehaves, its token expires
/// (`expires_at`) or the server shuts down.
pub async fn run(
    socket: HttpWebSocket,
    hub: Arc<Hub>,
    principal: Principal,
    expires_at: time::OffsetDateTime,
) {
    let (sink, stream) = socket.split();
    let stream = Flushed {
        inner: stream,
        ended: false,
    };
    serve(sink, stream, hub, principal, expires_at).await;
}

/// yawc's socket ends its stream at a frame it refuses (too large, compressed without
/// agreement, …) with the close frame it owes the client (1009, 1002, …) still queued; polled
/// once more, it writes that frame. This polls it once more, without waiting for a client that
/// does not read.
struct Flushed<S> {
    inner: S,
    ended: bool,
}

impl<S: Stream + Unpin> Stream for Flushed<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        if !self.ended {
            match std::task::ready!(self.inner.poll_next_unpin(cx)) {
                Some(item) => return std::task::Poll::Ready(Some(item)),
                None => self.ended = true,
            }
            let _ = self.inner.poll_next_unpin(cx);
        }
        std::task::Poll::Ready(None)
    }
}

/// [`run`] over any pair of message sink and stream, in a `connection` span with a number
/// of its own and the caller's role (never the user, peer id or token).
pub async fn serve<K, S>(
    sink: K,
    stream: S,
    hub: Arc<Hub>,
    principal: Principal,
    expires_at: time::OffsetDateTime,
) where
    K: Sink<Frame> + Unpin + Send + 'static,
    K::Error: Send,
    S: Stream<Item = Frame> + Unpin,
{
    static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);
    let span = tracing::info_span!(
        "connection",
        connection = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
        role = principal.role.as_str(),
    );
    let started = Instant::now();
    serve_in_span(sink, stream, hub, principal, expires_at)
        .instrument(span.clone())
        .await;
    span.in_scope(|| {
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "connection closed"
        );
    });
}

async fn serve_in_span<K, S>(
    mut sink: K,
    mut stream: S,
    hub: Arc<Hub>,
    principal: Principal,
    expires_at: time::OffsetDateTime,
) where
    K: Sink<Frame> + Unpin + Send + 'static,
    K::Error: Send,
    S: Stream<Item = Frame> + Unpin,
{
    let _permit = match hub.admit(&principal) {
        Ok(permit) => permit,
        Err(reason) => {
            tracing::info!(reason = %reason, "connection refused at a limit");
            return close(&mut sink, &reason).await;
        }
    };
    let _live = crate::metrics::connection_opened(principal.role.as_str());
    tracing::info!("connection admitted");
    let principal = Arc::new(principal);

    // Handshake: the first frame must be a `join` speaking protocol "1".
    let first = tokio::time::timeout(JOIN_TIMEOUT, next_message(&mut stream)).await;
    let (peer, storage_id) = match first {
        Ok(Ok(Some(Message::Join {
            sender_id,
            supported_protocol_versions,
            peer_metadata,
        }))) => {
            if !supported_protocol_versions
                .iter()
                .any(|v| v == PROTOCOL_VERSION)
            {
                return close(
                    &mut sink,
                    "unsupported protocol version: this server speaks \"1\"",
                )
                .await;
            }
            if !hub.bind_peer(&sender_id, &principal) {
                return close(
                    &mut sink,
                    "this peer id belongs to another user; join with a new random peer id",
                )
                .await;
            }
            let storage =
                peer_metadata.and_then(|m| (!m.is_ephemeral).then_some(m.storage_id).flatten());
            let storage = storage.map(|s| s.as_str().to_owned());
            if hub.device_revoked(&principal.user, storage.as_deref()) {
                return close(&mut sink, "this device was reported lost and is revoked").await;
            }
            (sender_id, storage)
        }
        Ok(Ok(Some(_))) => return close(&mut sink, "the first message must be join").await,
        Ok(Ok(None)) => return,
        Ok(Err(problem)) => return close(&mut sink, &problem).await,
        Err(_) => return close(&mut sink, "no join within 10 seconds").await,
    };
    let reply = Message::Peer {
        sender_id: hub.peer_id.clone(),
        target_id: peer.clone(),
        selected_protocol_version: PROTOCOL_VERSION.into(),
        peer_metadata: Some(PeerMetadata {
            storage_id: Some(hub.storage_id.clone().into()),
            is_ephemeral: false,
        }),
    };
    if sink.send(Frame::binary(encode(&reply))).await.is_err() {
        return;
    }

    let (handle, mut outbox) = SessionHandle::new(
        principal,
        peer.clone(),
        storage_id,
        hub.limits().outbox_bytes,
    );
    let (id, handle) = hub.add_session(handle);

    // The writer drains the outbox so that fan-out from other connections never waits on this
    // client's socket; a close request interrupts even a send the client does not read.
    let writer = tokio::spawn(async move {
        while let Some(next) = outbox.next().await {
            match next {
                Ok(frame) => {
                    let len = frame.len();
                    let sent = tokio::select! {
                        biased;
                        reason = outbox.closed() => {
                            close_within(&mut sink, &reason).await;
                            false
                        }
                        sent = sink.send(Frame::binary(frame)) => sent.is_ok(),
                    };
                    outbox.sent(len);
                    crate::metrics::message_sent(len);
                    if !sent {
                        break;
                    }
                }
                Err(reason) => {
                    close_within(&mut sink, &reason).await;
                    break;
                }
            }
        }
    });

    // A connection lives no longer than the token that opened it: a revoked or expired
    // identity must not keep receiving documents.
    let left = (expires_at - time::OffsetDateTime::now_utc()).max(time::Duration::ZERO);
    let expiry = tokio::time::sleep(left.try_into().unwrap_or(Duration::ZERO));
    tokio::pin!(expiry);
    let rate = hub.limits().messages_per_second;
    let mut pace = TokenBucket::new(rate, 10.0 * rate);
    // The device's next message when it was already waiting (read ahead to coalesce answers).
    let mut ahead: Option<Result<Option<Message>, String>> = None;
    // Sync messages handled since the hub last sent this device the answers it owes.
    let mut deferred = 0;
    loop {
        let next = match ahead.take() {
            Some(next) => next,
            None => tokio::select! {
                next = next_message(&mut stream) => next,
                () = &mut expiry => Err("the token expired; reconnect with a fresh token".into()),
                _ = handle.closed() => break,
            },
        };
        let message = match next {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(problem) => {
                handle.close(problem);
                break;
            }
        };
        // A device faster than its budget waits; meanwhile nothing more of it is read.
        if let Some(wait) = pace.take() {
            if deferred > 0 {
                Box::pin(hub.answer_owed(id, &handle)).await;
                deferred = 0;
            }
            crate::metrics::paced();
            tokio::time::sleep(wait).await;
        }
        if let Message::Ephemeral { .. } = message {
            // The hub relays only what this peer sent itself; what it forwards is dropped.
            hub.relay_ephemeral(id, &handle, &message);
            continue;
        }
        if message.sender_id().is_some_and(|s| s != &peer) {
            handle.close("senderId differs from the peer id given at join".into());
            break;
        }
        match message {
            Message::Request {
                document_id, data, ..
            }
            | Message::Sync {
                document_id, data, ..
            } => {
                // Coalesce answers: when the device's next sync message is already here, this
                // one's answer waits for it, and one reply with the latest heads answers both.
                // Nothing waits when nothing more is pending, so no answer is delayed then.
                ahead = next_message(&mut stream).now_or_never();
                let defer = deferred < MAX_DEFERRED_ANSWERS
                    && matches!(
                        ahead,
                        Some(Ok(Some(Message::Sync { .. } | Message::Request { .. })))
                    );
                // Boxed, as the other hub calls here: the write path's future (storage, group
                // commit, audit) is large, and inline it would be allocated with every
                // connection's task and held for as long as the connection lives, idle or not.
                let work = AssertUnwindSafe(Box::pin(hub.receive_sync(
                    id,
                    &handle,
                    document_id,
                    &data,
                    defer,
                )))
                .catch_unwind()
                .await;
                if defer {
                    deferred += 1;
                } else if deferred > 0 {
                    Box::pin(hub.answer_owed(id, &handle)).await;
                    deferred = 0;
                }
                match work {
                    Ok(Ok(SyncOutcome::Refused)) => break,
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "sync failed");
                        handle.close("internal error; try again later".into());
                        break;
                    }
                    Err(_) => {
                        // The write path works on a fork, so the document is as it was.
                        tracing::error!(document = %document_id, "panic while handling a sync message; connection closed");
                        handle.close(
                            "internal error while handling this message; the document is unchanged"
                                .into(),
                        );
                        break;
                    }
                }
            }
            Message::Leave { .. } => break,
            Message::Join { .. } => {
                handle.close("already joined".into());
                break;
            }
            // Subscriptions and heads gossip between storage peers are not offered: every client
            // talks to this server only.
            _ => {}
        }
    }
    Box::pin(hub.remove_session(id)).await;
    drop(handle);
    // Let the writer flush a pending `error` frame; it ends when the outbox closes.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

/// Reads the next protocol message. `Ok(None)` is a clean end (or a transport failure, which the
/// socket has already answered with a close frame); `Err` describes a violation.
async fn next_message<S>(stream: &mut S) -> Result<Option<Message>, String>
where
    S: Stream<Item = Frame> + Unpin,
{
    loop {
        let Some(frame) = stream.next().await else {
            return Ok(None);
        };
        match frame.opcode() {
            OpCode::Binary => {
                let bytes = frame.payload();
                if bytes.len() > MAX_MESSAGE_BYTES {
                    return Err(format!(
                        "message of {} bytes exceeds the limit of {MAX_MESSAGE_BYTES}",
                        bytes.len()
                    ));
                }
                return match decode(bytes) {
                    Ok(m) => {
                        crate::metrics::message_received(m.type_name(), bytes.len());
                        Ok(Some(m))
                    }
                    Err(regie_sync_protocol::DecodeError::UnknownType(t)) => {
                        // Unknown types are skipped, as automerge-repo does, for forward compatibility.
                        tracing::debug!(message_type = %t, "ignoring unknown message type");
                        continue;
                    }
                    Err(e) => Err(format!("malformed message: {e}")),
                };
            }
            OpCode::Text => {
                return Err("text frames are not part of the protocol; send binary CBOR".into());
            }
            OpCode::Close => return Ok(None),
            // Pings are answered by the socket; fragments arrive reassembled.
            OpCode::Ping | OpCode::Pong | OpCode::Continuation => continue,
        }
    }
}

/// Sends an `error` and a close frame, giving up on a client that does not read them.
async fn close_within<K: Sink<Frame> + Unpin>(sink: &mut K, reason: &str) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, close(sink, reason)).await;
}

/// Sends an `error` message and a close frame.
async fn close<K: Sink<Frame> + Unpin>(sink: &mut K, reason: &str) {
    let error = Message::Error {
        message: reason.to_owned(),
    };
    let _ = sink.send(Frame::binary(encode(&error))).await;
    let _ = sink
        .send(Frame::close(CloseCode::Policy, "protocol violation"))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use regie_core::principal::{Claims, Role};
    use regie_sync_protocol::{DocumentId, PeerId};
    use tokio::sync::mpsc;

    /// A device on the other end of a session: what it sends, what it receives.
    struct Device {
        send: mpsc::UnboundedSender<Frame>,
        receive: mpsc::UnboundedReceiver<Frame>,
        session: tokio::task::JoinHandle<()>,
    }

    impl Device {
        fn frame(&self, m: &Message) {
            let _ = self.send.send(Frame::binary(encode(m)));
        }

        async fn next(&mut self) -> Option<Frame> {
            tokio::time::timeout(Duration::from_secs(5), self.receive.recv())
                .await
                .expect("the session answers within 5 s")
        }

        async fn message(&mut self) -> Message {
            match self.next().await {
                Some(f) if f.opcode() == OpCode::Binary => {
                    decode(f.payload()).expect("a protocol message")
                }
                other => panic!(
                    "expected a binary frame, got {:?}",
                    other.map(|f| f.opcode())
                ),
            }
        }

        /// Expects an `error` containing `text`, then a close frame and the session's end.
        async fn closed_with(mut self, text: &str) {
            match self.message().await {
                Message::Error { message } => assert!(message.contains(text), "{message}"),
                other => panic!("expected an error, got {other:?}"),
            }
            assert_eq!(self.next().await.map(|f| f.opcode()), Some(OpCode::Close));
            tokio::time::timeout(Duration::from_secs(5), self.session)
                .await
                .expect("the session ends")
                .expect("without a panic");
        }
    }

    async fn hub(dir: &std::path::Path) -> Arc<Hub> {
        let store = crate::storage::Store::open(dir).await.unwrap();
        Arc::new(Hub::load(Arc::new(store), 10).await.unwrap())
    }

    fn resident() -> Principal {
        Principal::from_claims(&Claims {
            sub: "sanne".into(),
            role: Role::Resident,
            district: None,
            team: None,
            org: None,
            person: Some("p-sanne".into()),
            citywide: false,
        })
        .unwrap()
    }

    /// Opens a session over channels, valid for `lifetime`.
    fn connect(hub: &Arc<Hub>, lifetime: Duration) -> Device {
        connect_as(hub, resident(), lifetime)
    }

    /// [`connect`] as `principal`.
    fn connect_as(hub: &Arc<Hub>, principal: Principal, lifetime: Duration) -> Device {
        let (send, incoming) = mpsc::unbounded_channel();
        let (outgoing, receive) = mpsc::unbounded_channel::<Frame>();
        let stream = futures_util::stream::unfold(incoming, |mut rx| async move {
            rx.recv().await.map(|m| (m, rx))
        });
        let sink = futures_util::sink::unfold(outgoing, |tx, m: Frame| async move {
            tx.send(m)?;
            Ok::<_, mpsc::error::SendError<Frame>>(tx)
        });
        let expires_at = time::OffsetDateTime::now_utc() + lifetime;
        let session = tokio::spawn(serve(
            Box::pin(sink),
            Box::pin(stream),
            hub.clone(),
            principal,
            expires_at,
        ));
        Device {
            send,
            receive,
            session,
        }
    }

    fn join(peer: &str) -> Message {
        Message::Join {
            sender_id: PeerId::new(peer),
            supported_protocol_versions: vec!["1".into()],
            peer_metadata: None,
        }
    }

    /// A hub over `store` with one dossier assigned to anna (see [`anna`]) holding a plan: the
    /// hub, the plan's id and the plan as stored.
    async fn hub_with_plan(
        store: crate::storage::Store,
    ) -> (Arc<Hub>, DocumentId, automerge::AutoCommit) {
        use regie_core::id::{DocumentKey, DossierId};
        let plan = DocumentId::new_random();
        let mut rel = regie_core::relationship::Relationships::new(
            DossierId::new_random(),
            "noord".parse().unwrap(),
            "t1".parse().unwrap(),
        );
        rel.assigned = vec!["anna".parse().unwrap()];
        let mut doc = regie_core::document::skeleton(DocumentKey::Plan.kind());
        store
            .create_dossier(
                &rel,
                &[],
                &[(plan, DocumentKey::Plan, doc.save())],
                time::OffsetDateTime::now_utc(),
                &[],
            )
            .await
            .unwrap();
        (
            Arc::new(Hub::load(Arc::new(store), 10).await.unwrap()),
            plan,
            doc,
        )
    }

    /// The worker assigned to [`hub_with_plan`]'s dossier.
    fn anna() -> Principal {
        Principal::from_claims(&Claims {
            sub: "anna".into(),
            role: Role::Worker,
            district: Some("noord".into()),
            team: Some("t1".into()),
            org: None,
            person: None,
            citywide: false,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn sync_messages_that_arrive_together_get_one_answer_with_the_latest_heads() {
        use automerge::ReadDoc;
        use automerge::sync::SyncDoc;
        use automerge::transaction::Transactable;

        let dir = tempfile::tempdir().unwrap();
        let store = crate::storage::Store::open(dir.path()).await.unwrap();
        let (hub, plan, mut doc) = hub_with_plan(store).await;
        let mut device = connect_as(&hub, anna(), Duration::from_secs(60));
        let me = PeerId::new("tablet-1");
        device.frame(&join("tablet-1"));
        assert!(matches!(device.message().await, Message::Peer { .. }));
        // A first round, so that each side knows what the other has.
        let mut state = automerge::sync::State::new();
        let hello = doc.sync().generate_sync_message(&mut state).unwrap();
        device.frame(&Message::Request {
            sender_id: me.clone(),
            target_id: hub.peer_id.clone(),
            document_id: plan,
            data: hello.encode(),
        });
        let Message::Sync { data, .. } = device.message().await else {
            panic!("a sync answer");
        };
        let answer = automerge::sync::Message::decode(&data).unwrap();
        doc.sync().receive_sync_message(&mut state, answer).unwrap();
        // Three edits, each sent at once as its own message, all before the session reads one
        // (this test's runtime has one thread: the session runs only when the test awaits).
        for i in 0..3 {
            let h = doc.get(automerge::ROOT, "hulpvraag").unwrap().unwrap().1;
            doc.splice_text(&h, i, 0, "x").unwrap();
            doc.commit();
            let data = doc
                .sync()
                .generate_sync_message(&mut state)
                .unwrap()
                .encode();
            // The device does not wait for answers (a pipelining client).
            state.in_flight = false;
            device.frame(&Message::Sync {
                sender_id: me.clone(),
                target_id: hub.peer_id.clone(),
                document_id: plan,
                data,
            });
        }
        let Message::Sync { data, .. } = device.message().await else {
            panic!("a sync answer");
        };
        let answer = automerge::sync::Message::decode(&data).unwrap();
        assert_eq!(
            answer.heads,
            doc.get_heads(),
            "the one answer has the latest heads"
        );
        let more = tokio::time::timeout(Duration::from_millis(300), device.receive.recv()).await;
        assert!(more.is_err(), "no second answer");
    }

    #[tokio::test]
    async fn no_device_hears_of_a_change_before_the_group_commit_made_it_durable() {
        use automerge::ReadDoc;
        use automerge::sync::SyncDoc;
        use automerge::transaction::Transactable;
        use std::time::Instant;

        let dir = tempfile::tempdir().unwrap();
        let committed: Arc<parking_lot::Mutex<Vec<(DocumentId, i64, Instant)>>> =
            Default::default();
        let seen = committed.clone();
        let store = crate::storage::Store::open(dir.path())
            .await
            .unwrap()
            .with_commit_observer(Arc::new(move |made: &[(DocumentId, i64)]| {
                let now = Instant::now();
                seen.lock()
                    .extend(made.iter().map(|(doc, seq)| (*doc, *seq, now)));
            }));
        let (hub, plan, mut doc) = hub_with_plan(store).await;
        let mut device = connect_as(&hub, anna(), Duration::from_secs(60));
        let me = PeerId::new("tablet-1");
        device.frame(&join("tablet-1"));
        // Edits streamed in; every heads announcement is checked against the commits made so far.
        let mut state = automerge::sync::State::new();
        let mut hashes = Vec::new();
        let mut announced = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        for i in 0..40 {
            let h = doc.get(automerge::ROOT, "hulpvraag").unwrap().unwrap().1;
            doc.splice_text(&h, i, 0, "x").unwrap();
            hashes.push(doc.commit().unwrap());
            if let Some(m) = doc.sync().generate_sync_message(&mut state) {
                let data = m.encode();
                device.frame(&if i == 0 {
                    Message::Request {
                        sender_id: me.clone(),
                        target_id: hub.peer_id.clone(),
                        document_id: plan,
                        data,
                    }
                } else {
                    Message::Sync {
                        sender_id: me.clone(),
                        target_id: hub.peer_id.clone(),
                        document_id: plan,
                        data,
                    }
                });
            }
            while let Ok(Some(f)) =
                tokio::time::timeout(Duration::from_millis(5), device.receive.recv()).await
            {
                let Ok(Message::Sync { data, .. }) = decode(f.payload()) else {
                    continue;
                };
                let heard = Instant::now();
                let m = automerge::sync::Message::decode(&data).unwrap();
                // The device's changes are a chain: heads naming the k-th acknowledge the first k.
                // Each change is one sequence number, so k must not exceed what was durable then.
                if let Some(k) = hashes.iter().rposition(|h| m.heads.contains(h)) {
                    announced += 1;
                    let durable = committed
                        .lock()
                        .iter()
                        .filter(|(_, _, at)| *at <= heard)
                        .map(|(_, seq, _)| *seq)
                        .max()
                        .unwrap_or(0);
                    assert!(
                        (k as i64) < durable,
                        "change {} acknowledged while only {durable} were durable",
                        k + 1
                    );
                }
                let _ = doc.sync().receive_sync_message(&mut state, m);
            }
            assert!(Instant::now() < deadline);
        }
        assert!(announced > 0, "the server acknowledged something");
    }

    /// Tokio allocates a task's whole future when it spawns it, so the session's future is held
    /// by every idle connection for as long as it lives (issue 19: 10,000 in ≤ 300 MB). The work
    /// per message (write path, storage, audit) is boxed and exists only while it runs.
    #[tokio::test]
    async fn an_idle_connection_holds_a_small_future() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path()).await;
        let session = serve(
            futures_util::sink::drain(),
            futures_util::stream::pending::<Frame>(),
            hub,
            resident(),
            time::OffsetDateTime::now_utc() + Duration::from_secs(60),
        );
        let size = std::mem::size_of_val(&session);
        eprintln!("the session future holds {size} bytes");
        assert!(size <= 3072, "the session future holds {size} bytes");
    }

    #[tokio::test]
    async fn a_device_joins_and_an_unknown_document_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path()).await;
        let mut device = connect(&hub, Duration::from_secs(60));
        device.frame(&join("phone-1"));
        assert!(matches!(device.message().await, Message::Peer { .. }));
        let doc = DocumentId::new_random();
        device.frame(&Message::Request {
            sender_id: PeerId::new("phone-1"),
            target_id: hub.peer_id.clone(),
            document_id: doc,
            data: Vec::new(),
        });
        match device.message().await {
            Message::DocUnavailable { document_id, .. } => assert_eq!(document_id, doc),
            other => panic!("expected doc-unavailable, got {other:?}"),
        }
        let _ = device.send.send(Frame::text("hallo"));
        device.closed_with("text frames").await;
    }

    #[tokio::test]
    async fn anything_but_join_first_closes_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path()).await;
        let device = connect(&hub, Duration::from_secs(60));
        device.frame(&Message::Leave {
            sender_id: PeerId::new("phone-1"),
        });
        device.closed_with("first message must be join").await;
    }

    #[tokio::test]
    async fn a_session_ends_with_its_token_and_with_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path()).await;
        let mut expiring = connect(&hub, Duration::from_millis(300));
        expiring.frame(&join("phone-1"));
        assert!(matches!(expiring.message().await, Message::Peer { .. }));
        expiring.closed_with("token expired").await;

        let mut staying = connect(&hub, Duration::from_secs(60));
        staying.frame(&join("phone-2"));
        assert!(matches!(staying.message().await, Message::Peer { .. }));
        hub.close_all_sessions(Duration::from_secs(2)).await;
        staying.closed_with("shutting down").await;
    }
}
