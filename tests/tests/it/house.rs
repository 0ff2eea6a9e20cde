//! Issue 13's observations (I5, I8): every authorization question goes to the one policy, an
//! outsider cannot tell what exists, a relationship change commits whole or not at all and
//! memory follows SQL, and a resident view is never left behind its record.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// What `who` answers to each of `calls`: status and error code.
async fn answers(
    server: &TestServer,
    who: &str,
    calls: &[(&str, String, Value)],
) -> Vec<(u16, Value)> {
    let token = server.token(who);
    let mut out = Vec::new();
    for (method, path, body) in calls {
        let (status, body) = server.api(&token, method, path, body.clone()).await;
        out.push((status, body["error"]["code"].clone()));
    }
    out
}

#[tokio::test]
async fn a_manager_neither_sees_nor_settles_tasks_nor_links_residents_but_assigns_workers() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let id = &house.id;
    let refused = answers(
        &server,
        "manager",
        &[
            ("GET", format!("/api/v1/dossiers/{id}/tasks"), Value::Null),
            (
                "POST",
                format!("/api/v1/dossiers/{id}/tasks/1/done"),
                Value::Null,
            ),
            (
                "POST",
                format!("/api/v1/dossiers/{id}/residents"),
                json!({ "person": "p-daan" }),
            ),
            (
                "DELETE",
                format!("/api/v1/dossiers/{id}/residents/p-sanne"),
                Value::Null,
            ),
        ],
    )
    .await;
    for answer in &refused {
        assert_eq!(answer, &(404, json!("not_found")));
    }
    let (status, _) = server
        .api(
            &server.token("manager"),
            "POST",
            &format!("/api/v1/dossiers/{id}/assignments"),
            json!({ "user": "carla" }),
        )
        .await;
    assert_eq!(status, 204, "the team's manager assigns");
    let (status, tasks) = server
        .api(
            &server.token("worker"),
            "GET",
            &format!("/api/v1/dossiers/{id}/tasks"),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{tasks}");
}

#[tokio::test]
async fn outsiders_get_the_same_answer_whether_or_not_a_dossier_or_weighing_exists() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    crate::share::write_weighing(&server, &house).await;
    let real = &house.id;
    let unknown = uuid::Uuid::new_v4().to_string();
    for who in [
        "zuid_worker",
        "manager",
        "partner",
        "resident",
        "backoffice",
        "admin",
    ] {
        let ask = |dossier: &str, weighing: &str| {
            vec![
                (
                    "POST",
                    format!("/api/v1/dossiers/{dossier}/weighings/{weighing}/approve"),
                    Value::Null,
                ),
                (
                    "POST",
                    format!("/api/v1/dossiers/{dossier}/break-glass"),
                    json!(["not", "an", "object"]),
                ),
                (
                    "POST",
                    format!("/api/v1/dossiers/{dossier}/break-glass"),
                    json!({ "reason": "" }),
                ),
            ]
        };
        let on_real = answers(&server, who, &ask(real, "w1")).await;
        let on_unknown_weighing = answers(&server, who, &ask(real, "w-none")).await;
        let on_unknown = answers(&server, who, &ask(&unknown, "w1")).await;
        assert_eq!(on_real, on_unknown, "{who}: real vs unknown dossier");
        assert_eq!(
            on_real, on_unknown_weighing,
            "{who}: real vs unknown weighing"
        );
        assert!(on_real.iter().all(|(s, _)| *s == 404), "{who}: {on_real:?}");
    }
    // Offline reads: every document of the real dossier, and made-up ones, are refused alike.
    let keys = [
        "plan",
        "record",
        "meta",
        "view/p-sanne",
        "view/p-daan",
        "maatwerk/1",
        "maatwerk/7",
        "partner/ggd",
        "partner/veilig-thuis",
    ];
    for who in ["zuid_worker", "manager", "partner", "backoffice"] {
        let mut events = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            for dossier in [real.as_str(), unknown.as_str()] {
                events.push(json!({ "id": format!("{i}-{dossier}"), "dossier": dossier, "document": key, "opened_at": "2026-11-22T09:00:00Z" }));
            }
        }
        let (status, answer) = server
            .api(
                &server.token(who),
                "POST",
                "/api/v1/audit/offline-reads",
                json!({ "device": "device-probe", "sent_at": "2026-11-22T10:00:00Z", "events": events }),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        let reasons: BTreeSet<String> = answer["refused"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                // What the caller may read is accepted; everything else must look alike.
                !answer["accepted"].as_array().unwrap().contains(&r["id"])
            })
            .map(|r| r["reason"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            reasons,
            BTreeSet::from(["not_found".to_owned()]),
            "{who}: {answer}"
        );
    }
}

