//! The HTTP API under `/api/v1` (JSON) and the `/sync` WebSocket upgrade. Every request is
//! authenticated first; every answer about dossier content is decided by the policy and audited.
//! Errors are `{"error": {"code", "message"}}` with a stable code and never contain content.

mod closing;
mod device;
mod guard;
mod oversight;
mod params;
mod share;
mod signal;
mod statement;

pub use guard::{BODY_LIMIT, OFFLINE_READS_BODY_LIMIT};

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Json, Router};
use regie_core::document::{self, PersonRecord};
use regie_core::id::{DistrictId, DocumentKey, DossierId, PersonId, TeamId, UserId};
use regie_core::policy::{Action, Basis, Decision, Mode, Registration, decide};
use regie_core::principal::Principal;
use regie_core::relationship::Relationships;
use regie_sync_protocol::{DocumentId, MAX_MESSAGE_BYTES};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::audit::{AuditAction, AuditEvent};
use crate::auth::{AuthError, Authenticator, SYNC_SUBPROTOCOL, bearer_token, subprotocol_token};
use crate::domain::{self, DomainError};
use crate::hub::{DossierEntry, Hub, HubError};
use crate::storage::StorageError;

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    /// The sync engine and store.
    pub hub: Arc<Hub>,
    /// Token verification.
    pub auth: Authenticator,
    /// Break-glass duration and the resident's access view.
    pub oversight: crate::config::OversightArgs,
}

/// An API error: a status, a stable code and a message that says what to do.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    fn forbidden(code: &'static str) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            code,
            "you are not allowed to do this",
        )
    }
    fn not_found() -> Self {
        // Unknown and forbidden dossiers look the same, so ids leak nothing.
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such dossier, or not yours to see",
        )
    }
    fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": { "code": self.code, "message": self.message } })),
        )
            .into_response()
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        // Details go to the log, never to the client.
        tracing::error!(error = %e, "storage failure");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong; try again later",
        )
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound => ApiError::not_found(),
            DomainError::Missing { code, message } => {
                ApiError::new(StatusCode::NOT_FOUND, code, message)
            }
            DomainError::Invalid { code, message } => {
                ApiError::new(StatusCode::BAD_REQUEST, code, message)
            }
            DomainError::Hub(e) => e.into(),
        }
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        match &e {
            HubError::Schema(problem) => {
                return ApiError::new(StatusCode::BAD_REQUEST, "invalid", problem.to_string());
            }
            HubError::NoSuchDossier(_) => return ApiError::not_found(),
            _ => {}
        }
        tracing::error!(error = %e, "hub failure");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong; try again later",
        )
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The router: `/api/v1/*` and `/sync`, each route with the query parameters it takes and its
/// body limit, all behind the guards of [`guard`].
pub fn router(state: AppState) -> Router {
    use guard::{BODY_LIMIT, OFFLINE_READS_BODY_LIMIT, limit_body};
    // The query parameters each route takes besides `token` (see `params`).
    const NONE: &[&str] = &[];
    const REPORT: &[&str] = &["month", "tier", "format", "limit", "after"];
    const UNUSUAL: &[&str] = &["month", "format", "threshold", "limit", "after"];
    const ACCESS_LOG: &[&str] = &["from", "to", "limit", "after"];
    const PAGED: &[&str] = &["limit", "after"];
    let takes = |allowed: &'static [&'static str], route: MethodRouter<AppState>| {
        route.route_layer(axum::middleware::from_fn_with_state(
            allowed,
            params::accepts,
        ))
    };
    let json = |route: MethodRouter<AppState>| takes(NONE, limit_body(route, BODY_LIMIT));
    let plain = |route: MethodRouter<AppState>| takes(NONE, route);
    let router = Router::new()
        .route("/api/v1/health", plain(get(health)))
        .route("/api/v1/openapi.json", plain(get(openapi)))
        .route("/api/v1/me/documents", plain(get(my_documents)))
        .route(
            "/api/v1/me/documents/{document}/write-rules",
            plain(get(write_rules)),
        )
        .route("/api/v1/dossiers", json(post(create_dossier)))
        .route("/api/v1/dossiers/{id}/assignments", json(post(assign)))
        .route(
            "/api/v1/dossiers/{id}/assignments/{user}",
            plain(delete(unassign)),
        )
        .route("/api/v1/dossiers/{id}/residents", json(post(link_resident)))
        .route(
            "/api/v1/dossiers/{id}/residents/{person}",
            plain(delete(unlink_resident)),
        )
        .route(
            "/api/v1/dossiers/{id}/partners",
            json(post(share::add_partner)),
        )
        .route(
            "/api/v1/dossiers/{id}/maatwerk",
            json(post(share::add_maatwerk)),
        )
        .route(
            "/api/v1/dossiers/{id}/consents/{consent}/withdraw",
            json(post(share::withdraw_consent)),
        )
        .route("/api/v1/dossiers/{id}/close", json(post(closing::close)))
        .route(
            "/api/v1/dossiers/{id}/weighings/{weighing}/approve",
            json(post(share::approve_weighing)),
        )
        .route("/api/v1/dossiers/{id}/tasks", plain(get(share::tasks)))
        .route(
            "/api/v1/dossiers/{id}/tasks/{task}/done",
            json(post(share::finish_task)),
        )
        .route(
            "/api/v1/dossiers/{id}/statements",
            json(post(statement::add_statement)),
        )
        .route(
            "/api/v1/audit/offline-reads",
            takes(
                NONE,
                limit_body(post(device::offline_reads), OFFLINE_READS_BODY_LIMIT),
            ),
        )
        .route("/api/v1/audit/verify", plain(get(verify_audit)))
        .route("/api/v1/quarantine", takes(PAGED, get(quarantine)))
        .route("/api/v1/destructions", plain(get(destructions)))
        .route(
            "/api/v1/dossiers/{id}/break-glass",
            json(post(oversight::break_glass)),
        )
        .route(
            "/api/v1/teams/{team}/break-glass-report",
            takes(REPORT, get(oversight::break_glass_report)),
        )
        .route(
            "/api/v1/teams/{team}/access-review",
            json(get(oversight::access_review).post(oversight::record_access_review)),
        )
        .route(
            "/api/v1/reports/unusual-access",
            takes(UNUSUAL, get(oversight::unusual_access)),
        )
        .route(
            "/api/v1/me/access-log",
            takes(ACCESS_LOG, get(oversight::my_access_log)),
        )
        .route(
            "/api/v1/signals",
            json(get(signal::list).post(signal::register)),
        )
        .route("/api/v1/signals/{id}/close", json(post(signal::close)))
        .route(
            "/api/v1/signals/{id}/dossier",
            json(post(signal::to_dossier)),
        )
        .route("/sync", plain(get(sync)))
        .with_state(state);
    guard::guard(router)
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> ApiResult<Principal> {
    let token = bearer_token(headers, query).ok_or(AuthError::Missing)?;
    Ok(state.auth.authenticate(token)?)
}

