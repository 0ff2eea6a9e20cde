//! The R19 copy: everything Regie holds about one person of one dossier, and nothing about the
//! other members of the household. It is assembled from the sources themselves — the `record`
//! entries whose subjects include the person (work notes too) with the person's own eigen
//! verklaringen, the household's plan the person co-edits (R8), the maatwerk extracts the person
//! applied for, the partner shares about them with their grounds, the consents concerning them,
//! their rights requests and the access log about them — as JSON with a documented schema
//! ([`PersonExport`], in the OpenAPI document) or as a printable Dutch HTML page. Who may take
//! it is the policy's `ExerciseRight` (R16's ages); every copy is audited as an export before
//! it leaves.

use automerge::{Automerge, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use regie_core::id::{DocumentKey, DossierId, PersonId};
use regie_core::principal::Principal;
use regie_core::projection;
use regie_core::share;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::audit::{AuditAction, AuditEvent};
use crate::domain::DomainError;
use crate::hub::Hub;
use crate::report::{self, LookLine, Period};
use crate::rights::{RequestView, local_day, right_standing};
use crate::storage::AuditQuery;
use crate::storage::rights::RightsQuery;

/// The version of the export's schema.
pub const SCHEMA: &str = "regie.person-export.v1";

/// A complete copy of one person's data in one dossier (R19).
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonExport {
    /// `regie.person-export.v1`.
    #[schema(value_type = String, example = "regie.person-export.v1")]
    pub schema: &'static str,
    /// When it was made, RFC 3339 UTC.
    pub generated_at: String,
    /// The dossier.
    pub dossier: DossierId,
    /// The person as recorded.
    pub person: ExportPerson,
    /// The record's entries whose subjects include the person, facts and opinions marked as
    /// such, work notes included, each with the person's own statements (eigen verklaringen).
    pub entries: Vec<ExportEntry>,
    /// The household's plan, which the person co-edits (R8), as a JSON tree.
    #[schema(value_type = Object)]
    pub plan: serde_json::Value,
    /// The maatwerk extracts the person applied for (R6), each as a JSON tree.
    pub maatwerk: Vec<ExportMaatwerk>,
    /// The shares with chain partners about the person, with their grounds (R5, R16, R17).
    pub shares: Vec<ExportShare>,
    /// The consents concerning the person (R16).
    pub consents: Vec<ExportConsent>,
    /// The person's rights requests in this dossier.
    pub rights_requests: Vec<RequestView>,
    /// Who accessed the person's data, oldest first (R9).
    pub access_log: Vec<LookLine>,
}

/// The person as `meta` records them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportPerson {
    /// Their id.
    pub id: PersonId,
    /// Their name.
    pub name: String,
    /// Their birth date.
    #[schema(format = Date)]
    pub birth_date: Option<String>,
    /// Who holds parental authority over them (person ids).
    pub gezag: Vec<PersonId>,
}

/// One record entry about the person.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportEntry {
    /// The entry's id.
    pub id: String,
    /// `fact` or `opinion` (R14).
    pub kind: String,
    /// `analysis`, `conversation` or `work_note`.
    pub category: String,
    /// The text.
    pub text: String,
    /// When it was recorded.
    pub at: Option<String>,
    /// The person's own statements on it.
    pub statements: Vec<String>,
}

/// A maatwerk extract the person applied for.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportMaatwerk {
    /// Its number.
    pub n: u32,
    /// Its content.
    #[schema(value_type = Object)]
    pub extract: serde_json::Value,
}

/// A share with a chain partner about the person.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportShare {
    /// The partner.
    pub partner: String,
    /// `consent` or `four_eyes` (shared without consent after a weighing, R17).
    pub ground: String,
    /// Why.
    pub purpose: String,
    /// Which items.
    pub items: Vec<String>,
    /// When it ended, if it did.
    pub ended_at: Option<String>,
    /// Why it ended.
    pub ended_because: Option<String>,
}

/// A consent concerning the person.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportConsent {
    /// Who gave it (the person, or a parent with authority).
    pub given_by: PersonId,
    /// To whom.
    pub recipient: String,
    /// For what.
    pub purpose: String,
    /// Which items.
    pub items: Vec<String>,
    /// When.
    #[schema(format = Date)]
    pub given_on: String,
    /// Until when.
    #[schema(format = Date)]
    pub expires_on: Option<String>,
    /// Withdrawn on.
    #[schema(format = Date)]
    pub withdrawn_on: Option<String>,
}

