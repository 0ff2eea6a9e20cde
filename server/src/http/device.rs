//! What devices report back: `POST /api/v1/audit/offline-reads` takes the documents a device
//! opened while offline (I3) and writes each into the hash-chained audit log as an
//! `offline_read`, with the device, the device clock's reading and its offset from the server
//! clock (measured from the upload's `sent_at`). A device may only report reads of documents
//! the policy lets its user read now; other reports are refused one by one, and a report about
//! an existing document is still logged, as refused, because a device claiming it is an event.
//! `POST /api/v1/me/device-key` releases the key a device encrypts its store with (R29) to the
//! authenticated user, per device; a device reported lost gets none, ever.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use regie_core::id::{DocumentKey, DossierId};
use regie_core::policy::{Action, Decision, decide};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::{ApiError, ApiResult, AppState, Caller, doc};
use crate::audit::{AuditAction, AuditEvent};
use crate::hub::{basis_code, subjects};

/// The most events one upload may carry.
const MAX_EVENTS: usize = 5_000;

/// One upload of offline reads.
#[derive(Deserialize, ToSchema)]
pub(super) struct OfflineReads {
    /// The device's storage id.
    device: String,
    /// The device clock when sending; the server measures the clock offset from it.
    #[serde(with = "time::serde::rfc3339")]
    sent_at: OffsetDateTime,
    /// The reads.
    #[schema(max_items = 5000)]
    events: Vec<OfflineReadEvent>,
}

/// One local open of a document.
#[derive(Deserialize, ToSchema)]
struct OfflineReadEvent {
    /// The device's id for the event.
    id: String,
    /// The dossier.
    #[schema(format = Uuid)]
    dossier: String,
    /// The document key (`plan`, `record`, …).
    document: String,
    /// When it was opened, by the device clock.
    #[serde(with = "time::serde::rfc3339")]
    opened_at: OffsetDateTime,
}

/// A report the server did not log as a read.
#[derive(Serialize, ToSchema)]
pub(super) struct Refused {
    id: String,
    /// E.g. `not_found`.
    #[schema(value_type = String)]
    reason: &'static str,
}

/// Which reports were logged and which were refused.
#[derive(Serialize, ToSchema)]
pub(super) struct Logged {
    accepted: Vec<String>,
    refused: Vec<Refused>,
    /// Server clock minus device clock, in seconds, as measured at upload.
    clock_offset_seconds: i64,
}

#[utoipa::path(
    post,
    path = "/api/v1/audit/offline-reads",
    summary = r#"Upload the documents a device opened while offline (I3); each is logged as an offline_read with the device and the clock offset, if the policy lets the caller read that document now"#,
    description = r#"The body may be up to 2 MiB (5,000 events)."#,
    request_body = OfflineReads,
    responses(
        (status = 200, description = "Which events were logged as reads and which were refused (refused reports about existing documents are logged with the refusal as outcome)", body = Logged),
        (status = 400, description = "too many events; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn offline_reads(
    State(state): State<AppState>,
    Caller(who): Caller,
    Json(body): Json<OfflineReads>,
) -> ApiResult<(StatusCode, Json<Logged>)> {
    if body.events.len() > MAX_EVENTS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_EVENTS} events per upload; send the rest in another"
        )));
    }
    if body.device.is_empty() || body.device.len() > 128 {
        return Err(ApiError::bad_request(
            "device must be the device's storage id (1 to 128 characters)",
        ));
    }
    let now = OffsetDateTime::now_utc();
    let offset = now - body.sent_at;
    let mut out = Logged {
        accepted: Vec::new(),
        refused: Vec::new(),
        clock_offset_seconds: offset.whole_seconds(),
    };
    // A repeated upload (the answer to the first was lost) logs nothing twice.
    let store = state.hub.store();
    for ev in body.events {
        let known = ev
            .dossier
            .parse::<DossierId>()
            .ok()
            .zip(ev.document.parse::<DocumentKey>().ok())
            .and_then(|(id, key)| Some((state.hub.dossier(id)?, key)))
            .filter(|(entry, key)| entry.documents.contains_key(key));
        let Some((entry, key)) = known else {
            out.refused.push(Refused {
                id: ev.id,
                reason: "not_found",
            });
            continue;
        };
        let mut audit = AuditEvent::new(
            ev.opened_at + offset,
            who.user.as_str(),
            who.role.as_str(),
            AuditAction::OfflineRead,
        );
        audit.dossier = Some(entry.rel.dossier.to_string());
        audit.document = Some(key.to_string());
        audit.persons = Some(subjects(&key, &entry.persons));
        audit.device = Some(body.device.clone());
        audit.detail = Some(format!(
            "device clock {}, offset {:+} s",
            ev.opened_at.format(&Rfc3339).unwrap_or_default(),
            offset.whole_seconds()
        ));
        match decide(&who, Action::Read(&key), &entry.rel, now) {
            Decision::Allow { basis, .. } => {
                audit.basis = Some(basis_code(basis));
                store
                    .append_offline_read(&body.device, &ev.id, &audit)
                    .await?;
                out.accepted.push(ev.id);
            }
            Decision::Deny(reason) => {
                audit.outcome = reason.code().into();
                store
                    .append_offline_read(&body.device, &ev.id, &audit)
                    .await?;
                // The audit log keeps the reason; the device is told what it would be told of
                // a dossier or document that does not exist (I5).
                out.refused.push(Refused {
                    id: ev.id,
                    reason: "not_found",
                });
            }
        }
    }
    Ok((StatusCode::OK, Json(out)))
}

/// Which device asks for its key.
#[derive(Deserialize, ToSchema)]
pub(super) struct DeviceKeyRequest {
    /// The device's storage id.
    device: String,
}

/// A device's key (R29): hold it in memory only, drop it when idle, ask again after login.
#[derive(Serialize, ToSchema)]
pub(super) struct DeviceKeyBody {
    /// The key's id.
    key_id: String,
    /// The 32-byte key, base64 (standard alphabet, padded).
    key: String,
    /// Drop the key after this many seconds without use (`--device-idle-lock-seconds`).
    idle_seconds: u32,
}

#[utoipa::path(
    post,
    path = "/api/v1/me/device-key",
    summary = r#"The key the caller's device encrypts its store with (R29): one per user and device, kept wrapped on the server, released after authentication (audited, ids only); a device reported lost is refused, its key destroyed"#,
    request_body = DeviceKeyRequest,
    responses(
        (status = 200, description = "The device's key", body = DeviceKeyBody),
        (status = 403, description = "device_revoked: this device was reported lost; its key is destroyed", body = doc::ErrorBody),
        (status = 400, description = "bad_request: no device id, unreadable JSON, or the body refused", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn device_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    Json(body): Json<DeviceKeyRequest>,
) -> ApiResult<Json<DeviceKeyBody>> {
    use base64::Engine;
    if body.device.is_empty() || body.device.len() > 128 {
        return Err(ApiError::bad_request(
            "device must be the device's storage id (1 to 128 characters)",
        ));
    }
    let released = state
        .hub
        .store()
        .release_device_key(
            &who.user,
            who.role.as_str(),
            &body.device,
            OffsetDateTime::now_utc(),
        )
        .await?;
    match released {
        Some(k) => Ok(Json(DeviceKeyBody {
            key: base64::engine::general_purpose::STANDARD.encode(&k.key[..]),
            key_id: k.key_id,
            idle_seconds: state.oversight.device_idle_lock_seconds,
        })),
        None => Err(ApiError::forbidden("device_revoked")),
    }
}
