//! All SQL lives here, written once for SQLite (the default) and PostgreSQL through sqlx's
//! `Any` driver, migrations embedded per database (`dialect.rs` holds the few differences). The
//! store keeps dossiers and their relationships, the document index, each document's appended
//! changes and compacted snapshot, peers' sync states, the hash-chained audit log and the
//! quarantine. Nothing above this module knows SQL or which database it is on. What devices can
//! make it hold is bounded (I7): the quarantine keeps rejected bytes only up to a cap per device
//! and per dossier, and the audit log is read for reports in bounded pages. Every block of
//! dossier content is sealed with its dossier's own key where it is written and opened where it
//! is read (`keys.rs`, I6), and so is every column of free text a person typed ([`FREE_TEXT`]),
//! so nothing above this module sees a ciphertext or a key.

pub mod share;
pub mod signal;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use regie_core::id::{DistrictId, DocumentKey, DossierId, PersonId, TeamId, UserId};
use regie_core::relationship::{Grant, Relationships};
use regie_sync_protocol::DocumentId;
use sqlx::Row;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;

use crate::audit::{AuditEvent, ChainWalk, Encoding, GENESIS, StoredRow, Verification};

pub(crate) mod dialect;
pub mod feed;
mod group;
pub mod keys;
mod oversight;
mod packed;
pub mod retention;
pub mod rights;
mod unit;
use dialect::Dialect;
pub use dialect::{Backend, redact_url};
pub use group::CommitObserver;
use keys::{BlockId, Keys};
pub use keys::{Kek, KeyError};
pub use oversight::{AUDIT_PAGE_MAX, AccessReview, AuditQuery, BreakGlassRequest, Scanned};
pub use unit::{RelationEdit, Unit};

/// A storage failure. Callers log it and answer with a generic error; it never carries content.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A row a state change depends on was changed or used by another change first; nothing of
    /// this one was stored.
    #[error("a row of {0} changed meanwhile")]
    Stale(&'static str),
    /// A stored value does not parse (a corrupted or hand-edited row).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What did not parse.
        detail: String,
    },
    /// A stored block failed its integrity check (altered, moved to another row, or sealed
    /// with another key): it is not served.
    #[error("a stored block of {table} ({row}) failed its integrity check")]
    Tampered {
        /// The table.
        table: &'static str,
        /// The row's ids.
        row: String,
    },
    /// The dossier's data key was destroyed (the dossier was, and this row came back from a
    /// backup): its content cannot be read, ever.
    #[error("the data key {0} of this dossier was destroyed")]
    KeyDestroyed(String),
    /// The dossier has no data key in the key store (the key store is not the one of this
    /// data, or the document is unknown).
    #[error("no data key for this dossier in the key store")]
    NoKey,
    /// A key could not be read, written or used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The cryptographic library failed.
    #[error("encryption failed: {0}")]
    Crypto(&'static str),
    /// Not on this database: the reason says what to do instead.
    #[error("{0}")]
    Unsupported(&'static str),
}

type Result<T> = std::result::Result<T, StorageError>;

/// A table's columns of free text, sealed (I6) where `storage` writes them and opened where it
/// reads them, each bound to its table, column and row ([`BlockId::text`]).
struct FreeText {
    /// The table.
    table: &'static str,
    /// Selects every row: the scope of its key (a dossier's id, or an own scope, see
    /// [`keys::Owner`]), then the `keys` columns, then the `texts` columns, all as text.
    select: &'static str,
    /// The columns that identify a row, bound into each text's identity.
    keys: &'static [&'static str],
    /// The columns of free text.
    texts: &'static [&'static str],
}

/// Every column of free text a person typed. What stays clear is ids, codes, dates and counts:
/// what deadlines, filters and reports need (`refusal_ground`, `outcome`, `carried_out`,
/// `risk`, `ended_because`, `category`, `tasks.about`, the audit log's `detail` are codes and
/// ids by construction; person names live only in the sealed documents).
const FREE_TEXT: &[FreeText] = &[
    FreeText {
        table: "grants",
        select: "SELECT dossier, dossier, user_id, granted_at, reason FROM grants",
        keys: &["dossier", "user_id", "granted_at"],
        texts: &["reason"],
    },
    FreeText {
        table: "break_glass_requests",
        select: "SELECT dossier, token_hash, reason FROM break_glass_requests",
        keys: &["token_hash"],
        texts: &["reason"],
    },
    FreeText {
        table: "partners",
        select: "SELECT dossier, dossier, org, purpose FROM partners",
        keys: &["dossier", "org"],
        texts: &["purpose"],
    },
    FreeText {
        table: "signals",
        select: "SELECT COALESCE(dossier, 'signal:' || id), id, summary, reason FROM signals",
        keys: &["id"],
        texts: &["summary", "reason"],
    },
    FreeText {
        table: "rights_requests",
        select: "SELECT dossier, id, details, extension_reason, verdict_reasons, weighing \
                 FROM rights_requests",
        keys: &["id"],
        texts: &["details", "extension_reason", "verdict_reasons", "weighing"],
    },
    FreeText {
        table: "rights_escalations",
        select: "SELECT r.dossier, e.request, e.level, e.grounds, e.reasons \
                 FROM rights_escalations e JOIN rights_requests r ON r.id = e.request",
        keys: &["request", "level"],
        texts: &["grounds", "reasons"],
    },
    FreeText {
        table: "breaches",
        select: "SELECT 'breach:' || id, id, what, measures, residents_reason FROM breaches",
        keys: &["id"],
        texts: &["what", "measures", "residents_reason"],
    },
    FreeText {
        table: "access_reviews",
        select: "SELECT 'access-reviews:' || team, team, reviewed_at, digest, note \
                 FROM access_reviews",
        keys: &["team", "reviewed_at", "digest"],
        texts: &["note"],
    },
];

/// The durable store: SQLite in a data directory (the default) or PostgreSQL, through one set
/// of queries (sqlx's `Any`); what the two spell differently is in [`dialect`].
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// Serializes this process's audit appends and remembers the chain's last hash. With
    /// PostgreSQL it is only a queue: the tail is read again under a lock inside each
    /// transaction ([`chain_tail`]), so the chain stays one whoever else appends.
    audit_tail: std::sync::Arc<Mutex<Vec<u8>>>,
    /// The group committer of the write path.
    commits: tokio::sync::mpsc::UnboundedSender<group::Pending>,
    /// What quarantine keeps per device and per dossier.
    quarantine_cap: QuarantineCap,
    /// The dossiers' data keys (I6).
    keys: std::sync::Arc<Keys>,
    /// Where the data is, for backups.
    backend: Backend,
    /// This instance's id in the change feed (several instances may share a PostgreSQL
    /// database; [`feed`]).
    instance: String,
    /// The PostgreSQL URL the feed listener connects to.
    listen_url: Option<String>,
}

/// A device's key as released to it (R29): its id and the 32 bytes, overwritten when dropped.
/// `Debug` shows the id only.
pub struct DeviceKey {
    /// The key's id.
    pub key_id: String,
    /// The key.
    pub key: zeroize::Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey({})", self.key_id)
    }
}

