//! Sharing by decision (R5, R6, R12, R16, R17): a worker shares with the back office
//! (`maatwerk/<n>`) or a chain partner (`partner/<org>`) only through a triage record that names
//! the recipient and the items, on a ground that holds — the resident's application, everyone's
//! consent as R16 requires it for each person concerned, or a weighing approved by a second
//! worker of the team, which leaves an "inform the resident" task open until done. The policy
//! decides; this module gathers the facts from `record`, `meta` and storage.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use regie_core::consent::{self, ConsentSubject, ProposedShare};
use regie_core::document::{self, DATE};
use regie_core::id::{DocumentKey, DocumentKind, DossierId, OrgId, PersonId, UserId};
use regie_core::policy::{Action, Decision, decide};
use regie_core::principal::{Principal, Role};
use regie_core::share::{self, Ground, Recipient, ShareRequest};
use regie_sync_protocol::DocumentId;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::{ApiError, ApiResult, AppState, Caller, manageable, relate};
use crate::hub::DossierEntry;

/// The ground a partner share rests on.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum GroundName {
    /// Consent (R16).
    Consent,
    /// A weighing approved by a second worker (R17).
    FourEyes,
}

/// `POST /api/v1/dossiers/{id}/partners`.
#[derive(Deserialize)]
pub(super) struct PartnerShare {
    org: OrgId,
    triage: String,
    purpose: String,
    #[serde(default)]
    items: Vec<String>,
    #[serde(default)]
    subjects: Vec<PersonId>,
    ground: GroundName,
    #[serde(default)]
    weighing: Option<String>,
}

/// `POST /api/v1/dossiers/{id}/maatwerk`.
#[derive(Deserialize)]
pub(super) struct MaatwerkShare {
    triage: String,
    #[serde(default)]
    items: Vec<String>,
}

fn denied(decision: Decision) -> ApiResult<()> {
    match decision {
        Decision::Allow { .. } => Ok(()),
        Decision::Deny(reason) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            reason.code(),
            match reason.code() {
                "triage_missing" => {
                    "record a triage decision naming this recipient and these items first"
                }
                "triage_incomplete" => {
                    "complete the triage record: purpose, the three arguments, the decision, and whether it was discussed with the resident (or why not)"
                }
                "consent_missing" => {
                    "someone whose consent is required has not given it for this recipient, purpose and items"
                }
                "second_approval_missing" => {
                    "a second worker of the team must approve the weighing first"
                }
                _ => "you are not allowed to share this",
            },
        )),
    }
}

async fn record_of(
    state: &AppState,
    entry: &DossierEntry,
    key: DocumentKey,
) -> ApiResult<automerge::Automerge> {
    let id = entry
        .documents
        .get(&key)
        .copied()
        .ok_or_else(ApiError::not_found)?;
    state
        .hub
        .snapshot(id)
        .await?
        .ok_or_else(ApiError::not_found)
}

fn requested_items(body: &[String], triage: Option<&share::Triage>) -> BTreeSet<String> {
    if body.is_empty() {
        triage.map(|t| t.items.clone()).unwrap_or_default()
    } else {
        body.iter().cloned().collect()
    }
}

async fn create_document(
    state: &AppState,
    entry: &mut DossierEntry,
    key: &DocumentKey,
    kind: DocumentKind,
) -> ApiResult<DocumentId> {
    if let Some(id) = entry.documents.get(key) {
        return Ok(*id);
    }
    let id = DocumentId::new_random();
    let snapshot = document::skeleton(kind).save();
    state
        .hub
        .store()
        .create_document(
            id,
            entry.rel.dossier,
            key,
            &snapshot,
            OffsetDateTime::now_utc(),
        )
        .await?;
    entry.documents.insert(key.clone(), id);
    Ok(id)
}

