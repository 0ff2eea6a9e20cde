//! One state change as the store commits it (I8): a relationship row, a new document, the
//! changes of server-written documents and the audit rows, all in one transaction or none. The
//! caller plans the whole change first, so a refusal anywhere leaves nothing behind; and memory
//! follows only once this returns.

use regie_core::id::{DocumentKey, DossierId, PersonId, UserId};
use regie_core::relationship::Grant;
use regie_sync_protocol::DocumentId;
use time::OffsetDateTime;

use super::{Result, Store, insert_audit, insert_changes, insert_document, ts};
use crate::audit::AuditEvent;

/// A relationship row to write.
#[derive(Debug, Clone)]
pub enum RelationEdit {
    /// Assign a worker (R1).
    Assign(UserId),
    /// End a worker's assignment.
    Unassign(UserId),
    /// Link a person of the dossier to a resident account.
    Link(PersonId),
    /// Remove a resident link.
    Unlink(PersonId),
    /// A break-glass grant (R2).
    Grant(Grant),
}

/// Everything one state change writes.
pub struct Unit<'a> {
    /// The dossier it concerns.
    pub dossier: DossierId,
    /// When.
    pub at: OffsetDateTime,
    /// The relationship row, if any.
    pub relation: Option<&'a RelationEdit>,
    /// A document created with it (e.g. `view/<person>` on linking), with its first snapshot.
    pub new_document: Option<(DocumentId, &'a DocumentKey, &'a [u8])>,
    /// Changes appended to documents, each after the sequence number the caller holds.
    pub changes: Vec<(DocumentId, i64, Vec<&'a [u8]>)>,
    /// Its audit rows, in order.
    pub audit: &'a [AuditEvent],
}

impl Store {
    /// Commits `unit` in one transaction; returns, per entry of `unit.changes`, the document's
    /// last sequence number afterwards.
    pub async fn commit_unit(&self, unit: &Unit<'_>) -> Result<Vec<i64>> {
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        let dossier = unit.dossier.to_string();
        if let Some(edit) = unit.relation {
            let at = ts(unit.at);
            let query = match edit {
                RelationEdit::Assign(u) => sqlx::query(
                    "INSERT OR IGNORE INTO assignments (dossier, user_id, assigned_at) VALUES (?, ?, ?)",
                )
                .bind(&dossier)
                .bind(u.as_str())
                .bind(at),
                RelationEdit::Unassign(u) => {
                    sqlx::query("DELETE FROM assignments WHERE dossier = ? AND user_id = ?")
                        .bind(&dossier)
                        .bind(u.as_str())
                }
                RelationEdit::Link(p) => sqlx::query(
                    "INSERT OR IGNORE INTO resident_links (dossier, person, linked_at) VALUES (?, ?, ?)",
                )
                .bind(&dossier)
                .bind(p.as_str())
                .bind(at),
                RelationEdit::Unlink(p) => {
                    sqlx::query("DELETE FROM resident_links WHERE dossier = ? AND person = ?")
                        .bind(&dossier)
                        .bind(p.as_str())
                }
                RelationEdit::Grant(g) => sqlx::query(
                    "INSERT INTO grants (dossier, user_id, reason, granted_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(&dossier)
                .bind(g.user.as_str())
                .bind(&g.reason)
                .bind(ts(g.granted_at))
                .bind(ts(g.expires_at)),
            };
            query.execute(&mut *tx).await?;
        }
        if let Some((id, key, snapshot)) = unit.new_document {
            insert_document(&mut tx, id, unit.dossier, key, snapshot, unit.at).await?;
        }
        let mut seqs = Vec::with_capacity(unit.changes.len());
        for (doc, after, changes) in &unit.changes {
            seqs.push(insert_changes(&mut tx, *doc, *after, changes).await?);
        }
        let mut last = tail.clone();
        for ev in unit.audit {
            last = insert_audit(&mut tx, ev, &last).await?;
        }
        tx.commit().await?;
        *tail = last;
        Ok(seqs)
    }
}
