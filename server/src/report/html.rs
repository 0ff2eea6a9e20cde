//! Printable HTML pages of the reports, rendered on the server: one self-contained HTML5
//! document per report with print styles and no scripts. Every value that comes from data is
//! escaped with [`escape`]; the markup itself is fixed text.

use std::fmt::Write;

use super::{
    AccessLine, BreakGlassDetail, BreakGlassSummary, UnusualAccess, human_time, utc_rfc3339,
};
use crate::audit::Verification;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#111}\
table{border-collapse:collapse;margin:0 0 1.5rem}\
th,td{border:1px solid #999;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#eee}td.n{text-align:right}\
.note{color:#444;font-size:.9rem}.alarm{color:#a00;font-weight:bold}\
@media print{body{margin:0}a{color:inherit}}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n{body}</body>\n</html>\n",
        title = escape(title),
    )
}

/// A table with a header row; cells are already escaped.
fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table>\n<thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "<tr><td colspan=\"{}\">none</td></tr>",
            head.len().max(1)
        );
    }
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn opt(v: Option<&str>) -> String {
    escape(v.unwrap_or("—"))
}

fn period_note(month: &str, timezone: &str, off_hours: &str) -> String {
    format!(
        "<p class=\"note\">Month {} in {} time. Off-hours: {}.</p>\n",
        escape(month),
        escape(timezone),
        escape(off_hours)
    )
}

/// A note that a list is one page of a longer one, with the cursor of the next page.
fn more(listed: usize, total: u64, next: Option<&str>) -> String {
    match next {
        Some(next) if (listed as u64) < total => format!(
            "<p class=\"note\">This page lists {listed} of {total}; the next page has \
             after={}.</p>\n",
            escape(next)
        ),
        _ => String::new(),
    }
}

fn integrity(log: Option<&Verification>) -> String {
    let Some(log) = log else {
        return "<p class=\"note\">This page continues the report; its first page says whether \
                the audit log is intact.</p>\n"
            .to_owned();
    };
    match log.first_broken_seq {
        None => format!("<p>Audit log intact: {} rows verified.</p>\n", log.rows),
        Some(seq) => format!(
            "<p class=\"alarm\">The audit log is broken at row {seq} ({} rows before it \
             verified): this report may be incomplete or altered. Treat it as a security \
             incident.</p>\n",
            log.rows
        ),
    }
}

/// The manager's summary page: counts only.
pub fn summary_page(s: &BreakGlassSummary) -> String {
    let mut body = period_note(&s.month, s.timezone, s.off_hours_definition);
    let _ = writeln!(
        body,
        "<p>Team {}: the glass was broken {} times; {} of them off-hours; {} documents were \
         opened under these grants.</p>",
        escape(&s.team),
        s.total,
        s.off_hours,
        s.reads_under_grant
    );
    body.push_str("<h2>Per reason category</h2>\n");
    let rows: Vec<Vec<String>> = s
        .by_category
        .iter()
        .map(|(c, n)| vec![escape(c.as_str()), n.to_string()])
        .collect();
    body.push_str(&table(&["category", "count"], &rows));
    body.push_str("<h2>Per week</h2>\n");
    let rows: Vec<Vec<String>> = s
        .by_week
        .iter()
        .map(|w| vec![escape(&w.week), w.count.to_string()])
        .collect();
    body.push_str(&table(&["ISO week", "count"], &rows));
    body.push_str(
        "<p class=\"note\">This summary names no one and no dossier. The privacy officer holds \
         the named detail.</p>\n",
    );
    page(
        &format!("Break-glass summary, {} {}", s.team, s.month),
        &body,
    )
}

/// The privacy officer's named detail page.
pub fn detail_page(d: &BreakGlassDetail) -> String {
    let mut body = period_note(&d.month, d.timezone, d.off_hours_definition);
    body.push_str(&integrity(d.log.as_ref()));
    let _ = writeln!(body, "<p>Team {}: {} uses.</p>", escape(&d.team), d.total);
    body.push_str(&more(d.uses.len(), d.total as u64, d.next.as_deref()));
    let rows: Vec<Vec<String>> = d
        .uses
        .iter()
        .map(|l| {
            let g = &l.grant;
            let reads = g
                .reads
                .iter()
                .map(|r| {
                    format!(
                        "{} {}",
                        escape(&human_time(r.at)),
                        opt(r.document.as_deref())
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>");
            vec![
                escape(&human_time(g.at)),
                escape(&l.week),
                if l.off_hours { "yes" } else { "no" }.into(),
                escape(&g.user),
                escape(&g.dossier),
                escape(g.category.as_str()),
                opt(g.reason.as_deref()),
                g.expires_at
                    .map_or_else(|| "—".into(), |t| escape(&human_time(t))),
                if reads.is_empty() {
                    "—".into()
                } else {
                    reads
                },
            ]
        })
        .collect();
    body.push_str(&table(
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
        &rows,
    ));
    page(
        &format!("Break-glass detail, {} {}", d.team, d.month),
        &body,
    )
}

fn access_rows(lines: &[AccessLine]) -> Vec<Vec<String>> {
    lines
        .iter()
        .map(|l| {
            vec![
                escape(&human_time(l.at)),
                escape(&l.user),
                escape(&l.role),
                opt(l.team.as_deref()),
                opt(l.dossier.as_deref()),
                opt(l.document.as_deref()),
                escape(&l.action),
                opt(l.basis.as_deref()),
                escape(&l.outcome),
            ]
        })
        .collect()
}

const ACCESS_HEAD: [&str; 9] = [
    "when", "user", "role", "team", "dossier", "document", "action", "basis", "outcome",
];

/// The privacy officer's unusual-access page.
pub fn unusual_page(u: &UnusualAccess) -> String {
    let mut body = period_note(&u.month, u.timezone, u.off_hours_definition);
    body.push_str(&integrity(u.log.as_ref()));
    body.push_str("<h2>Reads on an emergency grant</h2>\n");
    body.push_str(&more(
        u.emergency_reads.len(),
        u.emergency_reads_total,
        u.next.as_deref(),
    ));
    body.push_str(&table(&ACCESS_HEAD, &access_rows(&u.emergency_reads)));
    body.push_str("<h2>Refused attempts</h2>\n");
    body.push_str(&more(u.refused.len(), u.refused_total, u.next.as_deref()));
    body.push_str(&table(&ACCESS_HEAD, &access_rows(&u.refused)));
    let _ = writeln!(
        body,
        "<h2>Many dossiers within an hour (at least {})</h2>",
        u.burst_threshold
    );
    let rows: Vec<Vec<String>> = u
        .bursts
        .iter()
        .flatten()
        .map(|b| {
            vec![
                escape(&b.user),
                escape(&b.role),
                escape(&human_time(b.from)),
                escape(&human_time(b.to)),
                b.dossiers.to_string(),
            ]
        })
        .collect();
    body.push_str(&table(&["user", "role", "from", "to", "dossiers"], &rows));
    body.push_str("<h2>Off-hours access by professionals</h2>\n");
    let rows: Vec<Vec<String>> = u
        .off_hours
        .iter()
        .flatten()
        .map(|o| {
            vec![
                escape(&o.user),
                escape(&o.role),
                o.accesses.to_string(),
                o.dossiers.to_string(),
                escape(&utc_rfc3339(o.first)),
                escape(&utc_rfc3339(o.last)),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "user",
            "role",
            "accesses",
            "dossiers",
            "first (UTC)",
            "last (UTC)",
        ],
        &rows,
    ));
    page(&format!("Unusual access, {}", u.month), &body)
}
