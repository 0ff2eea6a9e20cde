//! Oversight over HTTP (R2, R3, R9, R10, I3): breaking the glass — a warning with a one-time
//! confirmation token first, then a time-boxed read grant decided by the policy — the monthly
//! break-glass report per team in two tiers, the privacy officer's unusual-access report, the
//! resident's "who looked at my dossier", and the team manager's access review. Reports are
//! computed by [`crate::report`] from the audit log, and every read of them is audited first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use regie_core::id::{DistrictId, DocumentKey, DossierId, PersonId, TeamId};
use regie_core::policy::{
    Action, Decision, DenyReason, ReportTier as Tier, ReviewLine, access_review as review, decide,
};
use regie_core::principal::Principal;
use regie_core::relationship::Grant;
use regie_core::relationship::Relationships;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::params::{self, PageSize, Params};
use super::{ApiError, ApiResult, AppState, Caller, doc};
use crate::audit::{AuditAction, AuditEvent};
use crate::hub::{DossierEntry, HubError, Relating, subjects};
use crate::report::{self, Category, GrantUses, PatternScan, ReportMonth, UnusualAccess, html};
use crate::storage::{AuditQuery, BreakGlassRequest, RelationEdit};

/// How long the warning's confirmation token is accepted.
const CONFIRM_WITHIN: time::Duration = time::Duration::minutes(10);
/// The longest reason or review note accepted, in characters.
const MAX_TEXT: usize = 2000;
/// A burst is this many different dossiers within an hour, unless the request says otherwise.
const DEFAULT_BURST: usize = 10;
/// Reads under a grant that began late in the month are looked for this long after it (grants
/// last at most 72 hours).
const LOOKAHEAD: time::Duration = time::Duration::days(3);

fn event(who: &Principal, at: OffsetDateTime, action: AuditAction) -> AuditEvent {
    AuditEvent::new(at, who.user.as_str(), who.role.as_str(), action)
}

async fn audit(state: &AppState, ev: &AuditEvent) -> ApiResult<()> {
    state.hub.store().append_audit(ev).await?;
    Ok(())
}

/// Parses an optional JSON body; an empty body is `None`.
fn json_body<T: DeserializeOwned>(body: &Bytes, shape: &str) -> ApiResult<Option<T>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("the body must be a JSON object {shape}")))
}

fn rfc3339(at: OffsetDateTime) -> String {
    report::utc_rfc3339(at)
}

fn too_long(what: &'static str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        what,
        format!("keep it under {MAX_TEXT} characters"),
    )
}

// ---- breaking the glass -------------------------------------------------------------------

/// The body of `POST /api/v1/dossiers/{id}/break-glass`.
#[derive(Debug, Default, Deserialize, ToSchema)]
struct BreakGlassBody {
    /// Why, in the colleague's words (mandatory).
    #[serde(default)]
    reason: String,
    /// `crisis`, `safety`, `continuity` or `other` (mandatory).
    #[serde(default)]
    category: Option<String>,
    /// The token from the warning; good once, for 10 minutes, for the same user and dossier;
    /// present only on the confirming call.
    #[serde(default)]
    confirmation: Option<String>,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn duration_text(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{} hours", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} minutes", secs / 60)
    } else {
        format!("{secs} seconds")
    }
}

/// The documents of `entry` that `who` may read at `at` under `rel`, by key, as the policy says.
fn readable(
    who: &Principal,
    entry: &DossierEntry,
    rel: &regie_core::relationship::Relationships,
    at: OffsetDateTime,
) -> BTreeMap<String, String> {
    entry
        .documents
        .iter()
        .filter(|(key, _)| decide(who, Action::Read(key), rel, at).is_allowed())
        .map(|(key, id)| (key.to_string(), id.to_url()))
        .collect()
}

/// Audits a refused break-glass attempt and turns it into the answer: a missing reason and an
/// existing access are said plainly to the team colleague; to anyone else the dossier does not
/// exist (R3: another district's dossiers are not even acknowledged).
async fn refuse(
    state: &AppState,
    who: &Principal,
    entry: &DossierEntry,
    reason: DenyReason,
    at: OffsetDateTime,
) -> ApiError {
    let mut ev = event(who, at, AuditAction::Deny);
    ev.dossier = Some(entry.rel.dossier.to_string());
    ev.persons = Some(subjects(&DocumentKey::Meta, &entry.persons));
    ev.outcome = reason.code().into();
    ev.detail = Some("break_glass".into());
    if let Err(e) = audit(state, &ev).await {
        return e;
    }
    match reason {
        DenyReason::ReasonRequired => ApiError::new(
            StatusCode::BAD_REQUEST,
            "reason_required",
            "breaking the glass needs a reason: say why you need this dossier now",
        ),
        DenyReason::AlreadyHasAccess => ApiError::new(
            StatusCode::CONFLICT,
            "already_has_access",
            "you can already read this dossier; there is no glass to break",
        ),
        _ => ApiError::not_found(),
    }
}

