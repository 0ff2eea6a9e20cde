//! Resident rights end to end (R16, R19–R22): requests filed by a resident and by a worker on
//! their behalf, deadlines across month ends, extension, decision, the escalation of a refusal
//! to the manager and then the privacy officer, the overdue register (counts for the manager,
//! detail for the privacy officer), one answer for outsiders whether or not anything exists, and
//! the R19 copy of each member of a two-parent, two-child household holding their own sentinel
//! and no other member's, with R16's ages deciding who may take whose copy.

use std::time::Duration;

use regie_core::rights;
use regie_sync_protocol::Message;
use serde_json::{Value, json};

use crate::support::*;

/// The Amsterdam calendar day now, as the server computes it.
fn today() -> String {
    regie_server::rights::local_day(time::OffsetDateTime::now_utc()).to_string()
}

fn date_after(day: &str, months: i8) -> String {
    rights::deadline(rights::parse_date(day).unwrap(), Some(months - 1))
        .unwrap()
        .to_string()
}

/// `who` files a request about `dossier` (`body` without the dossier).
pub(crate) async fn file_as(
    server: &TestServer,
    who: &str,
    dossier: &str,
    body: Value,
) -> (u16, Value) {
    let mut body = body;
    body["dossier"] = json!(dossier);
    server
        .api(&server.token(who), "POST", "/api/v1/me/requests", body)
        .await
}

/// `who` takes `step` (`decision`, `extension`, `escalation`, …) on `request`.
pub(crate) async fn act(
    server: &TestServer,
    who: &str,
    request: &str,
    step: &str,
    body: Value,
) -> (u16, Value) {
    server
        .api(
            &server.token(who),
            "POST",
            &format!("/api/v1/requests/{request}/{step}"),
            body,
        )
        .await
}

#[tokio::test]
async fn a_resident_files_a_request_and_sees_its_status_and_one_month_deadline() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let (status, filed) = file_as(
        &server,
        "resident",
        &house.id,
        json!({ "kind": "access", "details": "Ik wil alles zien" }),
    )
    .await;
    assert_eq!(status, 201, "{filed}");
    let today = today();
    assert_eq!(filed["subject"], "p-sanne");
    assert_eq!(filed["received_on"], today);
    assert_eq!(filed["deadline"], date_after(&today, 1));
    assert_eq!(filed["status"], "received");
    assert_eq!(filed["status_label"], "ontvangen, in behandeling");
    assert_eq!(filed["kind_label"], "inzage en kopie");
    assert_eq!(filed["overdue"], false);

    let (status, mine) = server
        .api(
            &server.token("resident"),
            "GET",
            "/api/v1/me/requests",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["id"], filed["id"]);
    // The worker sees it in the dossier's register; another resident sees none of it.
    let (status, listed) = server
        .api(
            &server.token("worker"),
            "GET",
            &format!("/api/v1/dossiers/{}/requests", house.id),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["id"], filed["id"]);
    let (_, theirs) = server
        .api(
            &server.token("ouder1"),
            "GET",
            "/api/v1/me/requests",
            Value::Null,
        )
        .await;
    assert_eq!(theirs, json!([]));
    // On record with ids and codes, never the resident's words.
    let log = server
        .state
        .hub
        .store()
        .audit_events(Some(house.id.parse().unwrap()))
        .await
        .unwrap();
    let row = log
        .iter()
        .map(|(_, e)| e)
        .find(|e| e.action == "rights")
        .expect("the filing is audited");
    assert_eq!(row.persons.as_deref(), Some("p-sanne"));
    assert!(!row.detail.as_deref().unwrap().contains("zien"));
}

#[tokio::test]
async fn outsiders_get_the_same_answer_whether_or_not_a_dossier_or_request_exists() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let (_, filed) = file_as(&server, "resident", &house.id, json!({ "kind": "erasure" })).await;
    let request = filed["id"].as_str().unwrap();
    let unknown_dossier = regie_core::id::DossierId::new_random().to_string();
    for who in [
        "zuid_worker",
        "colleague",
        "ouder1",
        "manager",
        "privacy_officer",
        "backoffice",
    ] {
        let on_behalf = json!({ "subject": "p-sanne", "kind": "access" });
        let mut answers = Vec::new();
        for dossier in [&house.id, &unknown_dossier] {
            answers.push(
                server
                    .api(
                        &server.token(who),
                        "POST",
                        &format!("/api/v1/dossiers/{dossier}/requests"),
                        on_behalf.clone(),
                    )
                    .await,
            );
            answers.push(
                file_as(
                    &server,
                    who,
                    dossier,
                    json!({ "subject": "p-sanne", "kind": "access" }),
                )
                .await,
            );
            answers.push(
                server
                    .api(
                        &server.token(who),
                        "GET",
                        &format!("/api/v1/dossiers/{dossier}/persons/p-sanne/export"),
                        Value::Null,
                    )
                    .await,
            );
        }
        for r in [request, "rr-00000000000000000000000000000000"] {
            answers.push(act(&server, who, r, "decision", json!({ "verdict": "granted" })).await);
            answers.push(
                act(
                    &server,
                    who,
                    r,
                    "extension",
                    json!({ "months": 1, "reason": "x", "told_on": today() }),
                )
                .await,
            );
            answers.push(act(&server, who, r, "escalation", json!({ "grounds": "x" })).await);
        }
        let (first_status, first_body) = &answers[0];
        assert_eq!(*first_status, 404, "{who}: {first_body}");
        for (status, body) in &answers {
            assert_eq!(
                (*status, body),
                (404, first_body),
                "{who} is answered alike for what exists and what does not"
            );
        }
    }
    // Nothing was filed or changed by any of them.
    let (_, listed) = server
        .api(
            &server.token("worker"),
            "GET",
            &format!("/api/v1/dossiers/{}/requests", house.id),
            Value::Null,
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["status"], "received");
}

