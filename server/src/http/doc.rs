//! The OpenAPI document of `/api/v1`, generated from the handlers' `#[utoipa::path]`
//! annotations and the types they take and answer (the router in [`super::routes`] registers
//! each handler with its annotation, so a route cannot be served without being documented).
//!
//! The few types the HTTP layer answers with but does not own (rows the store returns, the
//! policy's access mode) are described here by schema types of the same shape; the tests below
//! hold each of them to the JSON the real type serializes to.

use std::collections::BTreeMap;

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

/// The error every route answers with: a stable code and a message that says what to do; never
/// dossier content.
#[derive(serde::Serialize, ToSchema)]
#[schema(as = Error)]
pub(super) struct ErrorBody {
    pub(super) error: ErrorDetail,
}

/// The code and message of an [`ErrorBody`].
#[derive(serde::Serialize, ToSchema)]
pub(super) struct ErrorDetail {
    /// Stable, e.g. `not_found`, `bad_request`, `body_too_large`.
    pub(super) code: &'static str,
    /// What went wrong and what to do.
    pub(super) message: String,
}

/// A response with the [`ErrorBody`] shape.
fn error(description: &str) -> RefOr<Response> {
    let schema = Ref::from_schema_name(ErrorBody::name());
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .build()
        .into()
}

/// The answers the framework and the guards give on any route, written once: a route names the
/// group it belongs to in its `responses(...)`, after the answers of its own.
fn common(statuses: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    statuses
        .iter()
        .map(|status| {
            let description = match status {
                401 => "unauthorized: the token is missing, invalid or expired",
                413 => "body_too_large: the body is larger than the route's limit",
                415 => "unsupported_media_type: the body is not sent as application/json",
                422 => "invalid_body: the JSON body has the wrong shape",
                _ => "internal: a failure inside the server",
            };
            (status.to_string(), error(description))
        })
        .collect()
}

/// A route without a token: 500 only.
pub(super) struct Open;

impl IntoResponses for Open {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        common(&[500])
    }
}

/// A route with a token and no body: 401, 500.
pub(super) struct Authenticated;

impl IntoResponses for Authenticated {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        common(&[401, 500])
    }
}

/// A route with a token whose body, if any, is read as bytes: 401, 413, 500.
pub(super) struct WithBody;

impl IntoResponses for WithBody {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        common(&[401, 413, 500])
    }
}

/// A route with a token and a JSON body: 401, 413, 415, 422, 500.
pub(super) struct JsonBody;

impl IntoResponses for JsonBody {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        common(&[401, 413, 415, 422, 500])
    }
}

/// The API's description and the bearer scheme; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Regie API",
        version = "1",
        description = "Regie's HTTP API. Every call needs a JWT bearer token in the Authorization header (or ?token= for browsers). Errors are {\"error\": {\"code\", \"message\"}} with a stable code and never contain dossier content. Dossier documents themselves are synced over the automerge-repo protocol on the /sync WebSocket. Bounds (I7): every route names the query parameters it takes; an unknown or repeated one is refused with 400 unknown_parameter or repeated_parameter, and every value is checked (dates YYYY-MM-DD from 0001-01-01 to 9999-12-31: invalid_date; months YYYY-MM from 1970-01 to 9999-11: invalid_month; page sizes: invalid_limit; cursors: invalid_cursor). JSON bodies are limited to 65536 bytes (64 KiB) per request, 2097152 bytes (2 MiB) for POST /api/v1/audit/offline-reads; a larger body is refused with 413 body_too_large before it is read. Errors the framework itself raises keep the same shape: 400 bad_request (unreadable JSON), 415 unsupported_media_type, 422 invalid_body, 404 not_found, 405 method_not_allowed; a failure inside the server answers 500 internal. Lists that grow with the audit log or the quarantine come a page at a time: limit (bounds per route) and after (the next of the previous page); next is null, or the X-Next-Cursor header absent, on the last page. This document is generated from the server's code."
    ),
    servers((url = "/")),
    security(("bearer" = [])),
    modifiers(&Bearer),
    // Schemas that only query parameters name (a body's schemas come with its route).
    components(schemas(ErrorBody, super::oversight::ReportFormat, super::oversight::ReportTier))
)]
pub(super) struct ApiDoc;

/// Adds the bearer JWT scheme the document's `security` names.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// How far an allowed access goes (`regie_core::policy::Mode`).
#[derive(serde::Serialize, ToSchema)]
#[schema(as = Mode)]
#[allow(dead_code)] // a schema only: the policy's `Mode` is what is serialized
#[serde(rename_all = "snake_case")]
pub(super) enum ModeSchema {
    /// Receive only.
    Read,
    /// Receive and send changes (each still checked per path).
    Write,
}

/// A quarantined batch: reasons and hashes, never content (`crate::storage::QuarantineRow`).
#[derive(ToSchema)]
#[schema(as = QuarantinedBatch)]
#[allow(dead_code)] // a schema only
pub(super) struct QuarantinedBatch {
    /// Row id; `after` for the next page.
    id: i64,
    /// When it was rejected.
    #[schema(format = DateTime)]
    at: String,
    /// Who sent it.
    user: String,
    /// From which device.
    device: Option<String>,
    /// The document id.
    document: String,
    /// The reason code.
    reason: String,
    /// The offending path.
    path: Option<String>,
    /// The explanation.
    detail: String,
    /// The change hashes, comma-separated hex.
    hashes: String,
    /// Bytes of the batch as received.
    size: i64,
    /// false when the device or dossier had reached the quarantine cap.
    bytes_kept: bool,
}

