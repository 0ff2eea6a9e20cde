//! The five scenarios of issue 8, each run for every applicable target in alternating rounds
//! (round `r` starts with a different target, so no target always runs on a warm or a cold
//! machine). Every network target gets a fresh server process on a fresh store per run.
//!
//! - (a) [`steady`]: N devices over K dossiers editing steadily; throughput of acknowledged
//!   changes, latency, bytes per change, server CPU and memory.
//! - (b) [`reconnect`]: one tablet with a caseload of K dossiers reconnects after E offline
//!   edits per dossier; time to reconcile and bytes on the wire against the raw change bytes.
//! - (c) [`idle`]: N idle authenticated connections, each syncing one document; server memory.
//! - (d) [`steady`] again with 500 devices at a fixed rate; the p99 edit-to-recipient latency.
//! - (e) [`memory`]: cold start over 100,000 stored dossiers, memory per hot dossier.
//! - (f) [`flood`]: (d)'s steady editing, quiet and under attack by hostile devices.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use automerge::{Automerge, ChangeHash};
use regie_core::id::DocumentKey;
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::peer::{Device, DeviceStats, Endpoint, Pace, Window, Wire};
use crate::raw::{RawDoc, RawStore};
use crate::report::{Measurement, percentile_ms};
use crate::rng::Rng;
use crate::server::{Kind, Launch, ProcStats, ServerProc, authenticator, seed_regie, token};
use crate::workload::{DossierBytes, Layout, dossier_bytes};

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Regie: SQLite store, full privacy path.
    Regie,
    /// Regie with gating, validation and audit bypassed (benchmark switch).
    Bypass,
    /// Regie with encryption at rest off (benchmark switch).
    Plain,
    /// The published JS `@automerge/automerge-repo-sync-server`.
    Js,
    /// Raw Automerge in-process plus an SQLite append: the limit.
    Raw,
}

impl Target {
    /// The name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Target::Regie => "regie",
            Target::Bypass => "bypass",
            Target::Plain => "plain",
            Target::Js => "js",
            Target::Raw => "raw",
        }
    }

    fn kind(self) -> Option<Kind> {
        match self {
            Target::Regie => Some(Kind::Regie),
            Target::Bypass => Some(Kind::RegieBypass),
            Target::Plain => Some(Kind::RegiePlain),
            Target::Js => Some(Kind::Js),
            Target::Raw => None,
        }
    }
}

/// Settings shared by every scenario.
#[derive(Debug, Clone)]
pub struct Common {
    /// The workload seed.
    pub seed: u64,
    /// Rounds (each target once per round).
    pub runs: usize,
    /// Targets to run (those a scenario does not apply to are skipped).
    pub targets: Vec<Target>,
    /// Where stores go.
    pub work_dir: PathBuf,
    /// How to start servers.
    pub launch: Launch,
    /// Keep the stores after the run.
    pub keep: bool,
    /// Print progress to stderr.
    pub progress: bool,
    /// Regie instances on the one PostgreSQL database of `launch` in (a), (d) and (f), devices
    /// spread round-robin over them (issue 17); 1 otherwise.
    pub instances: usize,
}

impl Common {
    /// Prints a progress line.
    pub fn say(&self, msg: impl AsRef<str>) {
        if self.progress {
            eprintln!("[regie-load] {}", msg.as_ref());
        }
    }

    /// (round, target) in running order: every round has each applicable target once, the
    /// first target rotating from round to round.
    pub fn rounds(&self, applicable: &[Target]) -> Vec<(usize, Target)> {
        let ts: Vec<Target> = self
            .targets
            .iter()
            .copied()
            .filter(|t| applicable.contains(t))
            .collect();
        let mut out = Vec::new();
        for r in 0..self.runs {
            for i in 0..ts.len() {
                out.push((r, ts[(i + r) % ts.len()]));
            }
        }
        out
    }

    fn dir(&self, scenario: &str, target: Target, run: usize) -> PathBuf {
        self.work_dir
            .join(format!("{scenario}-{}-{run}", target.name()))
    }

