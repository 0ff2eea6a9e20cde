//! The report computations as tables: Amsterdam time across both summer-time switches, the
//! off-hours edges, ISO weeks at month and year ends, and the reports over hand-made events.

use std::collections::HashMap;

use regie_core::relationship::Grant;
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};

use super::html::{detail_page, summary_page, unusual_page};
use super::*;
use crate::audit::{AuditAction, AuditEvent, Verification};

#[test]
fn amsterdam_switches_to_summer_time_at_one_utc_on_the_last_sunday_of_march_and_back_in_october() {
    let hours = |t: OffsetDateTime| amsterdam_offset(t).whole_hours();
    assert_eq!(hours(datetime!(2024-03-31 00:59:59 UTC)), 1);
    assert_eq!(hours(datetime!(2024-03-31 01:00:00 UTC)), 2);
    assert_eq!(hours(datetime!(2024-10-27 00:59:59 UTC)), 2);
    assert_eq!(hours(datetime!(2024-10-27 01:00:00 UTC)), 1);
    assert_eq!(hours(datetime!(2025-03-30 01:00:00 UTC)), 2);
    assert_eq!(hours(datetime!(2025-03-29 12:00:00 UTC)), 1);
    assert_eq!(hours(datetime!(2024-01-15 12:00:00 +05:00)), 1);
}

/// The clock changes of 2026 (last Sundays of March and October, 29 March and 25 October) as
/// the database has them: 02:00 CET becomes 03:00 CEST at 01:00 UTC, and 03:00 CEST becomes
/// 02:00 CET at 01:00 UTC, so 02:xx is skipped in March and happens twice in October.
#[test]
fn the_2026_clock_changes_skip_two_oclock_in_march_and_repeat_it_in_october() {
    let wall = |t: OffsetDateTime| {
        let l = to_local(t);
        (
            l.date().to_string(),
            l.hour(),
            l.minute(),
            l.second(),
            l.offset().whole_hours(),
        )
    };
    let day = |d: &str| d.to_owned();
    // March: 01:59:59 CET is followed by 03:00:00 CEST.
    assert_eq!(
        wall(datetime!(2026-03-29 00:59:59 UTC)),
        (day("2026-03-29"), 1, 59, 59, 1)
    );
    assert_eq!(
        wall(datetime!(2026-03-29 01:00:00 UTC)),
        (day("2026-03-29"), 3, 0, 0, 2)
    );
    // 02:00 local never shows: no instant of that night has hour 2.
    let mut t = datetime!(2026-03-28 23:00 UTC);
    while t < datetime!(2026-03-29 03:00 UTC) {
        assert_ne!(to_local(t).hour(), 2, "{t}");
        t += Duration::minutes(1);
    }
    // October: 02:59:59 CEST is followed by 02:00:00 CET; 02:30 happens at 00:30 and 01:30 UTC.
    assert_eq!(
        wall(datetime!(2026-10-25 00:59:59 UTC)),
        (day("2026-10-25"), 2, 59, 59, 2)
    );
    assert_eq!(
        wall(datetime!(2026-10-25 01:00:00 UTC)),
        (day("2026-10-25"), 2, 0, 0, 1)
    );
    assert_eq!(
        wall(datetime!(2026-10-25 00:30 UTC)),
        (day("2026-10-25"), 2, 30, 0, 2)
    );
    assert_eq!(
        wall(datetime!(2026-10-25 01:30 UTC)),
        (day("2026-10-25"), 2, 30, 0, 1)
    );
    assert_eq!(
        human_time(datetime!(2026-10-25 00:30 UTC)),
        "2026-10-25 02:30 (+02:00)"
    );
    assert_eq!(
        human_time(datetime!(2026-10-25 01:30 UTC)),
        "2026-10-25 02:30 (+01:00)"
    );
    assert_eq!(
        local_rfc3339(datetime!(2026-03-29 01:00 UTC)),
        "2026-03-29T03:00:00+02:00"
    );
    // The midnights around both changes, and the months that contain them.
    assert_eq!(
        local_midnight(date!(2026 - 03 - 29)),
        datetime!(2026-03-28 23:00 UTC)
    );
    assert_eq!(
        local_midnight(date!(2026 - 03 - 30)),
        datetime!(2026-03-29 22:00 UTC)
    );
    assert_eq!(
        local_midnight(date!(2026 - 10 - 25)),
        datetime!(2026-10-24 22:00 UTC)
    );
    assert_eq!(
        local_midnight(date!(2026 - 10 - 26)),
        datetime!(2026-10-25 23:00 UTC)
    );
    let march: ReportMonth = "2026-03".parse().unwrap();
    assert_eq!(march.start(), datetime!(2026-02-28 23:00 UTC));
    assert_eq!(march.end(), datetime!(2026-03-31 22:00 UTC));
    let october: ReportMonth = "2026-10".parse().unwrap();
    assert_eq!(october.start(), datetime!(2026-09-30 22:00 UTC));
    assert_eq!(october.end(), datetime!(2026-10-31 23:00 UTC));
}

