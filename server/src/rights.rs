//! Resident rights as domain operations (R19–R22): file a request, list one's own or a
//! dossier's, extend, decide, escalate a refusal and decide the escalation, and the overdue
//! register. Each settles standing with the policy first — an outsider gets `not_found` whether
//! or not the dossier or the request exists —, then checks its input with the pure rules of
//! `regie_core::rights`, then commits the register's row with its audit row in one transaction
//! (I8). Dates are days on the Europe/Amsterdam calendar.

use regie_core::consent;
use regie_core::document::{self, PersonRecord};
use regie_core::id::{DocumentKey, DossierId, PersonId, TeamId};
use regie_core::policy::{Action, Decision, DenyReason, ReportTier, RightsSubject, decide};
use regie_core::principal::Principal;
use regie_core::relationship::Relationships;
use regie_core::rights::{self, EscalationLevel, EscalationState, RightKind, Status, Verdict};
use serde::Serialize;
use time::OffsetDateTime;

use crate::audit::{AuditAction, AuditEvent};
use crate::domain::DomainError;
use crate::hub::{DossierEntry, Hub, Relating};
use crate::storage::RelationEdit;
use crate::storage::rights::{
    EscalationRow, Extension, RightsEdit, RightsQuery, RightsRequestRow, Ruling,
};

/// The longest free text accepted (details, reasons, grounds), in characters.
pub const MAX_TEXT: usize = 4000;

/// The day `at` falls on, on the Europe/Amsterdam calendar.
pub fn local_day(at: OffsetDateTime) -> jiff::civil::Date {
    let d = crate::report::to_local(at).date();
    jiff::civil::date(d.year() as i16, d.month() as i8, d.day() as i8)
}

fn invalid(code: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        code,
        message: message.into(),
    }
}

fn text(value: &str, what: &'static str, required: bool) -> Result<String, DomainError> {
    let t = value.trim();
    if required && t.is_empty() {
        return Err(invalid("text_required", format!("{what} is required")));
    }
    if t.chars().count() > MAX_TEXT {
        return Err(invalid(
            "text_too_long",
            format!("{what} is at most {MAX_TEXT} characters"),
        ));
    }
    Ok(t.to_owned())
}

fn date(value: &str, what: &'static str) -> Result<jiff::civil::Date, DomainError> {
    rights::parse_date(value)
        .ok_or_else(|| invalid("invalid_date", format!("{what} is a date YYYY-MM-DD")))
}

/// The person as `meta` records them, if they are a person of the dossier.
pub async fn person_record(
    hub: &Hub,
    entry: &DossierEntry,
    person: &PersonId,
) -> Result<Option<PersonRecord>, DomainError> {
    if !entry.persons.contains(person) {
        return Ok(None);
    }
    let Some(&meta) = entry.documents.get(&DocumentKey::Meta) else {
        return Ok(None);
    };
    Ok(hub.snapshot(meta).await?.and_then(|doc| {
        document::persons(&doc)
            .into_iter()
            .find(|p| &p.id == person)
    }))
}

/// The age in whole years on the Amsterdam day of `at`, if the birth date is recorded.
fn age(person: &PersonRecord, at: OffsetDateTime) -> Option<u32> {
    let born = time::Date::parse(person.birth_date.as_deref()?, document::DATE).ok()?;
    consent::age_on(born, crate::report::to_local(at).date())
}

