//! SQL for the end of retention (R23, I6): which closed dossiers have passed their destroy-by
//! date, and their destruction — every change, snapshot, sync state, quarantined batch,
//! relationship and signal of the dossier deleted in one transaction (SQLite's `secure_delete`
//! overwrites the freed pages, and the WAL is truncated afterwards so no old page image stays
//! on disk), leaving a proof row with ids and counts only.

use regie_core::id::DossierId;
use serde::Serialize;
use sqlx::Row;
use time::OffsetDateTime;

use super::{Result, Store, insert_audit, parse, ts};
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
}

impl Store {
    /// Closed dossiers whose destroy-by date is `today` or earlier.
    pub async fn due_for_destruction(&self, today: time::Date) -> Result<Vec<DossierId>> {
        sqlx::query(
            "SELECT id FROM dossiers WHERE status = 'closed' AND destroy_by IS NOT NULL AND destroy_by <= ? ORDER BY id",
        )
        .bind(today.format(regie_core::document::DATE).expect("dates format"))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| parse(r.get::<&str, _>(0), "dossiers"))
        .collect()
    }

    /// Destroys everything stored of `dossier` and records the proof, with the audit row
    /// `audit` makes of it, in one transaction.
    pub async fn destroy_dossier(
        &self,
        dossier: DossierId,
        reason: &str,
        at: OffsetDateTime,
        audit: impl FnOnce(&Destruction) -> AuditEvent,
    ) -> Result<Destruction> {
        let id = dossier.to_string();
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        let (documents, changes, bytes): (i64, i64, i64) = sqlx::query_as(
            "SELECT
                (SELECT COUNT(*) FROM documents WHERE dossier = ?1),
                (SELECT COUNT(*) FROM changes WHERE document IN (SELECT id FROM documents WHERE dossier = ?1)),
                (SELECT COALESCE(SUM(LENGTH(bytes)), 0) FROM changes WHERE document IN (SELECT id FROM documents WHERE dossier = ?1))
                  + (SELECT COALESCE(SUM(LENGTH(bytes)), 0) FROM snapshots WHERE document IN (SELECT id FROM documents WHERE dossier = ?1))",
        )
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
        for sql in [
            "DELETE FROM changes WHERE document IN (SELECT id FROM documents WHERE dossier = ?)",
            "DELETE FROM snapshots WHERE document IN (SELECT id FROM documents WHERE dossier = ?)",
            "DELETE FROM sync_states WHERE document IN (SELECT id FROM documents WHERE dossier = ?)",
            "DELETE FROM quarantine WHERE document IN (SELECT id FROM documents WHERE dossier = ?)",
            "DELETE FROM documents WHERE dossier = ?",
            "DELETE FROM dossier_persons WHERE dossier = ?",
            "DELETE FROM assignments WHERE dossier = ?",
            "DELETE FROM grants WHERE dossier = ?",
            "DELETE FROM resident_links WHERE dossier = ?",
            "DELETE FROM partners WHERE dossier = ?",
            "DELETE FROM maatwerk_applicants WHERE dossier = ?",
            "DELETE FROM approvals WHERE dossier = ?",
            "DELETE FROM tasks WHERE dossier = ?",
            "DELETE FROM break_glass_requests WHERE dossier = ?",
            "DELETE FROM signals WHERE dossier = ?",
            "DELETE FROM dossiers WHERE id = ?",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
        let proof = Destruction {
            dossier: id,
            destroyed_at: ts(at),
            reason: reason.to_owned(),
            documents,
            changes,
            bytes,
        };
        sqlx::query(
            "INSERT INTO destructions (dossier, destroyed_at, reason, documents, changes, bytes) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&proof.dossier)
        .bind(&proof.destroyed_at)
        .bind(&proof.reason)
        .bind(proof.documents)
        .bind(proof.changes)
        .bind(proof.bytes)
        .execute(&mut *tx)
        .await?;
        let last = insert_audit(&mut tx, &audit(&proof), &tail).await?;
        tx.commit().await?;
        *tail = last;
        drop(tail);
        // Old page images of the deleted rows live on in the WAL until it is checkpointed.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(proof)
    }

    /// Every recorded destruction, oldest first.
    pub async fn destructions(&self) -> Result<Vec<Destruction>> {
        Ok(sqlx::query_as::<_, (String, String, String, i64, i64, i64)>(
            "SELECT dossier, destroyed_at, reason, documents, changes, bytes FROM destructions ORDER BY destroyed_at, dossier",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(
            |(dossier, destroyed_at, reason, documents, changes, bytes)| Destruction {
                dossier,
                destroyed_at,
                reason,
                documents,
                changes,
                bytes,
            },
        )
        .collect())
    }
}
