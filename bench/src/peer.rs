//! A simulated device: a measuring automerge-repo peer that holds its documents locally (as a
//! tablet does), edits them, and syncs them with the server. Its connection (upgrade, `join`,
//! frames) is the workspace's one test connection, `regie_testkit::Connection`, over a socket
//! that counts bytes; what is its own here is the measuring.
//!
//! It measures from the client's side: every byte on the TCP connection (a counting wrapper
//! around the socket, so HTTP upgrade, WebSocket framing and CBOR envelopes are included), the
//! sync payload bytes, when each of its own changes is *acknowledged* (the server's announced
//! heads include it: the change or a descendant of it is among the heads of a sync message the
//! server sent), and the latency from another device's edit to this device's receipt (each
//! change carries its edit time, in µs since the run's epoch, in its timestamp field; all
//! devices of a run share one process and one clock).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use automerge::sync::{self, SyncDoc};
use automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc};
use regie_core::id::DocumentKind;
use regie_sync_protocol::{DocumentId, Message, PeerId, decode};
use regie_testkit::Connection;
use regie_testkit::connection::upgrade;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::rng::Rng;
use crate::workload::{DeviceSpec, edit};

/// Bytes on the wire, summed over every connection that shares it.
#[derive(Debug, Default)]
pub struct Wire {
    /// Bytes written by the devices.
    pub up: AtomicU64,
    /// Bytes read by the devices.
    pub down: AtomicU64,
}

impl Wire {
    /// Both directions together.
    pub fn total(&self) -> u64 {
        self.up.load(Ordering::Relaxed) + self.down.load(Ordering::Relaxed)
    }
}

/// A socket that counts what passes through it.
pub struct Counting<S> {
    inner: S,
    wire: Arc<Wire>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let n = (buf.filled().len() - before) as u64;
            self.wire.down.fetch_add(n, Ordering::Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.wire.up.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Conn = Connection<Counting<TcpStream>>;

/// The measurement window: events outside it are not counted.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// When counting starts.
    pub start: Instant,
    /// When counting ends.
    pub end: Instant,
}

impl Window {
    /// A window that counts everything.
    pub fn always() -> Self {
        let now = Instant::now();
        Window {
            start: now - Duration::from_secs(3600),
            end: now + Duration::from_secs(100 * 365 * 86_400),
        }
    }

    /// Whether `t` is inside.
    pub fn contains(&self, t: Instant) -> bool {
        self.start <= t && t < self.end
    }
}

/// What one device saw, inside the window.
#[derive(Debug, Default, Clone)]
pub struct DeviceStats {
    /// Edits made.
    pub edits: u64,
    /// Own changes acknowledged.
    pub acked: u64,
    /// Edit → acknowledgement, µs.
    pub ack_us: Vec<u32>,
    /// Another device's edit → receipt here, µs.
    pub recv_us: Vec<u32>,
    /// Of those, edits made by a device connected to the same instance (several instances).
    pub recv_within_us: Vec<u32>,
    /// Of those, edits made by a device connected to another instance (several instances).
    pub recv_cross_us: Vec<u32>,
    /// Protocol messages sent.
    pub msgs_up: u64,
    /// Protocol messages received.
    pub msgs_down: u64,
    /// Automerge sync payload bytes sent.
    pub payload_up: u64,
    /// Automerge sync payload bytes received.
    pub payload_down: u64,
    /// Refusals and errors (`rejected`, `doc-unavailable`, `error`, undecodable frames).
    pub problems: u64,
    /// The first of them, for the report.
    pub first_problem: Option<String>,
}

impl DeviceStats {
    /// Adds another device's numbers.
    pub fn merge(&mut self, o: DeviceStats) {
        self.edits += o.edits;
        self.acked += o.acked;
        self.ack_us.extend(o.ack_us);
        self.recv_us.extend(o.recv_us);
        self.recv_within_us.extend(o.recv_within_us);
        self.recv_cross_us.extend(o.recv_cross_us);
        self.msgs_up += o.msgs_up;
        self.msgs_down += o.msgs_down;
        self.payload_up += o.payload_up;
        self.payload_down += o.payload_down;
        self.problems += o.problems;
        if self.first_problem.is_none() {
            self.first_problem = o.first_problem;
        }
    }
}

/// One document as a device holds it.
pub struct DocState {
    /// Its id.
    pub id: DocumentId,
    /// Its kind (only plan and record are edited).
    pub kind: DocumentKind,
    /// The local copy.
    pub doc: Automerge,
    /// The sync state with the server.
    pub sync: sync::State,
    /// Own changes not yet acknowledged: (seq, edit time).
    pending: VecDeque<(u64, Instant)>,
    /// This device's actor's seq in this document.
    my_seq: u64,
}

/// How a device paces its edits in a steady run.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Edits per second of this device; 0 edits as soon as the window allows (closed loop).
    pub rate: f64,
    /// At most this many unacknowledged changes at once.
    pub window: usize,
    /// When to stop.
    pub stop: Instant,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The server's address (always on 127.0.0.1).
    pub addr: SocketAddr,
    /// The request path and query, e.g. `/sync?token=…` for Regie or `/` for the JS server.
    pub path: String,
    /// Whether to offer permessage-deflate.
    pub offer_deflate: bool,
}

