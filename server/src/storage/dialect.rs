//! Which database the store is on, and the little SQL the two spell differently. Every query
//! is written once in SQL both accept (`$N` placeholders, `ON CONFLICT DO NOTHING`,
//! `RETURNING`, times as RFC 3339 text in UTC, integers for flags); what remains is here: how an
//! audit row's instant is compared (SQLite's `julianday`, PostgreSQL's `regie_instant`, both
//! indexed), `max`/`GREATEST` and `instr`/`strpos`, the connection pragmas of SQLite, the locks
//! PostgreSQL needs where SQLite has one writer (the audit chain's tail, the quarantine cap), and
//! what follows a destruction (SQLite truncates its WAL; PostgreSQL has no `secure_delete`).

use std::path::{Path, PathBuf};

use sqlx::any::AnyArguments;
use sqlx::migrate::Migrator;
use sqlx::{Any, AssertSqlSafe, Row};
use sqlx::{AnyConnection, AnyPool};

use super::Result;
use crate::audit::GENESIS;

/// Where the store is: the SQLite file in a data directory, or a PostgreSQL database.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// `regie.sqlite3` in this directory (created if missing).
    Sqlite(PathBuf),
    /// A `postgres://` (or `postgresql://`) URL.
    Postgres(String),
}

impl Backend {
    /// The backend `--database-url` names when given, else SQLite in `data_dir`. Only
    /// PostgreSQL URLs are taken: SQLite is chosen by its directory.
    pub fn choose(
        data_dir: &Path,
        database_url: Option<&str>,
    ) -> std::result::Result<Backend, String> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(Backend::Sqlite(data_dir.to_path_buf())),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Backend::Postgres(url.to_owned()))
            }
            Some(url) => Err(format!(
                "--database-url must be a postgres:// URL (SQLite is chosen with --data-dir), not {}",
                redact_url(url)
            )),
        }
    }
}

/// Shows where the store is without a password.
impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Sqlite(dir) => write!(f, "SQLite in {}", dir.display()),
            Backend::Postgres(url) => write!(f, "PostgreSQL at {}", redact_url(url)),
        }
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// `url` with the password of its user part (and a `password=` parameter) replaced by `***`:
/// what configuration reports and logs may show.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// The URL sqlx's `Any` opens the SQLite file at `path` with, creating it if missing.
pub(super) fn sqlite_url(path: &Path) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut encoded = String::new();
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("sqlite://{encoded}?mode=rwc")
}

/// A lock that PostgreSQL needs where SQLite, with one writer at a time, needs none.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lock {
    /// Appending to the audit chain: its tail is read and extended under it.
    AuditChain,
    /// Counting what quarantine keeps, then inserting.
    Quarantine,
    /// The consent-share and retention sweeps: run by one instance at a time.
    Sweep,
}

impl Lock {
    /// Its advisory lock key: "Regie" in ASCII and a number, unlikely to meet another
    /// application's keys in the same database.
    pub(crate) fn key(self) -> i64 {
        const BASE: i64 = 0x5265_6769_6500_0000;
        match self {
            Lock::AuditChain => BASE + 1,
            Lock::Quarantine => BASE + 2,
            Lock::Sweep => BASE + 3,
        }
    }
}

/// The SQL dialect of the store's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

impl Dialect {
    /// Each SQLite connection's settings. WAL; FULL: a commit returns only once the log is on
    /// the disk, so an acknowledged change survives a power cut too (I4; the write path's group
    /// commit pays for it once per group, not per batch); deleted content (a replaced view's
    /// history, a destroyed dossier) is overwritten, not left in free pages.
    pub(super) const SQLITE_PRAGMAS: &'static [&'static str] = &[
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = FULL",
        "PRAGMA foreign_keys = ON",
        "PRAGMA secure_delete = ON",
        "PRAGMA busy_timeout = 10000",
    ];

    /// The embedded migrations of this database (`server/migrations/<dialect>/`).
    pub(crate) fn migrator(self) -> &'static Migrator {
        match self {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Takes `lock` until the transaction on `conn` ends (PostgreSQL); nothing on SQLite.
    pub(crate) async fn lock(self, conn: &mut AnyConnection, lock: Lock) -> Result<()> {
        if self == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(lock.key())
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// The hash the next audit row must link to, inside the transaction on `conn`. SQLite: the
    /// one this process remembers (one process writes the file, under the store's mutex).
    /// PostgreSQL: the last committed row's, read after taking the chain's lock, which is held
    /// until the transaction ends, so appends from every connection and instance form one chain.
    pub(crate) async fn chain_tail(
        self,
        conn: &mut AnyConnection,
        remembered: &[u8],
    ) -> Result<Vec<u8>> {
        match self {
            Dialect::Sqlite => Ok(remembered.to_vec()),
            Dialect::Postgres => {
                self.lock(conn, Lock::AuditChain).await?;
                let tail: Option<Vec<u8>> =
                    sqlx::query("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1")
                        .fetch_optional(&mut *conn)
                        .await?
                        .map(|r| r.get(0));
                Ok(tail.unwrap_or_else(|| GENESIS.to_vec()))
            }
        }
    }

    /// An audit row's instant as the database compares it, for the RFC 3339 text `column`:
    /// SQLite's `julianday` (to the millisecond), PostgreSQL's `regie_instant` (a `timestamptz`,
    /// to the microsecond; see `migrations/postgres`). Both are indexed.
    pub(crate) fn instant(self, column: &str) -> String {
        format!("{}({column})", self.instant_fn())
    }

    /// The function [`Dialect::instant`] applies.
    pub(crate) fn instant_fn(self) -> &'static str {
        match self {
            Dialect::Sqlite => "julianday",
            Dialect::Postgres => "regie_instant",
        }
    }

    /// The larger of two values (`NULL` if either is, on SQLite; the other, on PostgreSQL).
    pub(crate) fn greatest(self) -> &'static str {
        match self {
            Dialect::Sqlite => "max",
            Dialect::Postgres => "GREATEST",
        }
    }

    /// The aggregate `f(text, separator)` joining a group's texts into one.
    pub(crate) fn string_agg(self) -> &'static str {
        match self {
            Dialect::Sqlite => "group_concat",
            Dialect::Postgres => "string_agg",
        }
    }

    /// The function `f(haystack, needle)` giving the 1-based position of `needle`, 0 if absent.
    pub(crate) fn position(self) -> &'static str {
        match self {
            Dialect::Sqlite => "instr",
            Dialect::Postgres => "strpos",
        }
    }

    /// After the rows of a destroyed dossier are deleted and committed. SQLite: `secure_delete`
    /// overwrote the freed pages, but their old images live on in the WAL until it is
    /// checkpointed, so it is truncated now. PostgreSQL has no `secure_delete`: deleted tuples
    /// stay in the table files until VACUUM reclaims their space (and in the WAL and backups
    /// for as long as those are kept); no statement here can change that. Shredding a
    /// dossier's key instead is issue 18.
    pub(crate) async fn after_destruction(self, pool: &AnyPool) -> Result<()> {
        if self == Dialect::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(pool)
                .await?;
        }
        Ok(())
    }
}

