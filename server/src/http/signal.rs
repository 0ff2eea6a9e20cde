//! Signals (R11): not every signal becomes a dossier. A worker records a first contact without a
//! name for their team; the team lists its open signals and closes one without a dossier, or
//! registers the household by name — only on the resident's agreement, which the new dossier's
//! `record` then holds as its `aanmelding` triage record (R12). The policy decides who may handle
//! a team's signals (`Action::Register`); a signal of another team answers like an unknown one.

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use regie_core::document::{DATE, PersonRecord};
use regie_core::id::{DistrictId, DocumentKey, DossierId, SignalId, TeamId, UserId};
use regie_core::policy::{Action, Basis, Decision, DenyReason, Registration, decide};
use regie_core::principal::Principal;
use regie_core::relationship::Relationships;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;

use super::{
    ApiError, ApiResult, AppState, Caller, CreatedDossier, DossierDraft, NewDossier, doc,
    draft_dossier, publish_dossier,
};
use crate::audit::{AuditAction, AuditEvent};
use crate::hub::basis_code;
use crate::storage::signal::{Conversion, SignalRow, SignalStatus};

/// Who can bring a signal in. A fixed list, so the field never carries a name.
const SOURCES: [&str; 8] = [
    "self",
    "family",
    "neighbour",
    "school",
    "huisarts",
    "police",
    "partner",
    "other",
];

/// The longest summary: a few sentences, not a report.
const SUMMARY_MAX: usize = 2_000;
/// The longest reason for closing a signal.
const REASON_MAX: usize = 500;

/// `POST /api/v1/signals`.
#[derive(Deserialize, ToSchema)]
pub(super) struct NewSignal {
    /// What was signalled, without the person's name, e.g. "buurman meldt zorgen over gezin op
    /// nr. 12".
    summary: String,
    #[schema(value_type = String, example = "neighbour")]
    source: String,
}

/// `POST /api/v1/signals/{id}/close`.
#[derive(Deserialize, ToSchema)]
pub(super) struct CloseSignal {
    reason: String,
}

/// `POST /api/v1/signals/{id}/dossier`.
#[derive(Deserialize, ToSchema)]
pub(super) struct SignalDossier {
    /// The resident agreed to registration by name.
    #[serde(default)]
    resident_agreed: bool,
    /// The day the resident agreed to registration by name; not in the future.
    #[serde(default)]
    #[schema(format = Date)]
    agreed_on: Option<String>,
    #[serde(default)]
    persons: Vec<PersonRecord>,
    #[serde(default)]
    assigned: Vec<UserId>,
}

/// An open signal as its team sees it.
/// An open signal (R11): a first contact recorded without a name.
#[derive(Serialize, ToSchema)]
#[schema(as = Signal)]
pub(super) struct OpenSignal {
    id: SignalId,
    district: DistrictId,
    team: TeamId,
    registered_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    registered_at: OffsetDateTime,
    summary: String,
    source: String,
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such signal, or not yours to see",
    )
}

fn settled(signal: &SignalRow) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "signal_settled",
        match signal.status {
            SignalStatus::Dossier => "this signal has already become a dossier",
            _ => "this signal was already closed; register a new signal if there is a new contact",
        },
    )
}

/// The relationships a signal check is asked against: its district and team, no dossier yet.
fn place(district: DistrictId, team: TeamId) -> Relationships {
    Relationships::new(DossierId(uuid::Uuid::nil()), district, team)
}

/// The basis on which `who` handles signals of `district` and `team`, or the policy's refusal.
fn handles(
    who: &Principal,
    district: &DistrictId,
    team: &TeamId,
    now: OffsetDateTime,
) -> Result<Basis, DenyReason> {
    match decide(
        who,
        Action::Register(Registration::Signal),
        &place(district.clone(), team.clone()),
        now,
    ) {
        Decision::Allow { basis, .. } => Ok(basis),
        Decision::Deny(reason) => Err(reason),
    }
}

/// The caller's own district and team, where their signals are registered and listed. A token
/// without them belongs to nobody who handles signals.
fn own_place(who: &Principal) -> ApiResult<(DistrictId, TeamId)> {
    match (&who.district, &who.team) {
        (Some(d), Some(t)) => Ok((d.clone(), t.clone())),
        _ => Err(ApiError::forbidden(DenyReason::NotTeamMember.code())),
    }
}

