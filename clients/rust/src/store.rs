//! The device store: one SQLite file (`device.sqlite3`) per device profile, through sqlx with
//! embedded migrations. It holds the caseload's documents as a compacted snapshot plus
//! incremental saves, each document's sync state and the server's last known heads, the user's
//! claims (not the token), offline reads waiting for upload, purge records and rejection
//! reports. Every block of dossier content among them — snapshots, saves, sync states, heads,
//! offline reads, rejection reports — is sealed with the device key (`crate::seal`), so the
//! store reads and writes content only while unlocked; what stays plaintext is ids and the
//! listing (dossier and document ids, keys, access, basis, district, team, closed), purge
//! records, the claims and server URL, times. Every change that must stay consistent (a
//! document's bytes with its sync state, a purge with its record) is one transaction, and the
//! file is in WAL mode, so killing the process at any moment leaves either the old or the new
//! state. `secure_delete` overwrites what a purge deletes, and each purge ends with a checkpoint
//! that truncates the write-ahead log, which still held the purged pages' earlier (sealed)
//! images: a key obtained later opens nothing of a purged document.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use automerge::sync;
use automerge::{Automerge, ChangeHash};
use regie_core::id::{DistrictId, DocumentKey, DossierId, TeamId};
use regie_core::policy::{Basis, Mode};
use regie_core::principal::Claims;
use regie_sync_protocol::DocumentId;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::error::{ClientError, LockReason, Result};
use crate::seal::{Block, DeviceKey, Lock};

/// Incremental saves of one document folded into its snapshot after this many.
pub const COMPACT_AFTER: i64 = 64;

/// The file name of the store inside a profile directory.
pub const STORE_FILE: &str = "device.sqlite3";

/// One document of the caseload as the server listed it (no content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentInfo {
    /// The automerge-repo document id.
    pub id: DocumentId,
    /// Its dossier.
    pub dossier: DossierId,
    /// Its key in the dossier.
    pub key: DocumentKey,
    /// Read-only or read-write for this user.
    pub access: Mode,
    /// Why this user may have it.
    pub basis: Basis,
    /// The dossier's district.
    pub district: DistrictId,
    /// The dossier's team.
    pub team: TeamId,
    /// Whether the dossier is closed (R18): read, never written.
    #[serde(default)]
    pub closed: bool,
}

/// The login and device identity of a profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// This device's storage id (stable for the profile's life).
    pub storage_id: String,
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub server_url: Option<String>,
    /// The id of the device key the store's content is sealed with (none before the first
    /// unlock). The token itself is never stored: it is what fetches the key.
    pub sealed_by: Option<String>,
    /// The token's claims.
    pub claims: Option<Claims>,
    /// When the token expires, if it says.
    pub token_expires_at: Option<OffsetDateTime>,
    /// When the last sync completed.
    pub last_sync_at: Option<OffsetDateTime>,
}

/// A local open of a document waiting to be uploaded to the server's audit log (I3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineRead {
    /// A random id (lets the server and the device speak of one event).
    pub id: String,
    /// When the document was opened, by the device clock.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who opened it.
    pub user: String,
    /// The dossier.
    pub dossier: DossierId,
    /// The document key.
    pub key: DocumentKey,
    /// The document id.
    pub document_id: DocumentId,
}

/// Proof that a document was purged from the device (R28), without content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeRecord {
    /// When, by the device clock.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The purged document.
    pub document_id: DocumentId,
    /// Its dossier.
    pub dossier: DossierId,
    /// Its key.
    pub key: DocumentKey,
    /// Why: `revoked:<reason>`, `replaced` or `unavailable`.
    pub reason: String,
}

/// A batch the server rejected and what the rebase made of it (issue 5), without content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionRecord {
    /// When, by the device clock.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The document.
    pub document_id: DocumentId,
    /// Its dossier.
    pub dossier: DossierId,
    /// Its key.
    pub key: DocumentKey,
    /// The server's reason code.
    pub reason: String,
    /// The server's detail.
    pub detail: Option<String>,
    /// The rejected change hashes (hex).
    pub changes: Vec<String>,
    /// How many local edits were replayed as new changes.
    pub replayed: usize,
    /// The edits that could not be replayed: `path: reason` each.
    pub dropped: Vec<String>,
}

