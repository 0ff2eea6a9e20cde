//! Command-line and environment configuration (`REGIE_*`), parsed with clap.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `regie-server`: the Regie sync server.
#[derive(Debug, Parser)]
#[command(name = "regie-server", version, about = "Regie's sync server: authenticated automerge-repo sync of dossier documents, gated per audience, stored durably, audited", long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
// Parsed once at start; the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Run the server on a demo store in the current directory (creates it on first run) and
    /// print a token and document URLs per role, also written to `regie-demo.json`.
    Demo(DemoArgs),
    /// Verify the audit log's hash chain and report the first broken row.
    VerifyAudit(StoreArgs),
    /// Print the OpenAPI document of the HTTP API (what `/api/v1/openapi.json` serves).
    Openapi,
}

/// Where the store lives.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the SQLite store (created if missing).
    #[arg(long, env = "REGIE_DATA_DIR", default_value = "regie-data")]
    pub data_dir: PathBuf,
}

/// Configuration of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "REGIE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// HS256 secret for tokens (development and demo only).
    #[arg(long, env = "REGIE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM file with the RS256/ES256 public key that signs tokens.
    #[arg(long, env = "REGIE_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,
    /// JWKS file path or URL with the keys that sign tokens.
    #[arg(long, env = "REGIE_JWKS")]
    pub jwks: Option<String>,
    /// Required `iss` claim.
    #[arg(long, env = "REGIE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(long, env = "REGIE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// TLS certificate chain (PEM); with --tls-key the server speaks HTTPS and WSS.
    #[arg(long, env = "REGIE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "REGIE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Documents kept in memory; colder ones are evicted.
    #[arg(long, env = "REGIE_HOT_DOCUMENTS", default_value_t = 10_000)]
    pub hot_documents: usize,
    /// Breaking the glass and the resident's access view.
    #[command(flatten)]
    pub oversight: OversightArgs,
    /// What one device may cost the server (I7).
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// What one device may cost the server (I7): limits on sync input, queues and rates. The
/// defaults admit everything an honest device sends for a household's caseload.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Operations in one incoming sync message (all its changes together).
    #[arg(long, env = "REGIE_MAX_SYNC_OPS", default_value_t = 1_000_000)]
    pub max_sync_ops: u64,
    /// Bytes of one incoming sync message's changes once inflated, in MiB.
    #[arg(long, env = "REGIE_MAX_SYNC_INFLATED_MIB", default_value_t = 32)]
    pub max_sync_inflated_mib: usize,
    /// Bytes queued for one connection before a reader that does not keep up is closed, in MiB.
    #[arg(long, env = "REGIE_MAX_OUTBOX_MIB", default_value_t = 16)]
    pub max_outbox_mib: usize,
    /// Live connections per user.
    #[arg(long, env = "REGIE_MAX_CONNECTIONS_PER_USER", default_value_t = 16)]
    pub max_connections_per_user: usize,
    /// Live connections in all.
    #[arg(long, env = "REGIE_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Messages per second one connection may send, sustained (bursts of ten seconds' worth
    /// pass); a faster device is slowed down, not disconnected.
    #[arg(long, env = "REGIE_MESSAGES_PER_SECOND", default_value_t = 50)]
    pub messages_per_second: u32,
    /// Rejected batches kept with their bytes per device and per dossier; beyond, a rejection is
    /// recorded without its bytes.
    #[arg(long, env = "REGIE_QUARANTINE_MAX_BATCHES", default_value_t = 64)]
    pub quarantine_max_batches: u64,
    /// Bytes of rejected batches kept per device and per dossier, in MiB.
    #[arg(long, env = "REGIE_QUARANTINE_MAX_MIB", default_value_t = 16)]
    pub quarantine_max_mib: u64,
}

impl Default for LimitArgs {
    fn default() -> Self {
        LimitArgs {
            max_sync_ops: 1_000_000,
            max_sync_inflated_mib: 32,
            max_outbox_mib: 16,
            max_connections_per_user: 16,
            max_connections: 10_000,
            messages_per_second: 50,
            quarantine_max_batches: 64,
            quarantine_max_mib: 16,
        }
    }
}

/// Oversight settings: how long breaking the glass lasts (R2) and what residents see of who
/// looked at their dossier (R9).
#[derive(Debug, Clone, Args)]
pub struct OversightArgs {
    /// How long a break-glass grant lasts, in hours (decimals allowed, e.g. 0.5; at most 72).
    #[arg(long = "break-glass-hours", env = "REGIE_BREAK_GLASS_HOURS", default_value = "8", value_parser = grant_hours)]
    pub break_glass: std::time::Duration,
    /// Show residents the user ids of the individual workers who accessed their dossier.
    #[arg(long, env = "REGIE_SHOW_WORKER_NAMES")]
    pub show_worker_names: bool,
}

impl Default for OversightArgs {
    fn default() -> Self {
        OversightArgs {
            break_glass: std::time::Duration::from_secs(8 * 3600),
            show_worker_names: false,
        }
    }
}

fn grant_hours(s: &str) -> Result<std::time::Duration, String> {
    let hours: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of hours"))?;
    if !(hours * 3600.0 >= 1.0 && hours <= 72.0) {
        return Err("a break-glass grant lasts at least a second and at most 72 hours".into());
    }
    Ok(std::time::Duration::from_secs_f64(hours * 3600.0))
}

/// Configuration of `demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, env = "REGIE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}