#[tokio::test]
async fn a_dossier_whose_meta_would_break_its_schema_is_refused_at_the_door() {
    let server = TestServer::new().await;
    let worker = server.token("worker");
    for person in [
        json!({ "id": "p-x", "name": "Sanne", "birth_date": "14-03-1988" }),
        json!({ "id": "p-x", "name": "S".repeat(600), "birth_date": "1988-03-14" }),
    ] {
        let (status, body) = server
            .api(
                &worker,
                "POST",
                "/api/v1/dossiers",
                json!({ "district": "noord", "team": "team-noord", "assigned": ["anna"], "persons": [person], "resident_agreed": true, "agreed_on": "2026-11-01" }),
            )
            .await;
        assert_eq!(status, 400, "{body}");
    }
    let (_, mine) = server
        .api(&worker, "GET", "/api/v1/me/documents", Value::Null)
        .await;
    assert_eq!(
        mine.as_array().map(Vec::len),
        Some(0),
        "nothing was created: {mine}"
    );
}

/// The dossiers and documents `who` is offered, as `me/documents` lists them.
async fn offered(server: &TestServer, who: &str) -> BTreeSet<String> {
    let (status, mine) = server
        .api(
            &server.token(who),
            "GET",
            "/api/v1/me/documents",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{mine}");
    mine.as_array()
        .unwrap()
        .iter()
        .map(|d| format!("{} {}", d["dossier"], d["key"]))
        .collect()
}

#[tokio::test]
async fn concurrent_relationship_changes_leave_sql_memory_and_devices_agreeing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let id = house.id.clone();
    let addr = server.addr;
    let (admin, worker) = (server.token("admin"), server.token("worker"));
    let mut calls = Vec::new();
    for i in 0..50 {
        let (token, method, path, body) = match i % 5 {
            0 => (
                &admin,
                "POST",
                format!("/api/v1/dossiers/{id}/assignments"),
                json!({ "user": "carla" }),
            ),
            1 => (
                &admin,
                "DELETE",
                format!("/api/v1/dossiers/{id}/assignments/carla"),
                Value::Null,
            ),
            2 => (
                &worker,
                "POST",
                format!("/api/v1/dossiers/{id}/residents"),
                json!({ "person": "p-daan" }),
            ),
            3 => (
                &worker,
                "DELETE",
                format!("/api/v1/dossiers/{id}/residents/p-daan"),
                Value::Null,
            ),
            // Invalid: no such person, and a body that is no user.
            _ if i % 2 == 0 => (
                &worker,
                "POST",
                format!("/api/v1/dossiers/{id}/residents"),
                json!({ "person": "p-nobody" }),
            ),
            _ => (
                &admin,
                "POST",
                format!("/api/v1/dossiers/{id}/assignments"),
                json!({ "user": "not a user id!" }),
            ),
        };
        let (token, path) = (token.clone(), path.clone());
        calls.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let req = client
                .request(method.parse().unwrap(), format!("http://{addr}{path}"))
                .bearer_auth(token);
            let req = if body.is_null() { req } else { req.json(&body) };
            req.send().await.unwrap().status().as_u16()
        }));
    }
    for call in calls {
        let status = call.await.unwrap();
        assert!(matches!(status, 201 | 204 | 400 | 404 | 422), "{status}");
    }
    let before: Vec<_> = {
        let mut v = Vec::new();
        for who in ["worker", "colleague", "resident"] {
            v.push(offered(&server, who).await);
        }
        v
    };
    let entry = server.state.hub.dossier(id.parse().unwrap()).unwrap();
    let carla = before[1].iter().any(|d| d.contains("\"plan\""));
    assert_eq!(
        carla,
        entry.rel.is_assigned(&"carla".parse().unwrap()),
        "listing follows memory"
    );
    server.stop().await;
    // SQL is what a restart reads: it must agree with what memory said.
    let server = TestServer::start(dir.path()).await;
    for (i, who) in ["worker", "colleague", "resident"].iter().enumerate() {
        assert_eq!(
            offered(&server, who).await,
            before[i],
            "{who} after a restart"
        );
    }
    let again = server.state.hub.dossier(id.parse().unwrap()).unwrap();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let names = |v: &[regie_core::id::UserId]| sorted(v.iter().map(|u| u.to_string()).collect());
    let persons =
        |v: &[regie_core::id::PersonId]| sorted(v.iter().map(|p| p.to_string()).collect());
    assert_eq!(names(&again.rel.assigned), names(&entry.rel.assigned));
    assert_eq!(
        persons(&again.rel.linked_persons),
        persons(&entry.rel.linked_persons)
    );
    // And `meta` lists the workers memory and SQL hold.
    let meta = server
        .state
        .hub
        .snapshot(again.documents[&regie_core::id::DocumentKey::Meta])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        sorted(regie_core::document::assigned(&meta)),
        names(&again.rel.assigned)
    );
}

