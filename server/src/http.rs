//! The HTTP API under `/api/v1` (JSON) and the `/sync` WebSocket upgrade. Every request is
//! authenticated first; every answer about dossier content is decided by the policy and audited.
//! Errors are `{"error": {"code", "message"}}` with a stable code and never contain content.

mod closing;
mod device;
mod doc;
mod guard;
mod oversight;
mod params;
mod registers;
mod rights;
mod share;
mod signal;
mod statement;
mod upgrade;

pub use guard::{BODY_LIMIT, OFFLINE_READS_BODY_LIMIT};

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Json, Router};
use regie_core::document::{self, PersonRecord};
use regie_core::id::{DistrictId, DocumentKey, DossierId, PersonId, TeamId, UserId};
use regie_core::policy::{Action, Basis, Decision, Mode, Registration, decide};
use regie_core::principal::Principal;
use regie_core::relationship::Relationships;
use regie_sync_protocol::DocumentId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::audit::{AuditAction, AuditEvent};
use crate::auth::{AuthError, Authenticator, bearer_token, subprotocol_token};
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
    /// Whether the server is shutting down, and where `/metrics` is served.
    pub lifecycle: Lifecycle,
}

/// What readiness and the router need to know about the process.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    shutting_down: Arc<std::sync::atomic::AtomicBool>,
    /// Serve `/metrics` beside the API (false when it has a listener of its own).
    pub metrics_on_api: bool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            shutting_down: Arc::default(),
            metrics_on_api: true,
        }
    }
}

impl Lifecycle {
    /// From now on the server is not ready (it is draining before it stops).
    pub fn begin_shutdown(&self) {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(std::sync::atomic::Ordering::SeqCst)
    }
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
        let body = doc::ErrorBody {
            error: doc::ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
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
            DomainError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            DomainError::Refused(code) => ApiError::forbidden(code),
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
            // A concurrent change settled the row first; this one stored nothing.
            HubError::Storage(StorageError::Stale(table)) => {
                return match *table {
                    "tasks" => ApiError::new(
                        StatusCode::NOT_FOUND,
                        "no_open_task",
                        "no open task with that id",
                    ),
                    "break_glass_requests" => ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_confirmation",
                        "this confirmation is unknown, used or expired; ask again with a reason",
                    ),
                    "rights_requests" => ApiError::new(
                        StatusCode::CONFLICT,
                        "decided_already",
                        "this request was decided already",
                    ),
                    _ => ApiError::new(
                        StatusCode::CONFLICT,
                        "changed_meanwhile",
                        "this changed meanwhile; read it again and retry",
                    ),
                };
            }
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
/// body limit, all behind the guards of [`guard`]; and `/metrics` unless it has a listener of
/// its own (the one route outside the OpenAPI document: Prometheus text, not the API). Every
/// request runs in a `request` span and is counted ([`crate::telemetry::request`]).
pub fn router(state: AppState) -> Router {
    let (router, _) = routes().split_for_parts();
    let router = if state.lifecycle.metrics_on_api {
        router.route("/metrics", axum::routing::get(metrics))
    } else {
        router
    };
    guard::guard(router.with_state(state))
        .layer(axum::middleware::from_fn(crate::telemetry::request))
}

/// `/metrics` alone, for `--metrics-listen`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state(state)
        .layer(axum::middleware::from_fn(crate::telemetry::request))
}

/// `GET /metrics`: the Prometheus metrics of [`crate::metrics`], with the gauges read now.
async fn metrics(State(state): State<AppState>) -> Response {
    let (hot, known, queued) = state.hub.occupancy();
    crate::metrics::set_state(hot, known.saturating_sub(hot), queued);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        crate::metrics::render(),
    )
        .into_response()
}