/// The last 31 January on or before today: at most a year ago, and a month later is the end
/// of February.
fn last_31_january() -> String {
    let today = rights::parse_date(&today()).unwrap();
    let this_year = format!("{}-01-31", today.year());
    if rights::parse_date(&this_year).unwrap() <= today {
        this_year
    } else {
        format!("{}-01-31", today.year() - 1)
    }
}

#[tokio::test]
async fn a_request_received_on_31_january_is_due_at_the_end_of_february_and_shows_as_overdue() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let received = last_31_january();
    let year: i32 = received[..4].parse().unwrap();
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let end_of_february = format!("{year}-02-{}", if leap { 29 } else { 28 });
    let (status, filed) = server
        .api(
            &server.token("worker"),
            "POST",
            &format!("/api/v1/dossiers/{}/requests", house.id),
            json!({ "subject": "p-daan", "kind": "rectification", "received_on": received,
                    "details": "per brief ontvangen" }),
        )
        .await;
    assert_eq!(status, 201, "{filed}");
    assert_eq!(filed["deadline"], end_of_february);
    assert_eq!(filed["filed_role"], "worker");
    let id = filed["id"].as_str().unwrap();
    let overdue = today() > end_of_february;
    assert_eq!(filed["overdue"], overdue);
    if overdue {
        // The first month is over: no extension can be recorded any more.
        let (status, body) = act(
            &server,
            "worker",
            id,
            "extension",
            json!({ "months": 2, "reason": "complex", "told_on": end_of_february }),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("not_extendable"))
        );
    }

    // The manager counts, the privacy officer sees each request, others see nothing.
    let path = "/api/v1/teams/team-noord/rights-requests/overdue";
    let (status, counts) = server
        .api(&server.token("manager"), "GET", path, Value::Null)
        .await;
    assert_eq!(status, 200, "{counts}");
    assert!(
        counts.get("requests").is_none(),
        "no detail for the manager: {counts}"
    );
    let (status, detail) = server
        .api(&server.token("privacy_officer"), "GET", path, Value::Null)
        .await;
    assert_eq!(status, 200);
    let listed = detail["requests"].as_array().unwrap();
    if overdue {
        // A team of two: one late request would point at its worker, so the manager reads
        // "< 5"; the privacy officer, who sees each request anyway, the exact count.
        assert_eq!(counts["total"], "< 5", "{counts}");
        assert_eq!(counts["by_kind"]["rectification"], "< 5");
        assert_eq!(detail["total"], 1);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["id"], id);
        assert_eq!(listed[0]["subject"], "p-daan");
    }
    for (who, code) in [
        ("worker", "managers_and_privacy_officer_only"),
        ("resident", "managers_and_privacy_officer_only"),
        ("admin", "managers_and_privacy_officer_only"),
    ] {
        let (status, body) = server
            .api(&server.token(who), "GET", path, Value::Null)
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some(code)),
            "{who}"
        );
    }
    let (status, body) = server
        .api(
            &server.token("manager"),
            "GET",
            "/api/v1/teams/team-zuid/rights-requests/overdue",
            Value::Null,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("other_team"))
    );
}

#[tokio::test]
async fn an_extension_of_up_to_two_months_is_recorded_once_with_its_reason_within_the_first_month()
{
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let (_, filed) = file_as(&server, "resident", &house.id, json!({ "kind": "erasure" })).await;
    let id = filed["id"].as_str().unwrap();
    let today = today();
    for (body, code) in [
        (
            json!({ "months": 3, "reason": "veel", "told_on": today }),
            "invalid_extension",
        ),
        (
            json!({ "months": 1, "reason": " ", "told_on": today }),
            "text_required",
        ),
        (
            json!({ "months": 1, "reason": "veel", "told_on": "2020-01-01" }),
            "invalid_extension",
        ),
        (
            json!({ "months": 1, "reason": "veel", "told_on": "morgen" }),
            "invalid_date",
        ),
    ] {
        let (status, answer) = act(&server, "worker", id, "extension", body.clone()).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}"
        );
    }
    // The resident cannot extend their own request's deadline.
    let (status, _) = act(
        &server,
        "resident",
        id,
        "extension",
        json!({ "months": 1, "reason": "x", "told_on": today }),
    )
    .await;
    assert_eq!(status, 404);
    let (status, extended) = act(
        &server,
        "worker",
        id,
        "extension",
        json!({ "months": 2, "reason": "veel gegevens bij ketenpartners", "told_on": today }),
    )
    .await;
    assert_eq!(status, 200, "{extended}");
    assert_eq!(extended["deadline"], date_after(&today, 3));
    assert_eq!(extended["status"], "extended");
    assert_eq!(extended["extension"]["months"], 2);
    assert_eq!(extended["extension"]["told_on"], today);
    let (status, again) = act(
        &server,
        "worker",
        id,
        "extension",
        json!({ "months": 1, "reason": "nog meer", "told_on": today }),
    )
    .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("not_extendable"))
    );
    let (_, mine) = server
        .api(
            &server.token("resident"),
            "GET",
            "/api/v1/me/requests",
            Value::Null,
        )
        .await;
    assert_eq!(mine[0]["status_label"], "in behandeling, termijn verlengd");
}

