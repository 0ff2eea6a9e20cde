//! The rights register's SQL (R19–R22): requests and the escalations of refusals. Each change is
//! one transaction with its audit rows, and each update is guarded by the state it expects (an
//! open request, an escalation not yet decided), so two concurrent decisions cannot both land:
//! the second changes nothing and is told so. Portable SQL only (`$n` placeholders, ISO date
//! and RFC 3339 text, no date functions), so the PostgreSQL backend runs it unchanged. The
//! words people wrote (a request's details, reasons, weighings, grounds; a share's purpose; a
//! breach's description, measures and reason) are sealed (`keys.rs`): with the dossier's key,
//! so a destroyed dossier's requests stay in the register as proof with their words gone
//! ([`super::keys::DESTROYED_TEXT`]); a breach with its own key. Ids, codes and dates stay clear
//! for the deadlines, counts and reports that filter on them.

use regie_core::id::{DossierId, PersonId, TeamId};
use regie_core::rights::{EscalationLevel, RightKind, Verdict};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::keys::{BlockId, Owner};
use super::{Chain, Result, StorageError, Store, parse};
use crate::audit::AuditEvent;

/// One request as stored.
#[derive(Debug, Clone)]
pub struct RightsRequestRow {
    /// Its id (`rr-` and a UUID).
    pub id: String,
    /// The dossier it concerns.
    pub dossier: DossierId,
    /// The dossier's team when the request was filed (the manager's counts).
    pub team: TeamId,
    /// The person whose data it concerns.
    pub subject: PersonId,
    /// Which right.
    pub kind: RightKind,
    /// What the resident asks, in their words (at most 2,000 characters).
    pub details: String,
    /// Who filed it (the resident, a parent, or a worker on their behalf).
    pub filed_by: String,
    /// Their role.
    pub filed_role: String,
    /// When, RFC 3339 UTC.
    pub filed_at: String,
    /// The day it was received, on the Amsterdam calendar.
    pub received_on: String,
    /// The day the answer is due, after any extension.
    pub deadline: String,
    /// The extension: months, reason, the day the resident was told, by whom.
    pub extension: Option<Extension>,
    /// The decision: verdict, reasons, by whom, on which day.
    pub decision: Option<Ruling>,
    /// The escalations of a refusal, manager first.
    pub escalations: Vec<EscalationRow>,
    /// What was done once a refusal was overturned on escalation (an outcome code).
    pub carried_out: Option<String>,
}

/// A recorded extension (art. 12(3)).
#[derive(Debug, Clone)]
pub struct Extension {
    /// One or two.
    pub months: i64,
    /// Why.
    pub reason: String,
    /// The day the resident was told.
    pub told_on: String,
    /// Who extended.
    pub by: String,
}

/// A decision on a request or an escalation.
#[derive(Debug, Clone)]
pub struct Ruling {
    /// Granted or refused.
    pub verdict: Verdict,
    /// The reasons (mandatory for a refusal).
    pub reasons: String,
    /// Who decided.
    pub by: String,
    /// On which day.
    pub on: String,
    /// A refusal's legal ground (a request's decision only), e.g. `retention_duty`.
    pub ground: Option<String>,
    /// What granting it did, as a code with counts and no content (a request's decision only).
    pub outcome: Option<String>,
    /// The weighing of an objection (a request's decision only).
    pub weighing: Option<String>,
}

impl Ruling {
    /// A plain decision: no ground, outcome or weighing.
    pub fn plain(verdict: Verdict, reasons: String, by: String, on: String) -> Ruling {
        Ruling {
            verdict,
            reasons,
            by,
            on,
            ground: None,
            outcome: None,
            weighing: None,
        }
    }
}

/// One escalation of a refusal (R22).
#[derive(Debug, Clone)]
pub struct EscalationRow {
    /// Who decides it.
    pub level: EscalationLevel,
    /// Why the resident objects.
    pub grounds: String,
    /// Who escalated.
    pub by: String,
    /// On which day.
    pub on: String,
    /// By when it is decided.
    pub deadline: String,
    /// The decision, once made.
    pub decision: Option<Ruling>,
}

