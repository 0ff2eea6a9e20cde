//! `regie-load`: runs the benchmark scenarios of issue 8 against Regie, Regie with the privacy
//! bypass, the JS automerge-repo sync server and raw Automerge, alternating, and prints a
//! table of medians (with min–max over runs) and ratios to Regie; writes every measurement as
//! JSON. See `BENCHMARKS.md` for what each scenario does and how to read the numbers.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use regie_bench::report::{self, Measurement};
use regie_bench::scenario::{
    Common, IdleCfg, MemoryCfg, ReconnectCfg, SteadyCfg, Target, flood, idle, memory,
    raw_memory_probe, reconnect, steady,
};
use regie_bench::server::Launch;

/// A scenario of issue 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// 100 devices × 100 dossiers editing steadily: throughput, latency, bytes, CPU, memory.
    A,
    /// A tablet with 40 dossiers reconnects after 20 offline edits each: time and bytes.
    B,
    /// 10,000 idle authenticated connections: server memory.
    C,
    /// 500 active devices, each saving an edit every 5 s: p99 edit-to-recipient latency.
    D,
    /// 100,000 stored dossiers: cold start, and memory per hot dossier.
    E,
    /// 50 honest devices editing every second, quiet and under attack by 8 hostile devices:
    /// honest latency and server memory.
    F,
    /// a, b, c, d and e in turn.
    All,
}

/// Benchmarks Regie against the JS automerge-repo sync server and raw Automerge.
///
/// Every number is measured with simulated devices over real WebSockets on 127.0.0.1; each
/// server runs as its own process (regie-bench-server, or node for the JS server, which is
/// installed with npm into bench/js on first use). Options left out take the scenario's
/// default (shown in brackets in each option's help).
#[derive(Debug, Parser)]
#[command(name = "regie-load", version, about, long_about)]
struct Args {
    /// Scenarios to run.
    #[arg(value_enum, required_unless_present = "probe_raw_memory")]
    scenarios: Vec<Scenario>,
    /// Targets to compare (each scenario skips those that do not apply).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "regie,bypass,js,raw"
    )]
    targets: Vec<Target>,
    /// Rounds; every target runs once per round, alternating.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Workload seed: the same seed gives the same dossiers, documents and edits.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Devices [a: 100, c: 10000 connections, d: 500].
    #[arg(long)]
    devices: Option<usize>,
    /// Dossiers [a: 100, b: 40, c: 1000, d: 500, e: 100000 stored].
    #[arg(long)]
    dossiers: Option<usize>,
    /// Measured seconds of editing [a, d: 20].
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of editing before measuring [a, d: 3].
    #[arg(long)]
    warmup: Option<f64>,
    /// Edits per second per device; 0 edits whenever the window allows [a: 0, d: 0.2].
    #[arg(long)]
    rate: Option<f64>,
    /// Unacknowledged changes a device may have in flight [a: 1, d: 64].
    #[arg(long)]
    window: Option<usize>,
    /// Hostile devices attacking during the measured window [f: 8].
    #[arg(long)]
    attackers: Option<usize>,
    /// Offline edits per dossier [b: 20].
    #[arg(long)]
    edits: Option<usize>,
    /// Changes per plan and record before the run [b: 50, e: 100].
    #[arg(long)]
    history: Option<usize>,
    /// Hot dossiers [e: 500].
    #[arg(long)]
    hot: Option<usize>,
    /// Directory for the stores [system temp dir/regie-bench].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the stores afterwards.
    #[arg(long)]
    keep: bool,
    /// Where to write every measurement as JSON.
    #[arg(long, default_value = "target/regie-bench/results.json")]
    json: PathBuf,
    /// The regie-bench-server binary [next to this one].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The directory with the JS server's package.json [bench/js of this source tree].
    #[arg(long)]
    js_dir: Option<PathBuf>,
    /// Serve Regie with TCP_NODELAY on accepted sockets (a proposed server change).
    #[arg(long)]
    nodelay: bool,
    /// Store Regie in this PostgreSQL database instead of SQLite (issue 17): an empty one
    /// per invocation, so one Regie target and one run (`--targets regie --runs 1`).
    #[arg(long)]
    database_url: Option<String>,
    /// Regie instances on the one database of --database-url in (a), (d) and (f), devices
    /// spread round-robin over them (issue 17).
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Devices do not offer permessage-deflate (as tokio-tungstenite clients and Regie's Rust
    /// client do not); by default they offer it, as browsers and Node's `ws` do.
    #[arg(long)]
    no_deflate: bool,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
    /// Internal: load scenario (e)'s hot dossiers in this process and print KB per dossier.
    #[arg(long, hide = true)]
    probe_raw_memory: bool,
}

fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        .unwrap_or_default();
    serde_json::json!({
        "cpu": model,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "mem_kb": mem,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // 10,000 connections need more descriptors than the usual soft limit of 1,024; the hard
    // limit must allow it (`ulimit -Hn`), and child servers inherit the raised soft limit.
    let nofile = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    if args.probe_raw_memory {
        let cfg = MemoryCfg {
            stored: args.dossiers.unwrap_or(100_000),
            hot: args.hot.unwrap_or(500),
            history: args.history.unwrap_or(100),
            per_device: 10,
        };
        println!("{}", raw_memory_probe(args.seed, &cfg)?);
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(args, nofile))
}

async fn run(args: Args, nofile: u64) -> anyhow::Result<()> {
    let mut launch = Launch::default_paths();
    if let Some(bin) = &args.server_bin {
        launch.regie_bin = bin.clone();
    }
    if let Some(dir) = &args.js_dir {
        launch.js_dir = dir.clone();
    }
    launch.offer_deflate = !args.no_deflate;
    if args.nodelay {
        launch.regie_args.push("--nodelay".into());
    }
    if let Some(url) = &args.database_url {
        let regie_targets = args
            .targets
            .iter()
            .filter(|t| matches!(t, Target::Regie | Target::Bypass))
            .count();
        if args.runs != 1 || regie_targets != 1 || args.scenarios.len() != 1 {
            anyhow::bail!(
                "--database-url takes an empty database for one server: one scenario, one Regie target and --runs 1"
            );
        }
        launch
            .regie_args
            .extend(["--database-url".into(), url.clone()]);
        launch.database_url = Some(url.clone());
    }
    if args.instances > 1 && args.database_url.is_none() {
        anyhow::bail!(
            "--instances needs --database-url: several instances share one PostgreSQL database"
        );
    }
    let common = Common {
        instances: args.instances,
        seed: args.seed,
        runs: args.runs.max(1),
        targets: args.targets.clone(),
        work_dir: args
            .work_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("regie-bench")),
        launch,
        keep: args.keep,
        progress: !args.quiet,
    };
    std::fs::create_dir_all(&common.work_dir)?;
    common.say(format!(
        "seed {}, {} runs, targets {:?}, open files limit {nofile}",
        common.seed,
        common.runs,
        common.targets.iter().map(|t| t.name()).collect::<Vec<_>>()
    ));
    let mut scenarios = args.scenarios.clone();
    if scenarios.contains(&Scenario::All) {
        scenarios = vec![
            Scenario::A,
            Scenario::B,
            Scenario::C,
            Scenario::D,
            Scenario::E,
        ];
    }
    let mut all: Vec<Measurement> = Vec::new();
    let mut tables = String::new();
    for s in scenarios {
        let (name, ms, columns): (&str, Vec<Measurement>, &[&str]) = match s {
            Scenario::A | Scenario::D => {
                let a = s == Scenario::A;
                let cfg = SteadyCfg {
                    devices: args.devices.unwrap_or(if a { 100 } else { 500 }),
                    dossiers: args.dossiers.unwrap_or(if a { 100 } else { 500 }),
                    per_device: 2,
                    duration_s: args.duration.unwrap_or(20.0),
                    warmup_s: args.warmup.unwrap_or(3.0),
                    rate: args.rate.unwrap_or(if a { 0.0 } else { 0.2 }),
                    window: args.window.unwrap_or(if a { 1 } else { 64 }),
                    attackers: 0,
                };
                let name = if a { "a" } else { "d" };
                common.say(format!("scenario ({name}): {cfg:?}"));
                (
                    name,
                    steady(&common, name, &cfg).await?,
                    &[
                        "acked_per_s",
                        "lat_p50_ms",
                        "lat_p95_ms",
                        "lat_p99_ms",
                        "ack_p50_ms",
                        "wire_b_per_change",
                        "cpu_us_per_change",
                        "cpu_pct",
                        "rss_mb",
                        "loadgen_cpu_pct",
                    ],
                )
            }
            Scenario::B => {
                let cfg = ReconnectCfg {
                    dossiers: args.dossiers.unwrap_or(40),
                    edits: args.edits.unwrap_or(20),
                    history: args.history.unwrap_or(50),
                };
                common.say(format!("scenario (b): {cfg:?}"));
                (
                    "b",
                    reconnect(&common, &cfg).await?,
                    &[
                        "reconcile_ms",
                        "wire_bytes",
                        "raw_change_bytes",
                        "wire_over_raw",
                        "payload_over_raw",
                        "messages",
                        "cpu_ms",
                    ],
                )
            }
            Scenario::C => {
                let cfg = IdleCfg {
                    connections: args.devices.unwrap_or(10_000),
                    dossiers: args.dossiers.unwrap_or(1_000),
                };
                common.say(format!("scenario (c): {cfg:?}"));
                (
                    "c",
                    idle(&common, &cfg).await?,
                    &[
                        "connect_s",
                        "rss_start_mb",
                        "rss_mb",
                        "kb_per_conn",
                        "cpu_s",
                        "failed_devices",
                    ],
                )
            }
            Scenario::E => {
                let cfg = MemoryCfg {
                    stored: args.dossiers.unwrap_or(100_000),
                    hot: args.hot.unwrap_or(500),
                    history: args.history.unwrap_or(100),
                    per_device: 10,
                };
                common.say(format!("scenario (e): {cfg:?}"));
                (
                    "e",
                    memory(&common, &cfg).await?,
                    &[
                        "cold_start_s",
                        "rss_start_mb",
                        "hot_load_s",
                        "rss_hot_mb",
                        "kb_per_hot_dossier",
                    ],
                )
            }
            Scenario::F => {
                let cfg = SteadyCfg {
                    devices: args.devices.unwrap_or(50),
                    dossiers: args.dossiers.unwrap_or(50),
                    per_device: 2,
                    duration_s: args.duration.unwrap_or(20.0),
                    warmup_s: args.warmup.unwrap_or(3.0),
                    rate: args.rate.unwrap_or(1.0),
                    window: args.window.unwrap_or(64),
                    attackers: args.attackers.unwrap_or(8),
                };
                common.say(format!("scenario (f): {cfg:?}"));
                (
                    "f",
                    flood(&common, &cfg).await?,
                    &[
                        "lat_p50_ms",
                        "lat_p95_ms",
                        "ack_p50_ms",
                        "acked_per_s",
                        "peak_rss_mb",
                        "cpu_pct",
                        "attacks",
                        "attackers_closed",
                        "attackers_refused",
                    ],
                )
            }
            Scenario::All => unreachable!("expanded above"),
        };
        let summary = report::summarize(&ms);
        let table = report::table(&summary, name, columns);
        println!("\n## Scenario ({name})\n\n{table}");
        for m in ms.iter().filter(|m| !m.notes.is_empty()) {
            println!("- {} run {}: {}", m.target, m.run, m.notes.join("; "));
        }
        tables.push_str(&format!("## Scenario ({name})\n\n{table}\n"));
        all.extend(ms);
        // Let sockets in TIME_WAIT and the page cache settle between scenarios.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if let Some(parent) = args.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let json = serde_json::json!({
        "machine": machine(),
        "args": format!("{:?}", std::env::args().skip(1).collect::<Vec<_>>()),
        "seed": args.seed,
        "runs": args.runs,
        "measurements": all,
        "summary": report::summarize(&all),
        "metrics": report::METRICS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
    });
    std::fs::write(&args.json, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("cannot write {}", args.json.display()))?;
    eprintln!("[regie-load] wrote {}", args.json.display());
    Ok(())
}