#[tokio::test]
async fn a_refused_request_is_escalated_to_the_manager_then_to_the_privacy_officer() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let (_, filed) = file_as(
        &server,
        "resident",
        &house.id,
        json!({ "kind": "erasure", "details": "verwijder alles" }),
    )
    .await;
    let id = filed["id"].as_str().unwrap();
    let today = today();
    let in_14_days = rights::escalation_deadline(rights::parse_date(&today).unwrap())
        .unwrap()
        .to_string();

    // Nothing to escalate before a refusal.
    let (status, body) = act(
        &server,
        "resident",
        id,
        "escalation",
        json!({ "grounds": "te traag" }),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_escalatable"))
    );
    // A refusal needs its reasons.
    let (status, body) = act(
        &server,
        "worker",
        id,
        "decision",
        json!({ "verdict": "refused" }),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("text_required"))
    );
    let (status, refused) = act(
        &server,
        "worker",
        id,
        "decision",
        json!({ "verdict": "refused", "reasons": "bewaarplicht Jeugdwet (R23)", "ground": "retention_duty" }),
    )
    .await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["status"], "refused");
    // The legal ground, in the resident's words too.
    assert_eq!(refused["decision"]["ground"], "retention_duty");
    assert_eq!(
        refused["decision"]["ground_label"],
        "wettelijke bewaarplicht"
    );
    assert_eq!(refused["can_escalate_to"], "manager");
    let (status, body) = act(
        &server,
        "worker2",
        id,
        "decision",
        json!({ "verdict": "granted" }),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("decided_already"))
    );

    // First level: the team manager.
    let (status, escalated) = act(
        &server,
        "resident",
        id,
        "escalation",
        json!({ "grounds": "mijn belang weegt zwaarder" }),
    )
    .await;
    assert_eq!(status, 200, "{escalated}");
    assert_eq!(escalated["status"], "escalated_to_manager");
    assert_eq!(escalated["escalations"][0]["deadline"], in_14_days);
    assert_eq!(escalated["running_deadline"], in_14_days);
    let (status, _) = act(
        &server,
        "resident",
        id,
        "escalation",
        json!({ "grounds": "nog eens" }),
    )
    .await;
    assert_eq!(status, 409, "one escalation at a time");
    for who in ["privacy_officer", "worker", "resident", "admin"] {
        let (status, _) = act(
            &server,
            who,
            id,
            "escalation/decision",
            json!({ "verdict": "granted", "reasons": "x" }),
        )
        .await;
        assert_eq!(status, 404, "{who} does not decide the manager's level");
    }
    let (status, upheld) = act(
        &server,
        "manager",
        id,
        "escalation/decision",
        json!({ "verdict": "refused", "reasons": "wettelijke bewaartermijn" }),
    )
    .await;
    assert_eq!(status, 200, "{upheld}");
    assert_eq!(upheld["status"], "refused");
    assert_eq!(upheld["can_escalate_to"], "privacy_officer");

    // Second level: the privacy officer.
    let (status, escalated) = act(
        &server,
        "resident",
        id,
        "escalation",
        json!({ "grounds": "naar de FG" }),
    )
    .await;
    assert_eq!(status, 200, "{escalated}");
    assert_eq!(escalated["status"], "escalated_to_privacy_officer");
    assert_eq!(escalated["escalations"][1]["level"], "privacy_officer");
    let (status, _) = act(
        &server,
        "manager",
        id,
        "escalation/decision",
        json!({ "verdict": "granted", "reasons": "x" }),
    )
    .await;
    assert_eq!(status, 404, "the manager has decided their level");
    let (status, final_) = act(
        &server,
        "privacy_officer",
        id,
        "escalation/decision",
        json!({ "verdict": "refused", "reasons": "bewaarplicht weegt zwaarder" }),
    )
    .await;
    assert_eq!(status, 200, "{final_}");
    assert_eq!(final_["status"], "refusal_upheld");
    assert!(final_["can_escalate_to"].is_null());
    let (status, _) = act(
        &server,
        "resident",
        id,
        "escalation",
        json!({ "grounds": "nog eens" }),
    )
    .await;
    assert_eq!(status, 409, "both levels are done");
    let (_, mine) = server
        .api(
            &server.token("resident"),
            "GET",
            "/api/v1/me/requests",
            Value::Null,
        )
        .await;
    assert!(
        mine[0]["status_label"]
            .as_str()
            .unwrap()
            .contains("Autoriteit Persoonsgegevens")
    );
}

