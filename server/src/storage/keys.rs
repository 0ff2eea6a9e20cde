//! Encryption at rest (I6): every dossier has its own data key, and every stored block of its
//! content (a change, a snapshot, a sync state, a quarantined batch) is sealed with it by
//! AES-256-GCM (ring) under a fresh random 96-bit nonce, with the block's identity (table,
//! document, sequence or row key) as associated data, so a block moved to another row or
//! document no longer opens. Data keys are wrapped by the key-encryption key (KEK) from the
//! configuration — never stored — and kept in a key store apart from the data: for SQLite its
//! own file `regie-keys.sqlite3` beside `regie.sqlite3`, for PostgreSQL the schema `regie_keys`,
//! which a backup of the data leaves out (`pg_dump --exclude-schema=regie_keys`; DEPLOYMENT.md).
//! Destroying a dossier destroys its data key (crypto-shredding): the rows of that dossier in
//! any earlier backup of the data no longer decrypt. Rotating the KEK re-wraps the data keys
//! and re-encrypts no data. No key, wrapped or not, is ever formatted into a log, an error, a
//! metric or the audit log: the key types' `Debug` shows ids only. Free text a person typed
//! (reasons, purposes, summaries, the rights and breach registers' words, review notes) is
//! sealed the same way, as text (`s1:` and the sealed bytes in base64, [`Keys::seal_text`]):
//! under its dossier's key when it belongs to one, else under a key of its own scope in the
//! same key table (`signal:<id>`, `breach:<id>`, `access-reviews:<team>`; [`Owner`]), made on
//! first use, so that each can be shredded on its own when its retention ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use regie_core::id::DossierId;
use regie_sync_protocol::DocumentId;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use zeroize::Zeroizing;

use super::dialect::{self, Dialect};
use super::{Result, StorageError};
use crate::audit::{AuditAction, AuditEvent};

/// The first byte of every sealed block: the format (AES-256-GCM, nonce, ciphertext, tag).
const SEALED_V1: u8 = 1;
/// How much longer a sealed block is than its content: the format byte, the nonce and the tag.
pub const SEALED_OVERHEAD: usize = 1 + NONCE_LEN + 16;
/// The length of a key, in bytes.
const KEY_LEN: usize = 32;
/// The name of SQLite's key store, beside `regie.sqlite3`.
pub const SQLITE_KEY_FILE: &str = "regie-keys.sqlite3";
/// The development key-encryption key made in the data directory when none is configured.
pub const DEVELOPMENT_KEK_FILE: &str = "regie.kek";

/// Benchmarks only: stores opened while this is set keep their blocks as they come, to
/// measure what encryption costs (BENCHMARKS.md). Only the `bench` feature can set it.
static PLAIN_FOR_BENCHMARKS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Benchmarks only (the `bench` feature): stores opened after `plain(true)` keep their blocks
/// unencrypted, until `plain(false)`. What such a store writes, an encrypting store cannot
/// read, nor the reverse: only for fresh stores of a benchmark run.
#[cfg(feature = "bench")]
pub fn store_plain_for_benchmarks(plain: bool) {
    PLAIN_FOR_BENCHMARKS.store(plain, std::sync::atomic::Ordering::SeqCst);
}

/// Why a key or a sealed block cannot be used. Carries ids only, never key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The configured key-encryption key is not 64 hex digits.
    #[error("the key-encryption key must be 32 bytes written as 64 hex digits")]
    Malformed,
    /// The store was opened for its audit log only, without a key-encryption key.
    #[error("no key-encryption key configured")]
    NotConfigured,
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A data key is wrapped by another key-encryption key than the configured one.
    #[error(
        "data key {key_id} is wrapped by key-encryption key {wrapped_by}, but {configured} is configured"
    )]
    WrongKek {
        /// The data key.
        key_id: String,
        /// The KEK id its row names.
        wrapped_by: String,
        /// The configured KEK's id.
        configured: String,
    },
}

/// A key-encryption key: 32 bytes from the configuration; its id is a digest that reveals
/// nothing of it.
#[derive(Clone)]
pub struct Kek {
    id: String,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek({})", self.id)
    }
}

