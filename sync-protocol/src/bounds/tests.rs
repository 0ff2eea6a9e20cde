//! The pre-check against messages real Automerge writes (which must pass) and the hostile
//! shapes of issue 12 (which must be refused, naming their limit).

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, Automerge, ROOT};
use std::io::Write;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn check(data: &[u8]) -> Result<SyncStats, LimitError> {
    check_sync_message(data, &SyncLimits::default())
}

/// A document with `n` changes of a few operations each.
fn doc_with(n: usize) -> Automerge {
    let mut doc = AutoCommit::new();
    for i in 0..n {
        doc.put(ROOT, format!("k{i}"), i as i64).expect("put");
        let text = doc
            .put_object(ROOT, format!("t{i}"), automerge::ObjType::Text)
            .expect("text");
        doc.splice_text(&text, 0, 0, "een zin van de wijkcoach")
            .expect("splice");
        doc.commit();
    }
    doc.document().clone()
}

/// Every message two real peers exchange until they agree.
fn conversation(a: &mut Automerge, b: &mut Automerge) -> Vec<Vec<u8>> {
    let (mut sa, mut sb) = (sync::State::new(), sync::State::new());
    let mut out = Vec::new();
    for _ in 0..20 {
        let mut quiet = true;
        if let Some(m) = a.generate_sync_message(&mut sa) {
            let bytes = m.encode();
            out.push(bytes.clone());
            b.receive_sync_message(&mut sb, sync::Message::decode(&bytes).expect("decode"))
                .expect("receive");
            quiet = false;
        }
        if let Some(m) = b.generate_sync_message(&mut sb) {
            let bytes = m.encode();
            out.push(bytes.clone());
            a.receive_sync_message(&mut sa, sync::Message::decode(&bytes).expect("decode"))
                .expect("receive");
            quiet = false;
        }
        if quiet {
            break;
        }
    }
    out
}

#[test]
fn every_message_of_a_real_sync_passes_the_check() {
    let mut a = doc_with(30);
    let mut b = Automerge::new();
    let messages = conversation(&mut a, &mut b);
    assert!(messages.len() >= 2);
    let mut ops = 0;
    for m in &messages {
        ops += check(m).expect("honest message").ops;
    }
    assert!(ops > 0, "the changes were counted");
    assert_eq!(a.get_heads(), b.get_heads());
}

#[test]
fn a_whole_document_sent_as_a_v2_message_passes_and_counts_its_operations() {
    let mut a = doc_with(50);
    let mut b = doc_with(0);
    // Make b support v2 and have nothing: a then sends the whole document.
    let messages = conversation(&mut b, &mut a);
    let v2: Vec<_> = messages.iter().filter(|m| m[0] == 0x43).collect();
    assert!(!v2.is_empty(), "automerge sent a document chunk");
    let stats: Vec<SyncStats> = v2
        .iter()
        .map(|m| check(m).expect("honest v2 message"))
        .collect();
    // One carries the document (its changes and operations counted), the rest only heads.
    assert!(
        stats.iter().any(|s| s.chunks == 1 && s.ops >= 50 * 24),
        "{stats:?}"
    );
}

#[test]
fn a_bloom_filter_with_four_billion_probes_is_refused() {
    let err = check(&hex("4200000100080108ffffffff0fff00")).unwrap_err();
    assert_eq!(err.code(), "limit_bloom_filter");
    assert!(err.to_string().contains("probes 4294967295"), "{err}");
}

#[test]
fn a_bloom_filter_with_zero_bits_per_entry_is_refused() {
    let err = check(&hex("42000001000301000100")).unwrap_err();
    assert_eq!(err.code(), "limit_bloom_filter");
    assert!(err.to_string().contains("bits per entry 0"), "{err}");
}

#[test]
fn a_bloom_filter_whose_bits_do_not_match_its_parameters_is_refused() {
    // 1 entry × 10 bits needs 2 bytes; 3 are given.
    let err = check(&hex("420000010006010a07ffffff00")).unwrap_err();
    assert!(
        matches!(
            err,
            LimitError::BloomLength {
                expected: 2,
                found: 3
            }
        ),
        "{err}"
    );
}

#[test]
fn long_lists_of_hashes_are_refused_before_they_are_read() {
    // heads: 2^40 hashes declared in six bytes.
    let err = check(&hex("4280808080802000")).unwrap_err();
    assert_eq!(err.code(), "limit_hashes");
}

