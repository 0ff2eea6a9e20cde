//! The CBOR mapping: [`encode`] and [`decode`].
//!
//! Decoding goes through [`ciborium::Value`] so that every problem can be reported precisely and
//! so that the tolerances of automerge-repo's own decoder (cbor-x) are kept:
//!
//! * keys that are not text, and text keys this crate does not know, are ignored;
//! * a key whose value is `null` or `undefined` counts as absent (JS writes `undefined` for unset
//!   optional properties, e.g. `peerMetadata.storageId` and `remove`);
//! * if a key occurs twice, the last one wins (as in a JS object);
//! * CBOR tags around any value are ignored;
//! * numbers (`count`, `timestamp`) may be integers or integral floats, because cbor-x writes
//!   integers above 2³²−1 (such as millisecond timestamps) as float64.
//!
//! Encoding writes definite-length maps with `type` first and, mirroring cbor-x, writes integers
//! between 2³² and 2⁵³ as floats, because cbor-x decodes a 64-bit CBOR integer to a JS `BigInt`
//! (which breaks `JSON.stringify` and mixed arithmetic in JS apps) but a float to a `Number`.

use std::collections::BTreeMap;

use ciborium::Value;

use crate::error::DecodeError;
use crate::ids::{DocumentId, PeerId, StorageId};
use crate::message::{HeadsAt, Message, PeerMetadata};

/// The largest frame [`decode`] accepts, in bytes (8 MiB). A server should enforce it on the
/// WebSocket too (e.g. as the maximum message size) so that larger frames are never buffered.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// JavaScript's `Number.MAX_SAFE_INTEGER`: the largest integer a float64 holds exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Encodes a message as one CBOR map, ready to send as a binary WebSocket frame.
///
/// Infallible: every [`Message`] has a CBOR form.
#[must_use]
pub fn encode(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    // Serialising a `Value` (no bignums, no non-string keys) into a `Vec` has no failure path:
    // `Vec`'s writer cannot fail and `Value`'s `Serialize` impl never errors for these variants.
    ciborium::into_writer(&to_value(message), &mut out)
        .expect("writing a ciborium::Value into a Vec cannot fail");
    out
}

/// Decodes one frame. Never panics; see [`DecodeError`] for what can go wrong.
///
/// # Errors
/// Any [`DecodeError`]: too large, not (complete) CBOR, not a map, no or an unknown `type`, a
/// missing or mistyped field, or an invalid document ID.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    let mut rest = bytes;
    let value: Value = ciborium::from_reader(&mut rest).map_err(cbor_error)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { count: rest.len() });
    }
    let entries = match untag(&value) {
        Value::Map(entries) => entries,
        other => return Err(DecodeError::NotAMap { found: kind(other) }),
    };
    let top = Fields {
        message_type: "",
        path: String::new(),
        entries,
    };
    let message_type = match top.get("type") {
        None => return Err(DecodeError::MissingType),
        Some(Value::Text(t)) => t.as_str(),
        Some(other) => {
            return Err(DecodeError::WrongType {
                field: "type".into(),
                expected: "a text string",
                found: kind(other),
            });
        }
    };
    let f = Fields {
        message_type,
        ..top
    };
    Ok(match message_type {
        "join" => Message::Join {
            sender_id: f.peer_id("senderId")?,
            supported_protocol_versions: f.text_array("supportedProtocolVersions")?,
            peer_metadata: match f.get("peerMetadata") {
                Some(_) => f.peer_metadata("peerMetadata")?,
                None => f.peer_metadata("metadata")?,
            },
        },
        "peer" => Message::Peer {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            selected_protocol_version: f.text("selectedProtocolVersion")?,
            peer_metadata: match f.get("peerMetadata") {
                Some(_) => f.peer_metadata("peerMetadata")?,
                None => f.peer_metadata("metadata")?,
            },
        },
        "request" => Message::Request {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            document_id: f.document_id("documentId")?,
            data: f.bytes("data")?,
        },
        "sync" => Message::Sync {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            document_id: f.document_id("documentId")?,
            data: f.bytes("data")?,
        },
        "doc-unavailable" => Message::DocUnavailable {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            document_id: f.document_id("documentId")?,
        },
        "ephemeral" => Message::Ephemeral {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            count: f.uint("count")?,
            session_id: f.text("sessionId")?,
            document_id: f.document_id("documentId")?,
            data: f.bytes("data")?,
        },
        "remote-subscription-change" => Message::RemoteSubscriptionChange {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            add: match f.get("add") {
                Some(_) => Some(storage_ids(f.text_array("add")?)),
                None => None,
            },
            remove: match f.get("remove") {
                Some(_) => storage_ids(f.text_array("remove")?),
                None => Vec::new(),
            },
        },
        "remote-heads-changed" => Message::RemoteHeadsChanged {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            document_id: f.document_id("documentId")?,
            new_heads: f.new_heads("newHeads")?,
        },
        "leave" => Message::Leave {
            sender_id: f.peer_id("senderId")?,
        },
        "error" => Message::Error {
            message: f.text("message")?,
        },
        "rejected" => Message::Rejected {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            document_id: f.document_id("documentId")?,
            reason: f.text("reason")?,
            detail: match f.get("detail") {
                Some(_) => Some(f.text("detail")?),
                None => None,
            },
            changes: match f.get("changes") {
                Some(_) => f.text_array("changes")?,
                None => Vec::new(),
            },
        },
        "revoked" => Message::Revoked {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            document_id: f.document_id("documentId")?,
            reason: f.text("reason")?,
        },
        "replaced" => Message::Replaced {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            document_id: f.document_id("documentId")?,
            new_document_id: f.document_id("newDocumentId")?,
        },
        other => return Err(DecodeError::UnknownType(other.to_owned())),
    })
}

