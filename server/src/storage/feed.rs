//! The change feed that lets several instances share one PostgreSQL database (issue 17): each
//! commit of document changes, and each state change around a dossier, writes a row of ids to
//! `change_feed` in its own transaction — after taking the audit chain's advisory lock, so
//! sequence order is commit order — and `pg_notify` wakes the other instances at commit. A
//! batch is appended only after the sequence its writer holds, checked under that lock: a batch
//! validated against an older state of the document fails `Stale` and is validated again after
//! catching up. The listener reads the rows after the last one it applied, on every
//! notification and every (re)connect, since notifications sent while it was away are lost.
//! SQLite has one instance: nothing of this runs there.

use std::str::FromStr;
use std::time::Duration;

use regie_core::id::DossierId;
use regie_sync_protocol::DocumentId;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{AnyConnection, Row};

use super::dialect::{Dialect, Lock};
use super::keys::Keys;
use super::{Result, StorageError, Store, StoredDocument, insert_changes, parse};

/// The notification channel.
const CHANNEL: &str = "regie_feed";
/// The listener's connection name, so an operator (or a test) can find it in
/// `pg_stat_activity`.
pub const LISTENER_NAME: &str = "regie-feed";

/// One entry of the feed written by another instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Its place in the feed.
    pub seq: i64,
    /// What changed.
    pub what: Changed,
}

/// What a feed entry says changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// Changes to this document committed.
    Document(DocumentId),
    /// This dossier's state changed (relationships, documents, closing, destruction).
    Dossier(DossierId),
    /// A device was reported lost.
    Devices,
}

/// Appends `changes` to `doc` after `after_seq` inside the transaction on `conn`: on PostgreSQL
/// only if `after_seq` is still the document's last sequence (else `Stale("changes")`: another
/// instance committed first), with a feed entry and a notification at commit.
pub(super) async fn append_changes(
    conn: &mut AnyConnection,
    dialect: Dialect,
    keys: &Keys,
    origin: &str,
    doc: DocumentId,
    after_seq: i64,
    changes: &[&[u8]],
) -> Result<i64> {
    if dialect == Dialect::Sqlite {
        return insert_changes(conn, keys, doc, after_seq, changes).await;
    }
    dialect.lock(conn, Lock::AuditChain).await?;
    let id = doc.to_string();
    let latest: i64 = sqlx::query(
        "SELECT GREATEST((SELECT COALESCE(MAX(seq), 0) FROM changes WHERE document = $1),
                         (SELECT COALESCE(MAX(upto_seq), 0) FROM snapshots WHERE document = $1))",
    )
    .bind(&id)
    .fetch_one(&mut *conn)
    .await?
    .get(0);
    if latest != after_seq {
        return Err(StorageError::Stale("changes"));
    }
    let seq = insert_changes(conn, keys, doc, after_seq, changes).await?;
    sqlx::query(
        "INSERT INTO change_feed (kind, dossier, document, origin) SELECT 'change', dossier, id, $2 FROM documents WHERE id = $1",
    )
    .bind(&id)
    .bind(origin)
    .execute(&mut *conn)
    .await?;
    notify(conn, origin).await?;
    Ok(seq)
}

/// Records inside the transaction on `conn` that `dossier`'s state changed, so that other
/// instances load it again (PostgreSQL; nothing on SQLite).
pub(super) async fn dossier_changed(
    conn: &mut AnyConnection,
    dialect: Dialect,
    origin: &str,
    dossier: DossierId,
) -> Result<()> {
    entry(conn, dialect, origin, "dossier", Some(dossier)).await
}

/// Records inside the transaction on `conn` that a device was reported lost, so that other
/// instances refuse and close it too (PostgreSQL; nothing on SQLite).
pub(super) async fn devices_changed(
    conn: &mut AnyConnection,
    dialect: Dialect,
    origin: &str,
) -> Result<()> {
    entry(conn, dialect, origin, "devices", None).await
}

/// A feed entry of `kind` (about `dossier`), in commit order and announced at commit.
async fn entry(
    conn: &mut AnyConnection,
    dialect: Dialect,
    origin: &str,
    kind: &str,
    dossier: Option<DossierId>,
) -> Result<()> {
    if dialect == Dialect::Sqlite {
        return Ok(());
    }
    dialect.lock(conn, Lock::AuditChain).await?;
    sqlx::query("INSERT INTO change_feed (kind, dossier, origin) VALUES ($1, $2, $3)")
        .bind(kind)
        .bind(dossier.map(|d| d.to_string()))
        .bind(origin)
        .execute(&mut *conn)
        .await?;
    notify(conn, origin).await
}

/// Wakes the other instances when the transaction commits (PostgreSQL delivers a transaction's
/// notifications at commit, and one per distinct payload).
async fn notify(conn: &mut AnyConnection, origin: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(origin)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A listener on the feed's channel (PostgreSQL only).
pub struct FeedListener {
    listener: PgListener,
    origin: String,
    connected: bool,
}

/// What the listener heard.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// Another instance committed something: read the feed.
    Committed,
    /// The connection was lost and is made again, listening: read the feed, since
    /// notifications sent meanwhile are lost.
    Reconnected,
    /// Nothing to read (this instance's own commit, or the database is still away).
    Nothing,
}

