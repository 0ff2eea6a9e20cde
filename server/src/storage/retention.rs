//! SQL for the end of retention (R23, I6): which closed dossiers have passed their destroy-by
//! date, and their destruction — every change, snapshot, sync state, quarantined batch,
//! relationship and signal of the dossier deleted in one transaction, leaving a proof row with
//! ids and counts only. On SQLite `secure_delete` overwrites the freed pages and the WAL is
//! truncated afterwards, so no old page image stays on disk. PostgreSQL has no such thing: the
//! deleted rows are gone for every query at commit, but their bytes stay in the table files
//! until VACUUM reuses the space, and in the WAL archive and backups for as long as those are
//! kept (see `Dialect::after_destruction`). What reaches those copies is the destruction of the
//! dossier's data key, right after the rows' (crypto-shredding, I6): every block of the dossier
//! in a backup, an archive or a free page was sealed with that key. The proof names the key.

use regie_core::id::DossierId;
use serde::Serialize;
use sqlx::Row;
use time::OffsetDateTime;

use super::{Chain, Result, Store, parse, ts};
use crate::audit::AuditEvent;

/// Proof that a dossier was destroyed, without any of its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Destruction {
    /// The dossier.
    pub dossier: String,
    /// When.
    pub destroyed_at: String,
    /// Why (`retention_ended`).
    pub reason: String,
    /// How many documents it had.
    pub documents: i64,
    /// How many stored changes were deleted.
    pub changes: i64,
    /// How many bytes of changes and snapshots were deleted.
    pub bytes: i64,
    /// The id of the dossier's data key, destroyed with it (none for a dossier stored before
    /// encryption at rest that never had one).
    pub key_id: Option<String>,
}

impl Store {
    /// Closed dossiers whose destroy-by date is `today` or earlier.
    pub async fn due_for_destruction(&self, today: time::Date) -> Result<Vec<DossierId>> {
        sqlx::query(
            "SELECT id FROM dossiers WHERE status = 'closed' AND destroy_by IS NOT NULL AND destroy_by <= $1 ORDER BY id",
        )
        .bind(today.format(regie_core::document::DATE).expect("dates format"))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| parse(r.get::<&str, _>(0), "dossiers"))
        .collect()
    }

    /// Destroys everything stored of `dossier` and records the proof, with the audit row
    /// `audit` makes of it, in one transaction; then destroys the dossier's data key, so no
    /// copy of its rows anywhere decrypts again. A stop between the two is finished when the
    /// store opens next ([`Store::finish_destructions`]). This is the one destruction path:
    /// the end of retention and erasure both come here.
    pub async fn destroy_dossier(
        &self,
        dossier: DossierId,
        reason: &str,
        at: OffsetDateTime,
        audit: impl FnOnce(&Destruction) -> AuditEvent,
    ) -> Result<Destruction> {
        let id = dossier.to_string();
        let key_id = self.keys.key_id(dossier).await?;
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        let destroyed_at = ts(at);
        // The proof first: it is a write, so the transaction holds SQLite's write lock from its
        // first statement (a transaction that read first could not upgrade once another
        // connection had written: "database is locked"). Its counts are read in the statement.
        let (documents, changes, bytes): (i64, i64, i64) = sqlx::query_as(
            "INSERT INTO destructions (dossier, destroyed_at, reason, documents, changes, bytes, key_id)
             SELECT $1, $2, $3,
                (SELECT COUNT(*) FROM documents WHERE dossier = $1),
                (SELECT COUNT(*) FROM changes WHERE document IN (SELECT id FROM documents WHERE dossier = $1)),
                CAST((SELECT COALESCE(SUM(LENGTH(bytes)), 0) FROM changes WHERE document IN (SELECT id FROM documents WHERE dossier = $1))
                  + (SELECT COALESCE(SUM(LENGTH(bytes)), 0) FROM snapshots WHERE document IN (SELECT id FROM documents WHERE dossier = $1)) AS BIGINT),
                $4
             RETURNING documents, changes, bytes",
        )
        .bind(&id)
        .bind(&destroyed_at)
        .bind(reason)
        .bind(&key_id)
        .fetch_one(&mut *tx)
        .await?;
        // Other instances forget it and revoke its documents (issue 17).
        super::feed::dossier_changed(&mut tx, self.dialect, &self.instance, dossier).await?;
        for sql in [
            "DELETE FROM changes WHERE document IN (SELECT id FROM documents WHERE dossier = $1)",
            "DELETE FROM snapshots WHERE document IN (SELECT id FROM documents WHERE dossier = $1)",
            "DELETE FROM sync_states WHERE document IN (SELECT id FROM documents WHERE dossier = $1)",
            "DELETE FROM quarantine WHERE document IN (SELECT id FROM documents WHERE dossier = $1)",
            "DELETE FROM documents WHERE dossier = $1",
            "DELETE FROM dossier_persons WHERE dossier = $1",
            "DELETE FROM assignments WHERE dossier = $1",
            "DELETE FROM grants WHERE dossier = $1",
            "DELETE FROM resident_links WHERE dossier = $1",
            "DELETE FROM partners WHERE dossier = $1",
            "DELETE FROM maatwerk_applicants WHERE dossier = $1",
            "DELETE FROM approvals WHERE dossier = $1",
            "DELETE FROM tasks WHERE dossier = $1",
            "DELETE FROM break_glass_requests WHERE dossier = $1",
            "DELETE FROM signals WHERE dossier = $1",
            "DELETE FROM contribution_agreements WHERE dossier = $1",
            "DELETE FROM contributions WHERE dossier = $1",
            "DELETE FROM dossiers WHERE id = $1",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
        let proof = Destruction {
            dossier: id,
            destroyed_at,
            reason: reason.to_owned(),
            documents,
            changes,
            bytes,
            key_id,
        };
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append(&mut tx, &audit(&proof)).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        drop(tail);
        self.keys.forget_dossier(dossier);
        self.keys.destroy(dossier, &proof.destroyed_at).await?;
        self.dialect.after_destruction(&self.pool).await?;
        Ok(proof)
    }

    /// Every recorded destruction, oldest first.
    pub async fn destructions(&self) -> Result<Vec<Destruction>> {
        Ok(sqlx::query_as::<_, (String, String, String, i64, i64, i64, Option<String>)>(
            "SELECT dossier, destroyed_at, reason, documents, changes, bytes, key_id FROM destructions ORDER BY destroyed_at, dossier",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(
            |(dossier, destroyed_at, reason, documents, changes, bytes, key_id)| Destruction {
                dossier,
                destroyed_at,
                reason,
                documents,
                changes,
                bytes,
                key_id,
            },
        )
        .collect())
    }
}