/// A simulated device.
pub struct Device {
    /// Position in the layout.
    pub index: usize,
    actor: ActorId,
    /// Its documents.
    pub docs: Vec<DocState>,
    by_id: HashMap<DocumentId, usize>,
    editable: Vec<usize>,
    conn: Option<Conn>,
    storage: String,
    rng: Rng,
    connections: u64,
    serial: u64,
    epoch: Instant,
    wire: Arc<Wire>,
    /// Counted inside this window.
    pub window: Window,
    /// What it measured.
    pub stats: DeviceStats,
    /// Acknowledged changes, live, for progress output.
    live_acked: Option<Arc<AtomicU64>>,
    /// With several server instances: the instance each device's actor is connected to, and
    /// this device's, so that receipts split into within and across instances.
    pub instances: Option<(Arc<HashMap<ActorId, usize>>, usize)>,
}

enum Event {
    Frame(Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>),
    Edit,
    Stop,
}

impl Device {
    /// A device holding `docs` (id, kind, saved bytes), counting bytes into `wire`.
    pub fn new(
        spec: &DeviceSpec,
        docs: Vec<(DocumentId, DocumentKind, &[u8])>,
        seed: u64,
        epoch: Instant,
        wire: Arc<Wire>,
    ) -> anyhow::Result<Device> {
        let mut states = Vec::with_capacity(docs.len());
        for (id, kind, bytes) in docs {
            let doc = Automerge::load(bytes)
                .context("starting document does not load")?
                .with_actor(spec.actor.clone());
            states.push(DocState {
                id,
                kind,
                doc,
                sync: sync::State::new(),
                pending: VecDeque::new(),
                my_seq: 0,
            });
        }
        let by_id = states.iter().enumerate().map(|(i, d)| (d.id, i)).collect();
        let editable = states
            .iter()
            .enumerate()
            .filter(|(_, d)| matches!(d.kind, DocumentKind::Plan | DocumentKind::Record))
            .map(|(i, _)| i)
            .collect();
        Ok(Device {
            index: spec.index,
            actor: spec.actor.clone(),
            docs: states,
            by_id,
            editable,
            conn: None,
            storage: format!("storage-{}-{}", seed, spec.index),
            rng: Rng::new(seed).fork(10_000_000 + spec.index as u64),
            connections: 0,
            serial: 0,
            epoch,
            wire,
            instances: None,
            window: Window::always(),
            stats: DeviceStats::default(),
            live_acked: None,
        })
    }

    /// Reports acknowledgements to `counter` as they happen.
    pub fn report_acks_to(&mut self, counter: Arc<AtomicU64>) {
        self.live_acked = Some(counter);
    }

    /// Opens the WebSocket, sends `join` (with a storage id, not ephemeral) and waits for `peer`.
    /// Each connection gets a fresh peer id, as a restarted automerge-repo client does.
    pub async fn connect(&mut self, to: &Endpoint) -> anyhow::Result<()> {
        let tcp = TcpStream::connect(to.addr)
            .await
            .with_context(|| format!("cannot connect to {}", to.addr))?;
        tcp.set_nodelay(true)?;
        let url = format!("ws://{}{}", to.addr, to.path);
        let stream = Counting {
            inner: tcp,
            wire: self.wire.clone(),
        };
        self.connections += 1;
        let me = PeerId::new(format!("dev-{}-{}", self.index, self.connections));
        let storage = Some(self.storage.clone());
        let ws = upgrade(&url, stream, to.offer_deflate)
            .await
            .context("WebSocket upgrade refused")?;
        let conn = Connection::join(ws, me, storage, Duration::from_secs(60)).await?;
        self.conn = Some(conn);
        Ok(())
    }