/// The OpenAPI document of every route [`router`] serves, generated from the handlers'
/// annotations and types.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// `route` with its method router wrapped by `f` (a body limit, the query parameters it takes).
fn wrapped(
    route: UtoipaMethodRouter<AppState>,
    f: impl FnOnce(MethodRouter<AppState>) -> MethodRouter<AppState>,
) -> UtoipaMethodRouter<AppState> {
    let (schemas, paths, method_router) = route;
    (schemas, paths, f(method_router))
}

/// Every route with its documentation: a handler is registered with its `#[utoipa::path]`, so
/// the router and the document cannot disagree about which routes exist.
fn routes() -> OpenApiRouter<AppState> {
    use guard::{BODY_LIMIT, OFFLINE_READS_BODY_LIMIT, limit_body};
    // The query parameters each route takes besides `token` (see `params`).
    const NONE: &[&str] = &[];
    const REPORT: &[&str] = &["month", "tier", "format", "limit", "after"];
    const UNUSUAL: &[&str] = &["month", "format", "threshold", "limit", "after"];
    const ACCESS_LOG: &[&str] = &["from", "to", "limit", "after"];
    const PAGED: &[&str] = &["limit", "after"];
    const FORMAT: &[&str] = &["format"];
    fn takes(
        allowed: &'static [&'static str],
    ) -> impl Fn(MethodRouter<AppState>) -> MethodRouter<AppState> + Copy {
        move |route| {
            route.route_layer(axum::middleware::from_fn_with_state(
                allowed,
                params::accepts,
            ))
        }
    }
    let json = |route: MethodRouter<AppState>| takes(NONE)(limit_body(route, BODY_LIMIT));
    let plain = takes(NONE);
    OpenApiRouter::with_openapi(doc::ApiDoc::openapi())
        .routes(wrapped(routes!(health), plain))
        .routes(wrapped(routes!(ready), plain))
        .routes(wrapped(routes!(openapi), plain))
        .routes(wrapped(routes!(my_documents), plain))
        .routes(wrapped(routes!(write_rules), plain))
        .routes(wrapped(routes!(create_dossier), json))
        .routes(wrapped(routes!(assign), json))
        .routes(wrapped(routes!(unassign), plain))
        .routes(wrapped(routes!(link_resident), json))
        .routes(wrapped(routes!(unlink_resident), plain))
        .routes(wrapped(routes!(share::add_partner), json))
        .routes(wrapped(routes!(share::add_maatwerk), json))
        .routes(wrapped(routes!(share::withdraw_consent), json))
        .routes(wrapped(routes!(closing::close), json))
        .routes(wrapped(routes!(share::approve_weighing), json))
        .routes(wrapped(routes!(share::tasks), plain))
        .routes(wrapped(routes!(share::finish_task), json))
        .routes(wrapped(routes!(statement::add_statement), json))
        .routes(wrapped(routes!(device::device_key), json))
        .routes(wrapped(routes!(device::offline_reads), |route| {
            takes(NONE)(limit_body(route, OFFLINE_READS_BODY_LIMIT))
        }))
        .routes(wrapped(routes!(verify_audit), plain))
        .routes(wrapped(routes!(quarantine), takes(PAGED)))
        .routes(wrapped(routes!(destructions), plain))
        .routes(wrapped(routes!(oversight::break_glass), json))
        .routes(wrapped(
            routes!(oversight::break_glass_report),
            takes(REPORT),
        ))
        .routes(wrapped(
            routes!(oversight::access_review, oversight::record_access_review),
            json,
        ))
        .routes(wrapped(routes!(oversight::unusual_access), takes(UNUSUAL)))
        .routes(wrapped(
            routes!(oversight::my_access_log),
            takes(ACCESS_LOG),
        ))
        .routes(wrapped(routes!(rights::file_mine, rights::list_mine), json))
        .routes(wrapped(
            routes!(rights::file_on_behalf, rights::list_of_dossier),
            json,
        ))
        .routes(wrapped(routes!(rights::extend), json))
        .routes(wrapped(routes!(rights::decide), json))
        .routes(wrapped(routes!(rights::escalate), json))
        .routes(wrapped(routes!(rights::decide_escalation), json))
        .routes(wrapped(routes!(rights::carry_out), json))
        .routes(wrapped(routes!(rights::overdue), plain))
        .routes(wrapped(routes!(rights::lift_restriction), plain))
        .routes(wrapped(routes!(rights::contribute), json))
        .routes(wrapped(routes!(rights::agree_onward), json))
        .routes(wrapped(routes!(rights::export), takes(FORMAT)))
        .routes(wrapped(
            routes!(registers::council_report),
            takes(&["from", "to", "format"]),
        ))
        .routes(wrapped(routes!(registers::processing), takes(FORMAT)))
        .routes(wrapped(
            routes!(registers::record_breach, registers::breaches),
            json,
        ))
        .routes(wrapped(routes!(registers::breach_notification), json))
        .routes(wrapped(routes!(signal::list, signal::register), json))
        .routes(wrapped(routes!(signal::close), json))
        .routes(wrapped(routes!(signal::to_dossier), json))
        .routes(wrapped(routes!(sync), plain))
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

