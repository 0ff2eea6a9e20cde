//! The registers and reports kept about the system as a whole (R27): the council's
//! accountability report — counts only, small counts suppressed. Thin: the counting is in
//! [`crate::council`].

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use regie_core::id::{DocumentKey, TeamId};
use regie_core::policy::{Action, Decision, decide};
use regie_core::relationship::Relationships;
use time::OffsetDateTime;

use super::oversight::{Format, format, respond};
use super::params::{self, Params};
use super::{ApiError, ApiResult, AppState, Caller, doc};
use crate::audit::{AuditAction, AuditEvent};
use crate::council::{self, CouncilReport, Tally};
use crate::storage::AuditQuery;
use crate::storage::rights::RightsQuery;

fn jiff_date(d: time::Date) -> jiff::civil::Date {
    jiff::civil::date(d.year() as i16, d.month() as i8, d.day() as i8)
}

#[utoipa::path(
    get,
    path = "/api/v1/reports/council",
    summary = r#"The council's accountability report for a period (R27): dossiers opened and closed, break-glass uses, shares by ground, triage decisions discussed with residents, rights requests and their timeliness; counts only, no personal data, every count below the threshold (default 5) shown as "< 5". Team managers and the privacy officer; audited"#,
    params(
        ("from" = Option<String>, Query, format = Date, description = "First local date, YYYY-MM-DD (invalid_date)"),
        ("to" = Option<String>, Query, format = Date, description = "Last local date, inclusive, YYYY-MM-DD (invalid_date)"),
        ("format" = Option<super::oversight::ReportFormat>, Query, description = "html gives a printable page"),
    ),
    responses(
        (status = 200, description = "The report", content((CouncilReport = "application/json"), (String = "text/html"))),
        (status = 400, description = "invalid_date, invalid_period, invalid_format; or bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "managers_and_privacy_officer_only", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
pub(super) async fn council_report(
    State(state): State<AppState>,
    Caller(who): Caller,
    uri: Uri,
) -> ApiResult<Response> {
    let q = Params::parse(&uri, &["from", "to", "format"])?;
    let (from, to) = (q.date("from")?, q.date("to")?);
    let period = params::period(from, to)?;
    let format = format(&q)?;
    let now = OffsetDateTime::now_utc();
    let nowhere = Relationships::of_team(TeamId::new("-").expect("a valid id"));
    if let Decision::Deny(reason) = decide(&who, Action::ReadCouncilReport, &nowhere, now) {
        return Err(ApiError::forbidden(reason.code()));
    }
    let mut ev = AuditEvent::new(
        now,
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::AuditRead,
    );
    ev.detail = Some("council_report".into());
    state.hub.store().append_audit(&ev).await?;

    let mut tally = Tally::default();
    let query = AuditQuery {
        from: period.from,
        to: period.to,
        actions: vec!["create", "break_glass", "relate"],
        ..AuditQuery::default()
    };
    state
        .hub
        .store()
        .scan_audit(&query, |_, e| tally.audit(e))
        .await?;
    let today = crate::rights::local_day(now);
    let last_day = to.map(jiff_date).map_or(today, |t| t.min(today));
    let requests = state.hub.store().rights_requests(RightsQuery::All).await?;
    tally.requests(&requests, from.map(jiff_date), last_day);
    tally.breaches = state
        .hub
        .store()
        .breaches()
        .await?
        .iter()
        .filter(|b| {
            time::OffsetDateTime::parse(
                &b.discovered_at,
                &time::format_description::well_known::Rfc3339,
            )
            .is_ok_and(|at| period.contains(at))
        })
        .count();
    for entry in state.hub.dossiers() {
        if let Some(&record) = entry.documents.get(&DocumentKey::Record)
            && let Some(doc) = state.hub.snapshot(record).await?
        {
            let (n, discussed) = council::triage_counts(&doc, period);
            tally.triage += n;
            tally.discussed += discussed;
        }
    }
    let threshold = usize::from(state.oversight.small_count_threshold);
    let report = tally.publish(
        (from.map(|d| d.to_string()), to.map(|d| d.to_string())),
        threshold,
    );
    Ok(respond(format, &report, || council::html_page(&report)))
}

#[utoipa::path(
    get,
    path = "/api/v1/registers/processing",
    summary = r#"The register of processing activities (AVG art. 30, R25), generated from the configuration and the retention regimes: one activity per legal regime with purposes, categories of persons and data, recipients, retention and measures (privacy officer; audited)"#,
    params(
        ("format" = Option<super::oversight::ReportFormat>, Query, description = "html gives a printable page"),
    ),
    responses(
        (status = 200, description = "The register", content((crate::processing::ProcessingRegister = "application/json"), (String = "text/html"))),
        (status = 400, description = "invalid_format; or bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "privacy_officer_only", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
pub(super) async fn processing(
    State(state): State<AppState>,
    Caller(who): Caller,
    uri: Uri,
) -> ApiResult<Response> {
    let q = Params::parse(&uri, &["format"])?;
    let format = format(&q)?;
    super::privacy_officer_reads(&state, &who).await?;
    let register = crate::processing::register(
        &state.oversight.controller_name,
        &state.oversight.controller_contact,
    );
    Ok(match format {
        Format::Html => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            crate::processing::html_page(&register),
        )
            .into_response(),
        Format::Json => Json(register).into_response(),
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/breaches",
    summary = r#"Record a data breach (R24; privacy officer): what, when discovered (the 72 hours to notify the authority run from then), source — an audit-log row (its dossier and persons are taken from the log) or a lost device (revoked at once: disconnected and refused at every later join) —, risk and measures"#,
    request_body = crate::breach::NewBreach,
    responses(
        (status = 201, description = "Recorded", body = crate::breach::BreachView),
        (status = 400, description = "text_required, text_too_long, invalid_risk, invalid_time, invalid_ids, invalid_device, no_such_log_row; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        (status = 403, description = "privacy_officer_only", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn record_breach(
    State(state): State<AppState>,
    Caller(who): Caller,
    Json(body): Json<crate::breach::NewBreach>,
) -> ApiResult<(StatusCode, Json<crate::breach::BreachView>)> {
    let at = OffsetDateTime::now_utc();
    let view = crate::breach::record(&state.hub, &who, body, at).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(
    get,
    path = "/api/v1/breaches",
    summary = r#"The breach register with each breach's 72-hour clock (R24; privacy officer; audited)"#,
    responses(
        (status = 200, description = "Breaches, oldest discovery first", body = [crate::breach::BreachView]),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "privacy_officer_only", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
pub(super) async fn breaches(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<Json<Vec<crate::breach::BreachView>>> {
    let at = OffsetDateTime::now_utc();
    Ok(Json(crate::breach::list(&state.hub, &who, at).await?))
}

/// The notification of a breach and the decision on informing the residents (art. 33, 34).
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(super) struct Notification {
    /// The authority was notified now.
    authority_notified: bool,
    /// The residents concerned are informed (art. 34).
    inform_residents: bool,
    /// Why (not): 1 to 4000 characters.
    reason: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/breaches/{breach}/notification",
    summary = r#"Record the notification of the authority and the decision to inform the residents (R24; privacy officer)"#,
    params(("breach" = String, Path, description = "The breach's id")),
    request_body = Notification,
    responses(
        (status = 200, description = "Recorded", body = crate::breach::BreachView),
        (status = 400, description = "text_required; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        (status = 403, description = "privacy_officer_only", body = doc::ErrorBody),
        (status = 404, description = "no_such_breach", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn breach_notification(
    State(state): State<AppState>,
    Caller(who): Caller,
    axum::extract::Path(breach): axum::extract::Path<String>,
    Json(body): Json<Notification>,
) -> ApiResult<Json<crate::breach::BreachView>> {
    let at = OffsetDateTime::now_utc();
    Ok(Json(
        crate::breach::notify(
            &state.hub,
            &who,
            &breach,
            body.authority_notified,
            body.inform_residents,
            &body.reason,
            at,
        )
        .await?,
    ))
}
