//! Test support: a real server on 127.0.0.1:0 over a real SQLite file in a temporary directory
//! (or, with `REGIE_TEST_DATABASE=postgres`, a fresh PostgreSQL database of its own), the cast of
//! users with their tokens, and a seeded household. The automerge-repo peer, the leak scans and
//! the bounded waits are the workspace's one test kit (`regie-testkit`), shared with the
//! server's process tests and the load generator.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use automerge::{AutoCommit, ReadDoc};
use regie_core::principal::{Claims, Role};
use regie_server::AppState;
use regie_server::config::{OversightArgs, ServeArgs, StoreArgs};
use regie_sync_protocol::{DocumentId, Message};
use serde_json::{Value, json};

pub(crate) use regie_testkit::text::{chunk_texts, document_texts, root_text, text_at};
pub(crate) use regie_testkit::{PATIENCE, Peer, eventually};

pub(crate) const SECRET: &str = "test-secret-that-is-long-enough-for-hs256";
pub(crate) const ISSUER: &str = "regie-test";
pub(crate) const AUDIENCE: &str = "regie";

/// A running server.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The store's directory, when the server owns it: held only to be removed with the server.
    _owned: Option<tempfile::TempDir>,
    /// The PostgreSQL database the server owns (its directory is its own), dropped with it.
    owned_database: Option<String>,
    /// The store's directory.
    pub(crate) dir: std::path::PathBuf,
}

/// How to start a [`TestServer`]: in its own temporary directory unless told another.
#[derive(Default)]
pub(crate) struct Builder {
    dir: Option<std::path::PathBuf>,
    hot_documents: Option<usize>,
    oversight: OversightArgs,
    /// The PostgreSQL database and the directory of the instance this one joins.
    shares: Option<(String, std::path::PathBuf)>,
}

impl Builder {
    /// A store in `dir` (which outlives the server, e.g. to start another on it).
    pub(crate) fn dir(mut self, dir: &Path) -> Builder {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// Another instance on the PostgreSQL database of `other` (issue 17), which owns it.
    /// Panics unless this run's servers store in PostgreSQL ([`cluster_database`]).
    pub(crate) fn database_of(mut self, other: &TestServer) -> Builder {
        self.shares = Some((
            postgres_database_of(&other.dir).expect("another instance needs a PostgreSQL database"),
            other.dir.clone(),
        ));
        self
    }

    /// At most `n` documents in memory.
    pub(crate) fn hot_documents(mut self, n: usize) -> Builder {
        self.hot_documents = Some(n);
        self
    }

    /// These oversight settings (break-glass length, worker names).
    pub(crate) fn oversight(mut self, oversight: OversightArgs) -> Builder {
        self.oversight = oversight;
        self
    }

    /// Starts the server.
    pub(crate) async fn start(self) -> TestServer {
        regie_server::install_crypto_provider();
        let owned = match self.dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().unwrap()),
        };
        let dir = match (&self.dir, &owned) {
            (Some(dir), _) => dir.clone(),
            (None, Some(owned)) => owned.path().to_path_buf(),
            (None, None) => unreachable!("one of the two is set"),
        };
        if let Some((name, other)) = &self.shares {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(POSTGRES_MARKER), name).unwrap();
            // Instances of one database share its key-encryption key (issue 18).
            let kek = regie_server::storage::keys::DEVELOPMENT_KEK_FILE;
            std::fs::copy(other.join(kek), dir.join(kek)).expect("the first instance's key");
        }
        let args = ServeArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            store: store_args(&dir).await,
            jwt_secret: Some(SECRET.into()),
            jwt_public_key: None,
            jwks: None,
            jwt_issuer: Some(ISSUER.into()),
            jwt_audience: Some(AUDIENCE.into()),
            tls_cert: None,
            tls_key: None,
            hot_documents: self.hot_documents.unwrap_or(1000),
            oversight: self.oversight,
            limits: Default::default(),
        };
        let state = regie_server::state(&args).await.expect("server state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(regie_server::run(
            listener,
            state.clone(),
            None,
            async move {
                let _ = stopped.await;
            },
        ));
        let owned_database = match (&owned, &self.shares) {
            (Some(_), None) => postgres_database_of(&dir),
            _ => None,
        };
        TestServer {
            dir,
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
            _owned: owned,
            owned_database,
        }
    }
}