/// Proof that a dossier was destroyed, without any of its content
/// (`crate::storage::retention::Destruction`).
#[derive(ToSchema)]
#[schema(as = Destruction)]
#[allow(dead_code)] // a schema only
pub(super) struct DestructionProof {
    /// The dossier.
    dossier: String,
    /// When.
    destroyed_at: String,
    /// Why (`retention_ended`).
    reason: String,
    /// How many documents it had.
    documents: i64,
    /// How many stored changes were deleted.
    changes: i64,
    /// How many bytes of changes and snapshots were deleted.
    bytes: i64,
    /// The id of the dossier's data key, destroyed with it, so no backup of its rows decrypts
    /// (I6); null for a dossier destroyed before encryption at rest.
    key_id: Option<String>,
}

/// A task of a dossier (`crate::storage::share::TaskRow`).
#[derive(ToSchema)]
#[schema(as = Task)]
#[allow(dead_code)] // a schema only
pub(super) struct TaskSchema {
    /// Row id.
    id: i64,
    /// What kind (`inform_resident`).
    kind: String,
    /// What it is about (e.g. `share partner:ggd on weighing w1`); ids only, no content.
    about: String,
    /// When it was created.
    created_at: String,
    /// When it was done, if it was.
    done_at: Option<String>,
    /// Who did it.
    done_by: Option<String>,
}

/// A recorded access review of one team, R10 (`crate::storage::AccessReview`).
#[derive(ToSchema)]
#[schema(as = AccessReview)]
#[allow(dead_code)] // a schema only
pub(super) struct AccessReviewSchema {
    /// Row id.
    id: i64,
    /// The team reviewed.
    team: String,
    /// Who reviewed (the manager's user id).
    reviewer: String,
    /// When.
    #[schema(format = DateTime)]
    reviewed_at: String,
    /// How many dossiers the listing had.
    dossiers: i64,
    /// How many access lines the listing had.
    lines: i64,
    /// SHA-256 (hex) of the listing as reviewed.
    digest: String,
    /// The reviewer's note.
    note: Option<String>,
}

/// Who can reach a dossier and why (`regie_core::policy::ReviewLine`).
#[derive(ToSchema)]
#[schema(as = ReviewLine)]
#[allow(dead_code)] // a schema only
pub(super) struct ReviewLineSchema {
    /// `worker:<user>`, `person:<person>`, `backoffice:<district>` or `org:<org>`.
    who: String,
    /// The relationship.
    basis: regie_core::relationship::Basis,
    /// The documents it reaches; `maatwerk/*` stands for every maatwerk extract.
    documents: Vec<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use utoipa::PartialSchema;

    use super::*;

    /// The property names of a schema object, and which are required.
    fn shape<T: PartialSchema>() -> (Vec<String>, Vec<String>) {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let mut props: Vec<String> = schema["properties"]
            .as_object()
            .expect("an object schema")
            .keys()
            .cloned()
            .collect();
        props.sort();
        let mut required: Vec<String> = schema["required"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        required.sort();
        (props, required)
    }

    /// `value` (a real type serialized) has exactly the schema's properties, all required ones
    /// included.
    fn fits<T: PartialSchema>(value: impl serde::Serialize) {
        let value = serde_json::to_value(value).unwrap();
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        let (props, required) = shape::<T>();
        assert_eq!(keys, props, "{value}");
        for r in required {
            assert!(!value[&r].is_null(), "{r} is required: {value}");
        }
    }

    #[test]
    fn the_schemas_of_types_the_http_layer_does_not_own_match_their_json() {
        fits::<QuarantinedBatch>(crate::storage::QuarantineRow {
            id: 1,
            at: "2024-03-01T10:00:00Z".into(),
            user: "u".into(),
            device: None,
            document: "d".into(),
            reason: "r".into(),
            path: None,
            detail: "x".into(),
            hashes: "ab".into(),
            size: 3,
            bytes_kept: true,
        });
        fits::<DestructionProof>(crate::storage::retention::Destruction {
            dossier: "d".into(),
            destroyed_at: "2024-03-01T10:00:00Z".into(),
            reason: "retention_ended".into(),
            documents: 3,
            changes: 4,
            bytes: 5,
            key_id: Some("dk-1".into()),
        });
        fits::<TaskSchema>(crate::storage::share::TaskRow {
            id: 1,
            kind: "inform_resident".into(),
            about: "a".into(),
            created_at: "2024-03-01T10:00:00Z".into(),
            done_at: None,
            done_by: None,
        });
        fits::<AccessReviewSchema>(crate::storage::AccessReview {
            id: 1,
            team: "t".into(),
            reviewer: "m".into(),
            reviewed_at: time::OffsetDateTime::UNIX_EPOCH,
            dossiers: 1,
            lines: 2,
            digest: "ab".into(),
            note: None,
        });
        fits::<ReviewLineSchema>(regie_core::policy::ReviewLine {
            who: "worker:w".into(),
            basis: regie_core::relationship::Basis::Assignment,
            documents: vec!["plan".into()],
        });
        for mode in [
            regie_core::policy::Mode::Read,
            regie_core::policy::Mode::Write,
        ] {
            let schema = serde_json::to_value(ModeSchema::schema()).unwrap();
            let code = serde_json::to_value(mode).unwrap();
            assert!(schema["enum"].as_array().unwrap().contains(&code), "{code}");
        }
    }

    #[test]
    fn the_error_schema_is_what_errors_serialize_to() {
        let body = ErrorBody {
            error: ErrorDetail {
                code: "not_found",
                message: "m".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"error": {"code": "not_found", "message": "m"}})
        );
        let (props, required) = shape::<ErrorBody>();
        assert_eq!((props.clone(), required), (vec!["error".to_owned()], props));
        let _: Value = serde_json::to_value(ErrorDetail::schema()).unwrap();
    }
}