/// A stored document as loaded: the snapshot (if compacted) and the changes after it.
pub struct StoredDocument {
    /// The compacted prefix, an Automerge `save()`.
    pub snapshot: Option<Vec<u8>>,
    /// Raw change chunks appended after the snapshot, in order.
    pub changes: Vec<Vec<u8>>,
    /// The sequence number of the last stored change (0 when none).
    pub last_seq: i64,
}

/// One row of the document index.
#[derive(Debug, Clone)]
pub struct DocumentRow {
    /// The automerge-repo document id.
    pub id: DocumentId,
    /// Its dossier.
    pub dossier: DossierId,
    /// Its key in the dossier.
    pub key: DocumentKey,
}

impl DocumentRow {
    /// A row of `SELECT id, dossier, key FROM documents`.
    fn of(r: &sqlx::any::AnyRow) -> Result<DocumentRow> {
        DocumentRow::parse(std::array::from_fn(|i| r.get::<&str, _>(i)))
    }

    /// The row of these `id`, `dossier` and `key` texts.
    fn parse([id, dossier, key]: [&str; 3]) -> Result<DocumentRow> {
        Ok(DocumentRow {
            id: parse(id, "documents")?,
            dossier: parse(dossier, "documents")?,
            key: parse(key, "documents")?,
        })
    }
}

/// A quarantined batch, as listed for review.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuarantineRow {
    /// Row id.
    pub id: i64,
    /// When it was rejected.
    pub at: String,
    /// Who sent it.
    pub user: String,
    /// From which device.
    pub device: Option<String>,
    /// The document id.
    pub document: String,
    /// The reason code.
    pub reason: String,
    /// The offending path.
    pub path: Option<String>,
    /// The explanation.
    pub detail: String,
    /// The change hashes, comma-separated hex.
    pub hashes: String,
    /// The size of the batch as received, in bytes.
    pub size: i64,
    /// Whether its bytes are kept: false when the device or the dossier had reached the
    /// quarantine cap ([`QuarantineCap`]) and only the record was kept.
    pub bytes_kept: bool,
}

/// How many rejected batches, and how many of their bytes, quarantine keeps per device (user
/// and device id) and per dossier (I7). Beyond either, rejections are recorded without bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineCap {
    /// Batches kept with their bytes.
    pub batches: u64,
    /// Bytes kept.
    pub bytes: u64,
}

/// The batches quarantine keeps with their bytes per device and per dossier, by default.
pub const QUARANTINE_MAX_BATCHES: u64 = 64;
/// The bytes quarantine keeps per device and per dossier, by default: 16 MiB.
pub const QUARANTINE_MAX_BYTES: u64 = 16 * 1024 * 1024;

impl Default for QuarantineCap {
    fn default() -> Self {
        QuarantineCap {
            batches: QUARANTINE_MAX_BATCHES,
            bytes: QUARANTINE_MAX_BYTES,
        }
    }
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("UTC timestamps always format")
}

