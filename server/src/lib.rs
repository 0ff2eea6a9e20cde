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
pub mod breach;
pub mod conference;
pub mod config;
pub mod council;
pub mod demo;
pub mod domain;
pub mod export;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod processing;
pub mod report;
pub mod rights;
pub mod session;
pub mod storage;
pub mod telemetry;
pub mod webapp;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;

use crate::auth::{AuthConfig, Authenticator};
use crate::config::{BackupArgs, RotateKeyArgs, ServeArgs, ServeCommand, StoreArgs};
pub use crate::http::{AppState, Lifecycle};
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
    let backend = args.store.backend().map_err(anyhow::Error::msg)?;
    // `Backend`'s Display shows a PostgreSQL URL without its password.
    tracing::info!(store = %backend, "opening the store");
    let kek = args
        .store
        .kek()
        .context("cannot read the key-encryption key")?;
    let store = Store::open_backend(&backend, kek)
        .await
        .with_context(|| format!("cannot open the store ({backend})"))?
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
    let hub = Arc::new(hub);
    // Several instances on one PostgreSQL database: follow the others' commits (issue 17).
    hub.follow()
        .await
        .context("cannot follow the change feed of other instances")?;
    Ok(AppState {
        hub,
        auth,
        oversight: args.oversight.clone(),
        lifecycle: Lifecycle::default(),
    })
}

/// `regie-server serve`: binds `args.listen` (and `--metrics-listen`) and runs until `shutdown`
/// completes.
pub async fn serve(
    command: ServeCommand,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let ServeCommand { serve: args, ops } = command;
    install_crypto_provider();
    if args.tls_cert.is_some() != args.tls_key.is_some() {
        anyhow::bail!(
            "set both --tls-cert and --tls-key (REGIE_TLS_CERT, REGIE_TLS_KEY), or neither"
        );
    }
    let state = state(&args).await?;
    let bind = |addr: std::net::SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}; is another server running there?"))
    };
    let listener = bind(args.listen).await?;
    let metrics = match ops.metrics_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let tls = args.tls_cert.clone().zip(args.tls_key.clone());
    run_with(
        listener,
        state,
        tls,
        shutdown,
        RunOptions {
            metrics,
            grace: Duration::from_secs(ops.shutdown_grace_seconds),
        },
    )
    .await
}

/// How long the change feed of several instances keeps its entries: far longer than any
/// listener's reconnect; one that was away longer loads everything again.
const FEED_KEPT: Duration = Duration::from_secs(24 * 3600);

/// How [`run_with`] serves besides the API.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Serve `/metrics` on this listener only, not beside the API.
    pub metrics: Option<tokio::net::TcpListener>,
    /// How long to keep serving, not ready, once shutdown begins.
    pub grace: Duration,
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
    run_with(listener, state, tls, shutdown, RunOptions::default()).await
}