/// Off-hours on the local clock around the 2026 changes: the Sundays themselves are off-hours
/// at 01:59, at the skipped or repeated 02:00 and at 03:00; on the weekdays either side the
/// 07:00 edge moves from 06:00 UTC (CET) to 05:00 UTC (CEST) and back.
#[test]
fn off_hours_edges_follow_the_2026_clock_changes() {
    let table = [
        // Sunday 29 March: 01:59 CET, 03:00 CEST (02:00 does not exist).
        (datetime!(2026-03-29 00:59 UTC), true),
        (datetime!(2026-03-29 01:00 UTC), true),
        (datetime!(2026-03-29 10:00 UTC), true),
        // Friday 27 March, CET: 07:00 local is 06:00 UTC.
        (datetime!(2026-03-27 05:59:59 UTC), true),
        (datetime!(2026-03-27 06:00 UTC), false),
        (datetime!(2026-03-27 17:59:59 UTC), false),
        (datetime!(2026-03-27 18:00 UTC), true),
        // Monday 30 March, CEST: 07:00 local is 05:00 UTC, 19:00 local is 17:00 UTC.
        (datetime!(2026-03-30 04:59:59 UTC), true),
        (datetime!(2026-03-30 05:00 UTC), false),
        (datetime!(2026-03-30 16:59:59 UTC), false),
        (datetime!(2026-03-30 17:00 UTC), true),
        // Sunday 25 October: 01:59 CEST, 02:00 CEST, 02:00 CET again, 03:00 CET.
        (datetime!(2026-10-24 23:59 UTC), true),
        (datetime!(2026-10-25 00:00 UTC), true),
        (datetime!(2026-10-25 01:00 UTC), true),
        (datetime!(2026-10-25 02:00 UTC), true),
        // Friday 23 October, CEST; Monday 26 October, CET.
        (datetime!(2026-10-23 04:59:59 UTC), true),
        (datetime!(2026-10-23 05:00 UTC), false),
        (datetime!(2026-10-26 05:59:59 UTC), true),
        (datetime!(2026-10-26 06:00 UTC), false),
        (datetime!(2026-10-26 17:59:59 UTC), false),
        (datetime!(2026-10-26 18:00 UTC), true),
    ];
    for (at, off) in table {
        assert_eq!(is_off_hours(at), off, "{at} is {}", local_rfc3339(at));
    }
}

/// What the database knows and a "last Sunday of March to October" rule does not: the
/// Netherlands kept no summer time from 1970 to 1976, and until 1995 EU summer time ended on
/// the last Sunday of September.
#[test]
fn the_offset_comes_from_the_database_not_from_todays_rule() {
    let hours = |t: OffsetDateTime| amsterdam_offset(t).whole_hours();
    assert_eq!(hours(datetime!(1975-07-01 12:00 UTC)), 1);
    assert_eq!(hours(datetime!(1977-07-01 12:00 UTC)), 2);
    assert_eq!(hours(datetime!(1990-09-30 00:59 UTC)), 2);
    assert_eq!(hours(datetime!(1990-10-01 12:00 UTC)), 1);
    assert_eq!(hours(datetime!(1996-10-01 12:00 UTC)), 2);
    // Far outside the database's years the offset of its edge holds, whole hours only.
    assert_eq!(hours(datetime!(1900-07-01 12:00 UTC)), 1);
    assert_eq!(hours(datetime!(2300-07-01 12:00 UTC)), 2);
    assert_eq!(hours(datetime!(9999-12-31 23:59:59 UTC)), 1);
}