fn parse_ts(s: &str, table: &'static str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| StorageError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

fn parse<T: FromStr>(s: &str, table: &'static str) -> Result<T> {
    s.parse().map_err(|_| StorageError::Corrupt {
        table,
        detail: format!("unparseable value {s:?}"),
    })
}

impl Store {
    /// Opens (creating if needed) the SQLite store `regie.sqlite3` in `dir`, in WAL mode, and
    /// runs the embedded migrations; its key-encryption key is the development one in `dir`
    /// (made on first use).
    pub async fn open(dir: &Path) -> Result<Store> {
        let kek = Kek::from_file_or_new(&keys::development_kek(dir))?;
        Store::open_backend(&Backend::Sqlite(dir.to_path_buf()), kek).await
    }

    /// Opens the store `backend` names with the key-encryption key `kek`, and runs its
    /// embedded migrations.
    pub async fn open_backend(backend: &Backend, kek: Kek) -> Result<Store> {
        let store = Store::open_with(backend, Some(kek)).await?;
        store.seal_what_is_plain().await?;
        store.seal_free_text_that_is_plain().await?;
        store.finish_destructions().await?;
        Ok(store)
    }

    /// Opens the store `backend` names without a key-encryption key, for what needs no dossier
    /// content (`regie-server verify-audit`): every read or write of a sealed block fails.
    pub async fn open_audit_only(backend: &Backend) -> Result<Store> {
        Store::open_with(backend, None).await
    }

    async fn open_with(backend: &Backend, kek: Option<Kek>) -> Result<Store> {
        let (pool, dialect) = Store::connect(backend).await?;
        dialect.migrator().run(&pool).await?;
        let keys = std::sync::Arc::new(Keys::open(backend, &pool, kek).await?);
        let tail: Option<Vec<u8>> = sqlx::query("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&pool)
            .await?
            .map(|r| r.get(0));
        let audit_tail = std::sync::Arc::new(Mutex::new(tail.unwrap_or_else(|| GENESIS.to_vec())));
        let instance = uuid::Uuid::new_v4().to_string();
        let store = Store {
            commits: group::start(
                pool.clone(),
                dialect,
                audit_tail.clone(),
                keys.clone(),
                instance.clone(),
                None,
            ),
            pool,
            dialect,
            audit_tail,
            quarantine_cap: QuarantineCap::default(),
            keys,
            instance,
            listen_url: match backend {
                Backend::Postgres(url) => Some(url.clone()),
                Backend::Sqlite(_) => None,
            },
            backend: backend.clone(),
        };
        Ok(store)
    }

    /// Applies the migrations `backend` lacks, without opening the store for service
    /// (`regie-server migrate`); returns the versions it applied.
    pub async fn migrate(backend: &Backend) -> Result<Vec<i64>> {
        let (pool, dialect) = Store::connect(backend).await?;
        let before = applied_migrations(&pool).await.unwrap_or_default();
        dialect.migrator().run(&pool).await?;
        let after = applied_migrations(&pool).await?;
        pool.close().await;
        Ok(after.into_iter().filter(|v| !before.contains(v)).collect())
    }

    async fn connect(backend: &Backend) -> Result<(AnyPool, Dialect)> {
        sqlx::any::install_default_drivers();
        match backend {
            Backend::Sqlite(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| StorageError::DataDir {
                    path: dir.display().to_string(),
                    source,
                })?;
                let url = dialect::sqlite_url(&dir.join("regie.sqlite3"));
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            for pragma in Dialect::SQLITE_PRAGMAS {
                                sqlx::query(*pragma).execute(&mut *conn).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?;
                Ok((pool, Dialect::Sqlite))
            }
            Backend::Postgres(url) => {
                // Durability is PostgreSQL's default (`synchronous_commit = on`): a commit
                // returns once its WAL record is flushed, so heads announced after it are safe
                // (I4).
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .connect(url)
                    .await?;
                Ok((pool, Dialect::Postgres))
            }
        }
    }

    /// A transaction for a one-time migration named `marker`, or `None` when it ran already
    /// (its `server_info` row exists; on PostgreSQL the row also keeps a second instance out).
    async fn begin_once(
        &self,
        marker: &str,
    ) -> Result<Option<sqlx::Transaction<'static, sqlx::Any>>> {
        let mut tx = self.pool.begin().await?;
        let first = sqlx::query(
            "INSERT INTO server_info (key, value) VALUES ($1, 'aes-256-gcm/1') \
             ON CONFLICT DO NOTHING",
        )
        .bind(marker)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !first {
            tx.rollback().await?;
            return Ok(None);
        }
        Ok(Some(tx))
    }

    /// Seals what a store from before encryption at rest holds in plain, once (a row in
    /// `server_info` records it; on PostgreSQL that row also keeps a second instance out):
    /// every dossier gets its key, and every change, snapshot, sync state and quarantined batch
    /// is rewritten sealed, in one transaction. Loads them all at once: fine for the stores of
    /// the pilots, to be paged for larger ones.
    async fn seal_what_is_plain(&self) -> Result<()> {
        if self.keys.plain {
            return Ok(());
        }
        let mut tail = self.audit_tail.lock().await;
        let Some(mut tx) = self.begin_once("sealed_at_rest").await? else {
            return Ok(());
        };
        let now = OffsetDateTime::now_utc();
        let mut events = Vec::new();
        for r in sqlx::query("SELECT id FROM dossiers ORDER BY id")
            .fetch_all(&mut *tx)
            .await?
        {
            let dossier: DossierId = parse(r.get::<&str, _>(0), "dossiers")?;
            if !self.keys.has_key(dossier).await? {
                events.push(self.keys.create_for(dossier, now).await?);
            }
        }
        for r in sqlx::query("SELECT document, seq, bytes FROM changes")
            .fetch_all(&mut *tx)
            .await?
        {
            let (doc, seq, bytes): (String, i64, Vec<u8>) = (r.get(0), r.get(1), r.get(2));
            let dossier = self.keys.dossier_of(parse(&doc, "changes")?).await?;
            let sealed = self
                .keys
                .seal(dossier, &BlockId::change(&doc, seq), &bytes)
                .await?;
            sqlx::query("UPDATE changes SET bytes = $1 WHERE document = $2 AND seq = $3")
                .bind(&sealed)
                .bind(&doc)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        for r in sqlx::query("SELECT document, upto_seq, bytes FROM snapshots")
            .fetch_all(&mut *tx)
            .await?
        {
            let (doc, upto, bytes): (String, i64, Vec<u8>) = (r.get(0), r.get(1), r.get(2));
            let dossier = self.keys.dossier_of(parse(&doc, "snapshots")?).await?;
            let sealed = self
                .keys
                .seal(dossier, &BlockId::snapshot(&doc, upto), &bytes)
                .await?;
            sqlx::query("UPDATE snapshots SET bytes = $1 WHERE document = $2")
                .bind(&sealed)
                .bind(&doc)
                .execute(&mut *tx)
                .await?;
        }
        for r in sqlx::query("SELECT user_id, storage_id, document, state FROM sync_states")
            .fetch_all(&mut *tx)
            .await?
        {
            let (user, storage, doc, state): (String, String, String, Vec<u8>) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            let dossier = self.keys.dossier_of(parse(&doc, "sync_states")?).await?;
            let sealed = self
                .keys
                .seal(dossier, &BlockId::sync_state(&user, &storage, &doc), &state)
                .await?;
            sqlx::query(
                "UPDATE sync_states SET state = $1 WHERE user_id = $2 AND storage_id = $3 AND document = $4",
            )
            .bind(&sealed)
            .bind(&user)
            .bind(&storage)
            .bind(&doc)
            .execute(&mut *tx)
            .await?;
        }
        for r in sqlx::query(
            "SELECT id, document, hashes, changes FROM quarantine WHERE LENGTH(changes) > 0",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            let (id, doc, hashes, bytes): (i64, String, String, Vec<u8>) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            let sealed = self
                .seal_quarantined(parse(&doc, "quarantine")?, &hashes, &bytes)
                .await?;
            sqlx::query("UPDATE quarantine SET changes = $1 WHERE id = $2")
                .bind(&sealed)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append_all(&mut tx, &events).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        Ok(())
    }

    /// Seals the free text a store from before its sealing holds in plain, once (the row
    /// `sealed_free_text` in `server_info` records it): every column of [`FREE_TEXT`], each row
    /// with the key [`keys::Owner`] names, in one transaction; then SQLite's WAL, which holds
    /// the old pages, is checkpointed (the freed pages were zeroed by `secure_delete`). Text of
    /// a dossier whose key was destroyed, or that was destroyed before keys existed, is erased
    /// rather than sealed: it reads as [`keys::DESTROYED_TEXT`], as it would have. A text that
    /// is sealed already (it opens with its key) is left as it is.
    async fn seal_free_text_that_is_plain(&self) -> Result<()> {
        if self.keys.plain {
            return Ok(());
        }
        let Some(mut tx) = self.begin_once("sealed_free_text").await? else {
            return Ok(());
        };
        let at = ts(OffsetDateTime::now_utc());
        for column in FREE_TEXT {
            let rows = sqlx::query(column.select).fetch_all(&mut *tx).await?;
            let set: Vec<String> = column
                .texts
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} = ${}", i + 1))
                .collect();
            let filter: Vec<String> = column
                .keys
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} = ${}", column.texts.len() + i + 1))
                .collect();
            let update = format!(
                "UPDATE {} SET {} WHERE {}",
                column.table,
                set.join(", "),
                filter.join(" AND ")
            );
            for r in &rows {
                let scope: String = r.get(0);
                let owner = match scope.parse::<DossierId>() {
                    Ok(d) => keys::Owner::Dossier(d),
                    Err(_) => keys::Owner::Own(scope.clone()),
                };
                let key: Vec<String> = (1..=column.keys.len()).map(|i| r.get(i)).collect();
                let key_refs: Vec<&str> = key.iter().map(String::as_str).collect();
                let mut query = sqlx::query(sqlx::AssertSqlSafe(update.clone()));
                for (i, c) in column.texts.iter().enumerate() {
                    let plain: Option<String> = r.get(1 + column.keys.len() + i);
                    let field = BlockId::text(column.table, c, &key_refs);
                    let sealed = match (&plain, &owner) {
                        (None, _) => None,
                        (Some(text), owner) if self.keys.opens(owner, &field, text).await => {
                            Some(text.clone())
                        }
                        (Some(text), owner) => match self.keys.seal_text(owner, &field, text).await
                        {
                            Ok(sealed) => Some(sealed),
                            Err(StorageError::KeyDestroyed(_)) => Some(String::new()),
                            Err(StorageError::NoKey) => {
                                let keys::Owner::Dossier(d) = owner else {
                                    return Err(StorageError::NoKey);
                                };
                                // A dossier destroyed before it had a key: its words go too.
                                self.keys.create(*d, &at).await?;
                                self.keys.destroy(*d, &at).await?;
                                Some(String::new())
                            }
                            Err(e) => return Err(e),
                        },
                    };
                    query = query.bind(sealed);
                }
                for k in key {
                    query = query.bind(k);
                }
                query.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        self.dialect.after_destruction(&self.pool).await
    }

    /// Destroys the data keys of destroyed dossiers that outlived their rows (a stop between a
    /// destruction's commit and its key's).
    async fn finish_destructions(&self) -> Result<()> {
        let destroyed: Vec<(DossierId, String)> =
            sqlx::query("SELECT dossier, destroyed_at FROM destructions WHERE key_id IS NOT NULL")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((parse(r.get::<&str, _>(0), "destructions")?, r.get(1))))
                .collect::<Result<_>>()?;
        let n = self.keys.destroy_leftovers(&destroyed).await?;
        if n > 0 {
            tracing::warn!(
                keys = n,
                "data keys of destroyed dossiers destroyed on start"
            );
        }
        Ok(())
    }

    /// Re-wraps every dossier's data key with `new` instead of the configured key-encryption
    /// key, without re-encrypting any data, and records it in the audit log (key ids only).
    /// Afterwards the store opens with `new` only. Returns how many keys were re-wrapped.
    pub async fn rotate_kek(&self, new: &Kek) -> Result<usize> {
        let n = self.keys.rewrap(new).await?;
        let mut ev = AuditEvent::new(
            OffsetDateTime::now_utc(),
            "regie-server",
            "system",
            crate::audit::AuditAction::Key,
        );
        ev.detail = Some(format!(
            "key-encryption key {} replaced by {}: {n} data keys re-wrapped",
            self.keys.kek_id(),
            new.id()
        ));
        self.append_audit(&ev).await?;
        Ok(n)
    }

    /// Releases the device key of `user`'s device `storage` (R29) after the caller
    /// authenticated them: made on first release, kept wrapped here, recorded in the audit log
    /// (ids only). A device reported lost (in `revoked_devices`) is refused: its key is
    /// destroyed, if it was not already, and `None` is returned.
    pub async fn release_device_key(
        &self,
        user: &UserId,
        role: &str,
        storage: &str,
        at: OffsetDateTime,
    ) -> Result<Option<DeviceKey>> {
        let revoked =
            sqlx::query("SELECT 1 FROM revoked_devices WHERE user_id = $1 AND storage_id = $2")
                .bind(user.as_str())
                .bind(storage)
                .fetch_optional(&self.pool)
                .await?
                .is_some();
        let mut ev = AuditEvent::new(at, user.as_str(), role, crate::audit::AuditAction::Key);
        ev.device = Some(storage.to_owned());
        let released = if revoked {
            let id = self
                .keys
                .destroy_device_key(user.as_str(), storage, &ts(at))
                .await?;
            ev.outcome = "device_revoked".into();
            ev.detail = Some(format!(
                "device key {id} refused: the device was reported lost"
            ));
            None
        } else {
            match self
                .keys
                .device_key(user.as_str(), storage, &ts(at))
                .await?
            {
                Ok((key_id, key)) => {
                    ev.detail = Some(format!("device key {key_id} released"));
                    Some(DeviceKey { key_id, key })
                }
                Err(key_id) => {
                    ev.outcome = "device_revoked".into();
                    ev.detail = Some(format!("device key {key_id} refused: destroyed"));
                    None
                }
            }
        };
        self.append_audit(&ev).await?;
        Ok(released)
    }

    /// The configured key-encryption key's id (never the key).
    pub fn kek_id(&self) -> &str {
        self.keys.kek_id()
    }

    /// Writes an online, consistent copy of the data store — without the key store — to the new
    /// file `dest` (SQLite's `VACUUM INTO`). PostgreSQL is backed up with `pg_dump`
    /// (DEPLOYMENT.md): [`StorageError::Unsupported`].
    pub async fn backup(&self, dest: &Path) -> Result<()> {
        if self.dialect != Dialect::Sqlite {
            return Err(StorageError::Unsupported(
                "a PostgreSQL store is backed up with pg_dump --exclude-schema=regie_keys",
            ));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(dest.to_string_lossy().into_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves SQLite's write-ahead logs (data and key store) into their files and truncates
    /// them; nothing on PostgreSQL. For backups of the files and tests that read them raw.
    pub async fn checkpoint(&self) -> Result<()> {
        if self.dialect == Dialect::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        self.keys.checkpoint().await
    }

    /// Where the data is.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The store, telling `observer` of every group commit once it is durable (for tests that
    /// check no acknowledgement precedes its commit).
    pub fn with_commit_observer(mut self, observer: CommitObserver) -> Store {
        self.commits = group::start(
            self.pool.clone(),
            self.dialect,
            self.audit_tail.clone(),
            self.keys.clone(),
            self.instance.clone(),
            Some(observer),
        );
        self
    }

    /// Whether every migration this binary embeds is applied to the store (readiness); an
    /// error when the store cannot be read.
    pub async fn migrations_applied(&self) -> Result<bool> {
        let applied = applied_migrations(&self.pool).await?;
        Ok(self
            .dialect
            .migrator()
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .all(|m| applied.contains(&m.version)))
    }

    /// The store with another quarantine cap (the default is [`QuarantineCap::default`]).
    pub fn with_quarantine_cap(mut self, cap: QuarantineCap) -> Store {
        self.quarantine_cap = cap;
        self
    }

    /// This server's storage id (announced to peers as `peerMetadata.storageId`), made once.
    pub async fn storage_id(&self) -> Result<String> {
        let fresh = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO server_info (key, value) VALUES ('storage_id', $1) ON CONFLICT DO NOTHING",
        )
        .bind(&fresh)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT value FROM server_info WHERE key = 'storage_id'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }

    // ---- dossiers and relationships ------------------------------------------------------

    /// Creates a dossier with its persons and documents (each with its initial snapshot) and
    /// the audit rows of its creation, in one transaction.
    pub async fn create_dossier(
        &self,
        rel: &Relationships,
        persons: &[PersonId],
        documents: &[(DocumentId, DocumentKey, Vec<u8>)],
        at: OffsetDateTime,
        audit: &[AuditEvent],
    ) -> Result<()> {
        let key_created = self.keys.create_for(rel.dossier, at).await?;
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        feed::dossier_changed(&mut tx, self.dialect, &self.instance, rel.dossier).await?;
        insert_dossier(&mut tx, &self.keys, rel, persons, documents, at).await?;
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append_all(&mut tx, audit).await?;
        chain.append(&mut tx, &key_created).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        Ok(())
    }

    /// Replaces document `old` by `new` holding only `snapshot`, in one transaction: the old
    /// document's changes, snapshot, sync states and quarantined batches are deleted, and `old`
    /// is retired so that it is refused forever; earlier ids retired in its favour now point to
    /// `new`. What the deletion leaves on disk: [`Store::wipe_freed_pages`].
    pub async fn replace_document(
        &self,
        old: DocumentId,
        new: DocumentId,
        dossier: DossierId,
        key: &DocumentKey,
        snapshot: &[u8],
        at: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // Other instances learn the new id and retire the old one.
        feed::dossier_changed(&mut tx, self.dialect, &self.instance, dossier).await?;
        for sql in [
            "DELETE FROM changes WHERE document = $1",
            "DELETE FROM snapshots WHERE document = $1",
            "DELETE FROM sync_states WHERE document = $1",
            "DELETE FROM quarantine WHERE document = $1",
            "DELETE FROM view_projections WHERE view = $1",
            "DELETE FROM documents WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(old.to_string())
                .execute(&mut *tx)
                .await?;
        }
        insert_document(&mut tx, &self.keys, new, dossier, key, snapshot, at).await?;
        sqlx::query("UPDATE retired_documents SET replaced_by = $1 WHERE replaced_by = $2")
            .bind(new.to_string())
            .bind(old.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO retired_documents (id, replaced_by, retired_at) VALUES ($1, $2, $3)",
        )
        .bind(old.to_string())
        .bind(new.to_string())
        .bind(ts(at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every retired document id and the id that replaces it now.
    pub async fn retired_documents(&self) -> Result<Vec<(DocumentId, DocumentId)>> {
        let rows = sqlx::query("SELECT id, replaced_by FROM retired_documents")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse(r.get::<&str, _>(0), "retired_documents")?,
                    parse(r.get::<&str, _>(1), "retired_documents")?,
                ))
            })
            .collect()
    }

    /// The relationships of every dossier (loaded once at start; the hub keeps them current).
    /// One query per table, grouped in memory: a query per dossier would make a cold start
    /// with 100,000 dossiers take half a minute (BENCHMARKS.md).
    pub async fn all_relationships(&self) -> Result<Vec<Relationships>> {
        self.relationships_of(None).await
    }

    /// The relationships of `only` (another instance changed them, issue 17), or of every
    /// dossier.
    async fn relationships_of(&self, only: Option<DossierId>) -> Result<Vec<Relationships>> {
        let only = only.map(|d| d.to_string()).unwrap_or_default();
        // The filter is one of two literals; the dossier id is bound.
        let rows = |sql: &'static str, column: &'static str| {
            let filter = if only.is_empty() {
                String::from("$1 = ''")
            } else {
                format!("{column} = $1")
            };
            sqlx::query(sqlx::AssertSqlSafe(sql.replace("{filter}", &filter)))
                .bind(only.clone())
                .fetch_all(&self.pool)
        };
        let mut by_id: HashMap<String, Relationships> = HashMap::new();
        let mut dossier = |[id, district, team, status]: [&str; 4]| -> Result<()> {
            let mut rel = Relationships::new(
                parse(id, "dossiers")?,
                parse::<DistrictId>(district, "dossiers")?,
                parse::<TeamId>(team, "dossiers")?,
            );
            rel.closed = status == "closed";
            by_id.insert(id.to_owned(), rel);
            Ok(())
        };
        const DOSSIER: [&str; 4] = ["id", "district", "team", "status"];
        if only.is_empty() {
            for row in self.packed("dossiers", DOSSIER, "id").await?.rows() {
                dossier(row?)?;
            }
        } else {
            for r in rows(
                "SELECT id, district, team, status FROM dossiers WHERE {filter}",
                "id",
            )
            .await?
            {
                dossier(std::array::from_fn(|i| r.get::<&str, _>(i)))?;
            }
        }
        for r in
            rows("SELECT dossier, user_id FROM assignments WHERE {filter} ORDER BY dossier, assigned_at, user_id", "dossier")
                .await?
        {
            if let Some(rel) = by_id.get_mut(r.get::<&str, _>(0)) {
                rel.assigned
                    .push(parse(r.get::<&str, _>(1), "assignments")?);
            }
        }
        for r in rows(
            "SELECT dossier, person FROM resident_links WHERE {filter} ORDER BY dossier, person",
            "dossier",
        )
        .await?
        {
            if let Some(rel) = by_id.get_mut(r.get::<&str, _>(0)) {
                rel.linked_persons
                    .push(parse(r.get::<&str, _>(1), "resident_links")?);
            }
        }
        for r in rows(
            "SELECT dossier, n, person FROM maatwerk_applicants WHERE {filter} ORDER BY dossier, n",
            "dossier",
        )
        .await?
        {
            if let Some(rel) = by_id.get_mut(r.get::<&str, _>(0)) {
                let n = u32::try_from(r.get::<i64, _>(1)).map_err(|_| StorageError::Corrupt {
                    table: "maatwerk_applicants",
                    detail: "n out of range".into(),
                })?;
                rel.applicants
                    .push((n, parse(r.get::<&str, _>(2), "maatwerk_applicants")?));
            }
        }
        for r in
            rows("SELECT dossier, org FROM partners WHERE ended_at IS NULL AND {filter} ORDER BY dossier, org", "dossier")
                .await?
        {
            if let Some(rel) = by_id.get_mut(r.get::<&str, _>(0)) {
                rel.partners.push(parse(r.get::<&str, _>(1), "partners")?);
            }
        }
        for r in rows("SELECT dossier, user_id, reason, granted_at, expires_at FROM grants WHERE {filter} ORDER BY dossier, id", "dossier").await? {
            if let Some(rel) = by_id.get_mut(r.get::<&str, _>(0)) {
                let (dossier, user, granted_at): (&str, &str, &str) = (r.get(0), r.get(1), r.get(3));
                let reason = self
                    .keys
                    .open_text(
                        &keys::Owner::Dossier(rel.dossier),
                        &BlockId::text("grants", "reason", &[dossier, user, granted_at]),
                        r.get(2),
                        "grants",
                        || format!("{dossier} {user} {granted_at}"),
                    )
                    .await?;
                rel.grants.push(Grant {
                    user: parse(user, "grants")?,
                    reason,
                    granted_at: parse_ts(granted_at, "grants")?,
                    expires_at: parse_ts(r.get::<&str, _>(4), "grants")?,
                });
            }
        }
        let mut out: Vec<Relationships> = by_id.into_values().collect();
        out.sort_by_cached_key(|rel| rel.dossier.to_string());
        Ok(out)
    }

    /// The persons of every dossier, sorted, in one packed read.
    pub async fn all_persons(&self) -> Result<HashMap<DossierId, Vec<PersonId>>> {
        let mut out: HashMap<DossierId, Vec<PersonId>> = HashMap::new();
        let packed = self
            .packed("dossier_persons", ["dossier", "person"], "dossier")
            .await?;
        for row in packed.rows() {
            let [dossier, person] = row?;
            out.entry(parse(dossier, "dossier_persons")?)
                .or_default()
                .push(parse(person, "dossier_persons")?);
        }
        for persons in out.values_mut() {
            persons.sort();
        }
        Ok(out)
    }

    /// One dossier as stored now, for an instance that learns another changed it (issue 17):
    /// its relationships (with restrictions), persons and documents; `None` once it is gone.
    pub async fn dossier_state(
        &self,
        dossier: DossierId,
    ) -> Result<Option<(Relationships, Vec<PersonId>, Vec<DocumentRow>)>> {
        let Some(mut rel) = self.relationships_of(Some(dossier)).await?.pop() else {
            return Ok(None);
        };
        rel.contributions = self
            .contributions(Some(dossier))
            .await?
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        let id = dossier.to_string();
        for r in sqlx::query(
            "SELECT person FROM restrictions WHERE dossier = $1 AND lifted_at IS NULL ORDER BY person",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await?
        {
            rel.restricted.push(parse(r.get::<&str, _>(0), "restrictions")?);
        }
        let mut persons = Vec::new();
        for r in
            sqlx::query("SELECT person FROM dossier_persons WHERE dossier = $1 ORDER BY person")
                .bind(&id)
                .fetch_all(&self.pool)
                .await?
        {
            persons.push(parse(r.get::<&str, _>(0), "dossier_persons")?);
        }
        let documents = sqlx::query("SELECT id, dossier, key FROM documents WHERE dossier = $1")
            .bind(&id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(DocumentRow::of)
            .collect::<Result<Vec<_>>>()?;
        Ok(Some((rel, persons, documents)))
    }

    // ---- documents -----------------------------------------------------------------------

    /// The whole document index.
    pub async fn document_index(&self) -> Result<Vec<DocumentRow>> {
        let packed = self
            .packed("documents", ["id", "dossier", "key"], "dossier")
            .await?;
        packed
            .rows()
            .map(|row| {
                let row = DocumentRow::parse(row?)?;
                self.keys.remember(row.id, row.dossier);
                Ok(row)
            })
            .collect()
    }

    /// Loads a document's snapshot and later changes.
    /// Every block is opened with the dossier's key; one that fails its integrity check fails
    /// the whole load ([`StorageError::Tampered`]), so nothing altered is served.
    pub async fn load_document(&self, doc: DocumentId) -> Result<StoredDocument> {
        let id = doc.to_string();
        let dossier = match self.keys.dossier_of(doc).await {
            Ok(dossier) => dossier,
            // An unknown document (e.g. destroyed) holds nothing.
            Err(StorageError::NoKey) => {
                return Ok(StoredDocument {
                    snapshot: None,
                    changes: Vec::new(),
                    last_seq: 0,
                });
            }
            Err(e) => return Err(e),
        };
        let snap = sqlx::query("SELECT bytes, upto_seq FROM snapshots WHERE document = $1")
            .bind(&id)
            .fetch_optional(&self.pool)
            .await?;
        let (snapshot, upto) = match snap {
            Some(r) => {
                let upto = r.get::<i64, _>(1);
                let sealed: Vec<u8> = r.get(0);
                let block = BlockId::snapshot(&id, upto);
                let bytes = self
                    .keys
                    .unseal(dossier, &block, &sealed, "snapshots", || id.clone())
                    .await?;
                (Some(bytes), upto)
            }
            None => (None, 0),
        };
        let (last_seq, changes) = self.changes_after(dossier, doc, upto).await?;
        Ok(StoredDocument {
            snapshot,
            changes,
            last_seq,
        })
    }

    /// The changes of `doc` (of `dossier`) after `after`, unsealed, and the last one's sequence
    /// (`after` when there are none).
    pub(crate) async fn changes_after(
        &self,
        dossier: DossierId,
        doc: DocumentId,
        after: i64,
    ) -> Result<(i64, Vec<Vec<u8>>)> {
        let id = doc.to_string();
        let rows = sqlx::query(
            "SELECT seq, bytes FROM changes WHERE document = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(&id)
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        let last_seq = rows.last().map_or(after, |r| r.get(0));
        let mut changes = Vec::with_capacity(rows.len());
        for r in rows {
            let seq: i64 = r.get(0);
            let sealed: Vec<u8> = r.get(1);
            let block = BlockId::change(&id, seq);
            changes.push(
                self.keys
                    .unseal(dossier, &block, &sealed, "changes", || {
                        format!("{id} #{seq}")
                    })
                    .await?,
            );
        }
        Ok((last_seq, changes))
    }

    /// Appends changes after `after_seq`; when it returns, they are durable. They commit with
    /// whatever other batches are waiting at that moment (group commit).
    pub async fn append_changes(
        &self,
        id: DocumentId,
        after_seq: i64,
        changes: &[&[u8]],
    ) -> Result<i64> {
        self.group_commit(id, after_seq, changes, None).await
    }

    /// [`Store::append_changes`] and the audit event of that write in the same transaction: a
    /// change is never stored without its audit row (I3).
    pub async fn append_changes_audited(
        &self,
        id: DocumentId,
        after_seq: i64,
        changes: &[&[u8]],
        ev: &AuditEvent,
    ) -> Result<i64> {
        self.group_commit(id, after_seq, changes, Some(ev.clone()))
            .await
    }

    async fn group_commit(
        &self,
        doc: DocumentId,
        after_seq: i64,
        changes: &[&[u8]],
        audit: Option<AuditEvent>,
    ) -> Result<i64> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let pending = group::Pending {
            doc,
            after_seq,
            changes: changes.iter().map(|c| c.to_vec()).collect(),
            audit,
            done,
        };
        self.commits.send(pending).map_err(|_| group::gone())?;
        answer.await.map_err(|_| group::gone())?
    }

    /// Replaces the changes up to `upto_seq` by `snapshot` (an Automerge `save()` that contains
    /// them), in one transaction.
    pub async fn compact(&self, doc: DocumentId, snapshot: &[u8], upto_seq: i64) -> Result<()> {
        let id = doc.to_string();
        let dossier = self.keys.dossier_of(doc).await?;
        let mut tx = self.pool.begin().await?;
        let sealed = self
            .keys
            .seal(dossier, &BlockId::snapshot(&id, upto_seq), snapshot)
            .await?;
        sqlx::query("INSERT INTO snapshots (document, bytes, upto_seq) VALUES ($1, $2, $3) ON CONFLICT (document) DO UPDATE SET bytes = excluded.bytes, upto_seq = excluded.upto_seq")
            .bind(&id)
            .bind(&sealed)
            .bind(upto_seq)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM changes WHERE document = $1 AND seq <= $2")
            .bind(&id)
            .bind(upto_seq)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that `views` reflect `record` up to its change `record_seq`.
    pub async fn mark_projected(&self, views: &[DocumentId], record_seq: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for view in views {
            sqlx::query("INSERT INTO view_projections (view, record_seq) VALUES ($1, $2) ON CONFLICT (view) DO UPDATE SET record_seq = excluded.record_seq")
                .bind(view.to_string())
                .bind(record_seq)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The dossiers with a resident view that reflects less of `record` than it holds.
    pub async fn views_behind(&self) -> Result<Vec<DossierId>> {
        let rows = sqlx::query(
            "SELECT DISTINCT v.dossier FROM documents v \
             JOIN documents r ON r.dossier = v.dossier AND r.key = 'record' \
             LEFT JOIN view_projections p ON p.view = v.id \
             WHERE v.key LIKE 'view/%' AND ( \
                 COALESCE(p.record_seq, 0) < \
                     COALESCE((SELECT MAX(seq) FROM changes WHERE document = r.id), 0) \
                 OR COALESCE(p.record_seq, 0) < \
                     COALESCE((SELECT upto_seq FROM snapshots WHERE document = r.id), 0))",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| parse(r.get::<&str, _>(0), "documents"))
            .collect()
    }

    // ---- sync states ---------------------------------------------------------------------

    /// The persisted sync state of `user`'s device `storage_id` for a document.
    pub async fn sync_state(
        &self,
        user: &UserId,
        storage_id: &str,
        doc: DocumentId,
    ) -> Result<Option<Vec<u8>>> {
        let id = doc.to_string();
        let Some(sealed) = sqlx::query(
            "SELECT state FROM sync_states WHERE user_id = $1 AND storage_id = $2 AND document = $3",
        )
        .bind(user.as_str())
        .bind(storage_id)
        .bind(&id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.get::<Vec<u8>, _>(0)) else {
            return Ok(None);
        };
        let dossier = self.keys.dossier_of(doc).await?;
        let block = BlockId::sync_state(user.as_str(), storage_id, &id);
        self.keys
            .unseal(dossier, &block, &sealed, "sync_states", || {
                format!("{id} of {}", user.as_str())
            })
            .await
            .map(Some)
    }

    /// Persists a sync state.
    pub async fn put_sync_state(
        &self,
        user: &UserId,
        storage_id: &str,
        doc: DocumentId,
        state: &[u8],
    ) -> Result<()> {
        let id = doc.to_string();
        let dossier = self.keys.dossier_of(doc).await?;
        let sealed = self
            .keys
            .seal(
                dossier,
                &BlockId::sync_state(user.as_str(), storage_id, &id),
                state,
            )
            .await?;
        sqlx::query("INSERT INTO sync_states (user_id, storage_id, document, state) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, storage_id, document) DO UPDATE SET state = excluded.state")
            .bind(user.as_str())
            .bind(storage_id)
            .bind(&id)
            .bind(&sealed)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- audit ---------------------------------------------------------------------------

    /// Appends an event to the hash chain; when it returns, the event is durable.
    pub async fn append_audit(&self, ev: &AuditEvent) -> Result<()> {
        self.append_audit_all(std::slice::from_ref(ev)).await
    }

    /// Appends events to the hash chain in order, in one transaction: all of them are durable
    /// when it returns, or none.
    pub async fn append_audit_all(&self, events: &[AuditEvent]) -> Result<()> {
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append_all(&mut tx, events).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        Ok(())
    }

    /// Logs offline read `id` of `device` with its audit event (whose actor is the uploading
    /// user), unless that read was logged already (a repeated upload); returns whether it was
    /// new. One transaction for both.
    pub async fn append_offline_read(
        &self,
        device: &str,
        id: &str,
        ev: &AuditEvent,
    ) -> Result<bool> {
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        let new = sqlx::query(
            "INSERT INTO offline_reads_logged (user_id, device, id) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&ev.actor)
        .bind(device)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !new {
            return Ok(false);
        }
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append_all(&mut tx, std::slice::from_ref(ev)).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        Ok(true)
    }

    /// Audit events, oldest first, optionally of one dossier. Loads them all: for tools and
    /// tests; reports read the log in pages ([`Store::audit_page`], [`Store::scan_audit`]).
    pub async fn audit_events(&self, dossier: Option<DossierId>) -> Result<Vec<(i64, AuditEvent)>> {
        let rows = match dossier {
            Some(d) => {
                sqlx::query("SELECT * FROM audit WHERE dossier = $1 ORDER BY seq")
                    .bind(d.to_string())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM audit ORDER BY seq")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|r| Ok((r.get("seq"), audit_row(r)?)))
            .collect()
    }

    /// Walks the whole chain and reports the first row that does not match. The log is read
    /// [`AUDIT_PAGE_MAX`] rows at a time in log order, so memory stays flat however long it is.
    pub async fn verify_audit(&self) -> Result<Verification> {
        let mut walk = ChainWalk::new();
        let mut after = 0_i64;
        loop {
            let rows = sqlx::query("SELECT * FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(AUDIT_PAGE_MAX as i64)
                .fetch_all(&self.pool)
                .await?;
            for r in &rows {
                let event = audit_row(r).ok();
                let row = StoredRow {
                    seq: r.get("seq"),
                    encoding: r.try_get("encoding").unwrap_or(0),
                    event: event.as_ref(),
                    prev_hash: r.get("prev_hash"),
                    hash: r.get("hash"),
                };
                if !walk.check(row) {
                    return Ok(walk.verification());
                }
                after = row.seq;
            }
            if rows.len() < AUDIT_PAGE_MAX {
                return Ok(walk.verification());
            }
        }
    }

    // ---- quarantine ----------------------------------------------------------------------

    /// Records a rejected batch for review, and keeps its bytes while the device that sent it
    /// (`user` and `device`) and the document's dossier are each within the quarantine cap
    /// ([`QuarantineCap`]): beyond it the rejection is recorded with its reason, path, hashes,
    /// time and size, but without its bytes, so a device sending rejected batches in a loop
    /// cannot fill the disk (I7). One statement, so concurrent rejections cannot both slip
    /// under the cap. The rejection's audit row commits in the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn quarantine(
        &self,
        at: OffsetDateTime,
        user: &UserId,
        device: Option<&str>,
        doc: DocumentId,
        reason: &str,
        path: Option<&str>,
        detail: &str,
        hashes: &str,
        changes: &[u8],
        audit: &AuditEvent,
    ) -> Result<()> {
        let cap = self.quarantine_cap;
        let sealed = self.seal_quarantined(doc, hashes, changes).await?;
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        // SQLite runs one writer at a time; PostgreSQL would let two concurrent statements
        // count the same rows, so there they queue on a lock first.
        self.dialect
            .lock(&mut tx, dialect::Lock::Quarantine)
            .await?;
        let kept: i64 = sqlx::query(
            "WITH target AS (SELECT (SELECT dossier FROM documents WHERE id = $1) AS dossier), \
             by_device AS (SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM quarantine \
                 WHERE kept = 1 AND user_id = $2 AND device IS NOT DISTINCT FROM $3), \
             by_dossier AS (SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM quarantine \
                 WHERE kept = 1 AND dossier = (SELECT dossier FROM target)), \
             verdict AS (SELECT CASE WHEN by_device.n < $4 AND by_dossier.n < $4 \
                 AND by_device.b + $5 <= $6 AND by_dossier.b + $5 <= $6 THEN 1 ELSE 0 END AS keep \
                 FROM by_device, by_dossier) \
             INSERT INTO quarantine (at, user_id, device, document, reason, path, detail, hashes, \
                 changes, dossier, size, kept) \
             SELECT $7, $2, $3, $1, $8, $9, $10, $11, \
                 CASE WHEN verdict.keep = 1 THEN $12 ELSE $13 END, target.dossier, $5, verdict.keep \
             FROM verdict, target \
             RETURNING kept",
        )
        .bind(doc.to_string())
        .bind(user.as_str())
        .bind(device)
        .bind(i64::try_from(cap.batches).unwrap_or(i64::MAX))
        .bind(i64::try_from(changes.len()).unwrap_or(i64::MAX))
        .bind(i64::try_from(cap.bytes).unwrap_or(i64::MAX))
        .bind(ts(at))
        .bind(reason)
        .bind(path)
        .bind(detail)
        .bind(hashes)
        .bind(&sealed)
        .bind(&[] as &[u8])
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append(&mut tx, audit).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        if kept == 0 {
            tracing::warn!(
                user = user.as_str(),
                device,
                document = %doc,
                size = changes.len(),
                "quarantine cap reached: rejection recorded without its bytes"
            );
        }
        Ok(())
    }

    /// Quarantined batches, newest first, without their bytes.
    pub async fn quarantined(&self) -> Result<Vec<QuarantineRow>> {
        self.quarantined_page(None, usize::MAX).await
    }

    /// At most `limit` quarantined batches older than row `before` (or the newest), newest
    /// first, without their bytes.
    pub async fn quarantined_page(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<QuarantineRow>> {
        let rows = sqlx::query("SELECT id, at, user_id, device, document, reason, path, detail, hashes, size, kept FROM quarantine WHERE id < $1 ORDER BY id DESC LIMIT $2")
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| QuarantineRow {
                id: r.get(0),
                at: r.get(1),
                user: r.get(2),
                device: r.get(3),
                document: r.get(4),
                reason: r.get(5),
                path: r.get(6),
                detail: r.get(7),
                hashes: r.get(8),
                size: r.get(9),
                bytes_kept: r.get::<i64, _>(10) != 0,
            })
            .collect())
    }

    /// The raw pool, for this crate's unit tests that tamper with rows as someone with the file
    /// would; nothing else sees it.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A rejected batch's bytes sealed with its dossier's key; a batch for a document of no
    /// dossier (unknown) keeps no bytes.
    async fn seal_quarantined(
        &self,
        doc: DocumentId,
        hashes: &str,
        bytes: &[u8],
    ) -> Result<Vec<u8>> {
        match self.keys.dossier_of(doc).await {
            Ok(dossier) => {
                let block = BlockId::quarantine(&doc.to_string(), hashes);
                self.keys.seal(dossier, &block, bytes).await
            }
            Err(StorageError::NoKey) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Closes the store: waits for its connections to finish and checkpoints the log.
    pub async fn close(&self) {
        self.pool.close().await;
        self.keys.close().await;
    }
}

/// The versions of the migrations applied successfully.
async fn applied_migrations(pool: &AnyPool) -> Result<Vec<i64>> {
    Ok(
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?,
    )
}

/// Inserts a dossier with its persons, assignments and documents inside `tx`, so a caller can
/// commit it together with what made it (e.g. the signal it came from).
async fn insert_dossier(
    tx: &mut AnyConnection,
    keys: &Keys,
    rel: &Relationships,
    persons: &[PersonId],
    documents: &[(DocumentId, DocumentKey, Vec<u8>)],
    at: OffsetDateTime,
) -> Result<()> {
    sqlx::query("INSERT INTO dossiers (id, district, team, created_at) VALUES ($1, $2, $3, $4)")
        .bind(rel.dossier.to_string())
        .bind(rel.district.as_str())
        .bind(rel.team.as_str())
        .bind(ts(at))
        .execute(&mut *tx)
        .await?;
    for person in persons {
        sqlx::query("INSERT INTO dossier_persons (dossier, person) VALUES ($1, $2)")
            .bind(rel.dossier.to_string())
            .bind(person.as_str())
            .execute(&mut *tx)
            .await?;
    }
    for user in &rel.assigned {
        sqlx::query("INSERT INTO assignments (dossier, user_id, assigned_at) VALUES ($1, $2, $3)")
            .bind(rel.dossier.to_string())
            .bind(user.as_str())
            .bind(ts(at))
            .execute(&mut *tx)
            .await?;
    }
    for (id, key, snapshot) in documents {
        insert_document(tx, keys, *id, rel.dossier, key, snapshot, at).await?;
    }
    Ok(())
}

/// Appends `changes` after `after_seq`; returns the last sequence number.
/// Each change is sealed with its dossier's key, bound to its document and sequence number.
async fn insert_changes(
    tx: &mut AnyConnection,
    keys: &Keys,
    doc: DocumentId,
    after_seq: i64,
    changes: &[&[u8]],
) -> Result<i64> {
    let id = doc.to_string();
    let dossier = keys.dossier_of(doc).await?;
    let mut seq = after_seq;
    for bytes in changes {
        seq += 1;
        let sealed = keys
            .seal(dossier, &BlockId::change(&id, seq), bytes)
            .await?;
        sqlx::query("INSERT INTO changes (document, seq, bytes) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(seq)
            .bind(&sealed)
            .execute(&mut *tx)
            .await?;
    }
    Ok(seq)
}

/// The audit rows one transaction appends. The first append finds the chain's tail: the one
/// this process remembers (SQLite: one process writes the file), or, with PostgreSQL, the last
/// row as committed, read after taking a transaction-scoped advisory lock, so appends from any
/// number of connections or instances form one chain (the lock is held until commit).
pub(crate) struct Chain {
    dialect: Dialect,
    remembered: Vec<u8>,
    last: Option<Vec<u8>>,
}

impl Chain {
    /// A chain extended after `remembered`, this process's last known tail.
    pub(crate) fn new(dialect: Dialect, remembered: &[u8]) -> Chain {
        Chain {
            dialect,
            remembered: remembered.to_vec(),
            last: None,
        }
    }

    /// Appends `ev` inside the transaction on `conn`.
    pub(crate) async fn append(&mut self, conn: &mut AnyConnection, ev: &AuditEvent) -> Result<()> {
        let prev = match self.last.take() {
            Some(prev) => prev,
            None => self.dialect.chain_tail(conn, &self.remembered).await?,
        };
        self.last = Some(insert_audit(conn, ev, &prev).await?);
        Ok(())
    }

    /// Appends `events` in order.
    pub(crate) async fn append_all(
        &mut self,
        conn: &mut AnyConnection,
        events: &[AuditEvent],
    ) -> Result<()> {
        for ev in events {
            self.append(conn, ev).await?;
        }
        Ok(())
    }

    /// After the commit: the new tail, if anything was appended, becomes the remembered one.
    pub(crate) fn commit_to(self, remembered: &mut Vec<u8>) {
        if let Some(last) = self.last {
            *remembered = last;
        }
    }
}

/// Appends `ev` to the audit chain after `tail`; returns its hash, the new tail.
async fn insert_audit(conn: &mut AnyConnection, ev: &AuditEvent, tail: &[u8]) -> Result<Vec<u8>> {
    let hash = ev.chain_hash_as(Encoding::CURRENT, tail);
    sqlx::query("INSERT INTO audit (at, actor, role, on_behalf_of, dossier, document, persons, action, basis, outcome, device, detail, encoding, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)")
        .bind(ts(ev.at))
        .bind(&ev.actor)
        .bind(&ev.role)
        .bind(&ev.on_behalf_of)
        .bind(&ev.dossier)
        .bind(&ev.document)
        .bind(&ev.persons)
        .bind(&ev.action)
        .bind(&ev.basis)
        .bind(&ev.outcome)
        .bind(&ev.device)
        .bind(&ev.detail)
        .bind(Encoding::CURRENT.stored())
        .bind(tail)
        .bind(&hash[..])
        .execute(&mut *conn)
        .await?;
    crate::metrics::audit_appended();
    Ok(hash)
}

async fn insert_document(
    tx: &mut AnyConnection,
    keys: &Keys,
    id: DocumentId,
    dossier: DossierId,
    key: &DocumentKey,
    snapshot: &[u8],
    at: OffsetDateTime,
) -> Result<()> {
    sqlx::query("INSERT INTO documents (id, dossier, key, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id.to_string())
        .bind(dossier.to_string())
        .bind(key.to_string())
        .bind(ts(at))
        .execute(&mut *tx)
        .await?;
    keys.remember(id, dossier);
    let sealed = keys
        .seal(dossier, &BlockId::snapshot(&id.to_string(), 0), snapshot)
        .await?;
    sqlx::query("INSERT INTO snapshots (document, bytes, upto_seq) VALUES ($1, $2, 0)")
        .bind(id.to_string())
        .bind(&sealed)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

fn audit_row(r: &AnyRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        at: parse_ts(r.get::<&str, _>("at"), "audit")?,
        actor: r.get("actor"),
        role: r.get("role"),
        on_behalf_of: r.get("on_behalf_of"),
        dossier: r.get("dossier"),
        document: r.get("document"),
        persons: r.get("persons"),
        action: r.get("action"),
        basis: r.get("basis"),
        outcome: r.get("outcome"),
        device: r.get("device"),
        detail: r.get("detail"),
    })
}
