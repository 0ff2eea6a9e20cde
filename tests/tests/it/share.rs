//! Sharing by decision (R12, R16, R17): a partner or the back office gets a document only on a
//! triage record for that recipient and those items, and on a ground that holds — consent from
//! everyone R16 names, or a weighing approved by a second worker of the team, which leaves an
//! "inform the resident" task open until done.

use std::time::Duration;

use automerge::{ObjType, ROOT, ReadDoc, transaction::Transactable};
use serde_json::{Value, json};

use crate::support::*;

async fn write_weighing(server: &TestServer, house: &Household) {
    let record = house.doc("record");
    let mut anna = Peer::connect(server, &server.token("worker"))
        .await
        .unwrap();
    anna.request(record).await;
    assert!(
        anna.wait_for(record, |d| d.get(ROOT, "safety").unwrap().is_some())
            .await
    );
    anna.edit(record, |d| {
        let safety = d.get(ROOT, "safety").unwrap().unwrap().1;
        let s = d.insert_object(&safety, 0, ObjType::Map).unwrap();
        d.put(&s, "id", "w1").unwrap();
        d.put(&s, "ground", "safety").unwrap();
        d.put(
            &s,
            "weighing",
            "Acute zorg om Daan; toestemming vragen brengt hem in gevaar",
        )
        .unwrap();
        d.put(&s, "recipient", "veilig-thuis").unwrap();
        let items = d.put_object(&s, "items", ObjType::List).unwrap();
        d.insert(&items, 0, "contact").unwrap();
        d.put(&s, "decided_by", "anna").unwrap();
        // A triage record for the share itself.
        let triage = d.get(ROOT, "triage").unwrap().unwrap().1;
        let t = d.insert_object(&triage, 0, ObjType::Map).unwrap();
        d.put(&t, "id", "t-vt").unwrap();
        d.put(&t, "moment", "share").unwrap();
        d.put(&t, "recipient", "partner:veilig-thuis").unwrap();
        let ti = d.put_object(&t, "items", ObjType::List).unwrap();
        d.insert(&ti, 0, "contact").unwrap();
        for k in [
            "purpose",
            "doelbinding",
            "proportionaliteit",
            "subsidiariteit",
            "decision",
        ] {
            d.put(&t, k, "onderbouwd in de weging").unwrap();
        }
        d.put(&t, "discussed_with_resident", false).unwrap();
        d.put(
            &t,
            "not_discussed_reason",
            "zou de veiligheid van Daan in gevaar brengen",
        )
        .unwrap();
    })
    .await;
    anna.settle(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_share_needs_a_triage_record_and_the_consent_r16_requires() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let w = server.token("worker");
    let partners = format!("/api/v1/dossiers/{}/partners", house.id);
    let share = |triage: &str, subjects: Value| json!({ "org": "ggd", "triage": triage, "purpose": "dat-informatie", "subjects": subjects, "ground": "consent" });
    let (status, body) = server
        .api(&w, "POST", &partners, share("t-nope", json!(["p-sanne"])))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("triage_missing"))
    );
    // Daan is 11: his parent with authority must consent, and has not (only Sanne for herself).
    let (status, body) = server
        .api(&w, "POST", &partners, share("t-ggd", json!(["p-daan"])))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("consent_missing")),
        "{body}"
    );
    let (status, _) = server
        .api(&w, "POST", &partners, share("t-ggd", json!(["p-sanne"])))
        .await;
    assert_eq!(status, 201, "Sanne consented for herself");
    let (status, body) = server
        .api(
            &w,
            "POST",
            &format!("/api/v1/dossiers/{}/maatwerk", house.id),
            json!({ "triage": "t-ggd", "applicant": "p-sanne" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("triage_missing")),
        "a triage for the GGD is no triage for the back office"
    );
    let (status, _) = server
        .api(
            &server.token("colleague"),
            "POST",
            &partners,
            share("t-ggd", json!(["p-sanne"])),
        )
        .await;
    assert_eq!(status, 404, "a colleague who is not assigned cannot share");
    server.stop().await;
}

#[tokio::test]
async fn sharing_without_consent_needs_a_second_worker_and_leaves_a_task_to_inform_the_resident() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    write_weighing(&server, &house).await;
    let w = server.token("worker");
    let partners = format!("/api/v1/dossiers/{}/partners", house.id);
    let share = json!({ "org": "veilig-thuis", "triage": "t-vt", "purpose": "melding", "ground": "four_eyes", "weighing": "w1" });
    let (status, body) = server.api(&w, "POST", &partners, share.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("second_approval_missing"))
    );

    let approve = format!("/api/v1/dossiers/{}/weighings/w1/approve", house.id);
    let (status, _) = server.api(&w, "POST", &approve, Value::Null).await;
    assert_eq!(status, 403, "nobody approves their own weighing");
    let (status, _) = server
        .api(&server.token("zuid_worker"), "POST", &approve, Value::Null)
        .await;
    assert_eq!(status, 403, "nor a worker of another team");
    let (status, _) = server
        .api(&server.token("colleague"), "POST", &approve, Value::Null)
        .await;
    assert_eq!(status, 204, "a second worker of the team approves");

    let (status, made) = server.api(&w, "POST", &partners, share).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["key"], "partner/veilig-thuis");
    let (_, tasks) = server
        .api(
            &w,
            "GET",
            &format!("/api/v1/dossiers/{}/tasks", house.id),
            Value::Null,
        )
        .await;
    assert_eq!(tasks[0]["kind"], "inform_resident");
    assert!(tasks[0]["done_at"].is_null());
    let task = tasks[0]["id"].as_i64().unwrap();
    let (status, _) = server
        .api(
            &w,
            "POST",
            &format!("/api/v1/dossiers/{}/tasks/{task}/done", house.id),
            Value::Null,
        )
        .await;
    assert_eq!(status, 204);
    let (_, tasks) = server
        .api(
            &w,
            "GET",
            &format!("/api/v1/dossiers/{}/tasks", house.id),
            Value::Null,
        )
        .await;
    assert_eq!(tasks[0]["done_by"], "anna");
    server.stop().await;
}