/// `POST /api/v1/dossiers/{id}/break-glass` (R2): without `confirmation`, checks the policy,
/// keeps the request and answers with the warning and a one-time confirmation token; with it,
/// grants read access for the configured time, audited as an emergency access.
#[utoipa::path(
    post,
    path = "/api/v1/dossiers/{id}/break-glass",
    summary = r#"Break the glass (R2): a team colleague (or a citywide worker) asks with a reason and category and gets a warning and a one-time confirmation token; a second call with the token grants read access to plan, record and meta for --break-glass-hours (default 8), audited as an emergency access. At the grant's end connected devices get revoked. Anyone else gets not_found (R3)."#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
    ),
    request_body(content = Option<BreakGlassBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "The warning; nothing is granted yet", body = BreakGlassWarning),
        (status = 201, description = "Granted", body = BreakGlassGranted),
        (status = 400, description = "reason_required, category_required, reason_too_long, invalid_confirmation or bad_request; or bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier, or not a team colleague in its district", body = doc::ErrorBody),
        (status = 409, description = "already_has_access", body = doc::ErrorBody),
        doc::WithBody,
    )
)]
pub(super) async fn break_glass(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let id: DossierId = id.parse().map_err(|_| ApiError::not_found())?;
    let entry = state
        .hub
        .current_dossier(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let now = OffsetDateTime::now_utc();
    // Standing before the body: whoever could not break the glass here gets the answer an
    // unknown dossier gets, however malformed their request (I5).
    match decide(&who, Action::BreakGlass { reason: None }, &entry.rel, now) {
        Decision::Deny(reason) if reason != DenyReason::AlreadyHasAccess => {
            return Err(refuse(&state, &who, &entry, reason, now).await);
        }
        _ => {}
    }
    let body: BreakGlassBody =
        json_body(&body, "{\"reason\", \"category\"} or {\"confirmation\"}")?.unwrap_or_default();
    match body.confirmation {
        None => warn(&state, &who, &entry, body, now).await,
        Some(token) => confirm(&state, &who, entry, &token, now).await,
    }
}

fn grant_for(state: &AppState, who: &Principal, reason: String, at: OffsetDateTime) -> Grant {
    let length =
        time::Duration::try_from(state.oversight.break_glass).unwrap_or(time::Duration::hours(8));
    Grant {
        user: who.user.clone(),
        reason,
        granted_at: at,
        expires_at: at + length,
    }
}

async fn warn(
    state: &AppState,
    who: &Principal,
    entry: &DossierEntry,
    body: BreakGlassBody,
    now: OffsetDateTime,
) -> ApiResult<Response> {
    let action = Action::BreakGlass {
        reason: Some(&body.reason),
    };
    if let Decision::Deny(reason) = decide(who, action, &entry.rel, now) {
        return Err(refuse(state, who, entry, reason, now).await);
    }
    let reason = body.reason.trim().to_owned();
    if reason.chars().count() > MAX_TEXT {
        return Err(too_long("reason_too_long"));
    }
    let category: Category = body
        .category
        .as_deref()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "category_required",
                "say what kind of emergency this is: category crisis, safety, continuity or other",
            )
        })?;
    // What the grant would open, as the policy would decide it.
    let mut would = (*entry.rel).clone();
    would
        .grants
        .push(grant_for(state, who, reason.clone(), now));
    let documents: Vec<String> = readable(who, entry, &would, now).into_keys().collect();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let request = BreakGlassRequest {
        dossier: entry.rel.dossier,
        user: who.user.clone(),
        category: category.as_str().into(),
        reason,
        warned_at: now,
        expires_at: now + CONFIRM_WITHIN,
    };
    let mut ev = event(who, now, AuditAction::BreakGlass);
    ev.dossier = Some(entry.rel.dossier.to_string());
    ev.persons = Some(subjects(&DocumentKey::Meta, &entry.persons));
    ev.outcome = "warned".into();
    ev.detail = Some(category.as_str().into());
    // The waiting request and the warning's audit row: one transaction.
    state
        .hub
        .store()
        .put_break_glass_request(&token_hash(&token), &request, &ev)
        .await?;
    let length = duration_text(state.oversight.break_glass);
    let warning = format!(
        "You are not assigned to this dossier. Breaking the glass lets you read {} for {length}, \
         for this emergency only, and never edit. It is logged as an emergency access with your \
         name and reason, reported to your team manager and the privacy officer, and shown to \
         the resident. Confirm only if you need this dossier now.",
        documents.join(", ")
    );
    Ok((
        StatusCode::OK,
        Json(BreakGlassWarning {
            status: "confirmation_required",
            warning,
            confirmation: token,
            confirm_before: rfc3339(request.expires_at),
            category,
            documents,
            grant_seconds: state.oversight.break_glass.as_secs_f64(),
        }),
    )
        .into_response())
}

