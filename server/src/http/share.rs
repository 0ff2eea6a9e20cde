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
use regie_core::consent::ProposedShare;
use regie_core::document::compose::{Contact, PartnerAction};
use regie_core::document::{self, compose};
use regie_core::id::{DocumentKey, DocumentKind, DossierId, OrgId, PersonId, UserId};
use regie_core::policy::{Action, Decision, decide};
use regie_core::principal::{Principal, Role};
use regie_core::projection;
use regie_core::share::{self, CoverageError, Ground, Recipient, ShareRequest};
use regie_sync_protocol::DocumentId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{ApiError, ApiResult, AppState, Caller, doc, relation_event, standing, standing_in};
use crate::hub::DossierEntry;
use crate::hub::Relating;
use crate::storage::RelationEdit;
use crate::storage::share::PartnerShareRow;

/// The ground a partner share rests on.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum GroundName {
    /// Consent (R16).
    Consent,
    /// A weighing approved by a second worker (R17).
    FourEyes,
}

/// `POST /api/v1/dossiers/{id}/partners`.
#[derive(Deserialize, ToSchema)]
pub(super) struct PartnerShare {
    org: OrgId,
    /// The id of the triage record in record.
    triage: String,
    purpose: String,
    /// Defaults to the triage record's items.
    #[serde(default)]
    items: Vec<String>,
    /// The persons whose data is shared (ground consent).
    #[serde(default)]
    subjects: Vec<PersonId>,
    ground: GroundName,
    /// The id of the safety weighing (ground four_eyes).
    #[serde(default)]
    weighing: Option<String>,
    /// How the partner reaches the worker.
    #[serde(default)]
    contact: Option<Contact>,
    /// The actions the case conference assigned to this partner.
    #[serde(default)]
    actions: Vec<PartnerAction>,
}

/// `POST /api/v1/dossiers/{id}/maatwerk`: the extract for one decision, composed by the worker.
#[derive(Deserialize, ToSchema)]
pub(super) struct MaatwerkShare {
    /// The id of the triage record in record.
    triage: String,
    /// The person applying; the only resident who will read the extract.
    applicant: PersonId,
    #[serde(default)]
    requested: String,
    #[serde(default)]
    assessed_need: String,
    #[serde(default)]
    proposed_voorziening: String,
    /// Record entries (kind fact, facts the applicant has seen in their view) that support the
    /// request, by id.
    #[serde(default)]
    facts: Vec<String>,
}

/// The decision as an API answer: a denial becomes 403 with its code and what to do.
pub(super) fn denied(decision: Decision) -> ApiResult<()> {
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
                "purpose_changed" => {
                    "the dossier's purpose changed after this triage record: record a new triage decision that re-assesses these items (R13)"
                }
                "dossier_closed" => "the dossier is closed; nothing is shared or written any more",
                _ => "you are not allowed to share this",
            },
        )),
    }
}