/// The household of the export test: cast name, person id, name, age in years (on 1 January of
/// this year's birthday, so the age holds all year).
const FAMILY: [(&str, &str, &str, i32); 4] = [
    ("ouder1", "p-ouder1", "Olga Smit", 41),
    ("ouder2", "p-ouder2", "Otto Smit", 43),
    ("kind1", "p-kind1", "Kees Smit", 12),
    ("kind2", "p-kind2", "Kim Smit", 16),
];

fn sentinel_of(person: &str) -> String {
    format!("SENTINEL-R19-{person}-7c1e")
}

#[tokio::test]
async fn each_member_of_a_two_parent_two_child_household_gets_a_copy_of_their_own_data_only() {
    let server = TestServer::new().await;
    let year = time::OffsetDateTime::now_utc().year();
    let persons: Vec<Value> = FAMILY
        .iter()
        .map(|(_, id, name, age)| {
            let mut p =
                json!({ "id": id, "name": name, "birth_date": format!("{}-01-01", year - age) });
            if id.starts_with("p-kind") {
                p["gezag"] = json!(["p-ouder1", "p-ouder2"]);
            }
            p
        })
        .collect();
    let house = create_dossier(&server, json!(persons)).await;
    let w = server.token("worker");
    for (_, person, _, _) in FAMILY {
        let (status, made) = server
            .api(
                &w,
                "POST",
                &format!("/api/v1/dossiers/{}/residents", house.id),
                json!({ "person": person }),
            )
            .await;
        assert_eq!(status, 201, "{made}");
    }
    // One work note about each member, carrying that member's sentinel.
    let record = house.doc("record");
    let mut worker = Peer::open(&server, "worker", record, "entries").await;
    for (_, person, _, _) in FAMILY {
        let text = format!("werkaantekening {}", sentinel_of(person));
        worker
            .edit(record, |d| {
                entry(d, &format!("e-{person}"), &[person], &text)
            })
            .await;
    }
    let others = worker.settle(Duration::from_millis(100)).await;
    assert!(others.is_empty() && !worker.closed, "{others:?}");

    let export = |who: &'static str, person: &'static str, format: &'static str| {
        let server = &server;
        let id = house.id.clone();
        async move {
            let url = format!(
                "http://{}/api/v1/dossiers/{id}/persons/{person}/export?format={format}",
                server.addr
            );
            let res = reqwest::Client::new()
                .get(url)
                .bearer_auth(server.token(who))
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let holds_only = |body: &str, person: &str, label: &str| {
        assert!(
            body.contains(&sentinel_of(person)),
            "{label}: own sentinel present"
        );
        for (_, other, _, _) in FAMILY {
            if other != person {
                assert!(
                    !body.contains(&sentinel_of(other)),
                    "{label}: no sentinel of {other}"
                );
            }
        }
    };
    // Each member takes their own copy, from 12 on; JSON and printable HTML alike.
    for (who, person, name, _) in FAMILY {
        let (status, body) = export(who, person, "json").await;
        assert_eq!(status, 200, "{who}: {body}");
        holds_only(&body, person, who);
        let copy: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(copy["schema"], "regie.person-export.v1");
        assert_eq!(copy["person"]["name"], name);
        assert_eq!(copy["entries"].as_array().unwrap().len(), 1);
        assert_eq!(copy["entries"][0]["category"], "work_note");
        let (status, page) = export(who, person, "html").await;
        assert_eq!(status, 200);
        assert!(page.contains("<html lang=\"nl\">") && page.contains("@media print"));
        holds_only(&page, person, who);
        // The worker hands over the same copy.
        let (status, body) = export("worker", person, "json").await;
        assert_eq!(status, 200);
        holds_only(&body, person, "worker");
    }
    // R16: a parent takes the copy of a child under 16, not of one who is 16.
    let (status, body) = export("ouder2", "p-kind1", "json").await;
    assert_eq!(status, 200, "{body}");
    holds_only(&body, "p-kind1", "a parent for the 12-year-old");
    let (status, body) = export("ouder1", "p-kind2", "json").await;
    assert_eq!(
        (status, body.contains("subject_acts_alone")),
        (403, true),
        "{body}"
    );
    // Children have no authority over their parents or each other.
    let (status, _) = export("kind2", "p-ouder1", "json").await;
    assert_eq!(status, 404);
    let (status, _) = export("kind1", "p-kind2", "json").await;
    assert_eq!(status, 404);
    // Every copy is on record as an export of that person's data.
    let log = server
        .state
        .hub
        .store()
        .audit_events(Some(house.id.parse().unwrap()))
        .await
        .unwrap();
    let exports: Vec<_> = log
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e.action == "export")
        .collect();
    assert_eq!(exports.len(), 4 * 3 + 1);
    assert!(
        exports
            .iter()
            .all(|e| e.persons.as_deref().is_some_and(|p| !p.contains(',')))
    );
    // The resident's copy lists the accesses to their data, their own copy included.
    let (_, body) = export("ouder1", "p-ouder1", "json").await;
    let copy: Value = serde_json::from_str(&body).unwrap();
    assert!(
        copy["access_log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["action"] == "export" && l["role"] == "worker"),
        "{}",
        copy["access_log"]
    );
}

#[tokio::test]
async fn a_child_under_twelve_asks_through_a_parent_and_is_told_so() {
    let server = TestServer::new().await;
    let year = time::OffsetDateTime::now_utc().year();
    let house = create_dossier(
        &server,
        json!([
            { "id": "p-ouder1", "name": "Olga Smit", "birth_date": "1985-05-05" },
            { "id": "p-kind1", "name": "Kees Smit", "birth_date": format!("{}-12-31", year - 11), "gezag": ["p-ouder1"] },
        ]),
    )
    .await;
    for person in ["p-ouder1", "p-kind1"] {
        let (status, _) = server
            .api(
                &server.token("worker"),
                "POST",
                &format!("/api/v1/dossiers/{}/residents", house.id),
                json!({ "person": person }),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (status, body) = file_as(&server, "kind1", &house.id, json!({ "kind": "access" })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("too_young_to_act_alone"))
    );
    let (status, body) = file_as(
        &server,
        "ouder1",
        &house.id,
        json!({ "kind": "access", "subject": "p-kind1" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["subject"], "p-kind1");
    // The parent sees the request they filed; so does the child, whom it concerns.
    for who in ["ouder1", "kind1"] {
        let (_, mine) = server
            .api(
                &server.token(who),
                "GET",
                "/api/v1/me/requests",
                Value::Null,
            )
            .await;
        assert_eq!(mine[0]["id"], body["id"], "{who}");
    }
}

#[tokio::test]
async fn the_council_report_counts_without_personal_data_and_suppresses_counts_below_five() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    // Five more dossiers: six opened in all, above the threshold; one share of each kind, below.
    for i in 0..5 {
        create_dossier(
            &server,
            json!([{ "id": format!("p-extra{i}"), "name": format!("Extra Persoon{i}") }]),
        )
        .await;
    }
    let (status, _) = file_as(
        &server,
        "resident",
        &house.id,
        json!({ "kind": "objection" }),
    )
    .await;
    assert_eq!(status, 201);
    let path = "/api/v1/reports/council";
    for who in ["manager", "privacy_officer"] {
        let (status, report) = server
            .api(&server.token(who), "GET", path, Value::Null)
            .await;
        assert_eq!(status, 200, "{who}: {report}");
        assert_eq!(report["dossiers_opened"], 6, "{report}");
        assert_eq!(report["threshold"], 5);
        for small in [
            &report["dossiers_closed"],
            &report["break_glass_uses"],
            &report["shares_by_ground"]["consent"],
            &report["shares_by_ground"]["application"],
            &report["shares_by_ground"]["four_eyes"],
            &report["rights_requests"]["objection"],
            &report["rights_requests"]["access"],
            &report["rights_open_overdue"],
        ] {
            assert_eq!(small, "< 5", "{report}");
        }
        // No number below five anywhere, and nothing that names or points at anyone.
        let text = report.to_string();
        for n in 0..5 {
            assert!(
                !text.contains(&format!(":{n},")) && !text.contains(&format!(":{n}}}")),
                "{text}"
            );
        }
        for personal in [
            "Sanne", "p-sanne", "Daan", "anna", &house.id, "Persoon", "ggd",
        ] {
            assert!(!text.contains(personal), "{personal} in {text}");
        }
    }
    let (status, body) = server
        .api(
            &server.token("manager"),
            "GET",
            &format!("{path}?from=2026-13-01"),
            Value::Null,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_date"))
    );
    let url = format!("http://{}{path}?format=html", server.addr);
    let page = reqwest::Client::new()
        .get(url)
        .bearer_auth(server.token("privacy_officer"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<td class=\"n\">6</td>") && page.contains("&lt; 5"),
        "{page}"
    );
    assert!(!page.contains("Sanne") && !page.contains(&house.id));
    for who in ["worker", "resident", "admin", "backoffice", "partner"] {
        let (status, _) = server
            .api(&server.token(who), "GET", path, Value::Null)
            .await;
        assert_eq!(status, 403, "{who}");
    }
}

#[tokio::test]
async fn the_processing_register_lists_one_activity_per_regime_with_its_retention_for_the_privacy_officer()
 {
    let server = TestServer::new().await;
    let path = "/api/v1/registers/processing";
    let (status, register) = server
        .api(&server.token("privacy_officer"), "GET", path, Value::Null)
        .await;
    assert_eq!(status, 200, "{register}");
    let activities = register["activities"].as_array().unwrap();
    let regimes: Vec<&str> = activities
        .iter()
        .map(|a| a["regime"].as_str().unwrap())
        .collect();
    assert_eq!(
        regimes,
        [
            "wmo2015",
            "jeugdwet",
            "wgbo",
            "participatiewet",
            "refused_or_not_adopted"
        ]
    );
    // R23's terms, from the same source the destruction uses.
    let years: Vec<u64> = activities
        .iter()
        .map(|a| a["retention_years"].as_u64().unwrap())
        .collect();
    assert_eq!(years, [15, 20, 20, 10, 5]);
    assert_eq!(register["controller"], "de gemeente");
    let url = format!("http://{}{path}?format=html", server.addr);
    let page = reqwest::Client::new()
        .get(url)
        .bearer_auth(server.token("privacy_officer"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Register van verwerkingsactiviteiten") && page.contains("20 jaar"));
    for who in ["manager", "worker", "resident", "admin"] {
        let (status, body) = server
            .api(&server.token(who), "GET", path, Value::Null)
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("privacy_officer_only")),
            "{who}"
        );
    }
}

#[tokio::test]
async fn a_breach_found_in_the_access_log_takes_its_dossier_and_persons_from_the_log_and_runs_a_72_hour_clock()
 {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let log = server
        .state
        .hub
        .store()
        .audit_events(Some(house.id.parse().unwrap()))
        .await
        .unwrap();
    let (seq, row) = log
        .iter()
        .find(|(_, e)| e.persons.as_deref().is_some_and(|p| p.contains("p-sanne")))
        .expect("a row about Sanne");
    let fg = server.token("privacy_officer");
    let now = time::OffsetDateTime::now_utc();
    let discovered = regie_server::report::utc_rfc3339(now - time::Duration::hours(73));
    let (status, late) = server
        .api(
            &fg,
            "POST",
            "/api/v1/breaches",
            json!({
                "what": "Inzage zonder reden gevonden in het logboek",
                "discovered_at": discovered,
                "source": { "kind": "access_log", "audit_seq": seq },
                "risk": "risk",
                "measures": "medewerker gesproken",
            }),
        )
        .await;
    assert_eq!(status, 201, "{late}");
    assert_eq!(late["dossiers"], json!([house.id]));
    for p in row.persons.as_deref().unwrap().split(',') {
        assert!(
            late["persons"].as_array().unwrap().contains(&json!(p)),
            "{late}"
        );
    }
    let notify_by = time::OffsetDateTime::parse(
        late["notify_by"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let discovered_at =
        time::OffsetDateTime::parse(&discovered, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert_eq!(notify_by - discovered_at, time::Duration::hours(72));
    assert_eq!(late["notification_overdue"], true);
    assert!(late["hours_left"].as_i64().unwrap() <= -1);
    let (status, fresh) = server
        .api(
            &fg,
            "POST",
            "/api/v1/breaches",
            json!({
                "what": "Brief naar verkeerd adres", "source": { "kind": "other" }, "risk": "none",
            }),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(fresh["notification_overdue"], false);
    assert!(
        (71..=72).contains(&fresh["hours_left"].as_i64().unwrap()),
        "{fresh}"
    );

    let id = late["id"].as_str().unwrap();
    let (status, notified) = server
        .api(&fg, "POST", &format!("/api/v1/breaches/{id}/notification"), json!({
            "authority_notified": true, "inform_residents": true, "reason": "hoog risico voor de bewoner",
        }))
        .await;
    assert_eq!(status, 200, "{notified}");
    assert!(notified["authority_notified_at"].is_string());
    assert_eq!(notified["notification_overdue"], false);
    assert_eq!(notified["inform_residents"], true);
    let (status, listed) = server
        .api(&fg, "GET", "/api/v1/breaches", Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 2);

    for (body, code) in [
        (
            json!({ "what": "x", "source": { "kind": "other" }, "risk": "none",
                 "discovered_at": regie_server::report::utc_rfc3339(now + time::Duration::hours(2)) }),
            "invalid_time",
        ),
        (
            json!({ "what": "x", "source": { "kind": "access_log", "audit_seq": 999_999 }, "risk": "none" }),
            "no_such_log_row",
        ),
        (
            json!({ "what": "x", "source": { "kind": "other" }, "risk": "enorm" }),
            "invalid_risk",
        ),
        (
            json!({ "what": " ", "source": { "kind": "other" }, "risk": "none" }),
            "text_required",
        ),
    ] {
        let (status, answer) = server
            .api(&fg, "POST", "/api/v1/breaches", body.clone())
            .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}"
        );
    }
    let (status, answer) = server
        .api(
            &fg,
            "POST",
            "/api/v1/breaches/br-none/notification",
            json!({
            "authority_notified": true, "inform_residents": false, "reason": "x" }),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("no_such_breach"))
    );
    for who in ["manager", "worker", "admin", "resident"] {
        let (status, _) = server
            .api(&server.token(who), "GET", "/api/v1/breaches", Value::Null)
            .await;
        assert_eq!(status, 403, "{who}");
        let (status, _) = server
            .api(
                &server.token(who),
                "POST",
                "/api/v1/breaches",
                json!({ "what": "x", "source": { "kind": "other" }, "risk": "none" }),
            )
            .await;
        assert_eq!(status, 403, "{who}");
    }
}

/// The privacy officer records that Anna's tablet (storage id `storage-lost`) was lost: a
/// breach opened from a lost device, which revokes it. The breach as answered (201).
pub(crate) async fn report_annas_tablet_lost(server: &TestServer) -> Value {
    report_annas_device_lost(server, "storage-lost").await
}

/// [`report_annas_tablet_lost`] for Anna's device with storage id `device`.
pub(crate) async fn report_annas_device_lost(server: &TestServer, device: &str) -> Value {
    let (status, breach) = server
        .api(
            &server.token("privacy_officer"),
            "POST",
            "/api/v1/breaches",
            json!({
                "what": "Tablet verloren in de trein",
                "source": { "kind": "lost_device", "user": "anna", "device": device },
                "risk": "high",
                "measures": "apparaat op afstand ingetrokken",
            }),
        )
        .await;
    assert_eq!(status, 201, "{breach}");
    breach
}

#[tokio::test]
async fn a_lost_device_is_revoked_at_once_and_refused_at_every_later_join_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let token = server.token("worker");
    let mut lost = Peer::connect_as(&server, &token, "tablet-lost", Some("storage-lost"))
        .await
        .unwrap();
    lost.request(house.doc("plan")).await;
    let breach = report_annas_tablet_lost(&server).await;
    assert_eq!(breach["device"], "storage-lost");
    // The lost tablet's connection ends at once, with the reason.
    let mut told = None;
    while let Some(m) = lost.next().await {
        if let regie_sync_protocol::Message::Error { message } = m {
            told = Some(message);
        }
    }
    assert!(lost.closed, "the lost device was disconnected");
    assert!(told.is_some_and(|m| m.contains("reported lost")));
    assert!(
        join_refusal(&server, "worker", "storage-lost")
            .await
            .is_some_and(|m| m.contains("reported lost"))
    );
    // Anna's other tablet, and the lost storage id under another user, still join.
    assert_eq!(join_refusal(&server, "worker", "storage-new").await, None);
    assert_eq!(join_refusal(&server, "worker2", "storage-lost").await, None);
    server.stop().await;
    let server = TestServer::start(dir.path()).await;
    assert!(
        join_refusal(&server, "worker", "storage-lost")
            .await
            .is_some_and(|m| m.contains("reported lost"))
    );
}

#[tokio::test]
async fn a_granted_restriction_makes_the_policy_refuse_every_share_about_the_person_until_lifted() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let w = server.token("worker");
    let path_share = format!("/api/v1/dossiers/{}/partners", house.id);
    let share = || server.api(&w, "POST", &path_share, regie_server::demo::partner_share());
    let (_, filed) = file_as(
        &server,
        "resident",
        &house.id,
        json!({ "kind": "restriction", "details": "niets meer delen" }),
    )
    .await;
    let id = filed["id"].as_str().unwrap();
    let (status, granted) = act(
        &server,
        "worker",
        id,
        "decision",
        json!({ "verdict": "granted", "reasons": "juistheid betwist" }),
    )
    .await;
    assert_eq!(status, 200, "{granted}");
    assert_eq!(granted["status"], "granted");
    let (status, refused) = share().await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("processing_restricted")),
        "{refused}"
    );
    let path = format!("/api/v1/dossiers/{}/restrictions/p-sanne", house.id);
    for who in ["resident", "colleague", "manager"] {
        let (status, _) = server
            .api(&server.token(who), "DELETE", &path, Value::Null)
            .await;
        assert_eq!(status, 404, "{who} cannot lift it");
    }
    let (status, _) = server.api(&w, "DELETE", &path, Value::Null).await;
    assert_eq!(status, 204);
    let (status, body) = share().await;
    assert_eq!(status, 201, "shared again once lifted: {body}");
    let (status, body) = server.api(&w, "DELETE", &path, Value::Null).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_restricted"))
    );
}

