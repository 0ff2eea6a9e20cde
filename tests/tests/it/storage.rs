//! Storage behind the hub: appended changes are compacted into a snapshot without losing any,
//! cold documents are evicted from memory and load again intact, and a device's sync state
//! survives its disconnection.

use std::time::Duration;

use automerge::{ROOT, ReadDoc, transaction::Transactable};

use crate::support::*;

/// `n` edits of the plan, one change each: a character appended to the hulpvraag.
async fn type_hulpvraag(peer: &mut Peer, plan: regie_sync_protocol::DocumentId, n: usize) {
    for i in 0..n {
        peer.edit(plan, |d| {
            let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
            d.splice_text(&h, i, 0, "x").unwrap();
        })
        .await;
        peer.settle(Duration::from_millis(1)).await;
    }
    peer.settle(Duration::from_millis(300)).await;
}

fn typed(d: &automerge::AutoCommit) -> usize {
    root_text(d, "hulpvraag").map_or(0, |t| t.len())
}

#[tokio::test]
async fn six_hundred_changes_are_compacted_and_all_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let mut worker = Peer::open(&server, "worker", plan, "goals").await;
    type_hulpvraag(&mut worker, plan, 600).await;
    let pool = server.state.hub.store().pool().clone();
    let (upto, left): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT upto_seq FROM snapshots WHERE document = ?1), (SELECT COUNT(*) FROM changes WHERE document = ?1)",
    )
    .bind(plan.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        upto >= 500,
        "a snapshot folded in the first changes (upto {upto}, {left} left)"
    );
    assert!(
        left < 500,
        "the folded changes are gone from the append log ({left} left)"
    );
    server.stop().await;

    let server = TestServer::start(dir.path()).await;
    let mut fresh = Peer::connect(&server, &server.token("worker2"))
        .await
        .unwrap();
    fresh.request(plan).await;
    assert!(fresh.wait_for(plan, |d| typed(d) == 600).await);
    server.stop().await;
}

#[tokio::test]
async fn cold_documents_are_evicted_and_load_again_intact() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), 2).await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    {
        let mut worker = Peer::open(&server, "worker", plan, "goals").await;
        type_hulpvraag(&mut worker, plan, 3).await;
    }
    // Another device opens the other documents one by one; the plan goes cold.
    let mut other = Peer::connect(&server, &server.token("worker2"))
        .await
        .unwrap();
    for key in ["record", "meta", "maatwerk/1", "partner/ggd"] {
        other.request(house.doc(key)).await;
        other.settle(Duration::from_millis(100)).await;
    }
    assert!(
        !server.state.hub.is_hot(plan),
        "the plan went cold and was evicted"
    );
    other.request(plan).await;
    assert!(other.wait_for(plan, |d| typed(d) == 3).await);
    server.stop().await;
}

#[tokio::test]
async fn a_devices_sync_state_is_kept_when_it_disconnects() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    {
        let mut tablet = Peer::connect_as(
            &server,
            &server.token("worker"),
            "tablet-1",
            Some("storage-tablet-1"),
        )
        .await
        .unwrap();
        tablet.request(plan).await;
        assert!(
            tablet
                .wait_for(plan, |d| d.get(ROOT, "goals").unwrap().is_some())
                .await
        );
    }
    let pool = server.state.hub.store().pool().clone();
    let mut rows = 0;
    for _ in 0..50 {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sync_states WHERE user_id = 'anna' AND storage_id = 'storage-tablet-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
        rows = n;
        if rows > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rows, 1);
    server.stop().await;
}

#[tokio::test]
async fn stopping_the_server_closes_every_sync_session_and_keeps_its_sync_state() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let mut tablet = Peer::connect_as(
        &server,
        &server.token("worker"),
        "tablet-2",
        Some("storage-tablet-2"),
    )
    .await
    .unwrap();
    tablet.request(plan).await;
    assert!(
        tablet
            .wait_for(plan, |d| d.get(ROOT, "goals").unwrap().is_some())
            .await
    );
    let pool = server.state.hub.store().pool().clone();
    // The tablet stays connected while the server stops (SIGTERM does the same).
    server.stop().await;
    let mut said = None;
    while let Some(m) = tablet.next().await {
        if let regie_sync_protocol::Message::Error { message } = m {
            said = Some(message);
        }
    }
    assert!(tablet.closed);
    assert!(said.is_some_and(|m| m.contains("shutting down")));
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM sync_states WHERE user_id = 'anna' AND storage_id = 'storage-tablet-2'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(n, 1, "the sync state was saved before the server stopped");
}
