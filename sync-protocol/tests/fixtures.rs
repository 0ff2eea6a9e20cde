//! Decodes the frames captured from automerge-repo 2.5.6 (see `tests/fixtures/README.md`),
//! checks their fields, and re-encodes them; also pins the bytes of the Regie extension frames
//! that the capture script sends to a live JS client.
//!
//! Run with `REGIE_UPDATE_FIXTURES=1` to rewrite `tests/fixtures/ext-*.cbor` after changing the
//! encoding of the extension messages (then re-run the capture script, which replays them).

use std::collections::BTreeSet;
use std::path::PathBuf;

use ciborium::Value;
use regie_sync_protocol::{
    DocumentId, HeadsAt, Message, PROTOCOL_VERSION, PeerId, PeerMetadata, StorageId, decode, encode,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Decodes a fixture, checks that encode→decode gives the same message, and returns it.
fn load(name: &str) -> Message {
    let bytes = fixture(name);
    let msg = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let again = decode(&encode(&msg)).unwrap_or_else(|e| panic!("{name} re-encoded: {e}"));
    assert_eq!(again, msg, "{name}: re-encoding changed the message");
    msg
}

/// The raw CBOR value of one top-level key of a fixture, to check how JS encoded it.
fn raw_field(name: &str, key: &str) -> Value {
    let value: Value = ciborium::from_reader(&fixture(name)[..]).unwrap();
    let Value::Map(entries) = value else {
        panic!("{name} is not a map")
    };
    entries
        .into_iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{name} has no key {key}"))
}

/// Every captured fixture, by file name.
const CAPTURED: &[&str] = &[
    "join.cbor",
    "join-ephemeral.cbor",
    "peer.cbor",
    "sync.cbor",
    "sync-server.cbor",
    "request.cbor",
    "doc-unavailable.cbor",
    "ephemeral.cbor",
    "remote-subscription-change.cbor",
    "remote-heads-changed.cbor",
    "error.cbor",
];

#[test]
fn every_fixture_file_is_covered() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".cbor"))
        .collect();
    let known: BTreeSet<String> = CAPTURED
        .iter()
        .copied()
        .chain(EXTENSIONS.iter().map(|(n, _)| *n))
        .map(String::from)
        .collect();
    assert_eq!(on_disk, known);
    for name in &on_disk {
        load(name);
    }
}

/// The storage ID client A announced in its join (and everything that refers to it).
fn storage_id_of_a() -> StorageId {
    match load("join.cbor") {
        Message::Join {
            peer_metadata:
                Some(PeerMetadata {
                    storage_id: Some(s),
                    ..
                }),
            ..
        } => s,
        other => panic!("unexpected join: {other:?}"),
    }
}

/// The document client A created, as client A's first sync names it.
fn document_of_a() -> DocumentId {
    *load("sync.cbor").document_id().unwrap()
}

#[test]
fn join_from_a_client_with_storage() {
    let Message::Join {
        sender_id,
        supported_protocol_versions,
        peer_metadata: Some(meta),
    } = load("join.cbor")
    else {
        panic!("not a join with metadata")
    };
    assert_eq!(sender_id, PeerId::from("client-a"));
    assert_eq!(supported_protocol_versions, vec![PROTOCOL_VERSION]);
    assert!(!meta.is_ephemeral);
    // automerge-repo's storage IDs are UUID strings.
    assert!(uuid_like(meta.storage_id.unwrap().as_str()));
}

#[test]
fn join_from_an_ephemeral_client_carries_undefined_storage_id() {
    let Message::Join {
        sender_id,
        supported_protocol_versions,
        peer_metadata,
    } = load("join-ephemeral.cbor")
    else {
        panic!("not a join")
    };
    assert_eq!(sender_id, PeerId::from("client-b"));
    assert_eq!(supported_protocol_versions, vec!["1"]);
    assert_eq!(
        peer_metadata,
        Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: true
        })
    );
    // Surprise: JS writes the key with CBOR `undefined` (0xf7), which ciborium reads as null.
    let Value::Map(meta) = raw_field("join-ephemeral.cbor", "peerMetadata") else {
        panic!("peerMetadata is not a map")
    };
    assert!(
        meta.iter()
            .any(|(k, v)| k.as_text() == Some("storageId") && v.is_null())
    );
    assert!(fixture("join-ephemeral.cbor").contains(&0xf7));
}