/// The warning before the glass is broken; nothing is granted yet.
#[derive(Serialize, ToSchema)]
struct BreakGlassWarning {
    /// `confirmation_required`.
    #[schema(value_type = String)]
    status: &'static str,
    warning: String,
    /// The one-time token that confirms.
    confirmation: String,
    #[schema(format = DateTime)]
    confirm_before: String,
    category: Category,
    /// The documents the grant would open.
    documents: Vec<String>,
    /// How long the grant would last.
    grant_seconds: f64,
}

/// A break-glass grant.
#[derive(Serialize, ToSchema)]
struct BreakGlassGranted {
    /// `granted`.
    #[schema(value_type = String)]
    status: &'static str,
    #[schema(format = DateTime)]
    granted_at: String,
    #[schema(format = DateTime)]
    expires_at: String,
    category: Category,
    /// The documents now readable, their `automerge:` URLs by key.
    documents: BTreeMap<String, String>,
}

/// Why a confirmed break-glass request was not granted.
enum Refusal {
    /// The policy refused it as the dossier stands now.
    Denied(DenyReason),
    /// The hub or store failed.
    Hub(HubError),
}

impl From<HubError> for Refusal {
    fn from(e: HubError) -> Self {
        Refusal::Hub(e)
    }
}

async fn confirm(
    state: &AppState,
    who: &Principal,
    entry: DossierEntry,
    token: &str,
    now: OffsetDateTime,
) -> ApiResult<Response> {
    let invalid = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_confirmation",
            "this confirmation is unknown, used or expired; ask again with a reason",
        )
    };
    let request = state
        .hub
        .store()
        .break_glass_request(&token_hash(token), &who.user, entry.rel.dossier)
        .await?
        .filter(|r| now < r.expires_at)
        .ok_or_else(invalid)?;
    let category: Category = request.category.parse().unwrap_or(Category::Other);
    let grant = grant_for(state, who, request.reason.clone(), now);
    // I3: the emergency access is on record, in the same transaction, before the grant can
    // be used.
    let mut ev = event(who, now, AuditAction::BreakGlass);
    ev.dossier = Some(entry.rel.dossier.to_string());
    ev.persons = Some(subjects(&DocumentKey::Meta, &entry.persons));
    ev.basis = Some("break_glass".into());
    ev.detail = Some(category.as_str().into());
    let granted = state
        .hub
        .relate::<Refusal>(entry.rel.dossier, now, |current| {
            // Relationships may have changed since the warning: the policy decides again.
            let action = Action::BreakGlass {
                reason: Some(&request.reason),
            };
            if let Decision::Deny(reason) = decide(who, action, &current.rel, now) {
                return Err(Refusal::Denied(reason));
            }
            let mut after = current.clone();
            Arc::make_mut(&mut after.rel).grants.push(grant.clone());
            Ok(Some(Relating::rows(
                vec![
                    RelationEdit::ConsumeBreakGlass(token_hash(token)),
                    RelationEdit::Grant(grant.clone()),
                ],
                after,
                ev,
            )))
        })
        .await;
    let entry = match granted {
        Ok(entry) => entry,
        Err(Refusal::Denied(reason)) => return Err(refuse(state, who, &entry, reason, now).await),
        Err(Refusal::Hub(e)) => return Err(e.into()),
    };
    let documents = readable(who, &entry, &entry.rel, now);
    Ok((
        StatusCode::CREATED,
        Json(BreakGlassGranted {
            status: "granted",
            granted_at: rfc3339(grant.granted_at),
            expires_at: rfc3339(grant.expires_at),
            category,
            documents,
        }),
    )
        .into_response())
}

// ---- reports ------------------------------------------------------------------------------
//
// Reports read the audit log in pages of at most `AUDIT_PAGE_MAX` rows, selected by SQL, and
// aggregate as they go; lists are answered a page at a time (`limit`, then `after` = the `next`
// of the page before). So neither the time nor the memory of one request grows with the whole log
// (I7): a month is read once per request, and only its rows of interest.

/// Uses per page of the break-glass detail.
const DETAIL_PAGE: PageSize = PageSize {
    default: 200,
    max: 1000,
};
/// Lines per page of each list of the unusual-access report.
const UNUSUAL_PAGE: PageSize = PageSize {
    default: 500,
    max: 1000,
};
/// Lines per page of the resident's access log.
const ACCESS_LOG_PAGE: PageSize = PageSize {
    default: 200,
    max: 1000,
};
/// Reads listed per break-glass use in the detail (all are counted in `reads_total`).
pub(super) const READS_LISTED: usize = 100;

/// The `format` of a report.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `format` parses the parameter
#[schema(rename_all = "snake_case")]
pub(super) enum ReportFormat {
    Json,
    Html,
}

/// The `tier` of the break-glass report.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only
#[schema(rename_all = "snake_case")]
pub(super) enum ReportTier {
    Summary,
    Detail,
}

/// The break-glass report: the summary or the detail tier.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // a schema only: `respond` serializes either tier
#[serde(untagged)]
enum BreakGlassReport {
    Summary(report::BreakGlassSummary),
    Detail(report::BreakGlassDetail),
}