/// The current state of the dossier's document at `key`.
pub(super) async fn document_at(
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

/// Involve a chain partner: creates `partner/<org>` for DAT-information (R5).
#[utoipa::path(
    post,
    path = "/api/v1/dossiers/{id}/partners",
    summary = r#"Share DAT-information with a chain partner (assigned worker; R5, R12, R16, R17): needs a triage record naming partner:<org> and the items, and a ground: consent of everyone R16 requires for each subject, or four_eyes with an approved weighing (opens an inform_resident task). Creates partner/<org>. Writes the worker's contact and the agreed actions into its assignment (DAT-information only). A share on consent ends when the consent no longer holds."#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
    ),
    request_body = PartnerShare,
    responses(
        (status = 201, description = "Created", body = super::DocumentRef),
        (status = 403, description = "triage_missing, triage_incomplete, consent_missing, second_approval_missing, purpose_changed, dossier_closed or another refusal of the policy", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier, or not the caller's to see", body = doc::ErrorBody),
        (status = 409, description = "the partner already has this dossier shared, or the share conflicts with its state", body = doc::ErrorBody),
        (status = 400, description = "bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn add_partner(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Json(body): Json<PartnerShare>,
) -> ApiResult<(StatusCode, Json<super::DocumentRef>)> {
    let entry = standing(&state, &who, &id, Action::WorkOn).await?;
    let now = OffsetDateTime::now_utc();
    let record = document_at(&state, &entry, DocumentKey::Record).await?;
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
            let meta = document_at(&state, &entry, DocumentKey::Meta).await?;
            coverages = share::consent_coverages(
                &document::persons(&meta),
                &share::consents(&record),
                &body.subjects,
                &ProposedShare {
                    recipient: body.org.clone(),
                    purpose: body.purpose.clone(),
                    items: items.clone(),
                    on: now.date(),
                },
            )
            .map_err(|e| match e {
                CoverageError::UnknownSubject(_) => ApiError::bad_request(e.to_string()),
                CoverageError::BirthDateMissing(_) => {
                    ApiError::new(StatusCode::CONFLICT, "birth_date_missing", e.to_string())
                }
                CoverageError::Requirement(_) => ApiError::new(
                    StatusCode::CONFLICT,
                    "consent_requirement_unknown",
                    e.to_string(),
                ),
            })?;
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
            subjects: &body.subjects,
        }),
        &entry.rel,
        now,
    ))?;
    let key = DocumentKey::Partner(body.org.clone());
    let mut edits = vec![RelationEdit::Partner(PartnerShareRow {
        org: body.org.clone(),
        ground: match body.ground {
            GroundName::Consent => "consent",
            GroundName::FourEyes => "four_eyes",
        }
        .into(),
        purpose: body.purpose.clone(),
        items,
        subjects: body.subjects.clone(),
    })];
    if body.ground == GroundName::FourEyes {
        // R17: the resident is told as soon as possible; the task stays open until someone has.
        edits.push(RelationEdit::Task {
            kind: "inform_resident",
            about: format!(
                "shared with partner:{} on weighing {} without consent",
                body.org,
                body.weighing.as_deref().unwrap_or("")
            ),
        });
    }
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
    // R5: DAT-information only — the worker's contact and the actions agreed for this partner,
    // written into the partner's document with the share itself.
    let (contact, actions) = (body.contact, body.actions);
    let org = body.org.clone();
    let after = state
        .hub
        .relate::<ApiError>(entry.rel.dossier, now, |current| {
            still_working_on(&who, current, now)?;
            let mut after = current.clone();
            let rel = Arc::make_mut(&mut after.rel);
            if !rel.partners.contains(&org) {
                rel.partners.push(org.clone());
            }
            let mut plan = Relating::rows(edits, after, relation_event(&who, current, now, what));
            if current.documents.contains_key(&key) {
                plan.edit = Some((
                    key.clone(),
                    Box::new(move |tx| compose::write_assignment(tx, contact.as_ref(), &actions)),
                ));
            } else {
                let mut doc = document::skeleton(DocumentKind::Partner);
                compose::write_assignment(&mut doc, contact.as_ref(), &actions)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                doc.commit();
                document::validate(DocumentKind::Partner, &doc).map_err(|e| {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid", e.to_string())
                })?;
                let id = DocumentId::new_random();
                plan.entry.documents.insert(key.clone(), id);
                plan.new_document = Some((id, key.clone(), doc.save()));
            }
            Ok(Some(plan))
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(super::DocumentRef {
            key: key.to_string(),
            url: after.documents[&key].to_url(),
        }),
    ))
}

/// Whether `who` still works on the dossier as it stands now (it may have changed while a
/// share was being decided): still assigned, and the dossier still open.
fn still_working_on(who: &Principal, entry: &DossierEntry, now: OffsetDateTime) -> ApiResult<()> {
    standing_in(who, entry, Action::WorkOn, now)?;
    if entry.rel.closed {
        return denied(Decision::Deny(
            regie_core::policy::DenyReason::DossierClosed,
        ));
    }
    Ok(())
}