    fn conn_mut(&mut self) -> anyhow::Result<&mut Conn> {
        self.conn.as_mut().ok_or_else(|| anyhow!("not connected"))
    }

    async fn send(&mut self, m: &Message) -> anyhow::Result<()> {
        if self.window.contains(Instant::now()) {
            self.stats.msgs_up += 1;
            if let Message::Sync { data, .. } = m {
                self.stats.payload_up += data.len() as u64;
            }
        }
        self.conn_mut()?.send(m).await.context("send failed")
    }

    /// Sends whatever document `i` has that the server lacks (or its heads, at first).
    async fn push(&mut self, i: usize) -> anyhow::Result<()> {
        let d = &mut self.docs[i];
        if let Some(m) = d.doc.generate_sync_message(&mut d.sync) {
            if trace(self.index) {
                eprintln!(
                    "t={:>8}us dev {} doc {i} UP heads {:?} need {} have {} changes {}",
                    (Instant::now() - self.epoch).as_micros(),
                    self.index,
                    m.heads
                        .iter()
                        .map(|h| h.to_string()[..6].to_owned())
                        .collect::<Vec<_>>(),
                    m.need.len(),
                    m.have.len(),
                    m.changes.len()
                );
            }
            let data = m.encode();
            let conn = self.conn.as_ref().ok_or_else(|| anyhow!("not connected"))?;
            let msg = Message::Sync {
                sender_id: conn.me.clone(),
                target_id: conn.server.clone(),
                document_id: d.id,
                data,
            };
            self.send(&msg).await?;
        }
        Ok(())
    }

