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
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::share::{denied, document_at};
use super::{ApiError, ApiResult, AppState, Caller, relation_event};
use crate::hub::Relating;
use crate::storage::RelationEdit;

/// `POST /api/v1/dossiers/{id}/close`.
#[derive(Deserialize)]
pub(super) struct Closing {
    /// The triage record of the closing or handover.
    triage: String,
    /// The legal regimes of the dossier's parts, when `meta` does not record them yet.
    #[serde(default)]
    regimes: Vec<RegimeBody>,
}

/// One part's regime and, where it is not the closing day, its trigger date.
#[derive(Deserialize)]
pub(super) struct RegimeBody {
    regime: String,
    #[serde(default)]
    trigger: Option<String>,
}

/// Closes the dossier.
pub(super) async fn close(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Json(body): Json<Closing>,
) -> ApiResult<Json<serde_json::Value>> {
    let dossier: DossierId = id.parse().map_err(|_| ApiError::not_found())?;
    let entry = state.hub.dossier(dossier).ok_or_else(ApiError::not_found)?;
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
    let handover = (triage.moment == "overdracht")
        .then(|| json!({ "recipient": triage.recipient, "items": triage.items }));
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
    Ok(Json(json!({
        "status": "closed",
        "destroy_by": destroy_by.map(date),
        "regimes": parts.iter().map(|p| json!({
            "regime": p.regime.code(),
            "trigger": p.trigger_on.map(date),
        })).collect::<Vec<_>>(),
        "partners_ended": ended.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "handover": handover,
    })))
}
