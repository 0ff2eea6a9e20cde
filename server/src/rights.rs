//! Resident rights as domain operations (R19–R22): file a request, list one's own or a
//! dossier's, extend, decide, escalate a refusal and decide the escalation, and the overdue
//! register. Each settles standing with the policy first — an outsider gets `not_found` whether
//! or not the dossier or the request exists —, then checks its input with the pure rules of
//! `regie_core::rights`, then commits the register's row with its audit row in one transaction
//! (I8). Dates are days on the Europe/Amsterdam calendar.

use regie_core::consent;
use regie_core::document::{self, PersonRecord, rewrite};
use regie_core::id::{DocumentKey, DocumentKind, DossierId, PersonId, TeamId};
use regie_core::policy::{Action, Decision, DenyReason, ReportTier, RightsSubject, decide};
use regie_core::principal::Principal;
use regie_core::relationship::Relationships;
use regie_core::rights::{
    self, ErasureScope, EscalationLevel, EscalationState, RefusalGround, RightKind, Status, Verdict,
};
use regie_sync_protocol::DocumentId;
use serde::Serialize;
use time::OffsetDateTime;

use crate::audit::{AuditAction, AuditEvent};
use crate::domain::{DomainError, invalid};
use crate::hub::{DossierEntry, Hub, Relating};
use crate::report::Count;
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

/// `value` as a date `YYYY-MM-DD`, or `invalid_date` naming `what`.
pub(crate) fn date(value: &str, what: &'static str) -> Result<jiff::civil::Date, DomainError> {
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
    let entry = hub
        .current_dossier(dossier)
        .await?
        .ok_or(DomainError::NotFound)?;
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
        carried_out: None,
    };
    let ev = event(who, at, &row, format!("filed kind={}", row.kind.code()));
    hub.store().file_rights_request(&row, &[ev]).await?;
    Ok(RequestView::of(&row, today))
}

