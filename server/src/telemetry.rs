//! Logs: plain text for a terminal or one JSON object a line for log shippers
//! (`--log-format`), filtered by `RUST_LOG` (default `info`); and a `request` span around every
//! HTTP request with a number of its own, the method and the route *template*
//! (`/api/v1/dossiers/{id}`), never the path with its ids, the query (which may hold
//! `?token=`), a header or a body. Sync connections get a `connection` span (`session`).
//!
//! What is logged is ids and codes: never a token, a user's or resident's name, or document
//! text (`tests/it/ops.rs` scans the logs of a whole journey for them).

use std::collections::HashSet;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the spans it happened in.
    Json,
}

/// Installs the process-wide log subscriber writing to standard error (standard output is for
/// what a command prints), in `format`, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

/// Route templates as `'static` label values: one leaked string per route the router has.
fn interned(route: &str) -> &'static str {
    static ROUTES: LazyLock<parking_lot::Mutex<HashSet<&'static str>>> =
        LazyLock::new(Default::default);
    let mut routes = ROUTES.lock();
    if let Some(r) = routes.get(route) {
        return r;
    }
    let r: &'static str = Box::leak(route.to_owned().into_boxed_str());
    routes.insert(r);
    r
}

/// Middleware: runs the request in a `request` span, logs its outcome at debug level and counts
/// it in the metrics.
pub async fn request(request: Request, next: Next) -> Response {
    static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| interned(p.as_str()));
    let method = method_str(request.method());
    let span = tracing::info_span!(
        "request",
        request = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed),
        method,
        route,
    );
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::debug!(
            status,
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "request done"
        );
    });
    crate::metrics::http_request(route, method, status, started);
    response
}

fn method_str(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
