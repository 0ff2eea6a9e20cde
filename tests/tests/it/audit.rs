//! The audit log (I3): opens, writes, refusals and HTTP reads are on record with their NEN 7513
//! fields, the hash chain verifies through the API, and a row altered behind the server's back
//! is reported with its position.

use std::time::Duration;

use automerge::{ROOT, ReadDoc, transaction::Transactable};
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn every_access_is_on_record_and_the_chain_verifies() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let mut worker = Peer::connect_as(
        &server,
        &server.token("worker"),
        "tablet-anna",
        Some("device-anna"),
    )
    .await
    .unwrap();
    worker.request(plan).await;
    assert!(
        worker
            .wait_for(plan, |d| d.get(ROOT, "goals").unwrap().is_some())
            .await
    );
    worker
        .edit(plan, |d| {
            let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
            d.splice_text(&h, 0, 0, "SENTINEL-not-in-the-log").unwrap();
        })
        .await;
    worker.settle(Duration::from_millis(200)).await;
    let mut resident = Peer::connect(&server, &server.token("resident"))
        .await
        .unwrap();
    resident.request(house.doc("record")).await;
    resident.settle(Duration::from_millis(200)).await;

    let events = server
        .state
        .hub
        .store()
        .audit_events(Some(house.id.parse().unwrap()))
        .await
        .unwrap();
    let find = |action: &str, actor: &str, document: &str| {
        events
            .iter()
            .map(|(_, e)| e)
            .find(|e| {
                e.action == action && e.actor == actor && e.document.as_deref() == Some(document)
            })
            .unwrap_or_else(|| panic!("no {action} by {actor} on {document} in {events:#?}"))
            .clone()
    };
    let open = find("open", "anna", "plan");
    assert_eq!(open.basis.as_deref(), Some("assignment"));
    assert_eq!(open.role, "worker");
    assert_eq!(open.device.as_deref(), Some("device-anna"));
    assert_eq!(open.persons.as_deref(), Some("p-daan,p-sanne"));
    assert_eq!(
        find("write", "anna", "plan").detail.as_deref(),
        Some("1 changes")
    );
    assert_eq!(find("deny", "sanne", "record").outcome, "not_in_audience");
    // Dossier content never enters the log.
    assert!(
        events
            .iter()
            .all(|(_, e)| !format!("{e:?}").contains("SENTINEL"))
    );

    let (status, v) = server
        .api(
            &server.token("privacy_officer"),
            "GET",
            "/api/v1/audit/verify",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["intact"], true, "{v}");
    assert!(v["rows"].as_u64().unwrap() >= 8);
    let (status, _) = server
        .api(
            &server.token("worker"),
            "GET",
            "/api/v1/audit/verify",
            Value::Null,
        )
        .await;
    assert_eq!(status, 403, "only the privacy officer reads the log");
    server.stop().await;
}

#[tokio::test]
async fn a_tampered_audit_row_is_reported_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    seed_household(&server).await;
    let pool = &database_file(dir.path()).await;
    // An attacker with file access: the append-only triggers do not stop them, the chain does.
    drop_audit_update_trigger(pool).await;
    let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM audit ORDER BY seq LIMIT 1 OFFSET 2")
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit SET actor = 'nobody' WHERE seq = $1")
        .bind(seq)
        .execute(pool)
        .await
        .unwrap();
    let (_, v) = server
        .api(
            &server.token("privacy_officer"),
            "GET",
            "/api/v1/audit/verify",
            Value::Null,
        )
        .await;
    assert_eq!(v["intact"], false);
    assert_eq!(v["first_broken_seq"], seq);
    assert_eq!(v["rows"], seq - 1);
    server.stop().await;
}

#[tokio::test]
async fn the_audit_log_refuses_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    seed_household(&server).await;
    let pool = &database_file(dir.path()).await;
    assert!(
        sqlx::query("UPDATE audit SET actor = 'x'")
            .execute(pool)
            .await
            .is_err()
    );
    assert!(
        sqlx::query("DELETE FROM audit")
            .execute(pool)
            .await
            .is_err()
    );
    server.stop().await;
}