/// A change to a request that exists.
#[derive(Debug, Clone)]
pub enum RightsEdit {
    /// Record an extension; only while undecided and not yet extended.
    Extend {
        /// The new deadline.
        deadline: String,
        /// The extension.
        extension: Extension,
    },
    /// Decide; only while undecided.
    Decide(Ruling),
    /// Escalate a refusal to `level`; only if that level has no escalation yet.
    Escalate(EscalationRow),
    /// Decide the escalation at `level`; only while it is undecided.
    DecideEscalation(EscalationLevel, Ruling),
    /// Record what was done to carry out a request granted on escalation; only once.
    CarriedOut(String),
}

fn opt_text(r: &AnyRow, col: &str) -> Option<String> {
    r.get::<Option<String>, _>(col)
}

fn verdict(code: &str, table: &'static str) -> Result<Verdict> {
    Verdict::from_code(code).ok_or_else(|| StorageError::Corrupt {
        table,
        detail: format!("unknown verdict {code:?}"),
    })
}

fn ruling(r: &AnyRow, prefix: &str, table: &'static str) -> Result<Option<Ruling>> {
    let (v, reasons, by, on) = if prefix.is_empty() {
        ("verdict", "verdict_reasons", "decided_by", "decided_on")
    } else {
        ("verdict", "reasons", "decided_by", "decided_on")
    };
    match opt_text(r, v) {
        None => Ok(None),
        Some(code) => Ok(Some(Ruling {
            verdict: verdict(&code, table)?,
            reasons: opt_text(r, reasons).unwrap_or_default(),
            by: opt_text(r, by).unwrap_or_default(),
            on: opt_text(r, on).unwrap_or_default(),
            ground: prefix
                .is_empty()
                .then(|| opt_text(r, "refusal_ground"))
                .flatten(),
            outcome: prefix.is_empty().then(|| opt_text(r, "outcome")).flatten(),
            weighing: prefix.is_empty().then(|| opt_text(r, "weighing")).flatten(),
        })),
    }
}

fn request_row(r: &AnyRow) -> Result<RightsRequestRow> {
    let table = "rights_requests";
    let kind: String = r.get("kind");
    let extension = r
        .get::<Option<i64>, _>("extension_months")
        .map(|months| Extension {
            months,
            reason: opt_text(r, "extension_reason").unwrap_or_default(),
            told_on: opt_text(r, "extension_told_on").unwrap_or_default(),
            by: opt_text(r, "extended_by").unwrap_or_default(),
        });
    Ok(RightsRequestRow {
        id: r.get("id"),
        dossier: parse(r.get::<&str, _>("dossier"), table)?,
        team: parse(r.get::<&str, _>("team"), table)?,
        subject: parse(r.get::<&str, _>("subject"), table)?,
        kind: RightKind::from_code(&kind).ok_or_else(|| StorageError::Corrupt {
            table,
            detail: format!("unknown kind {kind:?}"),
        })?,
        details: r.get("details"),
        filed_by: r.get("filed_by"),
        filed_role: r.get("filed_role"),
        filed_at: r.get("filed_at"),
        received_on: r.get("received_on"),
        deadline: r.get("deadline"),
        extension,
        decision: ruling(r, "", table)?,
        escalations: Vec::new(),
        carried_out: opt_text(r, "carried_out"),
    })
}

fn escalation_row(r: &AnyRow) -> Result<(String, EscalationRow)> {
    let table = "rights_escalations";
    let level: String = r.get("level");
    Ok((
        r.get("request"),
        EscalationRow {
            level: EscalationLevel::from_code(&level).ok_or_else(|| StorageError::Corrupt {
                table,
                detail: format!("unknown level {level:?}"),
            })?,
            grounds: r.get("grounds"),
            by: r.get("escalated_by"),
            on: r.get("escalated_on"),
            deadline: r.get("deadline"),
            decision: ruling(r, "e", table)?,
        },
    ))
}