impl TestServer {
    /// How to start one.
    pub(crate) fn builder() -> Builder {
        Builder::default()
    }

    /// Starts a server in a temporary directory of its own.
    pub(crate) async fn new() -> TestServer {
        Self::builder().start().await
    }

    /// Starts a server on a store in `dir`.
    pub(crate) async fn start(dir: &Path) -> TestServer {
        Self::builder().dir(dir).start().await
    }

    /// A token for a cast member, valid for an hour.
    pub(crate) fn token(&self, who: &str) -> String {
        self.state
            .auth
            .mint(&cast(who), Duration::from_secs(3600))
            .unwrap()
    }

    /// Calls the HTTP API; returns the status and the JSON body (Null when empty).
    pub(crate) async fn api(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let client = reqwest::Client::new();
        let url = format!("http://{}{path}", self.addr);
        let req = client
            .request(method.parse().unwrap(), url)
            .bearer_auth(token);
        let req = if body.is_null() { req } else { req.json(&body) };
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    /// Sends `body` as is with this content type (none when empty); returns the status and the
    /// JSON body (Null when empty). For bodies `api` cannot send: oversized, malformed, not JSON.
    pub(crate) async fn send_raw(
        &self,
        token: &str,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let url = format!("http://{}{path}", self.addr);
        let mut req = reqwest::Client::new()
            .request(method.parse().unwrap(), url)
            .bearer_auth(token)
            .body(body);
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, value)
    }

    /// Appends scripted audit rows through the storage layer in one transaction, as the hub or
    /// the API would have written them.
    pub(crate) async fn script_audit(&self, rows: &[regie_server::audit::AuditEvent]) {
        self.state.hub.store().append_audit_all(rows).await.unwrap();
    }

    /// Stops the server gracefully.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(PATIENCE, task).await;
        }
    }
}

impl regie_testkit::Dial for TestServer {
    fn socket_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl regie_testkit::Cast for TestServer {
    fn token(&self, who: &str) -> String {
        TestServer::token(self, who)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        if let Some(name) = self.owned_database.take() {
            drop_postgres_database(name);
        }
    }
}

// ---- the backend under test ---------------------------------------------------------------

/// Whether this run can start several instances on one database (PostgreSQL, issue 17); a
/// SQLite run says why a test is skipped.
pub(crate) fn cluster_database() -> bool {
    let postgres = test_database() == TestDatabase::Postgres;
    if !postgres {
        eprintln!("skipped: several instances need REGIE_TEST_DATABASE=postgres");
    }
    postgres
}

use regie_testkit::postgres::url_of as postgres_url;
pub(crate) use regie_testkit::postgres::{TestDatabase, admin_connection, test_database};
use regie_testkit::postgres::{create_database, drop_database as drop_postgres_database};

/// Where the PostgreSQL store of `dir` is named, so that a server started again on `dir`
/// finds the same database.
const POSTGRES_MARKER: &str = "postgres-database";

fn postgres_database_of(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(POSTGRES_MARKER)).ok()
}

/// The store arguments of a server on `dir` in this run's backend (SQLite in `dir`, or with
/// `REGIE_TEST_DATABASE=postgres` a fresh PostgreSQL database of its own, see
/// [`regie_testkit::postgres`]): with PostgreSQL, the database `dir` names, made on first use.
pub(crate) async fn store_args(dir: &Path) -> StoreArgs {
    let mut args = StoreArgs::sqlite(dir);
    if test_database() == TestDatabase::Postgres {
        let name = match postgres_database_of(dir) {
            Some(name) => name,
            None => {
                let name = create_database().await;
                std::fs::create_dir_all(dir).unwrap();
                std::fs::write(dir.join(POSTGRES_MARKER), &name).unwrap();
                name
            }
        };
        args.database_url = Some(regie_server::config::DatabaseUrl(postgres_url(&name)));
    }
    args
}

