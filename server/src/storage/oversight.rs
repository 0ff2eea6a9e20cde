//! Storage for oversight (R2, R9, R10): break-glass requests that were warned about and await
//! confirmation (kept by the hash of their one-time token), recorded access reviews, and the
//! reads that reports are computed from: the audit log filtered by SQL and read in bounded
//! pages in time order (I7), the grants and the dossiers' teams. Reasons and notes are sealed
//! (`keys.rs`): a reason with its dossier's key, a review note with its team's review key.

use regie_core::id::{DossierId, TeamId, UserId};
use regie_core::relationship::Grant;
use serde::Serialize;
use sqlx::Row;
use time::{Duration, OffsetDateTime};

use super::dialect::{Dialect, SqlBuilder};
use super::keys::{BlockId, Owner};
use super::{Chain, Result, Store, audit_row, parse, parse_ts, ts};
use crate::audit::AuditEvent;

/// A break-glass request that was answered with the warning and awaits confirmation (R2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassRequest {
    /// The dossier.
    pub dossier: DossierId,
    /// Who asked.
    pub user: UserId,
    /// The reason category code.
    pub category: String,
    /// The reason given.
    pub reason: String,
    /// When the warning was given.
    pub warned_at: OffsetDateTime,
    /// The first instant the confirmation is no longer accepted.
    pub expires_at: OffsetDateTime,
}

/// A recorded access review of one team (R10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessReview {
    /// Row id.
    pub id: i64,
    /// The team reviewed.
    pub team: String,
    /// Who reviewed (the manager's user id).
    pub reviewer: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub reviewed_at: OffsetDateTime,
    /// How many dossiers the listing had.
    pub dossiers: i64,
    /// How many access lines the listing had.
    pub lines: i64,
    /// SHA-256 (hex) of the listing as reviewed, so the review can be tied to what was seen.
    pub digest: String,
    /// The reviewer's note.
    pub note: Option<String>,
}

/// The most audit rows one page holds: what a report keeps of the log at any one time.
pub const AUDIT_PAGE_MAX: usize = 1000;

/// Which audit rows a report reads. SQL does the filtering, so a report reads only the rows it
/// needs, a page at a time. Instants are compared as the database does: SQLite to the
/// millisecond, PostgreSQL to the microsecond.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Rows at or after this instant.
    pub from: Option<OffsetDateTime>,
    /// Rows before this instant.
    pub to: Option<OffsetDateTime>,
    /// Rows with any of these actions (every action when empty).
    pub actions: Vec<&'static str>,
    /// Rows with this outcome.
    pub outcome: Option<&'static str>,
    /// Rows on this legitimacy basis.
    pub basis: Option<&'static str>,
    /// Only rows about some dossier.
    pub with_dossier: bool,
    /// Only rows about one of these dossiers.
    pub dossiers: Option<Vec<DossierId>>,
    /// Only rows about a dossier of this team.
    pub team: Option<TeamId>,
    /// Not rows by these actors.
    pub not_actors: Vec<String>,
    /// Only rows whose persons include this one.
    pub person: Option<String>,
}