/// A signal the caller's team handles, or 404 as for an unknown one.
async fn team_signal(
    state: &AppState,
    who: &Principal,
    id: &str,
    now: OffsetDateTime,
) -> ApiResult<(SignalRow, Basis)> {
    let id: SignalId = id.parse().map_err(|_| not_found())?;
    let signal = state.hub.store().signal(id).await?.ok_or_else(not_found)?;
    let basis = handles(who, &signal.district, &signal.team, now).map_err(|_| not_found())?;
    Ok((signal, basis))
}

/// A signal event by `who`; its detail names ids, never the summary or the reason (I3).
fn event(who: &Principal, now: OffsetDateTime, basis: Basis, detail: String) -> AuditEvent {
    let mut ev = AuditEvent::new(
        now,
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::Signal,
    );
    ev.basis = Some(basis_code(basis));
    ev.detail = Some(detail);
    ev
}

/// `POST /api/v1/signals`: records a signal without a name for the caller's team.
#[utoipa::path(
    post,
    path = "/api/v1/signals",
    summary = r#"Record a signal without a name for the caller's team (R11); district and team come from the token"#,
    request_body = NewSignal,
    responses(
        (status = 201, description = "Recorded", body = RegisteredSignal),
        (status = 403, description = "not_team_member or role_has_no_dossier_access", body = doc::ErrorBody),
        (status = 400, description = "summary_required, summary_too_long or invalid_source; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn register(
    State(state): State<AppState>,
    Caller(who): Caller,
    Json(body): Json<NewSignal>,
) -> ApiResult<(StatusCode, Json<RegisteredSignal>)> {
    let now = OffsetDateTime::now_utc();
    let (district, team) = own_place(&who)?;
    let basis = handles(&who, &district, &team, now).map_err(|r| ApiError::forbidden(r.code()))?;
    let summary = body.summary.trim().to_owned();
    if summary.is_empty() || summary.chars().count() > SUMMARY_MAX {
        return Err(ApiError::bad_request(format!(
            "a summary is 1 to {SUMMARY_MAX} characters describing the signal without the \
             person's name"
        )));
    }
    if !SOURCES.contains(&body.source.as_str()) {
        return Err(ApiError::bad_request(format!(
            "source is one of {}",
            SOURCES.join(", ")
        )));
    }
    let signal = SignalRow {
        id: SignalId::new_random(),
        district,
        team,
        registered_by: who.user.clone(),
        registered_at: now,
        summary,
        source: body.source,
        status: SignalStatus::Open,
        reason: None,
        closed_at: None,
        closed_by: None,
        dossier: None,
        agreed_on: None,
    };
    let ev = event(
        &who,
        now,
        basis,
        format!("registered signal {} from {}", signal.id, signal.source),
    );
    // The signal and its audit row: one transaction.
    state.hub.store().create_signal(&signal, &ev).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredSignal { id: signal.id }),
    ))
}

/// A signal just recorded.
#[derive(Serialize, ToSchema)]
pub(super) struct RegisteredSignal {
    id: SignalId,
}

/// `GET /api/v1/signals`: the open signals of the caller's team, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/signals",
    summary = r#"The open signals of the caller's team, oldest first (workers of that team; a district-bound worker sees only their district's)"#,
    responses(
        (status = 200, description = "The open signals", body = [OpenSignal]),
        (status = 400, description = "bad_request, unknown_parameter or repeated_parameter", body = doc::ErrorBody),
        (status = 403, description = "not_team_member or role_has_no_dossier_access", body = doc::ErrorBody),
        doc::WithBody,
    )
)]
pub(super) async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<Json<Vec<OpenSignal>>> {
    let now = OffsetDateTime::now_utc();
    let (district, team) = own_place(&who)?;
    let basis = handles(&who, &district, &team, now).map_err(|r| ApiError::forbidden(r.code()))?;
    // A team may span districts only through citywide members; each signal is still put to the
    // policy, so a district-bound worker never lists another district's signals (R3).
    let open: Vec<OpenSignal> = state
        .hub
        .store()
        .open_signals(&team)
        .await?
        .into_iter()
        .filter(|s| handles(&who, &s.district, &s.team, now).is_ok())
        .map(|s| OpenSignal {
            id: s.id,
            district: s.district,
            team: s.team,
            registered_by: s.registered_by,
            registered_at: s.registered_at,
            summary: s.summary,
            source: s.source,
        })
        .collect();
    let mut ev = AuditEvent::new(now, who.user.as_str(), who.role.as_str(), AuditAction::Read);
    ev.basis = Some(basis_code(basis));
    ev.detail = Some(format!("listed {} open signals", open.len()));
    state.hub.store().append_audit(&ev).await?;
    Ok(Json(open))
}