/// Which requests to read.
#[derive(Debug, Clone, Copy)]
pub enum RightsQuery<'a> {
    /// One request.
    Id(&'a str),
    /// The requests of these dossiers.
    Dossiers(&'a [DossierId]),
    /// Every request (the registers: small, one row per request ever made).
    All,
}

impl Store {
    /// Files `request` with its audit rows, in one transaction.
    pub async fn file_rights_request(
        &self,
        request: &RightsRequestRow,
        audit: &[AuditEvent],
    ) -> Result<()> {
        let details = self
            .keys
            .seal_text(
                &Owner::Dossier(request.dossier),
                &BlockId::text("rights_requests", "details", &[&request.id]),
                &request.details,
            )
            .await?;
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO rights_requests (id, dossier, team, subject, kind, details, filed_by, \
             filed_role, filed_at, received_on, deadline) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&request.id)
        .bind(request.dossier.to_string())
        .bind(request.team.as_str())
        .bind(request.subject.as_str())
        .bind(request.kind.code())
        .bind(&details)
        .bind(&request.filed_by)
        .bind(&request.filed_role)
        .bind(&request.filed_at)
        .bind(&request.received_on)
        .bind(&request.deadline)
        .execute(&mut *tx)
        .await?;
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append_all(&mut tx, audit).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        Ok(())
    }

    /// Applies `edit` to request `id` with its audit rows, in one transaction, if the request is
    /// in the state the edit expects; returns whether it was (nothing is written otherwise).
    pub async fn edit_rights_request(
        &self,
        id: &str,
        edit: &RightsEdit,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        // The words of the edit, sealed with the request's dossier's key before the
        // transaction begins.
        let Some(dossier) = sqlx::query("SELECT dossier FROM rights_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(false);
        };
        let owner = Owner::Dossier(parse(dossier.get::<&str, _>(0), "rights_requests")?);
        let seal = |table: &'static str,
                    column: &'static str,
                    level: Option<&'static str>,
                    text: String| {
            let owner = &owner;
            async move {
                let row: Vec<&str> = std::iter::once(id).chain(level).collect();
                self.keys
                    .seal_text(owner, &BlockId::text(table, column, &row), &text)
                    .await
            }
        };
        let (first, second) = match edit {
            RightsEdit::Extend { extension, .. } => (
                seal(
                    "rights_requests",
                    "extension_reason",
                    None,
                    extension.reason.clone(),
                )
                .await?,
                None,
            ),
            RightsEdit::Decide(r) => (
                seal(
                    "rights_requests",
                    "verdict_reasons",
                    None,
                    r.reasons.clone(),
                )
                .await?,
                match &r.weighing {
                    Some(w) => Some(seal("rights_requests", "weighing", None, w.clone()).await?),
                    None => None,
                },
            ),
            RightsEdit::Escalate(e) => (
                seal(
                    "rights_escalations",
                    "grounds",
                    Some(e.level.code()),
                    e.grounds.clone(),
                )
                .await?,
                None,
            ),
            RightsEdit::DecideEscalation(level, r) => (
                seal(
                    "rights_escalations",
                    "reasons",
                    Some(level.code()),
                    r.reasons.clone(),
                )
                .await?,
                None,
            ),
            RightsEdit::CarriedOut(_) => (String::new(), None),
        };
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        let changed = match edit {
            RightsEdit::Extend {
                deadline,
                extension,
            } => sqlx::query(
                "UPDATE rights_requests SET deadline = $1, extension_months = $2, \
                 extension_reason = $3, extension_told_on = $4, extended_by = $5 \
                 WHERE id = $6 AND verdict IS NULL AND extension_months IS NULL",
            )
            .bind(deadline)
            .bind(extension.months)
            .bind(&first)
            .bind(&extension.told_on)
            .bind(&extension.by)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            RightsEdit::Decide(r) => sqlx::query(
                "UPDATE rights_requests SET verdict = $1, verdict_reasons = $2, decided_by = $3, \
                 decided_on = $4, refusal_ground = $5, outcome = $6, weighing = $7 \
                 WHERE id = $8 AND verdict IS NULL",
            )
            .bind(r.verdict.code())
            .bind(&first)
            .bind(&r.by)
            .bind(&r.on)
            .bind(r.ground.clone())
            .bind(r.outcome.clone())
            .bind(second)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            RightsEdit::Escalate(e) => sqlx::query(
                "INSERT INTO rights_escalations (request, level, grounds, escalated_by, \
                 escalated_on, deadline) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (request, level) DO NOTHING",
            )
            .bind(id)
            .bind(e.level.code())
            .bind(&first)
            .bind(&e.by)
            .bind(&e.on)
            .bind(&e.deadline)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            RightsEdit::DecideEscalation(level, r) => sqlx::query(
                "UPDATE rights_escalations SET verdict = $1, reasons = $2, decided_by = $3, \
                 decided_on = $4 WHERE request = $5 AND level = $6 AND verdict IS NULL",
            )
            .bind(r.verdict.code())
            .bind(&first)
            .bind(&r.by)
            .bind(&r.on)
            .bind(id)
            .bind(level.code())
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            RightsEdit::CarriedOut(outcome) => sqlx::query(
                "UPDATE rights_requests SET carried_out = $1 WHERE id = $2 AND carried_out IS NULL",
            )
            .bind(outcome)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        if changed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append_all(&mut tx, audit).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        Ok(true)
    }

    /// The requests `query` selects, oldest first, each with its escalations.
    pub async fn rights_requests(&self, query: RightsQuery<'_>) -> Result<Vec<RightsRequestRow>> {
        let rows = match query {
            RightsQuery::Id(id) => {
                sqlx::query("SELECT * FROM rights_requests WHERE id = $1")
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?
            }
            RightsQuery::All => {
                sqlx::query("SELECT * FROM rights_requests ORDER BY filed_at, id")
                    .fetch_all(&self.pool)
                    .await?
            }
            RightsQuery::Dossiers(dossiers) => {
                let mut out = Vec::new();
                for d in dossiers {
                    out.extend(
                        sqlx::query("SELECT * FROM rights_requests WHERE dossier = $1")
                            .bind(d.to_string())
                            .fetch_all(&self.pool)
                            .await?,
                    );
                }
                out
            }
        };
        let mut requests = Vec::with_capacity(rows.len());
        for r in &rows {
            requests.push(self.opened_request(request_row(r)?).await?);
        }
        requests.sort_by(|a, b| (&a.filed_at, &a.id).cmp(&(&b.filed_at, &b.id)));
        for r in &mut requests {
            let escalations = sqlx::query(
                "SELECT * FROM rights_escalations WHERE request = $1 ORDER BY escalated_on, level",
            )
            .bind(&r.id)
            .fetch_all(&self.pool)
            .await?;
            let mut list = escalations
                .iter()
                .map(escalation_row)
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .map(|(_, e)| e)
                .collect::<Vec<_>>();
            list.sort_by_key(|e| e.level);
            let owner = Owner::Dossier(r.dossier);
            for e in &mut list {
                let row = [r.id.as_str(), e.level.code()];
                let name = || format!("{} {}", r.id, e.level.code());
                e.grounds = self
                    .open_field(
                        &owner,
                        "rights_escalations",
                        "grounds",
                        &row,
                        &e.grounds,
                        name,
                    )
                    .await?;
                if let Some(d) = &mut e.decision {
                    d.reasons = self
                        .open_field(
                            &owner,
                            "rights_escalations",
                            "reasons",
                            &row,
                            &d.reasons,
                            name,
                        )
                        .await?;
                }
            }
            r.escalations = list;
        }
        Ok(requests)
    }

    /// Opens `table`'s `column` of `row` (I6).
    async fn open_field(
        &self,
        owner: &Owner,
        table: &'static str,
        column: &str,
        row: &[&str],
        stored: &str,
        name: impl FnOnce() -> String,
    ) -> Result<String> {
        self.keys
            .open_text(
                owner,
                &BlockId::text(table, column, row),
                stored,
                table,
                name,
            )
            .await
    }

    /// `r` as read, with its words opened.
    async fn opened_request(&self, mut r: RightsRequestRow) -> Result<RightsRequestRow> {
        let owner = Owner::Dossier(r.dossier);
        let table = "rights_requests";
        let row = [r.id.as_str()];
        let name = || r.id.clone();
        r.details = self
            .open_field(&owner, table, "details", &row, &r.details, name)
            .await?;
        if let Some(e) = &mut r.extension {
            e.reason = self
                .open_field(&owner, table, "extension_reason", &row, &e.reason, name)
                .await?;
        }
        if let Some(d) = &mut r.decision {
            d.reasons = self
                .open_field(&owner, table, "verdict_reasons", &row, &d.reasons, name)
                .await?;
            if let Some(w) = &d.weighing {
                d.weighing = Some(
                    self.open_field(&owner, table, "weighing", &row, w, name)
                        .await?,
                );
            }
        }
        Ok(r)
    }
}

/// A chain partner's share as recorded, ended or not (R19: "shares made and their grounds").
#[derive(Debug, Clone)]
pub struct ShareRecord {
    /// The partner.
    pub org: String,
    /// `consent` or `four_eyes`.
    pub ground: String,
    /// Why.
    pub purpose: String,
    /// Which items.
    pub items: Vec<String>,
    /// About whom.
    pub subjects: Vec<String>,
    /// When it ended, if it did.
    pub ended_at: Option<String>,
    /// Why it ended.
    pub ended_because: Option<String>,
}

impl Store {
    /// Every partner share of `dossier`, ended ones included, by partner.
    pub async fn partner_shares(&self, dossier: DossierId) -> Result<Vec<ShareRecord>> {
        let rows = sqlx::query(
            "SELECT org, ground, purpose, items, subjects, ended_at, ended_because \
             FROM partners WHERE dossier = $1 ORDER BY org",
        )
        .bind(dossier.to_string())
        .fetch_all(&self.pool)
        .await?;
        let list = |s: String| -> Result<Vec<String>> {
            serde_json::from_str(&s).map_err(|e| StorageError::Corrupt {
                table: "partners",
                detail: e.to_string(),
            })
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let org: String = r.get("org");
            out.push(ShareRecord {
                purpose: self
                    .partner_purpose(dossier, &org, r.get("purpose"))
                    .await?,
                org,
                ground: r.get("ground"),
                items: list(r.get("items"))?,
                subjects: list(r.get("subjects"))?,
                ended_at: r.get("ended_at"),
                ended_because: r.get("ended_because"),
            });
        }
        Ok(out)
    }

    /// A partner share's purpose as stored, opened (I6).
    pub(super) async fn partner_purpose(
        &self,
        dossier: DossierId,
        org: &str,
        stored: &str,
    ) -> Result<String> {
        let d = dossier.to_string();
        self.open_field(
            &Owner::Dossier(dossier),
            "partners",
            "purpose",
            &[&d, org],
            stored,
            || format!("{d} {org}"),
        )
        .await
    }
}

/// One breach as stored (R24).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct BreachRow {
    /// Its id (`br-` and a UUID).
    pub id: String,
    /// What happened.
    pub what: String,
    /// When it was discovered, RFC 3339 UTC: the 72 hours run from here.
    pub discovered_at: String,
    /// When it was recorded.
    pub recorded_at: String,
    /// Who recorded it.
    pub recorded_by: String,
    /// `access_log`, `lost_device` or `other`.
    pub source: String,
    /// The audit-log row of an access-log finding.
    pub audit_seq: Option<i64>,
    /// The user of a lost device.
    pub device_user: Option<String>,
    /// The lost device's storage id.
    pub device: Option<String>,
    /// The dossiers concerned (ids).
    pub dossiers: Vec<String>,
    /// The persons concerned (ids).
    pub persons: Vec<String>,
    /// `none`, `risk` or `high` (art. 33 and 34 thresholds).
    pub risk: String,
    /// The measures taken.
    pub measures: String,
    /// The authority must be notified by then (discovery + 72 hours), RFC 3339 UTC.
    pub notify_by: String,
    /// When the authority was notified.
    pub authority_notified_at: Option<String>,
    /// Whether the residents are informed (art. 34), once decided.
    pub inform_residents: Option<bool>,
    /// Why (not).
    pub residents_reason: Option<String>,
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).expect("strings serialize")
}

