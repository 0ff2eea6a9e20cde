//! Closing and handover (R18): on a complete triage record of the `afsluiting` or `overdracht`
//! moment — which names what goes along to a successor — an assigned worker closes the dossier.
//! The server fixes the legal regimes' trigger dates and the destroy-by date in `meta` (R23),
//! ends every chain partner's access (their devices are told `revoked`), and from then on the
//! dossier is read by its audience and written by nobody.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use regie_core::document::{self, compose};
use regie_core::id::{DocumentKey, DossierId};
use regie_core::policy::{Action, Decision, DenyReason, decide};
use regie_core::retention::{self, DossierPart, Regime};
use regie_core::share;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::share::{denied, document_at};
use super::{ApiError, ApiResult, AppState, Caller, doc, relation_event};
use crate::hub::Relating;
use crate::storage::RelationEdit;

/// `POST /api/v1/dossiers/{id}/close`.
#[derive(Deserialize, ToSchema)]
pub(super) struct Closing {
    /// The triage record of the closing or handover.
    triage: String,
    /// The parts' legal regimes when meta records none; a missing trigger is the closing day
    /// (Participatiewet: the benefit's end, left open).
    #[serde(default)]
    regimes: Vec<RegimeBody>,
}

/// One part's regime and, where it is not the closing day, its trigger date.
#[derive(Deserialize, ToSchema)]
pub(super) struct RegimeBody {
    regime: String,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    #[schema(format = Date)]
    trigger: Option<String>,
}