#[test]
fn every_local_midnight_reads_as_midnight_on_the_local_clock() {
    let mut d = date!(1970 - 01 - 01);
    while d <= date!(2100 - 12 - 31) {
        let l = to_local(local_midnight(d));
        assert_eq!((l.date(), l.hour(), l.minute()), (d, 0, 0), "{d}");
        d = d.next_day().unwrap();
    }
    // The ends of time: the last date's midnight is an instant, the first date's is not.
    assert_eq!(
        checked_local_midnight(date!(9999 - 12 - 31)),
        Some(datetime!(9999-12-30 23:00 UTC))
    );
    assert_eq!(checked_local_midnight(time::Date::MIN), None);
    assert!(checked_local_midnight(date!(0001 - 01 - 01)).is_some());
}

#[test]
fn local_midnight_is_the_utc_instant_of_midnight_on_the_amsterdam_wall_clock() {
    assert_eq!(
        local_midnight(date!(2024 - 03 - 01)),
        datetime!(2024-02-29 23:00 UTC)
    );
    assert_eq!(
        local_midnight(date!(2024 - 04 - 01)),
        datetime!(2024-03-31 22:00 UTC)
    );
    assert_eq!(
        local_midnight(date!(2024 - 11 - 01)),
        datetime!(2024-10-31 23:00 UTC)
    );
    assert_eq!(
        local_midnight(date!(2024 - 10 - 27)),
        datetime!(2024-10-26 22:00 UTC)
    );
}

#[test]
fn off_hours_are_before_seven_from_nineteen_and_weekends_on_the_local_clock() {
    let table = [
        // Monday 4 March 2024, CET.
        (datetime!(2024-03-04 05:59:59 UTC), true),
        (datetime!(2024-03-04 06:00:00 UTC), false),
        (datetime!(2024-03-04 17:59:59 UTC), false),
        (datetime!(2024-03-04 18:00:00 UTC), true),
        // Monday 1 July 2024, CEST.
        (datetime!(2024-07-01 04:59:59 UTC), true),
        (datetime!(2024-07-01 05:00:00 UTC), false),
        (datetime!(2024-07-01 16:59:59 UTC), false),
        (datetime!(2024-07-01 17:00:00 UTC), true),
        // Saturday noon, and Friday 23:30 UTC which is already Saturday in Amsterdam.
        (datetime!(2024-03-09 12:00 UTC), true),
        (datetime!(2024-03-08 23:30 UTC), true),
        // Sunday 23:30 UTC is Monday 00:30 local: a weekday, but before seven.
        (datetime!(2024-03-10 23:30 UTC), true),
    ];
    for (at, off) in table {
        assert_eq!(is_off_hours(at), off, "{at}");
    }
}

#[test]
fn iso_weeks_follow_the_local_date() {
    assert_eq!(iso_week(datetime!(2024-02-29 23:30 UTC)), "2024-W09");
    assert_eq!(iso_week(datetime!(2024-03-04 09:00 UTC)), "2024-W10");
    assert_eq!(iso_week(datetime!(2021-01-03 12:00 UTC)), "2020-W53");
    assert_eq!(iso_week(datetime!(2024-12-30 12:00 UTC)), "2025-W01");
}

#[test]
fn a_month_is_yyyy_mm_and_spans_local_midnights() {
    let m: ReportMonth = "2024-03".parse().unwrap();
    assert_eq!(m.to_string(), "2024-03");
    assert_eq!(m.start(), datetime!(2024-02-29 23:00 UTC));
    assert_eq!(m.end(), datetime!(2024-03-31 22:00 UTC));
    assert_eq!(
        m.weeks(),
        ["2024-W09", "2024-W10", "2024-W11", "2024-W12", "2024-W13"]
    );
    assert_eq!(m.previous().to_string(), "2024-02");
    assert_eq!(
        "2024-01".parse::<ReportMonth>().unwrap().previous(),
        "2023-12".parse().unwrap()
    );
    assert_eq!(
        "2024-12".parse::<ReportMonth>().unwrap().end(),
        datetime!(2024-12-31 23:00 UTC)
    );
    for bad in [
        "2024-3",
        "2024-13",
        "2024-00",
        "24-03",
        "2024-03-01",
        "",
        "abcd-ef",
        "+024-03",
    ] {
        assert!(bad.parse::<ReportMonth>().is_err(), "{bad:?}");
    }
    assert_eq!(
        ReportMonth::containing(datetime!(2024-03-31 22:30 UTC)).to_string(),
        "2024-04"
    );
}

