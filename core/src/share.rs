//! Sharing by decision (R12, R16, R17): data leaves the worker's hands only through a recorded
//! triage decision that names the recipient and the items and argues doelbinding,
//! proportionaliteit and subsidiariteit, on a ground — the consent of everyone R16 requires,
//! the resident's own application (a maatwerk decision), or, without consent, a weighing
//! approved by a second worker of the team. This module reads those records from `record`;
//! [`crate::policy::decide`] with [`crate::policy::Action::Share`] makes the decision.

use std::collections::BTreeSet;

use automerge::{ObjId, ROOT, ReadDoc};
use serde::{Deserialize, Serialize};

use crate::consent::{
    self, ConsentError, ConsentSubject, Coverage, ProposedShare, RecordedConsent,
};
use crate::document::PersonRecord;
use crate::document::read::{items, list, strings, text};
use crate::id::{OrgId, PersonId};
use crate::principal::Principal;

/// Who would receive the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    /// The municipal back office, through `maatwerk/<n>` (R6).
    Backoffice,
    /// A chain partner, through `partner/<org>` (R5).
    Partner(OrgId),
}

impl Recipient {
    /// How a triage record names this recipient: `backoffice` or `partner:<org>`.
    pub fn code(&self) -> String {
        match self {
            Recipient::Backoffice => "backoffice".into(),
            Recipient::Partner(org) => format!("partner:{org}"),
        }
    }
}

/// A triage decision as recorded in `record` (R12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Triage {
    /// Its id.
    pub id: String,
    /// The triage moment (`aanmelding`, …, `share`).
    pub moment: String,
    /// The recipient it decides about, as [`Recipient::code`].
    pub recipient: Option<String>,
    /// The data items it covers.
    pub items: BTreeSet<String>,
    /// Whether purpose, the three arguments and the decision are all written down.
    pub argued: bool,
    /// Discussed with the resident, or a reason why not was recorded.
    pub discussed_or_explained: bool,
    /// Recorded before the dossier's purpose last changed, so its items must be re-assessed
    /// under the new purpose before they are reused (R13).
    pub superseded: bool,
}

/// The ground a share rests on.
#[derive(Debug, Clone, Copy)]
pub enum Ground<'a> {
    /// Consent, one coverage per person the shared data concerns (R16).
    Consent(&'a [Coverage]),
    /// The resident's own application for a maatwerkvoorziening: the back office needs the
    /// extract to decide it (R6).
    Application,
    /// Without consent (safety, conflict of duties, Veilig Thuis): a weighing approved by a
    /// second worker of the team (R17). `None` while nobody approved.
    FourEyes(Option<&'a Principal>),
}

/// What a worker asks to share.
#[derive(Debug, Clone, Copy)]
pub struct ShareRequest<'a> {
    /// To whom.
    pub recipient: &'a Recipient,
    /// Which items.
    pub items: &'a BTreeSet<String>,
    /// The triage record it rests on, if the worker named one that exists.
    pub triage: Option<&'a Triage>,
    /// On what ground.
    pub ground: Ground<'a>,
    /// The persons whose data it carries (a restriction of any of them refuses it, R21).
    pub subjects: &'a [crate::id::PersonId],
}

fn list_items(doc: &impl ReadDoc, key: &str) -> Vec<ObjId> {
    list(doc, &ROOT, key)
        .map(|l| items(doc, &l))
        .unwrap_or_default()
}