impl Kek {
    /// A KEK from its text form, 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> std::result::Result<Kek, KeyError> {
        let mut key = Zeroizing::new([0_u8; KEY_LEN]);
        hex::decode_to_slice(text.trim(), &mut key[..]).map_err(|_| KeyError::Malformed)?;
        let digest = Sha256::new()
            .chain_update(b"regie key-encryption key id\0")
            .chain_update(&key[..])
            .finalize();
        Ok(Kek {
            id: format!("kek-{}", hex::encode(&digest[..8])),
            key,
        })
    }

    /// Reads the KEK from `path` (64 hex digits).
    pub fn from_file(path: &Path) -> std::result::Result<Kek, KeyError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| KeyError::File {
                    path: path.display().to_string(),
                    source,
                })?,
            );
        Kek::from_hex(&text)
    }

    /// Reads the KEK from `path`, first writing a fresh random one there (readable by its owner
    /// only) if the file does not exist: the development default, in the data directory.
    pub fn from_file_or_new(path: &Path) -> std::result::Result<Kek, KeyError> {
        if !path.exists() {
            let mut key = Zeroizing::new([0_u8; KEY_LEN]);
            SystemRandom::new()
                .fill(&mut key[..])
                .expect("the system's random source works");
            let text = Zeroizing::new(hex::encode(&key[..]));
            write_private(path, text.as_bytes()).map_err(|source| KeyError::File {
                path: path.display().to_string(),
                source,
            })?;
        }
        Kek::from_file(path)
    }

    /// A fresh random KEK in `path`, refusing to overwrite a file (for rotation).
    pub fn generate(path: &Path) -> std::result::Result<Kek, KeyError> {
        if path.exists() {
            return Err(KeyError::File {
                path: path.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "exists already"),
            });
        }
        Kek::from_file_or_new(path)
    }

    /// Its id (`kek-` and 16 hex digits of a digest), what the key store records per wrap.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The AEAD key that wraps data and device keys.
    fn aead(&self) -> LessSafeKey {
        aes_key(&self.key)
    }
}

/// An AES-256-GCM key made of 32 bytes.
fn aes_key(key: &[u8; KEY_LEN]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key[..]).expect("32-byte key"))
}

/// Writes `bytes` to a new file at `path` that only its owner may read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// A dossier's data key, unwrapped, in memory only: its AES key schedule, expanded once rather
/// than for every block sealed or opened.
struct DataKey {
    id: String,
    aead: LessSafeKey,
}

impl DataKey {
    fn new(id: String, key: &[u8; KEY_LEN]) -> DataKey {
        DataKey {
            id,
            aead: aes_key(key),
        }
    }
}

/// The identity of a stored block, bound to it as associated data: the table and the row's
/// key columns, each length-prefixed so no two identities encode alike.
pub(crate) struct BlockId(Vec<u8>);

impl BlockId {
    /// The identity made of `table` and `parts`.
    pub(crate) fn new(table: &str, parts: &[&str]) -> BlockId {
        let mut out = Vec::with_capacity(64);
        for part in std::iter::once(table).chain(parts.iter().copied()) {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        BlockId(out)
    }

    /// A change: document and sequence number.
    pub(crate) fn change(doc: &str, seq: i64) -> BlockId {
        BlockId::new("changes", &[doc, &seq.to_string()])
    }

    /// A snapshot: document and the sequence number it reaches.
    pub(crate) fn snapshot(doc: &str, upto_seq: i64) -> BlockId {
        BlockId::new("snapshots", &[doc, &upto_seq.to_string()])
    }

    /// A sync state: the user, the device's storage id, the document.
    pub(crate) fn sync_state(user: &str, storage_id: &str, doc: &str) -> BlockId {
        BlockId::new("sync_states", &[user, storage_id, doc])
    }

    /// A quarantined batch: the document and its change hashes.
    pub(crate) fn quarantine(doc: &str, hashes: &str) -> BlockId {
        BlockId::new("quarantine", &[doc, hashes])
    }

    /// A free text: its table, its column and the row's key columns, so a text moved to
    /// another column or row no longer opens.
    pub(crate) fn text(table: &str, column: &str, row: &[&str]) -> BlockId {
        let mut parts = Vec::with_capacity(row.len() + 1);
        parts.push(column);
        parts.extend_from_slice(row);
        BlockId::new(table, &parts)
    }
}

/// The prefix of a sealed text: format 1, then the sealed block ([`SEALED_V1`]) in base64.
const SEALED_TEXT_V1: &str = "s1:";

/// What a sealed text reads as once its key was destroyed (a rights request or a signal of a
/// destroyed dossier, kept in its register as proof that it was answered): the words are gone,
/// the row's ids, codes and dates stay.
pub const DESTROYED_TEXT: &str = "(destroyed with its key)";

/// Whose key seals a free text (I6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The dossier it belongs to: shredded with the dossier's key.
    Dossier(DossierId),
    /// Text of no dossier, under a key of its own scope in the key table (its `dossier` column
    /// holds the scope), made on first use: `signal:<id>` (a signal that is no dossier),
    /// `breach:<id>` (one entry of the breach register), `access-reviews:<team>` (a team's
    /// review notes, which span dossiers). One key per signal and per breach, so each can be
    /// shredded when its own retention ends; a team's notes share one.
    Own(String),
}