// ---- decoding helpers ------------------------------------------------------------------------

/// Maps ciborium's reader errors onto [`DecodeError`].
fn cbor_error(e: ciborium::de::Error<std::io::Error>) -> DecodeError {
    use ciborium::de::Error;
    match e {
        Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => DecodeError::Truncated,
        Error::Io(io) => DecodeError::NotCbor {
            detail: io.to_string().to_lowercase(),
        },
        Error::Syntax(offset) => DecodeError::NotCbor {
            detail: format!("syntax error at byte {offset}"),
        },
        Error::Semantic(Some(offset), msg) => DecodeError::NotCbor {
            detail: format!("{} at byte {offset}", msg.to_lowercase()),
        },
        Error::Semantic(None, msg) => DecodeError::NotCbor {
            detail: msg.to_lowercase(),
        },
        Error::RecursionLimitExceeded => DecodeError::NotCbor {
            detail: "nested more than 256 levels deep".into(),
        },
    }
}

/// Strips any CBOR tags around a value.
fn untag(mut v: &Value) -> &Value {
    while let Value::Tag(_, inner) = v {
        v = inner;
    }
    v
}

/// A short description of a CBOR value's kind, for error messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Integer(i) if i128::from(*i) < 0 => "a negative integer",
        Value::Integer(_) => "an integer",
        Value::Bytes(_) => "a byte string",
        Value::Float(_) => "a float",
        Value::Text(_) => "a text string",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Tag(_, inner) => kind(inner),
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        _ => "an unknown cbor value",
    }
}

/// A non-negative integer, written as a CBOR integer or (by cbor-x, above 2³²−1) an integral float.
fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Integer(i) => u64::try_from(*i).ok(),
        // 2^64 as f64; everything below it that is integral fits in a u64.
        Value::Float(f)
            if f.is_finite()
                && *f >= 0.0
                && f.fract() == 0.0
                && *f < 18_446_744_073_709_551_616.0 =>
        {
            Some(*f as u64)
        }
        _ => None,
    }
}

fn storage_ids(ids: Vec<String>) -> Vec<StorageId> {
    ids.into_iter().map(StorageId::from).collect()
}

/// The entries of one CBOR map, with the context needed for precise errors.
struct Fields<'a> {
    /// The message's `type`, for [`DecodeError::MissingField`].
    message_type: &'a str,
    /// The path of this map inside the message (`""` at the top, `"peerMetadata."` below it).
    path: String,
    entries: &'a [(Value, Value)],
}

