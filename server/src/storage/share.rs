//! SQL for sharing by decision: second-worker approvals of weighings (R17), the open tasks
//! a share leaves behind ("inform the resident"), the ground each partner share rests on (R16),
//! maatwerk applicants (R6) and closing (R18).

use std::collections::BTreeSet;

use regie_core::id::{DossierId, OrgId, PersonId, TeamId, UserId};
use sqlx::Row;

use super::{Result, Store, parse};

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
    /// The partner shares of a dossier that rest on consent and have not ended.
    pub async fn consent_shares(&self, dossier: DossierId) -> Result<Vec<PartnerShareRow>> {
        let rows = sqlx::query(
            "SELECT org, ground, purpose, items, subjects FROM partners
             WHERE dossier = $1 AND ground = 'consent' AND ended_at IS NULL ORDER BY org",
        )
        .bind(dossier.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let list = |i: usize| -> Result<Vec<String>> {
                serde_json::from_str(r.get::<&str, _>(i)).map_err(|e| {
                    super::StorageError::Corrupt {
                        table: "partners",
                        detail: e.to_string(),
                    }
                })
            };
            out.push(PartnerShareRow {
                org: parse(r.get::<&str, _>(0), "partners")?,
                ground: r.get(1),
                purpose: self.partner_purpose(dossier, r.get(0), r.get(2)).await?,
                items: list(3)?.into_iter().collect(),
                subjects: list(4)?
                    .iter()
                    .map(|s| parse(s, "partners"))
                    .collect::<Result<_>>()?,
            });
        }
        Ok(out)
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

    /// Who approved a weighing, and in which team.
    pub async fn approval(
        &self,
        dossier: DossierId,
        weighing: &str,
    ) -> Result<Option<(UserId, TeamId)>> {
        let row = sqlx::query(
            "SELECT approver, team FROM approvals WHERE dossier = $1 AND weighing = $2",
        )
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

    /// A dossier's tasks, oldest first.
    pub async fn tasks(&self, dossier: DossierId) -> Result<Vec<TaskRow>> {
        let rows = sqlx::query("SELECT id, kind, about, created_at, done_at, done_by FROM tasks WHERE dossier = $1 ORDER BY id")
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
}
