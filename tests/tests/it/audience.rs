//! Audience gating (I1, I5; SPEC §2): each role syncs exactly its documents, everything else is
//! answered like an unknown document, and a sentinel planted in `record` reaches no connection
//! outside the record's audience — checked in decoded operations and materialized documents.

use std::time::Duration;

use automerge::{ObjType, ROOT, ReadDoc, transaction::Transactable};
use regie_sync_protocol::{DocumentId, Message};

use crate::support::*;

const SENTINEL: &str = "SENTINEL-7f3a-record-only";

async fn plant_sentinel(server: &TestServer, house: &Household) {
    let mut worker = Peer::connect(server, &server.token("worker"))
        .await
        .unwrap();
    let record = house.doc("record");
    worker.request(record).await;
    assert!(
        worker
            .wait_for(record, |d| d.get(ROOT, "entries").unwrap().is_some())
            .await
    );
    worker
        .edit(record, |d| {
            let entries = d.get(ROOT, "entries").unwrap().unwrap().1;
            let e = d.insert_object(&entries, 0, ObjType::Map).unwrap();
            d.put(&e, "id", "e1").unwrap();
            d.put(&e, "kind", "opinion").unwrap();
            d.put(&e, "category", "work_note").unwrap();
            let subjects = d.put_object(&e, "subjects", ObjType::List).unwrap();
            d.insert(&subjects, 0, "p-daan").unwrap();
            let text = d.put_object(&e, "text", ObjType::Text).unwrap();
            d.splice_text(&text, 0, 0, &format!("Zorgen over Daan: {SENTINEL}"))
                .unwrap();
        })
        .await;
    let others = worker.settle(Duration::from_millis(300)).await;
    assert!(
        others
            .iter()
            .all(|m| !matches!(m, Message::Rejected { .. })),
        "{others:?}"
    );
}

#[tokio::test]
async fn each_role_syncs_exactly_the_documents_the_spec_gives_it() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let all: Vec<String> = house.docs.keys().cloned().collect();
    let expect = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    for (who, readable) in [
        (
            "worker",
            expect(&["maatwerk/1", "meta", "partner/ggd", "plan", "record"]),
        ),
        ("resident", expect(&["maatwerk/1", "plan", "view/p-sanne"])),
        ("backoffice", expect(&["maatwerk/1"])),
        ("partner", expect(&["partner/ggd"])),
        ("colleague", expect(&[])),
        ("zuid_worker", expect(&[])),
        ("manager", expect(&[])),
        ("privacy_officer", expect(&[])),
    ] {
        let (synced, mut unavailable, _) = probe(&server, &house, who).await;
        assert_eq!(synced, readable, "{who} synced");
        unavailable.sort();
        let denied: Vec<String> = all
            .iter()
            .filter(|k| !readable.contains(k))
            .cloned()
            .collect();
        assert_eq!(unavailable, denied, "{who} was refused");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_document_listing_matches_what_each_role_may_sync() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let (_, listing) = server
        .api(
            &server.token("resident"),
            "GET",
            "/api/v1/me/documents",
            serde_json::Value::Null,
        )
        .await;
    let got: Vec<(String, String)> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["key"].as_str().unwrap().to_owned(),
                d["access"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("maatwerk/1".into(), "read".into()),
            ("plan".into(), "write".into()),
            ("view/p-sanne".into(), "read".into())
        ]
    );
    assert_eq!(listing[0]["url"], house.doc("maatwerk/1").to_url());
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_document_and_a_forbidden_one_get_the_same_answer() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let mut resident = Peer::connect(&server, &server.token("resident"))
        .await
        .unwrap();
    resident.request(house.doc("record")).await;
    let forbidden = resident.next().await.unwrap();
    resident.request(DocumentId::new_random()).await;
    let unknown = resident.next().await.unwrap();
    let strip = |m: Message| match m {
        Message::DocUnavailable {
            sender_id,
            target_id,
            ..
        } => (sender_id, target_id),
        other => panic!("expected doc-unavailable, got {other:?}"),
    };
    assert_eq!(strip(forbidden), strip(unknown));
    server.stop().await;
}

#[tokio::test]
async fn a_sentinel_in_the_record_reaches_no_resident_backoffice_or_partner_connection() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    // Outsiders connect and request everything before and after the sentinel is planted.
    let mut outsiders = Vec::new();
    for who in [
        "resident",
        "backoffice",
        "partner",
        "colleague",
        "zuid_worker",
    ] {
        let (_, _, peer) = probe(&server, &house, who).await;
        outsiders.push((who, peer));
    }
    plant_sentinel(&server, &house).await;
    for (_, peer) in &mut outsiders {
        for id in house.docs.values() {
            peer.request(*id).await;
        }
        peer.settle(Duration::from_millis(300)).await;
    }
    // The assigned colleague does get it: the scan can see a sentinel when there is one.
    let (_, _, mut worker2) = probe(&server, &house, "worker2").await;
    assert!(
        worker2.saw(SENTINEL),
        "the scan must find the sentinel where it is allowed"
    );
    for (who, peer) in &mut outsiders {
        assert!(!peer.saw(SENTINEL), "{who} received the record's sentinel");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_workers_edit_reaches_the_other_worker_without_asking() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let mut a = Peer::connect(&server, &server.token("worker"))
        .await
        .unwrap();
    let mut b = Peer::connect(&server, &server.token("worker2"))
        .await
        .unwrap();
    a.request(plan).await;
    b.request(plan).await;
    assert!(
        a.wait_for(plan, |d| d.get(ROOT, "hulpvraag").unwrap().is_some())
            .await
    );
    assert!(
        b.wait_for(plan, |d| d.get(ROOT, "hulpvraag").unwrap().is_some())
            .await
    );
    a.edit(plan, |d| {
        let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
        d.splice_text(&h, 0, 0, "Ik wil mijn schulden op orde")
            .unwrap();
    })
    .await;
    a.settle(Duration::from_millis(100)).await;
    assert!(
        b.wait_for(plan, |d| root_text(d, "hulpvraag").as_deref()
            == Some("Ik wil mijn schulden op orde"))
            .await
    );
    server.stop().await;
}
