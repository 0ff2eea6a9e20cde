//! Configuration: flags, `REGIE_*` environment variables and an optional TOML file, in that
//! order of precedence (a flag beats a variable, which beats the file, which beats the
//! default). Every option is declared once, here, with clap: its doc comment is its `--help`
//! text, its long name is its key in the file (`data-dir = "/var/lib/regie"`) and its `env` is its
//! variable. The file's values become the options' defaults before the command line is parsed,
//! so they are checked by the same parsers; a key that names no option is an error naming it.
//! `regie-server config` prints the effective configuration of `serve` and where each value came
//! from, secrets masked.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::telemetry::LogFormat;

/// Options whose values `regie-server config` masks.
const SECRETS: &[&str] = &["jwt_secret", "key"];
/// Options that are URLs whose password `regie-server config` masks.
const REDACTED: &[&str] = &["database_url"];

/// `regie-server`: the Regie sync server.
#[derive(Debug, Parser)]
#[command(name = "regie-server", version, about = "Regie's sync server: authenticated automerge-repo sync of dossier documents, gated per audience, stored durably, audited", long_about = None)]
pub struct Cli {
    /// TOML file with values for any option of this command (keys are the long option names,
    /// e.g. `data-dir = "/var/lib/regie"`); environment variables and flags override it.
    #[arg(long, env = "REGIE_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How log lines are written (to standard error): `text`, or `json`, one object a line with
    /// its request or connection span, for log shippers. `RUST_LOG` filters them (default `info`).
    #[arg(
        long,
        env = "REGIE_LOG_FORMAT",
        global = true,
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
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
    Serve(ServeCommand),
    /// Run the server on a demo store in the current directory (creates it on first run) and
    /// print a token and document URLs per role, also written to `regie-demo.json`.
    Demo(DemoArgs),
    /// Verify the audit log's hash chain and report the first broken row.
    VerifyAudit(StoreArgs),
    /// Write an online, consistent copy of the data store, without its keys, to a new file
    /// (SQLite); for PostgreSQL, print how to take one with pg_dump.
    Backup(BackupArgs),
    /// Re-wrap every dossier's data key with a new key-encryption key (no data is
    /// re-encrypted); afterwards start the server with the new key. Stop the servers first.
    RotateKey(RotateKeyArgs),
    /// Apply the store's embedded schema migrations and exit (`serve` applies them too; run
    /// this first when upgrading several instances of one PostgreSQL database).
    Migrate(StoreArgs),
    /// Print the OpenAPI document of the HTTP API (what `/api/v1/openapi.json` serves).
    Openapi,
    /// Print the configuration `serve` would run with, given the same flags, variables and
    /// file, and where each value came from (secrets masked).
    Config(ServeCommand),
}

/// Configuration of `backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The new file to write the copy to.
    pub dest: PathBuf,
}

/// Configuration of `rotate-key`.
#[derive(Debug, Clone, Args)]
pub struct RotateKeyArgs {
    /// The store, with its current key-encryption key.
    #[command(flatten)]
    pub store: StoreArgs,
    /// File with the new key-encryption key (64 hex digits); made, with a fresh random key, if
    /// it does not exist.
    #[arg(long)]
    pub new_key_file: PathBuf,
}

/// A configuration that cannot be used: a command line clap refuses (or `--help`), or a
/// configuration file that cannot be read or holds what no option takes.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// From clap: print it with `exit()`.
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// The configuration file.
    #[error("configuration file {path}: {problem}")]
    File {
        /// The file.
        path: String,
        /// What is wrong, naming the key.
        problem: String,
    },
}

/// The parsed configuration and what `regie-server config` reports about it.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub cli: Cli,
    matches: ArgMatches,
    file: Option<(PathBuf, Vec<String>)>,
}

/// Parses `args` (the program name first) with the environment and the configuration file
/// named by `--config` or `REGIE_CONFIG`.
pub fn load<I, T>(args: I) -> Result<Loaded, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut command = Cli::command();
    let file = match config_path(&args) {
        Some(path) => {
            let (c, keys) = apply_file(command, &path)?;
            command = c;
            Some((path, keys))
        }
        None => None,
    };
    let matches = command.try_get_matches_from_mut(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    Ok(Loaded { cli, matches, file })
}