/// Closes the dossier.
#[utoipa::path(
    post,
    path = "/api/v1/dossiers/{id}/close",
    summary = r#"Close the dossier (assigned worker; R18, R23): needs a complete triage record of moment afsluiting or overdracht and no open tasks. Fixes the regimes' trigger dates and the destroy-by date in meta, ends every partner's access; afterwards nobody writes the dossier."#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
    ),
    request_body = Closing,
    responses(
        (status = 200, description = "Closed", body = Closed),
        (status = 403, description = "a refusal of the policy, e.g. triage_missing or tasks_open", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier, or not the caller's to see", body = doc::ErrorBody),
        (status = 409, description = "the dossier is already closed", body = doc::ErrorBody),
        (status = 400, description = "invalid regime or trigger date; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn close(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Json(body): Json<Closing>,
) -> ApiResult<Json<Closed>> {
    let dossier: DossierId = id.parse().map_err(|_| ApiError::not_found())?;
    let entry = state
        .hub
        .current_dossier(dossier)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let now = OffsetDateTime::now_utc();
    let record = document_at(&state, &entry, DocumentKey::Record).await?;
    let triage = share::triage(&record, &body.triage);
    match decide(
        &who,
        Action::Close {
            triage: triage.as_ref(),
        },
        &entry.rel,
        now,
    ) {
        // Outsiders learn nothing about the dossier, as everywhere else.
        Decision::Deny(
            DenyReason::NotInAudience
            | DenyReason::OtherDistrict
            | DenyReason::RoleHasNoDossierAccess
            | DenyReason::GrantExpired,
        ) => return Err(ApiError::not_found()),
        decision => denied(decision)?,
    }
    let store = state.hub.store();
    if store
        .tasks(dossier)
        .await?
        .iter()
        .any(|t| t.done_at.is_none())
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "open_tasks",
            "finish the dossier's open tasks first (such as informing the resident of a share)",
        ));
    }
    let mut parts = if body.regimes.is_empty() {
        document::regimes(&document_at(&state, &entry, DocumentKey::Meta).await?)
    } else {
        body.regimes
            .iter()
            .map(|r| {
                let regime = Regime::from_code(&r.regime).ok_or_else(|| {
                    ApiError::bad_request(format!("unknown regime {:?}", r.regime))
                })?;
                let trigger_on = r
                    .trigger
                    .as_deref()
                    .map(|t| time::Date::parse(t, document::DATE))
                    .transpose()
                    .map_err(|_| ApiError::bad_request("a trigger is a date YYYY-MM-DD"))?;
                Ok(DossierPart { regime, trigger_on })
            })
            .collect::<ApiResult<Vec<_>>>()?
    };
    if parts.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "regimes_missing",
            "name the legal regimes of the dossier's parts (wmo2015, jeugdwet, wgbo, participatiewet, refused_or_not_adopted) so its destroy-by date can be fixed (R23)",
        ));
    }
    let today = now.date();
    for part in &mut parts {
        // Closing is the trigger of Wmo 2015 and the last change of Jeugdwet and WGBO parts,
        // since nobody writes a closed dossier; a benefit's end is not known here.
        if part.trigger_on.is_none() && part.regime != Regime::Participatiewet {
            part.trigger_on = Some(today);
        }
    }
    let destroy_by = retention::destroy_by_dossier(&parts, &[]);
    let written = parts.clone();
    let triage = triage.expect("the policy allowed it");
    let handover = (triage.moment == "overdracht").then(|| Handover {
        recipient: triage.recipient.clone(),
        items: triage.items.clone(),
    });
    let mut ended = Vec::new();
    state
        .hub
        .relate::<ApiError>(dossier, now, |current| {
            // Relationships may have changed since the policy was asked: it decides again.
            denied(decide(
                &who,
                Action::Close {
                    triage: Some(&triage),
                },
                &current.rel,
                now,
            ))?;
            let mut after = current.clone();
            let rel = Arc::make_mut(&mut after.rel);
            ended = std::mem::take(&mut rel.partners);
            rel.closed = true;
            let mut edits = vec![RelationEdit::Close { destroy_by }];
            edits.extend(ended.iter().map(|org| RelationEdit::EndPartner {
                org: org.clone(),
                because: "dossier_closed",
            }));
            let what = format!(
                "closed on triage {} ({}); partners ended: {}",
                triage.id,
                triage.moment,
                ended.len()
            );
            let mut plan = Relating::rows(edits, after, relation_event(&who, current, now, what));
            plan.edit = Some((
                DocumentKey::Meta,
                Box::new(move |tx| compose::write_closed(tx, &written, destroy_by)),
            ));
            Ok(Some(plan))
        })
        .await?;
    let date = |d: time::Date| d.format(document::DATE).expect("dates format");
    Ok(Json(Closed {
        status: "closed",
        destroy_by: destroy_by.map(date),
        regimes: parts
            .iter()
            .map(|p| ClosedRegime {
                regime: p.regime.code(),
                trigger: p.trigger_on.map(date),
            })
            .collect(),
        partners_ended: ended.iter().map(ToString::to_string).collect(),
        handover,
    }))
}

/// A dossier closed.
#[derive(Serialize, ToSchema)]
pub(super) struct Closed {
    /// `closed`.
    #[schema(value_type = String)]
    status: &'static str,
    /// The day the dossier is destroyed (R23), `YYYY-MM-DD`.
    #[schema(format = Date)]
    destroy_by: Option<String>,
    /// The parts' regimes and trigger dates as fixed in meta.
    regimes: Vec<ClosedRegime>,
    /// The partners whose access ended.
    partners_ended: Vec<String>,
    /// For an overdracht: the recipient and the items that go along.
    handover: Option<Handover>,
}

/// One part's regime as fixed at closing.
#[derive(Serialize, ToSchema)]
pub(super) struct ClosedRegime {
    #[schema(value_type = String)]
    regime: &'static str,
    /// `YYYY-MM-DD`; null while it is not known (a benefit's end).
    #[schema(format = Date)]
    trigger: Option<String>,
}

/// Who takes a dossier over and what goes along.
#[derive(Serialize, ToSchema)]
pub(super) struct Handover {
    #[schema(value_type = Option<String>)]
    recipient: Option<String>,
    #[schema(value_type = Vec<String>)]
    items: std::collections::BTreeSet<String>,
}