/// The store of `dir` in this run's backend, opened directly (for storage-level tests).
pub(crate) async fn open_store(dir: &Path) -> regie_server::storage::Store {
    let args = store_args(dir).await;
    regie_server::storage::Store::open_backend(&args.backend().unwrap(), args.kek().unwrap())
        .await
        .unwrap()
}

/// The server's database of `dir` (SQLite's file, or the PostgreSQL database the directory
/// names), opened as someone with access to it would: for tests that inspect what is stored or
/// tamper with it behind the server's back. Queries use `$N` placeholders, which both accept.
pub(crate) async fn database_file(dir: &Path) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let url = match test_database() {
        TestDatabase::Sqlite => format!("sqlite://{}", dir.join("regie.sqlite3").display()),
        TestDatabase::Postgres => postgres_url(
            &postgres_database_of(dir).expect("a server made the store of this directory"),
        ),
    };
    sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap()
}

/// Lets `pool`'s owner change audit rows, as someone with the database's files or superuser
/// rights can: the append-only triggers are dropped, the hash chain is what remains.
pub(crate) async fn drop_audit_update_trigger(pool: &sqlx::AnyPool) {
    let sql = match test_database() {
        TestDatabase::Sqlite => "DROP TRIGGER audit_is_append_only_update",
        TestDatabase::Postgres => "DROP TRIGGER audit_is_append_only_update ON audit",
    };
    sqlx::query(sql).execute(pool).await.unwrap();
}

/// Any SQLite file opened behind its owner's back (a device store of `regie-client`), for the
/// tests [`database_file`] describes.
pub(crate) async fn sqlite_file(file: &Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(file)
        .busy_timeout(Duration::from_secs(10));
    sqlx::SqlitePool::connect_with(options).await.unwrap()
}

/// Every insert into `table` of the store in `dir` fails while this lives, as a full disk or a
/// failing file would fail it: a trigger planted through the database file. Lifted by
/// [`InjectedFailure::lift`].
pub(crate) struct InjectedFailure {
    pool: sqlx::AnyPool,
    trigger: String,
    table: String,
}

