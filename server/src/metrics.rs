//! Prometheus metrics (`GET /metrics`, text exposition format): one process-wide registry, and
//! one function per thing counted, so the code that counts calls one line.
//!
//! **Labels hold only bounded, non-personal values**: a role, a message type, a reason code, a
//! limit's name, a sweep's name, a route template. Never a user, peer, dossier or document id,
//! never a name or any text of a document; `tests/it/ops.rs` scans a scrape for them.

use std::sync::LazyLock;
use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// One label: its name and a value from a fixed set.
type Label = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];
type Labels3 = [(&'static str, &'static str); 3];
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 0.1 ms to about 13 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// Sweep durations from 1 ms to about 65 s.
fn sweep_latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

struct Metrics {
    registry: Registry,
    connections: Family<Label, Gauge>,
    connections_opened: Family<Label, Counter>,
    messages_received: Family<Label, Counter>,
    bytes_received: Counter,
    messages_sent: Counter,
    bytes_sent: Counter,
    paced: Counter,
    batches_accepted: Counter,
    batches_rejected: Family<Label, Counter>,
    commit_seconds: Histogram,
    fan_out_seconds: Histogram,
    audit_appends: Counter,
    tampered_blocks: Family<Label, Counter>,
    documents: Family<Label, Gauge>,
    outbox_bytes: Gauge,
    limit_refusals: Family<Label, Counter>,
    sweeps: Family<Labels2, Counter>,
    sweep_seconds: Histograms<Label>,
    jwks_refresh_failures: Counter,
    feed_reconnects: Counter,
    feed_entries: Counter,
    http_requests: Family<Labels3, Counter>,
    http_seconds: Histograms<Label>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("regie");
    let m = Metrics {
        registry: Registry::default(),
        connections: Family::default(),
        connections_opened: Family::default(),
        messages_received: Family::default(),
        bytes_received: Counter::default(),
        messages_sent: Counter::default(),
        bytes_sent: Counter::default(),
        paced: Counter::default(),
        batches_accepted: Counter::default(),
        batches_rejected: Family::default(),
        commit_seconds: latency(),
        fan_out_seconds: latency(),
        audit_appends: Counter::default(),
        tampered_blocks: Family::default(),
        documents: Family::default(),
        outbox_bytes: Gauge::default(),
        limit_refusals: Family::default(),
        sweeps: Family::default(),
        sweep_seconds: Family::new_with_constructor(sweep_latency),
        jwks_refresh_failures: Counter::default(),
        feed_reconnects: Counter::default(),
        feed_entries: Counter::default(),
        http_requests: Family::default(),
        http_seconds: Family::new_with_constructor(latency),
    };
    let r = &mut registry;
    r.register(
        "feed_reconnects",
        "Times the change feed listener lost its connection and made it again",
        m.feed_reconnects.clone(),
    );
    r.register(
        "feed_entries",
        "Change feed entries of other instances applied",
        m.feed_entries.clone(),
    );
    r.register(
        "sync_connections",
        "Live sync connections by role",
        m.connections.clone(),
    );
    r.register(
        "sync_connections_opened",
        "Sync connections admitted, by role",
        m.connections_opened.clone(),
    );
    r.register(
        "sync_messages_received",
        "Protocol messages received from devices, by type",
        m.messages_received.clone(),
    );
    r.register(
        "sync_received_bytes",
        "Bytes of protocol messages received from devices",
        m.bytes_received.clone(),
    );
    r.register(
        "sync_messages_sent",
        "Protocol messages written to devices",
        m.messages_sent.clone(),
    );
    r.register(
        "sync_sent_bytes",
        "Bytes of protocol messages written to devices",
        m.bytes_sent.clone(),
    );
    r.register(
        "sync_paced",
        "Times a device sent faster than --messages-per-second and was slowed down",
        m.paced.clone(),
    );
    r.register(
        "batches_accepted",
        "Batches of changes checked, committed and merged",
        m.batches_accepted.clone(),
    );
    r.register(
        "batches_rejected",
        "Batches of changes rejected whole and quarantined, by reason code",
        m.batches_rejected.clone(),
    );
    r.register(
        "commit_seconds",
        "Time to commit an accepted batch with its audit row (fsync included)",
        m.commit_seconds.clone(),
    );
    r.register(
        "fan_out_seconds",
        "Time to generate and queue sync messages for a document's peers after a message",
        m.fan_out_seconds.clone(),
    );
    r.register(
        "audit_appends",
        "Rows inserted into the audit hash chain (a row of a transaction that then failed included)",
        m.audit_appends.clone(),
    );
    r.register(
        "tampered_blocks",
        "Stored blocks that failed their integrity check (AEAD) and were not served, by table",
        m.tampered_blocks.clone(),
    );
    r.register(
        "documents",
        "Documents known to the server, by state: hot (in memory) or cold (on disk only)",
        m.documents.clone(),
    );
    r.register(
        "outbox_bytes",
        "Bytes waiting in all connections' outboxes",
        m.outbox_bytes.clone(),
    );
    r.register(
        "limit_refusals",
        "Connections or messages refused at a limit (I7), by limit",
        m.limit_refusals.clone(),
    );
    r.register(
        "sweeps",
        "Runs of the periodic sweeps, by sweep and outcome",
        m.sweeps.clone(),
    );
    r.register(
        "sweep_seconds",
        "Duration of the periodic sweeps, by sweep",
        m.sweep_seconds.clone(),
    );
    r.register(
        "jwks_refresh_failures",
        "Failed fetches of the JWKS (the keys in use are kept)",
        m.jwks_refresh_failures.clone(),
    );
    r.register(
        "http_requests",
        "HTTP requests by route template, method and status",
        m.http_requests.clone(),
    );
    r.register(
        "http_request_seconds",
        "HTTP request duration by route template",
        m.http_seconds.clone(),
    );
    Metrics { registry, ..m }
});