/// The requests the calling resident filed or that concern them, in dossiers they are linked
/// to, and the ones they filed whose dossier is gone (destroyed on their erasure request, or at
/// the end of retention), so they can read the answer (a worker has none of their own here).
pub async fn mine(
    hub: &Hub,
    who: &Principal,
    at: OffsetDateTime,
) -> Result<Vec<RequestView>, DomainError> {
    let Some(person) = &who.person else {
        return Ok(Vec::new());
    };
    let linked: std::collections::HashSet<DossierId> = hub
        .dossiers()
        .into_iter()
        .filter(|e| e.rel.is_linked(person))
        .map(|e| e.rel.dossier)
        .collect();
    let today = local_day(at);
    let rows = hub.store().rights_requests(RightsQuery::All).await?;
    let filed = |r: &RightsRequestRow| r.filed_by == who.user.as_str();
    Ok(rows
        .iter()
        .filter(|r| {
            if linked.contains(&r.dossier) {
                &r.subject == person || filed(r)
            } else {
                filed(r) && hub.dossier(r.dossier).is_none()
            }
        })
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
    crate::domain::standing(hub, who, dossier, Action::HandleRightsRequest, at).await?;
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

/// A decision as a worker makes it.
#[derive(Debug, Clone)]
pub struct DecisionInput {
    /// Granted or refused.
    pub verdict: Verdict,
    /// The reasons (required for a refusal).
    pub reasons: String,
    /// A refusal's legal ground: required to refuse an erasure, a rectification or an
    /// objection, and one of [`RefusalGround::allowed_for`] the kind.
    pub ground: Option<RefusalGround>,
    /// How far a granted erasure goes (required to grant one).
    pub scope: Option<ErasureScope>,
    /// The corrected facts of a granted rectification (at least one).
    pub corrections: Vec<Correction>,
    /// The weighing of an objection (required to decide one either way).
    pub weighing: Option<String>,
}

impl DecisionInput {
    /// A decision with only its verdict and reasons.
    pub fn plain(verdict: Verdict, reasons: &str) -> DecisionInput {
        DecisionInput {
            verdict,
            reasons: reasons.to_owned(),
            ground: None,
            scope: None,
            corrections: Vec::new(),
            weighing: None,
        }
    }
}

/// A fact corrected on a rectification request (R20).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
pub struct Correction {
    /// The record entry (a fact about the request's subject).
    pub entry: String,
    /// The corrected text, which replaces the old one without history.
    pub text: String,
}

/// Decides a request (an assigned worker); a refusal needs its reasons and, for an erasure,
/// rectification or objection, its legal ground. Granting an erasure erases (the person's
/// items, or the whole dossier of one person); granting a rectification corrects the facts;
/// granting a restriction restricts. Each of those steps is its own transaction, and the
/// decision with its audit row commits last: a failure in between leaves the request open, and
/// deciding it again finds nothing more to erase or correct.
pub async fn decide_request(
    hub: &Hub,
    who: &Principal,
    id: &str,
    input: DecisionInput,
    at: OffsetDateTime,
) -> Result<RequestView, DomainError> {
    let (row, rel) = request(hub, id).await?;
    allowed(who, Action::HandleRightsRequest, &rel, at)?;
    let verdict = input.verdict;
    let reasons = text(&input.reasons, "reasons", verdict == Verdict::Refused)?;
    if row.decision.is_some() {
        return Err(conflict(
            "decided_already",
            "this request was decided already",
        ));
    }
    let ground = match (verdict, input.ground) {
        (Verdict::Granted, Some(_)) => {
            return Err(invalid("ground_not_allowed", "only a refusal has a ground"));
        }
        (Verdict::Granted, None) => None,
        (Verdict::Refused, None)
            if matches!(
                row.kind,
                RightKind::Erasure | RightKind::Rectification | RightKind::Objection
            ) =>
        {
            return Err(invalid(
                "ground_required",
                "refusing this right needs its legal ground",
            ));
        }
        (Verdict::Refused, None) => None,
        (Verdict::Refused, Some(g)) => {
            if !RefusalGround::allowed_for(row.kind).contains(&g) {
                return Err(invalid(
                    "ground_not_applicable",
                    format!("{} is no ground to refuse {}", g.code(), row.kind.code()),
                ));
            }
            Some(g)
        }
    };
    let weighing = match &input.weighing {
        Some(w) => Some(text(w, "weighing", true)?),
        None if row.kind == RightKind::Objection => {
            return Err(invalid(
                "weighing_required",
                "an objection is decided on a recorded weighing of the resident's situation against the grounds of the processing",
            ));
        }
        None => None,
    };
    if verdict == Verdict::Granted && row.kind == RightKind::Restriction {
        let ev = event(who, at, &row, format!("decided verdict={}", verdict.code()));
        return restrict(hub, who, &row, reasons, ev, at).await;
    }
    let outcome = match (verdict, row.kind) {
        (Verdict::Refused, _) if ground == Some(RefusalGround::RetentionDuty) => {
            Some(retention_basis(hub, row.dossier).await?)
        }
        (Verdict::Granted, _) => carry(hub, who, &row, input.scope, &input.corrections).await?,
        _ => None,
    };
    let mut what = format!("decided verdict={}", verdict.code());
    if let Some(g) = ground {
        what.push_str(&format!(" ground={}", g.code()));
    }
    if let Some(o) = &outcome {
        what.push_str(&format!(" outcome={o}"));
    }
    let ev = event(who, at, &row, what);
    let ruling = Ruling {
        ground: ground.map(|g| g.code().to_owned()),
        outcome,
        weighing,
        ..Ruling::plain(
            verdict,
            reasons,
            who.user.to_string(),
            local_day(at).to_string(),
        )
    };
    commit(hub, &row, RightsEdit::Decide(ruling), ev, "decided_already").await
}

/// Carries out a request whose refusal was overturned on escalation (R22): an assigned worker
/// erases (with its scope) or rectifies (with the corrections) as a granted decision would have,
/// and the outcome is recorded once. Only erasure and rectification are carried out here.
pub async fn carry_out(
    hub: &Hub,
    who: &Principal,
    id: &str,
    scope: Option<ErasureScope>,
    corrections: &[Correction],
    at: OffsetDateTime,
) -> Result<RequestView, DomainError> {
    let (row, rel) = request(hub, id).await?;
    allowed(who, Action::HandleRightsRequest, &rel, at)?;
    let verdict = row.decision.as_ref().map(|d| d.verdict);
    if rights::status(row.extension.is_some(), verdict, &states(&row))
        != Status::GrantedOnEscalation
        || row.carried_out.is_some()
    {
        return Err(conflict(
            "not_to_carry_out",
            "only a request granted on escalation is carried out here, and once",
        ));
    }
    let Some(outcome) = carry(hub, who, &row, scope, corrections).await? else {
        return Err(conflict(
            "not_to_carry_out",
            "only an erasure or a rectification is carried out",
        ));
    };
    let ev = event(who, at, &row, format!("carried out outcome={outcome}"));
    commit(
        hub,
        &row,
        RightsEdit::CarriedOut(outcome),
        ev,
        "not_to_carry_out",
    )
    .await
}

/// The retention duty a refusal rests on (R23), as a code: the regimes `meta` records with
/// their terms and the destroy-by date they give, or `dossier_open` while the dossier has not
/// been closed (its terms start at closing or at the last change, and the help still needs the
/// data).
async fn retention_basis(hub: &Hub, dossier: DossierId) -> Result<String, DomainError> {
    let meta = match hub
        .dossier(dossier)
        .and_then(|e| e.documents.get(&DocumentKey::Meta).copied())
    {
        Some(id) => hub.snapshot(id).await?,
        None => None,
    };
    let parts = meta.map(|m| document::regimes(&m)).unwrap_or_default();
    if parts.is_empty() {
        return Ok("retention dossier_open".into());
    }
    let regimes: Vec<String> = parts
        .iter()
        .map(|p| format!("{}:{}y", p.regime.code(), p.regime.term_years()))
        .collect();
    let until = regie_core::retention::destroy_by_dossier(&parts, &[])
        .map(|d| format!(" destroy_by={d}"))
        .unwrap_or_default();
    Ok(format!("retention regimes={}{until}", regimes.join(",")))
}

/// Carries out what granting `row` changes in the documents — an erasure with its `scope`, a
/// rectification with its `corrections` — as decided at once or on escalation; returns the
/// outcome code, or `None` for a right that changes no document.
async fn carry(
    hub: &Hub,
    who: &Principal,
    row: &RightsRequestRow,
    scope: Option<ErasureScope>,
    corrections: &[Correction],
) -> Result<Option<String>, DomainError> {
    Ok(match row.kind {
        RightKind::Erasure => {
            let scope = scope.ok_or_else(|| {
                invalid(
                    "scope_required",
                    "an erasure says whether the person's items or the whole dossier go",
                )
            })?;
            Some(erase(hub, who, row, scope).await?)
        }
        RightKind::Rectification => Some(rectify(hub, row, corrections).await?),
        _ => None,
    })
}

/// Carries out a granted erasure (R21, I6); returns the outcome code (counts, no content).
async fn erase(
    hub: &Hub,
    who: &Principal,
    row: &RightsRequestRow,
    scope: ErasureScope,
) -> Result<String, DomainError> {
    let entry = hub
        .current_dossier(row.dossier)
        .await?
        .ok_or(DomainError::NotFound)?;
    match scope {
        ErasureScope::Dossier => {
            if entry.persons.iter().any(|p| p != &row.subject) {
                return Err(conflict(
                    "others_in_dossier",
                    "the dossier holds other persons' data: erase this person's items, or refuse on others_interest",
                ));
            }
            let proof = hub
                .destroy(
                    row.dossier,
                    "erasure_granted",
                    (who.user.as_str(), who.role.as_str()),
                )
                .await?;
            Ok(format!(
                "dossier_destroyed documents={} changes={}",
                proof.documents, proof.changes
            ))
        }
        ErasureScope::Items => {
            let person = row.subject.clone();
            let mut erased = std::collections::BTreeSet::new();
            let mut documents = 0;
            // The record first: which entries are about the person alone is read under its
            // lock; maatwerk requests then lose the facts they copied from those entries.
            if let Some(&record) = entry.documents.get(&DocumentKey::Record) {
                let erased = &mut erased;
                let person = &person;
                let replaced = hub
                    .rewrite(record, move |tx, kind| {
                        *erased = rewrite::entries_only_about(&*tx, person);
                        rewrite::erase_person(tx, kind, person, &*erased)
                    })
                    .await?;
                documents += usize::from(replaced.is_some());
            }
            for (key, doc) in &entry.documents {
                if key.kind() != DocumentKind::Maatwerk {
                    continue;
                }
                let replaced = hub
                    .rewrite(*doc, |tx, kind| {
                        rewrite::erase_person(tx, kind, &person, &erased)
                    })
                    .await?;
                documents += usize::from(replaced.is_some());
            }
            hub.store().wipe_freed_pages().await?;
            Ok(format!(
                "erased_items entries={} documents={documents}",
                erased.len()
            ))
        }
    }
}

/// Carries out a granted rectification (R20): each corrected fact gets its new text in every
/// document that held it, by replacement; returns the outcome code.
async fn rectify(
    hub: &Hub,
    row: &RightsRequestRow,
    corrections: &[Correction],
) -> Result<String, DomainError> {
    if corrections.is_empty() {
        return Err(invalid(
            "corrections_required",
            "granting a rectification names the facts and their corrected text",
        ));
    }
    let entry = hub
        .current_dossier(row.dossier)
        .await?
        .ok_or(DomainError::NotFound)?;
    let record_id = *entry
        .documents
        .get(&DocumentKey::Record)
        .ok_or(DomainError::NotFound)?;
    let record = hub
        .snapshot(record_id)
        .await?
        .ok_or(DomainError::NotFound)?;
    let mut fixes = Vec::new();
    for c in corrections {
        if !rewrite::entry_concerns(&record, &c.entry, &row.subject) {
            return Err(invalid(
                "no_such_entry",
                "no entry of the record about this person has that id",
            ));
        }
        if rewrite::entry_kind(&record, &c.entry).as_deref() != Some("fact") {
            return Err(invalid(
                "opinion_not_rectified",
                "an opinion is not rectified: refuse on the ground opinion, and the resident may add an eigen verklaring",
            ));
        }
        fixes.push((c.entry.clone(), text(&c.text, "text", true)?));
    }
    let mut documents = 0;
    let ids: Vec<DocumentId> = entry
        .documents
        .iter()
        .filter(|(k, _)| matches!(k.kind(), DocumentKind::Record | DocumentKind::Maatwerk))
        .map(|(_, d)| *d)
        .collect();
    for doc in ids {
        let replaced = hub
            .rewrite(doc, |tx, kind| rewrite::rectify(tx, kind, &fixes))
            .await?;
        documents += usize::from(replaced.is_some());
    }
    hub.store().wipe_freed_pages().await?;
    Ok(format!(
        "rectified entries={} documents={documents}",
        fixes.len()
    ))
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
    crate::domain::standing(hub, who, dossier, Action::HandleRightsRequest, at).await?;
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
    let ruling = Ruling::plain(
        verdict,
        reasons,
        who.user.to_string(),
        local_day(at).to_string(),
    );
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
/// each below `threshold` shown as `"< N"` (R27: in a small team a count of one points at a
/// person), and each request with exact counts for the privacy officer (R27's register of
/// timeliness). Reading it is audited.
pub async fn overdue(
    hub: &Hub,
    who: &Principal,
    team: TeamId,
    threshold: usize,
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
    let detail = tier == ReportTier::Detail;
    let count = |n: usize| {
        if detail {
            Count::Exact(n)
        } else {
            Count::of(n, threshold)
        }
    };
    Ok(Overdue {
        team,
        today: today.to_string(),
        total: count(late.len()),
        by_kind: by_kind.into_iter().map(|(k, n)| (k, count(n))).collect(),
        requests: detail.then_some(late),
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
    /// How many requests are overdue (for the manager, below the threshold `"< N"`).
    pub total: Count,
    /// How many per right, likewise.
    pub by_kind: std::collections::BTreeMap<RightKind, Count>,
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
    /// What was done once a refusal was overturned on escalation (an outcome code, as the
    /// decision's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carried_out: Option<String>,
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
    /// A refusal's legal ground.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ground: Option<RefusalGround>,
    /// The ground, in Dutch.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ground_label: Option<&'static str>,
    /// What granting did, as a code with counts (`erased_items entries=2 documents=2`,
    /// `dossier_destroyed documents=6 changes=40`, `rectified entries=1 documents=1`); for a
    /// refusal on `retention_duty`, the regimes that impose it (`retention regimes=jeugdwet:20y
    /// destroy_by=2046-05-01`, or `retention dossier_open`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The weighing an objection was decided on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weighing: Option<String>,
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
    let ground = r.ground.as_deref().and_then(RefusalGround::from_code);
    RulingView {
        verdict: r.verdict,
        reasons: r.reasons.clone(),
        on: r.on.clone(),
        ground,
        ground_label: ground.map(RefusalGround::label_nl),
        outcome: r.outcome.clone(),
        weighing: r.weighing.clone(),
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
            carried_out: row.carried_out.clone(),
        }
    }
}
