//! The limit: raw Automerge applying the same changes in-process, plus an SQLite append through
//! sqlx with the store's settings (WAL, `synchronous = NORMAL`, one transaction per batch). No
//! network, no protocol, no authentication, no policy: what a server could do at best on this
//! machine. The devices of the layout make the same seeded edits as over the network; their
//! changes reach the other followers directly, and only the server side (apply + append) is
//! timed.
//!
//! The comparator keeps its own SQL, on purpose: it is the floor Regie's store is measured
//! against, so it must not go through that store. It is the only SQL in the bench; everything
//! else reaches a store through Regie.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use automerge::{Automerge, Change};
use regie_sync_protocol::DocumentId;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use tokio::time::Instant;

use crate::peer::{Device, Wire};
use crate::rng::Rng;
use crate::workload::{DossierBytes, Layout};

/// An append-only change table in SQLite, set up as Regie's store is.
pub struct RawStore {
    pool: SqlitePool,
}

impl RawStore {
    /// Creates `raw.sqlite3` in `dir`.
    pub async fn open(dir: &Path) -> anyhow::Result<RawStore> {
        std::fs::create_dir_all(dir)?;
        let options = SqliteConnectOptions::new()
            .filename(dir.join("raw.sqlite3"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS changes (document TEXT NOT NULL, seq INTEGER NOT NULL, \
             bytes BLOB NOT NULL, PRIMARY KEY (document, seq))",
        )
        .execute(&pool)
        .await?;
        Ok(RawStore { pool })
    }

    /// Appends `changes` after `seq` in one transaction; returns the new last seq.
    pub async fn append(
        &self,
        doc: DocumentId,
        seq: i64,
        changes: &[&[u8]],
    ) -> anyhow::Result<i64> {
        let id = doc.to_string();
        if let [bytes] = changes {
            // One change: one autocommitted statement, the cheapest durable append.
            sqlx::query("INSERT INTO changes (document, seq, bytes) VALUES (?, ?, ?)")
                .bind(&id)
                .bind(seq + 1)
                .bind(*bytes)
                .execute(&self.pool)
                .await?;
            return Ok(seq + 1);
        }
        let mut tx = self.pool.begin().await?;
        let mut s = seq;
        for bytes in changes {
            s += 1;
            sqlx::query("INSERT INTO changes (document, seq, bytes) VALUES (?, ?, ?)")
                .bind(&id)
                .bind(s)
                .bind(*bytes)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(s)
    }

    /// Closes the pool.
    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// One server-side document of the raw limit.
pub struct RawDoc {
    /// The document.
    pub doc: Automerge,
    /// The last appended seq.
    pub seq: i64,
}

impl RawDoc {
    /// Applies `changes` and appends them durably; returns the time it took.
    pub async fn accept(
        &mut self,
        store: &RawStore,
        id: DocumentId,
        changes: Vec<Change>,
    ) -> anyhow::Result<Duration> {
        let (apply, append) = self.accept_split(store, id, changes).await?;
        Ok(apply + append)
    }

    /// As [`RawDoc::accept`], returning the time to apply and the time to append.
    pub async fn accept_split(
        &mut self,
        store: &RawStore,
        id: DocumentId,
        changes: Vec<Change>,
    ) -> anyhow::Result<(Duration, Duration)> {
        let t = Instant::now();
        self.doc
            .apply_changes(changes.iter().cloned())
            .context("a change does not apply")?;
        let apply = t.elapsed();
        let t = Instant::now();
        let raw: Vec<&[u8]> = changes.iter().map(Change::raw_bytes).collect();
        self.seq = store.append(id, self.seq, &raw).await?;
        Ok((apply, t.elapsed()))
    }
}

/// What the raw limit did.
#[derive(Debug, Clone, Copy)]
pub struct RawRun {
    /// Changes applied and appended.
    pub changes: u64,
    /// Time spent applying and appending (the server side only).
    pub server_time: Duration,
    /// Of which applying.
    pub apply_time: Duration,
    /// Their raw bytes.
    pub change_bytes: u64,
}

/// The devices of `layout` make `changes` seeded edits (a random device each time, a random
/// document of its own); each change is applied to the server copy and appended in its own
/// transaction, then delivered to the document's other followers.
pub async fn steady(
    layout: &Layout,
    bytes: &[DossierBytes],
    keys: &[regie_core::id::DocumentKey],
    changes: usize,
    dir: &Path,
) -> anyhow::Result<RawRun> {
    let epoch = Instant::now();
    let wire = Arc::new(Wire::default());
    let mut devices = Vec::with_capacity(layout.devices.len());
    for spec in &layout.devices {
        let docs = spec
            .dossiers
            .iter()
            .flat_map(|&k| {
                keys.iter()
                    .map(move |key| (layout.doc(k, key), key.kind(), bytes[k].get(key)))
            })
            .collect();
        devices.push(Device::new(spec, docs, layout.seed, epoch, wire.clone())?);
    }
    let mut followers: HashMap<DocumentId, Vec<usize>> = HashMap::new();
    let mut server: HashMap<DocumentId, RawDoc> = HashMap::new();
    for (di, dev) in devices.iter().enumerate() {
        for d in &dev.docs {
            followers.entry(d.id).or_default().push(di);
            if let std::collections::hash_map::Entry::Vacant(slot) = server.entry(d.id) {
                let (dossier, key) = layout
                    .dossiers
                    .iter()
                    .find_map(|s| {
                        s.docs
                            .iter()
                            .find(|x| x.id == d.id)
                            .map(|x| (s.index, &x.key))
                    })
                    .expect("a layout document");
                slot.insert(RawDoc {
                    doc: Automerge::load(bytes[dossier].get(key))?,
                    seq: 0,
                });
            }
        }
    }
    let store = RawStore::open(dir).await?;
    let mut rng = Rng::new(layout.seed).fork(77);
    let mut run = RawRun {
        changes: 0,
        server_time: Duration::ZERO,
        apply_time: Duration::ZERO,
        change_bytes: 0,
    };
    while (run.changes as usize) < changes {
        let di = rng.below(devices.len());
        let Some((i, _)) = devices[di].edit_local() else {
            continue;
        };
        let Some(change) = devices[di].last_change(i) else {
            continue;
        };
        let id = devices[di].docs[i].id;
        run.change_bytes += change.raw_bytes().len() as u64;
        let doc = server.get_mut(&id).expect("every followed document");
        let (apply, append) = doc.accept_split(&store, id, vec![change.clone()]).await?;
        run.server_time += apply + append;
        run.apply_time += apply;
        run.changes += 1;
        for &other in followers.get(&id).into_iter().flatten() {
            if other != di
                && let Some(j) = devices[other].doc_index(id)
            {
                devices[other].apply_remote(j, change.clone())?;
            }
        }
    }
    store.close().await;
    Ok(run)
}

/// The cold-start floor: reads the dossier and document index of the store in `dir` directly,
/// as a server with no store of its own would at start; returns how many dossiers it holds.
pub async fn read_index(dir: &Path) -> anyhow::Result<usize> {
    let options = SqliteConnectOptions::new()
        .filename(dir.join("regie.sqlite3"))
        .read_only(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let dossiers: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, district, team FROM dossiers")
            .fetch_all(&pool)
            .await?;
    let documents: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, dossier, key FROM documents")
            .fetch_all(&pool)
            .await?;
    let index: HashMap<&str, (&str, &str)> = documents
        .iter()
        .map(|(id, d, k)| (id.as_str(), (d.as_str(), k.as_str())))
        .collect();
    pool.close().await;
    std::hint::black_box(index);
    Ok(dossiers.len())
}