/// Settles whether `who` may invoke a right for `subject` in the dossier: the dossier entry
/// and the subject's record. Outsiders (and a subject who is not a person of the dossier) get
/// `not_found`; a linked resident refused by R16's ages is told why.
pub async fn right_standing(
    hub: &Hub,
    who: &Principal,
    dossier: DossierId,
    subject: &PersonId,
    at: OffsetDateTime,
) -> Result<(DossierEntry, PersonRecord), DomainError> {
    let entry = hub.dossier(dossier).ok_or(DomainError::NotFound)?;
    // Standing before anything of the dossier is read: whoever could invoke a right for
    // themselves here (a linked resident) or for anyone (an assigned worker).
    let own = who.person.clone().unwrap_or_else(|| subject.clone());
    let coarse = RightsSubject {
        person: &own,
        age: None,
        gezag: &[],
    };
    if !decide(who, Action::ExerciseRight(coarse), &entry.rel, at).is_allowed() {
        return Err(DomainError::NotFound);
    }
    let record = person_record(hub, &entry, subject).await?;
    let (age, gezag) = match &record {
        Some(r) => (age(r, at), r.gezag.clone()),
        None => (None, Vec::new()),
    };
    let asked = RightsSubject {
        person: subject,
        age,
        gezag: &gezag,
    };
    match decide(who, Action::ExerciseRight(asked), &entry.rel, at) {
        Decision::Allow { .. } => {}
        Decision::Deny(r @ (DenyReason::TooYoungToActAlone | DenyReason::SubjectActsAlone)) => {
            return Err(DomainError::Refused(r.code()));
        }
        Decision::Deny(_) => return Err(DomainError::NotFound),
    }
    let record = record
        .ok_or_else(|| invalid("no_such_person", "that person is not part of this dossier"))?;
    Ok((entry, record))
}

fn event(who: &Principal, at: OffsetDateTime, row: &RightsRequestRow, what: String) -> AuditEvent {
    let mut ev = AuditEvent::new(
        at,
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::Rights,
    );
    ev.dossier = Some(row.dossier.to_string());
    ev.persons = Some(row.subject.to_string());
    // Ids and codes only: the request's words stay in the register.
    ev.detail = Some(format!("{} {what}", row.id));
    ev
}

/// What a resident or worker files.
#[derive(Debug, Clone)]
pub struct Filing {
    /// The person whose data it concerns.
    pub subject: PersonId,
    /// Which right.
    pub kind: RightKind,
    /// What is asked, in the resident's words (may be empty for access).
    pub details: String,
    /// The day it was received, when a worker files a request that came in earlier (a letter);
    /// today otherwise.
    pub received_on: Option<String>,
}

/// Files a request (the subject, a parent per R16, or an assigned worker on their behalf).
pub async fn file(
    hub: &Hub,
    who: &Principal,
    dossier: DossierId,
    filing: Filing,
    at: OffsetDateTime,
) -> Result<RequestView, DomainError> {
    let (entry, _) = right_standing(hub, who, dossier, &filing.subject, at).await?;
    let today = local_day(at);
    let received = match &filing.received_on {
        None => today,
        Some(d) => {
            let d = date(d, "received_on")?;
            if d > today {
                return Err(invalid(
                    "invalid_date",
                    "received_on cannot be in the future",
                ));
            }
            // A request found late in a drawer is still registered, but not one from years ago.
            if today
                .checked_sub(jiff::ToSpan::years(1_i32))
                .is_ok_and(|limit| d < limit)
            {
                return Err(invalid("invalid_date", "received_on is at most a year ago"));
            }
            d
        }
    };
    let deadline = rights::deadline(received, None)
        .ok_or_else(|| invalid("invalid_date", "no deadline can be computed for that date"))?;
    let row = RightsRequestRow {
        id: format!("rr-{}", uuid::Uuid::new_v4().simple()),
        dossier,
        team: entry.rel.team.clone(),
        subject: filing.subject,
        kind: filing.kind,
        details: text(&filing.details, "details", false)?,
        filed_by: who.user.to_string(),
        filed_role: who.role.as_str().to_owned(),
        filed_at: crate::report::utc_rfc3339(at),
        received_on: received.to_string(),
        deadline: deadline.to_string(),
        extension: None,
        decision: None,
        escalations: Vec::new(),
    };
    let ev = event(who, at, &row, format!("filed kind={}", row.kind.code()));
    hub.store().file_rights_request(&row, &[ev]).await?;
    Ok(RequestView::of(&row, today))
}

/// The requests the calling resident filed or that concern them, in dossiers they are linked
/// to (a worker has none of their own here).
pub async fn mine(
    hub: &Hub,
    who: &Principal,
    at: OffsetDateTime,
) -> Result<Vec<RequestView>, DomainError> {
    let Some(person) = &who.person else {
        return Ok(Vec::new());
    };
    let dossiers: Vec<DossierId> = hub
        .dossiers()
        .into_iter()
        .filter(|e| e.rel.is_linked(person))
        .map(|e| e.rel.dossier)
        .collect();
    let today = local_day(at);
    let rows = hub
        .store()
        .rights_requests(RightsQuery::Dossiers(&dossiers))
        .await?;
    Ok(rows
        .iter()
        .filter(|r| &r.subject == person || r.filed_by == who.user.as_str())
        .map(|r| RequestView::of(r, today))
        .collect())
}