fn event(at: OffsetDateTime, actor: &str, action: AuditAction, dossier: &str) -> AuditEvent {
    let mut e = AuditEvent::new(at, actor, "worker", action);
    e.dossier = Some(dossier.into());
    e.persons = Some("p-a,p-b".into());
    e
}

fn glass(at: OffsetDateTime, actor: &str, dossier: &str, category: &str) -> AuditEvent {
    let mut e = event(at, actor, AuditAction::BreakGlass, dossier);
    e.basis = Some("break_glass".into());
    e.detail = Some(category.into());
    e
}

fn open(at: OffsetDateTime, actor: &str, dossier: &str, doc: &str, basis: &str) -> AuditEvent {
    let mut e = event(at, actor, AuditAction::Open, dossier);
    e.document = Some(doc.into());
    e.basis = Some(basis.into());
    e
}

fn grant(dossier: &str, user: &str, at: OffsetDateTime, reason: &str) -> (String, Grant) {
    (
        dossier.into(),
        Grant {
            user: user.parse().unwrap(),
            reason: reason.into(),
            granted_at: at,
            expires_at: at + Duration::hours(8),
        },
    )
}

fn intact() -> Verification {
    Verification {
        rows: 10,
        first_broken_seq: None,
    }
}

#[test]
fn the_summary_counts_per_category_week_and_off_hours_and_the_detail_names_each_use() {
    let teams: HashMap<String, String> = [("d1", "t1"), ("d2", "t1"), ("d3", "t2")]
        .into_iter()
        .map(|(d, t)| (d.to_owned(), t.to_owned()))
        .collect();
    let t1 = datetime!(2024-03-04 09:00 UTC);
    let t2 = datetime!(2024-03-09 12:00 UTC);
    let events = vec![
        glass(t1, "carla", "d1", "crisis"),
        open(
            t1 + Duration::minutes(1),
            "carla",
            "d1",
            "plan",
            "break_glass",
        ),
        open(
            t1 + Duration::minutes(2),
            "carla",
            "d1",
            "record",
            "break_glass",
        ),
        // After the grant's end: not a read under it.
        open(
            t1 + Duration::hours(9),
            "carla",
            "d1",
            "plan",
            "break_glass",
        ),
        glass(t2, "eva", "d2", "safety"),
        glass(datetime!(2024-03-05 09:00 UTC), "dirk", "d3", "crisis"),
        {
            let mut w = glass(datetime!(2024-03-06 09:00 UTC), "carla", "d2", "crisis");
            w.outcome = "warned".into();
            w
        },
        glass(datetime!(2024-04-01 09:00 UTC), "carla", "d2", "other"),
    ];
    let grants = vec![
        grant("d1", "carla", t1, "moeder belt <in paniek>"),
        grant("d2", "eva", t2, "school meldt zorgen"),
    ];
    let uses = break_glass_uses(&events, &grants, &teams);
    assert_eq!(uses.len(), 4, "warnings are not uses");
    let month: ReportMonth = "2024-03".parse().unwrap();
    let s = summarize(&uses, "t1", month);
    assert_eq!(s.total, 2);
    assert_eq!(s.by_category[&Category::Crisis], 1);
    assert_eq!(s.by_category[&Category::Safety], 1);
    assert_eq!(s.by_category[&Category::Continuity], 0);
    assert_eq!(s.by_category[&Category::Other], 0);
    assert_eq!(s.off_hours, 1);
    assert_eq!(s.reads_under_grant, 2);
    let weeks: Vec<(&str, String)> = s
        .by_week
        .iter()
        .map(|w| (&w.week[..], w.count.to_string()))
        .collect();
    assert_eq!(
        weeks,
        [
            ("2024-W09", "0".to_owned()),
            ("2024-W10", "2".to_owned()),
            ("2024-W11", "0".to_owned()),
            ("2024-W12", "0".to_owned()),
            ("2024-W13", "0".to_owned())
        ]
    );
    // Published to a manager, every count below five is only said to be below five (R27).
    let published = s.clone().suppressed(5);
    assert_eq!(published.total, Count::Suppressed("< 5".into()));
    assert!(
        published
            .by_week
            .iter()
            .all(|w| w.count.to_string() == "< 5")
    );
    assert_eq!(
        serde_json::to_value(&published).unwrap()["off_hours"],
        "< 5"
    );
    assert_eq!(
        s.clone().suppressed(2).total,
        2,
        "at the threshold the count is exact"
    );
    let json = serde_json::to_string(&s).unwrap();
    let page = summary_page(&s);
    for secret in ["carla", "eva", "d1", "d2", "paniek", "school"] {
        assert!(!json.contains(secret), "{secret} in {json}");
        assert!(!page.contains(secret), "{secret} in {page}");
    }

    let d = detail(&uses, "t1", month, Some(intact()));
    assert_eq!(d.total, 2);
    assert_eq!(d.uses[0].grant.user, "carla");
    assert_eq!(d.uses[0].grant.reads.len(), 2);
    assert_eq!(
        d.uses[0].grant.reason.as_deref(),
        Some("moeder belt <in paniek>")
    );
    assert_eq!(d.uses[0].local_time, "2024-03-04T10:00:00+01:00");
    assert!(d.uses[1].off_hours);
    let page = detail_page(&d);
    assert!(page.contains("moeder belt &lt;in paniek&gt;"), "{page}");
    assert!(!page.contains("<in paniek>"));
}

