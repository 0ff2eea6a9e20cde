//! The sync engine: one reconciliation of the whole caseload with the server. It refreshes the
//! listing (`GET /api/v1/me/documents`), uploads offline reads (I3), then opens one WebSocket
//! and speaks automerge-repo protocol 1 for every document at once, starting from the persisted
//! sync states so that only what changed travels. Each incoming message is applied and stored
//! with the new sync state and the server's heads in one transaction. `revoked`, `replaced` and
//! `doc-unavailable` for a held document purge it (R28); `rejected` rebases it (I2). A dropped
//! connection is retried with jittered exponential backoff; progress goes to a callback.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, ChangeHash, ReadDoc};
use futures_util::{SinkExt, StreamExt};
use regie_sync_protocol::{
    DocumentId, Message, PROTOCOL_VERSION, PeerId, PeerMetadata, decode, encode,
};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use crate::client::{Client, now};
use crate::error::{ClientError, Result};
use crate::store::{
    COMPACT_AFTER, DocumentInfo, DocumentWrite, OfflineRead, PurgeRecord, RejectionRecord,
};

/// How far a sync has come, reported to the progress callback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Documents reconciled (or purged) so far.
    pub documents_done: usize,
    /// Documents in this sync.
    pub documents_total: usize,
    /// Bytes sent on the WebSocket.
    pub bytes_sent: u64,
    /// Bytes received on the WebSocket.
    pub bytes_received: u64,
}

/// What one sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// Documents reconciled.
    pub documents: usize,
    /// Local changes that were pending (not in the server's known heads) before this sync and
    /// are not any more: acknowledged by the server, or replaced by a rebase.
    pub changes_sent: usize,
    /// Changes received from the server.
    pub changes_received: usize,
    /// Bytes sent on the WebSocket.
    pub bytes_sent: u64,
    /// Bytes received on the WebSocket.
    pub bytes_received: u64,
    /// Raw bytes of the local changes that were pending at the start (what the wire bytes sent
    /// compare against).
    pub change_bytes_sent: u64,
    /// Documents purged because the server revoked, replaced or refused them (R28).
    pub purged: Vec<PurgeRecord>,
    /// Rejected batches and what the rebase made of them (I2).
    pub rejected: Vec<RejectionRecord>,
    /// Offline reads the server put in its audit log.
    pub reads_uploaded: usize,
    /// Offline reads the server refused, with its reason (id, reason).
    pub reads_refused: Vec<(String, String)>,
    /// Failed attempts (listing, upload or connection) that were retried after a backoff.
    pub retries: u32,
    /// Wall time of the whole sync.
    pub elapsed: Duration,
}

/// Local changes not in the server's known heads.
pub(crate) fn pending_changes(
    doc: &Automerge,
    server_heads: &[ChangeHash],
) -> Vec<automerge::Change> {
    if server_heads
        .iter()
        .all(|h| doc.get_change_by_hash(h).is_some())
    {
        doc.get_changes(server_heads)
    } else {
        Vec::new()
    }
}

/// One document during a sync.
struct Live {
    info: DocumentInfo,
    doc: Automerge,
    state: sync::State,
    server_heads: Vec<ChangeHash>,
    chunk_count: i64,
    done: bool,
}

impl Live {
    fn empty(info: DocumentInfo) -> Live {
        Live {
            info,
            doc: Automerge::new(),
            state: sync::State::new(),
            server_heads: Vec::new(),
            chunk_count: 0,
            done: false,
        }
    }
}

/// The body of `POST /api/v1/audit/offline-reads`.
#[derive(Serialize)]
struct ReadUpload<'a> {
    device: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    sent_at: time::OffsetDateTime,
    events: Vec<ReadEvent<'a>>,
}

#[derive(Serialize)]
struct ReadEvent<'a> {
    id: &'a str,
    dossier: String,
    document: String,
    #[serde(with = "time::serde::rfc3339")]
    opened_at: time::OffsetDateTime,
}

#[derive(Deserialize)]
struct ReadUploadAnswer {
    accepted: Vec<String>,
    refused: Vec<RefusedRead>,
}