impl AuditQuery {
    /// The `WHERE` conditions, after the row `after` when given. The lower bound of time comes
    /// first and is one expression, the later of `from` and the cursor's instant, so that the
    /// database starts its index range there: a cursor deep into a month costs a seek, not a
    /// scan.
    fn push_conditions(&self, sql: &mut SqlBuilder, after: Option<i64>, d: Dialect) {
        // No row is older than year 1, which PostgreSQL's timestamps cannot go below (a
        // resident may ask for her access log from year zero).
        let from = self
            .from
            .map(|t| t.max(time::macros::datetime!(0001-01-01 0:00 UTC)));
        let at = d.instant("at");
        let cursor_at = format!("(SELECT {at} FROM audit WHERE seq = ");
        match (from, after) {
            (Some(from), Some(after)) => {
                sql.push(&format!("{at} >= {}(", d.greatest()))
                    .push(d.instant_fn())
                    .push("(")
                    .push_bind(ts(from))
                    .push("), ")
                    .push(&cursor_at)
                    .push_bind(after)
                    .push("))");
            }
            (Some(from), None) => {
                sql.push(&format!("{at} >= "))
                    .push(d.instant_fn())
                    .push("(");
                sql.push_bind(ts(from)).push(")");
            }
            (None, Some(after)) => {
                sql.push(&format!("{at} >= "))
                    .push(&cursor_at)
                    .push_bind(after)
                    .push(")");
            }
            (None, None) => {
                sql.push("TRUE");
            }
        }
        if let Some(after) = after {
            // An unknown cursor makes the instant NULL, and the page empty.
            sql.push(&format!(" AND ({at}, seq) > ("))
                .push(&cursor_at)
                .push_bind(after)
                .push("), ")
                .push_bind(after)
                .push(")");
        }
        if let Some(to) = self.to {
            sql.push(&format!(" AND {at} < "))
                .push(d.instant_fn())
                .push("(");
            sql.push_bind(ts(to)).push(")");
        }
        if !self.actions.is_empty() {
            sql.push(" AND action IN ")
                .push_list(self.actions.iter().copied());
        }
        if let Some(outcome) = self.outcome {
            sql.push(" AND outcome = ").push_bind(outcome);
        }
        if let Some(basis) = self.basis {
            sql.push(" AND basis = ").push_bind(basis);
        }
        if self.with_dossier {
            sql.push(" AND dossier IS NOT NULL");
        }
        match &self.dossiers {
            // `IN ()` is an error on PostgreSQL: no dossier, no row.
            Some(dossiers) if dossiers.is_empty() => {
                sql.push(" AND FALSE");
            }
            Some(dossiers) => {
                sql.push(" AND dossier IN ")
                    .push_list(dossiers.iter().map(ToString::to_string));
            }
            None => {}
        }
        if let Some(team) = &self.team {
            sql.push(" AND dossier IN (SELECT id FROM dossiers WHERE team = ")
                .push_bind(team.as_str())
                .push(")");
        }
        if !self.not_actors.is_empty() {
            sql.push(" AND actor NOT IN ")
                .push_list(self.not_actors.iter().map(String::as_str));
        }
        if let Some(person) = &self.person {
            // Persons are a comma-separated list of ids; ids hold no commas.
            sql.push(&format!(" AND {}(',' || persons || ',', ", d.position()))
                .push_bind(format!(",{person},"))
                .push(") > 0");
        }
    }
}

/// How much of the log a scan read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scanned {
    /// Rows read.
    pub rows: u64,
    /// Pages read, each at most [`AUDIT_PAGE_MAX`] rows.
    pub pages: u64,
}

/// The `YYYY-MM-DD` prefix of a stored timestamp a day before or after `at`: a coarse bound that
/// string comparison gets right whatever the fraction of a second, refined in Rust afterwards.
fn day_bound(at: OffsetDateTime, days: i64) -> String {
    ts(at + Duration::days(days))[..10].to_owned()
}

