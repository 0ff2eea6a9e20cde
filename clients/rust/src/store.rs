//! The device store: one SQLite file (`device.sqlite3`) per device profile, through sqlx with
//! embedded migrations. It holds the caseload's documents as a compacted snapshot plus
//! incremental saves, each document's sync state and the server's last known heads, the token
//! and claims, offline reads waiting for upload, purge records and rejection reports. Every
//! change that must stay consistent (a document's bytes with its sync state, a purge with its
//! record) is one transaction, and the file is in WAL mode, so killing the process at any moment
//! leaves either the old or the new state. `secure_delete` overwrites what a purge deletes, and
//! each purge ends with a checkpoint that truncates the write-ahead log, which still held the
//! purged pages' earlier images.

use std::path::Path;
use std::str::FromStr;

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

use crate::error::{ClientError, Result};

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
    /// The bearer token.
    pub token: Option<String>,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// What the store holds of one document (for leak audits: every stored byte of content).
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

/// The device store of one profile.
#[derive(Clone)]
pub struct DeviceStore {
    pool: SqlitePool,
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
        Ok(DeviceStore { pool })
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
            token: r.get("token"),
            claims,
            token_expires_at: opt_ts("token_expires_at")?,
            last_sync_at: opt_ts("last_sync_at")?,
        })
    }

    /// Stores a login. A login as another user first clears everything the previous user's
    /// documents left on the device (their content is theirs, not the new user's).
    pub(crate) async fn set_login(
        &self,
        server_url: &str,
        token: &str,
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
        sqlx::query("UPDATE profile SET server_url = ?, token = ?, claims = ?, token_expires_at = ? WHERE id = 1")
            .bind(server_url)
            .bind(token)
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

    /// Loads a document: snapshot, incremental saves, sync state and server heads.
    pub(crate) async fn load(&self, id: DocumentId) -> Result<Option<Loaded>> {
        let Some(row) = sqlx::query("SELECT * FROM documents WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let info = info_row(&row)?;
        let bad =
            |e: automerge::AutomergeError| ClientError::Corrupt(id.to_string(), e.to_string());
        let mut doc = match row.get::<Option<Vec<u8>>, _>("snapshot") {
            Some(bytes) => Automerge::load(&bytes).map_err(bad)?,
            None => Automerge::new(),
        };
        let chunks = sqlx::query("SELECT bytes FROM chunks WHERE document = ? ORDER BY seq")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?;
        for chunk in &chunks {
            doc.load_incremental(chunk.get::<&[u8], _>(0))
                .map_err(bad)?;
        }
        let state = sqlx::query("SELECT state FROM sync_states WHERE document = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .and_then(|r| sync::State::decode(r.get::<&[u8], _>(0)).ok())
            .unwrap_or_default();
        Ok(Some(Loaded {
            info,
            doc,
            state,
            server_heads: parse_heads(row.get("server_heads"))?,
            chunk_count: chunks.len() as i64,
        }))
    }

    /// Writes what changed about one document in one transaction.
    pub(crate) async fn write(&self, id: DocumentId, w: DocumentWrite) -> Result<()> {
        let id = id.to_string();
        let mut tx = self.pool.begin().await?;
        if let Some(snapshot) = &w.snapshot {
            sqlx::query("UPDATE documents SET snapshot = ? WHERE id = ?")
                .bind(snapshot)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM chunks WHERE document = ?")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(chunk) = &w.chunk {
            sqlx::query(
                "INSERT INTO chunks (document, seq, bytes) VALUES (?, \
                 (SELECT COALESCE(MAX(seq), 0) + 1 FROM chunks WHERE document = ?), ?)",
            )
            .bind(&id)
            .bind(&id)
            .bind(chunk)
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
                .bind(state)
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
            sqlx::query("UPDATE documents SET server_heads = ? WHERE id = ?")
                .bind(heads_text(heads))
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
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

    /// Queues an offline read for upload.
    pub(crate) async fn record_read(&self, ev: &OfflineRead) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_outbox (id, at, user_id, dossier, key, document_id) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&ev.id)
        .bind(ts(ev.at))
        .bind(&ev.user)
        .bind(ev.dossier.to_string())
        .bind(ev.key.to_string())
        .bind(ev.document_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Offline reads waiting for upload, oldest first.
    pub async fn pending_reads(&self) -> Result<Vec<OfflineRead>> {
        sqlx::query("SELECT * FROM audit_outbox ORDER BY at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(OfflineRead {
                    id: r.get("id"),
                    at: parse_ts(r.get("at"))?,
                    user: r.get("user_id"),
                    dossier: parse(r.get::<&str, _>("dossier"), "dossier id")?,
                    key: parse(r.get::<&str, _>("key"), "document key")?,
                    document_id: parse(r.get::<&str, _>("document_id"), "document id")?,
                })
            })
            .collect()
    }

    /// Forgets uploaded offline reads.
    pub(crate) async fn remove_reads(&self, ids: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for id in ids {
            sqlx::query("DELETE FROM audit_outbox WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a rejection and its rebase.
    pub(crate) async fn record_rejection(&self, r: &RejectionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO rejections (at, document_id, dossier, key, reason, detail, changes, replayed, dropped) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(ts(r.at))
        .bind(r.document_id.to_string())
        .bind(r.dossier.to_string())
        .bind(r.key.to_string())
        .bind(&r.reason)
        .bind(&r.detail)
        .bind(r.changes.join(","))
        .bind(r.replayed as i64)
        .bind(r.dropped.join("\n"))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every rejection reported by the server and what the rebase did, oldest first.
    pub async fn rejections(&self) -> Result<Vec<RejectionRecord>> {
        sqlx::query("SELECT * FROM rejections ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let split = |s: &str, sep: char| -> Vec<String> {
                    s.split(sep)
                        .filter(|x| !x.is_empty())
                        .map(str::to_owned)
                        .collect()
                };
                Ok(RejectionRecord {
                    at: parse_ts(r.get("at"))?,
                    document_id: parse(r.get::<&str, _>("document_id"), "document id")?,
                    dossier: parse(r.get::<&str, _>("dossier"), "dossier id")?,
                    key: parse(r.get::<&str, _>("key"), "document key")?,
                    reason: r.get("reason"),
                    detail: r.get("detail"),
                    changes: split(r.get("changes"), ','),
                    replayed: r.get::<i64, _>("replayed") as usize,
                    dropped: split(r.get("dropped"), '\n'),
                })
            })
            .collect()
    }

    /// Every stored byte of document content and sync state, per document — what a leak audit
    /// (I1) must scan on a device.
    pub async fn stored_bytes(&self) -> Result<Vec<StoredBytes>> {
        let mut out = Vec::new();
        for r in sqlx::query(
            "SELECT d.id, d.snapshot, s.state FROM documents d LEFT JOIN sync_states s ON s.document = d.id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let id: String = r.get("id");
            let chunks = sqlx::query("SELECT bytes FROM chunks WHERE document = ? ORDER BY seq")
                .bind(&id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|c| c.get::<Vec<u8>, _>(0))
                .collect();
            out.push(StoredBytes {
                document_id: parse(&id, "document id")?,
                snapshot: r.get("snapshot"),
                chunks,
                sync_state: r.get("state"),
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