#[tokio::test]
async fn while_restricted_no_record_entry_about_the_person_is_written_but_others_are() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let record = house.doc("record");
    let (_, filed) = file_as(
        &server,
        "resident",
        &house.id,
        json!({ "kind": "restriction" }),
    )
    .await;
    let id = filed["id"].as_str().unwrap();
    let (status, _) = act(
        &server,
        "worker",
        id,
        "decision",
        json!({ "verdict": "granted", "reasons": "juistheid betwist" }),
    )
    .await;
    assert_eq!(status, 200);

    let mut anna = Peer::open(&server, "worker", record, "entries").await;
    anna.edit(record, |d| entry(d, "e-daan", &["p-daan"], "OVER-DAAN"))
        .await;
    assert!(
        anna.wait_in_sync(record).await,
        "an entry about Daan is written"
    );
    anna.edit(record, |d| {
        entry(d, "e-sanne", &["p-sanne"], "OVER-SANNE-TIJDENS-BEPERKING")
    })
    .await;
    let refused = anna.settle(Duration::from_millis(300)).await.into_iter().any(|m| {
        matches!(m, Message::Rejected { ref reason, .. } if reason == "processing_restricted")
    });
    assert!(
        refused,
        "an entry about Sanne is rejected while she is restricted"
    );
    let mut colleague = Peer::open(&server, "worker2", record, "entries").await;
    assert!(
        colleague
            .wait_for(record, |d| document_texts(d.clone().document())
                .iter()
                .any(|t| t.contains("OVER-DAAN")))
            .await
    );
    assert!(
        !document_texts(colleague.doc(record).document())
            .iter()
            .any(|t| t.contains("OVER-SANNE-TIJDENS-BEPERKING")),
        "the refused entry was not merged"
    );
}

