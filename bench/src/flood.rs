//! Scenario (f), issue 12: hostile devices against honest ones. The steady workload of (a)/(d)
//! runs twice per round on a fresh Regie each time — `quiet`, and `flood` with H hostile
//! devices attacking for the whole measured window — so the honest devices' latency and the
//! server's memory can be compared as ratios within one run. Each hostile device holds an
//! ordinary token of the workload and cycles through the attacks of issue 12, reconnecting
//! whenever the server closes it: Bloom filters asking for four billion probes or zero bits per
//! entry, a compressed change of zeros that would inflate to 512 MiB, a presence message of a
//! megabyte, and a burst of requests for a document answered over and over.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use regie_core::id::DocumentKey;
use regie_sync_protocol::{DocumentId, Message, PeerId, encode};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

use regie_testkit::connection::Plain;

use crate::peer::Endpoint;

/// What the hostile devices did during a run.
#[derive(Debug, Default)]
pub struct FloodStats {
    /// Attack messages sent.
    pub attacks: AtomicU64,
    /// Times the server closed a hostile connection.
    pub closed: AtomicU64,
    /// Connections the server refused outright (limits).
    pub refused: AtomicU64,
}

/// The attacks, in the order each hostile device cycles through them.
const ATTACKS: usize = 5;

fn leb(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A sync message with one compressed change chunk of 512 MiB of zeros (about 500 KB).
pub fn deflate_bomb() -> Vec<u8> {
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let mib = vec![0u8; 1 << 20];
    for _ in 0..512 {
        z.write_all(&mib).expect("deflate into memory");
    }
    let body = z.finish().expect("deflate into memory");
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
    leb(&mut chunk, body.len() as u64);
    chunk.extend_from_slice(&body);
    let mut m = vec![0x42, 0, 0, 0, 1];
    leb(&mut m, chunk.len() as u64);
    m.extend_from_slice(&chunk);
    m
}

/// One hostile device: attacks `doc` until `stop`, reconnecting after every close.
pub async fn hostile(
    to: Endpoint,
    doc: DocumentId,
    bomb: Arc<Vec<u8>>,
    stop: Instant,
    stats: Arc<FloodStats>,
) {
    // One peer id for the device's whole life, and every attack frame encoded once, so the
    // load generator spends its time sending, not building (it shares the cores).
    let peer = PeerId::new(format!("hostile-{}", uuid::Uuid::new_v4().simple()));
    let attacks = attack_frames(&peer, doc, &bomb);
    let mut round = 0usize;
    while Instant::now() < stop {
        let joined = Plain::open(
            to.addr,
            &to.path,
            peer.clone(),
            None,
            Duration::from_secs(10),
        )
        .await;
        let mut conn = match joined {
            Ok(conn) => conn,
            Err(_) => {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let frames = &attacks[round % ATTACKS];
        round += 1;
        for frame in frames.iter() {
            stats.attacks.fetch_add(1, Ordering::Relaxed);
            if conn
                .send_frame(tungstenite::Message::Binary(frame.clone()))
                .await
                .is_err()
            {
                break;
            }
        }
        // Read (and drop) what comes back until the server closes or goes quiet.
        loop {
            match tokio::time::timeout(Duration::from_millis(500), conn.next_frame()).await {
                Ok(Some(Ok(tungstenite::Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                    stats.closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(Some(Ok(_))) => {}
                Err(_) => break,
            }
            if Instant::now() >= stop {
                break;
            }
        }
    }
}

/// The frames of each attack, encoded.
fn attack_frames(peer: &PeerId, doc: DocumentId, bomb: &[u8]) -> Vec<Vec<tungstenite::Bytes>> {
    let server = PeerId::new("server");
    let sync = |data: Vec<u8>| Message::Request {
        sender_id: peer.clone(),
        target_id: server.clone(),
        document_id: doc,
        data,
    };
    let attacks: [Vec<Message>; ATTACKS] = [
        vec![sync(
            hex::decode("4200000100080108ffffffff0fff00").expect("hex"),
        )],
        vec![sync(hex::decode("42000001000301000100").expect("hex"))],
        vec![Message::Sync {
            sender_id: peer.clone(),
            target_id: server.clone(),
            document_id: doc,
            data: bomb.to_vec(),
        }],
        vec![Message::Ephemeral {
            sender_id: peer.clone(),
            target_id: server.clone(),
            count: 0,
            session_id: "flood".into(),
            document_id: doc,
            data: vec![7; 1 << 20],
        }],
        (0..2000)
            .map(|_| sync(hex::decode("4200000000").expect("hex")))
            .collect(),
    ];
    attacks
        .iter()
        .map(|a| {
            a.iter()
                .map(|m| tungstenite::Bytes::from(encode(m)))
                .collect()
        })
        .collect()
}

/// The document hostile device `i` attacks: the plan of one of the workload's dossiers.
pub fn target(layout: &crate::workload::Layout, i: usize) -> DocumentId {
    layout.doc(i % layout.dossiers.len(), &DocumentKey::Plan)
}
