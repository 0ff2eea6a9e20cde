//! One WebSocket connection speaking the automerge-repo protocol: the `join` handshake that binds
//! the peer id, then a loop that hands `request`/`sync` to the hub and writes whatever the hub
//! queues for this connection. Anything malformed gets an `error` and the connection closes;
//! other connections are never affected.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::{SinkExt, StreamExt};
use regie_core::principal::Principal;
use regie_sync_protocol::{
    MAX_MESSAGE_BYTES, Message, PROTOCOL_VERSION, PeerMetadata, decode, encode,
};
use tokio::sync::mpsc;

use crate::hub::{Hub, Outgoing, SessionHandle};

/// How long a new connection may take to send `join`.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames queued for one slow client before it is disconnected.
const OUTBOX_CAPACITY: usize = 1024;

/// Runs a connection until the client leaves, misbehaves, its token expires (`expires_at`) or
/// the server shuts down.
pub async fn run(
    socket: WebSocket,
    hub: Arc<Hub>,
    principal: Principal,
    expires_at: time::OffsetDateTime,
) {
    let (mut sink, mut stream) = socket.split();
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
            if hub.peer_taken_by_other(&sender_id, &principal) {
                return close(
                    &mut sink,
                    "this peer id belongs to another user's connection",
                )
                .await;
            }
            let storage =
                peer_metadata.and_then(|m| (!m.is_ephemeral).then_some(m.storage_id).flatten());
            (sender_id, storage.map(|s| s.as_str().to_owned()))
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
    if sink
        .send(WsMessage::Binary(encode(&reply).into()))
        .await
        .is_err()
    {
        return;
    }

    let (tx, mut rx) = mpsc::channel(OUTBOX_CAPACITY);
    let (id, handle) = hub.add_session(SessionHandle::new(principal, peer.clone(), storage_id, tx));

    // The writer drains the outbox so that fan-out from other connections never waits on this
    // client's socket.
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            match out {
                Outgoing::Frame(bytes) => {
                    if sink.send(WsMessage::Binary(bytes.into())).await.is_err() {
                        break;
                    }
                }
                Outgoing::Close(reason) => {
                    close(&mut sink, &reason).await;
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
    loop {
        let next = tokio::select! {
            next = next_message(&mut stream) => next,
            () = &mut expiry => Err("the token expired; reconnect with a fresh token".into()),
        };
        let message = match next {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(problem) => {
                let _ = handle.outbox.send(Outgoing::Close(problem)).await;
                break;
            }
        };
        if message.sender_id().is_some_and(|s| s != &peer) {
            let _ = handle
                .outbox
                .send(Outgoing::Close(
                    "senderId differs from the peer id given at join".into(),
                ))
                .await;
            break;
        }
        match message {
            Message::Request {
                document_id, data, ..
            }
            | Message::Sync {
                document_id, data, ..
            } => {
                if let Err(e) = hub.receive_sync(id, &handle, document_id, &data).await {
                    tracing::error!(error = %e, "sync failed");
                    let _ = handle
                        .outbox
                        .send(Outgoing::Close("internal error; try again later".into()))
                        .await;
                    break;
                }
            }
            Message::Ephemeral { .. } => hub.relay_ephemeral(id, &handle, &message),
            Message::Leave { .. } => break,
            Message::Join { .. } => {
                let _ = handle
                    .outbox
                    .send(Outgoing::Close("already joined".into()))
                    .await;
                break;
            }
            // Subscriptions and heads gossip between storage peers are not offered: every client
            // talks to this server only.
            _ => {}
        }
        if writer.is_finished() {
            break;
        }
    }
    hub.remove_session(id).await;
    drop(handle);
    // Let the writer flush a pending `error` frame; it ends when the outbox closes.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

/// Reads the next protocol message. `Ok(None)` is a clean end; `Err` describes a violation.
async fn next_message(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Result<Option<Message>, String> {
    loop {
        let frame = match stream.next().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(format!("unreadable frame: {e}")),
            Some(Ok(frame)) => frame,
        };
        match frame {
            WsMessage::Binary(bytes) => {
                if bytes.len() > MAX_MESSAGE_BYTES {
                    return Err(format!(
                        "message of {} bytes exceeds the limit of {MAX_MESSAGE_BYTES}",
                        bytes.len()
                    ));
                }
                return match decode(&bytes) {
                    Ok(m) => Ok(Some(m)),
                    Err(regie_sync_protocol::DecodeError::UnknownType(t)) => {
                        // Unknown types are skipped, as automerge-repo does, for forward compatibility.
                        tracing::debug!(message_type = %t, "ignoring unknown message type");
                        continue;
                    }
                    Err(e) => Err(format!("malformed message: {e}")),
                };
            }
            WsMessage::Text(_) => {
                return Err("text frames are not part of the protocol; send binary CBOR".into());
            }
            WsMessage::Close(_) => return Ok(None),
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
        }
    }
}

/// Sends an `error` message and a close frame.
async fn close(sink: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>, reason: &str) {
    let error = Message::Error {
        message: reason.to_owned(),
    };
    let _ = sink.send(WsMessage::Binary(encode(&error).into())).await;
    let _ = sink
        .send(WsMessage::Close(Some(CloseFrame {
            code: 1008,
            reason: "protocol violation".into(),
        })))
        .await;
}
