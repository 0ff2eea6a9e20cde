//! Bounded cost over HTTP (I7): every query parameter of `/api/v1` is validated and refused with
//! 400 and a code (never a panic, never ignored), JSON bodies are limited per route and refused
//! with 413, and the privacy officer's and the resident's reports over a large audit log answer
//! page by page without the server's memory following the log.

use regie_server::audit::{AuditAction, AuditEvent};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::support::*;

/// GETs `path` and returns the status and the error code (empty when none).
async fn code(server: &TestServer, token: &str, path: &str) -> (u16, String) {
    let (status, v) = server.api(token, "GET", path, Value::Null).await;
    let code = v["error"]["code"].as_str().unwrap_or_default().to_owned();
    (status, code)
}

/// Asserts that each path answers 400 with `expected`, and that the server still serves.
async fn refused(server: &TestServer, token: &str, paths: &[&str], expected: &str) {
    for path in paths {
        assert_eq!(
            code(server, token, path).await,
            (400, expected.to_owned()),
            "{path}"
        );
    }
    let (status, _) = server
        .api(token, "GET", "/api/v1/health", Value::Null)
        .await;
    assert_eq!(status, 200, "the server still serves");
}

#[tokio::test]
async fn the_access_log_from_year_zero_answers_400_invalid_date_instead_of_panicking() {
    let server = TestServer::new().await;
    seed_household(&server).await;
    let sanne = server.token("resident");
    let log = "/api/v1/me/access-log";
    refused(
        &server,
        &sanne,
        &[
            &format!("{log}?from=0000-01-01"),
            &format!("{log}?to=0000-12-31"),
            &format!("{log}?from=-0001-01-01"),
            &format!("{log}?from=%2B2024-01-01"),
            &format!("{log}?from=10000-01-01"),
            &format!("{log}?from=2024-02-30"),
            &format!("{log}?from=2024-1-01"),
            &format!("{log}?from=2024-01-01T00:00"),
            &format!("{log}?from="),
        ],
        "invalid_date",
    )
    .await;
    // The first and last dates of the range work, and the last day leaves the period open.
    let (status, v) = server
        .api(
            &sanne,
            "GET",
            &format!("{log}?from=0001-01-01&to=9999-12-31"),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["period"]["from"], "0000-12-31T23:00:00Z");
    assert_eq!(v["period"]["to"], Value::Null);
    let (status, v) = server
        .api(
            &sanne,
            "GET",
            &format!("{log}?from=9999-12-31"),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    server.stop().await;
}

#[tokio::test]
async fn every_bad_query_parameter_answers_400_with_a_code_that_names_the_problem() {
    let server = TestServer::new().await;
    seed_household(&server).await;
    let sanne = server.token("resident");
    let fg = server.token("privacy_officer");
    let mia = server.token("manager");
    let log = "/api/v1/me/access-log";
    let report = "/api/v1/teams/team-noord/break-glass-report";
    let unusual = "/api/v1/reports/unusual-access";

    refused(
        &server,
        &sanne,
        &[&format!("{log}?from=2024-06-02&to=2024-06-01")],
        "invalid_period",
    )
    .await;
    for (token, base) in [(&sanne, log), (&fg, report), (&fg, unusual)] {
        refused(
            &server,
            token,
            &[
                &format!("{base}?limit=0"),
                &format!("{base}?limit=1001"),
                &format!("{base}?limit=ten"),
                &format!("{base}?limit=-1"),
                &format!("{base}?limit=99999999999999999999999"),
            ],
            "invalid_limit",
        )
        .await;
        refused(
            &server,
            token,
            &[&format!("{base}?lmit=5"), &format!("{base}?month_=2024-03")],
            "unknown_parameter",
        )
        .await;
    }
    refused(
        &server,
        &sanne,
        &[
            &format!("{log}?after=abc"),
            &format!("{log}?after=-3"),
            &format!("{log}?after=0"),
        ],
        "invalid_cursor",
    )
    .await;
    refused(
        &server,
        &fg,
        &[
            &format!("{unusual}?after=12"),
            &format!("{unusual}?after=x.x"),
            &format!("{unusual}?after=1.y"),
            &format!("{report}?month=2024-03&after=77"),
        ],
        "invalid_cursor",
    )
    .await;
    refused(
        &server,
        &sanne,
        &[&format!("{log}?from=2024-01-01&from=2024-02-01")],
        "repeated_parameter",
    )
    .await;
    for base in [report, unusual] {
        refused(
            &server,
            &fg,
            &[
                // The end of 9999-12 is no longer a date: it used to panic.
                &format!("{base}?month=9999-12"),
                &format!("{base}?month=1969-12"),
                &format!("{base}?month=0000-01"),
                &format!("{base}?month=2024-13"),
                &format!("{base}?month=2024-00"),
                &format!("{base}?month="),
            ],
            "invalid_month",
        )
        .await;
        refused(
            &server,
            &fg,
            &[&format!("{base}?format=pdf")],
            "invalid_format",
        )
        .await;
    }
    let (status, v) = server
        .api(&fg, "GET", &format!("{report}?month=9999-11"), Value::Null)
        .await;
    assert_eq!(status, 200, "the last month that has an end: {v}");
    refused(
        &server,
        &mia,
        &[&format!("{report}?tier=everything")],
        "invalid_tier",
    )
    .await;
    refused(
        &server,
        &fg,
        &[
            &format!("{unusual}?threshold=1"),
            &format!("{unusual}?threshold=1001"),
            &format!("{unusual}?threshold=many"),
        ],
        "invalid_threshold",
    )
    .await;
    refused(
        &server,
        &fg,
        &[
            "/api/v1/quarantine?limit=0",
            "/api/v1/quarantine?limit=5000",
        ],
        "invalid_limit",
    )
    .await;
    refused(
        &server,
        &fg,
        &["/api/v1/quarantine?after=none"],
        "invalid_cursor",
    )
    .await;
    // Routes without parameters say so, and `token` is taken everywhere.
    refused(
        &server,
        &fg,
        &[
            "/api/v1/audit/verify?full=1",
            "/api/v1/destructions?limit=5",
        ],
        "unknown_parameter",
    )
    .await;
    let anna = server.token("worker");
    refused(
        &server,
        &anna,
        &["/api/v1/me/documents?all=true"],
        "unknown_parameter",
    )
    .await;
    let res = reqwest::get(format!(
        "http://{}/api/v1/me/documents?token={anna}",
        server.addr
    ))
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn oversize_bodies_are_refused_with_413_body_too_large_and_malformed_ones_in_the_api_shape() {
    let server = TestServer::new().await;
    let anna = server.token("worker");
    let padded = |bytes: usize| {
        let mut body = json!({ "district": "noord", "team": "team-noord" });
        body["padding"] = Value::String("x".repeat(bytes));
        serde_json::to_vec(&body).unwrap()
    };
    let (status, v) = server
        .send_raw(
            &anna,
            "POST",
            "/api/v1/dossiers",
            "application/json",
            padded(regie_server::http::BODY_LIMIT),
        )
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (413, &json!("body_too_large"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&regie_server::http::BODY_LIMIT.to_string()),
        "{v}"
    );
    // Under the limit the same route works.
    let (status, v) = server
        .send_raw(
            &anna,
            "POST",
            "/api/v1/dossiers",
            "application/json",
            padded(1000),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    // Offline reads take up to 2 MiB: 1 MiB is read, 3 MiB is not.
    let reads = |bytes: usize| {
        let body = json!({ "device": "tablet-1", "events": [], "padding": "x".repeat(bytes) });
        serde_json::to_vec(&body).unwrap()
    };
    let path = "/api/v1/audit/offline-reads";
    let (status, v) = server
        .send_raw(&anna, "POST", path, "application/json", reads(1 << 20))
        .await;
    assert_ne!(status, 413, "{v}");
    let (status, v) = server
        .send_raw(&anna, "POST", path, "application/json", reads(3 << 20))
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (413, &json!("body_too_large"))
    );

    let (status, v) = server
        .send_raw(
            &anna,
            "POST",
            "/api/v1/dossiers",
            "application/json",
            b"{\"district\": ".to_vec(),
        )
        .await;
    assert_eq!((status, &v["error"]["code"]), (400, &json!("bad_request")));
    let (status, v) = server
        .send_raw(
            &anna,
            "POST",
            "/api/v1/dossiers",
            "text/plain",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (415, &json!("unsupported_media_type"))
    );
    let (status, v) = server
        .send_raw(
            &anna,
            "POST",
            "/api/v1/dossiers",
            "application/json",
            b"{\"district\": 5}".to_vec(),
        )
        .await;
    assert_eq!((status, &v["error"]["code"]), (422, &json!("invalid_body")));
    server.stop().await;
}

// ---- reports over a large log -----------------------------------------------------------

/// Rows in the large log.
const ROWS: usize = 100_000;
/// Refused attempts among them: a device hammering a dossier it may not read.
const REFUSALS: usize = 80_000;
/// Accesses to the household by its workers, each concerning Sanne.
const ACCESSES: usize = 19_000;
/// Break-glass uses among the rest, each with reads under it.
const USES: usize = 250;

/// May 2024 as a flooded log: refusals every 20 ms from one device, the assigned workers'
/// accesses, and `USES` breakings of the glass by a colleague each followed by three reads;
/// `ROWS` rows in all, appended out of time order in chunks as a busy server would.
fn flooded_may(dossier: &str) -> Vec<AuditEvent> {
    let start = datetime!(2024-05-01 06:00 UTC);
    let mut rows = Vec::with_capacity(ROWS);
    for i in 0..REFUSALS {
        let mut e = AuditEvent::new(
            start + time::Duration::milliseconds(20 * i as i64),
            "mallory",
            "worker",
            AuditAction::Deny,
        );
        e.dossier = Some(dossier.into());
        e.document = Some("record".into());
        e.outcome = "not_in_audience".into();
        e.device = Some("hostile-tablet".into());
        rows.push(e);
    }
    for i in 0..ACCESSES {
        let mut e = AuditEvent::new(
            start + time::Duration::seconds(97 * i as i64),
            if i % 2 == 0 { "anna" } else { "bram" },
            "worker",
            AuditAction::Open,
        );
        e.dossier = Some(dossier.into());
        e.document = Some("plan".into());
        e.persons = Some("p-daan,p-sanne".into());
        e.basis = Some("assignment".into());
        rows.push(e);
    }
    for i in 0..USES {
        let at = start + time::Duration::minutes(150 * i as i64 + 7);
        let mut glass = AuditEvent::new(at, "carla", "worker", AuditAction::BreakGlass);
        glass.dossier = Some(dossier.into());
        glass.persons = Some("p-daan,p-sanne".into());
        glass.basis = Some("break_glass".into());
        glass.detail = Some("crisis".into());
        rows.push(glass);
        for r in 0..3 {
            let mut read = AuditEvent::new(
                at + time::Duration::minutes(r + 1),
                "carla",
                "worker",
                AuditAction::Open,
            );
            read.dossier = Some(dossier.into());
            read.document = Some("record".into());
            read.persons = Some("p-daan,p-sanne".into());
            read.basis = Some("break_glass".into());
            rows.push(read);
        }
    }
    assert_eq!(rows.len(), ROWS);
    // Interleave the kinds the way they arrive: not sorted by time within a chunk.
    rows.sort_by_key(|e| (e.at.unix_timestamp() / 3600, e.action.clone()));
    rows
}

async fn get(server: &TestServer, token: &str, path: &str) -> Value {
    let (status, v) = server.api(token, "GET", path, Value::Null).await;
    assert_eq!(status, 200, "{path}: {v}");
    v
}

fn at(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        v.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

#[tokio::test]
async fn reports_over_a_hundred_thousand_audit_rows_answer_page_by_page_in_bounded_memory() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    for chunk in flooded_may(&house.id).chunks(10_000) {
        server.script_audit(chunk).await;
    }
    let fg = server.token("privacy_officer");
    let sanne = server.token("resident");
    reset_peak_rss();
    let (before, _) = rss_kib();

    // The resident's access log, every page: each access once, oldest first.
    let mut seen = 0;
    let mut emergency = 0;
    let mut last: Option<OffsetDateTime> = None;
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let v = get(
            &server,
            &sanne,
            &format!("/api/v1/me/access-log?from=2024-05-01&to=2024-05-31&limit=1000{after}"),
        )
        .await;
        pages += 1;
        let lines = v["accesses"].as_array().unwrap();
        assert!(lines.len() <= 1000);
        for line in lines {
            let t = at(&line["at"]);
            assert!(last.is_none_or(|l| l <= t), "oldest first across pages");
            last = Some(t);
            emergency += usize::from(line["emergency"].as_bool().unwrap());
        }
        seen += lines.len();
        match v["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ACCESSES + USES * 4, "every access and use, once");
    assert_eq!(emergency, USES * 4);
    assert_eq!(pages, (ACCESSES + USES * 4).div_ceil(1000));

    // The unusual-access report: two pages of its lists, the totals of the whole month.
    let path = "/api/v1/reports/unusual-access?month=2024-05&limit=1000";
    let first = get(&server, &fg, path).await;
    assert_eq!(first["refused_total"], REFUSALS);
    assert_eq!(first["emergency_reads_total"], USES * 3);
    assert_eq!(first["refused"].as_array().unwrap().len(), 1000);
    assert_eq!(first["emergency_reads"].as_array().unwrap().len(), USES * 3);
    assert_eq!(first["bursts"], json!([]));
    let next = first["next"].as_str().expect("more refusals").to_owned();
    assert!(
        next.starts_with("x."),
        "the emergency reads are complete: {next}"
    );
    let second = get(&server, &fg, &format!("{path}&after={next}")).await;
    assert_eq!(second["emergency_reads"], json!([]));
    let (a, b) = (&first["refused"][999], &second["refused"][0]);
    assert_eq!(
        at(&b["at"]) - at(&a["at"]),
        time::Duration::milliseconds(20)
    );
    // The patterns and the chain's state belong to the first page; the rest continue it.
    assert!(first["off_hours"].as_array().is_some_and(|o| !o.is_empty()));
    assert_eq!(
        (&second["bursts"], &second["off_hours"], &second["log"]),
        (&Value::Null, &Value::Null, &Value::Null)
    );
    assert_eq!(second["refused_total"], REFUSALS);
    assert_eq!(first["log"]["first_broken_seq"], Value::Null);
    assert!(first["log"]["rows"].as_u64().unwrap() as usize > ROWS);

    // The break-glass detail, every page of 100 uses: each use with its three reads.
    let mut uses = 0;
    let mut after = String::new();
    loop {
        let v = get(
            &server,
            &fg,
            &format!("/api/v1/teams/team-noord/break-glass-report?month=2024-05&limit=100{after}"),
        )
        .await;
        assert_eq!(v["total"], USES);
        for u in v["uses"].as_array().unwrap() {
            assert_eq!(u["reads_total"], 3);
            assert_eq!(u["reads"].as_array().unwrap().len(), 3);
        }
        uses += v["uses"].as_array().unwrap().len();
        match v["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(uses, USES);
    let summary = get(
        &server,
        &fg,
        "/api/v1/teams/team-noord/break-glass-report?month=2024-05&tier=summary",
    )
    .await;
    assert_eq!(summary["total"], USES);
    assert_eq!(summary["reads_under_grant"], USES * 3);

    let (after_rss, peak) = rss_kib();
    println!(
        "RSS before the reports {before} KiB, after {after_rss} KiB, peak {peak} KiB (+{} KiB)",
        peak.saturating_sub(before)
    );
    if alone_in_process() {
        // Before paging, reports over 68k rows took the server past 1 GiB.
        assert!(
            peak.saturating_sub(before) < RSS_GROWTH_KIB,
            "reports grew the process by {} KiB",
            peak - before
        );
    }
    server.stop().await;
}

/// What reading every report over the large log may add to the test process's peak RSS.
const RSS_GROWTH_KIB: u64 = 64 * 1024;

/// The time and peak RSS of each report over the large log, for BENCHMARKS.md: one request per
/// report as a client would send it first, then every page where a report has pages. Not a
/// test of the numbers; run it alone with
/// `cargo nextest run -p regie-tests --run-ignored only -E 'test(measure_reports)' --no-capture`,
/// once per report with `REGIE_MEASURE=<report name>` for a clean peak each.
#[tokio::test]
#[ignore = "a measurement for BENCHMARKS.md"]
async fn measure_reports_over_a_hundred_thousand_audit_rows() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    for chunk in flooded_may(&house.id).chunks(10_000) {
        server.script_audit(chunk).await;
    }
    let fg = server.token("privacy_officer");
    let sanne = server.token("resident");
    let reports = [
        (
            "unusual access",
            &fg,
            "/api/v1/reports/unusual-access?month=2024-05",
        ),
        (
            "break-glass detail",
            &fg,
            "/api/v1/teams/team-noord/break-glass-report?month=2024-05",
        ),
        (
            "break-glass summary",
            &fg,
            "/api/v1/teams/team-noord/break-glass-report?month=2024-05&tier=summary",
        ),
        (
            "who looked (access log)",
            &sanne,
            "/api/v1/me/access-log?from=2024-05-01&to=2024-05-31",
        ),
        ("audit verify", &fg, "/api/v1/audit/verify"),
    ];
    // One report per process gives each a clean peak: freed heap stays mapped and would hide
    // the growth of the reports after the first.
    let only = std::env::var("REGIE_MEASURE").ok();
    println!("| report | pages | first page | all pages | peak RSS growth | answer |");
    println!("|---|---|---|---|---|---|");
    for (name, token, path) in reports {
        if only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        reset_peak_rss();
        let (before, _) = rss_kib();
        let started = std::time::Instant::now();
        let (mut pages, mut bytes) = (0, 0);
        let mut first = None;
        let mut url = path.to_owned();
        loop {
            let res = reqwest::Client::new()
                .get(format!("http://{}{url}", server.addr))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{url}");
            let text = res.text().await.unwrap();
            pages += 1;
            bytes += text.len();
            first.get_or_insert(started.elapsed());
            let v: Value = serde_json::from_str(&text).unwrap();
            match v.get("next").and_then(Value::as_str) {
                Some(next) => url = format!("{path}&after={next}"),
                None => break,
            }
        }
        let took = started.elapsed();
        let (_, peak) = rss_kib();
        println!(
            "| {name} | {pages} | {:.0} ms | {:.0} ms | {:.1} MiB | {:.1} MiB |",
            first.unwrap_or_default().as_secs_f64() * 1000.0,
            took.as_secs_f64() * 1000.0,
            peak.saturating_sub(before) as f64 / 1024.0,
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
    server.stop().await;
}