#[test]
fn peer_from_the_js_server() {
    let Message::Peer {
        sender_id,
        target_id,
        selected_protocol_version,
        peer_metadata: Some(meta),
    } = load("peer.cbor")
    else {
        panic!("not a peer with metadata")
    };
    assert_eq!(sender_id, PeerId::from("capture-server"));
    assert_eq!(target_id, PeerId::from("client-a"));
    assert_eq!(selected_protocol_version, "1");
    assert!(!meta.is_ephemeral);
    assert!(uuid_like(meta.storage_id.unwrap().as_str()));
}

#[test]
fn sync_and_request_carry_automerge_sync_messages() {
    let doc = document_of_a();
    for (name, first_byte, sender, target) in [
        ("sync.cbor", 0x42, "client-a", "capture-server"),
        ("sync-server.cbor", 0x43, "capture-server", "client-a"),
        ("request.cbor", 0x42, "client-b", "capture-server"),
    ] {
        let msg = load(name);
        let (Message::Sync {
            sender_id,
            target_id,
            document_id,
            data,
        }
        | Message::Request {
            sender_id,
            target_id,
            document_id,
            data,
        }) = msg.clone()
        else {
            panic!("{name}: not sync/request")
        };
        assert_eq!(
            msg.type_name(),
            if name == "request.cbor" {
                "request"
            } else {
                "sync"
            }
        );
        assert_eq!(sender_id.as_str(), sender, "{name}");
        assert_eq!(target_id.as_str(), target, "{name}");
        assert_eq!(document_id, doc, "{name}");
        // 0x42: sync message; 0x43: the v2 form the JS server answers with.
        assert_eq!(data[0], first_byte, "{name}: {}", hex::encode(&data));
        // `data` is a CBOR byte string, not an array or a tagged typed array.
        assert!(matches!(raw_field(name, "data"), Value::Bytes(_)), "{name}");
    }
}

#[test]
fn doc_unavailable_names_an_unknown_document() {
    let Message::DocUnavailable {
        sender_id,
        target_id,
        document_id,
    } = load("doc-unavailable.cbor")
    else {
        panic!("not doc-unavailable")
    };
    assert_eq!(sender_id.as_str(), "capture-server");
    assert_eq!(target_id.as_str(), "client-b");
    assert_ne!(document_id, document_of_a());
    assert_eq!(document_id.uuid().get_version_num(), 4);
}

#[test]
fn ephemeral_wraps_cbor_in_a_byte_string() {
    let Message::Ephemeral {
        sender_id,
        target_id,
        count,
        session_id,
        document_id,
        data,
    } = load("ephemeral.cbor")
    else {
        panic!("not ephemeral")
    };
    assert_eq!(sender_id.as_str(), "client-b");
    assert_eq!(target_id.as_str(), "capture-server");
    assert_eq!(count, 1);
    assert!(!session_id.is_empty());
    assert_eq!(document_id, document_of_a());
    // `handle.broadcast({hello: "from B"})` is itself CBOR-encoded into `data`.
    let inner: Value = ciborium::from_reader(&data[..]).unwrap();
    assert_eq!(inner, Value::Map(vec![("hello".into(), "from B".into())]));
}

#[test]
fn remote_subscription_change_with_undefined_remove() {
    let Message::RemoteSubscriptionChange {
        sender_id,
        target_id,
        add,
        remove,
    } = load("remote-subscription-change.cbor")
    else {
        panic!("not remote-subscription-change")
    };
    assert_eq!(sender_id.as_str(), "client-b");
    assert_eq!(target_id.as_str(), "capture-server");
    assert_eq!(add, Some(vec![storage_id_of_a()]));
    assert!(remove.is_empty());
    // JS sends `remove: undefined` rather than leaving the key out.
    assert!(raw_field("remote-subscription-change.cbor", "remove").is_null());
}