/// The file named by the last `--config` on the command line, else by `REGIE_CONFIG`.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut found = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if a == "--" {
            break;
        }
        if a == "--config" {
            found = it.next().map(PathBuf::from);
        } else if let Some(v) = a.strip_prefix("--config=") {
            found = Some(PathBuf::from(v));
        }
    }
    found.or_else(|| {
        std::env::var_os("REGIE_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// Every option (of the root command and each subcommand) by its long name, with the
/// subcommand it belongs to (`None`: the root's, global ones included).
fn options(command: &clap::Command) -> BTreeMap<String, Vec<(Option<String>, clap::Arg)>> {
    let mut out: BTreeMap<String, Vec<(Option<String>, clap::Arg)>> = BTreeMap::new();
    let mut add = |sub: Option<&str>, cmd: &clap::Command| {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long()
                && !matches!(long, "help" | "version" | "config")
            {
                out.entry(long.to_owned())
                    .or_default()
                    .push((sub.map(str::to_owned), arg.clone()));
            }
        }
    };
    add(None, command);
    for sub in command.get_subcommands() {
        add(Some(sub.get_name()), sub);
    }
    out
}

/// Makes the file's values the defaults of the options they name; the keys it set.
fn apply_file(
    mut command: clap::Command,
    path: &Path,
) -> Result<(clap::Command, Vec<String>), ConfigError> {
    let fail = |problem: String| ConfigError::File {
        path: path.display().to_string(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| fail(format!("not valid TOML: {}", e.message())))?;
    let options = options(&command);
    let mut keys = Vec::new();
    for (key, value) in table {
        let Some(places) = options.get(&key) else {
            let hint = options
                .keys()
                .find(|k| **k == key.replace('_', "-").to_lowercase())
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            return Err(fail(format!(
                "unknown key `{key}`: no option is called --{key}{hint} (see `regie-server serve --help`)"
            )));
        };
        let (_, arg) = &places[0];
        let text = if arg.get_action().takes_values() {
            let text = match &value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => {
                    return Err(fail(format!(
                        "key `{key}`: expected a string or a number, found a {}",
                        other.type_str()
                    )));
                }
            };
            // Checked by the option's own parser, alone, so the error names the file's key.
            let probe = clap::Command::new("regie-server")
                .no_binary_name(true)
                .arg(arg.clone().env(None::<&str>).default_value(None::<&str>));
            if let Err(e) = probe.try_get_matches_from([format!("--{key}={text}")]) {
                let why = e.to_string();
                let why = why.lines().next().unwrap_or_default();
                return Err(fail(format!(
                    "key `{key}`: {}",
                    why.strip_prefix("error: ").unwrap_or(why)
                )));
            }
            text
        } else {
            match value {
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(fail(format!(
                        "key `{key}`: expected true or false, found a {}",
                        other.type_str()
                    )));
                }
            }
        };
        // Read once at start: a leaked string per key is what clap's defaults are made of.
        let text: &'static str = Box::leak(text.into_boxed_str());
        for (sub, arg) in places {
            let id = arg.get_id().clone();
            command = match sub {
                None => command.mut_arg(id, |a| a.default_value(text)),
                Some(sub) => {
                    command.mut_subcommand(sub, |c| c.mut_arg(id, |a| a.default_value(text)))
                }
            };
        }
        keys.push(key);
    }
    Ok((command, keys))
}

impl Loaded {
    /// The effective configuration of `regie-server config`'s arguments as TOML that could be
    /// the configuration file, each line saying where its value came from; secrets masked.
    pub fn report(&self) -> String {
        let (name, matches) = self.matches.subcommand().unwrap_or(("", &self.matches));
        // In the order of `--help` (the file's keys were moved to the end by setting them).
        let pristine = Cli::command();
        let own = pristine
            .find_subcommand(name)
            .map(|c| c.get_arguments().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        let global = pristine
            .get_arguments()
            .filter(|a| a.is_global_set())
            .cloned();
        let mut out = String::from("# The effective configuration of `regie-server serve`.\n");
        for arg in own.iter().cloned().chain(global) {
            let Some(long) = arg.get_long() else {
                continue;
            };
            if matches!(long, "help" | "version") {
                continue;
            }
            let id = arg.get_id().as_str();
            let from = match matches.value_source(id) {
                Some(ValueSource::CommandLine) => format!("flag --{long}"),
                Some(ValueSource::EnvVariable) => format!(
                    "environment {}",
                    arg.get_env()
                        .map(|e| e.to_string_lossy())
                        .unwrap_or_default()
                ),
                Some(ValueSource::DefaultValue) => match &self.file {
                    Some((path, keys)) if keys.iter().any(|k| k == long) => {
                        format!("file {}", path.display())
                    }
                    _ => "default".to_owned(),
                },
                _ => {
                    out.push_str(&format!("# {long}: not set\n"));
                    continue;
                }
            };
            let values: Vec<String> = matches
                .get_raw(id)
                .into_iter()
                .flatten()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let value = if SECRETS.contains(&id) {
                "\"********\"".to_owned()
            } else if REDACTED.contains(&id) {
                let shown: Vec<String> = values
                    .iter()
                    .map(|v| crate::storage::redact_url(v))
                    .collect();
                toml::Value::String(shown.join(" ")).to_string()
            } else {
                match values.as_slice() {
                    [v] if v.parse::<f64>().is_ok() || v == "true" || v == "false" => v.clone(),
                    [v] => toml::Value::String(v.clone()).to_string(),
                    vs => toml::Value::Array(
                        vs.iter().map(|v| toml::Value::String(v.clone())).collect(),
                    )
                    .to_string(),
                }
            };
            out.push_str(&format!("{long} = {value}  # {from}\n"));
        }
        out
    }
}

/// Where the store lives.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the SQLite store (created if missing); unused with --database-url.
    #[arg(long, env = "REGIE_DATA_DIR", default_value = "regie-data")]
    pub data_dir: PathBuf,
    /// PostgreSQL database of the store instead of SQLite in --data-dir, as a URL
    /// (`postgres://user:password@host:5432/regie?sslmode=require`); shown without its
    /// password. Several instances may share one (issue 17).
    #[arg(long, env = "REGIE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,
    /// File holding the key-encryption key that wraps every dossier's data key (I6): 32
    /// random bytes as 64 hex digits (`openssl rand -hex 32`). Keep it outside the data
    /// directory and out of the data's backups (DEPLOYMENT.md). Without it or --key, a
    /// development key is made in the data directory on first start.
    #[arg(long, env = "REGIE_KEY_FILE", conflicts_with = "key")]
    pub key_file: Option<PathBuf>,
    /// The key-encryption key itself, 64 hex digits, instead of --key-file (e.g. from a secret
    /// store); never shown.
    #[arg(long, env = "REGIE_KEY", hide_env_values = true)]
    pub key: Option<KeyText>,
}

impl StoreArgs {
    /// SQLite in `dir`.
    pub fn sqlite(dir: impl Into<PathBuf>) -> StoreArgs {
        StoreArgs {
            data_dir: dir.into(),
            database_url: None,
            key_file: None,
            key: None,
        }
    }

    /// The key-encryption key: `--key`, else `--key-file`, else the development key in the
    /// data directory (made on first use, with a warning). The error names no key material.
    pub fn kek(&self) -> Result<crate::storage::Kek, crate::storage::KeyError> {
        use crate::storage::Kek;
        match (&self.key, &self.key_file) {
            (Some(text), _) => Kek::from_hex(&text.0),
            (None, Some(path)) => Kek::from_file(path),
            (None, None) => {
                let path = self
                    .data_dir
                    .join(crate::storage::keys::DEVELOPMENT_KEK_FILE);
                tracing::warn!(
                    path = %path.display(),
                    "no --key-file or REGIE_KEY: using a development key-encryption key in the data directory; a copy of that directory is then readable (DEPLOYMENT.md)"
                );
                Kek::from_file_or_new(&path)
            }
        }
    }

    /// Where the store is; an error (without the URL's password) when `--database-url` is not
    /// a PostgreSQL URL.
    pub fn backend(&self) -> Result<crate::storage::Backend, String> {
        crate::storage::Backend::choose(
            &self.data_dir,
            self.database_url.as_ref().map(|u| u.0.as_str()),
        )
    }
}

/// A key-encryption key as configured (hex): its `Debug` and `Display` show nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyText(pub String);

impl std::str::FromStr for KeyText {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<KeyText, Self::Err> {
        Ok(KeyText(s.to_owned()))
    }
}

impl std::fmt::Display for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("********")
    }
}

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyText(********)")
    }
}

