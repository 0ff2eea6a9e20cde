//! Property tests: every message survives encode→decode unchanged, and `decode` never panics —
//! not on random bytes, not on corrupted valid frames, not on well-formed CBOR of the wrong shape.

use std::collections::BTreeMap;

use ciborium::Value;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use regie_sync_protocol::{
    DocumentId, HeadsAt, MAX_MESSAGE_BYTES, Message, PeerId, PeerMetadata, StorageId, decode,
    encode,
};

fn peer_id() -> impl Strategy<Value = PeerId> {
    any::<String>().prop_map(PeerId::from)
}

fn storage_id() -> impl Strategy<Value = StorageId> {
    any::<String>().prop_map(StorageId::from)
}

fn document_id() -> impl Strategy<Value = DocumentId> {
    any::<u128>().prop_map(|n| DocumentId::from_uuid(uuid::Uuid::from_u128(n)))
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..256)
}

/// Interesting numbers: around the u32 / 2^53 / u64 boundaries where the encoding changes.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0..=u64::from(u32::MAX),
        (u64::from(u32::MAX) - 2)..=(u64::from(u32::MAX) + 2),
        ((1u64 << 53) - 3)..=((1u64 << 53) + 3),
        (u64::MAX - 2)..=u64::MAX,
        1_500_000_000_000u64..2_000_000_000_000,
    ]
}

fn peer_metadata() -> impl Strategy<Value = PeerMetadata> {
    (option::of(storage_id()), any::<bool>()).prop_map(|(storage_id, is_ephemeral)| PeerMetadata {
        storage_id,
        is_ephemeral,
    })
}

fn new_heads() -> impl Strategy<Value = BTreeMap<StorageId, HeadsAt>> {
    btree_map(
        storage_id(),
        (vec(any::<String>(), 0..4), number())
            .prop_map(|(heads, timestamp)| HeadsAt { heads, timestamp }),
        0..4,
    )
}

/// Every variant, extension messages included.
fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            peer_id(),
            vec(any::<String>(), 0..4),
            option::of(peer_metadata())
        )
            .prop_map(|(sender_id, supported_protocol_versions, peer_metadata)| {
                Message::Join {
                    sender_id,
                    supported_protocol_versions,
                    peer_metadata,
                }
            }),
        (
            peer_id(),
            peer_id(),
            any::<String>(),
            option::of(peer_metadata())
        )
            .prop_map(
                |(sender_id, target_id, selected_protocol_version, peer_metadata)| Message::Peer {
                    sender_id,
                    target_id,
                    selected_protocol_version,
                    peer_metadata,
                }
            ),
        (peer_id(), peer_id(), document_id(), data()).prop_map(
            |(sender_id, target_id, document_id, data)| Message::Request {
                sender_id,
                target_id,
                document_id,
                data,
            }
        ),
        (peer_id(), peer_id(), document_id(), data()).prop_map(
            |(sender_id, target_id, document_id, data)| Message::Sync {
                sender_id,
                target_id,
                document_id,
                data,
            }
        ),
        (peer_id(), peer_id(), document_id()).prop_map(|(sender_id, target_id, document_id)| {
            Message::DocUnavailable {
                sender_id,
                target_id,
                document_id,
            }
        }),
        (
            peer_id(),
            peer_id(),
            number(),
            any::<String>(),
            document_id(),
            data()
        )
            .prop_map(
                |(sender_id, target_id, count, session_id, document_id, data)| {
                    Message::Ephemeral {
                        sender_id,
                        target_id,
                        count,
                        session_id,
                        document_id,
                        data,
                    }
                }
            ),
        (
            peer_id(),
            peer_id(),
            option::of(vec(storage_id(), 0..4)),
            vec(storage_id(), 0..4)
        )
            .prop_map(|(sender_id, target_id, add, remove)| {
                Message::RemoteSubscriptionChange {
                    sender_id,
                    target_id,
                    add,
                    remove,
                }
            }),
        (peer_id(), peer_id(), document_id(), new_heads()).prop_map(
            |(sender_id, target_id, document_id, new_heads)| Message::RemoteHeadsChanged {
                sender_id,
                target_id,
                document_id,
                new_heads,
            }
        ),
        peer_id().prop_map(|sender_id| Message::Leave { sender_id }),
        any::<String>().prop_map(|message| Message::Error { message }),
        (
            peer_id(),
            peer_id(),
            document_id(),
            any::<String>(),
            option::of(any::<String>()),
            vec("[0-9a-f]{64}", 0..4)
        )
            .prop_map(
                |(sender_id, target_id, document_id, reason, detail, changes)| {
                    Message::Rejected {
                        sender_id,
                        target_id,
                        document_id,
                        reason,
                        detail,
                        changes,
                    }
                }
            ),
        (peer_id(), peer_id(), document_id(), any::<String>()).prop_map(
            |(sender_id, target_id, document_id, reason)| Message::Revoked {
                sender_id,
                target_id,
                document_id,
                reason,
            }
        ),
        (peer_id(), peer_id(), document_id(), document_id()).prop_map(
            |(sender_id, target_id, document_id, new_document_id)| Message::Replaced {
                sender_id,
                target_id,
                document_id,
                new_document_id,
            }
        ),
    ]
}