    /// Starts syncing every document (an automerge-repo client does this on connect).
    pub async fn open_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.docs.len() {
            self.push(i).await?;
        }
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.close().await;
        }
    }

    /// Own changes not yet acknowledged, over all documents.
    pub fn pending(&self) -> usize {
        self.docs.iter().map(|d| d.pending.len()).sum()
    }

    /// Whether every document is known to be in sync with the server: nothing pending and the
    /// server's last announced heads equal ours.
    pub fn in_sync(&self) -> bool {
        self.docs.iter().all(|d| {
            d.pending.is_empty() && d.sync.their_heads.as_ref() == Some(&d.doc.get_heads())
        })
    }

    /// Forgets the in-memory sync states as a restarted device does, keeping what
    /// `sync::State::encode` persists (the shared heads).
    pub fn persist_and_reload_sync_states(&mut self) {
        for d in &mut self.docs {
            d.sync = sync::State::decode(&d.sync.encode()).unwrap_or_default();
        }
    }

    /// Makes one edit to a random plan or record document; returns its raw change size.
    pub fn edit_local(&mut self) -> Option<(usize, usize)> {
        if self.editable.is_empty() {
            return None;
        }
        let i = self.editable[self.rng.below(self.editable.len())];
        self.edit_doc(i).map(|n| (i, n))
    }

    /// Makes one edit to document `i`; returns its raw change size.
    pub fn edit_doc(&mut self, i: usize) -> Option<usize> {
        let now = Instant::now();
        let time = (now - self.epoch).as_micros().max(1) as i64;
        self.serial += 1;
        let label = format!("d{}-{}", self.index, self.serial);
        let d = &mut self.docs[i];
        let hash = edit(&mut d.doc, d.kind, &mut self.rng, &label, time)?;
        d.my_seq += 1;
        d.pending.push_back((d.my_seq, now));
        if self.window.contains(now) {
            self.stats.edits += 1;
        }
        d.doc.get_change_by_hash(&hash).map(|c| c.raw_bytes().len())
    }

    /// The document of this device with id `id`, if it follows it.
    pub fn doc_index(&self, id: DocumentId) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// The last change this device made to document `i`.
    pub fn last_change(&self, i: usize) -> Option<Change> {
        self.docs[i].doc.get_last_local_change()
    }

    /// Applies another device's change to document `i` directly (the in-process simulation of
    /// the raw limit, where there is no network).
    pub fn apply_remote(&mut self, i: usize, change: Change) -> anyhow::Result<()> {
        self.docs[i]
            .doc
            .apply_changes([change])
            .context("a change does not apply")
    }

    /// Reads and handles one frame (waiting at most `wait`); false on timeout.
    pub async fn step(&mut self, wait: Duration) -> anyhow::Result<bool> {
        let frame = match tokio::time::timeout(wait, self.conn_mut()?.next_frame()).await {
            Err(_) => return Ok(false),
            Ok(f) => f,
        };
        self.on_frame(frame).await?;
        Ok(true)
    }

    /// Handles frames until `done` holds or `limit` passes; fails on timeout.
    pub async fn run_until(
        &mut self,
        limit: Duration,
        done: impl Fn(&Device) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "device {} not done within {limit:?} ({} changes unacknowledged)",
                    self.index,
                    self.pending()
                );
            }
            self.step(left).await?;
        }
        Ok(())
    }

    /// Handles frames until none arrives for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) -> anyhow::Result<()> {
        while self.step(quiet).await? {}
        Ok(())
    }

    /// Edits at `pace` until it says stop, answering the server all along.
    pub async fn run_steady(&mut self, pace: Pace) -> anyhow::Result<()> {
        let mut next = Instant::now()
            + Duration::from_secs_f64(if pace.rate > 0.0 {
                self.rng.exp(1.0 / pace.rate)
            } else {
                0.0
            });
        loop {
            let can_edit = self.pending() < pace.window && !self.editable.is_empty();
            let edit_at = if pace.rate > 0.0 {
                next
            } else {
                Instant::now()
            };
            let conn = self.conn.as_mut().ok_or_else(|| anyhow!("not connected"))?;
            let event = tokio::select! {
                biased;
                f = conn.next_frame() => Event::Frame(f),
                () = tokio::time::sleep_until(pace.stop) => Event::Stop,
                () = tokio::time::sleep_until(edit_at), if can_edit => Event::Edit,
            };
            match event {
                Event::Stop => return Ok(()),
                Event::Frame(f) => self.on_frame(f).await?,
                Event::Edit => {
                    if let Some((i, _)) = self.edit_local() {
                        self.push(i).await?;
                    }
                    if pace.rate > 0.0 {
                        next += Duration::from_secs_f64(self.rng.exp(1.0 / pace.rate));
                        // After a stall, do not make up for lost time in one burst.
                        let now = Instant::now();
                        if next + Duration::from_secs(1) < now {
                            next = now;
                        }
                    }
                }
            }
        }
    }

    /// Stays connected, answering the server, until `stop` turns true.
    pub async fn idle(
        &mut self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let conn = self.conn.as_mut().ok_or_else(|| anyhow!("not connected"))?;
            let event = tokio::select! {
                f = conn.next_frame() => Event::Frame(f),
                _ = stop.changed() => Event::Stop,
            };
            match event {
                Event::Frame(f) => self.on_frame(f).await?,
                _ => return Ok(()),
            }
        }
    }

    /// Stays connected, answering the server, until `go` holds a value; returns it (`None` if
    /// the sender is gone).
    pub async fn wait_for<T: Clone>(
        &mut self,
        go: &mut tokio::sync::watch::Receiver<Option<T>>,
    ) -> anyhow::Result<Option<T>> {
        loop {
            if let Some(v) = go.borrow().clone() {
                return Ok(Some(v));
            }
            let conn = self.conn.as_mut().ok_or_else(|| anyhow!("not connected"))?;
            let event = tokio::select! {
                f = conn.next_frame() => Event::Frame(f),
                r = go.changed() => if r.is_err() { return Ok(None) } else { Event::Stop },
            };
            if let Event::Frame(f) = event {
                self.on_frame(f).await?;
            }
        }
    }

    /// Pushes every document with unsent changes.
    pub async fn push_all(&mut self) -> anyhow::Result<()> {
        self.open_all().await
    }

    fn problem(&mut self, what: String) {
        self.stats.problems += 1;
        if self.stats.first_problem.is_none() {
            self.stats.first_problem = Some(what);
        }
    }

    async fn on_frame(
        &mut self,
        frame: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>,
    ) -> anyhow::Result<()> {
        let at = Instant::now();
        let bytes = match frame {
            None => bail!("device {}: the server closed the connection", self.index),
            Some(Err(e)) => bail!("device {}: connection failed: {e}", self.index),
            Some(Ok(WsMessage::Binary(b))) => b,
            Some(Ok(WsMessage::Close(_))) => {
                bail!("device {}: the server closed the connection", self.index)
            }
            Some(Ok(_)) => return Ok(()),
        };
        if self.window.contains(at) {
            self.stats.msgs_down += 1;
        }
        let message = match decode(&bytes) {
            Ok(m) => m,
            Err(e) => {
                self.problem(format!("undecodable frame: {e}"));
                return Ok(());
            }
        };
        match message {
            Message::Sync {
                document_id, data, ..
            }
            | Message::Request {
                document_id, data, ..
            } => self.on_sync(document_id, &data, at).await,
            Message::Rejected { reason, detail, .. } => {
                self.problem(format!("rejected: {reason} {}", detail.unwrap_or_default()));
                Ok(())
            }
            Message::DocUnavailable { .. } => {
                self.problem("doc-unavailable".into());
                Ok(())
            }
            Message::Error { message } => {
                self.problem(format!("error: {message}"));
                Ok(())
            }
            Message::Revoked { reason, .. } => {
                self.problem(format!("revoked: {reason}"));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn on_sync(
        &mut self,
        doc_id: DocumentId,
        data: &[u8],
        at: Instant,
    ) -> anyhow::Result<()> {
        let Some(&i) = self.by_id.get(&doc_id) else {
            return Ok(());
        };
        if self.window.contains(at) {
            self.stats.payload_down += data.len() as u64;
        }
        let message = match sync::Message::decode(data) {
            Ok(m) => m,
            Err(e) => {
                self.problem(format!("undecodable sync message: {e}"));
                return Ok(());
            }
        };
        if trace(self.index) {
            eprintln!(
                "t={:>8}us dev {} doc {i} DOWN {} bytes heads {:?} need {} have {} changes {}",
                (at - self.epoch).as_micros(),
                self.index,
                data.len(),
                message
                    .heads
                    .iter()
                    .map(|h| h.to_string()[..6].to_owned())
                    .collect::<Vec<_>>(),
                message.need.len(),
                message.have.len(),
                message.changes.len()
            );
        }
        let counting = self.window.contains(at);
        let now_us = (at - self.epoch).as_micros() as i64;
        let d = &mut self.docs[i];
        if counting {
            for chunk in message.changes.iter() {
                if let Ok(change) = Change::from_bytes(chunk.to_vec())
                    && change.actor_id() != &self.actor
                    && change.timestamp() > 0
                    && d.doc.get_change_meta_by_hash(&change.hash()).is_none()
                {
                    let us = (now_us - change.timestamp()).clamp(0, u32::MAX as i64);
                    self.stats.recv_us.push(us as u32);
                    if let Some((of, mine)) = &self.instances
                        && let Some(theirs) = of.get(change.actor_id())
                    {
                        if theirs == mine {
                            self.stats.recv_within_us.push(us as u32);
                        } else {
                            self.stats.recv_cross_us.push(us as u32);
                        }
                    }
                }
            }
        }
        if let Err(e) = d.doc.receive_sync_message(&mut d.sync, message) {
            self.problem(format!("sync message does not apply: {e}"));
            return Ok(());
        }
        if !d.pending.is_empty()
            && let Some(heads) = d.sync.their_heads.clone()
        {
            let acked = acked_seq(&d.doc, &heads, &self.actor);
            while let Some(&(seq, t)) = d.pending.front() {
                if seq > acked {
                    break;
                }
                d.pending.pop_front();
                if counting {
                    self.stats.acked += 1;
                    self.stats
                        .ack_us
                        .push((at - t).as_micros().min(u32::MAX as u128) as u32);
                    if let Some(c) = &self.live_acked {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        self.push(i).await
    }
}

/// The highest seq of `me`'s changes among the ancestors of `heads` (inclusive), walking back
/// from the heads and stopping at `me`'s changes (their ancestors by `me` have lower seqs).
/// Heads not known locally are skipped: they are acknowledged by a later message.
pub fn acked_seq(doc: &Automerge, heads: &[ChangeHash], me: &ActorId) -> u64 {
    let mut best = 0;
    let mut stack: Vec<ChangeHash> = heads.to_vec();
    let mut seen = HashSet::new();
    while let Some(h) = stack.pop() {
        if !seen.insert(h) || seen.len() > 100_000 {
            continue;
        }
        let Some(meta) = doc.get_change_meta_by_hash(&h) else {
            continue;
        };
        if meta.actor.as_ref() == me {
            best = best.max(meta.seq);
        } else {
            stack.extend(meta.deps.iter().copied());
        }
    }
    best
}

/// Whether to print every sync message of device `index` (`REGIE_LOAD_TRACE=<index>`), for
/// looking at the exchange when numbers look odd.
fn trace(index: usize) -> bool {
    std::env::var("REGIE_LOAD_TRACE").is_ok_and(|v| v.parse() == Ok(index))
}