fn filled(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> bool {
    text(doc, obj, key).is_some_and(|t| !t.trim().is_empty())
}

/// The position in `triage` of the record that last changed the dossier's purpose: a record of a
/// dossier moment (every moment but `share`, whose purpose is that one share's) stating another
/// purpose than the dossier moment before it. 0 while the purpose never changed.
fn last_purpose_change(record: &impl ReadDoc, triage: &[ObjId]) -> usize {
    let mut current: Option<String> = None;
    let mut change = 0;
    for (at, t) in triage.iter().enumerate() {
        if text(record, t, "moment").as_deref() == Some("share") {
            continue;
        }
        let Some(purpose) = text(record, t, "purpose").map(|p| p.trim().to_lowercase()) else {
            continue;
        };
        if current.as_ref().is_some_and(|c| *c != purpose) {
            change = at;
        }
        current = Some(purpose);
    }
    change
}

/// The triage record with `id` in `record`.
pub fn triage(record: &impl ReadDoc, id: &str) -> Option<Triage> {
    let all = list_items(record, "triage");
    let at = all
        .iter()
        .position(|t| text(record, t, "id").as_deref() == Some(id))?;
    let obj = all[at].clone();
    let discussed = matches!(record.get(&obj, "discussed_with_resident"), Ok(Some((automerge::Value::Scalar(s), _))) if matches!(s.as_ref(), automerge::ScalarValue::Boolean(true)));
    Some(Triage {
        id: id.to_owned(),
        moment: text(record, &obj, "moment")?,
        recipient: text(record, &obj, "recipient"),
        items: strings(record, &obj, "items").into_iter().collect(),
        argued: [
            "purpose",
            "doelbinding",
            "proportionaliteit",
            "subsidiariteit",
            "decision",
        ]
        .iter()
        .all(|k| filled(record, &obj, k)),
        discussed_or_explained: discussed || filled(record, &obj, "not_discussed_reason"),
        superseded: at < last_purpose_change(record, &all),
    })
}

/// Who gave the consent with `id` in `record`, or `None` when there is no such consent.
pub fn consent_given_by(record: &impl ReadDoc, id: &str) -> Option<Vec<PersonId>> {
    let obj = list_items(record, "consents")
        .into_iter()
        .find(|c| text(record, c, "id").as_deref() == Some(id))?;
    Some(
        strings(record, &obj, "given_by")
            .into_iter()
            .filter_map(|g| PersonId::new(g).ok())
            .collect(),
    )
}

/// Whether consent coverages carry a share: one per person concerned, and every one covered.
pub fn consent_holds(coverages: &[Coverage]) -> bool {
    !coverages.is_empty() && coverages.iter().all(Coverage::is_covered)
}

/// Whether a batch that touched these paths wrote anything under `consents` — after which every
/// share resting on consent must be asked again (R16).
pub fn touches_consents(touched: &crate::path::Touched) -> bool {
    touched
        .iter()
        .any(|path| matches!(path.0.first(), Some(crate::path::Segment::Key(k)) if k == "consents"))
}

/// Why the consent a share needs cannot be worked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoverageError {
    /// A named subject is not a person of the dossier.
    #[error("{0} is not a person of this dossier")]
    UnknownSubject(PersonId),
    /// Who must consent depends on age, and the birth date is not recorded.
    #[error("record the birth date of {0}: who must consent depends on age")]
    BirthDateMissing(PersonId),
    /// R16 cannot name the consenters (gezag unknown, representation needed, …).
    #[error(transparent)]
    Requirement(#[from] ConsentError),
}

/// For each of `subjects`, whether the consents recorded cover `share` as R16 requires for the
/// subject's age on the day of the share, computed from the persons in `meta` (birth date,
/// gezag). An empty answer for no subjects: the policy then refuses the consent ground.
pub fn consent_coverages(
    persons: &[PersonRecord],
    recorded: &[RecordedConsent],
    subjects: &[PersonId],
    share: &ProposedShare,
) -> Result<Vec<Coverage>, CoverageError> {
    subjects
        .iter()
        .map(|subject| {
            let person = persons
                .iter()
                .find(|p| &p.id == subject)
                .ok_or_else(|| CoverageError::UnknownSubject(subject.clone()))?;
            let born_on = person
                .birth_date
                .as_deref()
                .and_then(|b| time::Date::parse(b, crate::document::DATE).ok())
                .ok_or_else(|| CoverageError::BirthDateMissing(subject.clone()))?;
            let required = consent::required_consent(
                &ConsentSubject {
                    person: subject.clone(),
                    born_on,
                    wilsonbekwaam: false,
                },
                &person.gezag,
                share.on,
            )?;
            Ok(consent::check_coverage(&required, recorded, share))
        })
        .collect()
}

/// The consents recorded in `record`, one per person who gave each (R16). Dates that do not
/// parse make the consent count as absent, never as given.
pub fn consents(record: &impl ReadDoc) -> Vec<RecordedConsent> {
    let date =
        |s: Option<String>| s.and_then(|s| time::Date::parse(&s, crate::document::DATE).ok());
    let mut out = Vec::new();
    for c in list_items(record, "consents") {
        let (Some(concerning), Some(recipient), Some(purpose), Some(given_on)) = (
            text(record, &c, "subject").and_then(|s| PersonId::new(s).ok()),
            text(record, &c, "recipient").and_then(|s| OrgId::new(s).ok()),
            text(record, &c, "purpose"),
            date(text(record, &c, "given_on")),
        ) else {
            continue;
        };
        for giver in strings(record, &c, "given_by")
            .into_iter()
            .filter_map(|g| PersonId::new(g).ok())
        {
            out.push(RecordedConsent {
                given_by: giver,
                concerning: concerning.clone(),
                recipient: recipient.clone(),
                purpose: purpose.clone(),
                items: strings(record, &c, "items").into_iter().collect(),
                given_on,
                expires_on: date(text(record, &c, "expires_on")),
                withdrawn_on: date(text(record, &c, "withdrawn_on")),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;

/// A safety weighing (R17) as recorded in `record`: who decided it and for whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Weighing {
    /// Its id.
    pub id: String,
    /// The worker who decided.
    pub decided_by: String,
    /// The recipient's org id.
    pub recipient: String,
    /// Whether the weighing itself is written down.
    pub argued: bool,
}

/// The safety weighing with `id` in `record`.
pub fn weighing(record: &impl ReadDoc, id: &str) -> Option<Weighing> {
    let obj = list_items(record, "safety")
        .into_iter()
        .find(|s| text(record, s, "id").as_deref() == Some(id))?;
    Some(Weighing {
        id: id.to_owned(),
        decided_by: text(record, &obj, "decided_by")?,
        recipient: text(record, &obj, "recipient")?,
        argued: filled(record, &obj, "weighing"),
    })
}