/// A document as a JSON tree (maps, lists, text, scalars).
fn to_json(doc: &Automerge, obj: &ObjId, ty: ObjType) -> serde_json::Value {
    use serde_json::Value as J;
    let value = |v: Value<'_>, id: ObjId| match v {
        Value::Object(t) => to_json(doc, &id, t),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => J::String(s.to_string()),
            ScalarValue::Int(i) => J::from(*i),
            ScalarValue::Uint(u) => J::from(*u),
            ScalarValue::F64(f) => J::from(*f),
            ScalarValue::Boolean(b) => J::Bool(*b),
            ScalarValue::Timestamp(t) => J::from(*t),
            ScalarValue::Counter(_) => s.as_i64().map_or(J::Null, J::from),
            ScalarValue::Null | ScalarValue::Bytes(_) | ScalarValue::Unknown { .. } => J::Null,
        },
    };
    match ty {
        ObjType::Text => J::String(doc.text(obj).unwrap_or_default()),
        ObjType::List => J::Array(
            (0..doc.length(obj))
                .filter_map(|i| doc.get(obj, i).ok().flatten())
                .map(|(v, id)| value(v, id))
                .collect(),
        ),
        ObjType::Map | ObjType::Table => J::Object(
            doc.keys(obj)
                .filter_map(|k| {
                    let (v, id) = doc.get(obj, k.as_str()).ok().flatten()?;
                    Some((k, value(v, id)))
                })
                .collect(),
        ),
    }
}

/// Makes the R19 copy of `person` in `dossier` for `who` (the person from 12, a parent with
/// authority for a child under 16, or an assigned worker to hand it over), audited as an export.
pub async fn export(
    hub: &Hub,
    who: &Principal,
    dossier: DossierId,
    person: &PersonId,
    show_worker_names: bool,
    at: OffsetDateTime,
) -> Result<PersonExport, DomainError> {
    let (entry, record) = right_standing(hub, who, dossier, person, at).await?;
    // I3: on record before anything leaves.
    let mut ev = AuditEvent::new(
        at,
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::Export,
    );
    ev.dossier = Some(dossier.to_string());
    ev.persons = Some(person.to_string());
    ev.detail = Some("r19 person export".into());
    hub.store().append_audit(&ev).await?;
    let doc = |key: DocumentKey| {
        let id = entry.documents.get(&key).copied();
        async move {
            match id {
                Some(id) => hub.snapshot(id).await,
                None => Ok(None),
            }
        }
    };
    let mut entries = Vec::new();
    let mut consents = Vec::new();
    if let Some(rec) = doc(DocumentKey::Record).await? {
        for id in projection::entries_concerning(&rec, person) {
            if let Some(e) = projection::view_entry(&rec, &id, person) {
                entries.push(ExportEntry {
                    id: e.id,
                    kind: e.kind,
                    category: e.category,
                    text: e.text,
                    at: e.at,
                    statements: e.statements,
                });
            }
        }
        let date = |d: Option<time::Date>| d.map(|d| d.to_string());
        for c in share::consents(&rec)
            .into_iter()
            .filter(|c| &c.concerning == person)
        {
            consents.push(ExportConsent {
                given_by: c.given_by,
                recipient: c.recipient.to_string(),
                purpose: c.purpose,
                items: c.items.into_iter().collect(),
                given_on: c.given_on.to_string(),
                expires_on: date(c.expires_on),
                withdrawn_on: date(c.withdrawn_on),
            });
        }
    }
    let plan = match doc(DocumentKey::Plan).await? {
        Some(p) => to_json(&p, &automerge::ROOT, ObjType::Map),
        None => serde_json::Value::Null,
    };
    let mut maatwerk = Vec::new();
    for (n, applicant) in &entry.rel.applicants {
        if applicant != person {
            continue;
        }
        if let Some(m) = doc(DocumentKey::Maatwerk(*n)).await? {
            maatwerk.push(ExportMaatwerk {
                n: *n,
                extract: to_json(&m, &automerge::ROOT, ObjType::Map),
            });
        }
    }
    let shares = hub
        .store()
        .partner_shares(dossier)
        .await?
        .into_iter()
        .filter(|s| s.subjects.iter().any(|p| p == person.as_str()))
        .map(|s| ExportShare {
            partner: s.org,
            ground: s.ground,
            purpose: s.purpose,
            items: s.items,
            ended_at: s.ended_at,
            ended_because: s.ended_because,
        })
        .collect();
    let today = local_day(at);
    let rights_requests = hub
        .store()
        .rights_requests(RightsQuery::Dossiers(&[dossier]))
        .await?
        .iter()
        .filter(|r| &r.subject == person)
        .map(|r| RequestView::of(r, today))
        .collect();
    let query = AuditQuery {
        actions: vec!["open", "read", "write", "export", "break_glass"],
        dossiers: Some(vec![dossier]),
        not_actors: vec!["server".into()],
        person: Some(person.to_string()),
        ..AuditQuery::default()
    };
    let everything = Period {
        from: None,
        to: None,
    };
    let mut access_log = Vec::new();
    hub.store()
        .scan_audit(&query, |_, e| {
            // No user is left out: the copy shows the person's own accesses too.
            if let Some(line) =
                report::look_line(e, person.as_str(), "", everything, show_worker_names)
            {
                access_log.push(line);
            }
        })
        .await?;
    Ok(PersonExport {
        schema: SCHEMA,
        generated_at: report::utc_rfc3339(at),
        dossier,
        person: ExportPerson {
            id: record.id,
            name: record.name,
            birth_date: record.birth_date,
            gezag: record.gezag,
        },
        entries,
        plan,
        maatwerk,
        shares,
        consents,
        rights_requests,
        access_log,
    })
}

