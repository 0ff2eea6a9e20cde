//! permessage-deflate on `/sync` (issue 19, fewer bytes on reconnect): a client that offers it,
//! as browsers and Node's `ws` do, is answered without context takeover in either direction (so
//! an idle connection holds no deflate state) and syncs as any other; one that does not offer it
//! gets no extension. Inflating is bounded like any frame (I7): a compressed message over the
//! protocol limit gets the same `error` as an uncompressed one, a deflate bomb closes only its own
//! connection, and a compressed frame on a connection that never agreed to compression is refused.

use std::io::Write;

use automerge::{ROOT, ReadDoc};
use regie_sync_protocol::{MAX_MESSAGE_BYTES, Message, PeerId, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Opens `/sync` by hand, offering `extensions` if given; the response head and the socket.
async fn upgrade(
    server: &TestServer,
    token: &str,
    extensions: Option<&str>,
) -> (String, TcpStream) {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let offer = extensions
        .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET /sync?token={token} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{offer}\r\n",
        server.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(PATIENCE, tcp.read(&mut byte))
            .await
            .expect("the server answers the upgrade")
            .unwrap();
        assert_eq!(n, 1, "the server closed during the upgrade");
        head.push(byte[0]);
    }
    (String::from_utf8(head).unwrap().to_ascii_lowercase(), tcp)
}

/// A client frame (masked) with `rsv1` marking a compressed message.
fn client_frame(rsv1: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x80 | if rsv1 { 0x40 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x12, 0x34, 0x56, 0x78];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads server frames until the connection ends (bounded): the close code, if a close frame came.
async fn close_code(tcp: &mut TcpStream) -> Option<u16> {
    let mut all = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut all)).await;
    let mut rest = &all[..];
    while rest.len() >= 2 {
        let opcode = rest[0] & 0x0f;
        let (len, at) = match rest[1] & 0x7f {
            126 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let payload = &rest[at..at + len];
        if opcode == 0x8 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
        rest = &rest[at + len..];
    }
    None
}

/// `bytes` as a permessage-deflate payload: raw DEFLATE, sync flush, trailing `00 00 ff ff`
/// dropped (RFC 7692 §7.2.1).
fn deflated(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.flush().unwrap();
    let mut out = std::mem::take(encoder.get_mut());
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn join(peer: &str) -> Vec<u8> {
    encode(&Message::Join {
        sender_id: PeerId::new(peer),
        supported_protocol_versions: vec!["1".into()],
        peer_metadata: None,
    })
}

#[tokio::test]
async fn an_offer_of_deflate_is_answered_without_context_takeover_and_no_offer_gets_none() {
    let server = TestServer::new().await;
    let token = server.token("worker");
    // What Chrome offers.
    let (head, _) = upgrade(
        &server,
        &token,
        Some("permessage-deflate; client_max_window_bits"),
    )
    .await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    let agreed = head
        .lines()
        .find_map(|l| l.strip_prefix("sec-websocket-extensions:"))
        .unwrap_or_else(|| panic!("no extension agreed: {head}"));
    for term in [
        "permessage-deflate",
        "server_no_context_takeover",
        "client_no_context_takeover",
    ] {
        assert!(agreed.contains(term), "{term} missing from {agreed}");
    }

    let (head, _) = upgrade(&server, &token, None).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(!head.contains("sec-websocket-extensions"), "{head}");
    server.stop().await;
}

#[tokio::test]
async fn a_compressing_device_syncs_and_a_plain_one_sees_its_edit() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let mut compressing = Peer::connect_deflate(&server, &server.token("worker"))
        .await
        .unwrap();
    assert!(compressing.fetch(plan, "hulpvraag").await);
    // Long enough to be compressed in both directions (over the server's 512-byte threshold).
    let long = "Afspraak met de woningcorporatie over de betalingsregeling. ".repeat(40);
    compressing
        .edit(plan, |d| {
            use automerge::transaction::Transactable;
            d.put(ROOT, "hulpvraag", long.as_str()).unwrap();
        })
        .await;
    assert!(compressing.wait_in_sync(plan).await);

    let mut plain = Peer::connect(&server, &server.token("worker2"))
        .await
        .unwrap();
    plain.request(plan).await;
    assert!(
        plain
            .wait_for(plan, |d| d
                .get(ROOT, "hulpvraag")
                .unwrap()
                .is_some_and(|(v, _)| v.as_str() == Some(long.as_str())))
            .await,
        "the plain device sees the compressed edit"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_compressed_message_over_the_limit_gets_the_same_error_as_a_plain_one() {
    let server = TestServer::new().await;
    let mut device = Peer::connect_deflate(&server, &server.token("worker"))
        .await
        .unwrap();
    // Zeros compress to a few kilobytes; inflated they are one byte over the limit.
    device.send_raw(vec![0u8; MAX_MESSAGE_BYTES + 1]).await;
    let mut error = None;
    while let Some(m) = device.next().await {
        if let Message::Error { message } = m {
            error = Some(message);
        }
    }
    assert!(device.closed, "the connection closes");
    let error = error.expect("an error before the close");
    assert!(error.contains("exceeds the limit"), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn a_deflate_bomb_closes_only_its_own_connection() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let mut bystander = Peer::open(&server, "worker2", plan, "hulpvraag").await;

    // 64 MiB of zeros in about 64 KB: eight times the protocol limit once inflated.
    let bomb = deflated(&vec![0u8; 8 * MAX_MESSAGE_BYTES]);
    assert!(bomb.len() < 128 * 1024, "{} bytes", bomb.len());
    let (head, mut tcp) =
        upgrade(&server, &server.token("worker"), Some("permessage-deflate")).await;
    assert!(head.contains("permessage-deflate"), "{head}");
    tcp.write_all(&client_frame(false, 0x2, &join("bomber")))
        .await
        .unwrap();
    tcp.write_all(&client_frame(true, 0x2, &bomb))
        .await
        .unwrap();
    assert_eq!(
        close_code(&mut tcp).await,
        Some(1009),
        "closed as too big (RFC 6455 §7.4.1)"
    );

    // The same compressed frame where compression was never agreed is a protocol error: the
    // server does not inflate what it did not agree to.
    let (head, mut tcp) = upgrade(&server, &server.token("worker"), None).await;
    assert!(!head.contains("permessage-deflate"), "{head}");
    tcp.write_all(&client_frame(false, 0x2, &join("sneaky")))
        .await
        .unwrap();
    tcp.write_all(&client_frame(true, 0x2, &deflated(&join("sneaky"))))
        .await
        .unwrap();
    assert_eq!(
        close_code(&mut tcp).await,
        Some(1002),
        "closed as a protocol error"
    );

    // The bystander and new devices are unaffected.
    bystander
        .edit(plan, |d| {
            use automerge::transaction::Transactable;
            d.put(ROOT, "hulpvraag", "Nog steeds hier").unwrap();
        })
        .await;
    assert!(bystander.wait_in_sync(plan).await);
    let mut late = Peer::connect_deflate(&server, &server.token("worker"))
        .await
        .unwrap();
    late.request(plan).await;
    assert!(
        late.wait_for(plan, |d| d
            .get(ROOT, "hulpvraag")
            .unwrap()
            .is_some_and(|(v, _)| v.as_str() == Some("Nog steeds hier")))
            .await
    );
    server.stop().await;
}