/// The answer of `GET /api/v1/health`.
#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`.
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

#[utoipa::path(
    get,
    path = "/api/v1/health",
    summary = r#"Liveness"#,
    security(()),
    responses(
        (status = 200, description = "The process is up (liveness; see /api/v1/ready for readiness)", body = Health),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        doc::Open,
    )
)]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The answer of `GET /api/v1/ready`: ready when every check holds.
#[derive(Serialize, ToSchema)]
struct Readiness {
    /// All of the below: the store answers, its migrations are applied, token keys are loaded,
    /// and the server is not shutting down.
    ready: bool,
    /// The store answered a query within two seconds.
    storage: bool,
    /// Every migration this binary embeds is applied to the store.
    migrations: bool,
    /// At least one key verifies tokens.
    keys: bool,
    /// Shutdown has begun (`--shutdown-grace-seconds`): finish up, send no new work.
    shutting_down: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/ready",
    summary = r#"Readiness: whether to send this server work"#,
    security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 503, description = "Not ready: the checks that failed are false", body = Readiness),
        doc::Open,
    )
)]
async fn ready(State(state): State<AppState>) -> Response {
    let store = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.hub.store().migrations_applied(),
    )
    .await;
    let (storage, migrations) = match store {
        Ok(Ok(applied)) => (true, applied),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the store does not answer");
            (false, false)
        }
        Err(_) => (false, false),
    };
    let keys = state.auth.has_keys();
    let shutting_down = state.lifecycle.shutting_down();
    let ready = storage && migrations && keys && !shutting_down;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        ready,
        storage,
        migrations,
        keys,
        shutting_down,
    };
    (status, Json(body)).into_response()
}