/// The print styles, fixed text (no data ever reaches it).
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#111;max-width:60rem}\
table{border-collapse:collapse;margin:0 0 1.5rem;width:100%}\
th,td{border:1px solid #999;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#eee}.note{color:#444;font-size:.9rem}pre{white-space:pre-wrap}\
section{break-inside:avoid-page}\
@media print{body{margin:0;max-width:none}h2{break-after:avoid}}";

fn table(head: &[&str], rows: Vec<Markup>) -> Markup {
    html! {
        table {
            thead { tr { @for h in head { th { (h) } } } }
            tbody {
                @if rows.is_empty() {
                    tr { td colspan=(head.len()) { "geen" } }
                }
                @for row in rows { tr { (row) } }
            }
        }
    }
}

fn opt(v: Option<&str>) -> &str {
    v.unwrap_or("—")
}

/// The copy as a printable Dutch page; maud escapes every value spliced into it.
pub fn html_page(e: &PersonExport) -> String {
    let json = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    html! {
        (DOCTYPE)
        html lang="nl" {
            head {
                meta charset="utf-8";
                title { "Uw gegevens: " (e.person.name) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Uw gegevens bij het wijkteam" }
                p.note {
                    "Kopie volgens artikel 15 AVG van alles wat over " (e.person.name)
                    " is vastgelegd in dossier " (e.dossier.to_string()) ", gemaakt op "
                    (e.generated_at) " (UTC). Gegevens over andere gezinsleden staan hier niet in."
                }
                section {
                    h2 { "Persoonsgegevens" }
                    (table(&["Naam", "Geboortedatum", "Gezag bij"], vec![html! {
                        td { (e.person.name) }
                        td { (opt(e.person.birth_date.as_deref())) }
                        td { (e.person.gezag.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")) }
                    }]))
                }
                section {
                    h2 { "Wat er over u is vastgelegd" }
                    (table(&["Soort", "Categorie", "Tekst", "Datum", "Uw eigen verklaring"], e.entries.iter().map(|en| html! {
                        td { (if en.kind == "fact" { "feit" } else { "mening" }) }
                        td { (match en.category.as_str() { "work_note" => "werkaantekening", "conversation" => "gespreksverslag", _ => "analyse" }) }
                        td { (en.text) }
                        td { (opt(en.at.as_deref())) }
                        td { @for s in &en.statements { p { (s) } } }
                    }).collect()))
                }
                section {
                    h2 { "Het plan van uw huishouden" }
                    pre { (json(&e.plan)) }
                }
                section {
                    h2 { "Aanvragen maatwerkvoorziening" }
                    @if e.maatwerk.is_empty() { p { "geen" } }
                    @for m in &e.maatwerk {
                        h3 { "Aanvraag " (m.n) }
                        pre { (json(&m.extract)) }
                    }
                }
                section {
                    h2 { "Gedeeld met ketenpartners" }
                    (table(&["Partner", "Grondslag", "Doel", "Gegevens", "Beëindigd"], e.shares.iter().map(|s| html! {
                        td { (s.partner) }
                        td { (if s.ground == "consent" { "toestemming" } else { "zonder toestemming, na afweging door twee professionals" }) }
                        td { (s.purpose) }
                        td { (s.items.join(", ")) }
                        td { (opt(s.ended_at.as_deref())) }
                    }).collect()))
                }
                section {
                    h2 { "Toestemmingen" }
                    (table(&["Gegeven door", "Aan", "Doel", "Gegevens", "Op", "Tot", "Ingetrokken"], e.consents.iter().map(|c| html! {
                        td { (c.given_by.as_str()) }
                        td { (c.recipient) }
                        td { (c.purpose) }
                        td { (c.items.join(", ")) }
                        td { (c.given_on) }
                        td { (opt(c.expires_on.as_deref())) }
                        td { (opt(c.withdrawn_on.as_deref())) }
                    }).collect()))
                }
                section {
                    h2 { "Uw verzoeken" }
                    (table(&["Recht", "Ontvangen", "Uiterlijk", "Stand"], e.rights_requests.iter().map(|r| html! {
                        td { (r.kind_label) }
                        td { (r.received_on) }
                        td { (r.deadline) }
                        td { (r.status_label) }
                    }).collect()))
                }
                section {
                    h2 { "Wie uw gegevens heeft ingezien" }
                    (table(&["Datum", "Organisatie", "Rol", "Handeling", "Document", "Noodtoegang"], e.access_log.iter().map(|l| html! {
                        td { (l.date) }
                        td { (l.organisation) }
                        td { (l.role) }
                        td { (l.action) }
                        td { (opt(l.document.as_deref())) }
                        td { (if l.emergency { "ja" } else { "nee" }) }
                    }).collect()))
                }
            }
        }
    }
    .into_string()
}
