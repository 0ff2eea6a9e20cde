//! Resident rights over HTTP (R19–R22): filing a request (the resident at `/me/requests`, an
//! assigned worker on their behalf at the dossier), its extension and decision, escalation of a
//! refusal and its decisions, the overdue register, and the R19 copy as JSON or printable HTML.
//! Thin: each handler extracts, calls [`crate::rights`] or [`crate::export`], and answers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use regie_core::id::{DossierId, PersonId};
use regie_core::rights::{ErasureScope, RefusalGround, RightKind, Verdict};
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::oversight::{format, respond};
use super::params::Params;
use super::{ApiError, ApiResult, AppState, Caller, doc, dossier_id};
use crate::rights::{self, Correction, DecisionInput, Filing, Overdue, RequestView};

/// A request a resident files.
#[derive(Deserialize, ToSchema)]
pub(super) struct MyRequest {
    /// The dossier.
    dossier: DossierId,
    /// Whose data: the caller by default, or a child they hold authority over (under 16).
    #[serde(default)]
    subject: Option<PersonId>,
    kind: RightKind,
    /// What is asked, up to 4000 characters (optional for access).
    #[serde(default)]
    details: String,
}

/// A request a worker files on a resident's behalf.
#[derive(Deserialize, ToSchema)]
pub(super) struct OnBehalf {
    subject: PersonId,
    kind: RightKind,
    /// What is asked, up to 4000 characters.
    #[serde(default)]
    details: String,
    /// The day it was received, `YYYY-MM-DD`, if not today (at most a year ago).
    #[serde(default)]
    #[schema(format = Date)]
    received_on: Option<String>,
}

/// An extension (art. 12(3)).
#[derive(Deserialize, ToSchema)]
pub(super) struct NewExtension {
    /// 1 or 2.
    months: i8,
    /// Why (required).
    reason: String,
    /// The day the resident was told, `YYYY-MM-DD`, within the first month.
    #[schema(format = Date)]
    told_on: String,
}

/// A decision on a request or an escalation.
#[derive(Deserialize, ToSchema)]
pub(super) struct NewRuling {
    verdict: Verdict,
    /// Required for a refusal and for every escalation decision.
    #[serde(default)]
    reasons: String,
    /// A request's refusal: its legal ground, required for an erasure, a rectification or an
    /// objection (retention_duty, others_interest, legal_claims for an erasure; opinion,
    /// accurate for a rectification; compelling_grounds for an objection; unfounded for any).
    #[serde(default)]
    ground: Option<RefusalGround>,
    /// A granted erasure: `items` (the person's items leave every document, by replacement) or
    /// `dossier` (the whole dossier of this one person is destroyed, with proof).
    #[serde(default)]
    scope: Option<ErasureScope>,
    /// A granted rectification: the facts and their corrected text.
    #[serde(default)]
    corrections: Vec<Correction>,
    /// An objection: the weighing it is decided on (required either way).
    #[serde(default)]
    weighing: Option<String>,
}

