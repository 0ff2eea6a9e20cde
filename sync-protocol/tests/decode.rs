//! Unit tests for `decode`: one per `DecodeError` variant (with its exact message), and the
//! tolerances automerge-repo's own decoder has (aliases, `undefined`, tags, floats, extra keys).

use ciborium::Value;
use regie_sync_protocol::{
    DecodeError, DocumentId, DocumentIdError, MAX_MESSAGE_BYTES, Message, PeerMetadata, decode,
    encode,
};

const DOC: &str = "2VzPLXwa4R41PB944FYJS46nvFdj";

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

fn map(entries: &[(&str, Value)]) -> Vec<u8> {
    cbor(&Value::Map(
        entries
            .iter()
            .map(|(k, v)| (Value::from(*k), v.clone()))
            .collect(),
    ))
}

fn doc_unavailable() -> Vec<(&'static str, Value)> {
    vec![
        ("type", "doc-unavailable".into()),
        ("senderId", "a".into()),
        ("targetId", "b".into()),
        ("documentId", DOC.into()),
    ]
}

fn err(bytes: &[u8]) -> DecodeError {
    decode(bytes).expect_err("decoding should fail")
}

#[test]
fn too_large() {
    let bytes = vec![0u8; MAX_MESSAGE_BYTES + 1];
    let e = err(&bytes);
    assert_eq!(
        e,
        DecodeError::TooLarge {
            size: MAX_MESSAGE_BYTES + 1,
            limit: MAX_MESSAGE_BYTES
        }
    );
    assert_eq!(
        e.to_string(),
        "message is 8388609 bytes, more than the limit of 8388608 bytes"
    );
    // Exactly at the limit is parsed (and here fails for another reason).
    assert_eq!(
        err(&vec![0u8; MAX_MESSAGE_BYTES]),
        DecodeError::TrailingBytes {
            count: MAX_MESSAGE_BYTES - 1
        }
    );
}

#[test]
fn truncated() {
    assert_eq!(err(&[]), DecodeError::Truncated);
    let full = encode(&Message::Leave {
        sender_id: "peer".into(),
    });
    for len in 1..full.len() {
        assert_eq!(err(&full[..len]), DecodeError::Truncated, "cut at {len}");
    }
    assert_eq!(
        DecodeError::Truncated.to_string(),
        "message is empty or truncated: the cbor data ends early"
    );
}

#[test]
fn not_cbor() {
    // 0x1c is a reserved additional-information value; 0xff a lone "break".
    for bytes in [&[0x1c][..], &[0xff], &[0x7f, 0x01]] {
        let e = err(bytes);
        assert!(matches!(e, DecodeError::NotCbor { .. }), "{bytes:?}: {e:?}");
        assert!(e.to_string().starts_with("message is not valid cbor: "));
        assert_eq!(e.to_string(), e.to_string().to_lowercase());
    }
    // Invalid UTF-8 in a text string.
    assert!(matches!(
        err(&[0xa1, 0x62, 0xff, 0xfe, 0x01]),
        DecodeError::NotCbor { .. }
    ));
    // 100 000 nested arrays, maps or tags: refused by the recursion limit, no stack overflow.
    for byte in [0x81, 0xa1, 0xc6] {
        let e = err(&vec![byte; 100_000]);
        assert_eq!(
            e,
            DecodeError::NotCbor {
                detail: "nested more than 256 levels deep".into()
            },
            "{byte:#x}"
        );
    }
    // Huge declared lengths (bytes, text, array, map of 2^64-1 items) are not preallocated.
    for major in [0x5b, 0x7b, 0x9b, 0xbb] {
        let mut bytes = vec![major];
        bytes.extend([0xff; 8]);
        bytes.extend([0x00; 16]);
        assert_eq!(err(&bytes), DecodeError::Truncated, "{major:#x}");
    }
}

#[test]
fn trailing_bytes() {
    let mut bytes = encode(&Message::Leave {
        sender_id: "peer".into(),
    });
    bytes.extend([0x00, 0x01]);
    let e = err(&bytes);
    assert_eq!(e, DecodeError::TrailingBytes { count: 2 });
    assert_eq!(
        e.to_string(),
        "message has 2 trailing bytes after the cbor value"
    );
}

