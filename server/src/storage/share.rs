//! SQL for sharing by decision: second-worker approvals of weighings (R17) and the open tasks
//! a share leaves behind ("inform the resident").

use regie_core::id::{DossierId, TeamId, UserId};
use sqlx::Row;
use time::OffsetDateTime;

use super::{Result, Store, parse, ts};

/// An open or finished task of a dossier.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskRow {
    /// Row id.
    pub id: i64,
    /// What kind (`inform_resident`).
    pub kind: String,
    /// What it is about (e.g. `share partner:ggd on weighing w1`); ids only, no content.
    pub about: String,
    /// When it was created.
    pub created_at: String,
    /// When it was done, if it was.
    pub done_at: Option<String>,
    /// Who did it.
    pub done_by: Option<String>,
}

impl Store {
    /// Records that `approver` of `team` approved weighing `weighing` (idempotent: the first
    /// approval stands).
    pub async fn approve_weighing(
        &self,
        dossier: DossierId,
        weighing: &str,
        approver: &UserId,
        team: &TeamId,
        at: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query("INSERT OR IGNORE INTO approvals (dossier, weighing, approver, team, approved_at) VALUES (?, ?, ?, ?, ?)")
            .bind(dossier.to_string())
            .bind(weighing)
            .bind(approver.as_str())
            .bind(team.as_str())
            .bind(ts(at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Who approved a weighing, and in which team.
    pub async fn approval(
        &self,
        dossier: DossierId,
        weighing: &str,
    ) -> Result<Option<(UserId, TeamId)>> {
        let row =
            sqlx::query("SELECT approver, team FROM approvals WHERE dossier = ? AND weighing = ?")
                .bind(dossier.to_string())
                .bind(weighing)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok((
                parse(r.get::<&str, _>(0), "approvals")?,
                parse(r.get::<&str, _>(1), "approvals")?,
            ))
        })
        .transpose()
    }

    /// Opens a task.
    pub async fn add_task(
        &self,
        dossier: DossierId,
        kind: &str,
        about: &str,
        at: OffsetDateTime,
    ) -> Result<i64> {
        let done =
            sqlx::query("INSERT INTO tasks (dossier, kind, about, created_at) VALUES (?, ?, ?, ?)")
                .bind(dossier.to_string())
                .bind(kind)
                .bind(about)
                .bind(ts(at))
                .execute(&self.pool)
                .await?;
        Ok(done.last_insert_rowid())
    }

    /// A dossier's tasks, oldest first.
    pub async fn tasks(&self, dossier: DossierId) -> Result<Vec<TaskRow>> {
        let rows = sqlx::query("SELECT id, kind, about, created_at, done_at, done_by FROM tasks WHERE dossier = ? ORDER BY id")
            .bind(dossier.to_string())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| TaskRow {
                id: r.get(0),
                kind: r.get(1),
                about: r.get(2),
                created_at: r.get(3),
                done_at: r.get(4),
                done_by: r.get(5),
            })
            .collect())
    }

    /// Marks a task done; returns whether an open task of that dossier was found.
    pub async fn finish_task(
        &self,
        dossier: DossierId,
        task: i64,
        by: &UserId,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query("UPDATE tasks SET done_at = ?, done_by = ? WHERE id = ? AND dossier = ? AND done_at IS NULL")
            .bind(ts(at))
            .bind(by.as_str())
            .bind(task)
            .bind(dossier.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