fn breach_row(r: &AnyRow) -> Result<BreachRow> {
    let list = |col: &str| -> Result<Vec<String>> {
        serde_json::from_str(r.get::<&str, _>(col)).map_err(|e| StorageError::Corrupt {
            table: "breaches",
            detail: e.to_string(),
        })
    };
    Ok(BreachRow {
        id: r.get("id"),
        what: r.get("what"),
        discovered_at: r.get("discovered_at"),
        recorded_at: r.get("recorded_at"),
        recorded_by: r.get("recorded_by"),
        source: r.get("source"),
        audit_seq: r.get("audit_seq"),
        device_user: r.get("device_user"),
        device: r.get("device"),
        dossiers: list("dossiers")?,
        persons: list("persons")?,
        risk: r.get("risk"),
        measures: r.get("measures"),
        notify_by: r.get("notify_by"),
        authority_notified_at: r.get("authority_notified_at"),
        inform_residents: r.get::<Option<i64>, _>("inform_residents").map(|v| v != 0),
        residents_reason: r.get("residents_reason"),
    })
}

impl Store {
    /// Records `breach` with its audit rows in one transaction; a lost device's storage is
    /// revoked in the same transaction.
    pub async fn record_breach(&self, b: &BreachRow, audit: &[AuditEvent]) -> Result<()> {
        let owner = Owner::breach(&b.id);
        let field = |column| BlockId::text("breaches", column, &[&b.id]);
        let what = self.keys.seal_text(&owner, &field("what"), &b.what).await?;
        let measures = self
            .keys
            .seal_text(&owner, &field("measures"), &b.measures)
            .await?;
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO breaches (id, what, discovered_at, recorded_at, recorded_by, source, \
             audit_seq, device_user, device, dossiers, persons, risk, measures, notify_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&b.id)
        .bind(&what)
        .bind(&b.discovered_at)
        .bind(&b.recorded_at)
        .bind(&b.recorded_by)
        .bind(&b.source)
        .bind(b.audit_seq)
        .bind(&b.device_user)
        .bind(&b.device)
        .bind(json_list(&b.dossiers))
        .bind(json_list(&b.persons))
        .bind(&b.risk)
        .bind(&measures)
        .bind(&b.notify_by)
        .execute(&mut *tx)
        .await?;
        if let (Some(user), Some(device)) = (&b.device_user, &b.device) {
            // Every instance refuses it (issue 17).
            super::feed::devices_changed(&mut tx, self.dialect, &self.instance).await?;
            sqlx::query(
                "INSERT INTO revoked_devices (user_id, storage_id, revoked_at, breach) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, storage_id) DO NOTHING",
            )
            .bind(user)
            .bind(device)
            .bind(&b.recorded_at)
            .bind(&b.id)
            .execute(&mut *tx)
            .await?;
        }
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append_all(&mut tx, audit).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        drop(tail);
        // A lost device's key is destroyed once its revocation is committed (R29): the copy on
        // the device is then unreadable, and the key is never released again (refused on every
        // later request, which also destroys it should this step not have happened).
        if let (Some(user), Some(device)) = (&b.device_user, &b.device) {
            let key_id = self
                .keys
                .destroy_device_key(user, device, &b.recorded_at)
                .await?;
            let at = super::parse_ts(&b.recorded_at, "breaches")
                .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
            let mut ev =
                AuditEvent::new(at, "regie-server", "system", crate::audit::AuditAction::Key);
            ev.device = Some(device.clone());
            ev.detail = Some(format!(
                "device key {key_id} of {user} destroyed: device reported lost in {}",
                b.id
            ));
            self.append_audit(&ev).await?;
        }
        Ok(())
    }