/// `POST /api/v1/signals/{id}/close`: settles a signal without a dossier.
#[utoipa::path(
    post,
    path = "/api/v1/signals/{id}/close",
    summary = r#"Close an open signal of the caller's team without a dossier (R11: not every signal becomes one)"#,
    params(
        ("id" = regie_core::id::SignalId, Path, description = "The signal"),
    ),
    request_body = CloseSignal,
    responses(
        (status = 204, description = "Closed"),
        (status = 404, description = "not_found: no such signal, or not of the caller's team", body = doc::ErrorBody),
        (status = 409, description = "signal_settled: already closed or turned into a dossier", body = doc::ErrorBody),
        (status = 400, description = "reason_required or reason_too_long; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn close(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Json(body): Json<CloseSignal>,
) -> ApiResult<StatusCode> {
    let now = OffsetDateTime::now_utc();
    let (signal, basis) = team_signal(&state, &who, &id, now).await?;
    if signal.status != SignalStatus::Open {
        return Err(settled(&signal));
    }
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_MAX {
        return Err(ApiError::bad_request(format!(
            "a reason is 1 to {REASON_MAX} characters saying why no dossier is needed"
        )));
    }
    let ev = event(&who, now, basis, format!("closed signal {}", signal.id));
    if !state
        .hub
        .store()
        .close_signal(signal.id, reason, &who.user, now, &ev)
        .await?
    {
        // Settled by someone else since it was read.
        let current = state.hub.store().signal(signal.id).await?;
        return Err(settled(current.as_ref().unwrap_or(&signal)));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/signals/{id}/dossier`: registers the household by name, only on the
/// resident's agreement; the signal becomes the dossier and its `record` gets the `aanmelding`
/// triage record that says so.
#[utoipa::path(
    post,
    path = "/api/v1/signals/{id}/dossier",
    summary = r#"Register the household of an open signal by name, only with the resident's agreement (R11); the caller is assigned and the dossier's record gets an aanmelding triage record stating the agreement (R12)"#,
    params(
        ("id" = regie_core::id::SignalId, Path, description = "The signal"),
    ),
    request_body = SignalDossier,
    responses(
        (status = 201, description = "Created", body = CreatedDossier),
        (status = 403, description = "not_team_member", body = doc::ErrorBody),
        (status = 404, description = "not_found: no such signal, or not of the caller's team", body = doc::ErrorBody),
        (status = 409, description = "agreement_missing (ask the resident first) or signal_settled", body = doc::ErrorBody),
        (status = 400, description = "invalid_date, or meta's schema refuses a person; or bad_request: unreadable JSON, or the body refused", body = doc::ErrorBody),
        doc::JsonBody,
    )
)]
pub(super) async fn to_dossier(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Json(body): Json<SignalDossier>,
) -> ApiResult<(StatusCode, Json<CreatedDossier>)> {
    let now = OffsetDateTime::now_utc();
    let (signal, basis) = team_signal(&state, &who, &id, now).await?;
    if signal.status != SignalStatus::Open {
        return Err(settled(&signal));
    }
    let agreed_on = agreement(body.resident_agreed, body.agreed_on.as_deref(), now)?;
    if body.persons.is_empty() {
        return Err(ApiError::bad_request(
            "registering by name names at least one person",
        ));
    }
    let draft = draft_dossier(
        &who,
        NewDossier {
            district: signal.district.clone(),
            team: signal.team.clone(),
            persons: body.persons,
            assigned: body.assigned,
            resident_agreed: true,
            agreed_on: body.agreed_on,
        },
        now,
    )?;
    let origin = format!(
        "het signaal van {} ({})",
        signal.registered_at.date(),
        signal.source
    );
    let mut draft = draft;
    let write = write_aanmelding(&who, &mut draft, &origin, agreed_on, now)?;
    let mut registered = event(
        &who,
        now,
        basis,
        format!(
            "signal {} registered by name; resident agreed on {}",
            signal.id,
            agreed_on.format(DATE).expect("dates always format")
        ),
    );
    registered.dossier = Some(draft.rel.dossier.to_string());
    // The dossier, its first documents, the signal's end and every audit row: one transaction.
    let audit = [draft.creation_event(&who, now), write, registered];
    let conversion = Conversion {
        signal: signal.id,
        agreed_on,
        by: &who.user,
    };
    if !state
        .hub
        .store()
        .create_dossier_from_signal(
            &conversion,
            &draft.rel,
            &draft.persons,
            &draft.docs,
            now,
            &audit,
        )
        .await?
    {
        let current = state.hub.store().signal(signal.id).await?;
        return Err(settled(current.as_ref().unwrap_or(&signal)));
    }
    let created = publish_dossier(&state, draft).await;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The day the resident agreed to registration by name (R11), or the refusal that says what to
/// do: without `resident_agreed` nobody is registered by name.
pub(super) fn agreement(
    resident_agreed: bool,
    agreed_on: Option<&str>,
    now: OffsetDateTime,
) -> ApiResult<Date> {
    if !resident_agreed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "agreement_missing",
            "registering by name needs the resident's agreement (R11): ask the resident, then \
             send resident_agreed: true with agreed_on; until then keep a signal without a \
             name, or close it",
        ));
    }
    let agreed_on = agreed_on
        .and_then(|d| Date::parse(d, DATE).ok())
        .ok_or_else(|| {
            ApiError::bad_request("agreed_on is the day the resident agreed, as YYYY-MM-DD")
        })?;
    // A day's grace for the time zones between the server's UTC and the worker's calendar.
    if agreed_on > now.date().next_day().unwrap_or(Date::MAX) {
        return Err(ApiError::bad_request(
            "agreed_on lies in the future; record the agreement once it is given",
        ));
    }
    Ok(agreed_on)
}

/// Adds the `aanmelding` triage record to the drafted `record` (R11, R12): the resident agreed
/// on `agreed_on` to registration by name, for the support `origin` started. Returns its audit
/// row, which commits with the dossier.
pub(super) fn write_aanmelding(
    who: &Principal,
    draft: &mut DossierDraft,
    origin: &str,
    agreed_on: Date,
    now: OffsetDateTime,
) -> ApiResult<AuditEvent> {
    let on = agreed_on.format(DATE).expect("dates always format");
    let agreed = format!("De bewoner heeft op {on} ingestemd met registratie op naam");
    let texts = [
        (
            "purpose",
            format!(
                "Aanmelding: {origin} wordt een dossier op naam, om de bewoner te ondersteunen."
            ),
        ),
        (
            "doelbinding",
            format!(
                "{agreed}; de gegevens dienen alleen de ondersteuning waarmee de bewoner instemde."
            ),
        ),
        (
            "proportionaliteit",
            format!(
                "{agreed}; op naam staan alleen de personen die bij de aanmelding zijn genoemd."
            ),
        ),
        (
            "subsidiariteit",
            format!(
                "{agreed}; tot dan stond het signaal zonder naam geregistreerd, en zonder \
                 registratie op naam is geen ondersteuning in een dossier mogelijk."
            ),
        ),
        ("decision", format!("Registratie op naam. {agreed}.")),
    ];
    let id = format!("t-aanmelding-{}", draft.rel.dossier.0.simple());
    let author = who.user.to_string();
    let at = now.format(&Rfc3339).expect("UTC formats");
    draft.edit_record(|doc| {
        let triage = doc
            .get(ROOT, "triage")?
            .map(|(_, list)| list)
            .ok_or(automerge::AutomergeError::Fail)?;
        let at_index = doc.length(&triage);
        let t = doc.insert_object(&triage, at_index, ObjType::Map)?;
        doc.put(&t, "id", id.as_str())?;
        doc.put(&t, "moment", "aanmelding")?;
        doc.put_object(&t, "items", ObjType::List)?;
        for (field, text) in &texts {
            let obj = doc.put_object(&t, *field, ObjType::Text)?;
            doc.splice_text(&obj, 0, 0, text)?;
        }
        doc.put(&t, "discussed_with_resident", true)?;
        doc.put(&t, "author", author.as_str())?;
        doc.put(&t, "at", at.as_str())?;
        Ok(())
    })?;
    let mut write = AuditEvent::new(
        now,
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::Write,
    );
    write.dossier = Some(draft.rel.dossier.to_string());
    write.document = Some(DocumentKey::Record.to_string());
    write.persons = Some(crate::hub::subjects(&DocumentKey::Record, &draft.persons));
    write.basis = Some(basis_code(Basis::Assignment));
    write.detail = Some("aanmelding triage record".into());
    Ok(write)
}