/// How a report or register is answered: `?format=json` (the default) or `html`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Html,
}

/// The `format` query parameter: json (or absent) or html; anything else is `invalid_format`.
pub(super) fn format(q: &Params) -> ApiResult<Format> {
    match q.get("format") {
        None | Some("json") => Ok(Format::Json),
        Some("html") => Ok(Format::Html),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_format",
            "format is json or html",
        )),
    }
}

fn month(q: &Params, now: OffsetDateTime) -> ApiResult<ReportMonth> {
    match q.get("month") {
        None => Ok(ReportMonth::containing(now).previous()),
        Some(m) => m.parse().map_err(|e: report::MonthError| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_month", e.to_string())
        }),
    }
}

/// A report as JSON or as a printable page; never cached, it names people.
pub(super) fn respond(
    format: Format,
    value: &impl Serialize,
    page: impl FnOnce() -> String,
) -> Response {
    let no_store = (header::CACHE_CONTROL, "no-store");
    match format {
        Format::Json => ([no_store], Json(value)).into_response(),
        Format::Html => (
            [no_store, (header::CONTENT_TYPE, "text/html; charset=utf-8")],
            page(),
        )
            .into_response(),
    }
}

fn team_of(team: &str) -> ApiResult<TeamId> {
    team.parse()
        .map_err(|_| ApiError::bad_request("not a team id"))
}

/// The dossiers' teams, keyed by dossier id as the log writes it.
async fn teams(state: &AppState) -> ApiResult<HashMap<String, String>> {
    Ok(state
        .hub
        .store()
        .dossier_teams()
        .await?
        .into_iter()
        .map(|(d, t)| (d.to_string(), t.to_string()))
        .collect())
}