/// [`run`], with metrics on a listener of their own and a grace period after `shutdown`
/// completes during which readiness answers 503 and everything else is still served.
pub async fn run_with(
    listener: tokio::net::TcpListener,
    mut state: AppState,
    tls: Option<(PathBuf, PathBuf)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: RunOptions,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    state.lifecycle.metrics_on_api = options.metrics.is_none();
    let metrics_server = match options.metrics {
        Some(metrics) => {
            let metrics_addr = metrics.local_addr()?;
            println!("regie-server metrics on http://{metrics_addr}/metrics");
            let app = http::metrics_router(state.clone());
            Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(metrics, app).await {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            }))
        }
        None => None,
    };
    // Grants expire by the clock, not by an event: sweep once a second and revoke (R2, R28).
    let hub = state.hub.clone();
    // Consents lapse by the calendar too: ask every consent share again once an hour (R16);
    // and destroy the closed dossiers whose destroy-by date has come (R23, I6).
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_consent_sweep: Option<std::time::Instant> = None;
        loop {
            tick.tick().await;
            let started = std::time::Instant::now();
            hub.enforce(None).await;
            metrics::swept("grants", started, true);
            if last_consent_sweep.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                last_consent_sweep = Some(std::time::Instant::now());
                let today = time::OffsetDateTime::now_utc().date();
                let started = std::time::Instant::now();
                // Once across instances: the one holding the sweep lock runs them.
                let swept = hub.sweep_alone(hub.sweep_consent_shares(today)).await;
                metrics::swept("consent_shares", started, swept.is_ok());
                if let Err(e) = swept {
                    tracing::error!(error = %e, "could not sweep consent shares");
                }
                // The change feed of several instances keeps a day (issue 17).
                let started = std::time::Instant::now();
                let pruned = hub.store().prune_feed(FEED_KEPT).await;
                metrics::swept("change_feed", started, pruned.is_ok());
                if let Err(e) = pruned {
                    tracing::error!(error = %e, "could not prune the change feed");
                }
                let started = std::time::Instant::now();
                let destroyed = hub.sweep_alone(hub.destroy_due(today)).await;
                metrics::swept("retention", started, destroyed.is_ok());
                match destroyed {
                    Ok(Some(proofs)) if !proofs.is_empty() => {
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
                    metrics::jwks_refresh_failed();
                    tracing::warn!(error = %e, "could not fetch the JWKS again; keeping the keys in use");
                }
            }
        })
    });
    // Sync sessions outlive HTTP's graceful shutdown (they are upgraded connections): tell each
    // to close and let it save its sync states before the server stops.
    let sessions = state.hub.clone();
    let lifecycle = state.lifecycle.clone();
    let grace = options.grace;
    let shutdown = async move {
        shutdown.await;
        lifecycle.begin_shutdown();
        if !grace.is_zero() {
            tracing::info!(
                seconds = grace.as_secs_f64(),
                "not ready; serving on for the grace period"
            );
            tokio::time::sleep(grace).await;
        }
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
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
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

/// `regie-server migrate`: applies the embedded migrations the store lacks and says which.
pub async fn migrate(args: StoreArgs) -> anyhow::Result<()> {
    let backend = args.backend().map_err(anyhow::Error::msg)?;
    let applied = Store::migrate(&backend)
        .await
        .with_context(|| format!("cannot migrate the store ({backend})"))?;
    if applied.is_empty() {
        println!("{backend}: schema up to date, nothing applied");
    } else {
        let versions: Vec<String> = applied.iter().map(i64::to_string).collect();
        println!("{backend}: applied migrations {}", versions.join(", "));
    }
    Ok(())
}

/// `regie-server verify-audit`: walks the hash chain; fails if a row was altered.
pub async fn verify_audit(args: StoreArgs) -> anyhow::Result<()> {
    // The audit log holds no content: no key-encryption key is needed to verify it.
    let backend = args.backend().map_err(anyhow::Error::msg)?;
    let store = Store::open_audit_only(&backend)
        .await
        .with_context(|| format!("cannot open the store ({backend})"))?;
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

/// Opens the store `args` name with its key-encryption key.
async fn open_store(args: &StoreArgs) -> anyhow::Result<Store> {
    let backend = args.backend().map_err(anyhow::Error::msg)?;
    let kek = args.kek().context("cannot read the key-encryption key")?;
    Store::open_backend(&backend, kek)
        .await
        .with_context(|| format!("cannot open the store ({backend})"))
}

/// `regie-server backup <dest>`: an online, consistent copy of the SQLite data store without
/// its key store (`VACUUM INTO`); for PostgreSQL, how to take one with `pg_dump`.
pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let backend = args.store.backend().map_err(anyhow::Error::msg)?;
    if let storage::Backend::Postgres(_) = backend {
        println!(
            "A PostgreSQL store is backed up with pg_dump, the key store left out:\n  \
             pg_dump --format=custom --exclude-schema=regie_keys --file=<dest> <database-url>\n\
             and the key store on its own, kept apart (DEPLOYMENT.md):\n  \
             pg_dump --format=custom --schema=regie_keys --file=<keys-dest> <database-url>"
        );
        return Ok(());
    }
    if args.dest.exists() {
        anyhow::bail!(
            "{} exists already; the backup goes to a new file",
            args.dest.display()
        );
    }
    let store = open_store(&args.store).await?;
    store
        .backup(&args.dest)
        .await
        .with_context(|| format!("cannot write the backup to {}", args.dest.display()))?;
    store.close().await;
    println!(
        "{}: a copy of the data store, without its keys (they stay in {})",
        args.dest.display(),
        storage::keys::SQLITE_KEY_FILE
    );
    Ok(())
}

/// `regie-server rotate-key --new-key-file <file>`: re-wraps every data key with the new
/// key-encryption key (made in that file if it does not exist).
pub async fn rotate_key(args: RotateKeyArgs) -> anyhow::Result<()> {
    let new = storage::Kek::from_file_or_new(&args.new_key_file)
        .context("cannot read or make the new key-encryption key")?;
    let store = open_store(&args.store).await?;
    let old = store.kek_id().to_owned();
    let n = store
        .rotate_kek(&new)
        .await
        .context("cannot re-wrap the data keys")?;
    store.close().await;
    println!(
        "{n} data keys re-wrapped: key-encryption key {old} replaced by {}; start the server with --key-file {}",
        new.id(),
        args.new_key_file.display()
    );
    Ok(())
}