#[test]
fn not_a_map() {
    let e = err(&cbor(&Value::Array(vec![])));
    assert_eq!(e, DecodeError::NotAMap { found: "an array" });
    assert_eq!(e.to_string(), "message is not a cbor map but an array");
    assert_eq!(
        err(&cbor(&Value::from("join"))),
        DecodeError::NotAMap {
            found: "a text string"
        }
    );
}

#[test]
fn missing_type() {
    let e = err(&map(&[("senderId", "a".into())]));
    assert_eq!(e, DecodeError::MissingType);
    assert_eq!(e.to_string(), "message has no `type` field");
    assert_eq!(
        err(&map(&[("type", Value::Null)])),
        DecodeError::MissingType
    );
}

#[test]
fn missing_field() {
    let e = err(&map(&[("type", "sync".into()), ("senderId", "a".into())]));
    assert_eq!(
        e,
        DecodeError::MissingField {
            message_type: "sync".into(),
            field: "targetId".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "missing field `targetId` in message type `sync`"
    );
    // A null counts as missing.
    let mut fields = doc_unavailable();
    fields[3].1 = Value::Null;
    assert_eq!(
        err(&map(&fields)).to_string(),
        "missing field `documentId` in message type `doc-unavailable`"
    );
    // Nested fields get a path.
    let e = err(&map(&[
        ("type", "remote-heads-changed".into()),
        ("senderId", "a".into()),
        ("targetId", "b".into()),
        ("documentId", DOC.into()),
        (
            "newHeads",
            Value::Map(vec![(
                "storage-1".into(),
                Value::Map(vec![("heads".into(), Value::Array(vec![]))]),
            )]),
        ),
    ]));
    assert_eq!(
        e.to_string(),
        "missing field `newHeads.storage-1.timestamp` in message type `remote-heads-changed`"
    );
}

#[test]
fn wrong_type() {
    let e = err(&map(&[("type", 7.into())]));
    assert_eq!(
        e.to_string(),
        "wrong type for field `type`: expected a text string, found an integer"
    );
    let e = err(&map(&[
        ("type", "sync".into()),
        ("senderId", "a".into()),
        ("targetId", "b".into()),
        ("documentId", DOC.into()),
        ("data", "not bytes".into()),
    ]));
    assert_eq!(
        e,
        DecodeError::WrongType {
            field: "data".into(),
            expected: "a byte string",
            found: "a text string"
        }
    );
    assert_eq!(
        e.to_string(),
        "wrong type for field `data`: expected a byte string, found a text string"
    );
    let e = err(&map(&[
        ("type", "join".into()),
        ("senderId", "a".into()),
        (
            "supportedProtocolVersions",
            Value::Array(vec!["1".into(), 2.into()]),
        ),
    ]));
    assert_eq!(
        e.to_string(),
        "wrong type for field `supportedProtocolVersions[1]`: expected a text string, found an integer"
    );
    let e = err(&map(&[
        ("type", "join".into()),
        ("senderId", "a".into()),
        ("supportedProtocolVersions", Value::Array(vec!["1".into()])),
        (
            "peerMetadata",
            Value::Map(vec![("isEphemeral".into(), "yes".into())]),
        ),
    ]));
    assert_eq!(
        e.to_string(),
        "wrong type for field `peerMetadata.isEphemeral`: expected a boolean, found a text string"
    );
    // Counts must be non-negative integers (or integral floats).
    let ephemeral = |count: Value| {
        map(&[
            ("type", "ephemeral".into()),
            ("senderId", "a".into()),
            ("targetId", "b".into()),
            ("count", count),
            ("sessionId", "s".into()),
            ("documentId", DOC.into()),
            ("data", Value::Bytes(vec![1])),
        ])
    };
    for (bad, found) in [
        (Value::from(-1), "a negative integer"),
        (Value::Float(1.5), "a float"),
        (Value::Float(-2.0), "a float"),
        (Value::Float(f64::NAN), "a float"),
        (Value::Float(f64::INFINITY), "a float"),
        (Value::Float(1.0e20), "a float"),
    ] {
        assert_eq!(
            err(&ephemeral(bad.clone())),
            DecodeError::WrongType {
                field: "count".into(),
                expected: "a non-negative integer",
                found
            },
            "{bad:?}"
        );
    }
}

#[test]
fn unknown_type() {
    let e = err(&map(&[
        ("type", "presence".into()),
        ("senderId", "a".into()),
    ]));
    assert_eq!(e, DecodeError::UnknownType("presence".into()));
    assert_eq!(e.to_string(), "unknown message type `presence`");
}

#[test]
fn invalid_document_id() {
    let mut fields = doc_unavailable();
    fields[3].1 = "2VzPLXwa4R41PB944FYJS46nvFdk".into();
    let e = err(&map(&fields));
    assert_eq!(
        e,
        DecodeError::InvalidDocumentId {
            field: "documentId".into(),
            source: DocumentIdError::NotBs58Check
        }
    );
    assert_eq!(
        e.to_string(),
        "invalid document id in field `documentId`: not a bs58check document id or a hyphenated uuid"
    );
    // Valid bs58check, but 20 bytes (automerge-repo's idFactory could make such ids).
    fields[3].1 = bs58::encode([7u8; 20]).with_check().into_string().into();
    assert_eq!(
        err(&map(&fields)).to_string(),
        "invalid document id in field `documentId`: document id is 20 bytes long, expected 16"
    );
    let e = err(&map(&[
        ("type", "replaced".into()),
        ("senderId", "a".into()),
        ("targetId", "b".into()),
        ("documentId", DOC.into()),
        ("newDocumentId", "".into()),
    ]));
    assert!(matches!(e, DecodeError::InvalidDocumentId { field, .. } if field == "newDocumentId"));
}

#[test]
fn join_accepts_metadata_as_an_alias() {
    let join = |key: &str| {
        map(&[
            ("type", "join".into()),
            ("senderId", "peer-1".into()),
            ("supportedProtocolVersions", Value::Array(vec!["1".into()])),
            (
                key,
                Value::Map(vec![
                    ("storageId".into(), "s-1".into()),
                    ("isEphemeral".into(), false.into()),
                ]),
            ),
        ])
    };
    let expected = Message::Join {
        sender_id: "peer-1".into(),
        supported_protocol_versions: vec!["1".into()],
        peer_metadata: Some(PeerMetadata {
            storage_id: Some("s-1".into()),
            is_ephemeral: false,
        }),
    };
    assert_eq!(decode(&join("peerMetadata")), Ok(expected.clone()));
    assert_eq!(decode(&join("metadata")), Ok(expected));
    // Without metadata, and with an empty one (JS sends `{}` when it has none).
    let bare = map(&[
        ("type", "join".into()),
        ("senderId", "peer-1".into()),
        ("supportedProtocolVersions", Value::Array(vec!["1".into()])),
    ]);
    assert!(matches!(
        decode(&bare),
        Ok(Message::Join {
            peer_metadata: None,
            ..
        })
    ));
    let empty = map(&[
        ("type", "peer".into()),
        ("senderId", "s".into()),
        ("targetId", "peer-1".into()),
        ("selectedProtocolVersion", "1".into()),
        ("metadata", Value::Map(vec![])),
    ]);
    assert!(matches!(
        decode(&empty),
        Ok(Message::Peer {
            peer_metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: false
            }),
            ..
        })
    ));
}