/// `GET /api/v1/teams/{team}/break-glass-report` (R9): the team manager gets the summary of
/// their own team, the privacy officer the named detail (or the summary with `tier=summary`).
/// The detail lists its uses a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/teams/{team}/break-glass-report",
    summary = r#"Monthly break-glass report (R9): the team's manager gets the non-identifying summary; the privacy officer gets the named detail (or tier=summary). Off-hours: before 07:00 or from 19:00 Europe/Amsterdam on weekdays, and weekends. Audited."#,
    params(
        ("team" = regie_core::id::TeamId, Path, description = "The team"),
        ("month" = Option<String>, Query, pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$", description = "YYYY-MM on the Europe/Amsterdam clock, from 1970-01 to 9999-11; defaults to last month (invalid_month)"),
        ("format" = Option<ReportFormat>, Query, description = "html gives a printable, server-rendered page"),
        ("tier" = Option<ReportTier>, Query, description = "Without it: the most the caller may read"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Uses of the detail tier per page, 1 to 1000 (invalid_limit)"),
        ("after" = Option<String>, Query, description = "The next of the previous page of the detail tier (invalid_cursor)"),
    ),
    responses(
        (status = 200, description = "The report", content((BreakGlassReport = "application/json"), (String = "text/html"))),
        (status = 400, description = "invalid_month, invalid_tier, invalid_format, invalid_limit, invalid_cursor; or bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "other_team, privacy_officer_only or managers_and_privacy_officer_only", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
pub(super) async fn break_glass_report(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let team = team_of(&team)?;
    let q = Params::parse(&uri, &["month", "tier", "format", "limit", "after"])?;
    let now = OffsetDateTime::now_utc();
    let (format, month) = (format(&q)?, month(&q, now)?);
    let (limit, after) = (q.limit(DETAIL_PAGE)?, q.after()?);
    let asked = match q.get("tier") {
        None => None,
        Some("summary") => Some(Tier::Summary),
        Some("detail") => Some(Tier::Detail),
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_tier",
                "tier is summary or detail",
            ));
        }
    };
    // Without `tier`, the most the caller may read.
    let place = Relationships::of_team(team.clone());
    let may = |tier| decide(&who, Action::ReadReport(tier), &place, now);
    let tier = match asked {
        Some(tier) => tier,
        None if may(Tier::Detail).is_allowed() => Tier::Detail,
        None => Tier::Summary,
    };
    if let Decision::Deny(reason) = may(tier) {
        return Err(ApiError::forbidden(reason.code()));
    }
    let mut ev = event(&who, now, AuditAction::AuditRead);
    ev.detail = Some(format!(
        "break_glass_report team={team} month={month} tier={}",
        if tier == Tier::Summary {
            "summary"
        } else {
            "detail"
        }
    ));
    audit(&state, &ev).await?;
    let store = state.hub.store();
    // Reads under a grant that began late in the month are looked for after it, so the uses
    // they may belong to are read up to the same horizon.
    let window = |q: AuditQuery| AuditQuery {
        from: Some(month.start()),
        to: Some(month.end() + LOOKAHEAD),
        team: Some(team.clone()),
        ..q
    };
    let mut glass = Vec::new();
    store
        .scan_audit(
            &window(AuditQuery {
                actions: vec!["break_glass"],
                outcome: Some("allowed"),
                ..AuditQuery::default()
            }),
            |seq, e| glass.push((seq, e.clone())),
        )
        .await?;
    let grants: Vec<(String, Grant)> = store
        .grants_between(month.start(), month.end())
        .await?
        .into_iter()
        .map(|(d, g)| (d.to_string(), g))
        .collect();
    let mut uses = GrantUses::new(
        glass.iter().map(|(seq, e)| (*seq, e)),
        &grants,
        &teams(&state).await?,
    );
    drop(glass);
    // The detail page: the month's uses after the cursor, up to the limit.
    let period = month.period();
    let in_month: Vec<i64> = uses
        .uses()
        .filter(|(_, u)| period.contains(u.at))
        .map(|(seq, _)| seq)
        .collect();
    let start = match after {
        None => 0,
        Some(a) => {
            1 + in_month
                .iter()
                .position(|s| *s == a)
                .ok_or_else(params::invalid_cursor)?
        }
    };
    let page: HashSet<i64> = if tier == Tier::Detail {
        in_month.iter().skip(start).take(limit).copied().collect()
    } else {
        HashSet::new()
    };
    uses.list_reads(|seq, _| page.contains(&seq), READS_LISTED);
    store
        .scan_audit(
            &window(AuditQuery {
                actions: vec!["open", "read"],
                basis: Some("break_glass"),
                ..AuditQuery::default()
            }),
            |_, e| uses.attribute(e),
        )
        .await?;
    let uses = uses.finish();
    Ok(match tier {
        Tier::Summary => {
            let s = report::summarize(&uses, team.as_str(), month)
                .suppressed(usize::from(state.oversight.small_count_threshold));
            respond(format, &s, || html::summary_page(&s))
        }
        Tier::Detail => {
            let listed: Vec<report::BreakGlassUse> = uses
                .into_iter()
                .filter(|u| period.contains(u.at))
                .skip(start)
                .take(limit)
                .collect();
            // The chain is walked for the first page: the pages after it continue that report,
            // and walking the whole log again for each would make reading every page cost the
            // log's length times the pages.
            let log = match after {
                None => Some(store.verify_audit().await?),
                Some(_) => None,
            };
            let mut d = report::detail(&listed, team.as_str(), month, log);
            d.total = in_month.len();
            d.next =
                (start + limit < in_month.len()).then(|| in_month[start + limit - 1].to_string());
            respond(format, &d, || html::detail_page(&d))
        }
    })
}

/// A cursor over the two lists of the unusual-access report: where each list goes on, or that
/// it is done. Written `<emergency>.<refused>`, each a log position or `x`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct TwoLists {
    emergency: ListCursor,
    refused: ListCursor,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ListCursor {
    /// From the first line.
    #[default]
    Start,
    /// After the line at this log position.
    After(i64),
    /// Nothing more.
    Done,
}

impl ListCursor {
    fn parse(v: &str) -> ApiResult<ListCursor> {
        if v == "x" {
            Ok(ListCursor::Done)
        } else {
            params::cursor(v).map(ListCursor::After)
        }
    }

    fn text(self) -> String {
        match self {
            ListCursor::After(seq) => seq.to_string(),
            ListCursor::Start | ListCursor::Done => "x".into(),
        }
    }

    /// The cursor after a page of `limit` lines read as `lines`, one more than the page when
    /// there is a next.
    fn after_page(self, lines: &[(i64, AuditEvent)], limit: usize) -> ListCursor {
        match lines.get(limit.wrapping_sub(1)) {
            Some((seq, _)) if lines.len() > limit => ListCursor::After(*seq),
            _ => ListCursor::Done,
        }
    }
}

impl TwoLists {
    fn parse(v: &str) -> ApiResult<TwoLists> {
        let (e, r) = v.split_once('.').ok_or_else(params::invalid_cursor)?;
        let cursor = TwoLists {
            emergency: ListCursor::parse(e)?,
            refused: ListCursor::parse(r)?,
        };
        if cursor.emergency == ListCursor::Done && cursor.refused == ListCursor::Done {
            return Err(params::invalid_cursor());
        }
        Ok(cursor)
    }

    fn next(self) -> Option<String> {
        (self
            != TwoLists {
                emergency: ListCursor::Done,
                refused: ListCursor::Done,
            })
        .then(|| format!("{}.{}", self.emergency.text(), self.refused.text()))
    }
}

/// One page of a list of the unusual-access report: the lines SQL selects after the cursor, and
/// one more when there is a next page.
async fn list_page(
    state: &AppState,
    query: &AuditQuery,
    cursor: ListCursor,
    limit: usize,
) -> ApiResult<Vec<(i64, AuditEvent)>> {
    Ok(match cursor {
        ListCursor::Done => Vec::new(),
        ListCursor::Start => state.hub.store().audit_page(query, None, limit + 1).await?,
        ListCursor::After(seq) => {
            state
                .hub
                .store()
                .audit_page(query, Some(seq), limit + 1)
                .await?
        }
    })
}

/// `GET /api/v1/reports/unusual-access` (R9): accesses outside the normal relationship and
/// unusual patterns in a month, for the privacy officer. The two lists (emergency reads,
/// refused attempts) come a page at a time with their totals; the patterns are computed over
/// the whole month on every page.
#[utoipa::path(
    get,
    path = "/api/v1/reports/unusual-access",
    summary = r#"Accesses outside the normal relationship (emergency reads, refused attempts) and unusual patterns (many dossiers within an hour by one user, professionals' off-hours access) in a month (privacy officer; audited)"#,
    params(
        ("month" = Option<String>, Query, pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$", description = "YYYY-MM on the Europe/Amsterdam clock, from 1970-01 to 9999-11; defaults to last month (invalid_month)"),
        ("format" = Option<ReportFormat>, Query, description = "html gives a printable, server-rendered page"),
        ("threshold" = Option<u32>, Query, minimum = 2, description = "Different dossiers within one hour that make a burst"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Lines of each list (emergency_reads, refused) per page, 1 to 1000 (invalid_limit)"),
        ("after" = Option<String>, Query, description = "The next of the previous page; continues both lists (invalid_cursor)"),
    ),
    responses(
        (status = 200, description = "The report", content((UnusualAccess = "application/json"), (String = "text/html"))),
        (status = 400, description = "invalid_month, invalid_threshold, invalid_format, invalid_limit, invalid_cursor; or bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "privacy_officer_only", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
pub(super) async fn unusual_access(
    State(state): State<AppState>,
    Caller(who): Caller,
    uri: Uri,
) -> ApiResult<Response> {
    super::registers_readable(&who)?;
    let q = Params::parse(&uri, &["month", "format", "threshold", "limit", "after"])?;
    let now = OffsetDateTime::now_utc();
    let (format, month) = (format(&q)?, month(&q, now)?);
    let limit = q.limit(UNUSUAL_PAGE)?;
    let cursor = q
        .get("after")
        .map(TwoLists::parse)
        .transpose()?
        .unwrap_or_default();
    let threshold = match q.get("threshold") {
        None => DEFAULT_BURST,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| (2..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_threshold",
                    "threshold is a number of dossiers from 2 to 1000",
                )
            })?,
    };
    let mut ev = event(&who, now, AuditAction::AuditRead);
    ev.detail = Some(format!(
        "unusual_access month={month} threshold={threshold}"
    ));
    audit(&state, &ev).await?;
    let store = state.hub.store();
    let in_month = |q: AuditQuery| AuditQuery {
        from: Some(month.start()),
        to: Some(month.end()),
        ..q
    };
    let emergency_query = in_month(AuditQuery {
        actions: vec!["open", "read"],
        basis: Some("break_glass"),
        ..AuditQuery::default()
    });
    let refused_query = in_month(AuditQuery {
        actions: vec!["deny"],
        ..AuditQuery::default()
    });
    let teams = teams(&state).await?;
    let emergency = list_page(&state, &emergency_query, cursor.emergency, limit).await?;
    let refused = list_page(&state, &refused_query, cursor.refused, limit).await?;
    let next = TwoLists {
        emergency: cursor.emergency.after_page(&emergency, limit),
        refused: cursor.refused.after_page(&refused, limit),
    }
    .next();
    // The patterns and the chain's state are the report's; they are computed for its first
    // page, so reading every page costs the month once, not once per page.
    let first_page = q.get("after").is_none();
    let (bursts, off_hours, log) = if first_page {
        let mut scan = PatternScan::new(threshold);
        store
            .scan_audit(
                &in_month(AuditQuery {
                    actions: vec!["open", "read", "write", "export"],
                    with_dossier: true,
                    not_actors: vec!["server".into()],
                    ..AuditQuery::default()
                }),
                |_, e| scan.push(e),
            )
            .await?;
        let (bursts, off_hours) = scan.finish();
        (
            Some(bursts),
            Some(off_hours),
            Some(store.verify_audit().await?),
        )
    } else {
        (None, None, None)
    };
    let u = UnusualAccess {
        month: month.to_string(),
        period: month.period(),
        timezone: report::TIMEZONE,
        off_hours_definition: report::OFF_HOURS,
        burst_threshold: threshold,
        emergency_reads: emergency
            .iter()
            .take(limit)
            .map(|(_, e)| report::line(e, &teams))
            .collect(),
        emergency_reads_total: store.audit_count(&emergency_query).await?,
        refused: refused
            .iter()
            .take(limit)
            .map(|(_, e)| report::line(e, &teams))
            .collect(),
        refused_total: store.audit_count(&refused_query).await?,
        next,
        bursts,
        off_hours,
        log,
    };
    Ok(respond(format, &u, || html::unusual_page(&u)))
}

/// The answer of `GET /api/v1/me/access-log`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AccessLog {
    person: PersonId,
    period: report::Period,
    #[schema(value_type = String)]
    timezone: &'static str,
    worker_names: bool,
    accesses: Vec<report::LookLine>,
    /// The cursor for the next page, when there is one.
    next: Option<String>,
}

/// `GET /api/v1/me/access-log` (R9, NEN 7513 ch. 9): who accessed the calling resident's data,
/// per period: organisation, role, action, date, and whether it was an emergency access, oldest
/// first, a page at a time. Individual workers are named only when the server runs with
/// `--show-worker-names`.
#[utoipa::path(
    get,
    path = "/api/v1/me/access-log",
    summary = r#"Who looked at my dossier (R9): accesses by others to the calling resident's data, with organisation, role, action, date and whether it was an emergency access; worker user ids only when the server runs with --show-worker-names (audited)"#,
    params(
        ("from" = Option<String>, Query, format = Date, description = "First local date, YYYY-MM-DD from 0001-01-01 to 9999-12-31 (invalid_date)"),
        ("to" = Option<String>, Query, format = Date, description = "Last local date, inclusive, YYYY-MM-DD from 0001-01-01 to 9999-12-31 (invalid_date)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Accesses per page, 1 to 1000 (invalid_limit)"),
        ("after" = Option<i64>, Query, description = "The next of the previous page (invalid_cursor)"),
    ),
    responses(
        (status = 200, description = "Accesses, oldest first, one page", body = AccessLog),
        (status = 400, description = "invalid_date, invalid_period (from after to), invalid_limit, invalid_cursor; or bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "residents_only", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
pub(super) async fn my_access_log(
    State(state): State<AppState>,
    Caller(who): Caller,
    uri: Uri,
) -> ApiResult<Json<AccessLog>> {
    let nowhere = Relationships::of_team(TeamId::new("-").expect("a valid id"));
    let person = match decide(
        &who,
        Action::ReadOwnAccessLog,
        &nowhere,
        OffsetDateTime::now_utc(),
    ) {
        Decision::Allow { .. } => who.person.clone().expect("the policy checked it"),
        Decision::Deny(reason) => return Err(ApiError::forbidden(reason.code())),
    };
    let q = Params::parse(&uri, &["from", "to", "limit", "after"])?;
    let period = params::period(q.date("from")?, q.date("to")?)?;
    let (limit, after) = (q.limit(ACCESS_LOG_PAGE)?, q.after()?);
    let now = OffsetDateTime::now_utc();
    let show = state.oversight.show_worker_names;
    let mut dossiers: Vec<DossierId> = state
        .hub
        .dossiers()
        .into_iter()
        .filter(|e| e.rel.is_linked(&person))
        .map(|e| e.rel.dossier)
        .collect();
    dossiers.sort();
    // One audit row per dossier read, so each shows up where that dossier's log is read; a
    // resident without a linked dossier still leaves a row.
    if dossiers.is_empty() {
        let mut ev = event(&who, now, AuditAction::AuditRead);
        ev.persons = Some(person.to_string());
        ev.detail = Some("access_log".into());
        audit(&state, &ev).await?;
    }
    for dossier in &dossiers {
        let mut ev = event(&who, now, AuditAction::AuditRead);
        ev.dossier = Some(dossier.to_string());
        ev.persons = Some(person.to_string());
        ev.detail = Some("access_log".into());
        audit(&state, &ev).await?;
    }
    // SQL selects the candidate rows; `look_line` decides exactly, as it always has.
    let query = AuditQuery {
        from: period.from,
        to: period.to,
        actions: vec!["open", "read", "write", "export", "break_glass"],
        dossiers: Some(dossiers),
        not_actors: vec![who.user.to_string(), "server".into()],
        person: Some(person.to_string()),
        ..AuditQuery::default()
    };
    // A page of rows may hold a few that `look_line` leaves out (a refused break-glass), so
    // pages are read until the answer is full or the log is done; one line more than the limit
    // says whether there is a next page.
    let mut lines: Vec<(i64, report::LookLine)> = Vec::new();
    let mut cursor = after;
    'pages: loop {
        let page = state
            .hub
            .store()
            .audit_page(&query, cursor, limit + 1)
            .await?;
        let full = page.len() == limit + 1;
        for (seq, e) in &page {
            cursor = Some(*seq);
            if let Some(line) =
                report::look_line(e, person.as_str(), who.user.as_str(), period, show)
            {
                lines.push((*seq, line));
                if lines.len() > limit {
                    break 'pages;
                }
            }
        }
        if !full {
            break;
        }
    }
    let next = (lines.len() > limit).then(|| lines[limit - 1].0.to_string());
    lines.truncate(limit);
    let lines = lines.into_iter().map(|(_, line)| line).collect();
    Ok(Json(AccessLog {
        person,
        period,
        timezone: report::TIMEZONE,
        worker_names: show,
        accesses: lines,
        next,
    }))
}

// ---- access review ------------------------------------------------------------------------

/// One dossier of a team in the access review.
#[derive(Debug, Serialize, ToSchema)]
struct Reviewed {
    dossier: DossierId,
    district: DistrictId,
    #[schema(value_type = Vec<doc::ReviewLineSchema>)]
    lines: Vec<ReviewLine>,
}

/// Who can reach each of `team`'s dossiers at `at` and why, from the policy itself.
fn listing(state: &AppState, team: &TeamId, at: OffsetDateTime) -> Vec<Reviewed> {
    let mut out: Vec<Reviewed> = state
        .hub
        .dossiers()
        .into_iter()
        .filter(|e| &e.rel.team == team)
        .map(|e| Reviewed {
            dossier: e.rel.dossier,
            district: e.rel.district.clone(),
            lines: review(&e.rel, at),
        })
        .collect();
    out.sort_by_key(|r| r.dossier);
    out
}

/// Whether `who` may review access to `team`'s dossiers (R10): its manager or the privacy
/// officer; recording a review (`record`) is the manager's alone.
fn may_review(who: &Principal, team: &TeamId, record: bool) -> ApiResult<()> {
    let place = Relationships::of_team(team.clone());
    let action = if record {
        Action::RecordAccessReview
    } else {
        Action::ReviewAccess
    };
    match decide(who, action, &place, OffsetDateTime::now_utc()) {
        Decision::Allow { .. } => Ok(()),
        Decision::Deny(reason) => Err(ApiError::forbidden(reason.code())),
    }
}

/// `GET /api/v1/teams/{team}/access-review` (R10): for the team's manager (or the privacy
/// officer), who can reach which dossier and on what basis, and the last recorded review.
#[utoipa::path(
    get,
    path = "/api/v1/teams/{team}/access-review",
    summary = r#"Access review (R10): who can reach which of the team's dossiers and on what basis, from the policy itself, with the last recorded review (the team's manager, or the privacy officer; audited)"#,
    params(
        ("team" = regie_core::id::TeamId, Path, description = "The team"),
    ),
    responses(
        (status = 200, description = "The listing", body = AccessReviewListing),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "other_team or team_manager_only", body = doc::ErrorBody),
        doc::WithBody,
    )
)]
pub(super) async fn access_review(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
) -> ApiResult<Json<AccessReviewListing>> {
    let team = team_of(&team)?;
    may_review(&who, &team, false)?;
    let now = OffsetDateTime::now_utc();
    let mut ev = event(&who, now, AuditAction::Read);
    ev.detail = Some(format!("access_review team={team}"));
    audit(&state, &ev).await?;
    let dossiers = listing(&state, &team, now);
    let last = state.hub.store().last_access_review(&team).await?;
    Ok(Json(AccessReviewListing {
        team,
        at: rfc3339(now),
        last_review: last,
        dossiers,
    }))
}