/// The dossier's requests, for its assigned workers.
pub async fn of_dossier(
    hub: &Hub,
    who: &Principal,
    dossier: DossierId,
    at: OffsetDateTime,
) -> Result<Vec<RequestView>, DomainError> {
    crate::domain::standing(hub, who, dossier, Action::HandleRightsRequest, at)?;
    let today = local_day(at);
    let rows = hub
        .store()
        .rights_requests(RightsQuery::Dossiers(&[dossier]))
        .await?;
    Ok(rows.iter().map(|r| RequestView::of(r, today)).collect())
}

/// The request `id` and its dossier's relationships (from memory, or only its team once the
/// dossier is destroyed), or `not_found`.
async fn request(hub: &Hub, id: &str) -> Result<(RightsRequestRow, Relationships), DomainError> {
    let row = hub
        .store()
        .rights_requests(RightsQuery::Id(id))
        .await?
        .into_iter()
        .next()
        .ok_or(DomainError::NotFound)?;
    let rel = match hub.dossier(row.dossier) {
        Some(e) => (*e.rel).clone(),
        None => Relationships::of_team(row.team.clone()),
    };
    Ok((row, rel))
}

fn allowed(
    who: &Principal,
    action: Action<'_>,
    rel: &Relationships,
    at: OffsetDateTime,
) -> Result<(), DomainError> {
    if decide(who, action, rel, at).is_allowed() {
        Ok(())
    } else {
        Err(DomainError::NotFound)
    }
}

fn states(row: &RightsRequestRow) -> Vec<EscalationState> {
    row.escalations
        .iter()
        .map(|e| EscalationState {
            level: e.level,
            deadline: rights::parse_date(&e.deadline).unwrap_or(jiff::civil::Date::MAX),
            verdict: e.decision.as_ref().map(|d| d.verdict),
        })
        .collect()
}

fn conflict(code: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::Conflict {
        code,
        message: message.into(),
    }
}

async fn commit(
    hub: &Hub,
    row: &RightsRequestRow,
    edit: RightsEdit,
    ev: AuditEvent,
    code: &'static str,
) -> Result<RequestView, DomainError> {
    if !hub
        .store()
        .edit_rights_request(&row.id, &edit, &[ev])
        .await?
    {
        return Err(conflict(
            code,
            "the request changed meanwhile; read it again",
        ));
    }
    let (row, _) = request(hub, &row.id).await?;
    Ok(RequestView::of(&row, local_day(OffsetDateTime::now_utc())))
}

/// Records an extension of `months` (one or two), with its reason and the day the resident was
/// told (an assigned worker, within the first month).
pub async fn extend(
    hub: &Hub,
    who: &Principal,
    id: &str,
    months: i8,
    reason: &str,
    told_on: &str,
    at: OffsetDateTime,
) -> Result<RequestView, DomainError> {
    let (row, rel) = request(hub, id).await?;
    allowed(who, Action::HandleRightsRequest, &rel, at)?;
    let reason = text(reason, "reason", true)?;
    let told = date(told_on, "told_on")?;
    let received = date(&row.received_on, "received_on")?;
    let open = row.decision.is_none() && row.extension.is_none();
    let deadline = rights::extend(received, months, &reason, told, local_day(at), open).map_err(
        |e| match e {
            rights::ExtensionError::AlreadySettled | rights::ExtensionError::TooLate => {
                conflict("not_extendable", e.to_string())
            }
            _ => invalid("invalid_extension", e.to_string()),
        },
    )?;
    let ev = event(who, at, &row, format!("extended months={months}"));
    let edit = RightsEdit::Extend {
        deadline: deadline.to_string(),
        extension: Extension {
            months: i64::from(months),
            reason,
            told_on: told.to_string(),
            by: who.user.to_string(),
        },
    };
    commit(hub, &row, edit, ev, "not_extendable").await
}

