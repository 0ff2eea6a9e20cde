//! Regie's sync server: the only crate that knows HTTP, WebSocket and SQL.
//!
//! A request arrives over HTTP (`http`) or as automerge-repo frames on the `/sync` WebSocket
//! (`session`). Either way the caller is authenticated first (`auth`: JWT to
//! [`regie_core::principal::Principal`]). Sync messages go to the `hub`, which keeps the documents
//! in memory, asks the one policy ([`regie_core::policy::decide`]) before any byte leaves,
//! validates incoming batches on a fork ([`regie_core::validation::check_batch`]), commits them
//! to `storage` before announcing them, and fans them out. Every access is written to the
//! hash-chained `audit` log first. [`app`] builds the router without a socket; [`run`] serves
//! it on a listener until the shutdown future completes.

pub mod audit;
pub mod auth;
pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod hub;
pub mod report;
pub mod session;
pub mod storage;
pub mod webapp;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;

use crate::auth::{AuthConfig, Authenticator};
use crate::config::{ServeArgs, StoreArgs};
pub use crate::http::AppState;
use crate::hub::Hub;
use crate::storage::Store;

/// The whole application as a router, testable without a socket.
pub fn app(state: AppState) -> Router {
    http::router(state).merge(webapp::router())
}

/// Opens the store, loads the hub and sets up authentication as `args` say.
pub async fn state(args: &ServeArgs) -> anyhow::Result<AppState> {
    let auth = Authenticator::from_config(&AuthConfig {
        hs256_secret: args.jwt_secret.clone(),
        public_key_pem: args.jwt_public_key.clone(),
        jwks: args.jwks.clone(),
        issuer: args.jwt_issuer.clone(),
        audience: args.jwt_audience.clone(),
        leeway_seconds: 30,
    })
    .await
    .context("cannot set up token verification")?;
    let store = Store::open(&args.store.data_dir)
        .await
        .with_context(|| format!("cannot open the store in {}", args.store.data_dir.display()))?
        .with_quarantine_cap(storage::QuarantineCap {
            batches: args.limits.quarantine_max_batches,
            bytes: args.limits.quarantine_max_mib * 1024 * 1024,
        });
    let hub = Hub::load(Arc::new(store), args.hot_documents)
        .await
        .context("cannot load the store")?
        .with_limits((&args.limits).into());
    let caught_up = hub
        .catch_up_views()
        .await
        .context("cannot bring the resident views up to date")?;
    if caught_up > 0 {
        tracing::info!(
            dossiers = caught_up,
            "resident views projected again on start"
        );
    }
    Ok(AppState {
        hub: Arc::new(hub),
        auth,
        oversight: args.oversight.clone(),
    })
}

/// `regie-server serve`: binds `args.listen` and runs until `shutdown` completes.
pub async fn serve(
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    install_crypto_provider();
    let state = state(&args).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another server running there?",
                args.listen
            )
        })?;
    let tls = args.tls_cert.clone().zip(args.tls_key.clone());
    run(listener, state, tls, shutdown).await
}

/// Installs ring as rustls' process-wide crypto provider (once; later calls are no-ops).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Serves `state` on `listener` (over TLS when a certificate and key are given) until
/// `shutdown` completes, then stops accepting and lets requests in flight finish.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Option<(PathBuf, PathBuf)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    // Grants expire by the clock, not by an event: sweep once a second and revoke (R2, R28).
    let hub = state.hub.clone();
    // Consents lapse by the calendar too: ask every consent share again once an hour (R16);
    // and destroy the closed dossiers whose destroy-by date has come (R23, I6).
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_consent_sweep: Option<std::time::Instant> = None;
        loop {
            tick.tick().await;
            hub.enforce(None).await;
            if last_consent_sweep.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                last_consent_sweep = Some(std::time::Instant::now());
                let today = time::OffsetDateTime::now_utc().date();
                if let Err(e) = hub.sweep_consent_shares(today).await {
                    tracing::error!(error = %e, "could not sweep consent shares");
                }
                match hub.destroy_due(today).await {
                    Ok(proofs) if !proofs.is_empty() => {
                        tracing::info!(
                            dossiers = proofs.len(),
                            "destroyed at the end of retention"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "could not destroy due dossiers"),
                }
            }
        }
    });
    // Identity providers rotate their signing keys: fetch the JWKS again every ten minutes.
    let auth = state.auth.clone();
    let refresher = auth.refreshes().then(|| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(600));
            tick.tick().await; // The keys were loaded at start.
            loop {
                tick.tick().await;
                if let Err(e) = auth.refresh().await {
                    tracing::warn!(error = %e, "could not fetch the JWKS again; keeping the keys in use");
                }
            }
        })
    });
    // Sync sessions outlive HTTP's graceful shutdown (they are upgraded connections): tell each
    // to close and let it save its sync states before the server stops.
    let sessions = state.hub.clone();
    let shutdown = async move {
        shutdown.await;
        sessions.close_all_sessions(Duration::from_secs(5)).await;
    };
    let app = app(state);
    let result = match tls {
        Some((cert, key)) => {
            install_crypto_provider();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                .await
                .with_context(|| {
                    format!(
                        "cannot load TLS certificate {} and key {}",
                        cert.display(),
                        key.display()
                    )
                })?;
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopper.graceful_shutdown(Some(Duration::from_secs(10)));
            });
            println!("regie-server listening on https://{addr} (sync: wss://{addr}/sync)");
            axum_server::from_tcp_rustls(listener.into_std()?, config)?
                .handle(handle)
                .serve(app.into_make_service())
                .await
                .context("server failed")
        }
        None => {
            println!("regie-server listening on http://{addr} (sync: ws://{addr}/sync)");
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .context("server failed")
        }
    };
    sweeper.abort();
    if let Some(refresher) = refresher {
        refresher.abort();
    }
    result
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// `regie-server verify-audit`: walks the hash chain; fails if a row was altered.
pub async fn verify_audit(args: StoreArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.data_dir)
        .await
        .with_context(|| format!("cannot open the store in {}", args.data_dir.display()))?;
    let v = store
        .verify_audit()
        .await
        .context("cannot read the audit log")?;
    match v.first_broken_seq {
        None => {
            println!("audit log intact: {} rows verified", v.rows);
            Ok(())
        }
        Some(seq) => anyhow::bail!(
            "audit log broken at row {seq} ({} rows before it verified)",
            v.rows
        ),
    }
}