/// Prepare a maatwerk decision (R6): the worker composes `maatwerk/<n>` — request, assessed
/// need, proposed voorziening and supporting facts — on a triage record for the back office.
/// Supporting facts are record entries of kind `fact` that concern the applicant, so they are
/// in the applicant's own view: the back office never learns what the resident has not seen.
#[utoipa::path(
    post,
    path = "/api/v1/dossiers/{id}/maatwerk",
    summary = r#"Compose a maatwerk extract (assigned worker; R6, R12, R14): needs a triage record naming backoffice and the supporting facts; the applicant must be linked, and each fact must be a record entry of kind fact in the applicant's view. Creates the next maatwerk/<n>, read by the back office, the assigned workers and the applicant only."#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
    ),
    request_body = MaatwerkShare,
    responses(
        (status = 201, description = "Created", body = super::DocumentRef),
        (status = 403, description = "a refusal of the policy, e.g. triage_missing", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier, or not the caller's to see", body = doc::ErrorBody),
        (status = 409, description = "the extract conflicts with the dossier's state", body = doc::ErrorBody),
        (status = 400, description = "bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn add_maatwerk(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Json(body): Json<MaatwerkShare>,
) -> ApiResult<(StatusCode, Json<super::DocumentRef>)> {
    let entry = standing(&state, &who, &id, Action::WorkOn).await?;
    let now = OffsetDateTime::now_utc();
    let record = document_at(&state, &entry, DocumentKey::Record).await?;
    let triage = share::triage(&record, &body.triage);
    let items: BTreeSet<String> = body.facts.iter().cloned().collect();
    denied(decide(
        &who,
        Action::Share(ShareRequest {
            recipient: &Recipient::Backoffice,
            items: &items,
            triage: triage.as_ref(),
            ground: Ground::Application,
            subjects: std::slice::from_ref(&body.applicant),
        }),
        &entry.rel,
        now,
    ))?;
    if !entry.rel.is_linked(&body.applicant) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "applicant_not_linked",
            "link the applicant's resident account first: they read the extract, and its facts must be ones they have seen",
        ));
    }
    let mut supporting_facts = Vec::new();
    for fact in &body.facts {
        let seen = projection::view_entry(&record, fact, &body.applicant).ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "fact_not_seen_by_applicant",
                format!("entry {fact} is not in the applicant's view; only what they have seen goes to the back office"),
            )
        })?;
        if seen.kind != "fact" {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_a_fact",
                format!("entry {fact} is an opinion; supporting facts are facts (R14)"),
            ));
        }
        supporting_facts.push((seen.id, seen.text));
    }
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
    let request = compose::MaatwerkRequest {
        requested: body.requested,
        assessed_need: body.assessed_need,
        proposed_voorziening: body.proposed_voorziening,
        supporting_facts,
        triage: body.triage.clone(),
        submitted_on: now.date().format(document::DATE).expect("dates format"),
    };
    // Composed before it is stored: the applicant's first sync already holds the request.
    let mut doc = document::skeleton(DocumentKind::Maatwerk);
    compose::write_request(&mut doc, &request).map_err(|e| ApiError::bad_request(e.to_string()))?;
    doc.commit();
    document::validate(DocumentKind::Maatwerk, &doc)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid", e.to_string()))?;
    let applicant = body.applicant.clone();
    let what = format!("created {key} on triage {}", body.triage);
    let after = state
        .hub
        .relate::<ApiError>(entry.rel.dossier, now, |current| {
            still_working_on(&who, current, now)?;
            if current.documents.contains_key(&key) {
                // Another request took this number meanwhile.
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "try_again",
                    "another maatwerk request was made at the same moment; send yours again",
                ));
            }
            let mut after = current.clone();
            Arc::make_mut(&mut after.rel)
                .applicants
                .push((n, applicant.clone()));
            let id = DocumentId::new_random();
            after.documents.insert(key.clone(), id);
            let mut plan = Relating::rows(
                vec![RelationEdit::Applicant(n, applicant)],
                after,
                relation_event(&who, current, now, what),
            );
            plan.new_document = Some((id, key.clone(), doc.save()));
            Ok(Some(plan))
        })
        .await?;
    let doc = after.documents[&key];
    Ok((
        StatusCode::CREATED,
        Json(super::DocumentRef {
            key: key.to_string(),
            url: doc.to_url(),
        }),
    ))
}