impl Owner {
    /// A signal's text: its dossier's key once it became one, else the signal's own.
    pub(crate) fn signal(id: &str, dossier: Option<DossierId>) -> Owner {
        match dossier {
            Some(d) => Owner::Dossier(d),
            None => Owner::Own(format!("signal:{id}")),
        }
    }

    /// A breach register entry's text.
    pub(crate) fn breach(id: &str) -> Owner {
        Owner::Own(format!("breach:{id}"))
    }

    /// A team's access-review notes.
    pub(crate) fn access_reviews(team: &str) -> Owner {
        Owner::Own(format!("access-reviews:{team}"))
    }
}

/// The data keys of every dossier: the key store's rows, unwrapped on first use and kept in
/// memory, and which dossier each document belongs to.
pub(crate) struct Keys {
    /// The key store's pool: its own SQLite file, or the data's PostgreSQL pool.
    pool: AnyPool,
    /// The data's pool, where documents name their dossier.
    data: AnyPool,
    /// The key table's name as that pool sees it.
    table: &'static str,
    dialect: Dialect,
    /// None when the store was opened for its audit log only.
    kek: Option<Kek>,
    random: SystemRandom,
    /// Unwrapped keys by scope: a dossier's id, or an own scope ([`Owner::Own`]).
    keys: RwLock<HashMap<String, Arc<DataKey>>>,
    dossier_of: RwLock<HashMap<DocumentId, DossierId>>,
    /// Benchmarks only: blocks stored as they come ([`store_plain_for_benchmarks`]).
    pub(crate) plain: bool,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({})", self.kek_id())
    }
}

