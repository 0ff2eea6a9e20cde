//! Resident rights under the AVG (art. 12–22; SPEC R19–R22): the kinds of request, their
//! deadlines and their state. A request is answered within one month of its receipt (art. 12(3)),
//! extendable by at most two more months if the resident is told so within that first month; a
//! refusal can be escalated to the team manager and then to the privacy officer (R22), each with
//! a deadline of its own. Deadlines are calendar dates computed with jiff's civil arithmetic, so a
//! month after 31 January is the last day of February; the caller turns the instant of receipt
//! into the date on the Europe/Amsterdam calendar. Who may file or decide is the policy's
//! question ([`crate::policy::Action::ExerciseRight`] and friends), not this module's.

#[cfg(test)]
mod tests;

use jiff::ToSpan;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// The right a resident invokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RightKind {
    /// Access and a copy (art. 15; R19).
    Access,
    /// Rectification of facts (art. 16; R20).
    Rectification,
    /// Erasure (art. 17; R21).
    Erasure,
    /// Restriction of processing (art. 18; R21).
    Restriction,
    /// Objection (art. 21; R21).
    Objection,
}

impl RightKind {
    /// Every kind, in the order of the AVG.
    pub const ALL: [RightKind; 5] = [
        RightKind::Access,
        RightKind::Rectification,
        RightKind::Erasure,
        RightKind::Restriction,
        RightKind::Objection,
    ];

    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            RightKind::Access => "access",
            RightKind::Rectification => "rectification",
            RightKind::Erasure => "erasure",
            RightKind::Restriction => "restriction",
            RightKind::Objection => "objection",
        }
    }

    /// The kind from its stored code.
    pub fn from_code(code: &str) -> Option<RightKind> {
        RightKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// What a resident reads.
    pub fn label_nl(self) -> &'static str {
        match self {
            RightKind::Access => "inzage en kopie",
            RightKind::Rectification => "correctie",
            RightKind::Erasure => "verwijdering",
            RightKind::Restriction => "beperking van de verwerking",
            RightKind::Objection => "bezwaar tegen de verwerking",
        }
    }
}

/// A decision on a request or on an escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The request is granted (for an escalation: the refusal is overturned).
    Granted,
    /// The request is refused, with reasons (for an escalation: the refusal stands).
    Refused,
}

impl Verdict {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Verdict::Granted => "granted",
            Verdict::Refused => "refused",
        }
    }

    /// The verdict from its stored code.
    pub fn from_code(code: &str) -> Option<Verdict> {
        [Verdict::Granted, Verdict::Refused]
            .into_iter()
            .find(|v| v.code() == code)
    }
}

/// The legal ground of a refusal, which the resident reads with the reasons (R21, R22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RefusalGround {
    /// A legal duty to keep the data (art. 17(3)(b)): the retention term of the dossier's regime
    /// (R23) has not run out.
    RetentionDuty,
    /// Another person's rights and freedoms (art. 15(4), 17(3)): e.g. a household member.
    OthersInterest,
    /// Needed for legal claims (art. 17(3)(e)).
    LegalClaims,
    /// Rectification: it is an opinion, not a fact (R14, R20); the resident may add an eigen
    /// verklaring, kept with it.
    Opinion,
    /// Rectification: the fact is correct as recorded; the resident may add an eigen verklaring.
    Accurate,
    /// Objection: compelling legitimate grounds override the resident's interests (art. 21(1)),
    /// as the recorded weighing shows.
    CompellingGrounds,
    /// Manifestly unfounded or excessive (art. 12(5)).
    Unfounded,
}