#[tokio::test]
async fn a_restriction_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let (_, filed) = file_as(
        &server,
        "resident",
        &house.id,
        json!({ "kind": "restriction" }),
    )
    .await;
    let id = filed["id"].as_str().unwrap();
    let (status, _) = act(
        &server,
        "worker",
        id,
        "decision",
        json!({ "verdict": "granted" }),
    )
    .await;
    assert_eq!(status, 200);
    server.stop().await;
    let server = TestServer::start(dir.path()).await;
    let (status, refused) = server
        .api(
            &server.token("worker"),
            "POST",
            &format!("/api/v1/dossiers/{}/partners", house.id),
            regie_server::demo::partner_share(),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("processing_restricted"))
    );
}

#[tokio::test]
async fn shares_consents_and_maatwerk_appear_only_in_the_copy_of_the_person_they_concern() {
    let server = TestServer::new().await;
    // Sanne's consent to the GGD, the GGD share about her and her maatwerk application.
    let house = seed_household(&server).await;
    let w = server.token("worker");
    let copy = |person: &'static str| {
        let path = format!("/api/v1/dossiers/{}/persons/{person}/export", house.id);
        let (server, w) = (&server, w.clone());
        async move { server.api(&w, "GET", &path, Value::Null).await }
    };
    let (status, sanne) = copy("p-sanne").await;
    assert_eq!(status, 200, "{sanne}");
    assert_eq!(sanne["shares"][0]["partner"], "ggd");
    assert_eq!(sanne["shares"][0]["ground"], "consent");
    assert_eq!(sanne["consents"][0]["given_by"], "p-sanne");
    assert_eq!(sanne["maatwerk"][0]["n"], 1);
    assert!(
        sanne["maatwerk"][0]["extract"]
            .to_string()
            .contains("Schuldhulpverlening")
    );
    let (status, daan) = copy("p-daan").await;
    assert_eq!(status, 200, "{daan}");
    for part in ["shares", "consents", "maatwerk", "entries"] {
        assert_eq!(
            daan[part],
            json!([]),
            "Daan's copy holds nothing of Sanne's {part}"
        );
    }
    assert!(!daan.to_string().contains("Schuldhulpverlening"));
    assert_eq!(daan["person"]["gezag"], json!(["p-sanne"]));
}