/// Decides a request (an assigned worker); a refusal needs its reasons.
pub async fn decide_request(
    hub: &Hub,
    who: &Principal,
    id: &str,
    verdict: Verdict,
    reasons: &str,
    at: OffsetDateTime,
) -> Result<RequestView, DomainError> {
    let (row, rel) = request(hub, id).await?;
    allowed(who, Action::HandleRightsRequest, &rel, at)?;
    let reasons = text(reasons, "reasons", verdict == Verdict::Refused)?;
    if row.decision.is_some() {
        return Err(conflict(
            "decided_already",
            "this request was decided already",
        ));
    }
    let ev = event(who, at, &row, format!("decided verdict={}", verdict.code()));
    if verdict == Verdict::Granted && row.kind == RightKind::Restriction {
        return restrict(hub, who, &row, reasons, ev, at).await;
    }
    let ruling = Ruling {
        verdict,
        reasons,
        by: who.user.to_string(),
        on: local_day(at).to_string(),
    };
    commit(hub, &row, RightsEdit::Decide(ruling), ev, "decided_already").await
}

/// Grants a restriction (R21): the decision and the restriction commit together, and from then
/// on the policy refuses every share of the person's data until it is lifted.
async fn restrict(
    hub: &Hub,
    who: &Principal,
    row: &RightsRequestRow,
    reasons: String,
    ev: AuditEvent,
    at: OffsetDateTime,
) -> Result<RequestView, DomainError> {
    let person = row.subject.clone();
    let edits = vec![
        RelationEdit::DecideRights {
            request: row.id.clone(),
            verdict: Verdict::Granted.code(),
            reasons,
            by: who.user.to_string(),
            on: local_day(at).to_string(),
        },
        RelationEdit::Restrict {
            person: person.clone(),
            request: row.id.clone(),
        },
    ];
    hub.relate::<DomainError>(row.dossier, at, |entry| {
        allowed(who, Action::HandleRightsRequest, &entry.rel, at)?;
        let mut entry = entry.clone();
        let rel = std::sync::Arc::make_mut(&mut entry.rel);
        if !rel.restricted.contains(&person) {
            rel.restricted.push(person.clone());
        }
        Ok(Some(Relating::rows(edits, entry, ev)))
    })
    .await?;
    let (row, _) = request(hub, &row.id).await?;
    Ok(RequestView::of(&row, local_day(at)))
}

/// Lifts the restriction of `person` in the dossier (an assigned worker).
pub async fn lift_restriction(
    hub: &Hub,
    who: &Principal,
    dossier: DossierId,
    person: &str,
    at: OffsetDateTime,
) -> Result<(), DomainError> {
    crate::domain::standing(hub, who, dossier, Action::HandleRightsRequest, at)?;
    let person: PersonId = person
        .parse()
        .map_err(|_| invalid("bad_request", "not a person id"))?;
    hub.relate::<DomainError>(dossier, at, |entry| {
        allowed(who, Action::HandleRightsRequest, &entry.rel, at)?;
        if !entry.rel.restricted.contains(&person) {
            return Err(DomainError::Missing {
                code: "not_restricted",
                message: "the processing of that person's data is not restricted",
            });
        }
        let mut entry = entry.clone();
        std::sync::Arc::make_mut(&mut entry.rel)
            .restricted
            .retain(|p| p != &person);
        let mut ev = AuditEvent::new(
            at,
            who.user.as_str(),
            who.role.as_str(),
            AuditAction::Rights,
        );
        ev.dossier = Some(dossier.to_string());
        ev.persons = Some(person.to_string());
        ev.detail = Some("restriction lifted".into());
        Ok(Some(Relating::rows(
            vec![RelationEdit::Lift(person.clone())],
            entry,
            ev,
        )))
    })
    .await?;
    Ok(())
}