impl RefusalGround {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            RefusalGround::RetentionDuty => "retention_duty",
            RefusalGround::OthersInterest => "others_interest",
            RefusalGround::LegalClaims => "legal_claims",
            RefusalGround::Opinion => "opinion",
            RefusalGround::Accurate => "accurate",
            RefusalGround::CompellingGrounds => "compelling_grounds",
            RefusalGround::Unfounded => "unfounded",
        }
    }

    /// The ground from its stored code.
    pub fn from_code(code: &str) -> Option<RefusalGround> {
        [
            RefusalGround::RetentionDuty,
            RefusalGround::OthersInterest,
            RefusalGround::LegalClaims,
            RefusalGround::Opinion,
            RefusalGround::Accurate,
            RefusalGround::CompellingGrounds,
            RefusalGround::Unfounded,
        ]
        .into_iter()
        .find(|g| g.code() == code)
    }

    /// What the resident reads.
    pub fn label_nl(self) -> &'static str {
        match self {
            RefusalGround::RetentionDuty => "wettelijke bewaarplicht",
            RefusalGround::OthersInterest => "belang van een ander",
            RefusalGround::LegalClaims => "nodig voor een rechtsvordering",
            RefusalGround::Opinion => {
                "het is een mening, geen feit; u kunt er een eigen verklaring bij zetten"
            }
            RefusalGround::Accurate => {
                "het feit klopt zoals vastgelegd; u kunt er een eigen verklaring bij zetten"
            }
            RefusalGround::CompellingGrounds => "dwingende gerechtvaardigde gronden gaan voor",
            RefusalGround::Unfounded => "kennelijk ongegrond of buitensporig",
        }
    }

    /// The grounds on which a request of `kind` can be refused: erasure only on the exceptions
    /// of art. 17(3), rectification because it is an opinion or correct, objection on
    /// compelling grounds; every kind when manifestly unfounded.
    pub fn allowed_for(kind: RightKind) -> &'static [RefusalGround] {
        match kind {
            RightKind::Access => &[RefusalGround::OthersInterest, RefusalGround::Unfounded],
            RightKind::Rectification => &[
                RefusalGround::Opinion,
                RefusalGround::Accurate,
                RefusalGround::Unfounded,
            ],
            RightKind::Erasure => &[
                RefusalGround::RetentionDuty,
                RefusalGround::OthersInterest,
                RefusalGround::LegalClaims,
                RefusalGround::Unfounded,
            ],
            RightKind::Restriction => &[RefusalGround::LegalClaims, RefusalGround::Unfounded],
            RightKind::Objection => &[RefusalGround::CompellingGrounds, RefusalGround::Unfounded],
        }
    }
}

/// How far a granted erasure goes (R21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErasureScope {
    /// The person's items leave every document that held them, by replacement.
    Items,
    /// The whole dossier is destroyed, with proof (only a dossier of this one person: another
    /// member's data is their interest).
    Dossier,
}

/// Who decides an escalated refusal (R22), in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EscalationLevel {
    /// The team manager, first.
    Manager,
    /// The privacy officer, after the manager let the refusal stand.
    PrivacyOfficer,
}

impl EscalationLevel {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            EscalationLevel::Manager => "manager",
            EscalationLevel::PrivacyOfficer => "privacy_officer",
        }
    }

    /// The level from its stored code.
    pub fn from_code(code: &str) -> Option<EscalationLevel> {
        [EscalationLevel::Manager, EscalationLevel::PrivacyOfficer]
            .into_iter()
            .find(|l| l.code() == code)
    }
}

/// The most months an answer may be extended by (art. 12(3): "with two further months").
pub const MAX_EXTENSION_MONTHS: i8 = 2;

/// The days each escalation level has to decide. Internal review before the Awb's objection
/// term of six weeks (Awb art. 7:10) runs out: two weeks for the manager, two for the officer.
pub const ESCALATION_DAYS: i32 = 14;

/// The day the answer is due: `months` calendar months after `received`, clamped to the end of
/// a shorter month (received 31 January → 28 or 29 February; 31 March → 30 April).
pub fn due_after(received: Date, months: i8) -> Option<Date> {
    received.checked_add(i64::from(months).months()).ok()
}

/// The answer's deadline: one month after receipt, plus the extension's months if any.
pub fn deadline(received: Date, extension_months: Option<i8>) -> Option<Date> {
    due_after(received, 1 + extension_months.unwrap_or(0))
}

/// The deadline of an escalation lodged on `on`.
pub fn escalation_deadline(on: Date) -> Option<Date> {
    on.checked_add(ESCALATION_DAYS.days()).ok()
}

/// Why an extension cannot be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    /// One or two months, no more (art. 12(3)).
    #[error("an extension is one or two months")]
    Months,
    /// The resident must be told within the first month, and not before the request arrived.
    #[error(
        "the resident must be told of the extension between the receipt and the first deadline"
    )]
    ToldOutsideFirstMonth,
    /// An extension is decided within the first month; after it the request is simply late.
    #[error("the first month has passed: an extension can no longer be recorded")]
    TooLate,
    /// The request has an extension already, or was decided.
    #[error("this request was extended or decided already")]
    AlreadySettled,
    /// A reason is required.
    #[error("an extension needs a reason")]
    ReasonMissing,
}

/// Checks an extension of `months`, told to the resident on `told_on`, recorded on `today`, of
/// a request received on `received` that is still open and not yet extended; returns the new
/// deadline.
pub fn extend(
    received: Date,
    months: i8,
    reason: &str,
    told_on: Date,
    today: Date,
    open_and_unextended: bool,
) -> Result<Date, ExtensionError> {
    if !open_and_unextended {
        return Err(ExtensionError::AlreadySettled);
    }
    if !(1..=MAX_EXTENSION_MONTHS).contains(&months) {
        return Err(ExtensionError::Months);
    }
    if reason.trim().is_empty() {
        return Err(ExtensionError::ReasonMissing);
    }
    let first = deadline(received, None).ok_or(ExtensionError::Months)?;
    if today > first {
        return Err(ExtensionError::TooLate);
    }
    if told_on < received || told_on > first || told_on > today {
        return Err(ExtensionError::ToldOutsideFirstMonth);
    }
    deadline(received, Some(months)).ok_or(ExtensionError::Months)
}