#[test]
fn tolerates_what_js_and_cbor_do() {
    // CBOR `undefined` (0xf7) for an optional key, as JS writes unset properties.
    let mut bytes = map(&[
        ("type", "remote-subscription-change".into()),
        ("senderId", "a".into()),
        ("targetId", "b".into()),
        ("add", Value::Array(vec!["s".into()])),
        ("remove", Value::Null),
    ]);
    let last = bytes.len() - 1;
    assert_eq!(bytes[last], 0xf6);
    bytes[last] = 0xf7;
    assert_eq!(
        decode(&bytes),
        Ok(Message::RemoteSubscriptionChange {
            sender_id: "a".into(),
            target_id: "b".into(),
            add: Some(vec!["s".into()]),
            remove: vec![]
        })
    );
    // Tags are ignored; the last of duplicate keys wins; non-text keys are skipped.
    let doc: DocumentId = DOC.parse().unwrap();
    let bytes = cbor(&Value::Tag(
        55799,
        Box::new(Value::Map(vec![
            ("type".into(), "sync".into()),
            ("senderId".into(), "first".into()),
            ("senderId".into(), "a".into()),
            (Value::from(1), "one".into()),
            ("targetId".into(), Value::Tag(0, Box::new("b".into()))),
            ("documentId".into(), DOC.into()),
            (
                "data".into(),
                Value::Tag(64, Box::new(Value::Bytes(vec![0x42]))),
            ),
        ])),
    ));
    assert_eq!(
        decode(&bytes),
        Ok(Message::Sync {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: doc,
            data: vec![0x42]
        })
    );
    // A hyphenated UUID works as a documentId too.
    let mut fields = doc_unavailable();
    fields[3].1 = doc.uuid().hyphenated().to_string().into();
    assert_eq!(decode(&map(&fields)).unwrap().document_id(), Some(&doc));
    // Integral floats are numbers (cbor-x writes timestamps as float64).
    let bytes = map(&[
        ("type", "remote-heads-changed".into()),
        ("senderId", "a".into()),
        ("targetId", "b".into()),
        ("documentId", DOC.into()),
        (
            "newHeads",
            Value::Map(vec![(
                "s".into(),
                Value::Map(vec![
                    ("heads".into(), Value::Array(vec![])),
                    ("timestamp".into(), Value::Float(1_795_368_663_984.0)),
                ]),
            )]),
        ),
    ]);
    let Ok(Message::RemoteHeadsChanged { new_heads, .. }) = decode(&bytes) else {
        panic!("not decoded")
    };
    assert_eq!(new_heads["s"].timestamp, 1_795_368_663_984);
    // `rejected` may leave out `detail` and `changes`.
    let bytes = map(&[
        ("type", "rejected".into()),
        ("senderId", "s".into()),
        ("targetId", "c".into()),
        ("documentId", DOC.into()),
        ("reason", "path_reserved".into()),
    ]);
    assert_eq!(
        decode(&bytes),
        Ok(Message::Rejected {
            sender_id: "s".into(),
            target_id: "c".into(),
            document_id: doc,
            reason: "path_reserved".into(),
            detail: None,
            changes: vec![]
        })
    );
}