/// Makes inserts into `table` fail (see [`InjectedFailure`]).
pub(crate) async fn fail_inserts_into(dir: &Path, table: &str) -> InjectedFailure {
    let pool = database_file(dir).await;
    let trigger = format!("injected_failure_{table}");
    // The table name is a test's constant, never input.
    let statements = match test_database() {
        TestDatabase::Sqlite => vec![format!(
            "CREATE TRIGGER {trigger} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )],
        TestDatabase::Postgres => vec![
            format!(
                "CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
            ),
            format!(
                "CREATE TRIGGER {trigger} BEFORE INSERT ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION {trigger}()"
            ),
        ],
    };
    for sql in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    InjectedFailure {
        pool,
        trigger,
        table: table.to_owned(),
    }
}

impl InjectedFailure {
    /// Lets inserts succeed again.
    pub(crate) async fn lift(self) {
        let Self {
            pool,
            trigger,
            table,
        } = self;
        let statements = match test_database() {
            TestDatabase::Sqlite => vec![format!("DROP TRIGGER {trigger}")],
            TestDatabase::Postgres => vec![
                format!("DROP TRIGGER {trigger} ON {table}"),
                format!("DROP FUNCTION {trigger}()"),
            ],
        };
        for sql in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    }
}

/// How many rows `table` of the store in `dir` holds, counted in the file itself: for tables no
/// `Store` method lists (what an attacker with the file would count).
pub(crate) async fn rows_in(dir: &Path, table: &str) -> i64 {
    let pool = database_file(dir).await;
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

/// The cast: the users the tests speak of.
pub(crate) fn cast(who: &str) -> Claims {
    let c = |sub: &str,
             role,
             district: Option<&str>,
             team: Option<&str>,
             org: Option<&str>,
             person: Option<&str>| Claims {
        sub: sub.into(),
        role,
        district: district.map(Into::into),
        team: team.map(Into::into),
        org: org.map(Into::into),
        person: person.map(Into::into),
        citywide: false,
    };
    match who {
        "worker" => c(
            "anna",
            Role::Worker,
            Some("noord"),
            Some("team-noord"),
            None,
            None,
        ),
        "worker2" => c(
            "bram",
            Role::Worker,
            Some("noord"),
            Some("team-noord"),
            None,
            None,
        ),
        "colleague" => c(
            "carla",
            Role::Worker,
            Some("noord"),
            Some("team-noord"),
            None,
            None,
        ),
        "zuid_worker" => c(
            "dirk",
            Role::Worker,
            Some("zuid"),
            Some("team-zuid"),
            None,
            None,
        ),
        "resident" => c("sanne", Role::Resident, None, None, None, Some("p-sanne")),
        // The two-parent household of `household.rs`: each member has their own account.
        "ouder1" => c("olga", Role::Resident, None, None, None, Some("p-ouder1")),
        "ouder2" => c("otto", Role::Resident, None, None, None, Some("p-ouder2")),
        "kind1" => c("kees", Role::Resident, None, None, None, Some("p-kind1")),
        "kind2" => c("kim", Role::Resident, None, None, None, Some("p-kind2")),
        "backoffice" => c("bo", Role::Backoffice, Some("noord"), None, None, None),
        "partner" => c("ggd-1", Role::Partner, None, None, Some("ggd"), None),
        "manager" => c(
            "mia",
            Role::Manager,
            Some("noord"),
            Some("team-noord"),
            None,
            None,
        ),
        "privacy_officer" => c("fg", Role::PrivacyOfficer, None, None, None, None),
        "admin" => c("root", Role::Admin, None, None, None, None),
        other => panic!("no cast member {other}"),
    }
}

/// A seeded household: dossier id and document id per key.
pub(crate) struct Household {
    pub(crate) id: String,
    pub(crate) docs: BTreeMap<String, DocumentId>,
}

impl Household {
    pub(crate) fn doc(&self, key: &str) -> DocumentId {
        self.docs[key]
    }
}

/// Creates a dossier of team-noord through the API for these persons, assigned to Anna and
/// Bram; returns its id and documents.
pub(crate) async fn create_dossier(server: &TestServer, persons: Value) -> Household {
    let (status, created) = server
        .api(
            &server.token("worker"),
            "POST",
            "/api/v1/dossiers",
            json!({
                "district": "noord", "team": "team-noord", "assigned": ["anna", "bram"],
                "persons": persons, "resident_agreed": true, "agreed_on": "2026-11-01",
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let docs = created["documents"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                DocumentId::from_url(v.as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    Household {
        id: created["id"].as_str().unwrap().to_owned(),
        docs,
    }
}

/// Creates a household dossier through the API: two assigned workers, a resident (Sanne) with a
/// child (Daan), the resident linked, partner `ggd` involved, and `maatwerk/1`.
pub(crate) async fn seed_household(server: &TestServer) -> Household {
    let w = server.token("worker");
    let Household { id, mut docs } = create_dossier(
        server,
        json!([
            { "id": "p-sanne", "name": "Sanne Bakker", "birth_date": "1988-03-14" },
            { "id": "p-daan", "name": "Daan Bakker", "birth_date": "2015-06-01", "gezag": ["p-sanne"] }
        ]),
    )
    .await;
    // What a worker records before sharing: triage decisions and the resident's consent.
    regie_server::demo::record_sharing_decisions(&server.state, id.parse().unwrap(), "anna")
        .await
        .unwrap();
    for (path, body) in [
        ("residents", json!({ "person": "p-sanne" })),
        ("partners", regie_server::demo::partner_share()),
        ("maatwerk", regie_server::demo::maatwerk_request()),
    ] {
        let (status, made) = server
            .api(&w, "POST", &format!("/api/v1/dossiers/{id}/{path}"), body)
            .await;
        assert_eq!(status, 201, "{made}");
        docs.insert(
            made["key"].as_str().unwrap().into(),
            DocumentId::from_url(made["url"].as_str().unwrap()).unwrap(),
        );
    }
    Household { id, docs }
}

/// Connects as cast member `who`, requests every document of the household and sorts them into
/// the keys that synced and those answered with `doc-unavailable`.
pub(crate) async fn probe(
    server: &TestServer,
    house: &Household,
    who: &str,
) -> (Vec<String>, Vec<String>, Peer) {
    let mut peer = Peer::connect(server, &server.token(who)).await.unwrap();
    for id in house.docs.values() {
        peer.request(*id).await;
    }
    peer.settle(Duration::from_millis(300)).await;
    let key_of = |id: &DocumentId| house.docs.iter().find(|(_, d)| *d == id).unwrap().0.clone();
    let unavailable: Vec<String> = peer.unavailable().iter().map(key_of).collect();
    let mut synced: Vec<String> = peer
        .received
        .iter()
        .filter_map(|m| match m {
            Message::Sync { document_id, .. } => Some(key_of(document_id)),
            _ => None,
        })
        .collect();
    synced.sort();
    synced.dedup();
    (synced, unavailable, peer)
}

/// Appends a `record` entry (a work note, an opinion) about `subjects` with text `body`.
pub(crate) fn entry(d: &mut AutoCommit, id: &str, subjects: &[&str], body: &str) {
    use automerge::{ObjType, transaction::Transactable};
    let entries = d.get(automerge::ROOT, "entries").unwrap().unwrap().1;
    let at = d.length(&entries);
    let e = d.insert_object(&entries, at, ObjType::Map).unwrap();
    d.put(&e, "id", id).unwrap();
    d.put(&e, "kind", "opinion").unwrap();
    d.put(&e, "category", "work_note").unwrap();
    let s = d.put_object(&e, "subjects", ObjType::List).unwrap();
    for (i, subject) in subjects.iter().enumerate() {
        d.insert(&s, i, *subject).unwrap();
    }
    let t = d.put_object(&e, "text", ObjType::Text).unwrap();
    d.splice_text(&t, 0, 0, body).unwrap();
}

/// The texts of the entries in a `view/<person>`, in order.
pub(crate) fn view_texts(d: &AutoCommit) -> Vec<String> {
    let Some((_, entries)) = d.get(automerge::ROOT, "entries").unwrap() else {
        return Vec::new();
    };
    (0..d.length(&entries))
        .map(|i| {
            let e = d.get(&entries, i).unwrap().unwrap().1;
            let t = d.get(&e, "text").unwrap().unwrap().1;
            d.text(&t).unwrap()
        })
        .collect()
}

/// A complete triage record for a tablet to add (R12): argued and discussed with the resident.
pub(crate) fn new_triage(
    moment: regie_client::edit::TriageMoment,
    purpose: &str,
    recipient: Option<&str>,
    items: &[&str],
) -> regie_client::edit::NewTriage {
    regie_client::edit::NewTriage {
        moment,
        purpose: purpose.into(),
        items: items.iter().map(|i| i.to_string()).collect(),
        doelbinding: "alleen voor dit doel".into(),
        proportionaliteit: "niet meer dan nodig".into(),
        subsidiariteit: "geen lichter middel".into(),
        decision: "zo besloten".into(),
        discussed_with_resident: true,
        not_discussed_reason: None,
        recipient: recipient.map(Into::into),
    }
}

/// An analysis entry about one person, for a tablet to add.
pub(crate) fn new_entry(
    kind: regie_client::edit::EntryKind,
    subject: &str,
    text: &str,
) -> regie_client::edit::NewEntry {
    regie_client::edit::NewEntry {
        kind,
        category: regie_client::edit::EntryCategory::Analysis,
        subjects: vec![regie_core::id::PersonId::new(subject).unwrap()],
        text: text.into(),
        life_domain: Some("financien".into()),
    }
}

/// The resident set size of this process and its peak since the last [`reset_peak_rss`], in
/// KiB, from `/proc/self/status` (Linux). Nextest runs each test in its own process, so there
/// they measure one test's server and client.
pub(crate) fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak resident set size (`VmHWM`) to the current one.
pub(crate) fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
}

/// Whether this test runs in a process of its own (under nextest), where RSS means something.
pub(crate) fn alone_in_process() -> bool {
    std::env::var("NEXTEST_EXECUTION_MODE").is_ok_and(|m| m == "process-per-test")
}

/// Joins `/sync` as cast member `who` from client storage `storage`: the server's `error`
/// message if it refuses the join, `None` if it answers with `peer`.
pub(crate) async fn join_refusal(server: &TestServer, who: &str, storage: &str) -> Option<String> {
    let joined = regie_testkit::connection::Plain::open(
        server.addr,
        &format!("/sync?token={}", server.token(who)),
        regie_sync_protocol::PeerId::new(format!("peer-{}", uuid::Uuid::new_v4().simple())),
        Some(storage.into()),
        PATIENCE,
    )
    .await;
    match joined {
        Ok(_) => None,
        Err(regie_testkit::ConnectError::JoinRefused(message)) => Some(message),
        Err(other) => panic!("no answer to join: {other}"),
    }
}

/// Whether the server's store holds `text`. SQLite: in any byte of its files on disk (main
/// file and WAL). PostgreSQL: in any text or bytes column of any row its tables answer with; its
/// files belong to the database server, where deleted rows stay until VACUUM (what destruction
/// can and cannot promise there is in server/src/storage/retention.rs).
pub(crate) async fn store_holds(dir: &std::path::Path, text: &str) -> bool {
    use sqlx::Row;
    if test_database() == TestDatabase::Sqlite {
        return std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| std::fs::read(e.unwrap().path()).ok())
            .any(|b| String::from_utf8_lossy(&b).contains(text));
    }
    let pool = database_file(dir).await;
    let columns = sqlx::query(
        "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND data_type IN ('text', 'bytea')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for c in &columns {
        let (table, column, kind): (String, String, String) = (c.get(0), c.get(1), c.get(2));
        let found = if kind == "bytea" {
            format!(
                "SELECT COUNT(*) FROM {table} WHERE position(convert_to($1, 'UTF8') in {column}) > 0"
            )
        } else {
            format!("SELECT COUNT(*) FROM {table} WHERE strpos({column}, $1) > 0")
        };
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(found))
            .bind(text)
            .fetch_one(&pool)
            .await
            .unwrap();
        if n > 0 {
            return true;
        }
    }
    false
}

/// Appends a `record` entry of kind `fact` (an analysis) with this id about `subjects`.
pub(crate) fn fact(d: &mut AutoCommit, id: &str, subjects: &[&str], body: &str) {
    use automerge::transaction::Transactable;
    entry(d, id, subjects, body);
    let entries = d.get(automerge::ROOT, "entries").unwrap().unwrap().1;
    let e = d.get(&entries, d.length(&entries) - 1).unwrap().unwrap().1;
    d.put(&e, "kind", "fact").unwrap();
    d.put(&e, "category", "analysis").unwrap();
}

/// The admin unassigns Bram (`worker2`) from the household on `server`.
pub(crate) async fn unassign_bram(server: &TestServer, house: &Household) {
    let (status, body) = server
        .api(
            &server.token("admin"),
            "DELETE",
            &format!("/api/v1/dossiers/{}/assignments/bram", house.id),
            Value::Null,
        )
        .await;
    assert_eq!(status, 204, "{body}");
}