/// Where a request stands, as the resident and the registers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Received, not yet decided.
    Received,
    /// Received, the deadline extended, not yet decided.
    Extended,
    /// Granted.
    Granted,
    /// Refused; it may be escalated.
    Refused,
    /// The refusal lies with the team manager (or, after them, the privacy officer).
    Escalated(EscalationLevel),
    /// The refusal was overturned on escalation.
    GrantedOnEscalation,
    /// The refusal stands after the privacy officer's review: final inside the municipality.
    RefusalUpheld,
}

impl Status {
    /// A stable code.
    pub fn code(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Extended => "extended",
            Status::Granted => "granted",
            Status::Refused => "refused",
            Status::Escalated(EscalationLevel::Manager) => "escalated_to_manager",
            Status::Escalated(EscalationLevel::PrivacyOfficer) => "escalated_to_privacy_officer",
            Status::GrantedOnEscalation => "granted_on_escalation",
            Status::RefusalUpheld => "refusal_upheld",
        }
    }

    /// What the resident reads.
    pub fn label_nl(self) -> &'static str {
        match self {
            Status::Received => "ontvangen, in behandeling",
            Status::Extended => "in behandeling, termijn verlengd",
            Status::Granted => "toegewezen",
            Status::Refused => "afgewezen; u kunt bezwaar maken bij de teammanager",
            Status::Escalated(EscalationLevel::Manager) => "bezwaar ligt bij de teammanager",
            Status::Escalated(EscalationLevel::PrivacyOfficer) => {
                "bezwaar ligt bij de functionaris gegevensbescherming"
            }
            Status::GrantedOnEscalation => "na bezwaar toegewezen",
            Status::RefusalUpheld => {
                "afwijzing na bezwaar gehandhaafd; u kunt een klacht indienen bij de Autoriteit Persoonsgegevens"
            }
        }
    }

    /// Whether someone still has to decide something.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Status::Received | Status::Extended | Status::Escalated(_)
        )
    }
}

/// One escalation as stored: its level, deadline and verdict if decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscalationState {
    /// Who decides it.
    pub level: EscalationLevel,
    /// By when.
    pub deadline: Date,
    /// What they decided, if they did.
    pub verdict: Option<Verdict>,
}

/// The status of a request from its verdict and its escalations, lowest level first.
pub fn status(extended: bool, verdict: Option<Verdict>, escalations: &[EscalationState]) -> Status {
    match (verdict, escalations.last()) {
        (None, _) if extended => Status::Extended,
        (None, _) => Status::Received,
        (Some(Verdict::Granted), _) => Status::Granted,
        (Some(Verdict::Refused), None) => Status::Refused,
        (Some(Verdict::Refused), Some(e)) => match (e.level, e.verdict) {
            (level, None) => Status::Escalated(level),
            (_, Some(Verdict::Granted)) => Status::GrantedOnEscalation,
            (EscalationLevel::Manager, Some(Verdict::Refused)) => Status::Refused,
            (EscalationLevel::PrivacyOfficer, Some(Verdict::Refused)) => Status::RefusalUpheld,
        },
    }
}

/// The level a refused request escalates to next, or `None` when it cannot be escalated (not
/// refused, an escalation pending or granted, or both levels done).
pub fn next_escalation(
    verdict: Option<Verdict>,
    escalations: &[EscalationState],
) -> Option<EscalationLevel> {
    if verdict != Some(Verdict::Refused) {
        return None;
    }
    match escalations.last() {
        None => Some(EscalationLevel::Manager),
        Some(EscalationState {
            level: EscalationLevel::Manager,
            verdict: Some(Verdict::Refused),
            ..
        }) => Some(EscalationLevel::PrivacyOfficer),
        Some(_) => None,
    }
}

/// The deadline now running, if someone still has to decide: the answer's, or the pending
/// escalation's.
pub fn running_deadline(
    answer_deadline: Date,
    verdict: Option<Verdict>,
    escalations: &[EscalationState],
) -> Option<Date> {
    match (verdict, escalations.last()) {
        (None, _) => Some(answer_deadline),
        (Some(_), Some(e)) if e.verdict.is_none() => Some(e.deadline),
        _ => None,
    }
}

/// Whether a request is overdue on `today`: a decision is due and its deadline has passed (the
/// deadline day itself is still in time).
pub fn overdue(
    answer_deadline: Date,
    verdict: Option<Verdict>,
    escalations: &[EscalationState],
    today: Date,
) -> bool {
    running_deadline(answer_deadline, verdict, escalations).is_some_and(|d| today > d)
}

/// Parses a `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<Date> {
    if s.len() != 10 {
        return None;
    }
    s.parse().ok()
}
