//! `regie-bench-server`: the Regie server for benchmarks only. It takes every option of
//! `regie-server serve` and runs `regie_server::run` on the store exactly as `serve` does, but
//! on loopback addresses only; `--bypass-privacy` switches off gating, write validation and
//! audit through the `bench` feature (to measure what privacy costs; `regie-server` itself has
//! no such flag), `--no-encryption` keeps the store's blocks unencrypted (what encryption at
//! rest costs), and `--nodelay` serves with TCP_NODELAY on accepted sockets, to measure a
//! proposed server change. `regie-load` starts it as a separate process so that its memory and
//! CPU time are its own.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use regie_server::config::ServeArgs;

/// Regie for benchmarks (loopback only; never for production).
#[derive(Debug, Parser)]
#[command(name = "regie-bench-server", version, about, long_about = None)]
struct Args {
    /// Everything `regie-server serve` takes.
    #[command(flatten)]
    serve: ServeArgs,
    /// Skip audience gating, write validation and audit (benchmark switch).
    #[arg(long)]
    bypass_privacy: bool,
    /// Keep the store's blocks unencrypted (benchmark switch: what encryption at rest costs;
    /// only on a store made with it).
    #[arg(long)]
    no_encryption: bool,
    /// Set TCP_NODELAY on accepted sockets (a proposed server change, measured here).
    #[arg(long)]
    nodelay: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.serve.listen.ip().is_loopback() {
        bail!("regie-bench-server listens on loopback addresses only");
    }
    if args.serve.tls_cert.is_some() {
        bail!("regie-bench-server serves plain WebSockets on loopback only");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // 10,000 connections need more descriptors than the usual soft limit of 1,024.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    tokio::runtime::Runtime::new()?.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    regie_server::install_crypto_provider();
    regie_server::storage::keys::store_plain_for_benchmarks(args.no_encryption);
    let state = regie_server::state(&args.serve).await?;
    if args.bypass_privacy {
        state.hub.bypass_privacy_for_benchmarks();
    }
    let listener = tokio::net::TcpListener::bind(args.serve.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.serve.listen))?;
    if !args.nodelay {
        return regie_server::run(listener, state, None, regie_server::shutdown_signal()).await;
    }
    // As `regie_server::run` without TLS, plus TCP_NODELAY on every accepted socket.
    use axum::serve::ListenerExt;
    let hub = state.hub.clone();
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            hub.enforce(None).await;
        }
    });
    let addr = listener.local_addr()?;
    println!("regie-server listening on http://{addr} (sync: ws://{addr}/sync, TCP_NODELAY)");
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let result = axum::serve(listener, regie_server::app(state))
        .with_graceful_shutdown(regie_server::shutdown_signal())
        .await
        .context("server failed");
    sweeper.abort();
    result
}
