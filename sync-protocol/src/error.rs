//! [`DecodeError`]: everything that can be wrong with an incoming frame.
//!
//! Every variant's message is lower-case and names the offending field, so a server can log it
//! or send it back in an `error` message as is. [`DecodeError::UnknownType`] is special: it is
//! what a newer peer's message looks like, and automerge-repo itself silently drops such
//! messages, so a server should log and skip it rather than close the connection.

use crate::ids::DocumentIdError;

/// Why [`crate::decode`] refused a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is larger than [`crate::MAX_MESSAGE_BYTES`]; nothing was parsed.
    #[error("message is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// The frame's length in bytes.
        size: usize,
        /// The limit it exceeded.
        limit: usize,
    },
    /// The frame is empty or ends in the middle of a CBOR item.
    #[error("message is empty or truncated: the cbor data ends early")]
    Truncated,
    /// The bytes are not well-formed CBOR (or nest deeper than 256 levels).
    #[error("message is not valid cbor: {detail}")]
    NotCbor {
        /// What the CBOR parser objected to, lower-case.
        detail: String,
    },
    /// One complete CBOR item was followed by more bytes.
    #[error("message has {count} trailing bytes after the cbor value")]
    TrailingBytes {
        /// How many bytes follow the first CBOR item.
        count: usize,
    },
    /// The CBOR item is not a map.
    #[error("message is not a cbor map but {found}")]
    NotAMap {
        /// What it is instead, e.g. `an array`.
        found: &'static str,
    },
    /// The map has no `type` key (or its value is null).
    #[error("message has no `type` field")]
    MissingType,
    /// A field the message type requires is absent (or null/undefined).
    #[error("missing field `{field}` in message type `{message_type}`")]
    MissingField {
        /// The message's `type`.
        message_type: String,
        /// The wire name of the field, with a path for nested ones (`peerMetadata.isEphemeral`).
        field: String,
    },
    /// A field holds the wrong kind of CBOR value.
    #[error("wrong type for field `{field}`: expected {expected}, found {found}")]
    WrongType {
        /// The wire name of the field, with a path for nested ones (`newHeads.<id>.timestamp`,
        /// `add[2]`).
        field: String,
        /// What the protocol wants there, e.g. `a byte string`.
        expected: &'static str,
        /// What was there, e.g. `a text string`.
        found: &'static str,
    },
    /// The `type` is not one this crate knows. Peers ignore such messages; so should servers.
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// A `documentId` (or `newDocumentId`) is not a bs58check 16-byte ID or hyphenated UUID.
    #[error("invalid document id in field `{field}`: {source}")]
    InvalidDocumentId {
        /// The wire name of the field.
        field: String,
        /// What is wrong with it.
        #[source]
        source: DocumentIdError,
    },
}