impl<'a> Fields<'a> {
    /// The (untagged) value of a text key; the last occurrence wins; null counts as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| untag(k).as_text() == Some(key))
            .map(|(_, v)| untag(v))
            .filter(|v| !v.is_null())
    }

    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.path)
    }

    fn required(&self, key: &str) -> Result<&'a Value, DecodeError> {
        self.get(key).ok_or_else(|| DecodeError::MissingField {
            message_type: self.message_type.to_owned(),
            field: self.name(key),
        })
    }

    fn wrong(&self, key: &str, expected: &'static str, found: &Value) -> DecodeError {
        DecodeError::WrongType {
            field: self.name(key),
            expected,
            found: kind(found),
        }
    }

    fn text(&self, key: &str) -> Result<String, DecodeError> {
        match self.required(key)? {
            Value::Text(s) => Ok(s.clone()),
            other => Err(self.wrong(key, "a text string", other)),
        }
    }

    fn peer_id(&self, key: &str) -> Result<PeerId, DecodeError> {
        self.text(key).map(PeerId::from)
    }

    fn document_id(&self, key: &str) -> Result<DocumentId, DecodeError> {
        self.text(key)?
            .parse()
            .map_err(|source| DecodeError::InvalidDocumentId {
                field: self.name(key),
                source,
            })
    }

    fn bytes(&self, key: &str) -> Result<Vec<u8>, DecodeError> {
        match self.required(key)? {
            Value::Bytes(b) => Ok(b.clone()),
            other => Err(self.wrong(key, "a byte string", other)),
        }
    }

    fn uint(&self, key: &str) -> Result<u64, DecodeError> {
        let v = self.required(key)?;
        as_u64(v).ok_or_else(|| self.wrong(key, "a non-negative integer", v))
    }

    fn bool_or_false(&self, key: &str) -> Result<bool, DecodeError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.wrong(key, "a boolean", other)),
        }
    }

    fn text_array(&self, key: &str) -> Result<Vec<String>, DecodeError> {
        let items = match self.required(key)? {
            Value::Array(items) => items,
            other => return Err(self.wrong(key, "an array of text strings", other)),
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match untag(item) {
                Value::Text(s) => Ok(s.clone()),
                other => Err(self.wrong(&format!("{key}[{i}]"), "a text string", other)),
            })
            .collect()
    }

    fn nested(&self, key: &str, path: String) -> Result<Option<Fields<'a>>, DecodeError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Map(entries)) => Ok(Some(Fields {
                message_type: self.message_type,
                path,
                entries,
            })),
            Some(other) => Err(self.wrong(key, "a map", other)),
        }
    }

    fn peer_metadata(&self, key: &str) -> Result<Option<PeerMetadata>, DecodeError> {
        let Some(m) = self.nested(key, format!("{}{key}.", self.path))? else {
            return Ok(None);
        };
        Ok(Some(PeerMetadata {
            storage_id: match m.get("storageId") {
                Some(_) => Some(StorageId::from(m.text("storageId")?)),
                None => None,
            },
            is_ephemeral: m.bool_or_false("isEphemeral")?,
        }))
    }

    fn new_heads(&self, key: &str) -> Result<BTreeMap<StorageId, HeadsAt>, DecodeError> {
        let entries = match self.required(key)? {
            Value::Map(entries) => entries,
            other => return Err(self.wrong(key, "a map", other)),
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let storage_id = match untag(k) {
                Value::Text(s) => s,
                other => {
                    return Err(self.wrong(key, "a map with text (storage id) keys", other));
                }
            };
            let path = format!("{}{key}.{storage_id}", self.path);
            let heads = match untag(v) {
                Value::Map(entries) => Fields {
                    message_type: self.message_type,
                    path: format!("{path}."),
                    entries,
                },
                other => {
                    return Err(DecodeError::WrongType {
                        field: path,
                        expected: "a map",
                        found: kind(other),
                    });
                }
            };
            out.insert(
                StorageId::from(storage_id.as_str()),
                HeadsAt {
                    heads: heads.text_array("heads")?,
                    timestamp: heads.uint("timestamp")?,
                },
            );
        }
        Ok(out)
    }
}

// ---- encoding helpers ------------------------------------------------------------------------

/// A CBOR map under construction, `type` first.
struct MapBuilder(Vec<(Value, Value)>);

impl MapBuilder {
    fn new(message_type: &str) -> Self {
        Self(vec![(text("type"), text(message_type))])
    }

    fn with(mut self, key: &str, value: Value) -> Self {
        self.0.push((text(key), value));
        self
    }

    fn with_opt(self, key: &str, value: Option<Value>) -> Self {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }

