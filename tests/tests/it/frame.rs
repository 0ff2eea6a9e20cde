//! Bad input loses nothing and hurts no one: a malformed, truncated, oversized or text frame, a
//! join with the wrong protocol, or a peer id that changes mid-connection gets an `error` and
//! that connection closes, while another client keeps syncing.

use std::time::Duration;

use automerge::{ROOT, ReadDoc, transaction::Transactable};
use futures_util::SinkExt;
use regie_sync_protocol::{MAX_MESSAGE_BYTES, Message, PeerId, encode};

use crate::support::*;

async fn expect_error_and_close(peer: &mut Peer, what: &str) -> String {
    let mut error = None;
    while let Some(m) = peer.next().await {
        if let Message::Error { message } = m {
            error = Some(message);
        }
    }
    assert!(peer.closed, "{what}: the connection must close");
    error.unwrap_or_else(|| panic!("{what}: no error message before the close"))
}

#[tokio::test]
async fn bad_frames_close_only_the_connection_that_sent_them() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let mut good = Peer::connect(&server, &server.token("worker"))
        .await
        .unwrap();
    let mut other = Peer::connect(&server, &server.token("worker2"))
        .await
        .unwrap();
    good.request(plan).await;
    other.request(plan).await;
    assert!(
        good.wait_for(plan, |d| d.get(ROOT, "hulpvraag").unwrap().is_some())
            .await
    );
    assert!(
        other
            .wait_for(plan, |d| d.get(ROOT, "hulpvraag").unwrap().is_some())
            .await
    );

    let valid = encode(&Message::Leave {
        sender_id: PeerId::new("x"),
    });
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("not cbor", vec![0xff, 0x00, 0x13]),
        ("truncated", valid[..valid.len() / 2].to_vec()),
        ("not a map", encode_cbor_array()),
        ("oversized", vec![0u8; MAX_MESSAGE_BYTES + 1]),
        (
            "garbage sync data",
            encode(&Message::Sync {
                sender_id: PeerId::new("PLACEHOLDER"),
                target_id: PeerId::new("s"),
                document_id: plan,
                data: vec![1, 2, 3],
            }),
        ),
    ];
    for (what, bytes) in bad {
        let mut evil = Peer::connect(&server, &server.token("worker"))
            .await
            .unwrap();
        let bytes = if what == "garbage sync data" {
            encode(&Message::Sync {
                sender_id: evil.id.clone(),
                target_id: PeerId::new("s"),
                document_id: plan,
                data: vec![1, 2, 3],
            })
        } else {
            bytes
        };
        evil.send_raw(bytes).await;
        let error = expect_error_and_close(&mut evil, what).await;
        assert!(!error.is_empty(), "{what}");
    }

    // A text frame, and a senderId that is not the one given at join.
    let mut evil = Peer::connect(&server, &server.token("worker"))
        .await
        .unwrap();
    evil.send_text("hello").await;
    assert!(
        expect_error_and_close(&mut evil, "text frame")
            .await
            .contains("binary")
    );
    let mut evil = Peer::connect(&server, &server.token("worker"))
        .await
        .unwrap();
    evil.send(&Message::Leave {
        sender_id: PeerId::new("someone-else"),
    })
    .await;
    assert!(
        expect_error_and_close(&mut evil, "spoofed sender")
            .await
            .contains("senderId")
    );

    // The well-behaved clients never noticed.
    good.edit(plan, |d| {
        let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
        d.splice_text(&h, 0, 0, "nog steeds bereikbaar").unwrap();
    })
    .await;
    assert!(
        other
            .wait_for(plan, |d| root_text(d, "hulpvraag").as_deref()
                == Some("nog steeds bereikbaar"))
            .await
    );
    assert!(!good.closed && !other.closed);
    good.settle(Duration::from_millis(50)).await;
    server.stop().await;
}

fn encode_cbor_array() -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(&vec![1, 2, 3], &mut out).unwrap();
    out
}

#[tokio::test]
async fn a_join_without_protocol_1_is_refused_with_an_error() {
    let server = TestServer::new().await;
    let url = format!("ws://{}/sync?token={}", server.addr, server.token("worker"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let join = Message::Join {
        sender_id: PeerId::new("p"),
        supported_protocol_versions: vec!["2".into()],
        peer_metadata: None,
    };
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        encode(&join).into(),
    ))
    .await
    .unwrap();
    let reply = futures_util::StreamExt::next(&mut ws)
        .await
        .unwrap()
        .unwrap();
    let m = regie_sync_protocol::decode(&reply.into_data()).unwrap();
    assert!(
        matches!(m, Message::Error { ref message } if message.contains("protocol")),
        "{m:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_join_claiming_another_users_peer_id_is_refused() {
    let server = TestServer::new().await;
    let _anna = Peer::connect_as(&server, &server.token("worker"), "tablet-of-anna", None)
        .await
        .unwrap();
    let url = format!(
        "ws://{}/sync?token={}",
        server.addr,
        server.token("resident")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let join = Message::Join {
        sender_id: PeerId::new("tablet-of-anna"),
        supported_protocol_versions: vec!["1".into()],
        peer_metadata: None,
    };
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        encode(&join).into(),
    ))
    .await
    .unwrap();
    let reply = futures_util::StreamExt::next(&mut ws)
        .await
        .unwrap()
        .unwrap();
    let m = regie_sync_protocol::decode(&reply.into_data()).unwrap();
    assert!(
        matches!(m, Message::Error { ref message } if message.contains("another user")),
        "{m:?}"
    );
    // The same user may reconnect with their own peer id (a second tab, a reconnect race).
    assert!(
        Peer::connect_as(&server, &server.token("worker"), "tablet-of-anna", None)
            .await
            .is_ok()
    );
    server.stop().await;
}