/// Escalates a refused request to the next level (R22): whoever may invoke the right for its
/// subject.
pub async fn escalate(
    hub: &Hub,
    who: &Principal,
    id: &str,
    grounds: &str,
    at: OffsetDateTime,
) -> Result<RequestView, DomainError> {
    let (row, _) = request(hub, id).await?;
    right_standing(hub, who, row.dossier, &row.subject, at).await?;
    let grounds = text(grounds, "grounds", true)?;
    let verdict = row.decision.as_ref().map(|d| d.verdict);
    let Some(level) = rights::next_escalation(verdict, &states(&row)) else {
        return Err(conflict(
            "not_escalatable",
            "only a refusal can be escalated: to the team manager, then to the privacy officer, once each",
        ));
    };
    let today = local_day(at);
    let deadline =
        rights::escalation_deadline(today).ok_or_else(|| invalid("invalid_date", "no deadline"))?;
    let ev = event(who, at, &row, format!("escalated level={}", level.code()));
    let edit = RightsEdit::Escalate(EscalationRow {
        level,
        grounds,
        by: who.user.to_string(),
        on: today.to_string(),
        deadline: deadline.to_string(),
        decision: None,
    });
    commit(hub, &row, edit, ev, "not_escalatable").await
}

/// Decides the pending escalation (the team manager, then the privacy officer): `granted`
/// overturns the refusal, `refused` lets it stand; reasons are always given.
pub async fn decide_escalation(
    hub: &Hub,
    who: &Principal,
    id: &str,
    verdict: Verdict,
    reasons: &str,
    at: OffsetDateTime,
) -> Result<RequestView, DomainError> {
    let (row, rel) = request(hub, id).await?;
    let pending = row
        .escalations
        .iter()
        .find(|e| e.decision.is_none())
        .map(|e| e.level);
    // Standing is settled on the level pending, or the first one, so an outsider learns nothing
    // of the request's state.
    let level = pending.unwrap_or(EscalationLevel::Manager);
    allowed(who, Action::DecideEscalation(level), &rel, at)?;
    if pending.is_none() {
        return Err(conflict(
            "no_escalation_pending",
            "no escalation of this request waits for a decision",
        ));
    }
    let reasons = text(reasons, "reasons", true)?;
    let ev = event(
        who,
        at,
        &row,
        format!(
            "escalation decided level={} verdict={}",
            level.code(),
            verdict.code()
        ),
    );
    let ruling = Ruling {
        verdict,
        reasons,
        by: who.user.to_string(),
        on: local_day(at).to_string(),
    };
    commit(
        hub,
        &row,
        RightsEdit::DecideEscalation(level, ruling),
        ev,
        "no_escalation_pending",
    )
    .await
}

/// The overdue requests of `team` on the Amsterdam day of `at`: counts for the team's manager,
/// and each request for the privacy officer (R27's register of timeliness). Reading it is
/// audited.
pub async fn overdue(
    hub: &Hub,
    who: &Principal,
    team: TeamId,
    at: OffsetDateTime,
) -> Result<Overdue, DomainError> {
    let place = Relationships::of_team(team.clone());
    let tier = if decide(who, Action::ReadReport(ReportTier::Detail), &place, at).is_allowed() {
        ReportTier::Detail
    } else {
        match decide(who, Action::ReadReport(ReportTier::Summary), &place, at) {
            Decision::Allow { .. } => ReportTier::Summary,
            Decision::Deny(r) => return Err(DomainError::Refused(r.code())),
        }
    };
    let mut ev = AuditEvent::new(
        at,
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::AuditRead,
    );
    ev.detail = Some(format!("rights_overdue team={team}"));
    hub.store().append_audit(&ev).await?;
    let today = local_day(at);
    let rows = hub.store().rights_requests(RightsQuery::All).await?;
    let late: Vec<RequestView> = rows
        .iter()
        .filter(|r| r.team == team)
        .map(|r| RequestView::of(r, today))
        .filter(|v| v.overdue)
        .collect();
    let mut by_kind = std::collections::BTreeMap::new();
    for v in &late {
        *by_kind.entry(v.kind).or_insert(0_usize) += 1;
    }
    Ok(Overdue {
        team,
        today: today.to_string(),
        total: late.len(),
        by_kind,
        requests: (tier == ReportTier::Detail).then_some(late),
    })
}

/// The overdue register of one team.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Overdue {
    /// The team.
    pub team: TeamId,
    /// The day, on the Amsterdam calendar.
    #[schema(format = Date)]
    pub today: String,
    /// How many requests are overdue.
    pub total: usize,
    /// How many per right.
    pub by_kind: std::collections::BTreeMap<RightKind, usize>,
    /// Each overdue request: for the privacy officer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<Vec<RequestView>>,
}