#[tokio::test]
async fn a_view_left_behind_its_record_is_projected_again_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let record = house.doc("record");
    let view = house.doc("view/p-sanne");
    // What a stop between a record batch's commit and its view's write leaves: the record's
    // change in the store, the view not yet written.
    let mut doc = automerge::AutoCommit::load(
        &server
            .state
            .hub
            .snapshot(record)
            .await
            .unwrap()
            .unwrap()
            .save(),
    )
    .unwrap();
    let heads = doc.get_heads();
    entry(&mut doc, "e-behind", &["p-sanne"], "SENTINEL-ACHTERSTAND");
    let changes: Vec<Vec<u8>> = doc
        .get_changes(&heads)
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    let store = server.state.hub.store();
    let last = store.load_document(record).await.unwrap().last_seq;
    server.stop().await;
    {
        let store = open_store(dir.path()).await;
        let raw: Vec<&[u8]> = changes.iter().map(Vec::as_slice).collect();
        store.append_changes(record, last, &raw).await.unwrap();
    }
    let server = TestServer::start(dir.path()).await;
    let mut sanne = Peer::open(&server, "resident", view, "person").await;
    assert!(
        sanne
            .wait_for(view, |d| view_texts(d)
                .iter()
                .any(|t| t.contains("SENTINEL-ACHTERSTAND")))
            .await,
        "the view holds every entry the record holds about her"
    );
    sanne.settle(Duration::from_millis(100)).await;
}

/// The operations of the generated OpenAPI document, with the statuses each documents.
async fn operations(server: &TestServer) -> Vec<(String, String, BTreeSet<u16>)> {
    let (status, doc) = server
        .api("", "GET", "/api/v1/openapi.json", Value::Null)
        .await;
    assert_eq!(status, 200);
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let documented = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|s| s.parse().ok())
                .collect();
            out.push((method.to_uppercase(), path.clone(), documented));
        }
    }
    out
}

/// `path` with its placeholders filled: `{id}` and `{document}`, `{team}` by the given values,
/// the others by plausible ids that name nothing.
fn fill(path: &str, id: &str, document: &str, team: &str) -> String {
    path.replace("{id}", id)
        .replace("{document}", document)
        .replace("{team}", team)
        .replace("{user}", "nobody-here")
        .replace("{person}", "p-nobody")
        .replace("{weighing}", "w-none")
        .replace("{consent}", "c-none")
        .replace("{task}", "999999")
}

#[tokio::test]
async fn every_route_answers_as_documented_and_alike_for_unknown_and_forbidden() {
    let server = TestServer::new().await;
    let own = seed_household(&server).await;
    // Another district's dossier and signal, made by its own team.
    let dirk = server.token("zuid_worker");
    let (status, other) = server
        .api(
            &dirk,
            "POST",
            "/api/v1/dossiers",
            json!({ "district": "zuid", "team": "team-zuid", "persons": [{ "id": "p-zuid", "name": "Zoë" }], "resident_agreed": true, "agreed_on": "2026-11-01" }),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    let (status, signal) = server
        .api(
            &dirk,
            "POST",
            "/api/v1/signals",
            json!({ "summary": "zorgen", "source": "neighbour" }),
        )
        .await;
    assert_eq!(status, 201, "{signal}");
    let other_id = other["id"].as_str().unwrap().to_owned();
    let other_plan = other["documents"]["plan"].as_str().unwrap().to_owned();
    let unknown_doc = regie_sync_protocol::DocumentId::new_random().to_url();
    let unknown = uuid::Uuid::new_v4().to_string();
    let operations = operations(&server).await;
    let mut checked = 0;
    for who in [
        "worker",
        "colleague",
        "resident",
        "backoffice",
        "partner",
        "manager",
        "privacy_officer",
        "admin",
    ] {
        let token = server.token(who);
        for (method, path, documented) in &operations {
            if path == "/sync" {
                continue;
            }
            let body = if method == "POST" {
                json!({})
            } else {
                Value::Null
            };
            let call = |target: String| {
                let (token, method, body) = (token.clone(), method.clone(), body.clone());
                let server = &server;
                async move {
                    let (status, answer) = server.api(&token, &method, &target, body).await;
                    (status, answer["error"]["code"].clone())
                }
            };
            let id_of_other = if path.starts_with("/api/v1/signals/") {
                signal["id"].as_str().unwrap()
            } else {
                other_id.as_str()
            };
            let forbidden = call(fill(path, id_of_other, &other_plan, "team-zuid")).await;
            let missing = call(fill(path, &unknown, &unknown_doc, "team-nergens")).await;
            let mine = call(fill(
                path,
                &own.id,
                own.docs["plan"].to_url().as_str(),
                "team-noord",
            ))
            .await;
            for (what, (status, code)) in [
                ("forbidden", &forbidden),
                ("unknown", &missing),
                ("own", &mine),
            ] {
                assert!(
                    documented.contains(status),
                    "{who} {method} {path} ({what}) answered {status} {code}, documented {documented:?}"
                );
            }
            // A functional admin manages every dossier's assignments and residents: standing
            // there is real, so the answers may differ.
            let standing =
                who == "admin" && (path.contains("/assignments") || path.contains("/residents"));
            if !standing {
                assert_eq!(
                    forbidden, missing,
                    "{who} {method} {path}: another's dossier answered unlike an unknown one"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 200, "{checked} route × role pairs");
}