#[test]
fn large_numbers_are_encoded_as_js_does() {
    let eph = |count: u64| Message::Ephemeral {
        sender_id: "a".into(),
        target_id: "b".into(),
        count,
        session_id: "s".into(),
        document_id: DOC.parse().unwrap(),
        data: vec![1],
    };
    let raw_count = |count: u64| -> Value {
        let Value::Map(entries) = ciborium::from_reader(&encode(&eph(count))[..]).unwrap() else {
            unreachable!()
        };
        entries
            .into_iter()
            .find(|(k, _)| k.as_text() == Some("count"))
            .unwrap()
            .1
    };
    assert_eq!(raw_count(7), Value::from(7u64));
    assert_eq!(
        raw_count(u64::from(u32::MAX)),
        Value::from(u64::from(u32::MAX))
    );
    assert_eq!(raw_count(1 << 32), Value::Float(4_294_967_296.0));
    assert_eq!(
        raw_count((1 << 53) - 1),
        Value::Float(9_007_199_254_740_991.0)
    );
    assert_eq!(raw_count(1 << 53), Value::from(1u64 << 53));
    assert_eq!(raw_count(u64::MAX), Value::from(u64::MAX));
}

#[test]
fn encoded_maps_start_with_type() {
    let bytes = encode(&Message::Error {
        message: "unsupported protocol version".into(),
    });
    // {"type": "error", "message": …}: a 2-entry map whose first key is "type".
    assert_eq!(&bytes[..6], &[0xa2, 0x64, b't', b'y', b'p', b'e']);
}