/// What the store holds of one document, opened with the device key (for leak audits: every
/// byte of content it keeps).
#[derive(Debug, Clone)]
pub struct StoredBytes {
    /// The document.
    pub document_id: DocumentId,
    /// The snapshot, if compacted.
    pub snapshot: Option<Vec<u8>>,
    /// The incremental saves after it.
    pub chunks: Vec<Vec<u8>>,
    /// The encoded sync state, if any.
    pub sync_state: Option<Vec<u8>>,
}

/// A loaded document with its sync bookkeeping.
pub(crate) struct Loaded {
    pub(crate) info: DocumentInfo,
    pub(crate) doc: Automerge,
    pub(crate) state: sync::State,
    pub(crate) server_heads: Vec<ChangeHash>,
    /// How many incremental saves follow the snapshot.
    pub(crate) chunk_count: i64,
}

/// What to write for one document in one transaction.
#[derive(Default)]
pub(crate) struct DocumentWrite {
    /// An incremental save to append.
    pub(crate) chunk: Option<Vec<u8>>,
    /// A full save that replaces the snapshot and every chunk (compaction or reset).
    pub(crate) snapshot: Option<Vec<u8>>,
    /// The new sync state (`Some(None)` deletes it).
    pub(crate) state: Option<Option<Vec<u8>>>,
    /// The server's heads as now known.
    pub(crate) server_heads: Option<Vec<ChangeHash>>,
}

/// The device store of one profile. Clones share the pool and the lock.
#[derive(Clone)]
pub struct DeviceStore {
    pool: SqlitePool,
    lock: Arc<Lock>,
}

pub(crate) fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("UTC timestamps always format")
}

fn parse_ts(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| corrupt("timestamp", e))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Corrupt(what.to_owned(), e.to_string())
}

fn parse<T: FromStr>(s: &str, what: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| corrupt(what, e))
}

/// The serde name of a unit enum value (`read`, `assignment`, …).
pub(crate) fn code<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn from_code<T: for<'de> Deserialize<'de>>(s: &str, what: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|e| corrupt(what, e))
}