#[tokio::test]
async fn the_small_count_threshold_is_configurable() {
    let server = TestServer::builder()
        .oversight(regie_server::config::OversightArgs {
            small_count_threshold: 1,
            ..Default::default()
        })
        .start()
        .await;
    seed_household(&server).await;
    let (status, report) = server
        .api(
            &server.token("manager"),
            "GET",
            "/api/v1/reports/council",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["threshold"], 1);
    assert_eq!(report["dossiers_opened"], 1);
    assert_eq!(report["shares_by_ground"]["consent"], 1);
    assert_eq!(report["shares_by_ground"]["application"], 1);
    assert_eq!(report["break_glass_uses"], "< 1");
}

/// Every number in a JSON value, wherever it is.
fn numbers(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Number(n) => out.extend(n.as_f64()),
        Value::Array(a) => a.iter().for_each(|x| numbers(x, out)),
        Value::Object(o) => o.values().for_each(|x| numbers(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn a_team_of_two_s_manager_sees_no_overdue_count_below_five() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let two_months_ago = rights::due_after(rights::parse_date(&today()).unwrap(), -2)
        .unwrap()
        .to_string();
    for (subject, kind) in [("p-sanne", "access"), ("p-daan", "erasure")] {
        let (status, filed) = server
            .api(
                &server.token("worker"),
                "POST",
                &format!("/api/v1/dossiers/{}/requests", house.id),
                json!({ "subject": subject, "kind": kind, "received_on": two_months_ago }),
            )
            .await;
        assert_eq!(status, 201, "{filed}");
        assert_eq!(filed["overdue"], true);
    }
    let path = "/api/v1/teams/team-noord/rights-requests/overdue";
    let (status, summary) = server
        .api(&server.token("manager"), "GET", path, Value::Null)
        .await;
    assert_eq!(status, 200, "{summary}");
    let mut shown = Vec::new();
    numbers(&summary, &mut shown);
    assert!(
        shown.iter().all(|n| *n >= 5.0),
        "no count below five: {summary}"
    );
    assert_eq!(summary["total"], "< 5");
    assert_eq!(summary["by_kind"]["erasure"], "< 5");
    let (_, detail) = server
        .api(&server.token("privacy_officer"), "GET", path, Value::Null)
        .await;
    assert_eq!(detail["total"], 2, "the privacy officer reads each request");
    assert_eq!(detail["requests"].as_array().unwrap().len(), 2);
}