#[derive(Deserialize)]
struct RefusedRead {
    id: String,
    reason: String,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Whether a failure ends the sync at once (the token, not the network, is the problem).
fn fatal(e: &ClientError) -> bool {
    !e.is_transient()
}

/// A uniformly random fraction in [0, 1) (from the OS generator behind UUID v4).
fn random_fraction() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

impl Client {
    /// The wait before retry `attempt` (1-based): exponential, capped, with full jitter on
    /// the upper half so that devices that lost the server together do not return together.
    fn backoff(&self, attempt: u32) -> Duration {
        let o = &self.options;
        let base = o
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(o.max_backoff);
        base.mul_f64(0.5 + 0.5 * random_fraction())
    }

    /// Runs `op` until it succeeds, fails for good, or the attempts are used up; counts the
    /// retries in `retries`.
    async fn retrying<T, F, Fut>(&self, retries: &mut u32, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if fatal(&e) || attempts >= self.options.max_attempts.max(1) => {
                    return Err(e);
                }
                Err(e) => {
                    *retries += 1;
                    let wait = self.backoff(attempts);
                    tracing::info!(error = %e, ?wait, "sync attempt failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Reconciles the whole caseload with the server (see the module documentation).
    /// `progress` is called whenever a document completes or bytes move.
    pub async fn sync(&self, mut progress: impl FnMut(&Progress) + Send) -> Result<SyncReport> {
        let started = Instant::now();
        let (profile, url, token) = self.login_parts().await?;
        let mut report = SyncReport::default();
        let mut retries = 0;
        let listing = self
            .retrying(&mut retries, || self.fetch_listing(&url, &token))
            .await?;
        report.purged = self.store.upsert_listing(&listing, now()).await?;
        self.retrying(&mut retries, || {
            self.upload_reads(&url, &token, &profile.storage_id)
        })
        .await
        .map(|(ok, refused)| {
            report.reads_uploaded = ok;
            report.reads_refused = refused;
        })?;

        let mut live = BTreeMap::new();
        for info in self.store.documents().await? {
            let l = match self.store.load(info.id).await? {
                Some(l) => Live {
                    info: l.info,
                    doc: l.doc,
                    state: l.state,
                    server_heads: l.server_heads,
                    chunk_count: l.chunk_count,
                    done: false,
                },
                None => continue,
            };
            live.insert(info.id, l);
        }
        report.documents = live.len();
        let mut pending_before = BTreeMap::new();
        for (id, l) in &live {
            let changes = pending_changes(&l.doc, &l.server_heads);
            report.change_bytes_sent += changes
                .iter()
                .map(|c| c.raw_bytes().len() as u64)
                .sum::<u64>();
            pending_before.insert(*id, changes.len());
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self
                .session(
                    &url,
                    &token,
                    &profile.storage_id,
                    &mut live,
                    &mut report,
                    &mut progress,
                )
                .await
            {
                Ok(()) => break,
                Err(e) if fatal(&e) || attempts >= self.options.max_attempts.max(1) => {
                    return Err(e);
                }
                Err(e) => {
                    retries += 1;
                    let wait = self.backoff(attempts);
                    tracing::info!(error = %e, ?wait, "sync connection failed; reconnecting");
                    // A new connection starts from what outlives one: the persisted state.
                    for l in live.values_mut() {
                        l.state = sync::State::decode(&l.state.encode()).unwrap_or_default();
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
        report.retries = retries;
        report.changes_sent = pending_before
            .iter()
            .map(|(id, before)| {
                let after = live
                    .get(id)
                    .map_or(0, |l| pending_changes(&l.doc, &l.server_heads).len());
                before.saturating_sub(after)
            })
            .sum();
        self.store.set_last_sync(now()).await?;
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Uploads offline reads; returns how many were accepted and which were refused.
    async fn upload_reads(
        &self,
        url: &str,
        token: &str,
        device: &str,
    ) -> Result<(usize, Vec<(String, String)>)> {
        let pending: Vec<OfflineRead> = self.store.pending_reads().await?;
        if pending.is_empty() {
            return Ok((0, Vec::new()));
        }
        let mut accepted_total = 0;
        let mut refused_total = Vec::new();
        for batch in pending.chunks(500) {
            let body = ReadUpload {
                device,
                sent_at: now(),
                events: batch
                    .iter()
                    .map(|r| ReadEvent {
                        id: &r.id,
                        dossier: r.dossier.to_string(),
                        document: r.key.to_string(),
                        opened_at: r.at,
                    })
                    .collect(),
            };
            let res = self
                .http
                .post(format!("{url}/api/v1/audit/offline-reads"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .map_err(|e| Self::unreachable(url, &e))?;
            if !res.status().is_success() {
                return Err(Self::api_error(res).await);
            }
            let answer: ReadUploadAnswer = res
                .json()
                .await
                .map_err(|e| ClientError::Protocol(format!("unexpected audit answer: {e}")))?;
            // Refused reads can never be accepted; the server logged the attempt, so they go too.
            let mut done: Vec<String> = answer.accepted.clone();
            done.extend(answer.refused.iter().map(|r| r.id.clone()));
            self.store.remove_reads(&done).await?;
            accepted_total += answer.accepted.len();
            refused_total.extend(answer.refused.into_iter().map(|r| (r.id, r.reason)));
        }
        Ok((accepted_total, refused_total))
    }

    async fn connect(&self, url: &str, token: &str) -> Result<Ws> {
        let ws_url = if let Some(rest) = url.strip_prefix("https://") {
            format!("wss://{rest}/sync")
        } else {
            format!("ws://{}/sync", url.trim_start_matches("http://"))
        };
        let mut request = ws_url
            .into_client_request()
            .map_err(|e| ClientError::Protocol(format!("bad server URL: {e}")))?;
        let bearer = format!("Bearer {token}").parse().map_err(|_| {
            ClientError::BadToken("the token has characters a header cannot carry".into())
        })?;
        request.headers_mut().insert("authorization", bearer);
        let connecting = tokio_tungstenite::connect_async(request);
        match tokio::time::timeout(self.options.request_timeout, connecting).await {
            Err(_) => Err(ClientError::Unreachable {
                url: url.to_owned(),
                detail: "the WebSocket handshake timed out".into(),
            }),
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(tungstenite::Error::Http(res))) if res.status().as_u16() == 401 => {
                Err(ClientError::Unauthorized {
                    code: "unauthorized".into(),
                    message: "the sync endpoint refused the token".into(),
                })
            }
            Ok(Err(e)) => Err(ClientError::Unreachable {
                url: url.to_owned(),
                detail: e.to_string(),
            }),
        }
    }

    /// One connection: handshake, then sync every outstanding document until all are done.
    async fn session(
        &self,
        url: &str,
        token: &str,
        storage_id: &str,
        live: &mut BTreeMap<DocumentId, Live>,
        report: &mut SyncReport,
        progress: &mut (impl FnMut(&Progress) + Send),
    ) -> Result<()> {
        let mut ws = self.connect(url, token).await?;
        let me = PeerId::new(format!(
            "{storage_id}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        let mut io = Io {
            ws: &mut ws,
            idle: self.options.idle_timeout,
            report,
        };
        io.send(&Message::Join {
            sender_id: me.clone(),
            supported_protocol_versions: vec![PROTOCOL_VERSION.into()],
            peer_metadata: Some(PeerMetadata {
                storage_id: Some(storage_id.into()),
                is_ephemeral: false,
            }),
        })
        .await?;
        let server = match io.next().await? {
            Message::Peer { sender_id, .. } => sender_id,
            Message::Error { message } => return Err(self.refusal(message)),
            other => {
                return Err(ClientError::Protocol(format!(
                    "expected peer, got {}",
                    other.type_name()
                )));
            }
        };
        let total = live.len();
        let ids: Vec<DocumentId> = live.keys().copied().collect();
        for id in ids {
            let l = live.get_mut(&id).expect("listed above");
            if l.done {
                continue;
            }
            let fresh = l.doc.get_heads().is_empty();
            let data = l
                .doc
                .generate_sync_message(&mut l.state)
                .map(sync::Message::encode)
                .unwrap_or_default();
            let m = if fresh {
                Message::Request {
                    sender_id: me.clone(),
                    target_id: server.clone(),
                    document_id: id,
                    data,
                }
            } else {
                Message::Sync {
                    sender_id: me.clone(),
                    target_id: server.clone(),
                    document_id: id,
                    data,
                }
            };
            io.send(&m).await?;
        }
        let report_progress =
            |io: &Io<'_>, live: &BTreeMap<DocumentId, Live>, done_extra: usize| Progress {
                documents_done: live.values().filter(|l| l.done).count() + done_extra,
                documents_total: total,
                bytes_sent: io.report.bytes_sent,
                bytes_received: io.report.bytes_received,
            };
        let mut purged_here = 0;
        progress(&report_progress(&io, live, purged_here));
        // Automerge's sync converges in a few rounds per document; a budget turns a livelock
        // (which would otherwise keep the idle timer fed forever) into an error and a retry.
        let mut budget = 200 * (live.len() + 1);
        while live.values().any(|l| !l.done) {
            budget = budget.checked_sub(1).ok_or_else(|| {
                ClientError::Protocol("the sync did not converge; try again".into())
            })?;
            let message = io.next().await?;
            let Some(id) = message.document_id().copied() else {
                if let Message::Error { message } = message {
                    return Err(self.refusal(message));
                }
                continue;
            };
            if !live.contains_key(&id) {
                continue;
            }
            match message {
                Message::Sync { data, .. } => {
                    let l = live.get_mut(&id).expect("checked");
                    let reply = self.receive(l, &data, io.report).await?;
                    if let Some(reply) = reply {
                        io.send(&Message::Sync {
                            sender_id: me.clone(),
                            target_id: server.clone(),
                            document_id: id,
                            data: reply,
                        })
                        .await?;
                    }
                }
                Message::DocUnavailable { .. } => {
                    let l = live.remove(&id).expect("checked");
                    io.report
                        .purged
                        .push(self.store.purge(&l.info, "unavailable", now()).await?);
                    purged_here += 1;
                }
                Message::Revoked { reason, .. } => {
                    let l = live.remove(&id).expect("checked");
                    io.report.purged.push(
                        self.store
                            .purge(&l.info, &format!("revoked:{reason}"), now())
                            .await?,
                    );
                    purged_here += 1;
                }
                Message::Replaced {
                    new_document_id, ..
                } => {
                    let l = live.remove(&id).expect("checked");
                    io.report
                        .purged
                        .push(self.store.purge(&l.info, "replaced", now()).await?);
                    let info = DocumentInfo {
                        id: new_document_id,
                        ..l.info
                    };
                    self.store
                        .upsert_listing(std::slice::from_ref(&info), now())
                        .await?;
                    let mut fresh = Live::empty(info);
                    let data = fresh
                        .doc
                        .generate_sync_message(&mut fresh.state)
                        .map(sync::Message::encode)
                        .unwrap_or_default();
                    live.insert(new_document_id, fresh);
                    io.send(&Message::Request {
                        sender_id: me.clone(),
                        target_id: server.clone(),
                        document_id: new_document_id,
                        data,
                    })
                    .await?;
                }
                Message::Rejected {
                    reason,
                    detail,
                    changes,
                    ..
                } => {
                    let l = live.get_mut(&id).expect("checked");
                    let record = self
                        .rebase(
                            l.info.clone(),
                            &mut l.doc,
                            &l.server_heads,
                            reason,
                            detail,
                            changes,
                        )
                        .await?;
                    io.report.rejected.push(record);
                    // Tell the server the device reset to heads it knows (the server ignores a
                    // blocked device until it does); the rebased edits follow in the exchange.
                    let server_version = if l.server_heads.is_empty() {
                        Automerge::new()
                    } else {
                        l.doc.fork_at(&l.server_heads)?
                    };
                    l.state = sync::State::new();
                    l.chunk_count = 0;
                    l.done = false;
                    if let Some(m) = server_version.generate_sync_message(&mut sync::State::new()) {
                        io.send(&Message::Sync {
                            sender_id: me.clone(),
                            target_id: server.clone(),
                            document_id: id,
                            data: m.encode(),
                        })
                        .await?;
                    }
                }
                _ => {}
            }
            progress(&report_progress(&io, live, purged_here));
        }
        let _ = io.ws.close(None).await;
        Ok(())
    }

    /// The error for the server's `error` message. A device reported lost is told so in words
    /// (the protocol has no code for it): the store drops its key at once, and the next login
    /// is refused the key.
    fn refusal(&self, message: String) -> ClientError {
        if message.contains("reported lost") {
            self.store.lock(crate::error::LockReason::DeviceLost);
            ClientError::DeviceLost
        } else {
            ClientError::Protocol(message)
        }
    }

    /// Applies one sync message from the server to a document and stores the result with the
    /// new sync state and server heads in one transaction; returns the reply to send, if any.
    async fn receive(
        &self,
        l: &mut Live,
        data: &[u8],
        report: &mut SyncReport,
    ) -> Result<Option<Vec<u8>>> {
        let message = sync::Message::decode(data)
            .map_err(|e| ClientError::Protocol(format!("undecodable sync message: {e}")))?;
        let before = l.doc.get_heads();
        l.doc
            .receive_sync_message(&mut l.state, message)
            .map_err(|e| ClientError::Protocol(format!("sync message does not apply: {e}")))?;
        let after = l.doc.get_heads();
        let mut w = DocumentWrite::default();
        if after != before {
            report.changes_received += l.doc.get_changes(&before).len();
            if l.chunk_count + 1 >= COMPACT_AFTER {
                w.snapshot = Some(l.doc.save());
                l.chunk_count = 0;
            } else {
                w.chunk = Some(l.doc.save_after(&before));
                l.chunk_count += 1;
            }
        }
        if let Some(theirs) = &l.state.their_heads
            && theirs.iter().all(|h| l.doc.get_change_by_hash(h).is_some())
            && *theirs != l.server_heads
        {
            l.server_heads = theirs.clone();
            w.server_heads = Some(theirs.clone());
        }
        w.state = Some(Some(l.state.encode()));
        self.store.write(l.info.id, w).await?;
        let reply = l.doc.generate_sync_message(&mut l.state);
        l.done = l.state.their_heads.as_deref() == Some(&after[..]);
        Ok(reply.map(sync::Message::encode))
    }
}

/// The socket with its byte counters and idle timeout.
struct Io<'a> {
    ws: &'a mut Ws,
    idle: Duration,
    report: &'a mut SyncReport,
}

impl Io<'_> {
    async fn send(&mut self, m: &Message) -> Result<()> {
        let bytes = encode(m);
        self.report.bytes_sent += bytes.len() as u64;
        self.ws
            .send(tungstenite::Message::Binary(bytes.into()))
            .await
            .map_err(|e| ClientError::Protocol(format!("connection lost while sending: {e}")))
    }

    async fn next(&mut self) -> Result<Message> {
        loop {
            let frame = match tokio::time::timeout(self.idle, self.ws.next()).await {
                Err(_) => return Err(ClientError::Protocol("the server went quiet".into())),
                Ok(None) => {
                    return Err(ClientError::Protocol(
                        "the server closed the connection".into(),
                    ));
                }
                Ok(Some(Err(e))) => {
                    return Err(ClientError::Protocol(format!("connection lost: {e}")));
                }
                Ok(Some(Ok(f))) => f,
            };
            match frame {
                tungstenite::Message::Binary(bytes) => {
                    self.report.bytes_received += bytes.len() as u64;
                    match decode(&bytes) {
                        Ok(m) => return Ok(m),
                        // A newer server's message type: skip it, as automerge-repo does.
                        Err(regie_sync_protocol::DecodeError::UnknownType(_)) => continue,
                        Err(e) => {
                            return Err(ClientError::Protocol(format!("malformed frame: {e}")));
                        }
                    }
                }
                tungstenite::Message::Close(_) => {
                    return Err(ClientError::Protocol(
                        "the server closed the connection".into(),
                    ));
                }
                _ => continue,
            }
        }
    }
}