pub(crate) fn heads_text(heads: &[ChangeHash]) -> String {
    heads
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_heads(s: &str) -> Result<Vec<ChangeHash>> {
    s.split(',')
        .filter(|h| !h.is_empty())
        .map(|h| parse(h, "heads"))
        .collect()
}

fn split(s: &str, sep: char) -> Vec<String> {
    s.split(sep)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Inserts an offline read, sealed by its id, in `tx`.
async fn insert_read(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    key: &DeviceKey,
    ev: &OfflineRead,
) -> Result<()> {
    let json = Zeroizing::new(serde_json::to_vec(ev).expect("a read serializes"));
    sqlx::query("INSERT INTO reads (id, sealed) VALUES (?, ?)")
        .bind(&ev.id)
        .bind(key.seal(&Block::read(&ev.id), &json)?)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Inserts a rejection report, sealed under a new random id, in `tx`.
async fn insert_rejection(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    key: &DeviceKey,
    r: &RejectionRecord,
) -> Result<()> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let json = Zeroizing::new(serde_json::to_vec(r).expect("a report serializes"));
    sqlx::query("INSERT INTO rejection_reports (id, sealed) VALUES (?, ?)")
        .bind(&id)
        .bind(key.seal(&Block::rejection(&id), &json)?)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn info_row(r: &SqliteRow) -> Result<DocumentInfo> {
    Ok(DocumentInfo {
        id: parse(r.get::<&str, _>("id"), "document id")?,
        dossier: parse(r.get::<&str, _>("dossier"), "dossier id")?,
        key: parse(r.get::<&str, _>("key"), "document key")?,
        access: from_code(r.get("access"), "access")?,
        basis: from_code(r.get("basis"), "basis")?,
        district: parse(r.get::<&str, _>("district"), "district")?,
        team: parse(r.get::<&str, _>("team"), "team")?,
        closed: r.get("closed"),
    })
}

impl DeviceStore {
    /// Opens (creating if needed) the store of the profile in `dir` and migrates it.
    pub async fn open(dir: &Path) -> Result<DeviceStore> {
        std::fs::create_dir_all(dir).map_err(|source| ClientError::ProfileDir {
            path: dir.display().to_string(),
            source,
        })?;
        let options = SqliteConnectOptions::new()
            .filename(dir.join(STORE_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode survives a killed process without losing a commit.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // A purge overwrites the freed pages instead of leaving content in the file.
            .pragma("secure_delete", "ON")
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        sqlx::query("INSERT OR IGNORE INTO profile (id, storage_id) VALUES (1, ?)")
            .bind(format!("device-{}", uuid::Uuid::new_v4().simple()))
            .execute(&pool)
            .await?;
        let store = DeviceStore {
            pool,
            lock: Lock::new(),
        };
        // A migration that wiped a legacy token left its page's old image in the log.
        store.checkpoint().await?;
        Ok(store)
    }

    /// Sets how long the store stays unlocked without being used.
    pub fn set_idle_lock(&self, idle: Duration) {
        self.lock.set_idle(idle);
    }

    /// Whether the store is locked (no device key in memory).
    pub fn is_locked(&self) -> bool {
        self.lock.is_locked()
    }

    /// Drops the device key and token from memory now.
    pub fn lock(&self, reason: LockReason) {
        self.lock.lock(reason);
    }

    /// The device key, counting as a use of the store; [`ClientError::Locked`] when locked.
    pub(crate) fn key(&self) -> Result<Arc<DeviceKey>> {
        self.lock.key()
    }

    /// The token the key was released for (in memory only).
    pub(crate) fn token(&self) -> Result<zeroize::Zeroizing<String>> {
        self.lock.token()
    }

    /// Unlocks the store with the device key the server released for `token`. A store sealed
    /// by no key yet (new, or from before encryption) has its plaintext content sealed now; a
    /// store sealed by another key (another user's, or a key the server no longer has) cannot
    /// be opened, so its content is purged. Returns the purges.
    pub(crate) async fn unlock(
        &self,
        key: DeviceKey,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<PurgeRecord>> {
        let sealed_by = self.profile().await?.sealed_by;
        let mut purged = Vec::new();
        match sealed_by.as_deref() {
            None => self.seal_legacy(&key).await?,
            Some(id) if id == key.id() => {}
            Some(_) => {
                for info in self.documents().await? {
                    purged.push(self.purge(&info, "sealed_by_another_key", now).await?);
                }
                let mut tx = self.pool.begin().await?;
                sqlx::query("UPDATE profile SET sealed_by = ? WHERE id = 1")
                    .bind(key.id())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM reads").execute(&mut *tx).await?;
                sqlx::query("DELETE FROM rejection_reports")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                self.checkpoint().await?;
            }
        }
        self.lock.unlock(key, token);
        Ok(purged)
    }

    /// Seals every plaintext block a store from before encryption holds (documents, saves,
    /// sync states, heads, offline reads, rejection reports) in one transaction, drops the
    /// legacy tables (the emptied `server_heads` column stays: a column dropped at run time
    /// would leave the pool's cached `SELECT *` statements reading the wrong columns), then rewrites the file (`VACUUM`) and truncates the log, so
    /// no plaintext page image survives anywhere in the store's files.
    async fn seal_legacy(&self, key: &DeviceKey) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // The write comes first: a SQLite transaction that read first cannot take the write
        // lock once another connection has written.
        sqlx::query("UPDATE profile SET sealed_by = ? WHERE id = 1")
            .bind(key.id())
            .execute(&mut *tx)
            .await?;
        let docs = sqlx::query("SELECT id, snapshot, server_heads FROM documents")
            .fetch_all(&mut *tx)
            .await?;
        for r in &docs {
            let id: String = r.get("id");
            let snapshot = r
                .get::<Option<Vec<u8>>, _>("snapshot")
                .map(|b| key.seal(&Block::snapshot(&id), &b))
                .transpose()?;
            let heads: String = r.get("server_heads");
            let heads = (!heads.is_empty())
                .then(|| key.seal(&Block::heads(&id), heads.as_bytes()))
                .transpose()?;
            sqlx::query(
                "UPDATE documents SET snapshot = ?, heads = ?, server_heads = '' WHERE id = ?",
            )
            .bind(snapshot)
            .bind(heads)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        }
        for r in sqlx::query("SELECT document, seq, bytes FROM chunks")
            .fetch_all(&mut *tx)
            .await?
        {
            let (doc, seq): (String, i64) = (r.get(0), r.get(1));
            let sealed = key.seal(&Block::chunk(&doc, seq), r.get::<&[u8], _>(2))?;
            sqlx::query("UPDATE chunks SET bytes = ? WHERE document = ? AND seq = ?")
                .bind(sealed)
                .bind(&doc)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        for r in sqlx::query("SELECT document, state FROM sync_states")
            .fetch_all(&mut *tx)
            .await?
        {
            let doc: String = r.get(0);
            let sealed = key.seal(&Block::sync_state(&doc), r.get::<&[u8], _>(1))?;
            sqlx::query("UPDATE sync_states SET state = ? WHERE document = ?")
                .bind(sealed)
                .bind(&doc)
                .execute(&mut *tx)
                .await?;
        }
        for r in sqlx::query("SELECT * FROM legacy_audit_outbox ORDER BY at, id")
            .fetch_all(&mut *tx)
            .await?
        {
            let read = OfflineRead {
                id: r.get("id"),
                at: parse_ts(r.get("at"))?,
                user: r.get("user_id"),
                dossier: parse(r.get::<&str, _>("dossier"), "dossier id")?,
                key: parse(r.get::<&str, _>("key"), "document key")?,
                document_id: parse(r.get::<&str, _>("document_id"), "document id")?,
            };
            insert_read(&mut tx, key, &read).await?;
        }
        for r in sqlx::query("SELECT * FROM legacy_rejections ORDER BY id")
            .fetch_all(&mut *tx)
            .await?
        {
            let report = RejectionRecord {
                at: parse_ts(r.get("at"))?,
                document_id: parse(r.get::<&str, _>("document_id"), "document id")?,
                dossier: parse(r.get::<&str, _>("dossier"), "dossier id")?,
                key: parse(r.get::<&str, _>("key"), "document key")?,
                reason: r.get("reason"),
                detail: r.get("detail"),
                changes: split(r.get("changes"), ','),
                replayed: r.get::<i64, _>("replayed") as usize,
                dropped: split(r.get("dropped"), '\n'),
            };
            insert_rejection(&mut tx, key, &report).await?;
        }
        for ddl in [
            "DROP TABLE legacy_audit_outbox",
            "DROP TABLE legacy_rejections",
        ] {
            sqlx::query(ddl).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        // `secure_delete` zeroed what the updates freed, but the log holds the earlier page
        // images and a rewritten file leaves no free page behind: checkpoint, rewrite,
        // checkpoint.
        self.checkpoint().await?;
        sqlx::query("VACUUM").execute(&self.pool).await?;
        self.checkpoint().await
    }

    /// The profile: device identity and login.
    pub async fn profile(&self) -> Result<Profile> {
        let r = sqlx::query("SELECT * FROM profile WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        let claims = match r.get::<Option<&str>, _>("claims") {
            Some(s) => Some(serde_json::from_str(s).map_err(|e| corrupt("claims", e))?),
            None => None,
        };
        let opt_ts = |col: &str| -> Result<Option<OffsetDateTime>> {
            r.get::<Option<&str>, _>(col).map(parse_ts).transpose()
        };
        Ok(Profile {
            storage_id: r.get("storage_id"),
            server_url: r.get("server_url"),
            sealed_by: r.get("sealed_by"),
            claims,
            token_expires_at: opt_ts("token_expires_at")?,
            last_sync_at: opt_ts("last_sync_at")?,
        })
    }

    /// Stores a login (server, claims, expiry; never the token). A login as another user first
    /// clears everything the previous user's documents left on the device (their content is
    /// theirs, not the new user's).
    pub(crate) async fn set_login(
        &self,
        server_url: &str,
        claims: &Claims,
        expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<Vec<PurgeRecord>> {
        let previous = self.profile().await?;
        let mut purged = Vec::new();
        let same_user = previous
            .claims
            .as_ref()
            .is_some_and(|c| c.sub == claims.sub)
            && previous.server_url.as_deref() == Some(server_url);
        if !same_user {
            for info in self.documents().await? {
                purged.push(self.purge(&info, "logged_out", now).await?);
            }
        }
        sqlx::query(
            "UPDATE profile SET server_url = ?, claims = ?, token_expires_at = ? WHERE id = 1",
        )
        .bind(server_url)
        .bind(serde_json::to_string(claims).expect("claims serialize"))
        .bind(expires_at.map(ts))
        .execute(&self.pool)
        .await?;
        Ok(purged)
    }

    pub(crate) async fn set_last_sync(&self, at: OffsetDateTime) -> Result<()> {
        sqlx::query("UPDATE profile SET last_sync_at = ? WHERE id = 1")
            .bind(ts(at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records what the server listed: new documents get an empty row, known ones their
    /// current access, basis, district, team and whether closed. A document the server rewrote under a new id
    /// (a replaced view) is listed with that id: the old copy is purged first, as on a
    /// `replaced` message, and its purge record returned.
    pub(crate) async fn upsert_listing(
        &self,
        listing: &[DocumentInfo],
        now: OffsetDateTime,
    ) -> Result<Vec<PurgeRecord>> {
        let mut purged = Vec::new();
        for d in listing {
            if let Some(old) = self.find(d.dossier, &d.key).await?.filter(|o| o.id != d.id) {
                purged.push(self.purge(&old, "replaced", now).await?);
            }
        }
        let mut tx = self.pool.begin().await?;
        for d in listing {
            sqlx::query(
                "INSERT INTO documents (id, dossier, key, access, basis, district, team, closed) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET access = excluded.access, basis = excluded.basis, \
                 district = excluded.district, team = excluded.team, closed = excluded.closed",
            )
            .bind(d.id.to_string())
            .bind(d.dossier.to_string())
            .bind(d.key.to_string())
            .bind(code(&d.access))
            .bind(code(&d.basis))
            .bind(d.district.as_str())
            .bind(d.team.as_str())
            .bind(d.closed)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(purged)
    }

    /// Every document row of the caseload (no content).
    pub async fn documents(&self) -> Result<Vec<DocumentInfo>> {
        sqlx::query("SELECT * FROM documents ORDER BY dossier, key")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(info_row)
            .collect()
    }

    /// The ids of the documents that have content on the device.
    pub async fn held(&self) -> Result<std::collections::BTreeSet<DocumentId>> {
        sqlx::query(
            "SELECT id FROM documents d WHERE snapshot IS NOT NULL \
             OR EXISTS (SELECT 1 FROM chunks c WHERE c.document = d.id)",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| parse(r.get::<&str, _>(0), "document id"))
        .collect()
    }

    /// One document's row by dossier and key.
    pub(crate) async fn find(
        &self,
        dossier: DossierId,
        key: &DocumentKey,
    ) -> Result<Option<DocumentInfo>> {
        sqlx::query("SELECT * FROM documents WHERE dossier = ? AND key = ?")
            .bind(dossier.to_string())
            .bind(key.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(info_row)
            .transpose()
    }

    /// Loads a document: snapshot, incremental saves, sync state and server heads, each opened
    /// with the device key.
    pub(crate) async fn load(&self, id: DocumentId) -> Result<Option<Loaded>> {
        let key = self.key()?;
        let Some(row) = sqlx::query("SELECT * FROM documents WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let info = info_row(&row)?;
        let doc_id = id.to_string();
        let bad = |e: automerge::AutomergeError| {
            ClientError::Corrupt(format!("document {id}"), e.to_string())
        };
        let mut doc = match row.get::<Option<&[u8]>, _>("snapshot") {
            Some(sealed) => {
                let bytes = Zeroizing::new(key.open(&Block::snapshot(&doc_id), sealed)?);
                Automerge::load(&bytes).map_err(bad)?
            }
            None => Automerge::new(),
        };
        let chunks = sqlx::query("SELECT seq, bytes FROM chunks WHERE document = ? ORDER BY seq")
            .bind(&doc_id)
            .fetch_all(&self.pool)
            .await?;
        for chunk in &chunks {
            let block = Block::chunk(&doc_id, chunk.get(0));
            let bytes = Zeroizing::new(key.open(&block, chunk.get::<&[u8], _>(1))?);
            doc.load_incremental(&bytes).map_err(bad)?;
        }
        let state = match sqlx::query("SELECT state FROM sync_states WHERE document = ?")
            .bind(&doc_id)
            .fetch_optional(&self.pool)
            .await?
        {
            Some(r) => {
                let bytes = key.open(&Block::sync_state(&doc_id), r.get::<&[u8], _>(0))?;
                // A state that does not decode only costs a longer sync.
                sync::State::decode(&bytes).unwrap_or_default()
            }
            None => sync::State::default(),
        };
        let server_heads = match row.get::<Option<&[u8]>, _>("heads") {
            Some(sealed) => {
                let text = key.open(&Block::heads(&doc_id), sealed)?;
                parse_heads(&String::from_utf8(text).map_err(|e| corrupt("heads", e))?)?
            }
            None => Vec::new(),
        };
        Ok(Some(Loaded {
            info,
            doc,
            state,
            server_heads,
            chunk_count: chunks.len() as i64,
        }))
    }

    /// Writes what changed about one document in one transaction, each block sealed with the
    /// device key.
    pub(crate) async fn write(&self, id: DocumentId, w: DocumentWrite) -> Result<()> {
        let key = self.key()?;
        let id = id.to_string();
        let mut tx = self.pool.begin().await?;
        if let Some(snapshot) = &w.snapshot {
            sqlx::query("UPDATE documents SET snapshot = ? WHERE id = ?")
                .bind(key.seal(&Block::snapshot(&id), snapshot)?)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM chunks WHERE document = ?")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(chunk) = &w.chunk {
            // The row is made first (a write, so the transaction holds the write lock before
            // it reads), to learn the sequence number the sealed block is bound to.
            let seq: i64 = sqlx::query_scalar(
                "INSERT INTO chunks (document, seq, bytes) VALUES (?, \
                 (SELECT COALESCE(MAX(seq), 0) + 1 FROM chunks WHERE document = ?), x'') \
                 RETURNING seq",
            )
            .bind(&id)
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("UPDATE chunks SET bytes = ? WHERE document = ? AND seq = ?")
                .bind(key.seal(&Block::chunk(&id, seq), chunk)?)
                .bind(&id)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        match &w.state {
            Some(Some(state)) => {
                sqlx::query(
                    "INSERT INTO sync_states (document, state) VALUES (?, ?) \
                     ON CONFLICT (document) DO UPDATE SET state = excluded.state",
                )
                .bind(&id)
                .bind(key.seal(&Block::sync_state(&id), state)?)
                .execute(&mut *tx)
                .await?;
            }
            Some(None) => {
                sqlx::query("DELETE FROM sync_states WHERE document = ?")
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
            }
            None => {}
        }
        if let Some(heads) = &w.server_heads {
            sqlx::query("UPDATE documents SET heads = ? WHERE id = ?")
                .bind(key.seal(&Block::heads(&id), heads_text(heads).as_bytes())?)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Appends an incremental Automerge save to a held document as it is, without the
    /// policy's and the schema's check the editing API makes first: for tools that import or
    /// repair a store, and for tests that play a buggy app. The server still checks every
    /// change it receives (I2); a refused one is rebased away at the next sync.
    pub async fn append_unchecked(&self, id: DocumentId, save: Vec<u8>) -> Result<()> {
        self.write(
            id,
            DocumentWrite {
                chunk: Some(save),
                ..DocumentWrite::default()
            },
        )
        .await
    }

    /// Deletes a document, its saves and sync state, and records the purge (without content),
    /// in one transaction.
    pub(crate) async fn purge(
        &self,
        info: &DocumentInfo,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<PurgeRecord> {
        let id = info.id.to_string();
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM chunks WHERE document = ?",
            "DELETE FROM sync_states WHERE document = ?",
            "DELETE FROM documents WHERE id = ?",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO purges (at, document_id, dossier, key, reason) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(ts(now))
        .bind(&id)
        .bind(info.dossier.to_string())
        .bind(info.key.to_string())
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // `secure_delete` zeroed the freed cells in the pages the purge wrote, but the
        // write-ahead log still holds the earlier images of those pages, content and all: move
        // the log into the file and truncate it now, so no byte of the document is left in
        // any file of the store (I6).
        self.checkpoint().await?;
        Ok(PurgeRecord {
            at: now,
            document_id: info.id,
            dossier: info.dossier,
            key: info.key.clone(),
            reason: reason.to_owned(),
        })
    }

    /// Every purge recorded on this device, oldest first.
    pub async fn purges(&self) -> Result<Vec<PurgeRecord>> {
        sqlx::query("SELECT * FROM purges ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(PurgeRecord {
                    at: parse_ts(r.get("at"))?,
                    document_id: parse(r.get::<&str, _>("document_id"), "document id")?,
                    dossier: parse(r.get::<&str, _>("dossier"), "dossier id")?,
                    key: parse(r.get::<&str, _>("key"), "document key")?,
                    reason: r.get("reason"),
                })
            })
            .collect()
    }

    /// Queues an offline read for upload, sealed.
    pub(crate) async fn record_read(&self, ev: &OfflineRead) -> Result<()> {
        let key = self.key()?;
        let mut tx = self.pool.begin().await?;
        insert_read(&mut tx, &key, ev).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Offline reads waiting for upload, oldest first.
    pub async fn pending_reads(&self) -> Result<Vec<OfflineRead>> {
        let key = self.key()?;
        let mut out: Vec<OfflineRead> = Vec::new();
        for r in sqlx::query("SELECT id, sealed FROM reads ORDER BY seq")
            .fetch_all(&self.pool)
            .await?
        {
            let id: String = r.get(0);
            let json = key.open(&Block::read(&id), r.get::<&[u8], _>(1))?;
            out.push(serde_json::from_slice(&json).map_err(|e| corrupt("offline read", e))?);
        }
        out.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        Ok(out)
    }

    /// Forgets uploaded offline reads.
    pub(crate) async fn remove_reads(&self, ids: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for id in ids {
            sqlx::query("DELETE FROM reads WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a rejection and its rebase, sealed.
    pub(crate) async fn record_rejection(&self, r: &RejectionRecord) -> Result<()> {
        let key = self.key()?;
        let mut tx = self.pool.begin().await?;
        insert_rejection(&mut tx, &key, r).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every rejection reported by the server and what the rebase did, oldest first.
    pub async fn rejections(&self) -> Result<Vec<RejectionRecord>> {
        let key = self.key()?;
        let mut out = Vec::new();
        for r in sqlx::query("SELECT id, sealed FROM rejection_reports ORDER BY seq")
            .fetch_all(&self.pool)
            .await?
        {
            let id: String = r.get(0);
            let json = key.open(&Block::rejection(&id), r.get::<&[u8], _>(1))?;
            out.push(serde_json::from_slice(&json).map_err(|e| corrupt("rejection report", e))?);
        }
        Ok(out)
    }

    /// Every byte of document content and sync state the store keeps, per document, opened
    /// with the device key — what a leak audit (I1) must scan on a device, besides the raw
    /// files.
    pub async fn stored_bytes(&self) -> Result<Vec<StoredBytes>> {
        let key = self.key()?;
        let mut out = Vec::new();
        for r in sqlx::query(
            "SELECT d.id, d.snapshot, s.state FROM documents d LEFT JOIN sync_states s ON s.document = d.id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let id: String = r.get("id");
            let mut chunks = Vec::new();
            for c in sqlx::query("SELECT seq, bytes FROM chunks WHERE document = ? ORDER BY seq")
                .bind(&id)
                .fetch_all(&self.pool)
                .await?
            {
                chunks.push(key.open(&Block::chunk(&id, c.get(0)), c.get::<&[u8], _>(1))?);
            }
            let snapshot = r
                .get::<Option<&[u8]>, _>("snapshot")
                .map(|b| key.open(&Block::snapshot(&id), b))
                .transpose()?;
            let sync_state = r
                .get::<Option<&[u8]>, _>("state")
                .map(|b| key.open(&Block::sync_state(&id), b))
                .transpose()?;
            out.push(StoredBytes {
                document_id: parse(&id, "document id")?,
                snapshot,
                chunks,
                sync_state,
            });
        }
        Ok(out)
    }

    /// Flushes the write-ahead log into the database file (so the file alone shows everything
    /// the device holds, e.g. for a scan).
    pub async fn checkpoint(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes the pool (waits for connections to finish).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