#[test]
fn remote_heads_changed_has_bs58_heads_and_a_float_timestamp() {
    let Message::RemoteHeadsChanged {
        sender_id,
        target_id,
        document_id,
        new_heads,
    } = load("remote-heads-changed.cbor")
    else {
        panic!("not remote-heads-changed")
    };
    assert_eq!(sender_id.as_str(), "capture-server");
    assert_eq!(target_id.as_str(), "client-b");
    assert_eq!(document_id, document_of_a());
    assert_eq!(new_heads.len(), 1);
    let HeadsAt { heads, timestamp } = &new_heads[&storage_id_of_a()];
    assert_eq!(heads.len(), 1);
    // Heads are bs58check-encoded 32-byte change hashes (not hex, not base64).
    for head in heads {
        let hash = bs58::decode(head).with_check(None).into_vec().unwrap();
        assert_eq!(hash.len(), 32, "{head}");
    }
    // Milliseconds since the epoch, between 2020 and 2100.
    assert!((1_577_836_800_000..4_102_444_800_000).contains(timestamp));
    // Surprise: cbor-x writes integers above 2^32-1 as float64.
    let Value::Map(per_storage) = raw_field("remote-heads-changed.cbor", "newHeads") else {
        panic!("newHeads not a map")
    };
    let Value::Map(at) = &per_storage[0].1 else {
        panic!("newHeads entry not a map")
    };
    let ts = at
        .iter()
        .find(|(k, _)| k.as_text() == Some("timestamp"))
        .unwrap();
    assert!(matches!(ts.1, Value::Float(_)), "{:?}", ts.1);
    // And we write it back the same way, so JS gets a Number rather than a BigInt.
    let ours: Value =
        ciborium::from_reader(&encode(&load("remote-heads-changed.cbor"))[..]).unwrap();
    assert!(format!("{ours:?}").contains("Float"));
}

#[test]
fn error_from_the_js_server() {
    assert_eq!(
        load("error.cbor"),
        Message::Error {
            message: "unsupported protocol version".into()
        }
    );
    // The JS server also sends senderId and targetId, which `error` does not define; ignored.
    assert_eq!(raw_field("error.cbor", "targetId"), Value::from("raw-peer"));
}

#[test]
fn js_maps_use_two_byte_lengths_and_we_still_decode_them() {
    // cbor-x writes every map header as 0xb9 + u16 length (non-minimal but valid CBOR).
    for name in CAPTURED {
        assert_eq!(fixture(name)[0], 0xb9, "{name}");
    }
}

/// Storage IDs in automerge-repo are hyphenated UUID strings.
fn uuid_like(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

// ---- Regie extension frames ------------------------------------------------------------------

/// Fixed IDs so the extension frames are byte-stable.
fn ext_doc() -> DocumentId {
    "2VzPLXwa4R41PB944FYJS46nvFdj".parse().unwrap()
}

fn ext_new_doc() -> DocumentId {
    "DAZmSpd1a38fPH8v5mEx3uZStLm".parse().unwrap()
}

/// Makes one extension message.
type MakeMessage = fn() -> Message;

const EXTENSIONS: &[(&str, MakeMessage)] = &[
    ("ext-rejected.cbor", || Message::Rejected {
        sender_id: "capture-server".into(),
        target_id: "client-b".into(),
        document_id: ext_doc(),
        reason: "path_reserved".into(),
        detail: Some("/meta is written by the server only".into()),
        changes: vec!["3c75fa531fa1bf5b356910c943ca0de7b2f6f9d3bbd63966e5e05f5ee720348a".into()],
    }),
    ("ext-revoked.cbor", || Message::Revoked {
        sender_id: "capture-server".into(),
        target_id: "client-b".into(),
        document_id: ext_doc(),
        reason: "access_revoked".into(),
    }),
    ("ext-replaced.cbor", || Message::Replaced {
        sender_id: "capture-server".into(),
        target_id: "client-b".into(),
        document_id: ext_doc(),
        new_document_id: ext_new_doc(),
    }),
];

#[test]
fn extension_frames_are_current() {
    let update = std::env::var_os("REGIE_UPDATE_FIXTURES").is_some();
    for (name, make) in EXTENSIONS {
        let msg = make();
        let bytes = encode(&msg);
        if update {
            std::fs::write(fixtures_dir().join(name), &bytes).unwrap();
        }
        assert_eq!(
            hex::encode(fixture(name)),
            hex::encode(&bytes),
            "{name} is stale; run with REGIE_UPDATE_FIXTURES=1 and re-run the capture script"
        );
        assert_eq!(decode(&bytes).unwrap(), msg);
        assert!(msg.is_regie_extension());
    }
}
