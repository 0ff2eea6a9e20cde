//! Results: one [`Measurement`] per scenario, target and run; medians with spread over runs,
//! ratios to Regie, a plain-text table and a JSON file.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// The numbers of one run of one target in one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// `a` … `e`.
    pub scenario: String,
    /// `regie`, `bypass`, `js` or `raw` (`quiet` or `flood` in scenario f).
    pub target: String,
    /// The round (0-based); targets alternate within a round.
    pub run: usize,
    /// Named numbers (see [`METRICS`]).
    pub metrics: BTreeMap<String, f64>,
    /// Anything worth knowing (errors, refusals).
    pub notes: Vec<String>,
}

impl Measurement {
    /// A measurement holding only the machine's 1-minute load average now (the benchmark's own
    /// load included; more than the core count means something else was running too).
    pub fn new(scenario: &str, target: &str, run: usize) -> Self {
        let mut metrics = BTreeMap::new();
        if let Some(load) = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        {
            metrics.insert("loadavg".to_owned(), load);
        }
        Measurement {
            scenario: scenario.into(),
            target: target.into(),
            run,
            metrics,
            notes: Vec::new(),
        }
    }

    /// Sets a metric.
    pub fn set(&mut self, name: &str, value: f64) {
        self.metrics.insert(name.into(), value);
    }
}

/// Every metric name with its unit and meaning, for the table and for `BENCHMARKS.md`.
pub const METRICS: &[(&str, &str)] = &[
    (
        "acked_per_s",
        "durably acknowledged changes per second (server heads include them)",
    ),
    ("edits_per_s", "edits made per second"),
    ("lat_p50_ms", "edit → other device receipt, median, ms"),
    (
        "lat_p95_ms",
        "edit → other device receipt, 95th percentile, ms",
    ),
    (
        "lat_p99_ms",
        "edit → other device receipt, 99th percentile, ms",
    ),
    ("ack_p50_ms", "edit → acknowledgement, median, ms"),
    ("ack_p99_ms", "edit → acknowledgement, 99th percentile, ms"),
    (
        "wire_b_per_change",
        "TCP bytes (both directions, all devices) per acknowledged change",
    ),
    (
        "payload_b_per_change",
        "automerge sync payload bytes per acknowledged change",
    ),
    ("cpu_pct", "server CPU, % of one core"),
    ("cpu_us_per_change", "server CPU µs per acknowledged change"),
    ("rss_mb", "server resident memory, MB"),
    (
        "reconcile_ms",
        "reconnect: connect → all offline changes acknowledged, ms",
    ),
    ("wire_bytes", "TCP bytes both directions"),
    ("raw_change_bytes", "raw bytes of the changes made offline"),
    ("wire_over_raw", "TCP bytes / raw change bytes"),
    ("payload_over_raw", "sync payload bytes / raw change bytes"),
    ("messages", "protocol messages both directions"),
    (
        "connect_s",
        "time to open, authenticate and sync every connection, s",
    ),
    ("kb_per_conn", "server memory per idle connection, KB"),
    (
        "cold_start_s",
        "spawn → listening (loads the dossier index), s",
    ),
    (
        "rss_hot_mb",
        "server memory with the hot dossiers loaded and synced, MB",
    ),
    (
        "kb_per_hot_dossier",
        "memory per hot dossier (3 documents + sync states), KB",
    ),
    ("hot_load_s", "time to load and sync the hot dossiers, s"),
    (
        "failed_devices",
        "devices that failed (connection lost, timeout)",
    ),
    ("problems", "refusals and errors the devices received"),
    (
        "loadavg",
        "machine 1-minute load average at the end of the run",
    ),
    (
        "msgs_per_change",
        "protocol messages (both directions) per acknowledged change",
    ),
    (
        "apply_us_per_change",
        "raw: Automerge apply time per change, µs",
    ),
    ("loadgen_cpu_pct", "load generator CPU, % of one core"),
    ("cpu_ms", "server CPU during the reconnect, ms"),
    ("cpu_s", "server CPU while connecting, s"),
    (
        "rss_start_mb",
        "server memory before the devices connect, MB",
    ),
    ("peak_rss_mb", "server peak resident memory, MB"),
];

