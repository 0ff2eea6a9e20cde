//! The council's accountability report (R27): for a period, aggregated counts — dossiers
//! opened and closed, break-glass uses, rights requests and whether they were answered in time,
//! triage decisions discussed with residents, shares by ground — and no personal data: no
//! names, no ids, no team smaller than the whole. Every count below the configured threshold
//! (default 5) is published only as `"< 5"` ([`Count`]), because a small count can point at
//! one person. Counted from the audit log, the rights register and the `record` documents'
//! triage records; the pure part is here, the reading in the handler.

use std::collections::BTreeMap;

use maud::{DOCTYPE, PreEscaped, html};
use regie_core::rights::{self, RightKind};
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::{AuditAction, AuditEvent};
use crate::report::{Count, Period};
use crate::storage::rights::RightsRequestRow;

/// The report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CouncilReport {
    /// The first day, `YYYY-MM-DD` (Europe/Amsterdam), if bounded.
    #[schema(format = Date)]
    pub from: Option<String>,
    /// The last day, inclusive, if bounded.
    #[schema(format = Date)]
    pub to: Option<String>,
    /// Counts below this are shown as `"< N"`.
    pub threshold: usize,
    /// Dossiers opened in the period.
    pub dossiers_opened: Count,
    /// Dossiers closed in the period (R18).
    pub dossiers_closed: Count,
    /// Times the glass was broken (R2).
    pub break_glass_uses: Count,
    /// Shares with chain partners and the back office, by ground: `consent`, `four_eyes`
    /// (without consent, R17), `application` (a maatwerk request, R6).
    pub shares_by_ground: BTreeMap<String, Count>,
    /// Triage decisions recorded in the period (R12), and how many were discussed with the
    /// resident.
    pub triage_decisions: Count,
    /// Of which discussed with the resident.
    pub triage_discussed_with_resident: Count,
    /// Rights requests received in the period, by right.
    pub rights_requests: BTreeMap<RightKind, Count>,
    /// Of the requests received in the period: answered by their deadline.
    pub rights_answered_in_time: Count,
    /// Answered after their deadline.
    pub rights_answered_late: Count,
    /// Not answered, and past their deadline at the end of the period.
    pub rights_open_overdue: Count,
    /// Refusals escalated (R22).
    pub rights_escalated: Count,
    /// Data breaches discovered in the period (R24).
    pub breaches: Count,
}

/// What is counted before suppression.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Dossiers opened.
    pub opened: usize,
    /// Dossiers closed.
    pub closed: usize,
    /// Break-glass uses.
    pub break_glass: usize,
    /// Shares by ground.
    pub shares: BTreeMap<String, usize>,
    /// Triage decisions.
    pub triage: usize,
    /// Of which discussed.
    pub discussed: usize,
    /// Requests by right.
    pub requests: BTreeMap<RightKind, usize>,
    /// Answered in time.
    pub in_time: usize,
    /// Answered late.
    pub late: usize,
    /// Open past the deadline.
    pub open_overdue: usize,
    /// Escalated.
    pub escalated: usize,
    /// Breaches discovered.
    pub breaches: usize,
}

impl Tally {
    /// Counts one audit row of the period.
    pub fn audit(&mut self, e: &AuditEvent) {
        let detail = e.detail.as_deref().unwrap_or("");
        match e.kind() {
            Some(AuditAction::Create) if e.dossier.is_some() => self.opened += 1,
            Some(AuditAction::BreakGlass) if e.outcome == "allowed" => self.break_glass += 1,
            Some(AuditAction::Relate) => {
                let ground = if detail.starts_with("closed on triage") {
                    self.closed += 1;
                    None
                } else if detail.starts_with("shared with partner:") {
                    Some(if detail.ends_with("(four eyes)") {
                        "four_eyes"
                    } else {
                        "consent"
                    })
                } else if detail.starts_with("created maatwerk/") {
                    Some("application")
                } else {
                    None
                };
                if let Some(g) = ground {
                    *self.shares.entry(g.to_owned()).or_default() += 1;
                }
            }
            _ => {}
        }
    }

    /// Counts the requests received in the period; `last_day` is the period's last day (or
    /// today, if earlier), when an open request counts as overdue.
    pub fn requests(
        &mut self,
        rows: &[RightsRequestRow],
        first_day: Option<jiff::civil::Date>,
        last_day: jiff::civil::Date,
    ) {
        for r in rows {
            let Some(received) = rights::parse_date(&r.received_on) else {
                continue;
            };
            if first_day.is_some_and(|f| received < f) || received > last_day {
                continue;
            }
            *self.requests.entry(r.kind).or_default() += 1;
            let deadline = rights::parse_date(&r.deadline).unwrap_or(jiff::civil::Date::MAX);
            match r.decision.as_ref().and_then(|d| rights::parse_date(&d.on)) {
                Some(on) if on <= deadline => self.in_time += 1,
                Some(_) => self.late += 1,
                None if last_day > deadline => self.open_overdue += 1,
                None => {}
            }
            if !r.escalations.is_empty() {
                self.escalated += 1;
            }
        }
    }