/// A request as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    /// Its id.
    pub id: String,
    /// The dossier.
    pub dossier: DossierId,
    /// The person it concerns.
    pub subject: PersonId,
    /// Which right.
    pub kind: RightKind,
    /// The right, in Dutch.
    #[schema(value_type = String)]
    pub kind_label: &'static str,
    /// What was asked.
    pub details: String,
    /// Who filed it (user id) and in which role.
    pub filed_by: String,
    /// `resident` or `worker`.
    pub filed_role: String,
    /// The day it was received (Europe/Amsterdam).
    #[schema(format = Date)]
    pub received_on: String,
    /// The day the answer is due, after any extension.
    #[schema(format = Date)]
    pub deadline: String,
    /// `received`, `extended`, `granted`, `refused`, `escalated_to_manager`,
    /// `escalated_to_privacy_officer`, `granted_on_escalation` or `refusal_upheld`.
    pub status: String,
    /// The status, in Dutch.
    #[schema(value_type = String)]
    pub status_label: &'static str,
    /// Whether a decision is due and its deadline has passed.
    pub overdue: bool,
    /// The deadline running now, if a decision is due.
    #[schema(format = Date)]
    pub running_deadline: Option<String>,
    /// The extension, if any.
    pub extension: Option<ExtensionView>,
    /// The decision, if made.
    pub decision: Option<RulingView>,
    /// The escalations, manager first.
    pub escalations: Vec<EscalationView>,
    /// The level a refusal can be escalated to now, if any.
    pub can_escalate_to: Option<EscalationLevel>,
}

/// An extension as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExtensionView {
    /// One or two.
    pub months: i64,
    /// Why.
    pub reason: String,
    /// The day the resident was told.
    #[schema(format = Date)]
    pub told_on: String,
}

/// A decision as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RulingView {
    /// Granted or refused.
    pub verdict: Verdict,
    /// The reasons.
    pub reasons: String,
    /// The day.
    #[schema(format = Date)]
    pub on: String,
}

/// An escalation as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EscalationView {
    /// Who decides it.
    pub level: EscalationLevel,
    /// The resident's grounds.
    pub grounds: String,
    /// The day it was lodged.
    #[schema(format = Date)]
    pub on: String,
    /// By when it is decided.
    #[schema(format = Date)]
    pub deadline: String,
    /// The decision, once made.
    pub decision: Option<RulingView>,
}

fn ruling_view(r: &Ruling) -> RulingView {
    RulingView {
        verdict: r.verdict,
        reasons: r.reasons.clone(),
        on: r.on.clone(),
    }
}

impl RequestView {
    /// `row` as shown on `today`.
    pub fn of(row: &RightsRequestRow, today: jiff::civil::Date) -> RequestView {
        let escalations = states(row);
        let verdict = row.decision.as_ref().map(|d| d.verdict);
        let deadline = rights::parse_date(&row.deadline).unwrap_or(jiff::civil::Date::MAX);
        let status: Status = rights::status(row.extension.is_some(), verdict, &escalations);
        RequestView {
            id: row.id.clone(),
            dossier: row.dossier,
            subject: row.subject.clone(),
            kind: row.kind,
            kind_label: row.kind.label_nl(),
            details: row.details.clone(),
            filed_by: row.filed_by.clone(),
            filed_role: row.filed_role.clone(),
            received_on: row.received_on.clone(),
            deadline: row.deadline.clone(),
            status: status.code().to_owned(),
            status_label: status.label_nl(),
            overdue: rights::overdue(deadline, verdict, &escalations, today),
            running_deadline: rights::running_deadline(deadline, verdict, &escalations)
                .map(|d| d.to_string()),
            extension: row.extension.as_ref().map(|e| ExtensionView {
                months: e.months,
                reason: e.reason.clone(),
                told_on: e.told_on.clone(),
            }),
            decision: row.decision.as_ref().map(ruling_view),
            escalations: row
                .escalations
                .iter()
                .map(|e| EscalationView {
                    level: e.level,
                    grounds: e.grounds.clone(),
                    on: e.on.clone(),
                    deadline: e.deadline.clone(),
                    decision: e.decision.as_ref().map(ruling_view),
                })
                .collect(),
            can_escalate_to: rights::next_escalation(verdict, &escalations),
        }
    }
}