    fn build(self) -> Value {
        Value::Map(self.0)
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

fn text_array<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Array(items.iter().map(|s| text(s.as_ref())).collect())
}

/// A number as cbor-x would write a JS `Number`: integers up to 2³²−1 as CBOR integers, larger
/// ones up to 2⁵³−1 as floats (exact), and beyond that as 64-bit integers (a `BigInt` in JS).
fn js_number(n: u64) -> Value {
    if n > u64::from(u32::MAX) && n <= MAX_SAFE_INTEGER {
        Value::Float(n as f64)
    } else {
        Value::Integer(n.into())
    }
}

fn peer_metadata(m: &PeerMetadata) -> Value {
    MapBuilder(Vec::new())
        .with_opt("storageId", m.storage_id.as_ref().map(|s| text(s.as_str())))
        .with("isEphemeral", Value::Bool(m.is_ephemeral))
        .build()
}

fn to_value(message: &Message) -> Value {
    let m = MapBuilder::new(message.type_name());
    match message {
        Message::Join {
            sender_id,
            supported_protocol_versions,
            peer_metadata: meta,
        } => m
            .with("senderId", text(sender_id.as_str()))
            .with_opt("peerMetadata", meta.as_ref().map(peer_metadata))
            .with(
                "supportedProtocolVersions",
                text_array(supported_protocol_versions),
            ),
        Message::Peer {
            sender_id,
            target_id,
            selected_protocol_version,
            peer_metadata: meta,
        } => m
            .with("senderId", text(sender_id.as_str()))
            .with_opt("peerMetadata", meta.as_ref().map(peer_metadata))
            .with("selectedProtocolVersion", text(selected_protocol_version))
            .with("targetId", text(target_id.as_str())),
        Message::Request {
            sender_id,
            target_id,
            document_id,
            data,
        }
        | Message::Sync {
            sender_id,
            target_id,
            document_id,
            data,
        } => m
            .with("senderId", text(sender_id.as_str()))
            .with("targetId", text(target_id.as_str()))
            .with("documentId", text(&document_id.to_string()))
            .with("data", bytes(data)),
        Message::DocUnavailable {
            sender_id,
            target_id,
            document_id,
        } => m
            .with("senderId", text(sender_id.as_str()))
            .with("targetId", text(target_id.as_str()))
            .with("documentId", text(&document_id.to_string())),
        Message::Ephemeral {
            sender_id,
            target_id,
            count,
            session_id,
            document_id,
            data,
        } => m
            .with("senderId", text(sender_id.as_str()))
            .with("targetId", text(target_id.as_str()))
            .with("count", js_number(*count))
            .with("sessionId", text(session_id))
            .with("documentId", text(&document_id.to_string()))
            .with("data", bytes(data)),
        Message::RemoteSubscriptionChange {
            sender_id,
            target_id,
            add,
            remove,
        } => m
            .with("senderId", text(sender_id.as_str()))
            .with("targetId", text(target_id.as_str()))
            .with_opt("add", add.as_deref().map(text_array))
            .with("remove", text_array(remove)),
        Message::RemoteHeadsChanged {
            sender_id,
            target_id,
            document_id,
            new_heads,
        } => m
            .with("senderId", text(sender_id.as_str()))
            .with("targetId", text(target_id.as_str()))
            .with("documentId", text(&document_id.to_string()))
            .with(
                "newHeads",
                Value::Map(
                    new_heads
                        .iter()
                        .map(|(storage_id, at)| {
                            let v = MapBuilder(Vec::new())
                                .with("heads", text_array(&at.heads))
                                .with("timestamp", js_number(at.timestamp))
                                .build();
                            (text(storage_id.as_str()), v)
                        })
                        .collect(),
                ),
            ),
        Message::Leave { sender_id } => m.with("senderId", text(sender_id.as_str())),
        Message::Error { message } => m.with("message", text(message)),
        Message::Rejected {
            sender_id,
            target_id,
            document_id,
            reason,
            detail,
            changes,
        } => m
            .with("senderId", text(sender_id.as_str()))
            .with("targetId", text(target_id.as_str()))
            .with("documentId", text(&document_id.to_string()))
            .with("reason", text(reason))
            .with_opt("detail", detail.as_deref().map(text))
            .with("changes", text_array(changes)),
        Message::Revoked {
            sender_id,
            target_id,
            document_id,
            reason,
        } => m
            .with("senderId", text(sender_id.as_str()))
            .with("targetId", text(target_id.as_str()))
            .with("documentId", text(&document_id.to_string()))
            .with("reason", text(reason)),
        Message::Replaced {
            sender_id,
            target_id,
            document_id,
            new_document_id,
        } => m
            .with("senderId", text(sender_id.as_str()))
            .with("targetId", text(target_id.as_str()))
            .with("documentId", text(&document_id.to_string()))
            .with("newDocumentId", text(&new_document_id.to_string())),
    }
    .build()
}