#[test]
fn a_burst_is_that_many_dossiers_within_one_hour_and_off_hours_are_for_professionals() {
    let base = datetime!(2024-03-05 10:00 UTC);
    let mut events = Vec::new();
    for i in 0..5 {
        events.push(open(
            base + Duration::minutes(10 * i),
            "snoop",
            &format!("d{i}"),
            "plan",
            "assignment",
        ));
    }
    // Four dossiers spread over more than an hour is not a burst.
    for i in 0..4 {
        events.push(open(
            base + Duration::minutes(25 * i),
            "slow",
            &format!("d{i}"),
            "plan",
            "assignment",
        ));
    }
    // One dossier many times is not a burst either.
    for i in 0..6 {
        events.push(open(
            base + Duration::minutes(i),
            "busy",
            "d1",
            "plan",
            "assignment",
        ));
    }
    events.push(open(
        datetime!(2024-03-05 21:00 UTC),
        "night",
        "d1",
        "record",
        "assignment",
    ));
    let mut resident = open(
        datetime!(2024-03-05 22:00 UTC),
        "sanne",
        "d1",
        "plan",
        "resident_link",
    );
    resident.role = "resident".into();
    events.push(resident);
    let mut refused = event(base, "dirk", AuditAction::Deny, "d1");
    refused.outcome = "other_district".into();
    events.push(refused);
    events.push(open(base, "carla", "d1", "plan", "break_glass"));

    let u = unusual_access(
        &events,
        &HashMap::new(),
        "2024-03".parse().unwrap(),
        4,
        intact(),
    );
    let bursts = u.bursts.clone().expect("the patterns of a whole report");
    assert_eq!(bursts.len(), 1, "{bursts:?}");
    assert_eq!(bursts[0].user, "snoop");
    assert_eq!(bursts[0].dossiers, 5);
    assert_eq!(bursts[0].from, base);
    assert_eq!(bursts[0].to, base + Duration::minutes(40));
    let late: Vec<&str> = u
        .off_hours
        .iter()
        .flatten()
        .map(|o| o.user.as_str())
        .collect();
    assert_eq!(late, ["night"]);
    assert_eq!(u.refused.len(), 1);
    assert_eq!(u.refused[0].outcome, "other_district");
    assert_eq!(u.emergency_reads.len(), 1);
    assert_eq!(u.emergency_reads[0].user, "carla");
}

