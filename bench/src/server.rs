//! The servers under test, each as its own process so that its memory and CPU time can be read
//! from `/proc` without the load generator's: `regie-bench-server` (Regie, optionally with the
//! privacy bypass) and the published JS `@automerge/automerge-repo-sync-server`, forced onto
//! 127.0.0.1 by a preload (`bench/js/loopback.mjs`). Also seeds a Regie store directly through
//! [`regie_server::storage::Store`], which is much faster than the HTTP API.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use regie_core::id::{DistrictId, PersonId, TeamId, UserId};
use regie_core::relationship::Relationships;
use regie_server::storage::Store;
use tokio::time::Instant;

use crate::workload::{DISTRICT, DossierBytes, Layout, TEAM};

/// Memory and CPU of a process, from `/proc/<pid>/status` and `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// Resident set size now, bytes.
    pub rss: u64,
    /// Peak resident set size, bytes.
    pub peak_rss: u64,
    /// User + system CPU time so far, seconds.
    pub cpu_s: f64,
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

impl ProcStats {
    /// The stats of several processes added up (several server instances); peak RSS too.
    pub fn sum(pids: &[String]) -> anyhow::Result<ProcStats> {
        let mut total = ProcStats::default();
        for pid in pids {
            let s = ProcStats::of(pid)?;
            total.rss += s.rss;
            total.peak_rss += s.peak_rss;
            total.cpu_s += s.cpu_s;
        }
        Ok(total)
    }

    /// Reads the stats of `pid` (`"self"` for this process).
    pub fn of(pid: &str) -> anyhow::Result<ProcStats> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("cannot read /proc/{pid}/status"))?;
        let kb = |field: &str| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Ok(ProcStats {
            rss: kb("VmRSS:"),
            peak_rss: kb("VmHWM:"),
            cpu_s: (ticks(11) + ticks(12)) / clock_ticks(),
        })
    }
}

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Kind {
    /// Regie with the full privacy path.
    Regie,
    /// Regie with gating, validation and audit bypassed.
    RegieBypass,
    /// Regie with encryption at rest off.
    RegiePlain,
    /// The published JS automerge-repo sync server.
    Js,
}

/// A server process on 127.0.0.1.
pub struct ServerProc {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Which server it is.
    pub kind: Kind,
    /// From spawn to its "listening" line (cold start).
    pub ready_after: Duration,
    /// Whether devices offer permessage-deflate ([`Launch::offer_deflate`]).
    pub offer_deflate: bool,
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start the servers.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `regie-bench-server` binary.
    pub regie_bin: PathBuf,
    /// `bench/js` (with `package.json` and `loopback.mjs`).
    pub js_dir: PathBuf,
    /// Extra arguments for `regie-bench-server` (e.g. `--nodelay`).
    pub regie_args: Vec<String>,
    /// The PostgreSQL database Regie stores in (seeded there too), instead of SQLite in each
    /// run's directory.
    pub database_url: Option<String>,
    /// Whether devices offer permessage-deflate, as browsers and Node's `ws` do (the JS server
    /// declines it; Regie agrees).
    pub offer_deflate: bool,
}

impl Launch {
    /// Defaults: the binary next to the running one, `bench/js` of this source tree.
    pub fn default_paths() -> Launch {
        let regie_bin = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("regie-bench-server")))
            .unwrap_or_else(|| PathBuf::from("regie-bench-server"));
        Launch {
            regie_bin,
            js_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("js"),
            regie_args: Vec::new(),
            database_url: None,
            offer_deflate: true,
        }
    }

    /// Installs the JS server with npm if `node_modules` lacks it.
    pub fn ensure_js(&self) -> anyhow::Result<()> {
        let entry = self.js_entry();
        if entry.exists() {
            return Ok(());
        }
        eprintln!(
            "installing the JS sync server: npm install in {}",
            self.js_dir.display()
        );
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund"])
            .current_dir(&self.js_dir)
            .status()
            .context("cannot run npm (is node installed?)")?;
        if !status.success() || !entry.exists() {
            bail!("npm install in {} failed", self.js_dir.display());
        }
        Ok(())
    }

    fn js_entry(&self) -> PathBuf {
        self.js_dir
            .join("node_modules/@automerge/automerge-repo-sync-server/src/index.js")
    }

    /// Starts a server of `kind` on the store in `data_dir`.
    pub fn start(
        &self,
        kind: Kind,
        data_dir: &Path,
        hot_documents: usize,
    ) -> anyhow::Result<ServerProc> {
        std::fs::create_dir_all(data_dir)?;
        let mut cmd = match kind {
            Kind::Regie | Kind::RegieBypass | Kind::RegiePlain => {
                let mut c = Command::new(&self.regie_bin);
                // Only what is given here counts: no REGIE_* from the caller's environment.
                for (k, _) in std::env::vars_os() {
                    if k.to_string_lossy().starts_with("REGIE_") {
                        c.env_remove(k);
                    }
                }
                c.arg("--data-dir")
                    .arg(data_dir)
                    .args(["--listen", "127.0.0.1:0"])
                    .args(["--jwt-secret", crate::workload::SECRET])
                    .args(["--jwt-issuer", crate::workload::ISSUER])
                    .args(["--jwt-audience", crate::workload::AUDIENCE])
                    .arg("--hot-documents")
                    .arg(hot_documents.to_string())
                    .args(&self.regie_args)
                    .env("RUST_LOG", "warn");
                if kind == Kind::RegieBypass {
                    c.arg("--bypass-privacy");
                }
                if kind == Kind::RegiePlain {
                    c.arg("--no-encryption");
                }
                c
            }
            Kind::Js => {
                self.ensure_js()?;
                let mut c = Command::new("node");
                c.arg("--import")
                    .arg(self.js_dir.join("loopback.mjs"))
                    .arg(self.js_entry())
                    .current_dir(data_dir)
                    .env("PORT", "0")
                    .env("DATA_DIR", data_dir.join("amrg"));
                c
            }
        };
        let started = Instant::now();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start the {kind:?} server"))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // Regie: "regie-server listening on http://ADDR (…)"; JS preload:
                // "regie-bench-js listening on http://ADDR".
                if let Some(rest) = line.split("listening on http://").nth(1)
                    && let Some(addr) = rest
                        .split_whitespace()
                        .next()
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(600))
            .map_err(|_| anyhow!("the {kind:?} server did not report its address"))?;
        if !addr.ip().is_loopback() {
            bail!("the {kind:?} server listens on {addr}, not on loopback");
        }
        Ok(ServerProc {
            child,
            addr,
            kind,
            ready_after: started.elapsed(),
            offer_deflate: self.offer_deflate,
        })
    }
}