/// Extracts the principal from the `Authorization` header or `?token=`.
struct Caller(Principal);

impl axum::extract::FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> ApiResult<Self> {
        authenticate(state, &parts.headers, parts.uri.query()).map(Caller)
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

async fn sync(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    // Header first, then the subprotocol browsers use, then the query (never logged).
    let token = bearer_token(&headers, None)
        .or_else(|| subprotocol_token(&headers))
        .map(str::to_owned)
        .or(q.token)
        .ok_or(AuthError::Missing)?;
    let (principal, expires_at) = state.auth.authenticate_until(&token)?;
    let hub = state.hub.clone();
    // Twice the protocol limit at the socket, so an oversized message is read and answered with a
    // clear `error` rather than a bare transport failure.
    Ok(ws
        // Echo `regie.v1` if offered, never the `regie.token.<jwt>` next to it.
        .protocols([SYNC_SUBPROTOCOL])
        .max_message_size(2 * MAX_MESSAGE_BYTES)
        .max_frame_size(2 * MAX_MESSAGE_BYTES)
        // tungstenite reserves 128 KiB per connection for reads by default; frames larger
        // than this are still read whole, in several reads.
        .read_buffer_size(8 * 1024)
        .on_upgrade(move |socket| crate::session::run(socket, hub, principal, expires_at)))
}

/// One document the caller may sync, with what a device needs to run the policy locally: the
/// dossier's district and team and the basis of the caller's access.
#[derive(Serialize)]
struct MyDocument {
    dossier: DossierId,
    key: String,
    url: String,
    access: Mode,
    basis: Basis,
    district: DistrictId,
    team: TeamId,
    /// Closed (R18): the device refuses edits itself.
    closed: bool,
}

async fn my_documents(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<Json<Vec<MyDocument>>> {
    let now = OffsetDateTime::now_utc();
    let mut out = Vec::new();
    for entry in state.hub.dossiers() {
        for (key, id) in &entry.documents {
            if let Decision::Allow { mode, basis } =
                decide(&who, Action::Sync(key), &entry.rel, now)
            {
                out.push(MyDocument {
                    dossier: entry.rel.dossier,
                    key: key.to_string(),
                    url: id.to_url(),
                    access: mode,
                    basis,
                    district: entry.rel.district.clone(),
                    team: entry.rel.team.clone(),
                    closed: entry.rel.closed,
                });
            }
        }
    }
    out.sort_by(|a, b| (a.dossier, &a.key).cmp(&(b.dossier, &b.key)));
    let mut ev = AuditEvent::new(now, who.user.as_str(), who.role.as_str(), AuditAction::Read);
    ev.detail = Some(format!("listed {} documents", out.len()));
    state.hub.store().append_audit(&ev).await?;
    Ok(Json(out))
}

/// `GET /api/v1/me/documents/{document}/write-rules`: which paths of this document the caller
/// may write now (issue 14, "what may I write?"), each answered by `decide` over the document's
/// schema (`regie_core::writable`), so a client refuses a local edit before it becomes a change
/// without holding a rule of its own. `document` is the document id or its `automerge:` URL. A
/// document the caller may not read is answered like an unknown one. The answer is about the
/// caller's own rights, not dossier content, so it is not audited.
async fn write_rules(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(document): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = DocumentId::from_url(&document)
        .or_else(|_| document.parse())
        .map_err(|_| ApiError::not_found())?;
    let (dossier, key) = state.hub.locate(id).ok_or_else(ApiError::not_found)?;
    let entry = state.hub.dossier(dossier).ok_or_else(ApiError::not_found)?;
    let now = OffsetDateTime::now_utc();
    if !decide(&who, Action::Read(&key), &entry.rel, now).is_allowed() {
        return Err(ApiError::not_found());
    }
    let rules = regie_core::writable::write_rules(&who, &key, &entry.rel, now);
    Ok(Json(json!({
        "document": id.to_url(),
        "dossier": dossier,
        "key": key.to_string(),
        "writable": rules.writable,
        "reason": rules.reason,
        "paths": rules.paths,
    })))
}

#[derive(Deserialize)]
struct NewDossier {
    district: DistrictId,
    team: TeamId,
    #[serde(default)]
    persons: Vec<PersonRecord>,
    #[serde(default)]
    assigned: Vec<UserId>,
    /// The resident agreed to registration by name (R11); needed when `persons` names anyone.
    #[serde(default)]
    resident_agreed: bool,
    /// The day they agreed, `YYYY-MM-DD`.
    #[serde(default)]
    agreed_on: Option<String>,
}

#[derive(Serialize)]
struct CreatedDossier {
    id: DossierId,
    documents: BTreeMap<String, String>,
}

async fn create_dossier(
    State(state): State<AppState>,
    Caller(who): Caller,
    Json(body): Json<NewDossier>,
) -> ApiResult<(StatusCode, Json<CreatedDossier>)> {
    let now = OffsetDateTime::now_utc();
    // R11: nobody is registered by name without their agreement, at the door as after a signal.
    let agreed_on = if body.persons.is_empty() {
        None
    } else {
        Some(signal::agreement(
            body.resident_agreed,
            body.agreed_on.as_deref(),
            now,
        )?)
    };
    let draft = draft_dossier(&who, body, now)?;
    state
        .hub
        .store()
        .create_dossier(&draft.rel, &draft.persons, &draft.docs, now)
        .await?;
    let record = draft.record();
    let created = publish_dossier(&state, &who, draft, now).await?;
    if let Some(agreed_on) = agreed_on {
        let id = format!("t-aanmelding-{}", created.id.0.simple());
        signal::write_aanmelding(
            &state,
            record,
            &id,
            "de aanmelding bij het wijkteam",
            agreed_on,
            &who.user,
            now,
        )
        .await?;
    }
    Ok((StatusCode::CREATED, Json(created)))
}

/// A dossier ready to be stored: its relationships, persons and initial documents, and the basis
/// on which the caller registers it.
struct DossierDraft {
    rel: Relationships,
    /// Sorted, the order the store returns them in after a restart.
    persons: Vec<PersonId>,
    docs: Vec<(DocumentId, DocumentKey, Vec<u8>)>,
    basis: Basis,
}

impl DossierDraft {
    /// The id of the drafted `record`.
    fn record(&self) -> DocumentId {
        self.docs
            .iter()
            .find(|(_, key, _)| *key == DocumentKey::Record)
            .map(|(doc, _, _)| *doc)
            .expect("a drafted dossier has a record")
    }
}

/// Asks the policy whether `who` may register this dossier (a worker is then assigned to it)
/// and builds its first documents; stores nothing, so the caller stores it with what made it.
fn draft_dossier(
    who: &Principal,
    body: NewDossier,
    now: OffsetDateTime,
) -> ApiResult<DossierDraft> {
    let mut rel = Relationships::new(DossierId::new_random(), body.district, body.team);
    let basis = match decide(who, Action::Register(Registration::Dossier), &rel, now) {
        Decision::Allow { basis, .. } => basis,
        Decision::Deny(reason) => return Err(ApiError::forbidden(reason.code())),
    };
    rel.assigned = body.assigned;
    // A worker registering for their own team takes the dossier on (an admin only sets it up).
    if basis == Basis::TeamMembership && !rel.assigned.contains(&who.user) {
        rel.assigned.insert(0, who.user.clone());
    }
    let mut seen = std::collections::HashSet::new();
    if !body.persons.iter().all(|p| seen.insert(p.id.clone())) {
        return Err(ApiError::bad_request(
            "person ids must be unique within a dossier",
        ));
    }
    let mut docs = Vec::new();
    let mut meta = document::new_meta(&rel.district, &rel.team, &rel.assigned, &body.persons);
    // What `meta` will hold is checked at the door: a server-written document that breaks its
    // schema would make every later edit of it (an assignment, a closing) fail.
    document::validate(DocumentKey::Meta.kind(), &meta).map_err(HubError::Schema)?;
    docs.push((DocumentId::new_random(), DocumentKey::Meta, meta.save()));
    for key in [DocumentKey::Plan, DocumentKey::Record] {
        docs.push((
            DocumentId::new_random(),
            key.clone(),
            document::skeleton(key.kind()).save(),
        ));
    }
    let mut persons: Vec<PersonId> = body.persons.iter().map(|p| p.id.clone()).collect();
    persons.sort();
    Ok(DossierDraft {
        rel,
        persons,
        docs,
        basis,
    })
}

/// Once the draft is stored: audits the creation and hands the dossier to the hub.
async fn publish_dossier(
    state: &AppState,
    who: &Principal,
    draft: DossierDraft,
    now: OffsetDateTime,
) -> ApiResult<CreatedDossier> {
    let id = draft.rel.dossier;
    let documents: BTreeMap<DocumentKey, DocumentId> =
        draft.docs.iter().map(|(d, k, _)| (k.clone(), *d)).collect();
    let mut ev = AuditEvent::new(
        now,
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::Create,
    );
    ev.dossier = Some(id.to_string());
    ev.basis = Some(crate::hub::basis_code(draft.basis));
    state.hub.store().append_audit(&ev).await?;
    state
        .hub
        .put_dossier(DossierEntry {
            rel: Arc::new(draft.rel),
            persons: draft.persons,
            documents: documents.clone(),
        })
        .await;
    Ok(CreatedDossier {
        id,
        documents: documents
            .iter()
            .map(|(k, d)| (k.to_string(), d.to_url()))
            .collect(),
    })
}

#[derive(Deserialize)]
struct UserBody {
    user: UserId,
}

/// A dossier id from the path; one that does not parse is answered like an unknown one.
fn dossier_id(id: &str) -> ApiResult<DossierId> {
    id.parse().map_err(|_| ApiError::not_found())
}

/// The audit row of a change to `entry`'s relationships or the rows around them.
fn relation_event(
    who: &Principal,
    entry: &DossierEntry,
    at: OffsetDateTime,
    what: String,
) -> AuditEvent {
    let mut ev = AuditEvent::new(
        at,
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::Relate,
    );
    ev.dossier = Some(entry.rel.dossier.to_string());
    ev.detail = Some(what);
    ev
}

/// Whether `who` may do `action` on `entry` as it stands; answered like an unknown dossier
/// otherwise.
fn standing_in(
    who: &Principal,
    entry: &DossierEntry,
    action: Action<'_>,
    at: OffsetDateTime,
) -> ApiResult<()> {
    if decide(who, action, &entry.rel, at).is_allowed() {
        Ok(())
    } else {
        Err(ApiError::not_found())
    }
}

/// The dossier, if `who` may do `action` on it; answered like an unknown dossier otherwise.
fn standing(
    state: &AppState,
    who: &Principal,
    id: &str,
    action: Action<'_>,
) -> ApiResult<DossierEntry> {
    let now = OffsetDateTime::now_utc();
    Ok(domain::standing(
        &state.hub,
        who,
        dossier_id(id)?,
        action,
        now,
    )?)
}

async fn assign(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Json(body): Json<UserBody>,
) -> ApiResult<StatusCode> {
    let now = OffsetDateTime::now_utc();
    domain::assign(&state.hub, &who, dossier_id(&id)?, body.user, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unassign(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let now = OffsetDateTime::now_utc();
    let dossier = dossier_id(&id)?;
    domain::standing(&state.hub, &who, dossier, Action::ManageAssignments, now)?;
    let user: UserId = user
        .parse()
        .map_err(|_| ApiError::bad_request("not a user id"))?;
    domain::unassign(&state.hub, &who, dossier, user, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct PersonBody {
    person: PersonId,
}

async fn link_resident(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Json(body): Json<PersonBody>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let now = OffsetDateTime::now_utc();
    let key = DocumentKey::View(body.person.clone());
    let view = domain::link_resident(&state.hub, &who, dossier_id(&id)?, body.person, now).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "key": key.to_string(), "url": view.to_url() })),
    ))
}

async fn unlink_resident(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((id, person)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let now = OffsetDateTime::now_utc();
    let dossier = dossier_id(&id)?;
    domain::standing(&state.hub, &who, dossier, Action::ManageResidents, now)?;
    let person: PersonId = person
        .parse()
        .map_err(|_| ApiError::bad_request("not a person id"))?;
    domain::unlink_resident(&state.hub, &who, dossier, person, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn verify_audit(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<Json<serde_json::Value>> {
    privacy_officer_reads(&state, &who).await?;
    let v = state.hub.store().verify_audit().await?;
    Ok(Json(
        json!({ "intact": v.intact(), "rows": v.rows, "first_broken_seq": v.first_broken_seq }),
    ))
}

/// Whether the policy lets `who` read the registers kept about the system.
fn registers_readable(who: &Principal) -> ApiResult<()> {
    let nowhere = Relationships::of_team(TeamId::new("-").expect("a valid id"));
    match decide(
        who,
        Action::ReadRegisters,
        &nowhere,
        OffsetDateTime::now_utc(),
    ) {
        Decision::Allow { .. } => Ok(()),
        Decision::Deny(reason) => Err(ApiError::forbidden(reason.code())),
    }
}

/// Only the privacy officer reads the registers kept about the system (audit verification,
/// quarantine, destructions), and each reading is itself on record.
async fn privacy_officer_reads(state: &AppState, who: &Principal) -> ApiResult<()> {
    registers_readable(who)?;
    let ev = AuditEvent::new(
        OffsetDateTime::now_utc(),
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::AuditRead,
    );
    state.hub.store().append_audit(&ev).await?;
    Ok(())
}

/// `GET /api/v1/destructions`: proof of every destruction at the end of retention (I6), for
/// the privacy officer; ids and counts, never content.
async fn destructions(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<Json<serde_json::Value>> {
    privacy_officer_reads(&state, &who).await?;
    Ok(Json(json!(state.hub.store().destructions().await?)))
}

/// Quarantined batches per page of `GET /api/v1/quarantine`.
const QUARANTINE_PAGE: params::PageSize = params::PageSize {
    default: 100,
    max: 1000,
};

/// `GET /api/v1/quarantine`: rejected batches, newest first, a page at a time (`limit`, then
/// `after` = the `next` of the page before); reasons and hashes, never content.
async fn quarantine(
    State(state): State<AppState>,
    Caller(who): Caller,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let q = params::Params::parse(&uri, &["limit", "after"])?;
    let limit = q.limit(QUARANTINE_PAGE)?;
    let after = q.after()?;
    privacy_officer_reads(&state, &who).await?;
    // One row more than the page says whether there is a next.
    let mut rows = state.hub.store().quarantined_page(after, limit + 1).await?;
    let next = (rows.len() > limit).then(|| rows[limit - 1].id.to_string());
    rows.truncate(limit);
    let mut response = Json(&rows).into_response();
    if let Some(next) = next {
        // The list itself stays the body, as before paging; the cursor travels in a header.
        if let Ok(v) = axum::http::HeaderValue::from_str(&next) {
            response.headers_mut().insert("x-next-cursor", v);
        }
    }
    Ok(response)
}
