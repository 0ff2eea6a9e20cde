//! Printable HTML pages of the reports, rendered on the server: one self-contained HTML5
//! document per report with print styles and no scripts. The pages are maud templates, which
//! escape every value spliced into them (`(value)`), in text and in attributes alike; the only
//! unescaped text is the fixed style sheet below.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{
    AccessLine, BreakGlassDetail, BreakGlassSummary, UnusualAccess, human_time, utc_rfc3339,
};
use crate::audit::Verification;

/// The print styles, fixed text (no data ever reaches it).
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#111}\
table{border-collapse:collapse;margin:0 0 1.5rem}\
th,td{border:1px solid #999;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#eee}td.n{text-align:right}\
.note{color:#444;font-size:.9rem}.alarm{color:#a00;font-weight:bold}\
@media print{body{margin:0}a{color:inherit}}";

/// What a missing value shows as.
const NONE: &str = "—";

fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (title) }
                (body)
            }
        }
    }
    .into_string()
}

/// A table with a header row, one row per item of `rows`, or a single "none" row.
fn table(head: &[&str], rows: Vec<Markup>) -> Markup {
    html! {
        table {
            thead { tr { @for h in head { th { (h) } } } }
            tbody {
                @if rows.is_empty() {
                    tr { td colspan=(head.len().max(1)) { "none" } }
                }
                @for row in rows { tr { (row) } }
            }
        }
    }
}

fn opt(v: Option<&str>) -> &str {
    v.unwrap_or(NONE)
}

fn period_note(month: &str, timezone: &str, off_hours: &str) -> Markup {
    html! {
        p.note { "Month " (month) " in " (timezone) " time. Off-hours: " (off_hours) "." }
    }
}

/// A note that a list is one page of a longer one, with the cursor of the next page.
fn more(listed: usize, total: u64, next: Option<&str>) -> Markup {
    html! {
        @if let Some(next) = next.filter(|_| (listed as u64) < total) {
            p.note {
                "This page lists " (listed) " of " (total) "; the next page has after=" (next) "."
            }
        }
    }
}

fn integrity(log: Option<&Verification>) -> Markup {
    html! {
        @match log {
            None => p.note {
                "This page continues the report; its first page says whether the audit log is \
                 intact."
            },
            Some(Verification { rows, first_broken_seq: None }) => p {
                "Audit log intact: " (rows) " rows verified."
            },
            Some(Verification { rows, first_broken_seq: Some(seq) }) => p.alarm {
                "The audit log is broken at row " (seq) " (" (rows) " rows before it verified): \
                 this report may be incomplete or altered. Treat it as a security incident."
            },
        }
    }
}

/// The manager's summary page: counts only.
pub fn summary_page(s: &BreakGlassSummary) -> String {
    let body = html! {
        (period_note(&s.month, s.timezone, s.off_hours_definition))
        p {
            "Team " (s.team) ": the glass was broken " (s.total) " times; " (s.off_hours)
            " of them off-hours; " (s.reads_under_grant) " documents were opened under these grants."
        }
        h2 { "Per reason category" }
        (table(
            &["category", "count"],
            s.by_category
                .iter()
                .map(|(c, n)| html! { td { (c.as_str()) } td { (n) } })
                .collect(),
        ))
        h2 { "Per week" }
        (table(
            &["ISO week", "count"],
            s.by_week
                .iter()
                .map(|w| html! { td { (w.week) } td { (w.count) } })
                .collect(),
        ))
        p.note {
            "This summary names no one and no dossier. The privacy officer holds the named detail."
        }
    };
    page(
        &format!("Break-glass summary, {} {}", s.team, s.month),
        body,
    )
}

/// The privacy officer's named detail page.
pub fn detail_page(d: &BreakGlassDetail) -> String {
    let rows = d
        .uses
        .iter()
        .map(|l| {
            let g = &l.grant;
            html! {
                td { (human_time(g.at)) }
                td { (l.week) }
                td { @if l.off_hours { "yes" } @else { "no" } }
                td { (g.user) }
                td { (g.dossier) }
                td { (g.category.as_str()) }
                td { (opt(g.reason.as_deref())) }
                td {
                    @match g.expires_at {
                        Some(t) => (human_time(t)),
                        None => (NONE),
                    }
                }
                td {
                    @for (i, r) in g.reads.iter().enumerate() {
                        @if i > 0 { br; }
                        (human_time(r.at)) " " (opt(r.document.as_deref()))
                    }
                    @if g.reads.is_empty() { (NONE) }
                }
            }
        })
        .collect();
    let body = html! {
        (period_note(&d.month, d.timezone, d.off_hours_definition))
        (integrity(d.log.as_ref()))
        p { "Team " (d.team) ": " (d.total) " uses." }
        (more(d.uses.len(), d.total as u64, d.next.as_deref()))
        (table(
            &[
                "when",
                "week",
                "off-hours",
                "user",
                "dossier",
                "category",
                "reason",
                "ended",
                "documents opened",
            ],
            rows,
        ))
    };
    page(&format!("Break-glass detail, {} {}", d.team, d.month), body)
}

fn access_rows(lines: &[AccessLine]) -> Vec<Markup> {
    lines
        .iter()
        .map(|l| {
            html! {
                td { (human_time(l.at)) }
                td { (l.user) }
                td { (l.role) }
                td { (opt(l.team.as_deref())) }
                td { (opt(l.dossier.as_deref())) }
                td { (opt(l.document.as_deref())) }
                td { (l.action) }
                td { (opt(l.basis.as_deref())) }
                td { (l.outcome) }
            }
        })
        .collect()
}

const ACCESS_HEAD: [&str; 9] = [
    "when", "user", "role", "team", "dossier", "document", "action", "basis", "outcome",
];

/// The privacy officer's unusual-access page.
pub fn unusual_page(u: &UnusualAccess) -> String {
    let bursts = u
        .bursts
        .iter()
        .flatten()
        .map(|b| {
            html! {
                td { (b.user) }
                td { (b.role) }
                td { (human_time(b.from)) }
                td { (human_time(b.to)) }
                td { (b.dossiers) }
            }
        })
        .collect();
    let off_hours = u
        .off_hours
        .iter()
        .flatten()
        .map(|o| {
            html! {
                td { (o.user) }
                td { (o.role) }
                td { (o.accesses) }
                td { (o.dossiers) }
                td { (utc_rfc3339(o.first)) }
                td { (utc_rfc3339(o.last)) }
            }
        })
        .collect();
    let body = html! {
        (period_note(&u.month, u.timezone, u.off_hours_definition))
        (integrity(u.log.as_ref()))
        h2 { "Reads on an emergency grant" }
        (more(u.emergency_reads.len(), u.emergency_reads_total, u.next.as_deref()))
        (table(&ACCESS_HEAD, access_rows(&u.emergency_reads)))
        h2 { "Refused attempts" }
        (more(u.refused.len(), u.refused_total, u.next.as_deref()))
        (table(&ACCESS_HEAD, access_rows(&u.refused)))
        h2 { "Many dossiers within an hour (at least " (u.burst_threshold) ")" }
        (table(&["user", "role", "from", "to", "dossiers"], bursts))
        h2 { "Off-hours access by professionals" }
        (table(
            &["user", "role", "accesses", "dossiers", "first (UTC)", "last (UTC)"],
            off_hours,
        ))
    };
    page(&format!("Unusual access, {}", u.month), body)
}