    /// The report, every count below `threshold` suppressed.
    pub fn publish(
        &self,
        period: (Option<String>, Option<String>),
        threshold: usize,
    ) -> CouncilReport {
        let c = |n: usize| Count::of(n, threshold);
        let mut shares: BTreeMap<String, Count> = ["application", "consent", "four_eyes"]
            .iter()
            .map(|g| ((*g).to_owned(), c(0)))
            .collect();
        for (g, n) in &self.shares {
            shares.insert(g.clone(), c(*n));
        }
        CouncilReport {
            from: period.0,
            to: period.1,
            threshold,
            dossiers_opened: c(self.opened),
            dossiers_closed: c(self.closed),
            break_glass_uses: c(self.break_glass),
            shares_by_ground: shares,
            triage_decisions: c(self.triage),
            triage_discussed_with_resident: c(self.discussed),
            rights_requests: RightKind::ALL
                .iter()
                .map(|k| (*k, c(self.requests.get(k).copied().unwrap_or(0))))
                .collect(),
            rights_answered_in_time: c(self.in_time),
            rights_answered_late: c(self.late),
            rights_open_overdue: c(self.open_overdue),
            rights_escalated: c(self.escalated),
            breaches: c(self.breaches),
        }
    }
}

/// Whether a triage record's `at` (milliseconds since the epoch) lies in `period`.
pub fn in_period(at_millis: i64, period: Period) -> bool {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_millis) * 1_000_000)
        .is_ok_and(|at| period.contains(at))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#111}\
table{border-collapse:collapse;margin:0 0 1.5rem}\
th,td{border:1px solid #999;padding:.25rem .5rem;text-align:left}td.n{text-align:right}\
th{background:#eee}.note{color:#444;font-size:.9rem}@media print{body{margin:0}}";

/// The report as a printable Dutch page.
pub fn html_page(r: &CouncilReport) -> String {
    let row = |label: &str, n: &Count| html! { tr { td { (label) } td.n { (n) } } };
    let rights_label = |k: &RightKind| k.label_nl();
    html! {
        (DOCTYPE)
        html lang="nl" {
            head {
                meta charset="utf-8";
                title { "Verantwoording aan de gemeenteraad" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Verantwoording aan de gemeenteraad" }
                p.note {
                    "Periode " (r.from.as_deref().unwrap_or("begin")) " t/m " (r.to.as_deref().unwrap_or("nu"))
                    " (Europe/Amsterdam). Alleen tellingen, geen persoonsgegevens; aantallen onder "
                    (r.threshold) " worden getoond als \u{201c}< " (r.threshold) "\u{201d}."
                }
                table {
                    thead { tr { th { "Onderwerp" } th { "Aantal" } } }
                    tbody {
                        (row("Dossiers geopend", &r.dossiers_opened))
                        (row("Dossiers gesloten", &r.dossiers_closed))
                        (row("Noodtoegang (break-the-glass)", &r.break_glass_uses))
                        (row("Triagebesluiten", &r.triage_decisions))
                        (row("waarvan besproken met de bewoner", &r.triage_discussed_with_resident))
                        @for (g, n) in &r.shares_by_ground {
                            (row(&format!("Gedeeld op grond van {}", match g.as_str() {
                                "consent" => "toestemming",
                                "four_eyes" => "afweging zonder toestemming (vier ogen)",
                                _ => "aanvraag maatwerkvoorziening",
                            }), n))
                        }
                        @for (k, n) in &r.rights_requests {
                            (row(&format!("Verzoeken {}", rights_label(k)), n))
                        }
                        (row("Verzoeken op tijd beantwoord", &r.rights_answered_in_time))
                        (row("Verzoeken te laat beantwoord", &r.rights_answered_late))
                        (row("Verzoeken open na de termijn", &r.rights_open_overdue))
                        (row("Afwijzingen waartegen bezwaar is gemaakt", &r.rights_escalated))
                        (row("Datalekken", &r.breaches))
                    }
                }
            }
        }
    }
    .into_string()
}

/// The triage decisions of one `record` recorded in `period` (those with a time), and how many
/// of them were discussed with the resident.
pub fn triage_counts(record: &automerge::Automerge, period: Period) -> (usize, usize) {
    use automerge::{ROOT, ReadDoc, ScalarValue, Value};
    let Ok(Some((Value::Object(_), list))) = record.get(ROOT, "triage") else {
        return (0, 0);
    };
    let (mut total, mut discussed) = (0, 0);
    for i in 0..record.length(&list) {
        let Ok(Some((Value::Object(_), t))) = record.get(&list, i) else {
            continue;
        };
        let at = match record.get(&t, "at") {
            Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Timestamp(ms) | ScalarValue::Int(ms) => Some(*ms),
                _ => None,
            },
            _ => None,
        };
        if !at.is_some_and(|ms| in_period(ms, period)) {
            continue;
        }
        total += 1;
        if let Ok(Some((Value::Scalar(s), _))) = record.get(&t, "discussed_with_resident")
            && matches!(s.as_ref(), ScalarValue::Boolean(true))
        {
            discussed += 1;
        }
    }
    (total, discussed)
}