#[test]
fn who_looked_lists_others_accesses_to_the_persons_data_in_the_period_without_names() {
    let at = datetime!(2024-03-04 09:00 UTC);
    let mut view_daan = open(at, "anna", "d1", "view/p-b", "assignment");
    view_daan.persons = Some("p-b".into());
    let mut own = open(at, "sanne", "d1", "plan", "resident_link");
    own.role = "resident".into();
    let mut partner = open(at, "ggd-1", "d1", "partner/ggd", "partner_involvement");
    partner.role = "partner".into();
    let mut warned = glass(at, "carla", "d1", "crisis");
    warned.outcome = "warned".into();
    let mut refused = open(at, "dirk", "d1", "plan", "assignment");
    refused.action = "deny".into();
    let events = vec![
        open(at, "anna", "d1", "record", "assignment"),
        glass(at + Duration::hours(1), "carla", "d1", "crisis"),
        open(
            at + Duration::hours(2),
            "carla",
            "d1",
            "plan",
            "break_glass",
        ),
        partner,
        view_daan,
        own,
        warned,
        refused,
        open(
            datetime!(2024-04-04 09:00 UTC),
            "anna",
            "d1",
            "plan",
            "assignment",
        ),
    ];
    let period = Period {
        from: Some(local_midnight(date!(2024 - 03 - 01))),
        to: Some(local_midnight(date!(2024 - 04 - 01))),
    };
    let lines = who_looked(&events, "p-a", "sanne", period, false);
    let seen: Vec<(&str, &str, &str, bool)> = lines
        .iter()
        .map(|l| {
            (
                l.organisation.as_str(),
                l.action.as_str(),
                l.document.as_deref().unwrap_or(""),
                l.emergency,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("wijkteam", "open", "record", false),
            ("ggd", "open", "partner/ggd", false),
            ("wijkteam", "break_glass", "", true),
            ("wijkteam", "open", "plan", true),
        ]
    );
    assert!(lines.iter().all(|l| l.worker.is_none()));
    assert!(!serde_json::to_string(&lines).unwrap().contains("anna"));
    let named = who_looked(&events, "p-a", "sanne", period, true);
    assert_eq!(named[0].worker.as_deref(), Some("anna"));
    assert_eq!(named[0].date, "2024-03-04");
}

#[test]
fn human_and_utc_times_format_as_the_pages_show_them() {
    assert_eq!(
        human_time(datetime!(2024-07-01 05:00 UTC)),
        "2024-07-01 07:00 (+02:00)"
    );
    assert_eq!(
        utc_rfc3339(datetime!(2024-07-01 07:00 +02:00)),
        "2024-07-01T05:00:00Z"
    );
}

/// Markup planted in a field: a script element and an attribute break-out, named after the
/// field so that each one is looked for on its own.
fn planted(field: &str) -> String {
    format!("<script>{field}</script>\"onload='{field}' & ")
}

/// How [`planted`] must come out: every `<`, `>`, `"` and `&` as an entity.
fn escaped(field: &str) -> String {
    format!("&lt;script&gt;{field}&lt;/script&gt;&quot;onload='{field}' &amp; ")
}

/// Checks that `page` holds no element but the fixed ones of the templates, no attribute but
/// `lang`, `charset`, `class` and `colspan`, and each planted field escaped.
fn assert_escaped(page: &str, fields: &[&str]) {
    const TAGS: [&str; 16] = [
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "table", "thead",
        "tbody", "tr", "th", "td", "br",
    ];
    const ATTRIBUTES: [&str; 4] = ["lang=", "charset=", "class=", "colspan="];
    let rest = page.strip_prefix("<!DOCTYPE html>").expect("the doctype");
    for tag in rest.split('<').skip(1) {
        let tag = &tag[..tag.find('>').expect("every tag ends")];
        let mut parts = tag.trim_start_matches('/').split(' ');
        let name = parts.next().unwrap_or_default();
        assert!(TAGS.contains(&name), "element {tag:?} in {page}");
        for attribute in parts {
            assert!(
                ATTRIBUTES.iter().any(|a| attribute.starts_with(a)),
                "attribute {attribute:?} in {page}"
            );
        }
    }
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("\"onload"), "{page}");
    for field in fields {
        assert!(
            page.contains(&escaped(field)),
            "{field} not escaped in {page}"
        );
    }
}

