//! Sharing by decision (R12, R16, R17): data leaves the worker's hands only through a recorded
//! triage decision that names the recipient and the items and argues doelbinding,
//! proportionaliteit and subsidiariteit, on a ground — the consent of everyone R16 requires,
//! the resident's own application (a maatwerk decision), or, without consent, a weighing
//! approved by a second worker of the team. This module reads those records from `record`;
//! [`crate::policy::decide`] with [`crate::policy::Action::Share`] makes the decision.

use std::collections::BTreeSet;

use automerge::{ObjId, ROOT, ReadDoc};
use serde::{Deserialize, Serialize};

use crate::consent::{Coverage, RecordedConsent};
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
}

fn list_items(doc: &impl ReadDoc, key: &str) -> Vec<ObjId> {
    list(doc, &ROOT, key)
        .map(|l| items(doc, &l))
        .unwrap_or_default()
}

fn filled(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> bool {
    text(doc, obj, key).is_some_and(|t| !t.trim().is_empty())
}

/// The triage record with `id` in `record`.
pub fn triage(record: &impl ReadDoc, id: &str) -> Option<Triage> {
    let obj = list_items(record, "triage")
        .into_iter()
        .find(|t| text(record, t, "id").as_deref() == Some(id))?;
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
    })
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