/// Involve a chain partner: creates `partner/<org>` for DAT-information (R5).
pub(super) async fn add_partner(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Json(body): Json<PartnerShare>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let mut entry = manageable(&state, &who, &id, true)?;
    let now = OffsetDateTime::now_utc();
    let record = record_of(&state, &entry, DocumentKey::Record).await?;
    let triage = share::triage(&record, &body.triage);
    let items = requested_items(&body.items, triage.as_ref());
    let recipient = Recipient::Partner(body.org.clone());
    let coverages;
    let approver;
    let ground = match body.ground {
        GroundName::Consent => {
            if body.subjects.is_empty() {
                return Err(ApiError::bad_request(
                    "name the persons whose data is shared (subjects)",
                ));
            }
            let meta = record_of(&state, &entry, DocumentKey::Meta).await?;
            let persons = document::persons(&meta);
            let recorded = share::consents(&record);
            let today = now.date();
            let mut out = Vec::new();
            for subject in &body.subjects {
                let person = persons.iter().find(|p| &p.id == subject).ok_or_else(|| {
                    ApiError::bad_request(format!("{subject} is not a person of this dossier"))
                })?;
                let born_on = person
                    .birth_date
                    .as_deref()
                    .and_then(|b| time::Date::parse(b, DATE).ok())
                    .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "birth_date_missing", format!("record the birth date of {subject}: who must consent depends on age")))?;
                let required = consent::required_consent(
                    &ConsentSubject {
                        person: subject.clone(),
                        born_on,
                        wilsonbekwaam: false,
                    },
                    &person.gezag,
                    today,
                )
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::CONFLICT,
                        "consent_requirement_unknown",
                        e.to_string(),
                    )
                })?;
                out.push(consent::check_coverage(
                    &required,
                    &recorded,
                    &ProposedShare {
                        recipient: body.org.clone(),
                        purpose: body.purpose.clone(),
                        items: items.clone(),
                        on: today,
                    },
                ));
            }
            coverages = out;
            Ground::Consent(&coverages)
        }
        GroundName::FourEyes => {
            let weighing_id = body
                .weighing
                .as_deref()
                .ok_or_else(|| ApiError::bad_request("a four-eyes share names its weighing"))?;
            let weighing = share::weighing(&record, weighing_id)
                .filter(|w| {
                    w.argued
                        && w.recipient == body.org.as_str()
                        && w.decided_by == who.user.as_str()
                })
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::CONFLICT,
                        "weighing_missing",
                        "record your weighing for this recipient in the record first",
                    )
                })?;
            approver = state
                .hub
                .store()
                .approval(entry.rel.dossier, &weighing.id)
                .await?
                .map(|(user, team)| Principal {
                    user,
                    role: Role::Worker,
                    district: Some(entry.rel.district.clone()),
                    team: Some(team),
                    org: None,
                    person: None,
                    citywide: false,
                });
            Ground::FourEyes(approver.as_ref())
        }
    };
    denied(decide(
        &who,
        Action::Share(ShareRequest {
            recipient: &recipient,
            items: &items,
            triage: triage.as_ref(),
            ground,
        }),
        &entry.rel,
        now,
    ))?;
    let key = DocumentKey::Partner(body.org.clone());
    let doc = create_document(&state, &mut entry, &key, DocumentKind::Partner).await?;
    state
        .hub
        .store()
        .add_partner(entry.rel.dossier, &body.org)
        .await?;
    if body.ground == GroundName::FourEyes {
        // R17: the resident is told as soon as possible; the task stays open until someone has.
        let about = format!(
            "shared with partner:{} on weighing {} without consent",
            body.org,
            body.weighing.as_deref().unwrap_or("")
        );
        state
            .hub
            .store()
            .add_task(entry.rel.dossier, "inform_resident", &about, now)
            .await?;
    }
    let mut rel = (*entry.rel).clone();
    if !rel.partners.contains(&body.org) {
        rel.partners.push(body.org.clone());
    }
    entry.rel = Arc::new(rel);
    let what = format!(
        "shared with partner:{} on triage {} ({})",
        body.org,
        body.triage,
        if body.ground == GroundName::Consent {
            "consent"
        } else {
            "four eyes"
        }
    );
    relate(&state, &who, entry, what).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "key": key.to_string(), "url": doc.to_url() })),
    ))
}

/// Prepare a maatwerk decision: creates the next `maatwerk/<n>` for the back office (R6).
pub(super) async fn add_maatwerk(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Json(body): Json<MaatwerkShare>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let mut entry = manageable(&state, &who, &id, true)?;
    let record = record_of(&state, &entry, DocumentKey::Record).await?;
    let triage = share::triage(&record, &body.triage);
    let items = requested_items(&body.items, triage.as_ref());
    denied(decide(
        &who,
        Action::Share(ShareRequest {
            recipient: &Recipient::Backoffice,
            items: &items,
            triage: triage.as_ref(),
            ground: Ground::Application,
        }),
        &entry.rel,
        OffsetDateTime::now_utc(),
    ))?;
    let n = entry
        .documents
        .keys()
        .filter_map(|k| match k {
            DocumentKey::Maatwerk(n) => Some(*n),
            _ => None,
        })
        .max()
        .map_or(1, |n| n + 1);
    let key = DocumentKey::Maatwerk(n);
    let doc = create_document(&state, &mut entry, &key, DocumentKind::Maatwerk).await?;
    relate(
        &state,
        &who,
        entry,
        format!("created {key} on triage {}", body.triage),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "key": key.to_string(), "url": doc.to_url() })),
    ))
}

/// `POST /api/v1/dossiers/{id}/weighings/{weighing}/approve`: the second professional (R17).
pub(super) async fn approve_weighing(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((id, weighing_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id: DossierId = id.parse().map_err(|_| ApiError::not_found())?;
    let entry = state.hub.dossier(id).ok_or_else(ApiError::not_found)?;
    let record = record_of(&state, &entry, DocumentKey::Record).await?;
    let weighing = share::weighing(&record, &weighing_id).ok_or_else(ApiError::not_found)?;
    let decided_by: UserId = weighing
        .decided_by
        .parse()
        .map_err(|_| ApiError::not_found())?;
    let now = OffsetDateTime::now_utc();
    denied(decide(
        &who,
        Action::ApproveWeighing {
            decided_by: &decided_by,
        },
        &entry.rel,
        now,
    ))?;
    let team = who.team.clone().ok_or_else(ApiError::not_found)?;
    state
        .hub
        .store()
        .approve_weighing(id, &weighing_id, &who.user, &team, now)
        .await?;
    relate(
        &state,
        &who,
        entry,
        format!("approved weighing {weighing_id}"),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/dossiers/{id}/tasks`: the dossier's tasks, for its assigned workers.
pub(super) async fn tasks(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let entry = manageable(&state, &who, &id, true)?;
    Ok(Json(json!(
        state.hub.store().tasks(entry.rel.dossier).await?
    )))
}

/// `POST /api/v1/dossiers/{id}/tasks/{task}/done`.
pub(super) async fn finish_task(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((id, task)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    let entry = manageable(&state, &who, &id, true)?;
    if state
        .hub
        .store()
        .finish_task(
            entry.rel.dossier,
            task,
            &who.user,
            OffsetDateTime::now_utc(),
        )
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_open_task",
            "no open task with that id",
        ))
    }
}