    /// Records the notification of breach `id` and the decision on informing the residents;
    /// false when there is no such breach.
    pub async fn record_breach_notification(
        &self,
        id: &str,
        notified_at: Option<&str>,
        inform_residents: bool,
        reason: &str,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        let reason = self
            .keys
            .seal_text(
                &Owner::breach(id),
                &BlockId::text("breaches", "residents_reason", &[id]),
                reason,
            )
            .await?;
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE breaches SET authority_notified_at = COALESCE($1, authority_notified_at), \
             inform_residents = $2, residents_reason = $3 WHERE id = $4",
        )
        .bind(notified_at)
        .bind(i64::from(inform_residents))
        .bind(&reason)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append_all(&mut tx, audit).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        Ok(true)
    }

    /// Every breach, oldest discovery first.
    pub async fn breaches(&self) -> Result<Vec<BreachRow>> {
        let rows = sqlx::query("SELECT * FROM breaches ORDER BY discovered_at, id")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut b = breach_row(r)?;
            let owner = Owner::breach(&b.id);
            let row = [b.id.as_str()];
            let name = || b.id.clone();
            let table = "breaches";
            b.what = self
                .open_field(&owner, table, "what", &row, &b.what, name)
                .await?;
            b.measures = self
                .open_field(&owner, table, "measures", &row, &b.measures, name)
                .await?;
            if let Some(reason) = &b.residents_reason {
                b.residents_reason = Some(
                    self.open_field(&owner, table, "residents_reason", &row, reason, name)
                        .await?,
                );
            }
            out.push(b);
        }
        Ok(out)
    }

    /// The devices reported lost: (user, storage id).
    pub async fn revoked_devices(&self) -> Result<Vec<(String, String)>> {
        Ok(
            sqlx::query("SELECT user_id, storage_id FROM revoked_devices")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        )
    }

    /// The audit row at `seq`, if any.
    pub async fn audit_row_at(&self, seq: i64) -> Result<Option<AuditEvent>> {
        match sqlx::query("SELECT * FROM audit WHERE seq = $1")
            .bind(seq)
            .fetch_optional(&self.pool)
            .await?
        {
            Some(r) => Ok(Some(super::audit_row(&r)?)),
            None => Ok(None),
        }
    }
}