#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    summary = r#"This document"#,
    security(()),
    responses(
        (status = 200, description = "OpenAPI 3.1", body = Object),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        doc::Open,
    )
)]
async fn openapi() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let document = DOCUMENT.get_or_init(|| {
        openapi_document()
            .to_json()
            .expect("the OpenAPI document serializes")
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document.as_str(),
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/sync",
    summary = r#"WebSocket upgrade: automerge-repo network protocol version 1 (binary CBOR frames) plus Regie's rejected/revoked/replaced messages"#,
    params(
        ("token" = Option<String>, Query, description = "The JWT, for clients that cannot set headers"),
    ),
    responses(
        (status = 101, description = "Switching protocols"),
        (status = 400, description = "bad_request: not a WebSocket upgrade request, or unknown_parameter", body = doc::ErrorBody),
        (status = 426, description = "upgrade_required: the connection cannot be upgraded", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
async fn sync(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    ws: upgrade::SyncUpgrade,
) -> ApiResult<Response> {
    // Header first, then the subprotocol browsers use, then the query (never logged).
    let token = bearer_token(&headers, None)
        .or_else(|| subprotocol_token(&headers))
        .map(str::to_owned)
        .or(q.token)
        .ok_or(AuthError::Missing)?;
    let (principal, expires_at) = state.auth.authenticate_until(&token)?;
    let hub = state.hub.clone();
    // The connection's span is a child of this request's.
    let request_span = tracing::Span::current();
    ws.on_upgrade(move |socket| {
        tracing::Instrument::instrument(
            crate::session::run(socket, hub, principal, expires_at),
            request_span,
        )
    })
}

/// One document the caller may sync, with what a device needs to run the policy locally: the
/// dossier's district and team and the basis of the caller's access.
#[derive(Serialize, ToSchema)]
struct MyDocument {
    dossier: DossierId,
    /// `plan`, `record`, `view/<person>`, `maatwerk/<n>`, `partner/<org>` or `meta`.
    #[schema(example = "view/p-sanne")]
    key: String,
    /// The document's `automerge:` URL.
    #[schema(example = "automerge:2j9Jm6ZhaGvUfwvUCNZ6pXyRMh2F")]
    url: String,
    #[schema(value_type = doc::ModeSchema)]
    access: Mode,
    basis: Basis,
    district: DistrictId,
    team: TeamId,
    /// Closed (R18): the device refuses edits itself.
    closed: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/me/documents",
    summary = r#"The documents the caller may sync, with access mode (audited)"#,
    responses(
        (status = 200, description = "Documents", body = [MyDocument]),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/me/documents/{document}/write-rules",
    summary = r#"Which paths of this document the caller may write now, each decided by the policy over the document's schema (a document the caller may not read is not_found)"#,
    params(
        ("document" = String, Path, description = "The document id, or its automerge: URL"),
    ),
    responses(
        (status = 200, description = "Write rules", body = WriteRulesBody),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such document, or not the caller's to read", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
async fn write_rules(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(document): Path<String>,
) -> ApiResult<Json<WriteRulesBody>> {
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
    Ok(Json(WriteRulesBody {
        document: id.to_url(),
        dossier,
        key: key.to_string(),
        writable: rules.writable,
        reason: rules.reason,
        paths: rules.paths,
    }))
}

/// What the caller may write in one document, now.
#[derive(Serialize, ToSchema)]
#[schema(as = WriteRules)]
struct WriteRulesBody {
    /// The document's `automerge:` URL.
    document: String,
    dossier: DossierId,
    /// `plan`, `record`, `view/<person>`, `maatwerk/<n>`, `partner/<org>` or `meta`.
    key: String,
    /// Whether the caller may send changes to the document at all.
    writable: bool,
    /// The policy's reason code when not writable.
    #[schema(value_type = Option<String>)]
    reason: Option<regie_core::policy::DenyReason>,
    /// Every path of the document's schema, in schema order.
    paths: Vec<regie_core::writable::PathRule>,
}

#[derive(Deserialize, ToSchema)]
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
    #[schema(format = Date)]
    agreed_on: Option<String>,
}

/// A dossier just created: its id and its documents' `automerge:` URLs by key.
#[derive(Serialize, ToSchema)]
struct CreatedDossier {
    id: DossierId,
    documents: BTreeMap<String, String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/dossiers",
    summary = r#"Create a dossier in a district and team (admin, or a worker of that team, who is then assigned)"#,
    request_body = NewDossier,
    responses(
        (status = 201, description = "Created", body = CreatedDossier),
        (status = 403, description = "other_district, not_team_member or role_has_no_dossier_access", body = doc::ErrorBody),
        (status = 409, description = "agreement_missing: persons are named without the resident's agreement (R11)", body = doc::ErrorBody),
        (status = 400, description = "invalid (meta's schema refuses a person), invalid_date; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
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
    let mut draft = draft_dossier(&who, body, now)?;
    let mut audit = vec![draft.creation_event(&who, now)];
    if let Some(agreed_on) = agreed_on {
        let origin = "de aanmelding bij het wijkteam";
        audit.push(signal::write_aanmelding(
            &who, &mut draft, origin, agreed_on, now,
        )?);
    }
    // The dossier, its first documents and their audit rows: one transaction (I8).
    state
        .hub
        .store()
        .create_dossier(&draft.rel, &draft.persons, &draft.docs, now, &audit)
        .await?;
    let created = publish_dossier(&state, draft).await;
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
    /// Edits the drafted `record` before anything is stored, and checks it against its schema.
    fn edit_record(
        &mut self,
        edit: impl FnOnce(&mut automerge::AutoCommit) -> Result<(), automerge::AutomergeError>,
    ) -> ApiResult<()> {
        let (_, _, bytes) = self
            .docs
            .iter_mut()
            .find(|(_, key, _)| *key == DocumentKey::Record)
            .expect("a drafted dossier has a record");
        let mut doc = automerge::AutoCommit::load(bytes)
            .map_err(|e| HubError::Corrupt(DocumentId::new_random(), e.to_string()))?;
        edit(&mut doc).map_err(|e| ApiError::bad_request(e.to_string()))?;
        doc.commit();
        document::validate(DocumentKey::Record.kind(), &doc).map_err(HubError::Schema)?;
        *bytes = doc.save();
        Ok(())
    }

    /// The audit row of the dossier's creation.
    fn creation_event(&self, who: &Principal, now: OffsetDateTime) -> AuditEvent {
        let mut ev = AuditEvent::new(
            now,
            who.user.as_str(),
            who.role.as_str(),
            AuditAction::Create,
        );
        ev.dossier = Some(self.rel.dossier.to_string());
        ev.basis = Some(crate::hub::basis_code(self.basis));
        ev
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

/// Once the draft is stored: hands the dossier to the hub.
async fn publish_dossier(state: &AppState, draft: DossierDraft) -> CreatedDossier {
    let id = draft.rel.dossier;
    let documents: BTreeMap<DocumentKey, DocumentId> =
        draft.docs.iter().map(|(d, k, _)| (k.clone(), *d)).collect();
    state
        .hub
        .put_dossier(DossierEntry {
            rel: Arc::new(draft.rel),
            persons: draft.persons,
            documents: documents.clone(),
        })
        .await;
    CreatedDossier {
        id,
        documents: documents
            .iter()
            .map(|(k, d)| (k.to_string(), d.to_url()))
            .collect(),
    }
}

#[derive(Deserialize, ToSchema)]
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
    domain::relate_event(who, entry.rel.dossier, at, what)
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
async fn standing(
    state: &AppState,
    who: &Principal,
    id: &str,
    action: Action<'_>,
) -> ApiResult<DossierEntry> {
    let now = OffsetDateTime::now_utc();
    Ok(domain::standing(&state.hub, who, dossier_id(id)?, action, now).await?)
}

#[utoipa::path(
    post,
    path = "/api/v1/dossiers/{id}/assignments",
    summary = r#"Assign a worker (admin or the team's manager)"#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
    ),
    request_body = UserBody,
    responses(
        (status = 204, description = "Assigned"),
        (status = 404, description = "not_found: no such dossier, or not the caller's to manage", body = doc::ErrorBody),
        (status = 400, description = "invalid; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
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

#[utoipa::path(
    delete,
    path = "/api/v1/dossiers/{id}/assignments/{user}",
    summary = r#"Unassign a worker; their connected devices are told to purge the dossier (revoked)"#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
        ("user" = String, Path, description = "The worker's user id"),
    ),
    responses(
        (status = 204, description = "Unassigned"),
        (status = 400, description = "not a user id, invalid; or bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier, or not the caller's to manage; not_assigned", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
async fn unassign(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let now = OffsetDateTime::now_utc();
    domain::unassign(&state.hub, &who, dossier_id(&id)?, &user, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
struct PersonBody {
    person: PersonId,
}

#[utoipa::path(
    post,
    path = "/api/v1/dossiers/{id}/residents",
    summary = r#"Link a person of the dossier to their resident account (assigned worker or admin); creates view/<person>"#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
    ),
    request_body = PersonBody,
    responses(
        (status = 201, description = "Linked", body = DocumentRef),
        (status = 404, description = "not_found: no such dossier, or not the caller's to manage", body = doc::ErrorBody),
        (status = 400, description = "bad_request: the person is not part of this dossier, unreadable JSON, or the body refused", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
async fn link_resident(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Json(body): Json<PersonBody>,
) -> ApiResult<(StatusCode, Json<DocumentRef>)> {
    let now = OffsetDateTime::now_utc();
    let key = DocumentKey::View(body.person.clone());
    let view = domain::link_resident(&state.hub, &who, dossier_id(&id)?, body.person, now).await?;
    Ok((
        StatusCode::CREATED,
        Json(DocumentRef {
            key: key.to_string(),
            url: view.to_url(),
        }),
    ))
}

/// A thing a call created, by id.
#[derive(Serialize, ToSchema)]
struct Created {
    id: String,
}

/// A document a call created: its key and `automerge:` URL.
#[derive(Serialize, ToSchema)]
struct DocumentRef {
    /// E.g. `view/<person>`, `partner/<org>`, `maatwerk/<n>`.
    key: String,
    /// The `automerge:` URL.
    url: String,
}

#[utoipa::path(
    delete,
    path = "/api/v1/dossiers/{id}/residents/{person}",
    summary = r#"Unlink a resident; their devices are told to purge"#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
        ("person" = String, Path, description = "The person id"),
    ),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 400, description = "not a person id; or bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier, or not the caller's to manage; not_linked", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
async fn unlink_resident(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((id, person)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let now = OffsetDateTime::now_utc();
    domain::unlink_resident(&state.hub, &who, dossier_id(&id)?, &person, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    summary = r#"Verify the audit log's hash chain (privacy officer; audited)"#,
    responses(
        (status = 200, description = "Result", body = Verified),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "privacy_officer_only", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
async fn verify_audit(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<Json<Verified>> {
    privacy_officer_reads(&state, &who).await?;
    let v = state.hub.store().verify_audit().await?;
    Ok(Json(Verified {
        intact: v.intact(),
        rows: v.rows,
        first_broken_seq: v.first_broken_seq,
    }))
}

/// The audit log's hash chain, walked now.
#[derive(Serialize, ToSchema)]
struct Verified {
    /// Whether every row's hash and link match.
    intact: bool,
    /// How many rows were checked.
    rows: u64,
    /// The first row whose hash or link does not match, if any.
    first_broken_seq: Option<i64>,
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
#[utoipa::path(
    get,
    path = "/api/v1/destructions",
    summary = r#"Proof of every dossier destroyed at the end of its retention (privacy officer; R23, I6): dossier id, when, why, how many documents, changes and bytes, and the id of its data key destroyed with it — never content."#,
    responses(
        (status = 200, description = "Destructions, oldest first", body = [doc::DestructionProof]),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "privacy_officer_only", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/quarantine",
    summary = r#"Rejected write batches with reasons, never content, newest first, a page at a time (privacy officer; audited). Quarantine keeps the bytes of at most 64 batches or 16 MiB per device and per dossier; beyond that a rejection is recorded (reason, path, hashes, time, size) with bytes_kept false."#,
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Batches per page, 1 to 1000 (invalid_limit)"),
        ("after" = Option<i64>, Query, description = "The X-Next-Cursor of the previous page: batches older than that row (invalid_cursor)"),
    ),
    responses(
        (status = 200, description = "Quarantined batches; the X-Next-Cursor header gives after for the next page, absent on the last", body = [doc::QuarantinedBatch], headers(("x-next-cursor" = String, description = "after for the next page"))),
        (status = 400, description = "invalid_limit, invalid_cursor; or bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "privacy_officer_only", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
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