    fn clean(&self, dir: &Path) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    async fn start(
        &self,
        target: Target,
        dir: &Path,
        hot_documents: usize,
    ) -> anyhow::Result<ServerProc> {
        let kind = target.kind().ok_or_else(|| anyhow!("raw has no server"))?;
        let launch = self.launch.clone();
        let dir = dir.to_path_buf();
        let server =
            tokio::task::spawn_blocking(move || launch.start(kind, &dir, hot_documents)).await??;
        if kind == Kind::Js {
            // The JS server prints "listening" before its repo has attached the WebSocket
            // handler; connections before that are dropped. Wait until a join is answered.
            let deadline = Instant::now() + Duration::from_secs(30);
            let spec = crate::workload::DeviceSpec {
                index: usize::MAX,
                user: "probe".into(),
                dossiers: Vec::new(),
                actor: automerge::ActorId::random(),
            };
            let wire = Arc::new(Wire::default());
            loop {
                let mut probe = Device::new(&spec, Vec::new(), 0, Instant::now(), wire.clone())?;
                let to = Endpoint {
                    addr: server.addr,
                    path: "/".into(),
                    offer_deflate: server.offer_deflate,
                };
                match tokio::time::timeout(Duration::from_secs(2), probe.connect(&to)).await {
                    Ok(Ok(())) => {
                        probe.close().await;
                        break;
                    }
                    _ if Instant::now() > deadline => bail!("the JS server never answered a join"),
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
        Ok(server)
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Builds a device of `layout` holding `keys` of its dossiers.
fn device(
    layout: &Layout,
    index: usize,
    keys: &[DocumentKey],
    bytes: &dyn Fn(usize) -> DossierBytes,
    epoch: Instant,
    wire: &Arc<Wire>,
) -> anyhow::Result<Device> {
    let spec = &layout.devices[index];
    let dossier_bytes: Vec<(usize, DossierBytes)> =
        spec.dossiers.iter().map(|&k| (k, bytes(k))).collect();
    let docs = dossier_bytes
        .iter()
        .flat_map(|(k, b)| {
            keys.iter()
                .map(move |key| (layout.doc(*k, key), key.kind(), b.get(key)))
        })
        .collect();
    Device::new(spec, docs, layout.seed, epoch, wire.clone())
}

fn endpoint(server: &ServerProc, user: &str) -> anyhow::Result<Endpoint> {
    let tok = match server.kind {
        Kind::Js => None,
        _ => Some(token(&authenticator(), user)?),
    };
    Ok(Endpoint {
        addr: server.addr,
        path: server.path(tok.as_deref()),
        offer_deflate: server.offer_deflate,
    })
}

// ---- (a) and (d): steady editing ------------------------------------------------------------

/// Settings of a steady-editing scenario.
#[derive(Debug, Clone, Serialize)]
pub struct SteadyCfg {
    /// Devices.
    pub devices: usize,
    /// Dossiers.
    pub dossiers: usize,
    /// Dossiers each device follows (plan and record of each).
    pub per_device: usize,
    /// Measured seconds.
    pub duration_s: f64,
    /// Seconds of editing before measuring.
    pub warmup_s: f64,
    /// Edits per second per device; 0 = closed loop (edit whenever below the window).
    pub rate: f64,
    /// Unacknowledged changes a device may have.
    pub window: usize,
    /// Hostile devices attacking during the measured window (scenario f; 0 elsewhere).
    pub attackers: usize,
}

/// Runs a steady-editing scenario (a or d).
pub async fn steady(
    common: &Common,
    scenario: &str,
    cfg: &SteadyCfg,
) -> anyhow::Result<Vec<Measurement>> {
    let layout = Layout::ring(common.seed, cfg.devices, cfg.dossiers, cfg.per_device);
    let bytes: Vec<DossierBytes> = (0..cfg.dossiers)
        .map(|k| dossier_bytes(&layout, k, 0))
        .collect();
    let keys = [DocumentKey::Plan, DocumentKey::Record];
    let mut out = Vec::new();
    let mut regie_acked: Option<f64> = None;
    let all = [
        Target::Regie,
        Target::Plain,
        Target::Bypass,
        Target::Js,
        Target::Raw,
    ];
    for (run, target) in common.rounds(&all) {
        common.say(format!(
            "({scenario}) run {}/{} {}: {} devices × {} dossiers",
            run + 1,
            common.runs,
            target.name(),
            cfg.devices,
            cfg.dossiers
        ));
        let result = if target == Target::Raw {
            let n = regie_acked
                .unwrap_or(cfg.duration_s * 2000.0)
                .clamp(1_000.0, 60_000.0) as usize;
            steady_raw(common, scenario, cfg, &layout, &bytes, &keys, n, run).await
        } else {
            steady_net(common, scenario, cfg, &layout, &bytes, &keys, target, run).await
        };
        match result {
            Ok(m) => {
                if target == Target::Regie {
                    regie_acked = m.metrics.get("acked").copied();
                }
                common.say(format!(
                    "({scenario}) {}: {:.0} acked/s, p50 {:.1} ms, p99 {:.1} ms",
                    target.name(),
                    m.metrics.get("acked_per_s").copied().unwrap_or(f64::NAN),
                    m.metrics.get("lat_p50_ms").copied().unwrap_or(f64::NAN),
                    m.metrics.get("lat_p99_ms").copied().unwrap_or(f64::NAN),
                ));
                out.push(m);
            }
            Err(e) => {
                common.say(format!("({scenario}) {} failed: {e:#}", target.name()));
                let mut m = Measurement::new(scenario, target.name(), run);
                m.notes.push(format!("failed: {e:#}"));
                out.push(m);
            }
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn steady_raw(
    common: &Common,
    scenario: &str,
    cfg: &SteadyCfg,
    layout: &Layout,
    bytes: &[DossierBytes],
    keys: &[DocumentKey],
    changes: usize,
    run: usize,
) -> anyhow::Result<Measurement> {
    let dir = common.dir(scenario, Target::Raw, run);
    let _ = cfg;
    let r = crate::raw::steady(layout, bytes, keys, changes, &dir).await;
    common.clean(&dir);
    let r = r?;
    let mut m = Measurement::new(scenario, "raw", run);
    let secs = r.server_time.as_secs_f64();
    m.set("acked", r.changes as f64);
    m.set("acked_per_s", r.changes as f64 / secs);
    m.set("cpu_us_per_change", secs * 1e6 / r.changes as f64);
    m.set(
        "apply_us_per_change",
        r.apply_time.as_secs_f64() * 1e6 / r.changes as f64,
    );
    m.set(
        "payload_b_per_change",
        r.change_bytes as f64 / r.changes as f64,
    );
    Ok(m)
}

#[allow(clippy::too_many_arguments)]
async fn steady_net(
    common: &Common,
    scenario: &str,
    cfg: &SteadyCfg,
    layout: &Layout,
    bytes: &[DossierBytes],
    keys: &[DocumentKey],
    target: Target,
    run: usize,
) -> anyhow::Result<Measurement> {
    let dir = common.dir(scenario, target, run);
    let _ = std::fs::remove_dir_all(&dir);
    if target != Target::Js {
        seed_regie(
            &dir,
            common.launch.database_url.as_deref(),
            target == Target::Plain,
            layout,
            |k| bytes[k].clone(),
            |_| {},
        )
        .await?;
    }
    let instances = if target == Target::Js {
        1
    } else {
        common.instances.max(1)
    };
    let mut servers = Vec::with_capacity(instances);
    for _ in 0..instances {
        // One directory: with PostgreSQL it holds only the development key, which instances
        // on one database must share.
        servers.push(
            common
                .start(target, &dir, 10_000.max(3 * cfg.dossiers))
                .await?,
        );
    }
    let pids: Vec<String> = servers.iter().map(|s| s.pid().to_string()).collect();
    let instance_of: Option<Arc<HashMap<automerge::ActorId, usize>>> = (instances > 1).then(|| {
        Arc::new(
            layout
                .devices
                .iter()
                .map(|s| (s.actor.clone(), s.index % instances))
                .collect(),
        )
    });
    let epoch = Instant::now();
    let wire = Arc::new(Wire::default());
    let live = Arc::new(AtomicU64::new(0));
    let n = layout.devices.len();
    let ready = Arc::new(AtomicUsize::new(0));
    let (go_tx, go_rx) = watch::channel(None::<(Window, Pace)>);
    let connecting = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::with_capacity(n);
    for spec in &layout.devices {
        let mut dev = device(
            layout,
            spec.index,
            keys,
            &|k| bytes[k].clone(),
            epoch,
            &wire,
        )?;
        dev.report_acks_to(live.clone());
        dev.instances = instance_of.clone().map(|of| (of, spec.index % instances));
        let to = endpoint(&servers[spec.index % instances], &spec.user)?;
        let (ready, mut go, connecting) = (ready.clone(), go_rx.clone(), connecting.clone());
        tasks.push(tokio::spawn(async move {
            let setup = async {
                let _permit = connecting.acquire().await?;
                dev.connect(&to).await?;
                dev.open_all().await?;
                dev.run_until(Duration::from_secs(120), Device::in_sync)
                    .await
            }
            .await;
            ready.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = setup {
                return (dev.stats, Some(format!("setup: {e:#}")));
            }
            // Keep answering (pings, the server's sync messages) until everyone is ready.
            let (window, pace) = match dev.wait_for(&mut go).await {
                Ok(Some(v)) => v,
                Ok(None) => return (dev.stats, Some("no start signal".into())),
                Err(e) => return (dev.stats, Some(format!("while waiting: {e:#}"))),
            };
            dev.window = window;
            let r = dev.run_steady(pace).await;
            dev.close().await;
            (dev.stats, r.err().map(|e| format!("{e:#}")))
        }));
    }
    while ready.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t0 = Instant::now();
    common.say(format!(
        "({scenario}) {}: {n} devices connected and in sync; warming up {:.0} s, measuring {:.0} s",
        target.name(),
        cfg.warmup_s,
        cfg.duration_s
    ));
    let window = Window {
        start: t0 + Duration::from_secs_f64(cfg.warmup_s),
        end: t0 + Duration::from_secs_f64(cfg.warmup_s + cfg.duration_s),
    };
    let pace = Pace {
        rate: cfg.rate,
        window: cfg.window,
        stop: window.end,
    };
    let _ = go_tx.send(Some((window, pace)));
    tokio::time::sleep_until(window.start).await;
    let flood = Arc::new(crate::flood::FloodStats::default());
    let bomb = Arc::new(crate::flood::deflate_bomb());
    let mut hostile = Vec::new();
    for i in 0..cfg.attackers {
        let to = endpoint(&servers[i % instances], &layout.devices[i % n].user)?;
        let doc = crate::flood::target(layout, i);
        hostile.push(tokio::spawn(crate::flood::hostile(
            to,
            doc,
            bomb.clone(),
            window.end,
            flood.clone(),
        )));
    }
    let s0 = ProcStats::sum(&pids)?;
    let me0 = ProcStats::of("self")?;
    let w0 = wire.total();
    let a0 = live.load(Ordering::Relaxed);
    let mut last = (Instant::now(), a0);
    while Instant::now() < window.end {
        let next = (Instant::now() + Duration::from_secs(5)).min(window.end);
        tokio::time::sleep_until(next).await;
        let now = (Instant::now(), live.load(Ordering::Relaxed));
        common.say(format!(
            "({scenario}) {}: {:.0} acked/s",
            target.name(),
            (now.1 - last.1) as f64 / (now.0 - last.0).as_secs_f64()
        ));
        last = now;
    }
    let s1 = ProcStats::sum(&pids)?;
    let me1 = ProcStats::of("self")?;
    let w1 = wire.total();
    for h in hostile {
        let _ = h.await;
    }
    let mut total = DeviceStats::default();
    let mut failures = Vec::new();
    for t in tasks {
        let (stats, err) = t.await?;
        total.merge(stats);
        failures.extend(err);
    }
    for server in servers {
        server.stop();
    }
    common.clean(&dir);

    let mut m = Measurement::new(scenario, target.name(), run);
    if instances > 1 {
        m.set("instances", instances as f64);
        m.set(
            "lat_within_p99_ms",
            percentile_ms(&mut total.recv_within_us, 99.0),
        );
        m.set(
            "lat_cross_p99_ms",
            percentile_ms(&mut total.recv_cross_us, 99.0),
        );
        m.set("receipts_within", total.recv_within_us.len() as f64);
        m.set("receipts_cross", total.recv_cross_us.len() as f64);
    }
    let d = cfg.duration_s;
    let acked = total.acked as f64;
    m.set("acked", acked);
    m.set("acked_per_s", acked / d);
    m.set("edits_per_s", total.edits as f64 / d);
    m.set("lat_p50_ms", percentile_ms(&mut total.recv_us, 50.0));
    m.set("lat_p95_ms", percentile_ms(&mut total.recv_us, 95.0));
    m.set("lat_p99_ms", percentile_ms(&mut total.recv_us, 99.0));
    m.set("ack_p50_ms", percentile_ms(&mut total.ack_us, 50.0));
    m.set("ack_p99_ms", percentile_ms(&mut total.ack_us, 99.0));
    m.set("wire_b_per_change", (w1 - w0) as f64 / acked);
    m.set(
        "payload_b_per_change",
        (total.payload_up + total.payload_down) as f64 / acked,
    );
    m.set(
        "msgs_per_change",
        (total.msgs_up + total.msgs_down) as f64 / acked,
    );
    let cpu = s1.cpu_s - s0.cpu_s;
    m.set("cpu_pct", 100.0 * cpu / d);
    m.set("cpu_us_per_change", cpu * 1e6 / acked);
    m.set("rss_mb", mb(s1.rss));
    m.set("peak_rss_mb", mb(s1.peak_rss));
    m.set("loadgen_cpu_pct", 100.0 * (me1.cpu_s - me0.cpu_s) / d);
    m.set("failed_devices", failures.len() as f64);
    m.set("problems", total.problems as f64);
    if cfg.attackers > 0 {
        m.set("attacks", flood.attacks.load(Ordering::Relaxed) as f64);
        m.set(
            "attackers_closed",
            flood.closed.load(Ordering::Relaxed) as f64,
        );
        m.set(
            "attackers_refused",
            flood.refused.load(Ordering::Relaxed) as f64,
        );
    }
    if let Some(p) = total.first_problem {
        m.notes.push(format!("first problem: {p}"));
    }
    if let Some(f) = failures.first() {
        m.notes.push(format!("first failure: {f}"));
        common.say(format!(
            "({scenario}) {}: {} devices failed, first: {f}",
            target.name(),
            failures.len()
        ));
    }
    Ok(m)
}

// ---- (f): hostile devices ------------------------------------------------------------------

/// Runs scenario (f): the steady workload on Regie, `quiet` and under `flood` by
/// `cfg.attackers` hostile devices, alternating within each round.
pub async fn flood(common: &Common, cfg: &SteadyCfg) -> anyhow::Result<Vec<Measurement>> {
    let layout = Layout::ring(common.seed, cfg.devices, cfg.dossiers, cfg.per_device);
    let bytes: Vec<DossierBytes> = (0..cfg.dossiers)
        .map(|k| dossier_bytes(&layout, k, 0))
        .collect();
    let keys = [DocumentKey::Plan, DocumentKey::Record];
    let mut out = Vec::new();
    for run in 0..common.runs {
        let mut variants = [("quiet", 0), ("flood", cfg.attackers)];
        variants.rotate_left(run % 2);
        for (name, attackers) in variants {
            common.say(format!(
                "(f) run {}/{} {name}: {} devices, {attackers} hostile",
                run + 1,
                common.runs,
                cfg.devices
            ));
            let cfg = SteadyCfg {
                attackers,
                ..cfg.clone()
            };
            let m = steady_net(
                common,
                "f",
                &cfg,
                &layout,
                &bytes,
                &keys,
                Target::Regie,
                run,
            )
            .await;
            let mut m = m.unwrap_or_else(|e| {
                let mut m = Measurement::new("f", name, run);
                m.notes.push(format!("failed: {e:#}"));
                m
            });
            m.target = name.into();
            common.say(format!(
                "(f) {name}: p50 {:.1} ms, p95 {:.1} ms, peak RSS {:.0} MB",
                m.metrics.get("lat_p50_ms").copied().unwrap_or(f64::NAN),
                m.metrics.get("lat_p95_ms").copied().unwrap_or(f64::NAN),
                m.metrics.get("peak_rss_mb").copied().unwrap_or(f64::NAN),
            ));
            out.push(m);
        }
    }
    Ok(out)
}

// ---- (b): reconnect ------------------------------------------------------------------------

/// Settings of the reconnect scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ReconnectCfg {
    /// Dossiers in the caseload (plan, record and meta each).
    pub dossiers: usize,
    /// Offline edits per dossier.
    pub edits: usize,
    /// Changes per plan and record before going offline.
    pub history: usize,
}

/// Makes the offline edits of scenario (b) on `dev`; returns the raw bytes of the changes.
fn offline_edits(dev: &mut Device, layout: &Layout, cfg: &ReconnectCfg) -> u64 {
    let mut rng = Rng::new(layout.seed).fork(555);
    let mut raw = 0;
    for k in 0..cfg.dossiers {
        for _ in 0..cfg.edits {
            let key = if rng.chance(0.5) {
                DocumentKey::Plan
            } else {
                DocumentKey::Record
            };
            if let Some(i) = dev.doc_index(layout.doc(k, &key)) {
                raw += dev.edit_doc(i).unwrap_or(0) as u64;
            }
        }
    }
    raw
}

/// Runs scenario (b).
pub async fn reconnect(common: &Common, cfg: &ReconnectCfg) -> anyhow::Result<Vec<Measurement>> {
    let layout = Layout::ring(common.seed, 1, cfg.dossiers, cfg.dossiers);
    common.say(format!(
        "(b) building {} dossiers with {} changes of history each in plan and record",
        cfg.dossiers, cfg.history
    ));
    let bytes: Vec<DossierBytes> = (0..cfg.dossiers)
        .map(|k| dossier_bytes(&layout, k, cfg.history))
        .collect();
    let keys = [DocumentKey::Plan, DocumentKey::Record, DocumentKey::Meta];
    let all = [
        Target::Regie,
        Target::Plain,
        Target::Bypass,
        Target::Js,
        Target::Raw,
    ];
    let mut out = Vec::new();
    for (run, target) in common.rounds(&all) {
        let r = if target == Target::Raw {
            reconnect_raw(common, cfg, &layout, &bytes, &keys, run).await
        } else {
            reconnect_net(common, cfg, &layout, &bytes, &keys, target, run).await
        };
        match r {
            Ok(m) => {
                common.say(format!(
                    "(b) run {}/{} {}: reconciled in {:.0} ms, {:.0} bytes on the wire = {:.2}× the raw changes",
                    run + 1,
                    common.runs,
                    target.name(),
                    m.metrics["reconcile_ms"],
                    m.metrics["wire_bytes"],
                    m.metrics["wire_over_raw"],
                ));
                out.push(m);
            }
            Err(e) => {
                common.say(format!("(b) {} failed: {e:#}", target.name()));
                let mut m = Measurement::new("b", target.name(), run);
                m.notes.push(format!("failed: {e:#}"));
                out.push(m);
            }
        }
    }
    Ok(out)
}

async fn reconnect_raw(
    common: &Common,
    cfg: &ReconnectCfg,
    layout: &Layout,
    bytes: &[DossierBytes],
    keys: &[DocumentKey],
    run: usize,
) -> anyhow::Result<Measurement> {
    let wire = Arc::new(Wire::default());
    let mut dev = device(
        layout,
        0,
        keys,
        &|k| bytes[k].clone(),
        Instant::now(),
        &wire,
    )?;
    let before: Vec<Vec<ChangeHash>> = dev.docs.iter().map(|d| d.doc.get_heads()).collect();
    let raw_bytes = offline_edits(&mut dev, layout, cfg);
    let dir = common.dir("b", Target::Raw, run);
    let store = RawStore::open(&dir).await?;
    let mut spent = Duration::ZERO;
    for (k, spec) in layout.dossiers.iter().enumerate() {
        for key in keys {
            let id = layout.doc(k, key);
            let i = dev.doc_index(id).expect("followed");
            let changes = dev.docs[i].doc.get_changes(&before[i]);
            if changes.is_empty() {
                continue;
            }
            let mut server = RawDoc {
                doc: Automerge::load(bytes[spec.index].get(key))?,
                seq: 0,
            };
            spent += server.accept(&store, id, changes).await?;
        }
    }
    store.close().await;
    common.clean(&dir);
    let mut m = Measurement::new("b", "raw", run);
    m.set("reconcile_ms", spent.as_secs_f64() * 1e3);
    m.set("raw_change_bytes", raw_bytes as f64);
    m.set("wire_bytes", raw_bytes as f64);
    m.set("wire_over_raw", 1.0);
    m.set("payload_over_raw", 1.0);
    Ok(m)
}

async fn reconnect_net(
    common: &Common,
    cfg: &ReconnectCfg,
    layout: &Layout,
    bytes: &[DossierBytes],
    keys: &[DocumentKey],
    target: Target,
    run: usize,
) -> anyhow::Result<Measurement> {
    let dir = common.dir("b", target, run);
    let _ = std::fs::remove_dir_all(&dir);
    if target != Target::Js {
        seed_regie(
            &dir,
            common.launch.database_url.as_deref(),
            target == Target::Plain,
            layout,
            |k| bytes[k].clone(),
            |_| {},
        )
        .await?;
    }
    let server = common.start(target, &dir, 10_000).await?;
    let pid = server.pid().to_string();
    let wire = Arc::new(Wire::default());
    let mut dev = device(
        layout,
        0,
        keys,
        &|k| bytes[k].clone(),
        Instant::now(),
        &wire,
    )?;
    let to = endpoint(&server, &layout.devices[0].user)?;
    // Online once: both sides learn each other's heads; the server keeps the device's sync
    // states under its storage id when it disconnects.
    dev.connect(&to).await?;
    dev.open_all().await?;
    dev.run_until(Duration::from_secs(120), Device::in_sync)
        .await?;
    dev.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Offline: edits, then the device restarts (keeping what a sync state persists).
    let raw_bytes = offline_edits(&mut dev, layout, cfg);
    dev.persist_and_reload_sync_states();
    dev.stats = DeviceStats::default();
    let s0 = ProcStats::of(&pid)?;
    let w0 = wire.total();
    let t0 = Instant::now();
    dev.connect(&to).await?;
    dev.open_all().await?;
    dev.run_until(Duration::from_secs(60), |d| d.pending() == 0)
        .await?;
    let reconciled = t0.elapsed();
    let at_ack = wire.total() - w0;
    dev.drain(Duration::from_millis(300)).await?;
    let all = wire.total() - w0;
    let s1 = ProcStats::of(&pid)?;
    dev.close().await;
    server.stop();
    common.clean(&dir);
    let mut m = Measurement::new("b", target.name(), run);
    m.set("reconcile_ms", reconciled.as_secs_f64() * 1e3);
    m.set("raw_change_bytes", raw_bytes as f64);
    m.set("wire_bytes", all as f64);
    m.set("wire_bytes_at_ack", at_ack as f64);
    m.set("wire_over_raw", all as f64 / raw_bytes as f64);
    m.set(
        "payload_over_raw",
        (dev.stats.payload_up + dev.stats.payload_down) as f64 / raw_bytes as f64,
    );
    m.set("messages", (dev.stats.msgs_up + dev.stats.msgs_down) as f64);
    m.set("cpu_ms", (s1.cpu_s - s0.cpu_s) * 1e3);
    m.set("problems", dev.stats.problems as f64);
    if let Some(p) = dev.stats.first_problem.take() {
        m.notes.push(format!("first problem: {p}"));
    }
    Ok(m)
}

// ---- (c): idle connections -----------------------------------------------------------------

/// Settings of the idle-connections scenario.
#[derive(Debug, Clone, Serialize)]
pub struct IdleCfg {
    /// Connections (one device each).
    pub connections: usize,
    /// Dossiers; each connection syncs the plan of one.
    pub dossiers: usize,
}

/// Runs scenario (c).
pub async fn idle(common: &Common, cfg: &IdleCfg) -> anyhow::Result<Vec<Measurement>> {
    let layout = Layout::ring(common.seed, cfg.connections, cfg.dossiers, 1);
    let base = dossier_bytes(&layout, 0, 0);
    let metas: Vec<Vec<u8>> = layout
        .dossiers
        .iter()
        .map(|d| crate::workload::meta_bytes(&d.assigned))
        .collect();
    let bytes = |k: usize| DossierBytes {
        plan: base.plan.clone(),
        record: base.record.clone(),
        meta: metas[k].clone(),
    };
    let mut out = Vec::new();
    for (run, target) in common.rounds(&[Target::Regie, Target::Plain, Target::Bypass, Target::Js])
    {
        common.say(format!(
            "(c) run {}/{} {}: {} connections",
            run + 1,
            common.runs,
            target.name(),
            cfg.connections
        ));
        match idle_net(common, cfg, &layout, &bytes, target, run).await {
            Ok(m) => {
                common.say(format!(
                    "(c) {}: {:.0} MB with {} connections ({:.1} KB each)",
                    target.name(),
                    m.metrics["rss_mb"],
                    cfg.connections,
                    m.metrics["kb_per_conn"]
                ));
                out.push(m);
            }
            Err(e) => {
                common.say(format!("(c) {} failed: {e:#}", target.name()));
                let mut m = Measurement::new("c", target.name(), run);
                m.notes.push(format!("failed: {e:#}"));
                out.push(m);
            }
        }
    }
    Ok(out)
}

async fn idle_net(
    common: &Common,
    cfg: &IdleCfg,
    layout: &Layout,
    bytes: &dyn Fn(usize) -> DossierBytes,
    target: Target,
    run: usize,
) -> anyhow::Result<Measurement> {
    let dir = common.dir("c", target, run);
    let _ = std::fs::remove_dir_all(&dir);
    if target != Target::Js {
        seed_regie(
            &dir,
            common.launch.database_url.as_deref(),
            target == Target::Plain,
            layout,
            bytes,
            |_| {},
        )
        .await?;
    }
    let server = common.start(target, &dir, 10_000).await?;
    let pid = server.pid().to_string();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s0 = ProcStats::of(&pid)?;
    let wire = Arc::new(Wire::default());
    let epoch = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let ready = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let connecting = Arc::new(Semaphore::new(128));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let keys = [DocumentKey::Plan];
    let mut tasks = Vec::with_capacity(cfg.connections);
    let t0 = Instant::now();
    for spec in &layout.devices {
        let mut dev = device(layout, spec.index, &keys, bytes, epoch, &wire)?;
        let to = endpoint(&server, &spec.user)?;
        let (ready, failed, connecting, stop, first_error) = (
            ready.clone(),
            failed.clone(),
            connecting.clone(),
            stop_rx.clone(),
            first_error.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let setup = async {
                let _permit = connecting.acquire().await?;
                dev.connect(&to).await?;
                dev.open_all().await?;
                dev.run_until(Duration::from_secs(300), Device::in_sync)
                    .await
            }
            .await;
            if let Err(e) = setup {
                failed.fetch_add(1, Ordering::Relaxed);
                first_error
                    .lock()
                    .expect("not poisoned")
                    .get_or_insert(format!("{e:#}"));
                return;
            }
            ready.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = dev.idle(stop).await {
                first_error
                    .lock()
                    .expect("not poisoned")
                    .get_or_insert(format!("while idle: {e:#}"));
            }
            dev.close().await;
        }));
    }
    let deadline = t0 + Duration::from_secs(600);
    loop {
        let (r, f) = (
            ready.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
        );
        if r + f >= cfg.connections {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {r} of {} connections ready after 600 s",
                cfg.connections
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        common.say(format!(
            "(c) {}: {} connected and in sync, {} failed",
            target.name(),
            ready.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed)
        ));
    }
    let connect_s = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s1 = ProcStats::of(&pid)?;
    let n = ready.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    server.stop();
    common.clean(&dir);
    let mut m = Measurement::new("c", target.name(), run);
    m.set("connections", n as f64);
    m.set("connect_s", connect_s);
    m.set("rss_mb", mb(s1.rss));
    m.set("rss_start_mb", mb(s0.rss));
    m.set(
        "kb_per_conn",
        (s1.rss.saturating_sub(s0.rss)) as f64 / 1024.0 / n.max(1) as f64,
    );
    m.set("cpu_s", s1.cpu_s - s0.cpu_s);
    m.set("failed_devices", failed.load(Ordering::Relaxed) as f64);
    if let Some(e) = first_error.lock().expect("not poisoned").take() {
        m.notes.push(format!("first error: {e}"));
    }
    Ok(m)
}

// ---- (e): memory per hot dossier, cold start ----------------------------------------------

/// Settings of the memory scenario.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryCfg {
    /// Dossiers in the store.
    pub stored: usize,
    /// Dossiers made hot (their plan, record and meta synced by devices).
    pub hot: usize,
    /// Changes in each hot plan and record.
    pub history: usize,
    /// Hot dossiers per device.
    pub per_device: usize,
}

fn memory_layout(seed: u64, cfg: &MemoryCfg) -> Layout {
    let devices = cfg.hot.div_ceil(cfg.per_device.max(1));
    let mut layout = Layout::ring(seed, devices, cfg.hot, cfg.per_device);
    let cold = Layout::ring(seed ^ 0xC01D, 0, cfg.stored.saturating_sub(cfg.hot), 1);
    for mut d in cold.dossiers {
        d.index += cfg.hot;
        layout.dossiers.push(d);
    }
    layout
}

/// Loads the hot dossiers of scenario (e) into memory in this process and returns the memory
/// they take per dossier, in KB. Run in a fresh process (`regie-load --probe-raw-memory`) so
/// that freed memory of earlier work does not hide the growth.
pub fn raw_memory_probe(seed: u64, cfg: &MemoryCfg) -> anyhow::Result<f64> {
    let layout = memory_layout(seed, cfg);
    let bytes: Vec<DossierBytes> = (0..cfg.hot)
        .map(|k| dossier_bytes(&layout, k, cfg.history))
        .collect();
    let before = ProcStats::of("self")?;
    let mut docs = Vec::with_capacity(3 * cfg.hot);
    for b in &bytes {
        for saved in [&b.plan, &b.record, &b.meta] {
            docs.push(Automerge::load(saved)?);
        }
    }
    let after = ProcStats::of("self")?;
    std::hint::black_box(&docs);
    Ok(after.rss.saturating_sub(before.rss) as f64 / 1024.0 / cfg.hot as f64)
}

/// Runs scenario (e).
pub async fn memory(common: &Common, cfg: &MemoryCfg) -> anyhow::Result<Vec<Measurement>> {
    let layout = memory_layout(common.seed, cfg);
    common.say(format!(
        "(e) building {} hot dossiers with {} changes in plan and record",
        cfg.hot, cfg.history
    ));
    let hot_bytes: Vec<DossierBytes> = (0..cfg.hot)
        .map(|k| dossier_bytes(&layout, k, cfg.history))
        .collect();
    let cold = {
        let b = dossier_bytes(&layout, cfg.hot.min(layout.dossiers.len() - 1), 0);
        DossierBytes {
            meta: crate::workload::meta_bytes(&[]),
            ..b
        }
    };
    let bytes = |k: usize| {
        if k < cfg.hot {
            hot_bytes[k].clone()
        } else {
            cold.clone()
        }
    };
    let template = common.work_dir.join(format!(
        "e-template-{}-{}-{}-{}",
        common.seed, cfg.stored, cfg.hot, cfg.history
    ));
    // Encryption off needs a store written without it: a template of its own.
    let plain_template = common.work_dir.join(format!(
        "e-template-plain-{}-{}-{}-{}",
        common.seed, cfg.stored, cfg.hot, cfg.history
    ));
    if common.targets.contains(&Target::Plain) && !plain_template.join("regie.sqlite3").exists() {
        let _ = std::fs::remove_dir_all(&plain_template);
        common.say(format!(
            "(e) seeding {} dossiers unencrypted into {}",
            cfg.stored,
            plain_template.display()
        ));
        seed_regie(&plain_template, None, true, &layout, bytes, |n| {
            common.say(format!("(e) seeded {n} dossiers"))
        })
        .await?;
    }
    let needs_store = common
        .targets
        .iter()
        .any(|t| matches!(t, Target::Regie | Target::Bypass | Target::Raw));
    if needs_store && !template.join("regie.sqlite3").exists() {
        let _ = std::fs::remove_dir_all(&template);
        let t = Instant::now();
        common.say(format!(
            "(e) seeding {} dossiers into {} (once; reused while it exists)",
            cfg.stored,
            template.display()
        ));
        seed_regie(&template, None, false, &layout, bytes, |n| {
            common.say(format!("(e) seeded {n} dossiers"))
        })
        .await?;
        common.say(format!("(e) seeded in {:.0} s", t.elapsed().as_secs_f64()));
    }
    let mut out = Vec::new();
    let all = [
        Target::Regie,
        Target::Plain,
        Target::Bypass,
        Target::Js,
        Target::Raw,
    ];
    for (run, target) in common.rounds(&all) {
        common.say(format!(
            "(e) run {}/{} {}: {} stored, {} hot",
            run + 1,
            common.runs,
            target.name(),
            cfg.stored,
            cfg.hot
        ));
        let r = if target == Target::Raw {
            memory_raw(common, cfg, &template, run).await
        } else {
            let template = if target == Target::Plain {
                &plain_template
            } else {
                &template
            };
            memory_net(common, cfg, &layout, &bytes, template, target, run).await
        };
        match r {
            Ok(m) => {
                common.say(format!(
                    "(e) {}: cold start {:.2} s, {:.0} KB per hot dossier",
                    target.name(),
                    m.metrics.get("cold_start_s").copied().unwrap_or(f64::NAN),
                    m.metrics
                        .get("kb_per_hot_dossier")
                        .copied()
                        .unwrap_or(f64::NAN),
                ));
                out.push(m);
            }
            Err(e) => {
                common.say(format!("(e) {} failed: {e:#}", target.name()));
                let mut m = Measurement::new("e", target.name(), run);
                m.notes.push(format!("failed: {e:#}"));
                out.push(m);
            }
        }
    }
    Ok(out)
}

async fn memory_raw(
    common: &Common,
    cfg: &MemoryCfg,
    template: &Path,
    run: usize,
) -> anyhow::Result<Measurement> {
    let mut m = Measurement::new("e", "raw", run);
    // Cold start floor: read the dossier and document index, as the hub does at start.
    let t = Instant::now();
    let dossiers = crate::raw::read_index(template).await?;
    m.set("cold_start_s", t.elapsed().as_secs_f64());
    m.set("stored_dossiers", dossiers as f64);
    // Memory floor: the hot documents loaded in a fresh process.
    let exe = std::env::current_exe()?;
    let output = tokio::process::Command::new(exe)
        .args([
            "--probe-raw-memory",
            "--seed",
            &common.seed.to_string(),
            "--hot",
            &cfg.hot.to_string(),
            "--history",
            &cfg.history.to_string(),
            "--dossiers",
            &cfg.stored.to_string(),
        ])
        .output()
        .await
        .context("cannot run the raw memory probe")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let kb: f64 = text
        .trim()
        .parse()
        .with_context(|| format!("raw memory probe said {text:?}"))?;
    m.set("kb_per_hot_dossier", kb);
    Ok(m)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn memory_net(
    common: &Common,
    cfg: &MemoryCfg,
    layout: &Layout,
    bytes: &dyn Fn(usize) -> DossierBytes,
    template: &Path,
    target: Target,
    run: usize,
) -> anyhow::Result<Measurement> {
    let dir = common.dir("e", target, run);
    let _ = std::fs::remove_dir_all(&dir);
    if target != Target::Js {
        copy_dir(template, &dir)?;
    }
    let server = common.start(target, &dir, 10_000).await?;
    let pid = server.pid().to_string();
    let mut m = Measurement::new("e", target.name(), run);
    m.set("cold_start_s", server.ready_after.as_secs_f64());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s0 = ProcStats::of(&pid)?;
    m.set("rss_start_mb", mb(s0.rss));
    let keys = [DocumentKey::Plan, DocumentKey::Record, DocumentKey::Meta];
    let wire = Arc::new(Wire::default());
    let epoch = Instant::now();
    let t = Instant::now();
    let connecting = Arc::new(Semaphore::new(32));
    let mut tasks = Vec::new();
    for spec in &layout.devices {
        let mut dev = device(layout, spec.index, &keys, bytes, epoch, &wire)?;
        let to = endpoint(&server, &spec.user)?;
        let connecting = connecting.clone();
        tasks.push(tokio::spawn(async move {
            let r = async {
                let _permit = connecting.acquire().await?;
                dev.connect(&to).await?;
                dev.open_all().await?;
                dev.run_until(Duration::from_secs(300), Device::in_sync)
                    .await
            }
            .await;
            (dev, r)
        }));
    }
    let mut devices = Vec::new();
    let mut failures = Vec::new();
    for task in tasks {
        let (dev, r) = task.await?;
        if let Err(e) = r {
            failures.push(format!("{e:#}"));
        }
        devices.push(dev);
    }
    m.set("hot_load_s", t.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s1 = ProcStats::of(&pid)?;
    m.set("rss_hot_mb", mb(s1.rss));
    m.set(
        "kb_per_hot_dossier",
        s1.rss.saturating_sub(s0.rss) as f64 / 1024.0 / cfg.hot as f64,
    );
    m.set("failed_devices", failures.len() as f64);
    if let Some(f) = failures.first() {
        m.notes.push(format!("first failure: {f}"));
    }
    for mut d in devices {
        d.close().await;
    }
    server.stop();
    common.clean(&dir);
    Ok(m)
}