impl Store {
    /// The restrictions in force: (dossier, person).
    pub async fn restrictions(&self) -> Result<Vec<(DossierId, PersonId)>> {
        sqlx::query("SELECT dossier, person FROM restrictions WHERE lifted_at IS NULL")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    parse(r.get::<&str, _>(0), "restrictions")?,
                    parse(r.get::<&str, _>(1), "restrictions")?,
                ))
            })
            .collect()
    }
}

impl Store {
    /// After rows holding content were deleted and committed (a document replaced on erasure or
    /// rectification, R20/R21): SQLite's `secure_delete` zeroed the freed pages in the database
    /// file, and the WAL, which still holds the old page images, is checkpointed and truncated.
    /// PostgreSQL has no equivalent: the rows are gone for every query at commit, their bytes
    /// stay in the table files until VACUUM reuses the space (and in WAL archives and backups
    /// as long as those are kept), as `Dialect::after_destruction` says.
    pub async fn wipe_freed_pages(&self) -> Result<()> {
        self.dialect.after_destruction(&self.pool).await
    }
}

impl Store {
    /// Every case-conference contribution with the recipients its contributor agreed to (R15),
    /// by dossier — of every dossier (loaded once at start; the hub keeps them current), or of
    /// `only` that one (a dossier loaded again: its relationships must carry them too).
    pub async fn contributions(
        &self,
        only: Option<DossierId>,
    ) -> Result<Vec<(DossierId, regie_core::relationship::Contribution)>> {
        let filter = if only.is_some() {
            " WHERE dossier = $1"
        } else {
            ""
        };
        let bound = |sql: String| {
            let query = sqlx::query(sqlx::AssertSqlSafe(sql));
            match only {
                Some(d) => query.bind(d.to_string()),
                None => query,
            }
        };
        let mut out: Vec<(DossierId, regie_core::relationship::Contribution)> = Vec::new();
        for r in bound(format!(
            "SELECT dossier, entry, contributor FROM contributions{filter} \
             ORDER BY dossier, recorded_at, entry"
        ))
        .fetch_all(&self.pool)
        .await?
        {
            out.push((
                parse(r.get::<&str, _>(0), "contributions")?,
                regie_core::relationship::Contribution {
                    entry: r.get(1),
                    contributor: r.get(2),
                    agreed: Vec::new(),
                },
            ));
        }
        for r in bound(format!(
            "SELECT dossier, entry, recipient FROM contribution_agreements{filter} \
             ORDER BY agreed_on, recipient"
        ))
        .fetch_all(&self.pool)
        .await?
        {
            let dossier: DossierId = parse(r.get::<&str, _>(0), "contribution_agreements")?;
            let entry: String = r.get(1);
            if let Some((_, c)) = out
                .iter_mut()
                .find(|(d, c)| *d == dossier && c.entry == entry)
            {
                c.agreed.push(r.get(2));
            }
        }
        Ok(out)
    }
}