#[test]
fn markup_planted_in_every_field_from_data_comes_out_escaped() {
    let at = datetime!(2024-03-04 09:00 UTC);
    let grant_use = BreakGlassUse {
        at,
        user: planted("user"),
        role: planted("role"),
        dossier: planted("dossier"),
        team: planted("team"),
        category: Category::Crisis,
        reason: Some(planted("reason")),
        expires_at: Some(at + Duration::hours(8)),
        reads: vec![
            GrantRead {
                at,
                document: Some(planted("read-document")),
            },
            GrantRead {
                at,
                document: Some(planted("second-read-document")),
            },
        ],
        reads_total: 3,
    };
    let leak = |field: &str| -> &'static str { Box::leak(planted(field).into_boxed_str()) };
    let period = "2024-03".parse::<ReportMonth>().unwrap().period();

    let d = BreakGlassDetail {
        team: planted("detail-team"),
        month: planted("detail-month"),
        period,
        timezone: leak("detail-timezone"),
        off_hours_definition: leak("detail-off-hours"),
        total: 2,
        uses: vec![DetailLine {
            grant: grant_use.clone(),
            local_time: planted("local-time"),
            week: planted("week"),
            off_hours: true,
        }],
        next: Some(planted("detail-next")),
        log: Some(intact()),
    };
    assert_escaped(
        &detail_page(&d),
        &[
            "detail-team",
            "detail-month",
            "detail-timezone",
            "detail-off-hours",
            "week",
            "user",
            "dossier",
            "reason",
            "read-document",
            "second-read-document",
            "detail-next",
        ],
    );

    let s = BreakGlassSummary {
        team: planted("summary-team"),
        month: planted("summary-month"),
        period,
        timezone: leak("summary-timezone"),
        off_hours_definition: leak("summary-off-hours"),
        total: Count::Exact(1),
        by_category: Category::ALL
            .iter()
            .map(|&c| (c, Count::Exact(1)))
            .collect(),
        by_week: vec![WeekCount {
            week: planted("summary-week"),
            count: Count::Exact(1),
        }],
        off_hours: Count::Exact(1),
        reads_under_grant: Count::Exact(2),
    };
    assert_escaped(
        &summary_page(&s),
        &[
            "summary-team",
            "summary-month",
            "summary-timezone",
            "summary-off-hours",
            "summary-week",
        ],
    );

    let access = |kind: &str| AccessLine {
        at,
        user: planted(&format!("{kind}-user")),
        role: planted(&format!("{kind}-role")),
        dossier: Some(planted(&format!("{kind}-dossier"))),
        team: Some(planted(&format!("{kind}-team"))),
        document: Some(planted(&format!("{kind}-document"))),
        action: planted(&format!("{kind}-action")),
        basis: Some(planted(&format!("{kind}-basis"))),
        outcome: planted(&format!("{kind}-outcome")),
    };
    let u = UnusualAccess {
        month: planted("unusual-month"),
        period,
        timezone: leak("unusual-timezone"),
        off_hours_definition: leak("unusual-off-hours"),
        burst_threshold: 4,
        emergency_reads: vec![access("emergency")],
        emergency_reads_total: 2,
        refused: vec![access("refused")],
        refused_total: 2,
        next: Some(planted("unusual-next")),
        bursts: Some(vec![Burst {
            user: planted("burst-user"),
            role: planted("burst-role"),
            from: at,
            to: at + Duration::minutes(30),
            dossiers: 5,
        }]),
        off_hours: Some(vec![OffHoursUse {
            user: planted("late-user"),
            role: planted("late-role"),
            accesses: 3,
            dossiers: 2,
            first: at,
            last: at + Duration::hours(1),
        }]),
        log: Some(Verification {
            rows: 9,
            first_broken_seq: Some(10),
        }),
    };
    let mut fields = vec![
        "unusual-month".to_owned(),
        "unusual-timezone".into(),
        "unusual-off-hours".into(),
        "unusual-next".into(),
        "burst-user".into(),
        "burst-role".into(),
        "late-user".into(),
        "late-role".into(),
    ];
    for kind in ["emergency", "refused"] {
        for field in [
            "user", "role", "dossier", "team", "document", "action", "basis", "outcome",
        ] {
            fields.push(format!("{kind}-{field}"));
        }
    }
    let page = unusual_page(&u);
    assert_escaped(
        &page,
        &fields.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(
        page.contains("broken at row 10 (9 rows before it verified)"),
        "{page}"
    );
}

/// Category codes are stored in audit rows (`detail`) and asked for in the API: derived once,
/// they read back through text, parsing and serde.
#[test]
fn category_codes_read_back_through_text_parsing_and_serde() {
    let codes: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, ["crisis", "safety", "continuity", "other"]);
    for &c in Category::ALL {
        assert_eq!(c.as_str().parse::<Category>(), Ok(c));
        assert_eq!(c.to_string(), c.as_str());
        assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        assert_eq!(
            serde_json::from_value::<Category>(c.as_str().into()).unwrap(),
            c
        );
    }
    assert!("Crisis".parse::<Category>().is_err());
    assert!(serde_json::from_value::<Category>("panic".into()).is_err());
    let by: BTreeMap<Category, usize> = [(Category::Safety, 2)].into_iter().collect();
    assert_eq!(serde_json::to_string(&by).unwrap(), r#"{"safety":2}"#);
}
