//! The PostgreSQL of the tests: whether this run wants it (`REGIE_TEST_DATABASE=postgres`) and
//! can reach it, and fresh databases `regie_t_<seconds>_<random>` made and dropped through the
//! `test` database of `REGIE_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Shared by the end-to-end tests and the server's process tests so that both name, make and
//! clean up test databases the same way.

use std::time::Duration;

/// Which database this run's servers store in: SQLite (the default), or PostgreSQL with
/// `REGIE_TEST_DATABASE=postgres`. A PostgreSQL that does not answer fails the run under
/// `CI=true`; elsewhere the run says so and stays on SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestDatabase {
    /// SQLite in each server's directory.
    Sqlite,
    /// A fresh PostgreSQL database per store.
    Postgres,
}

/// The backend of this run, decided once.
pub fn test_database() -> TestDatabase {
    static CHOSEN: std::sync::OnceLock<TestDatabase> = std::sync::OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let wanted = std::env::var("REGIE_TEST_DATABASE").unwrap_or_default();
        match wanted.as_str() {
            "" | "sqlite" => TestDatabase::Sqlite,
            "postgres" => {
                let url = admin_url();
                let reachable = host_port(&url)
                    .and_then(|hp| std::net::ToSocketAddrs::to_socket_addrs(&hp).ok())
                    .into_iter()
                    .flatten()
                    .any(|a| {
                        std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok()
                    });
                if reachable {
                    TestDatabase::Postgres
                } else if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("REGIE_TEST_DATABASE=postgres but PostgreSQL does not answer at {url}");
                } else {
                    eprintln!(
                        "PostgreSQL does not answer at {url}: these tests run on SQLite instead"
                    );
                    TestDatabase::Sqlite
                }
            }
            other => panic!("REGIE_TEST_DATABASE={other}: expected sqlite or postgres"),
        }
    })
}

/// The URL of the `test` database through which test databases are made and dropped.
pub fn admin_url() -> String {
    std::env::var("REGIE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    Some(if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    })
}

/// The URL of database `name` on the test server.
pub fn url_of(name: &str) -> String {
    let admin = admin_url();
    let (head, _) = admin.rsplit_once('/').expect("a URL with a database");
    format!("{head}/{name}")
}

/// A connection to the `test` database.
pub async fn admin_connection() -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(&admin_url())
        .await
        .expect("connect to the PostgreSQL test database")
}

/// Makes a fresh, empty database `regie_t_<seconds>_<random>` and returns its name; drops the
/// test databases older than two hours on the way (those of directories tests kept).
pub async fn create_database() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let name = format!(
        "regie_t_{now}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let mut admin = admin_connection().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    drop_stale_databases(&mut admin, now).await;
    name
}

async fn drop_stale_databases(admin: &mut sqlx::AnyConnection, now: u64) {
    use sqlx::Row;
    let names: Vec<String> =
        sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE 'regie_t_%'")
            .fetch_all(&mut *admin)
            .await
            .map(|rows| rows.iter().map(|r| r.get::<String, _>(0)).collect())
            .unwrap_or_default();
    for name in names {
        let made: Option<u64> = name.split('_').nth(2).and_then(|s| s.parse().ok());
        if made.is_some_and(|t| t + 2 * 3600 < now) {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut *admin)
            .await;
        }
    }
}

/// Drops a test database, from any context (a `Drop`): on a thread with its own runtime.
pub fn drop_database(name: String) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let mut admin = admin_connection().await;
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await;
            });
    })
    .join();
}

/// A fresh test database that is dropped when this value is.
pub struct FreshDatabase {
    /// Its name, `regie_t_…`.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl FreshDatabase {
    /// Makes one.
    pub async fn new() -> Self {
        let name = create_database().await;
        let url = url_of(&name);
        Self { name, url }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        drop_database(std::mem::take(&mut self.name));
    }
}