/// A `postgres://` URL, which may hold a password: its `Debug` and `Display` mask it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

/// Taken as given and checked by [`StoreArgs::backend`]: clap would repeat a refused value,
/// password and all, in its error.
impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<DatabaseUrl, Self::Err> {
        Ok(DatabaseUrl(s.to_owned()))
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::storage::redact_url(&self.0))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
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

/// `serve`'s command line: the server's configuration, and how the process serves it.
#[derive(Debug, Clone, Args)]
pub struct ServeCommand {
    /// The server.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Metrics and shutdown.
    #[command(flatten)]
    pub ops: OpsArgs,
}

/// Metrics and shutdown.
#[derive(Debug, Clone, Default, Args)]
pub struct OpsArgs {
    /// Serve Prometheus metrics (`/metrics`) on this address only, e.g. one a firewall keeps
    /// private; without it they are served on --listen beside the API.
    #[arg(long, env = "REGIE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// After SIGTERM or Ctrl-C, keep serving this many seconds with `/api/v1/ready` answering
    /// 503, so a load balancer stops sending work here; then close sync connections and stop.
    #[arg(long, env = "REGIE_SHUTDOWN_GRACE_SECONDS", default_value_t = 0)]
    pub shutdown_grace_seconds: u64,
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

/// Oversight settings: how long breaking the glass lasts (R2), what residents see of who
/// looked at their dossier (R9), and how long a device may hold its store's key idle (R29).
#[derive(Debug, Clone, Args)]
pub struct OversightArgs {
    /// How long a break-glass grant lasts, in hours (decimals allowed, e.g. 0.5; at most 72).
    #[arg(long = "break-glass-hours", env = "REGIE_BREAK_GLASS_HOURS", default_value = "8", value_parser = grant_hours)]
    pub break_glass: std::time::Duration,
    /// Show residents the user ids of the individual workers who accessed their dossier.
    #[arg(long, env = "REGIE_SHOW_WORKER_NAMES")]
    pub show_worker_names: bool,
    /// Counts below this are published only as "< N" in managers' summaries and the council
    /// report (R27): in a small team a small count can point at one person.
    #[arg(long, env = "REGIE_SMALL_COUNT_THRESHOLD", default_value = "5", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub small_count_threshold: u16,
    /// The controller named in the register of processing activities (R25), e.g. "College van
    /// burgemeester en wethouders van de gemeente Zwolle".
    #[arg(long, env = "REGIE_CONTROLLER_NAME", default_value = "de gemeente")]
    pub controller_name: String,
    /// How the register says to reach the controller and its privacy officer.
    #[arg(
        long,
        env = "REGIE_CONTROLLER_CONTACT",
        default_value = "de functionaris gegevensbescherming van de gemeente"
    )]
    pub controller_contact: String,
    /// How long a device may hold its store's key without use, in seconds (R29): the key the
    /// server releases comes with this time, and the web app drops it after it and locks.
    #[arg(long, env = "REGIE_DEVICE_IDLE_LOCK_SECONDS", default_value = "900", value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub device_idle_lock_seconds: u32,
}

impl Default for OversightArgs {
    fn default() -> Self {
        OversightArgs {
            break_glass: std::time::Duration::from_secs(8 * 3600),
            show_worker_names: false,
            small_count_threshold: 5,
            controller_name: "de gemeente".into(),
            controller_contact: "de functionaris gegevensbescherming van de gemeente".into(),
            device_idle_lock_seconds: 900,
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
    /// Oversight and the device idle lock, as for `serve` (the web app's browser tests set a short
    /// idle lock).
    #[command(flatten)]
    pub oversight: OversightArgs,
}
