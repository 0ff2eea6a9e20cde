//! What the server writes into a wider document when a worker decides to share or close: the
//! DAT-information of `partner/<org>` (R5), the request of `maatwerk/<n>` (R6) and the closing
//! state of `meta` (R18, R23). Pure edits on a transaction; the server validates the result
//! against the schema before it commits, so API input cannot break a document.

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ROOT, ReadDoc};
use serde::{Deserialize, Serialize};

use super::read::{items, list, text};
use crate::retention::DossierPart;

/// How the partner reaches the worker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Contact {
    /// The worker's name as the partner may know it.
    #[serde(default)]
    pub name: Option<String>,
    /// A work phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// A work email address.
    #[serde(default)]
    pub email: Option<String>,
}

/// An action the case conference assigned to one partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct PartnerAction {
    /// Its id, stable across updates.
    pub id: String,
    /// What the partner does.
    pub description: String,
    /// When it was agreed, `YYYY-MM-DD`.
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(format = Date))]
    pub agreed_on: Option<String>,
}

/// Writes the contact (when given) and appends the actions not there yet to `assignment`.
pub fn write_assignment<D: Transactable + ReadDoc>(
    doc: &mut D,
    contact: Option<&Contact>,
    actions: &[PartnerAction],
) -> Result<(), AutomergeError> {
    let assignment = map_at(doc, "assignment")?;
    if let Some(c) = contact {
        let obj = doc.put_object(&assignment, "contact", ObjType::Map)?;
        for (key, value) in [("name", &c.name), ("phone", &c.phone), ("email", &c.email)] {
            if let Some(v) = value {
                doc.put(&obj, key, v.as_str())?;
            }
        }
    }
    let list = match list(doc, &assignment, "actions") {
        Some(l) => l,
        None => doc.put_object(&assignment, "actions", ObjType::List)?,
    };
    let known: Vec<String> = items(doc, &list)
        .iter()
        .filter_map(|a| text(doc, a, "id"))
        .collect();
    for action in actions.iter().filter(|a| !known.contains(&a.id)) {
        let at = doc.length(&list);
        let obj = doc.insert_object(&list, at, ObjType::Map)?;
        doc.put(&obj, "id", action.id.as_str())?;
        doc.put(&obj, "description", action.description.as_str())?;
        if let Some(d) = &action.agreed_on {
            doc.put(&obj, "agreed_on", d.as_str())?;
        }
    }
    Ok(())
}

/// The request of one maatwerk decision, as the worker composed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaatwerkRequest {
    /// What the resident asks for.
    pub requested: String,
    /// The need the worker assessed.
    pub assessed_need: String,
    /// The voorziening proposed.
    pub proposed_voorziening: String,
    /// Supporting facts: record entry id and its text, each one the applicant has seen.
    pub supporting_facts: Vec<(String, String)>,
    /// The triage record it rests on.
    pub triage: String,
    /// The day it was submitted, `YYYY-MM-DD`.
    pub submitted_on: String,
}

/// Writes `request` of a `maatwerk/<n>` document.
pub fn write_request<D: Transactable + ReadDoc>(
    doc: &mut D,
    request: &MaatwerkRequest,
) -> Result<(), AutomergeError> {
    let obj = map_at(doc, "request")?;
    for (key, value) in [
        ("requested", &request.requested),
        ("assessed_need", &request.assessed_need),
    ] {
        let t = doc.put_object(&obj, key, ObjType::Text)?;
        doc.splice_text(&t, 0, 0, value)?;
    }
    doc.put(
        &obj,
        "proposed_voorziening",
        request.proposed_voorziening.as_str(),
    )?;
    let facts = doc.put_object(&obj, "supporting_facts", ObjType::List)?;
    for (i, (entry, body)) in request.supporting_facts.iter().enumerate() {
        let f = doc.insert_object(&facts, i, ObjType::Map)?;
        doc.put(&f, "entry", entry.as_str())?;
        let t = doc.put_object(&f, "text", ObjType::Text)?;
        doc.splice_text(&t, 0, 0, body)?;
    }
    doc.put(&obj, "triage", request.triage.as_str())?;
    doc.put(&obj, "submitted_on", request.submitted_on.as_str())?;
    Ok(())
}

/// Writes the closing state into `meta`: status `closed`, the regimes with their trigger
/// dates, and the destroy-by date when every part has one (R23).
pub fn write_closed<D: Transactable + ReadDoc>(
    doc: &mut D,
    parts: &[DossierPart],
    destroy_by: Option<time::Date>,
) -> Result<(), AutomergeError> {
    doc.put(ROOT, "status", "closed")?;
    let regimes = doc.put_object(ROOT, "regimes", ObjType::List)?;
    for (i, part) in parts.iter().enumerate() {
        let obj = doc.insert_object(&regimes, i, ObjType::Map)?;
        doc.put(&obj, "regime", part.regime.code())?;
        if let Some(t) = part.trigger_on {
            doc.put(
                &obj,
                "trigger",
                t.format(super::DATE).expect("dates format"),
            )?;
        }
    }
    match destroy_by {
        Some(d) => doc.put(
            ROOT,
            "destroy_by",
            d.format(super::DATE).expect("dates format"),
        )?,
        None => {
            if doc.get(ROOT, "destroy_by")?.is_some() {
                doc.delete(ROOT, "destroy_by")?;
            }
        }
    }
    Ok(())
}

/// Marks consent `id` in `record` withdrawn on `on` (R16); an earlier withdrawal stands.
/// Returns whether the consent exists.
pub fn write_withdrawal<D: Transactable + ReadDoc>(
    doc: &mut D,
    id: &str,
    on: time::Date,
) -> Result<bool, AutomergeError> {
    let Some(consents) = list(doc, &ROOT, "consents") else {
        return Ok(false);
    };
    let Some(obj) = items(doc, &consents)
        .into_iter()
        .find(|c| text(doc, c, "id").as_deref() == Some(id))
    else {
        return Ok(false);
    };
    if text(doc, &obj, "withdrawn_on").is_none_or(|d| d.is_empty()) {
        doc.put(
            &obj,
            "withdrawn_on",
            on.format(super::DATE).expect("dates format"),
        )?;
    }
    Ok(true)
}

/// The map at `key` of the root, created when missing.
fn map_at<D: Transactable + ReadDoc>(
    doc: &mut D,
    key: &str,
) -> Result<automerge::ObjId, AutomergeError> {
    match doc.get(ROOT, key)? {
        Some((automerge::Value::Object(ObjType::Map), id)) => Ok(id),
        _ => doc.put_object(ROOT, key, ObjType::Map),
    }
}

#[cfg(test)]
mod tests;