/// The metrics in the Prometheus text exposition format (version 0.0.4 compatible).
pub fn render() -> String {
    let mut out = String::new();
    encode(&mut out, &METRICS.registry).expect("writing to a String cannot fail");
    out
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A live sync connection of `role`, counted until dropped.
pub struct ConnectionGauge(&'static str);

/// Counts a sync connection of `role` as live until the returned guard is dropped.
pub fn connection_opened(role: &'static str) -> ConnectionGauge {
    METRICS
        .connections_opened
        .get_or_create(&[("role", role)])
        .inc();
    METRICS.connections.get_or_create(&[("role", role)]).inc();
    ConnectionGauge(role)
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        METRICS.connections.get_or_create(&[("role", self.0)]).dec();
    }
}

/// A protocol message of `kind` and `bytes` received from a device.
pub fn message_received(kind: &'static str, bytes: usize) {
    METRICS
        .messages_received
        .get_or_create(&[("type", kind)])
        .inc();
    METRICS.bytes_received.inc_by(bytes as u64);
}

/// A frame of `bytes` written to a device.
pub fn message_sent(bytes: usize) {
    METRICS.messages_sent.inc();
    METRICS.bytes_sent.inc_by(bytes as u64);
}

/// A device slowed down by its message budget.
pub fn paced() {
    METRICS.paced.inc();
}

/// A batch committed and merged; its commit took since `commit_started`.
pub fn batch_accepted(commit_started: Instant) {
    METRICS.batches_accepted.inc();
    METRICS
        .commit_seconds
        .observe(commit_started.elapsed().as_secs_f64());
}

/// A batch rejected with reason code `reason`.
pub fn batch_rejected(reason: &'static str) {
    METRICS
        .batches_rejected
        .get_or_create(&[("reason", reason)])
        .inc();
}

/// Times a fan-out from its start until dropped.
pub struct FanOutTimer(Instant);

impl FanOutTimer {
    /// Starts timing.
    pub fn start() -> FanOutTimer {
        FanOutTimer(Instant::now())
    }
}

impl Drop for FanOutTimer {
    fn drop(&mut self) {
        METRICS
            .fan_out_seconds
            .observe(self.0.elapsed().as_secs_f64());
    }
}

/// A row inserted into the audit chain.
pub fn audit_appended() {
    METRICS.audit_appends.inc();
}

/// A stored block of `table` that failed its integrity check and was not served (I6).
pub fn tampered_block(table: &'static str) {
    METRICS
        .tampered_blocks
        .get_or_create(&[("table", table)])
        .inc();
}

/// A connection or message refused at the limit named `limit`.
pub fn limit_refused(limit: &'static str) {
    METRICS
        .limit_refusals
        .get_or_create(&[("limit", limit)])
        .inc();
}

/// A run of the sweep `sweep` that began at `started`, and whether it succeeded.
pub fn swept(sweep: &'static str, started: Instant, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    METRICS
        .sweeps
        .get_or_create(&[("sweep", sweep), ("outcome", outcome)])
        .inc();
    METRICS
        .sweep_seconds
        .get_or_create(&[("sweep", sweep)])
        .observe(started.elapsed().as_secs_f64());
}

/// The change feed listener lost its connection (it connects again and catches up).
pub fn feed_reconnected() {
    METRICS.feed_reconnects.inc();
}

/// Change feed entries of other instances applied.
pub fn feed_applied(n: usize) {
    METRICS.feed_entries.inc_by(n as u64);
}

/// A failed fetch of the JWKS.
pub fn jwks_refresh_failed() {
    METRICS.jwks_refresh_failures.inc();
}

/// An HTTP request to the route template `route` answered `status` after `started`.
pub fn http_request(route: &'static str, method: &'static str, status: u16, started: Instant) {
    METRICS
        .http_requests
        .get_or_create(&[
            ("route", route),
            ("method", method),
            ("status", status_str(status)),
        ])
        .inc();
    METRICS
        .http_seconds
        .get_or_create(&[("route", route)])
        .observe(started.elapsed().as_secs_f64());
}

/// Gauges read at scrape time: documents hot and cold, bytes waiting in outboxes.
pub fn set_state(hot: usize, cold: usize, outbox_bytes: usize) {
    let g = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    METRICS
        .documents
        .get_or_create(&[("state", "hot")])
        .set(g(hot));
    METRICS
        .documents
        .get_or_create(&[("state", "cold")])
        .set(g(cold));
    METRICS.outbox_bytes.set(g(outbox_bytes));
}

/// A status code as a `'static` label value (the codes this server answers; others as `other`).
fn status_str(status: u16) -> &'static str {
    match status {
        101 => "101",
        200 => "200",
        201 => "201",
        204 => "204",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        426 => "426",
        429 => "429",
        500 => "500",
        503 => "503",
        s if s < 200 => "1xx",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `name{labels}` in `text`, or 0 when absent.
    fn sample(text: &str, line_start: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    #[test]
    fn counters_move_and_the_text_is_prometheus_exposition() {
        let before = render();
        batch_rejected("not_writable");
        limit_refused("max_sync_ops");
        let gauge = connection_opened("worker");
        let after = render();
        assert_eq!(
            sample(
                &after,
                "regie_batches_rejected_total{reason=\"not_writable\"}"
            ) - sample(
                &before,
                "regie_batches_rejected_total{reason=\"not_writable\"}"
            ),
            1.0
        );
        assert_eq!(
            sample(&after, "regie_sync_connections{role=\"worker\"}"),
            sample(&before, "regie_sync_connections{role=\"worker\"}") + 1.0
        );
        drop(gauge);
        assert_eq!(
            sample(&render(), "regie_sync_connections{role=\"worker\"}"),
            sample(&before, "regie_sync_connections{role=\"worker\"}")
        );
        assert!(after.ends_with("# EOF\n"));
        for line in after.lines() {
            assert!(
                line.starts_with("# HELP regie_")
                    || line.starts_with("# TYPE regie_")
                    || line.starts_with("regie_")
                    || line == "# EOF",
                "{line}"
            );
        }
    }
}