impl FeedListener {
    /// Waits for the next notification; when the connection is lost, connects and listens
    /// again first (sqlx's eager reconnect), so a catch-up after `Reconnected` misses nothing.
    pub async fn next(&mut self) -> Heard {
        if !self.connected {
            return match sqlx::query("SELECT 1").execute(&mut self.listener).await {
                Ok(_) => {
                    self.connected = true;
                    Heard::Reconnected
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the change feed listener cannot connect; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Heard::Nothing
                }
            };
        }
        match self.listener.try_recv().await {
            Ok(Some(n)) if n.payload() == self.origin => Heard::Nothing,
            Ok(Some(_)) => Heard::Committed,
            Ok(None) => {
                crate::metrics::feed_reconnected();
                Heard::Reconnected
            }
            Err(e) => {
                tracing::warn!(error = %e, "the change feed listener lost its connection");
                crate::metrics::feed_reconnected();
                self.connected = false;
                Heard::Nothing
            }
        }
    }
}

impl Store {
    /// Whether other instances may share this store's database (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    /// This store's instance id: the origin of the feed entries it writes.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// A listener on the change feed, or `None` on SQLite.
    pub async fn listen(&self) -> Result<Option<FeedListener>> {
        let Some(url) = &self.listen_url else {
            return Ok(None);
        };
        let options = PgConnectOptions::from_str(url)?.application_name(LISTENER_NAME);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(options);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(FeedListener {
            listener,
            origin: self.instance.clone(),
            connected: true,
        }))
    }

    /// The feed's last sequence now (0 when empty or on SQLite): everything up to it committed
    /// before what is read next.
    pub async fn feed_head(&self) -> Result<i64> {
        if !self.is_shared() {
            return Ok(0);
        }
        Ok(sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM change_feed")
            .fetch_one(&self.pool)
            .await?
            .get(0))
    }

    /// The entries other instances wrote after `after`, in order.
    pub async fn feed_after(&self, after: i64) -> Result<Vec<FeedEntry>> {
        if !self.is_shared() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT seq, kind, dossier, document FROM change_feed WHERE seq > $1 AND origin <> $2 ORDER BY seq LIMIT 10000",
        )
        .bind(after)
        .bind(&self.instance)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let what = match (
                    r.get::<&str, _>(1),
                    r.get::<Option<&str>, _>(2),
                    r.get::<Option<&str>, _>(3),
                ) {
                    ("change", _, Some(doc)) => Changed::Document(parse(doc, "change_feed")?),
                    ("dossier", Some(dossier), _) => {
                        Changed::Dossier(parse(dossier, "change_feed")?)
                    }
                    ("devices", _, _) => Changed::Devices,
                    (kind, _, _) => {
                        return Err(StorageError::Corrupt {
                            table: "change_feed",
                            detail: format!("an entry of kind {kind:?} without its id"),
                        });
                    }
                };
                Ok(FeedEntry {
                    seq: r.get(0),
                    what,
                })
            })
            .collect()
    }

    /// The first entry the feed still holds (0 when empty or on SQLite): an instance that has
    /// applied less than the one before it has missed entries.
    pub async fn feed_floor(&self) -> Result<i64> {
        if !self.is_shared() {
            return Ok(0);
        }
        Ok(sqlx::query("SELECT COALESCE(MIN(seq), 0) FROM change_feed")
            .fetch_one(&self.pool)
            .await?
            .get(0))
    }

    /// Deletes feed entries older than `age` (never the last one, so the sequence's high-water
    /// mark stays readable); returns how many.
    pub async fn prune_feed(&self, age: Duration) -> Result<u64> {
        if !self.is_shared() {
            return Ok(0);
        }
        let done = sqlx::query(
            "DELETE FROM change_feed WHERE at < now() - make_interval(secs => $1)
             AND seq < (SELECT MAX(seq) FROM change_feed)",
        )
        .bind(age.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// The last feed entry of a change to `dossier`'s state, by any instance (0 when none).
    pub async fn dossier_feed_seq(&self, dossier: DossierId) -> Result<i64> {
        if !self.is_shared() {
            return Ok(0);
        }
        Ok(sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) FROM change_feed WHERE dossier = $1 AND kind = 'dossier'",
        )
        .bind(dossier.to_string())
        .fetch_one(&self.pool)
        .await?
        .get(0))
    }

    /// What `doc` holds after `after_seq`: its changes since, or its whole stored state when a
    /// compaction has passed `after_seq` (`snapshot` is then set).
    pub async fn document_after(&self, doc: DocumentId, after_seq: i64) -> Result<StoredDocument> {
        let id = doc.to_string();
        let upto: i64 =
            sqlx::query("SELECT COALESCE(MAX(upto_seq), 0) FROM snapshots WHERE document = $1")
                .bind(&id)
                .fetch_one(&self.pool)
                .await?
                .get(0);
        if upto > after_seq {
            return self.load_document(doc).await;
        }
        let Ok(dossier) = self.keys.dossier_of(doc).await else {
            // Unknown (destroyed meanwhile): the whole, empty, state.
            return self.load_document(doc).await;
        };
        let (last_seq, changes) = self.changes_after(dossier, doc, after_seq).await?;
        Ok(StoredDocument {
            last_seq,
            changes,
            snapshot: None,
        })
    }

    /// Takes the sweep lock `lock` if no other instance holds it, until the returned guard is
    /// dropped; `None` when another holds it. Always granted on SQLite.
    pub(crate) async fn sweep_alone(&self, lock: Lock) -> Result<Option<SweepGuard>> {
        if !self.is_shared() {
            return Ok(Some(SweepGuard(None)));
        }
        let mut tx = self.pool.begin().await?;
        let got: bool = sqlx::query("SELECT pg_try_advisory_xact_lock($1)")
            .bind(lock.key())
            .fetch_one(&mut *tx)
            .await?
            .get(0);
        Ok(got.then_some(SweepGuard(Some(tx))))
    }
}

/// Held while a sweep runs; dropping it ends the transaction that holds the lock.
pub struct SweepGuard(#[allow(dead_code)] Option<sqlx::Transaction<'static, sqlx::Any>>);