/// `POST /api/v1/dossiers/{id}/weighings/{weighing}/approve`: the second professional (R17).
#[utoipa::path(
    post,
    path = "/api/v1/dossiers/{id}/weighings/{weighing}/approve",
    summary = r#"Approve a weighing to share without consent, as the second worker of the team (R17); recorded by the server, never by the document"#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
        ("weighing" = String, Path, description = "The weighing's id in record"),
    ),
    responses(
        (status = 204, description = "Approved"),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "a refusal of the policy, e.g. the approver decided the weighing", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier or weighing, or not the caller's to approve", body = doc::ErrorBody),
        doc::WithBody,
    )
)]
pub(super) async fn approve_weighing(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((id, weighing_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    // Whether the caller may approve this dossier's weighings at all is settled before the
    // weighing is looked up, so outsiders cannot tell which weighings exist.
    let entry = standing(
        &state,
        &who,
        &id,
        Action::ApproveWeighing { decided_by: None },
    )
    .await?;
    let id = entry.rel.dossier;
    let record = document_at(&state, &entry, DocumentKey::Record).await?;
    let weighing = share::weighing(&record, &weighing_id).ok_or_else(ApiError::not_found)?;
    let decided_by: UserId = weighing
        .decided_by
        .parse()
        .map_err(|_| ApiError::not_found())?;
    let now = OffsetDateTime::now_utc();
    denied(decide(
        &who,
        Action::ApproveWeighing {
            decided_by: Some(&decided_by),
        },
        &entry.rel,
        now,
    ))?;
    let team = who.team.clone().ok_or_else(ApiError::not_found)?;
    let what = format!("approved weighing {weighing_id}");
    state
        .hub
        .relate::<ApiError>(id, now, |current| {
            standing_in(
                &who,
                current,
                Action::ApproveWeighing {
                    decided_by: Some(&decided_by),
                },
                now,
            )?;
            Ok(Some(Relating::rows(
                vec![RelationEdit::Approval {
                    weighing: weighing_id,
                    approver: who.user.clone(),
                    team,
                }],
                current.clone(),
                relation_event(&who, current, now, what),
            )))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/dossiers/{id}/tasks`: the dossier's tasks, for its assigned workers.
#[utoipa::path(
    get,
    path = "/api/v1/dossiers/{id}/tasks",
    summary = r#"The dossier's tasks, e.g. inform_resident after a share without consent (assigned workers)"#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
    ),
    responses(
        (status = 200, description = "Tasks", body = [super::doc::TaskSchema]),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier, or not the caller's to see", body = doc::ErrorBody),
        doc::Authenticated,
    )
)]
pub(super) async fn tasks(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<crate::storage::share::TaskRow>>> {
    let entry = standing(&state, &who, &id, Action::WorkOn).await?;
    Ok(Json(state.hub.store().tasks(entry.rel.dossier).await?))
}

/// `POST /api/v1/dossiers/{id}/tasks/{task}/done`.
#[utoipa::path(
    post,
    path = "/api/v1/dossiers/{id}/tasks/{task}/done",
    summary = r#"Mark a task done"#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
        ("task" = i64, Path, description = "The task's id"),
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier or task, or not the caller's", body = doc::ErrorBody),
        doc::WithBody,
    )
)]
pub(super) async fn finish_task(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((id, task)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    let entry = standing(&state, &who, &id, Action::WorkOn).await?;
    let now = OffsetDateTime::now_utc();
    let open = state
        .hub
        .store()
        .tasks(entry.rel.dossier)
        .await?
        .iter()
        .any(|t| t.id == task && t.done_at.is_none());
    if !open {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_open_task",
            "no open task with that id",
        ));
    }
    state
        .hub
        .relate::<ApiError>(entry.rel.dossier, now, |current| {
            standing_in(&who, current, Action::WorkOn, now)?;
            Ok(Some(Relating::rows(
                vec![RelationEdit::FinishTask {
                    task,
                    by: who.user.clone(),
                }],
                current.clone(),
                relation_event(&who, current, now, format!("finished task {task}")),
            )))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/dossiers/{id}/consents/{consent}/withdraw`: an assigned worker, or a resident
/// who gave the consent, withdraws it as of today (R16). Every partner share that rested on it
/// ends at once: the partner's devices are told `revoked`.
#[utoipa::path(
    post,
    path = "/api/v1/dossiers/{id}/consents/{consent}/withdraw",
    summary = r#"Withdraw a consent as of today (R16): an assigned worker, or a linked resident who gave it. Every partner share resting on it ends at once (the partner's devices get revoked)."#,
    params(
        ("id" = regie_core::id::DossierId, Path, description = "The dossier; an id that is not a dossier id is not_found"),
        ("consent" = String, Path, description = "The consent's id in record"),
    ),
    responses(
        (status = 200, description = "Withdrawn", body = Withdrawn),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "a refusal of the policy", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such dossier or consent, or not the caller's", body = doc::ErrorBody),
        doc::WithBody,
    )
)]
pub(super) async fn withdraw_consent(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((id, consent)): Path<(String, String)>,
) -> ApiResult<Json<Withdrawn>> {
    let dossier: DossierId = id.parse().map_err(|_| ApiError::not_found())?;
    let entry = state
        .hub
        .current_dossier(dossier)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let now = OffsetDateTime::now_utc();
    // Only someone who may see the dossier learns whether the consent exists.
    let readable = [DocumentKey::Record, DocumentKey::Plan]
        .iter()
        .any(|k| decide(&who, Action::Read(k), &entry.rel, now).is_allowed());
    if !readable {
        return Err(ApiError::not_found());
    }
    let record_id = entry
        .documents
        .get(&DocumentKey::Record)
        .copied()
        .ok_or_else(ApiError::not_found)?;
    let record = document_at(&state, &entry, DocumentKey::Record).await?;
    let no_consent = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_consent",
            "no consent with that id",
        )
    };
    let given_by = share::consent_given_by(&record, &consent).ok_or_else(no_consent)?;
    denied(decide(
        &who,
        Action::WithdrawConsent {
            given_by: &given_by,
        },
        &entry.rel,
        now,
    ))?;
    let today = now.date();
    let mut ev = crate::audit::AuditEvent::new(
        now,
        who.user.as_str(),
        who.role.as_str(),
        crate::audit::AuditAction::Write,
    );
    ev.dossier = Some(dossier.to_string());
    ev.document = Some("record".into());
    ev.detail = Some(format!("consent {consent} withdrawn"));
    let target = consent.clone();
    state
        .hub
        .server_write_audited(record_id, &[ev], move |tx| {
            compose::write_withdrawal(tx, &target, today).map(|_| ())
        })
        .await?;
    // Derived from `record`: asked again now, and by the sweep on start should a stop come
    // in between (I8).
    let ended = state
        .hub
        .reassess_consent_shares(dossier, (who.user.as_str(), who.role.as_str()), today)
        .await?;
    Ok(Json(Withdrawn {
        withdrawn_on: today.format(document::DATE).expect("dates format"),
        partners_ended: ended.iter().map(|o| o.to_string()).collect(),
    }))
}

/// A consent withdrawn.
#[derive(Serialize, ToSchema)]
pub(super) struct Withdrawn {
    /// The day, `YYYY-MM-DD`.
    #[schema(format = Date)]
    withdrawn_on: String,
    /// The partners whose share rested on it and has ended.
    partners_ended: Vec<String>,
}