/// Median, minimum and maximum of one metric over runs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Number of runs.
    pub n: usize,
}

/// The spread of `values` (not empty).
pub fn spread(values: &[f64]) -> Spread {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return Spread {
            median: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
            n: 0,
        };
    }
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    Spread {
        median,
        min: v[0],
        max: v[v.len() - 1],
        n: v.len(),
    }
}

/// The `p`-th percentile (0–100) of microsecond samples, in ms (nearest rank).
pub fn percentile_ms(samples: &mut [u32], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil().max(1.0) as usize;
    samples[rank.min(samples.len()) - 1] as f64 / 1000.0
}

/// Per scenario, target and metric: the spread over runs.
pub type Summary = BTreeMap<String, BTreeMap<String, BTreeMap<String, Spread>>>;

/// Summarises measurements.
pub fn summarize(ms: &[Measurement]) -> Summary {
    let mut values: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    for m in ms {
        for (k, v) in &m.metrics {
            values
                .entry((m.scenario.clone(), m.target.clone(), k.clone()))
                .or_default()
                .push(*v);
        }
    }
    let mut out = Summary::new();
    for ((s, t, k), v) in values {
        out.entry(s)
            .or_default()
            .entry(t)
            .or_default()
            .insert(k, spread(&v));
    }
    out
}

fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x.abs() >= 1000.0 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Table order; `quiet` and `flood` are Regie without and with hostile devices (scenario f).
const TARGET_ORDER: [&str; 7] = ["regie", "plain", "quiet", "flood", "bypass", "js", "raw"];

/// A plain-text (Markdown) table of one scenario: median [min–max] per target and metric, then
/// each target's medians as ratios to Regie's.
pub fn table(summary: &Summary, scenario: &str, metrics: &[&str]) -> String {
    let Some(targets) = summary.get(scenario) else {
        return String::new();
    };
    let mut out = String::new();
    let mut header = String::from("| target |");
    let mut rule = String::from("|---|");
    for m in metrics {
        let _ = write!(header, " {m} |");
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    let ordered: Vec<&str> = TARGET_ORDER
        .iter()
        .copied()
        .filter(|t| targets.contains_key(*t))
        .collect();
    for t in &ordered {
        let _ = write!(out, "| {t} |");
        for m in metrics {
            match targets[*t].get(*m) {
                Some(s) if s.n > 1 => {
                    let _ = write!(
                        out,
                        " {} [{}–{}] |",
                        fmt_num(s.median),
                        fmt_num(s.min),
                        fmt_num(s.max)
                    );
                }
                Some(s) => {
                    let _ = write!(out, " {} |", fmt_num(s.median));
                }
                None => out.push_str(" n/a |"),
            }
        }
        out.push('\n');
    }
    // Ratios to Regie, or in scenario (f) to Regie without hostile devices.
    let baseline = ["regie", "quiet"]
        .into_iter()
        .find_map(|b| targets.get(b).map(|t| (b, t)));
    if let Some((name, regie)) = baseline {
        let _ = writeln!(out, "\nRatios to {name} (median / {name}'s median):\n");
        let _ = writeln!(out, "{header}\n{rule}");
        for t in &ordered {
            let _ = write!(out, "| {t} |");
            for m in metrics {
                match (targets[*t].get(*m), regie.get(*m)) {
                    (Some(a), Some(b)) if b.median != 0.0 && b.median.is_finite() => {
                        let _ = write!(out, " {:.2}× |", a.median / b.median);
                    }
                    _ => out.push_str(" n/a |"),
                }
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_percentiles() {
        let s = spread(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(spread(&[1.0, 2.0]).median, 1.5);
        let mut v: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile_ms(&mut v, 99.0), 99.0);
        assert_eq!(percentile_ms(&mut v, 50.0), 50.0);
    }

    #[test]
    fn table_has_ratios() {
        let mut a = Measurement::new("a", "regie", 0);
        a.set("acked_per_s", 100.0);
        let mut b = Measurement::new("a", "js", 0);
        b.set("acked_per_s", 50.0);
        let t = table(&summarize(&[a, b]), "a", &["acked_per_s"]);
        assert!(t.contains("| js | 0.50× |"), "{t}");
    }
}