/// Who can reach which of a team's dossiers, now, and the last recorded review.
#[derive(Serialize, ToSchema)]
pub(super) struct AccessReviewListing {
    team: TeamId,
    #[schema(format = DateTime)]
    at: String,
    #[schema(value_type = Option<doc::AccessReviewSchema>)]
    last_review: Option<crate::storage::AccessReview>,
    dossiers: Vec<Reviewed>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
struct ReviewBody {
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/teams/{team}/access-review` (R10): the team's manager records that they
/// reviewed the listing as it stands now.
#[utoipa::path(
    post,
    path = "/api/v1/teams/{team}/access-review",
    summary = r#"Record that the team's manager reviewed the listing as it stands now (audited)"#,
    params(
        ("team" = regie_core::id::TeamId, Path, description = "The team"),
    ),
    request_body(content = Option<ReviewBody>, content_type = "application/json"),
    responses(
        (status = 201, description = "Recorded", body = super::doc::AccessReviewSchema),
        (status = 400, description = "note_too_long, or bad_request; or bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "other_team or team_manager_only", body = doc::ErrorBody),
        doc::WithBody,
    )
)]
pub(super) async fn record_access_review(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<crate::storage::AccessReview>)> {
    let team = team_of(&team)?;
    may_review(&who, &team, true)?;
    let body: ReviewBody = json_body(&body, "{\"note\"}")?.unwrap_or_default();
    let note = body
        .note
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_TEXT) {
        return Err(too_long("note_too_long"));
    }
    let now = OffsetDateTime::now_utc();
    let dossiers = listing(&state, &team, now);
    let digest = hex::encode(Sha256::digest(
        serde_json::to_vec(&dossiers).expect("the listing serializes"),
    ));
    let lines: usize = dossiers.iter().map(|d| d.lines.len()).sum();
    let mut ev = event(&who, now, AuditAction::Review);
    ev.detail = Some(format!(
        "access_review team={team} dossiers={} lines={lines}",
        dossiers.len()
    ));
    // The review and its audit row: one transaction.
    let review = state
        .hub
        .store()
        .record_access_review(
            &team,
            &who.user,
            now,
            dossiers.len() as i64,
            lines as i64,
            &digest,
            note.as_deref(),
            &ev,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(review)))
}