impl Keys {
    /// Opens the key store of `backend` (creating SQLite's file and table if missing; on
    /// PostgreSQL the migrations made the schema), with `kek`.
    pub(crate) async fn open(
        backend: &dialect::Backend,
        data_pool: &AnyPool,
        kek: Option<Kek>,
    ) -> Result<Keys> {
        let (pool, table, dialect) = match backend {
            dialect::Backend::Sqlite(dir) => {
                let url = dialect::sqlite_url(&dir.join(SQLITE_KEY_FILE));
                let pool = AnyPoolOptions::new()
                    .max_connections(2)
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
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS data_keys (
                        dossier      TEXT PRIMARY KEY,
                        key_id       TEXT NOT NULL UNIQUE,
                        wrapped      BLOB,
                        kek_id       TEXT NOT NULL,
                        created_at   TEXT NOT NULL,
                        destroyed_at TEXT
                    )",
                )
                .execute(&pool)
                .await?;
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS device_keys (
                        user_id      TEXT NOT NULL,
                        storage_id   TEXT NOT NULL,
                        key_id       TEXT NOT NULL UNIQUE,
                        wrapped      BLOB,
                        kek_id       TEXT NOT NULL,
                        created_at   TEXT NOT NULL,
                        destroyed_at TEXT,
                        PRIMARY KEY (user_id, storage_id)
                    )",
                )
                .execute(&pool)
                .await?;
                (pool, "data_keys", Dialect::Sqlite)
            }
            dialect::Backend::Postgres(_) => {
                (data_pool.clone(), "regie_keys.data_keys", Dialect::Postgres)
            }
        };
        Ok(Keys {
            data: data_pool.clone(),
            pool,
            table,
            dialect,
            kek,
            random: SystemRandom::new(),
            keys: RwLock::new(HashMap::new()),
            dossier_of: RwLock::new(HashMap::new()),
            plain: PLAIN_FOR_BENCHMARKS.load(std::sync::atomic::Ordering::SeqCst),
        })
    }

    /// The configured KEK's id (`none` when opened for the audit log only).
    pub(crate) fn kek_id(&self) -> &str {
        self.kek.as_ref().map_or("none", Kek::id)
    }

    fn kek(&self) -> Result<&Kek> {
        self.kek
            .as_ref()
            .ok_or(StorageError::Key(KeyError::NotConfigured))
    }

    fn sql(&self, template: &str) -> sqlx::AssertSqlSafe<String> {
        let devices = match self.dialect {
            Dialect::Sqlite => "device_keys",
            Dialect::Postgres => "regie_keys.device_keys",
        };
        sqlx::AssertSqlSafe(
            template
                .replace("{keys}", self.table)
                .replace("{device_keys}", devices),
        )
    }

    /// The device key of `user`'s device `storage` (R29), made on first release; `Err` with
    /// the key's id when it was destroyed (the device was reported lost): never released
    /// again. Returns the key's id and the key.
    pub(crate) async fn device_key(
        &self,
        user: &str,
        storage: &str,
        at: &str,
    ) -> Result<std::result::Result<(String, Zeroizing<[u8; KEY_LEN]>), String>> {
        let key = self.fresh_key()?;
        let key_id = format!("dvk-{}", uuid::Uuid::new_v4().simple());
        let block = BlockId::new("device_keys", &[user, storage, &key_id]);
        let aead = self.kek()?.aead();
        let wrapped = self.seal_with(&aead, &block, &key[..])?;
        sqlx::query(self.sql(
            "INSERT INTO {device_keys} (user_id, storage_id, key_id, wrapped, kek_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        ))
        .bind(user)
        .bind(storage)
        .bind(&key_id)
        .bind(&wrapped)
        .bind(self.kek()?.id())
        .bind(at)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(self.sql(
            "SELECT key_id, wrapped, kek_id, destroyed_at FROM {device_keys} \
             WHERE user_id = $1 AND storage_id = $2",
        ))
        .bind(user)
        .bind(storage)
        .fetch_one(&self.pool)
        .await?;
        let stored_id: String = row.get(0);
        if row.get::<Option<String>, _>(3).is_some() {
            return Ok(Err(stored_id));
        }
        if stored_id == key_id {
            return Ok(Ok((key_id, key)));
        }
        self.check_kek(&stored_id, row.get(2))?;
        let block = BlockId::new("device_keys", &[user, storage, &stored_id]);
        let wrapped: Vec<u8> = row.get(1);
        let key = open_key(&aead, &block, &wrapped, "device_keys", &stored_id)?;
        Ok(Ok((stored_id, key)))
    }

    /// Destroys the device key of `user`'s device `storage` (reported lost), or records it
    /// destroyed if none was ever released, so none ever is; returns its id.
    pub(crate) async fn destroy_device_key(
        &self,
        user: &str,
        storage: &str,
        at: &str,
    ) -> Result<String> {
        let key_id = format!("dvk-{}", uuid::Uuid::new_v4().simple());
        sqlx::query(self.sql(
            "INSERT INTO {device_keys} (user_id, storage_id, key_id, wrapped, kek_id, created_at, destroyed_at) \
             VALUES ($1, $2, $3, NULL, $4, $5, $5) \
             ON CONFLICT (user_id, storage_id) DO UPDATE SET wrapped = NULL, \
             destroyed_at = COALESCE({device_keys}.destroyed_at, excluded.destroyed_at)",
        ))
        .bind(user)
        .bind(storage)
        .bind(&key_id)
        .bind(self.kek_id())
        .bind(at)
        .execute(&self.pool)
        .await?;
        self.checkpoint().await?;
        Ok(sqlx::query(
            self.sql("SELECT key_id FROM {device_keys} WHERE user_id = $1 AND storage_id = $2"),
        )
        .bind(user)
        .bind(storage)
        .fetch_one(&self.pool)
        .await?
        .get(0))
    }

    /// Makes `dossier`'s data key and stores it wrapped; returns its id. A dossier that has
    /// (or had) a key keeps it: the existing id is returned, and a destroyed key is never made
    /// again.
    pub(crate) async fn create(&self, dossier: DossierId, at: &str) -> Result<String> {
        self.create_scope(&dossier.to_string(), at).await
    }

    /// [`Keys::create`] for any scope: a dossier's id or an own scope ([`Owner::Own`]).
    async fn create_scope(&self, scope: &str, at: &str) -> Result<String> {
        let key = self.fresh_key()?;
        let key_id = format!("dk-{}", uuid::Uuid::new_v4().simple());
        let wrapped = self.wrap(self.kek()?, scope, &key_id, &key[..])?;
        sqlx::query(self.sql(
            "INSERT INTO {keys} (dossier, key_id, wrapped, kek_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        ))
        .bind(scope)
        .bind(&key_id)
        .bind(&wrapped)
        .bind(self.kek()?.id())
        .bind(at)
        .execute(&self.pool)
        .await?;
        let stored = self.scope_key_id(scope).await?.ok_or(StorageError::NoKey)?;
        if stored == key_id {
            self.keys
                .write()
                .insert(scope.to_owned(), Arc::new(DataKey::new(key_id, &key)));
        }
        Ok(stored)
    }

    /// [`Keys::create`], and the audit row that records it (to commit with the dossier).
    pub(crate) async fn create_for(
        &self,
        dossier: DossierId,
        at: time::OffsetDateTime,
    ) -> Result<AuditEvent> {
        let key_id = self.create(dossier, &super::ts(at)).await?;
        Ok(key_event(
            at,
            dossier,
            &format!("data key {key_id} created"),
        ))
    }

    /// The id of `dossier`'s data key, destroyed or not; `None` when it never had one.
    pub(crate) async fn key_id(&self, dossier: DossierId) -> Result<Option<String>> {
        self.scope_key_id(&dossier.to_string()).await
    }

    /// The id of `scope`'s key, destroyed or not; `None` when it never had one.
    async fn scope_key_id(&self, scope: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query(self.sql("SELECT key_id FROM {keys} WHERE dossier = $1"))
                .bind(scope)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.get(0)),
        )
    }

    /// Destroys `dossier`'s data key: the wrapped key is overwritten (SQLite: `secure_delete`,
    /// then the key store's WAL is truncated), its id and the time stay. Returns the key's id.
    pub(crate) async fn destroy(&self, dossier: DossierId, at: &str) -> Result<Option<String>> {
        self.destroy_scope(&dossier.to_string(), at).await
    }

    /// [`Keys::destroy`] for any scope.
    pub(crate) async fn destroy_scope(&self, scope: &str, at: &str) -> Result<Option<String>> {
        self.keys.write().remove(scope);
        sqlx::query(self.sql(
            "UPDATE {keys} SET wrapped = NULL, destroyed_at = $1 \
             WHERE dossier = $2 AND destroyed_at IS NULL",
        ))
        .bind(at)
        .bind(scope)
        .execute(&self.pool)
        .await?;
        self.checkpoint().await?;
        self.scope_key_id(scope).await
    }

    /// Destroys the keys of dossiers the data store says were destroyed but whose key
    /// survived (a stop between the two commits); returns how many.
    pub(crate) async fn destroy_leftovers(
        &self,
        destroyed: &[(DossierId, String)],
    ) -> Result<usize> {
        if destroyed.is_empty() {
            return Ok(0);
        }
        let alive: std::collections::HashSet<String> =
            sqlx::query(self.sql("SELECT dossier FROM {keys} WHERE destroyed_at IS NULL"))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
        let mut n = 0;
        for (dossier, at) in destroyed {
            if alive.contains(&dossier.to_string()) {
                self.destroy(*dossier, at).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Re-wraps every live data key from the configured KEK to `new`, in one transaction of
    /// the key store; the data is not touched. Returns how many keys were re-wrapped.
    pub(crate) async fn rewrap(&self, new: &Kek) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows =
            sqlx::query(self.sql(
                "SELECT dossier, key_id, wrapped, kek_id FROM {keys} WHERE destroyed_at IS NULL",
            ))
            .fetch_all(&mut *tx)
            .await?;
        let mut n = 0;
        for r in &rows {
            let scope: String = r.get(0);
            let key_id: String = r.get(1);
            let wrapped: Vec<u8> = r.get(2);
            let kek_id: String = r.get(3);
            if kek_id == new.id() {
                continue;
            }
            self.check_kek(&key_id, &kek_id)?;
            let key = self.unwrap(&scope, &key_id, &wrapped)?;
            let rewrapped = self.wrap(new, &scope, &key_id, &key[..])?;
            sqlx::query(self.sql("UPDATE {keys} SET wrapped = $1, kek_id = $2 WHERE dossier = $3"))
                .bind(&rewrapped)
                .bind(new.id())
                .bind(&scope)
                .execute(&mut *tx)
                .await?;
            n += 1;
        }
        let rows = sqlx::query(self.sql(
            "SELECT user_id, storage_id, key_id, wrapped, kek_id FROM {device_keys} \
             WHERE destroyed_at IS NULL",
        ))
        .fetch_all(&mut *tx)
        .await?;
        let old = self.kek()?.aead();
        let fresh = new.aead();
        for r in &rows {
            let (user, storage, key_id): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            let wrapped: Vec<u8> = r.get(3);
            let kek_id: String = r.get(4);
            if kek_id == new.id() {
                continue;
            }
            self.check_kek(&key_id, &kek_id)?;
            let block = BlockId::new("device_keys", &[&user, &storage, &key_id]);
            let key = open_key(&old, &block, &wrapped, "device_keys", &key_id)?;
            let rewrapped = self.seal_with(&fresh, &block, &key[..])?;
            sqlx::query(self.sql(
                "UPDATE {device_keys} SET wrapped = $1, kek_id = $2 WHERE user_id = $3 AND storage_id = $4",
            ))
            .bind(&rewrapped)
            .bind(new.id())
            .bind(&user)
            .bind(&storage)
            .execute(&mut *tx)
            .await?;
            n += 1;
        }
        tx.commit().await?;
        self.checkpoint().await?;
        Ok(n)
    }

    fn check_kek(&self, key_id: &str, wrapped_by: &str) -> Result<()> {
        let configured = self.kek()?.id();
        if wrapped_by != configured {
            return Err(StorageError::Key(KeyError::WrongKek {
                key_id: key_id.to_owned(),
                wrapped_by: wrapped_by.to_owned(),
                configured: configured.to_owned(),
            }));
        }
        Ok(())
    }

    fn wrap(&self, kek: &Kek, scope: &str, key_id: &str, key: &[u8]) -> Result<Vec<u8>> {
        let aad = BlockId::new("data_keys", &[scope, key_id]);
        self.seal_with(&kek.aead(), &aad, key)
    }

    fn unwrap(
        &self,
        scope: &str,
        key_id: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        let aad = BlockId::new("data_keys", &[scope, key_id]);
        open_key(&self.kek()?.aead(), &aad, wrapped, "data_keys", key_id)
    }

    /// A new random key.
    fn fresh_key(&self) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        let mut key = Zeroizing::new([0_u8; KEY_LEN]);
        self.random
            .fill(&mut key[..])
            .map_err(|_| StorageError::Crypto("no random bytes"))?;
        Ok(key)
    }

    fn seal_with(&self, aead: &LessSafeKey, aad: &BlockId, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0_u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| StorageError::Crypto("no random bytes"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plain.len() + 16);
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let mut body = out.split_off(1 + NONCE_LEN);
        aead.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad.0[..]),
            &mut body,
        )
        .map_err(|_| StorageError::Crypto("sealing failed"))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The dossier of `doc`: remembered, else read from the data store — on a connection of
    /// its own, never inside the caller's transaction, which on SQLite must begin with its write
    /// (one that read first cannot take the write lock once another connection has written).
    pub(crate) async fn dossier_of(&self, doc: DocumentId) -> Result<DossierId> {
        if let Some(d) = self.dossier_of.read().get(&doc) {
            return Ok(*d);
        }
        let row = sqlx::query("SELECT dossier FROM documents WHERE id = $1")
            .bind(doc.to_string())
            .fetch_optional(&self.data)
            .await?
            .ok_or(StorageError::NoKey)?;
        let dossier: DossierId = super::parse(row.get::<&str, _>(0), "documents")?;
        self.remember(doc, dossier);
        Ok(dossier)
    }

    /// Remembers that `doc` belongs to `dossier` (a document never changes dossier).
    pub(crate) fn remember(&self, doc: DocumentId, dossier: DossierId) {
        self.dossier_of.write().insert(doc, dossier);
    }

    /// Forgets the documents of `dossier` (destroyed).
    fn forget(&self, dossier: DossierId) {
        self.dossier_of.write().retain(|_, d| *d != dossier);
    }

    async fn key(&self, dossier: DossierId) -> Result<Arc<DataKey>> {
        self.scope_key(&dossier.to_string()).await
    }

    /// The key of `scope` (a dossier's id or an own scope), unwrapped once and remembered.
    async fn scope_key(&self, scope: &str) -> Result<Arc<DataKey>> {
        if let Some(k) = self.keys.read().get(scope) {
            return Ok(k.clone());
        }
        let row = sqlx::query(
            self.sql("SELECT key_id, wrapped, kek_id, destroyed_at FROM {keys} WHERE dossier = $1"),
        )
        .bind(scope)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StorageError::NoKey)?;
        let key_id: String = row.get(0);
        let destroyed: Option<String> = row.get(3);
        if destroyed.is_some() {
            return Err(StorageError::KeyDestroyed(key_id));
        }
        self.check_kek(&key_id, row.get(2))?;
        let wrapped: Vec<u8> = row.get(1);
        let key = self.unwrap(scope, &key_id, &wrapped)?;
        let key = Arc::new(DataKey::new(key_id, &key));
        self.keys.write().insert(scope.to_owned(), key.clone());
        Ok(key)
    }

    /// Seals `plain` with `dossier`'s key, bound to `block`.
    pub(crate) async fn seal(
        &self,
        dossier: DossierId,
        block: &BlockId,
        plain: &[u8],
    ) -> Result<Vec<u8>> {
        if self.plain {
            return Ok(plain.to_vec());
        }
        let key = self.key(dossier).await?;
        self.seal_with(&key.aead, block, plain)
    }

    /// Opens a block sealed with `dossier`'s key for `block`. A block that does not open (altered,
    /// moved, or sealed with another key) is reported as tampered with, naming only `table` and
    /// `row` (ids), and never returned.
    pub(crate) async fn unseal(
        &self,
        dossier: DossierId,
        block: &BlockId,
        sealed: &[u8],
        table: &'static str,
        row: impl FnOnce() -> String,
    ) -> Result<Vec<u8>> {
        if self.plain {
            return Ok(sealed.to_vec());
        }
        let key = self.key(dossier).await?;
        open_with(&key.aead, block, sealed).ok_or_else(|| tampered(table, row(), &key))
    }

    /// The key `owner` names; an own scope's is made on first use.
    async fn owner_key(&self, owner: &Owner, make: bool) -> Result<Arc<DataKey>> {
        match owner {
            Owner::Dossier(d) => self.key(*d).await,
            Owner::Own(scope) => match self.scope_key(scope).await {
                Err(StorageError::NoKey) if make => {
                    let at = super::ts(time::OffsetDateTime::now_utc());
                    self.create_scope(scope, &at).await?;
                    self.scope_key(scope).await
                }
                other => other,
            },
        }
    }

    /// Seals the free text `text` with `owner`'s key, bound to `field`
    /// ([`BlockId::text`]), as text: `s1:` and the sealed block in base64. Once that key was
    /// destroyed nothing of `text` is stored (an empty text, read as [`DESTROYED_TEXT`]).
    pub(crate) async fn seal_text(
        &self,
        owner: &Owner,
        field: &BlockId,
        text: &str,
    ) -> Result<String> {
        use base64::Engine as _;
        if self.plain {
            return Ok(text.to_owned());
        }
        let key = match self.owner_key(owner, true).await {
            // Words about a dossier already destroyed (the decision on the erasure that
            // destroyed it): kept by no one, they read as `DESTROYED_TEXT`.
            Err(StorageError::KeyDestroyed(_)) => return Ok(String::new()),
            key => key?,
        };
        let sealed = self.seal_with(&key.aead, field, text.as_bytes())?;
        Ok(format!(
            "{SEALED_TEXT_V1}{}",
            base64::engine::general_purpose::STANDARD.encode(sealed)
        ))
    }

    /// [`Keys::seal_text`] of an optional text: `None` stays `None`.
    pub(crate) async fn seal_opt_text(
        &self,
        owner: &Owner,
        field: &BlockId,
        text: Option<&str>,
    ) -> Result<Option<String>> {
        match text {
            Some(t) => Ok(Some(self.seal_text(owner, field, t).await?)),
            None => Ok(None),
        }
    }

    /// Opens a text sealed by [`Keys::seal_text`]. Once `owner`'s key was destroyed it reads as
    /// [`DESTROYED_TEXT`]; a text that does not open (altered, moved, plain where a sealed one
    /// belongs) is reported as tampered with, naming only `table` and `row`, and not returned.
    pub(crate) async fn open_text(
        &self,
        owner: &Owner,
        field: &BlockId,
        stored: &str,
        table: &'static str,
        row: impl FnOnce() -> String,
    ) -> Result<String> {
        use base64::Engine as _;
        if self.plain {
            return Ok(stored.to_owned());
        }
        let key = match self.owner_key(owner, false).await {
            Err(StorageError::KeyDestroyed(_)) => return Ok(DESTROYED_TEXT.to_owned()),
            key => key?,
        };
        stored
            .strip_prefix(SEALED_TEXT_V1)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| open_with(&key.aead, field, &b))
            .and_then(|plain| String::from_utf8(plain).ok())
            .ok_or_else(|| tampered(table, row(), &key))
    }

    /// Whether `stored` is a text sealed for `field` that opens with `owner`'s live key (the
    /// one-time sealing leaves such a text as it is).
    pub(crate) async fn opens(&self, owner: &Owner, field: &BlockId, stored: &str) -> bool {
        use base64::Engine as _;
        let Ok(key) = self.owner_key(owner, false).await else {
            return false;
        };
        stored
            .strip_prefix(SEALED_TEXT_V1)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| open_with(&key.aead, field, &b))
            .is_some()
    }

    /// [`Keys::open_text`] of an optional text: `None` stays `None`.
    pub(crate) async fn open_opt_text(
        &self,
        owner: &Owner,
        field: &BlockId,
        stored: Option<&str>,
        table: &'static str,
        row: impl FnOnce() -> String,
    ) -> Result<Option<String>> {
        match stored {
            Some(s) => Ok(Some(self.open_text(owner, field, s, table, row).await?)),
            None => Ok(None),
        }
    }

    /// After a dossier's destruction: its key and documents leave memory.
    pub(crate) fn forget_dossier(&self, dossier: DossierId) {
        self.keys.write().remove(&dossier.to_string());
        self.forget(dossier);
    }

    /// Whether `dossier` has a live key in memory or in the key store.
    pub(crate) async fn has_key(&self, dossier: DossierId) -> Result<bool> {
        match self.key(dossier).await {
            Ok(_) => Ok(true),
            Err(StorageError::NoKey) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Checkpoints the key store's WAL into its file (SQLite), for raw scans and backups.
    pub(crate) async fn checkpoint(&self) -> Result<()> {
        if self.dialect == Dialect::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Closes the key store's own pool (SQLite).
    pub(crate) async fn close(&self) {
        if self.dialect == Dialect::Sqlite {
            self.pool.close().await;
        }
    }
}

/// The audit row of something done to `dossier`'s data key: ids only.
pub(crate) fn key_event(at: time::OffsetDateTime, dossier: DossierId, what: &str) -> AuditEvent {
    let mut ev = AuditEvent::new(at, "regie-server", "system", AuditAction::Key);
    ev.dossier = Some(dossier.to_string());
    ev.detail = Some(what.to_owned());
    ev
}

/// A block of `table`'s `row` that failed its integrity check under `key`: logged (ids only),
/// counted, and the error that reports it.
fn tampered(table: &'static str, row: String, key: &DataKey) -> StorageError {
    tracing::error!(
        table,
        row = %row,
        key = %key.id,
        "a stored block failed its integrity check: not served"
    );
    crate::metrics::tampered_block(table);
    StorageError::Tampered { table, row }
}

/// Opens `sealed` (format [`SEALED_V1`]) with `aead` for `block`; `None` when it does not open.
fn open_with(aead: &LessSafeKey, block: &BlockId, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 1 + NONCE_LEN || sealed[0] != SEALED_V1 {
        return None;
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).ok()?;
    let mut body = sealed[1 + NONCE_LEN..].to_vec();
    let plain = aead
        .open_in_place(nonce, Aad::from(&block.0[..]), &mut body)
        .ok()?;
    let n = plain.len();
    body.truncate(n);
    Some(body)
}

/// Opens a wrapped key (of `table`'s row `row`) with `aead`: 32 bytes, or tampered with.
fn open_key(
    aead: &LessSafeKey,
    block: &BlockId,
    wrapped: &[u8],
    table: &'static str,
    row: &str,
) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let plain = Zeroizing::new(open_with(aead, block, wrapped).unwrap_or_default());
    if plain.len() != KEY_LEN {
        return Err(StorageError::Tampered {
            table,
            row: row.to_owned(),
        });
    }
    let mut key = Zeroizing::new([0_u8; KEY_LEN]);
    key.copy_from_slice(&plain);
    Ok(key)
}

/// Kept so the development default is named in one place.
pub(crate) fn development_kek(dir: &Path) -> PathBuf {
    dir.join(DEVELOPMENT_KEK_FILE)
}