/// An escalation of a refusal (R22).
#[derive(Deserialize, ToSchema)]
pub(super) struct NewEscalation {
    /// Why the refusal is wrong (required).
    grounds: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/me/requests",
    summary = r#"A resident files an AVG rights request (access, rectification, erasure, restriction, objection) for themselves (from 12) or for a child under 16 they hold authority over (R16, R19-R22); answered within one month"#,
    request_body = MyRequest,
    responses(
        (status = 201, description = "Filed", body = RequestView),
        (status = 400, description = "text_too_long, no_such_person; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        (status = 403, description = "too_young_to_act_alone (a child under 12 asks through a parent), subject_acts_alone (from 16 the young person asks)", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier, or not the caller's", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn file_mine(
    State(state): State<AppState>,
    Caller(who): Caller,
    Json(body): Json<MyRequest>,
) -> ApiResult<(StatusCode, Json<RequestView>)> {
    let subject = match body.subject.or_else(|| who.person.clone()) {
        Some(s) => s,
        None => return Err(ApiError::not_found()),
    };
    let filing = Filing {
        subject,
        kind: body.kind,
        details: body.details,
        received_on: None,
    };
    let at = OffsetDateTime::now_utc();
    let view = rights::file(&state.hub, &who, body.dossier, filing, at).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(
    get,
    path = "/api/v1/me/requests",
    summary = r#"The calling resident's rights requests (filed by them or about them) with their status in Dutch and their deadlines"#,
    responses(
        (status = 200, description = "Requests, oldest first", body = [RequestView]),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
pub(super) async fn list_mine(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<Json<Vec<RequestView>>> {
    Ok(Json(
        rights::mine(&state.hub, &who, OffsetDateTime::now_utc()).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/dossiers/{id}/requests",
    summary = r#"An assigned worker files a rights request on a resident's behalf (R19-R22)"#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
    ),
    request_body = OnBehalf,
    responses(
        (status = 201, description = "Filed", body = RequestView),
        (status = 400, description = "invalid_date, text_too_long, no_such_person; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        (status = 403, description = "too_young_to_act_alone or subject_acts_alone", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier, or not the caller's", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn file_on_behalf(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Json(body): Json<OnBehalf>,
) -> ApiResult<(StatusCode, Json<RequestView>)> {
    let filing = Filing {
        subject: body.subject,
        kind: body.kind,
        details: body.details,
        received_on: body.received_on,
    };
    let at = OffsetDateTime::now_utc();
    let view = rights::file(&state.hub, &who, dossier_id(&id)?, filing, at).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(
    get,
    path = "/api/v1/dossiers/{id}/requests",
    summary = r#"The dossier's rights requests, for its assigned workers"#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
    ),
    responses(
        (status = 200, description = "Requests, oldest first", body = [RequestView]),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier, or not the caller's", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
pub(super) async fn list_of_dossier(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RequestView>>> {
    let at = OffsetDateTime::now_utc();
    Ok(Json(
        rights::of_dossier(&state.hub, &who, dossier_id(&id)?, at).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/requests/{request}/extension",
    summary = r#"An assigned worker extends the deadline by one or two months, with the reason and the day the resident was told, within the first month (AVG art. 12(3))"#,
    params(("request" = String, Path, description = "The request's id")),
    request_body = NewExtension,
    responses(
        (status = 200, description = "Extended", body = RequestView),
        (status = 400, description = "invalid_extension, invalid_date, text_required, text_too_long; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such request, or not the caller's to handle", body = doc::ErrorBody),
        (status = 409, description = "not_extendable: decided, extended already, or the first month has passed", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn extend(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(request): Path<String>,
    Json(body): Json<NewExtension>,
) -> ApiResult<Json<RequestView>> {
    let at = OffsetDateTime::now_utc();
    Ok(Json(
        rights::extend(
            &state.hub,
            &who,
            &request,
            body.months,
            &body.reason,
            &body.told_on,
            at,
        )
        .await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/requests/{request}/decision",
    summary = r#"An assigned worker decides a rights request; a refusal needs its reasons (and for an erasure, rectification or objection its legal ground) and can then be escalated (R21, R22). Granting an erasure erases the person's items from every document by replacement, or destroys the dossier of this one person with proof; granting a rectification replaces the corrected facts' text without history; an objection is decided on a recorded weighing"#,
    params(("request" = String, Path, description = "The request's id")),
    request_body = NewRuling,
    responses(
        (status = 200, description = "Decided", body = RequestView),
        (status = 400, description = "text_required, text_too_long, ground_required, ground_not_applicable, ground_not_allowed, weighing_required, scope_required, corrections_required, no_such_entry, opinion_not_rectified; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such request, or not the caller's to handle", body = doc::ErrorBody),
        (status = 409, description = "decided_already; others_in_dossier: the whole dossier cannot be erased while it holds other persons", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn decide(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(request): Path<String>,
    Json(body): Json<NewRuling>,
) -> ApiResult<Json<RequestView>> {
    let at = OffsetDateTime::now_utc();
    let input = DecisionInput {
        verdict: body.verdict,
        reasons: body.reasons,
        ground: body.ground,
        scope: body.scope,
        corrections: body.corrections,
        weighing: body.weighing,
    };
    Ok(Json(
        rights::decide_request(&state.hub, &who, &request, input, at).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/requests/{request}/escalation",
    summary = r#"Escalate a refused request (R22): first to the team manager, then to the privacy officer, each with a deadline of 14 days"#,
    params(("request" = String, Path, description = "The request's id")),
    request_body = NewEscalation,
    responses(
        (status = 200, description = "Escalated", body = RequestView),
        (status = 400, description = "text_required, text_too_long; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        (status = 403, description = "too_young_to_act_alone or subject_acts_alone", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such request, or not the caller's", body = doc::ErrorBody),
        (status = 409, description = "not_escalatable: not refused, an escalation pending, or both levels done", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn escalate(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(request): Path<String>,
    Json(body): Json<NewEscalation>,
) -> ApiResult<Json<RequestView>> {
    let at = OffsetDateTime::now_utc();
    Ok(Json(
        rights::escalate(&state.hub, &who, &request, &body.grounds, at).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/requests/{request}/escalation/decision",
    summary = r#"The team manager (first level) or the privacy officer (second level) decides the pending escalation: granted overturns the refusal, refused lets it stand (R22)"#,
    params(("request" = String, Path, description = "The request's id")),
    request_body = NewRuling,
    responses(
        (status = 200, description = "Decided", body = RequestView),
        (status = 400, description = "text_required, text_too_long; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such request, or not the caller's to decide", body = doc::ErrorBody),
        (status = 409, description = "no_escalation_pending", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn decide_escalation(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(request): Path<String>,
    Json(body): Json<NewRuling>,
) -> ApiResult<Json<RequestView>> {
    let at = OffsetDateTime::now_utc();
    Ok(Json(
        rights::decide_escalation(&state.hub, &who, &request, body.verdict, &body.reasons, at)
            .await?,
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/teams/{team}/rights-requests/overdue",
    summary = r#"Overdue rights requests of a team: counts per right for its manager (below the small-count threshold shown as "< 5", R27), each request with exact counts for the privacy officer (audited)"#,
    params(("team" = regie_core::id::TeamId, Path, description = "The team")),
    responses(
        (status = 200, description = "The overdue register", body = Overdue),
        (status = 400, description = "bad_request: not a team id, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "other_team or managers_and_privacy_officer_only", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
pub(super) async fn overdue(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
) -> ApiResult<Json<Overdue>> {
    let team = team
        .parse()
        .map_err(|_| ApiError::bad_request("not a team id"))?;
    let at = OffsetDateTime::now_utc();
    let threshold = usize::from(state.oversight.small_count_threshold);
    Ok(Json(
        rights::overdue(&state.hub, &who, team, threshold, at).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/dossiers/{id}/persons/{person}/export",
    summary = r#"The R19 copy of everything held about one person of the dossier, never about other household members: JSON (schema PersonExport, regie.person-export.v1) or a printable Dutch page (format=html). The person from 12, a parent with authority for a child under 16, or an assigned worker; audited as an export"#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
        ("person" = String, Path, description = "The person"),
        ("format" = Option<super::oversight::ReportFormat>, Query, description = "html gives a printable page"),
    ),
    responses(
        (status = 200, description = "The copy", content((crate::export::PersonExport = "application/json"), (String = "text/html"))),
        (status = 400, description = "invalid_format; or bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "too_young_to_act_alone or subject_acts_alone", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier or person, or not the caller's", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
pub(super) async fn export(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((id, person)): Path<(String, String)>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = Params::parse(&uri, &["format"])?;
    let format = format(&q)?;
    let dossier = dossier_id(&id)?;
    let person: PersonId = person.parse().map_err(|_| ApiError::not_found())?;
    let at = OffsetDateTime::now_utc();
    let copy = crate::export::export(
        &state.hub,
        &who,
        dossier,
        &person,
        state.oversight.show_worker_names,
        at,
    )
    .await?;
    Ok(respond(format, &copy, || crate::export::html_page(&copy)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/dossiers/{id}/restrictions/{person}",
    summary = r#"An assigned worker lifts the restriction of processing of a person's data (R21); shares about them are possible again"#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
        ("person" = String, Path, description = "The person"),
    ),
    responses(
        (status = 204, description = "Lifted"),
        (status = 400, description = "not a person id; or bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier, or not the caller's; not_restricted", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
pub(super) async fn lift_restriction(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((id, person)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let at = OffsetDateTime::now_utc();
    rights::lift_restriction(&state.hub, &who, dossier_id(&id)?, &person, at).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A case-conference contribution (R15).
#[derive(Deserialize, ToSchema)]
pub(super) struct NewContribution {
    /// The record entry brought in.
    entry: String,
    /// Who brought it in: a user id, or `partner:<org>`.
    contributor: String,
    /// The day of the case conference, `YYYY-MM-DD`.
    #[schema(format = Date)]
    conference_on: String,
}

/// A contributor's agreement to share their contribution onward (R15).
#[derive(Deserialize, ToSchema)]
pub(super) struct NewAgreement {
    /// The recipient: `backoffice` or `partner:<org>`.
    recipient: String,
    /// The day the contributor agreed, `YYYY-MM-DD`.
    #[schema(format = Date)]
    agreed_on: String,
}

/// A contribution as recorded.
#[derive(serde::Serialize, ToSchema)]
pub(super) struct ContributionView {
    /// The record entry.
    entry: String,
    /// Who brought it in.
    contributor: String,
    /// The recipients they agreed to.
    agreed: Vec<String>,
}

impl From<regie_core::relationship::Contribution> for ContributionView {
    fn from(c: regie_core::relationship::Contribution) -> Self {
        ContributionView {
            entry: c.entry,
            contributor: c.contributor,
            agreed: c.agreed,
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/dossiers/{id}/contributions",
    summary = r#"An assigned worker records a record entry brought into a case conference with its contributor (R15); sharing it onward then needs that contributor's recorded agreement"#,
    params(("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found")),
    request_body = NewContribution,
    responses(
        (status = 201, description = "Recorded", body = ContributionView),
        (status = 400, description = "invalid_contributor, invalid_date, no_such_entry; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier, or not the caller's", body = doc::ErrorBody),
        (status = 409, description = "contributed_already", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn contribute(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Json(body): Json<NewContribution>,
) -> ApiResult<(StatusCode, Json<ContributionView>)> {
    let dossier = dossier_id(&id)?;
    let at = OffsetDateTime::now_utc();
    let made = crate::conference::contribute(
        &state.hub,
        &who,
        dossier,
        &body.entry,
        &body.contributor,
        &body.conference_on,
        at,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(made.into())))
}

#[utoipa::path(
    post,
    path = "/api/v1/dossiers/{id}/contributions/{entry}/agreements",
    summary = r#"The contributor (a user of the involved chain partner for partner:<org>), or an assigned worker for them, records the agreement to share a case-conference contribution onward with one recipient (R15)"#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
        ("entry" = String, Path, description = "The contributed record entry"),
    ),
    request_body = NewAgreement,
    responses(
        (status = 200, description = "Recorded", body = ContributionView),
        (status = 400, description = "invalid_recipient, invalid_date; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier, or not the caller's; no_such_contribution", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn agree_onward(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((id, entry)): Path<(String, String)>,
    Json(body): Json<NewAgreement>,
) -> ApiResult<Json<ContributionView>> {
    let dossier = dossier_id(&id)?;
    let at = OffsetDateTime::now_utc();
    let agreed = crate::conference::agree(
        &state.hub,
        &who,
        dossier,
        &entry,
        &body.recipient,
        &body.agreed_on,
        at,
    )
    .await?;
    Ok(Json(agreed.into()))
}

/// What carrying out a request granted on escalation needs.
#[derive(Deserialize, ToSchema)]
pub(super) struct NewExecution {
    /// An erasure: `items` or `dossier`.
    #[serde(default)]
    scope: Option<ErasureScope>,
    /// A rectification: the facts and their corrected text.
    #[serde(default)]
    corrections: Vec<Correction>,
}

#[utoipa::path(
    post,
    path = "/api/v1/requests/{request}/execution",
    summary = r#"An assigned worker carries out an erasure or rectification whose refusal was overturned on escalation (R21, R22): as a granted decision would have, recorded once"#,
    params(("request" = String, Path, description = "The request's id")),
    request_body = NewExecution,
    responses(
        (status = 200, description = "Carried out", body = RequestView),
        (status = 400, description = "scope_required, corrections_required, no_such_entry, opinion_not_rectified, text_required, text_too_long; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such request, or not the caller's to handle", body = doc::ErrorBody),
        (status = 409, description = "not_to_carry_out: not granted on escalation, carried out already, or not an erasure or rectification; others_in_dossier", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn carry_out(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(request): Path<String>,
    Json(body): Json<NewExecution>,
) -> ApiResult<Json<RequestView>> {
    let at = OffsetDateTime::now_utc();
    Ok(Json(
        rights::carry_out(
            &state.hub,
            &who,
            &request,
            body.scope,
            &body.corrections,
            at,
        )
        .await?,
    ))
}