/// Arbitrary CBOR values, a few levels deep.
fn cbor_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        any::<String>().prop_map(Value::Text),
        vec(any::<u8>(), 0..16).prop_map(Value::Bytes),
        // Keys and values the decoder looks for, to reach the deeper checks.
        prop::sample::select(vec![
            "type",
            "join",
            "peer",
            "sync",
            "request",
            "ephemeral",
            "senderId",
            "targetId",
            "documentId",
            "data",
            "newHeads",
            "heads",
            "timestamp",
            "peerMetadata",
            "storageId",
            "isEphemeral",
            "add",
            "remove",
            "count",
            "2VzPLXwa4R41PB944FYJS46nvFdj",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            vec((inner.clone(), inner.clone()), 0..8).prop_map(Value::Map),
            (any::<u64>(), inner).prop_map(|(t, v)| Value::Tag(t, Box::new(v))),
        ]
    })
}

fn to_bytes(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn encode_then_decode_is_identity(msg in message()) {
        let bytes = encode(&msg);
        prop_assert!(bytes.len() < MAX_MESSAGE_BYTES);
        prop_assert_eq!(decode(&bytes), Ok(msg));
    }

    #[test]
    fn decode_never_panics_on_random_bytes(bytes in vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_corrupted_frames(
        msg in message(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = encode(&msg);
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_cbor(
        v in cbor_value(),
        ty in prop::sample::select(vec![
            "join", "peer", "request", "sync", "doc-unavailable", "ephemeral",
            "remote-subscription-change", "remote-heads-changed", "leave", "error",
            "rejected", "revoked", "replaced",
        ]),
    ) {
        // As it is, and as the fields of a map with a known `type`.
        let _ = decode(&to_bytes(&v));
        let mut entries = match v {
            Value::Map(entries) => entries,
            other => vec![("data".into(), other)],
        };
        entries.push(("type".into(), ty.into()));
        let _ = decode(&to_bytes(&Value::Map(entries)));
    }

    #[test]
    fn unknown_keys_are_ignored(msg in message(), key in "[a-zA-Z]{1,12}", value in cbor_value()) {
        // Skip keys the message may use itself.
        let known = ["type", "senderId", "targetId", "documentId", "data", "count", "sessionId",
            "peerMetadata", "metadata", "supportedProtocolVersions", "selectedProtocolVersion",
            "add", "remove", "newHeads", "message", "reason", "detail", "changes", "newDocumentId"];
        prop_assume!(!known.contains(&key.as_str()));
        let Value::Map(mut entries) = ciborium::from_reader::<Value, _>(&encode(&msg)[..]).unwrap() else {
            unreachable!("encode always writes a map")
        };
        entries.insert(1, (key.into(), value));
        prop_assert_eq!(decode(&to_bytes(&Value::Map(entries))), Ok(msg));
    }
}