/// A value bound to a built query.
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

impl From<String> for Bind {
    fn from(v: String) -> Bind {
        Bind::Text(v)
    }
}

impl From<&str> for Bind {
    fn from(v: &str) -> Bind {
        Bind::Text(v.to_owned())
    }
}

impl From<i64> for Bind {
    fn from(v: i64) -> Bind {
        Bind::Int(v)
    }
}

/// SQL assembled at run time with `$N` placeholders (sqlx's `QueryBuilder` writes `?` for
/// `Any`, which PostgreSQL refuses).
pub(crate) struct SqlBuilder {
    sql: String,
    binds: Vec<Bind>,
}

impl SqlBuilder {
    /// A query starting with `head`.
    pub(crate) fn new(head: &str) -> SqlBuilder {
        SqlBuilder {
            sql: head.to_owned(),
            binds: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub(crate) fn push(&mut self, sql: &str) -> &mut SqlBuilder {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder for `value`.
    pub(crate) fn push_bind(&mut self, value: impl Into<Bind>) -> &mut SqlBuilder {
        self.binds.push(value.into());
        let n = self.binds.len();
        self.sql.push_str(&format!("${n}"));
        self
    }

    /// Appends `(v1, v2, …)` of placeholders.
    pub(crate) fn push_list<V: Into<Bind>>(
        &mut self,
        values: impl IntoIterator<Item = V>,
    ) -> &mut SqlBuilder {
        self.push("(");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_bind(v);
        }
        self.push(")")
    }

    /// The query, its values bound.
    pub(crate) fn build(self) -> sqlx::query::Query<'static, Any, AnyArguments> {
        // Only placeholders carry values; the text is made of this module's literals.
        let mut query = sqlx::query(AssertSqlSafe(self.sql));
        for bind in self.binds {
            query = match bind {
                Bind::Text(v) => query.bind(v),
                Bind::Int(v) => query.bind(v),
            };
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_database_url_is_masked() {
        assert_eq!(
            redact_url("postgres://regie:s3cret@db.example:5432/regie?sslmode=require"),
            "postgres://regie:***@db.example:5432/regie?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db/regie?user=regie&password=s3cret"),
            "postgres://db/regie?user=regie&password=***"
        );
        assert_eq!(
            redact_url("postgres://regie@db/regie"),
            "postgres://regie@db/regie"
        );
        let backend = Backend::choose(Path::new("x"), Some("postgres://u:pw@h/d")).unwrap();
        assert!(!format!("{backend} {backend:?}").contains("pw"));
    }

    #[test]
    fn only_postgres_urls_choose_postgres() {
        assert_eq!(
            Backend::choose(Path::new("d"), None).unwrap(),
            Backend::Sqlite("d".into())
        );
        assert_eq!(
            Backend::choose(Path::new("d"), Some("")).unwrap(),
            Backend::Sqlite("d".into())
        );
        assert!(matches!(
            Backend::choose(Path::new("d"), Some("postgresql://h/d")),
            Ok(Backend::Postgres(_))
        ));
        let refused = Backend::choose(Path::new("d"), Some("mysql://u:pw@h/d")).unwrap_err();
        assert!(refused.contains("postgres://") && !refused.contains("pw"));
    }

    #[test]
    fn a_sqlite_path_is_encoded_into_its_url() {
        let url = sqlite_url(Path::new("/tmp/a dir?#/regie.sqlite3"));
        assert_eq!(url, "sqlite:///tmp/a%20dir%3F%23/regie.sqlite3?mode=rwc");
    }
}