impl ServerProc {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its memory and CPU time now.
    pub fn stats(&self) -> ProcStats {
        ProcStats::of(&self.child.id().to_string()).unwrap_or_default()
    }

    /// The request path devices connect to (Regie wants a token; the JS server takes any path).
    pub fn path(&self, token: Option<&str>) -> String {
        match (self.kind, token) {
            (Kind::Js, _) | (_, None) => "/".into(),
            (_, Some(t)) => format!("/sync?token={t}"),
        }
    }

    /// Stops it (SIGKILL; a benchmark store is thrown away).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token for device user `user`, a worker of the benchmark district and team.
pub fn token(auth: &regie_server::auth::Authenticator, user: &str) -> anyhow::Result<String> {
    let claims = regie_core::principal::Claims {
        sub: user.into(),
        role: regie_core::principal::Role::Worker,
        district: Some(DISTRICT.into()),
        team: Some(TEAM.into()),
        org: None,
        person: None,
        citywide: false,
    };
    auth.mint(&claims, Duration::from_secs(24 * 3600))
        .map_err(|e| anyhow!("cannot mint a token: {e}"))
}

/// The authenticator that mints benchmark tokens.
pub fn authenticator() -> regie_server::auth::Authenticator {
    regie_server::auth::Authenticator::hs256(
        crate::workload::SECRET,
        crate::workload::ISSUER,
        crate::workload::AUDIENCE,
    )
}

/// Creates the layout's dossiers in a Regie store in `dir` (or the PostgreSQL database at
/// `database_url`) through `Store::create_dossier`:
/// plan, record and meta from `bytes(dossier)`, the followers assigned, two persons each.
/// Calls `progress` with the number done every 10,000 dossiers. `plain`: the store's blocks
/// unencrypted, for the `plain` target's server (`--no-encryption`), which reads them so.
pub async fn seed_regie(
    dir: &Path,
    database_url: Option<&str>,
    plain: bool,
    layout: &Layout,
    mut bytes: impl FnMut(usize) -> DossierBytes,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<()> {
    let backend = match database_url {
        Some(url) => regie_server::storage::Backend::Postgres(url.to_owned()),
        None => regie_server::storage::Backend::Sqlite(dir.to_path_buf()),
    };
    // The key-encryption key the server started on `dir` finds: the development one there.
    let kek = regie_server::storage::Kek::from_file_or_new(
        &dir.join(regie_server::storage::keys::DEVELOPMENT_KEK_FILE),
    )?;
    // The switch is read once, when the store opens.
    regie_server::storage::keys::store_plain_for_benchmarks(plain);
    let store = Store::open_backend(&backend, kek).await;
    regie_server::storage::keys::store_plain_for_benchmarks(false);
    let store = store.context("cannot open the store")?;
    let persons: Vec<PersonId> = crate::workload::persons()
        .into_iter()
        .map(|p| p.id)
        .collect();
    let now = time::OffsetDateTime::now_utc();
    for d in &layout.dossiers {
        let mut rel = Relationships::new(d.id, DistrictId::new(DISTRICT)?, TeamId::new(TEAM)?);
        rel.assigned = d
            .assigned
            .iter()
            .map(|u| UserId::new(u.as_str()))
            .collect::<Result<_, _>>()?;
        let b = bytes(d.index);
        let docs: Vec<_> = d
            .docs
            .iter()
            .map(|doc| (doc.id, doc.key.clone(), b.get(&doc.key).to_vec()))
            .collect();
        store
            .create_dossier(&rel, &persons, &docs, now, &[])
            .await
            .context("cannot seed a dossier")?;
        if (d.index + 1) % 10_000 == 0 {
            progress(d.index + 1);
        }
    }
    store.close().await;
    Ok(())
}
