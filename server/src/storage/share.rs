//! SQL for sharing by decision: second-worker approvals of weighings (R17), the open tasks
//! a share leaves behind ("inform the resident"), the ground each partner share rests on (R16),
//! maatwerk applicants (R6) and closing (R18).

use std::collections::BTreeSet;

use regie_core::id::{DossierId, OrgId, PersonId, TeamId, UserId};
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

/// What a partner share rests on: enough to ask again whether its consent still holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerShareRow {
    /// The partner.
    pub org: OrgId,
    /// `consent` or `four_eyes`.
    pub ground: String,
    /// The purpose the consent must cover.
    pub purpose: String,
    /// The items shared.
    pub items: BTreeSet<String>,
    /// The persons the shared data concerns.
    pub subjects: Vec<PersonId>,
}

impl Store {
    /// Records (or renews, after it ended) a chain partner's involvement and its ground.
    pub async fn add_partner(&self, dossier: DossierId, share: &PartnerShareRow) -> Result<()> {
        let json = |v: Vec<&str>| serde_json::to_string(&v).expect("strings serialize");
        sqlx::query(
            "INSERT INTO partners (dossier, org, ground, purpose, items, subjects) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (dossier, org) DO UPDATE SET ground = excluded.ground, purpose = excluded.purpose,
             items = excluded.items, subjects = excluded.subjects, ended_at = NULL, ended_because = NULL",
        )
        .bind(dossier.to_string())
        .bind(share.org.as_str())
        .bind(&share.ground)
        .bind(&share.purpose)
        .bind(json(share.items.iter().map(String::as_str).collect()))
        .bind(json(share.subjects.iter().map(PersonId::as_str).collect()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The partner shares of a dossier that rest on consent and have not ended.
    pub async fn consent_shares(&self, dossier: DossierId) -> Result<Vec<PartnerShareRow>> {
        let rows = sqlx::query(
            "SELECT org, ground, purpose, items, subjects FROM partners
             WHERE dossier = ? AND ground = 'consent' AND ended_at IS NULL ORDER BY org",
        )
        .bind(dossier.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let list = |i: usize| -> Result<Vec<String>> {
                    serde_json::from_str(r.get::<&str, _>(i)).map_err(|e| {
                        super::StorageError::Corrupt {
                            table: "partners",
                            detail: e.to_string(),
                        }
                    })
                };
                Ok(PartnerShareRow {
                    org: parse(r.get::<&str, _>(0), "partners")?,
                    ground: r.get(1),
                    purpose: r.get(2),
                    items: list(3)?.into_iter().collect(),
                    subjects: list(4)?
                        .iter()
                        .map(|s| parse(s, "partners"))
                        .collect::<Result<_>>()?,
                })
            })
            .collect()
    }

    /// The dossiers that have a partner share resting on consent.
    pub async fn dossiers_with_consent_shares(&self) -> Result<Vec<DossierId>> {
        sqlx::query(
            "SELECT DISTINCT dossier FROM partners WHERE ground = 'consent' AND ended_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| parse(r.get::<&str, _>(0), "partners"))
        .collect()
    }

    /// Ends a partner's involvement (consent withdrawn, dossier closed); the row stays as history.
    pub async fn end_partner(
        &self,
        dossier: DossierId,
        org: &OrgId,
        because: &str,
        at: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE partners SET ended_at = ?, ended_because = ? WHERE dossier = ? AND org = ? AND ended_at IS NULL",
        )
        .bind(ts(at))
        .bind(because)
        .bind(dossier.to_string())
        .bind(org.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the applicant of `maatwerk/<n>`.
    pub async fn set_applicant(&self, dossier: DossierId, n: u32, person: &PersonId) -> Result<()> {
        sqlx::query("INSERT INTO maatwerk_applicants (dossier, n, person) VALUES (?, ?, ?)")
            .bind(dossier.to_string())
            .bind(i64::from(n))
            .bind(person.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks a dossier closed (R18) with its destroy-by date, if it has one (R23).
    pub async fn close_dossier(
        &self,
        dossier: DossierId,
        destroy_by: Option<time::Date>,
        at: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE dossiers SET status = 'closed', closed_at = ?, destroy_by = ? WHERE id = ?",
        )
        .bind(ts(at))
        .bind(destroy_by.map(|d| d.format(regie_core::document::DATE).expect("dates format")))
        .bind(dossier.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

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