/// A sync message carrying `chunk` as its one change.
fn message_with(chunk: &[u8]) -> Vec<u8> {
    let mut m = vec![0x42, 0, 0, 0, 1];
    leb(&mut m, chunk.len() as u64);
    m.extend_from_slice(chunk);
    m
}

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

fn chunk(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut c = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, kind];
    leb(&mut c, body.len() as u64);
    c.extend_from_slice(body);
    c
}

#[test]
fn a_compressed_change_that_inflates_past_the_cap_is_refused_without_inflating_it_all() {
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    // 512 MiB of zeros, written in pieces.
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..512 {
        z.write_all(&zeros).expect("deflate");
    }
    let bomb = z.finish().expect("deflate");
    assert!(bomb.len() < 1 << 20);
    let err = check(&message_with(&chunk(2, &bomb))).unwrap_err();
    assert_eq!(err.code(), "limit_change_bytes");
}

#[test]
fn a_real_compressed_change_passes() {
    let mut doc = AutoCommit::new();
    let text = doc
        .put_object(ROOT, "t", automerge::ObjType::Text)
        .expect("text");
    doc.splice_text(&text, 0, 0, &"lang verslag ".repeat(400))
        .expect("splice");
    doc.commit();
    let change = doc.get_last_local_change().expect("a change").clone();
    let compressed = change.clone().bytes().to_vec();
    assert_eq!(compressed[8], 2, "automerge compresses a change this large");
    let stats = check(&message_with(&compressed)).expect("honest compressed change");
    assert!(stats.ops >= 400 * 13);
}

#[test]
fn run_lengths_declaring_billions_of_operations_are_refused() {
    // A change body: no deps, actor of 1 byte, seq 1, start op 1, time 0, no message, no other
    // actors, one integer column (id 1) holding a run of 2^40 copies of the value 0.
    let mut column = Vec::new();
    sleb(&mut column, 1 << 40);
    column.push(0);
    let mut body = vec![0, 1, 0xaa, 1, 1, 0, 0, 0, 1];
    leb(&mut body, (1 << 4) | 2);
    leb(&mut body, column.len() as u64);
    body.extend_from_slice(&column);
    let err = check(&message_with(&chunk(1, &body))).unwrap_err();
    assert_eq!(err.code(), "limit_operations");
}

fn sleb(out: &mut Vec<u8>, mut n: i64) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if (n == 0 && b & 0x40 == 0) || (n == -1 && b & 0x40 != 0) {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

#[test]
fn bundle_chunks_and_unknown_chunk_types_are_refused() {
    assert_eq!(
        check(&message_with(&chunk(3, &[0]))).unwrap_err(),
        LimitError::ChunkType(3)
    );
    assert_eq!(
        check(&message_with(&chunk(9, &[]))).unwrap_err(),
        LimitError::ChunkType(9)
    );
}

#[test]
fn truncated_and_trailing_bytes_are_malformed() {
    assert_eq!(check(&[]).unwrap_err().code(), "malformed_sync_message");
    assert_eq!(
        check(&[0x42, 1]).unwrap_err().code(),
        "malformed_sync_message"
    );
    assert_eq!(
        check(&hex("42000000000201828080")).unwrap_err().code(),
        "malformed_sync_message"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// Whatever the bytes, the check answers (no panic), and what it accepts Automerge decodes.
    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_ones_decode(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
        if check(&data).is_ok() {
            proptest::prop_assert!(sync::Message::decode(&data).is_ok());
        }
    }

    /// Real messages with one byte changed: the check answers, and anything it accepts is safe
    /// for Automerge to decode and apply to a fresh document.
    #[test]
    fn mutated_real_messages_never_panic(index in 0usize..4096, byte in proptest::prelude::any::<u8>()) {
        let mut a = doc_with(3);
        let mut b = Automerge::new();
        let messages = conversation(&mut a, &mut b);
        let mut m = messages[index % messages.len()].clone();
        let i = index % m.len();
        m[i] = byte;
        if check(&m).is_ok()
            && let Ok(decoded) = sync::Message::decode(&m)
        {
            let mut fresh = Automerge::new();
            let _ = fresh.receive_sync_message(&mut sync::State::new(), decoded);
        }
    }
}