impl Store {
    /// Keeps a warned break-glass request under the hash of its confirmation token with the
    /// audit row of the warning, in one transaction, and drops requests whose confirmation time
    /// passed more than a day ago.
    pub async fn put_break_glass_request(
        &self,
        token_hash: &str,
        req: &BreakGlassRequest,
        audit: &AuditEvent,
    ) -> Result<()> {
        let reason = self
            .keys
            .seal_text(
                &Owner::Dossier(req.dossier),
                &BlockId::text("break_glass_requests", "reason", &[token_hash]),
                &req.reason,
            )
            .await?;
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM break_glass_requests WHERE expires_at < $1")
            .bind(day_bound(req.warned_at, -1))
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO break_glass_requests (token_hash, dossier, user_id, category, reason, warned_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(token_hash)
            .bind(req.dossier.to_string())
            .bind(req.user.as_str())
            .bind(&req.category)
            .bind(&reason)
            .bind(ts(req.warned_at))
            .bind(ts(req.expires_at))
            .execute(&mut *tx)
            .await?;
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append(&mut tx, audit).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        Ok(())
    }

    /// `user`'s warned request on `dossier` with this token hash: a token is good only for the
    /// user and dossier it was given for, and once (the grant's unit consumes it with
    /// `RelationEdit::ConsumeBreakGlass`).
    pub async fn break_glass_request(
        &self,
        token_hash: &str,
        user: &UserId,
        dossier: DossierId,
    ) -> Result<Option<BreakGlassRequest>> {
        let row = sqlx::query("SELECT dossier, user_id, category, reason, warned_at, expires_at FROM break_glass_requests WHERE token_hash = $1 AND user_id = $2 AND dossier = $3")
            .bind(token_hash)
            .bind(user.as_str())
            .bind(dossier.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let dossier = parse(r.get::<&str, _>(0), "break_glass_requests")?;
        let reason = self
            .keys
            .open_text(
                &Owner::Dossier(dossier),
                &BlockId::text("break_glass_requests", "reason", &[token_hash]),
                r.get(3),
                "break_glass_requests",
                || format!("{dossier} {user}"),
            )
            .await?;
        Ok(Some(BreakGlassRequest {
            dossier,
            user: parse(r.get::<&str, _>(1), "break_glass_requests")?,
            category: r.get(2),
            reason,
            warned_at: parse_ts(r.get::<&str, _>(4), "break_glass_requests")?,
            expires_at: parse_ts(r.get::<&str, _>(5), "break_glass_requests")?,
        }))
    }

    /// One page of the audit rows `query` selects, in time order (to the millisecond, then log
    /// order), after the row `after` (a `seq` from an earlier page) or from the first: at most
    /// `limit` rows, and never more than [`AUDIT_PAGE_MAX`] plus the one row that tells a caller
    /// whether another page follows. An `after` that names no row gives an empty page.
    pub async fn audit_page(
        &self,
        query: &AuditQuery,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, AuditEvent)>> {
        let mut sql = SqlBuilder::new("SELECT * FROM audit WHERE ");
        query.push_conditions(&mut sql, after, self.dialect);
        let limit = limit.clamp(1, AUDIT_PAGE_MAX + 1);
        sql.push(&format!(
            " ORDER BY {}, seq LIMIT ",
            self.dialect.instant("at")
        ))
        .push_bind(limit as i64);
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.get("seq"), audit_row(r)?)))
            .collect()
    }

    /// How many audit rows `query` selects, counted by SQL.
    pub async fn audit_count(&self, query: &AuditQuery) -> Result<u64> {
        let mut sql = SqlBuilder::new("SELECT COUNT(*) FROM audit WHERE ");
        query.push_conditions(&mut sql, None, self.dialect);
        let n: i64 = sql.build().fetch_one(&self.pool).await?.get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Feeds every row `query` selects to `each`, in time order, reading [`AUDIT_PAGE_MAX`]
    /// rows at a time so that memory does not grow with the log (I7); returns how many rows and
    /// pages were read.
    pub async fn scan_audit(
        &self,
        query: &AuditQuery,
        mut each: impl FnMut(i64, &AuditEvent),
    ) -> Result<Scanned> {
        let mut scanned = Scanned::default();
        let mut after = None;
        loop {
            let page = self.audit_page(query, after, AUDIT_PAGE_MAX).await?;
            scanned.pages += 1;
            scanned.rows += page.len() as u64;
            for (seq, ev) in &page {
                each(*seq, ev);
            }
            match page.last() {
                Some((seq, _)) if page.len() == AUDIT_PAGE_MAX => after = Some(*seq),
                _ => return Ok(scanned),
            }
        }
    }

    /// Break-glass grants that began with `from <= granted_at < to`, with their dossier.
    pub async fn grants_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<(DossierId, Grant)>> {
        let rows = sqlx::query("SELECT dossier, user_id, reason, granted_at, expires_at FROM grants WHERE granted_at >= $1 AND granted_at < $2 ORDER BY id")
            .bind(day_bound(from, -1))
            .bind(day_bound(to, 1))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let (dossier, user, granted): (&str, &str, &str) = (r.get(0), r.get(1), r.get(3));
            let granted_at = parse_ts(granted, "grants")?;
            if !(from <= granted_at && granted_at < to) {
                continue;
            }
            let id: DossierId = parse(dossier, "grants")?;
            let reason = self
                .keys
                .open_text(
                    &Owner::Dossier(id),
                    &BlockId::text("grants", "reason", &[dossier, user, granted]),
                    r.get(2),
                    "grants",
                    || format!("{dossier} {user} {granted}"),
                )
                .await?;
            let grant = Grant {
                user: parse(user, "grants")?,
                reason,
                granted_at,
                expires_at: parse_ts(r.get::<&str, _>(4), "grants")?,
            };
            out.push((id, grant));
        }
        Ok(out)
    }

    /// Every dossier's team.
    pub async fn dossier_teams(&self) -> Result<Vec<(DossierId, TeamId)>> {
        let rows = sqlx::query("SELECT id, team FROM dossiers ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse(r.get::<&str, _>(0), "dossiers")?,
                    parse(r.get::<&str, _>(1), "dossiers")?,
                ))
            })
            .collect()
    }

    /// Records that `reviewer` reviewed `team`'s access listing (R10), with its audit row, in one
    /// transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_access_review(
        &self,
        team: &TeamId,
        reviewer: &UserId,
        at: OffsetDateTime,
        dossiers: i64,
        lines: i64,
        digest: &str,
        note: Option<&str>,
        audit: &AuditEvent,
    ) -> Result<AccessReview> {
        let reviewed_at = ts(at);
        let sealed = self
            .keys
            .seal_opt_text(
                &Owner::access_reviews(team.as_str()),
                &BlockId::text(
                    "access_reviews",
                    "note",
                    &[team.as_str(), &reviewed_at, digest],
                ),
                note,
            )
            .await?;
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar("INSERT INTO access_reviews (team, reviewer, reviewed_at, dossiers, lines, digest, note) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id")
            .bind(team.as_str())
            .bind(reviewer.as_str())
            .bind(&reviewed_at)
            .bind(dossiers)
            .bind(lines)
            .bind(digest)
            .bind(sealed)
            .fetch_one(&mut *tx)
            .await?;
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append(&mut tx, audit).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        Ok(AccessReview {
            id,
            team: team.to_string(),
            reviewer: reviewer.to_string(),
            reviewed_at: at,
            dossiers,
            lines,
            digest: digest.to_owned(),
            note: note.map(str::to_owned),
        })
    }

    /// The latest recorded access review of `team`.
    pub async fn last_access_review(&self, team: &TeamId) -> Result<Option<AccessReview>> {
        let row = sqlx::query("SELECT id, team, reviewer, reviewed_at, dossiers, lines, digest, note FROM access_reviews WHERE team = $1 ORDER BY id DESC LIMIT 1")
            .bind(team.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let (id, reviewed_at, digest): (i64, &str, String) = (r.get(0), r.get(3), r.get(6));
        let note = self
            .keys
            .open_opt_text(
                &Owner::access_reviews(team.as_str()),
                &BlockId::text(
                    "access_reviews",
                    "note",
                    &[team.as_str(), reviewed_at, &digest],
                ),
                r.get(7),
                "access_reviews",
                || id.to_string(),
            )
            .await?;
        Ok(Some(AccessReview {
            id,
            team: r.get(1),
            reviewer: r.get(2),
            reviewed_at: parse_ts(reviewed_at, "access_reviews")?,
            dossiers: r.get(4),
            lines: r.get(5),
            digest,
            note,
        }))
    }
}
