//! Revocation (R28, SPEC §2): when a relationship ends, connected devices get `revoked` for each
//! document they may no longer read, and nothing of that document afterwards.

use std::time::Duration;

use automerge::{ROOT, ReadDoc, transaction::Transactable};
use regie_sync_protocol::Message;
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn an_unassigned_worker_is_told_to_purge_and_receives_nothing_more() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let (plan, record) = (house.doc("plan"), house.doc("record"));
    let mut anna = Peer::connect(&server, &server.token("worker"))
        .await
        .unwrap();
    let mut bram = Peer::connect(&server, &server.token("worker2"))
        .await
        .unwrap();
    for p in [&mut anna, &mut bram] {
        p.request(plan).await;
        p.request(record).await;
        assert!(
            p.wait_for(plan, |d| d.get(ROOT, "goals").unwrap().is_some())
                .await
        );
    }
    unassign_bram(&server, &house).await;
    let others = bram.settle(Duration::from_millis(300)).await;
    let mut revoked: Vec<_> = others
        .iter()
        .filter_map(|m| match m {
            Message::Revoked {
                document_id,
                reason,
                ..
            } => Some((*document_id, reason.clone())),
            _ => None,
        })
        .collect();
    revoked.sort();
    let mut expected = vec![
        (plan, "not_in_audience".to_owned()),
        (record, "not_in_audience".to_owned()),
    ];
    expected.sort();
    assert_eq!(revoked, expected);

    let received_before = bram.received.len();
    anna.edit(plan, |d| {
        let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
        d.splice_text(&h, 0, 0, "na de overdracht").unwrap();
    })
    .await;
    anna.settle(Duration::from_millis(200)).await;
    bram.settle(Duration::from_millis(300)).await;
    assert_eq!(
        bram.received.len(),
        received_before,
        "nothing after revoked: {:?}",
        &bram.received[received_before..]
    );
    // And asking again gets the answer for unknown documents.
    bram.request(plan).await;
    assert!(matches!(
        bram.next().await,
        Some(Message::DocUnavailable { .. })
    ));
    server.stop().await;
}

#[tokio::test]
async fn an_unlinked_resident_loses_the_plan_and_their_view() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let mut sanne = Peer::connect(&server, &server.token("resident"))
        .await
        .unwrap();
    sanne.request(house.doc("plan")).await;
    sanne.request(house.doc("view/p-sanne")).await;
    sanne.settle(Duration::from_millis(200)).await;
    let (status, _) = server
        .api(
            &server.token("worker"),
            "DELETE",
            &format!("/api/v1/dossiers/{}/residents/p-sanne", house.id),
            Value::Null,
        )
        .await;
    assert_eq!(status, 204);
    let others = sanne.settle(Duration::from_millis(300)).await;
    let revoked = others
        .iter()
        .filter(|m| matches!(m, Message::Revoked { .. }))
        .count();
    assert_eq!(revoked, 2, "{others:?}");
    server.stop().await;
}
