//! The automerge-repo network protocol (version `"1"`) as Regie's server speaks it, plus Regie's
//! three extension messages.
//!
//! # The protocol in brief
//!
//! Every message is **one CBOR map in one binary WebSocket frame**. The map's `type` key says
//! which message it is (`"join"`, `"doc-unavailable"`, …); the other keys are camelCase
//! (`senderId`, `documentId`, …) and automerge sync payloads travel as CBOR byte strings
//! (`data`). This is exactly what `@automerge/automerge-repo` 2.x and its
//! `automerge-repo-network-websocket` adapter put on the wire; the fixtures in `tests/fixtures/`
//! were captured from those libraries.
//!
//! **Handshake.** The client (the "initiating peer") opens the socket and sends
//! [`Message::Join`] with its made-up peer ID, `supportedProtocolVersions: ["1"]` and optional
//! [`PeerMetadata`] (storage ID, whether it is ephemeral). The server answers with
//! [`Message::Peer`]: its own peer ID, `selectedProtocolVersion: "1"` and its metadata. If the
//! versions do not overlap the server sends [`Message::Error`] and closes instead.
//!
//! **Sync.** Afterwards either side may send, per document (a [`DocumentId`]):
//! * [`Message::Request`]: "I don't have this document, please sync it to me"; answered by
//!   [`Message::Sync`] messages, or [`Message::DocUnavailable`] if the receiver can't provide it;
//! * [`Message::Sync`]: one automerge sync message (`automerge::sync::Message::encode()`);
//!   the two sides exchange these until both have each other's changes;
//! * [`Message::Ephemeral`]: application data (presence) relayed to the document's peers, never
//!   stored;
//! * [`Message::RemoteSubscriptionChange`] / [`Message::RemoteHeadsChanged`]: optional gossip of
//!   which heads other storages have (only with `enableRemoteHeadsGossiping`);
//! * [`Message::Leave`]: an advisory goodbye (automerge-repo 2.5.6 never sends it).
//!
//! **Regie extensions.** Only the server sends these; an unmodified automerge-repo client
//! **ignores** them: its `NetworkSubsystem` drops every message whose `type` is not one of the
//! six repo message types (`isRepoMessage`), logging `invalid message` under the
//! `automerge-repo:network:*` debug namespace, without closing the connection. The capture script
//! in `tests/fixtures/capture/` checks exactly that against automerge-repo 2.5.6 by sending the
//! three extension frames (`tests/fixtures/ext-*.cbor`) to a live client, which then goes on
//! syncing. Regie-aware clients act on them:
//! * [`Message::Rejected`] (`type: "rejected"`): the server refused changes of the target to a
//!   document (stable `reason` code such as `path_reserved`, optional `detail`, the refused
//!   change hashes in hex). The client must reset to the server's heads and redo its intent as
//!   new changes;
//! * [`Message::Revoked`] (`type: "revoked"`): the device may no longer hold the document and
//!   must purge its local copy;
//! * [`Message::Replaced`] (`type: "replaced"`): the document was rewritten under
//!   `newDocumentId`; the old ID is refused forever and the client should fetch the new one.
//!
//! # Encoding and decoding
//!
//! [`encode`] is infallible; [`decode`] returns a precise [`DecodeError`] and never panics,
//! whatever the input. Frames over [`MAX_MESSAGE_BYTES`] are refused unparsed.
//!
//! ```
//! use regie_sync_protocol::{decode, encode, DecodeError, DocumentId, Message, PeerId};
//!
//! let doc = DocumentId::from_url("automerge:2VzPLXwa4R41PB944FYJS46nvFdj")?;
//! let msg = Message::Sync {
//!     sender_id: PeerId::new("regie-server"),
//!     target_id: PeerId::new("peer-tablet-7"),
//!     document_id: doc,
//!     data: vec![0x42, 0x00],
//! };
//! let frame = encode(&msg);
//! assert_eq!(decode(&frame)?, msg);
//!
//! // A newer peer's message type: log and skip it, as automerge-repo does.
//! let mut unknown = Vec::new();
//! ciborium::into_writer(&ciborium::Value::Map(vec![(
//!     "type".into(),
//!     "presence-v2".into(),
//! )]), &mut unknown)?;
//! assert_eq!(decode(&unknown), Err(DecodeError::UnknownType("presence-v2".into())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bounds;
mod codec;
mod error;
mod ids;
mod message;

pub use bounds::{LimitError, SyncLimits, SyncStats, check_sync_message, chunk_len};
pub use codec::{MAX_MESSAGE_BYTES, decode, encode};
pub use error::DecodeError;
pub use ids::{DocumentId, DocumentIdError, PeerId, StorageId, URL_PREFIX};
pub use message::{HeadsAt, Message, PROTOCOL_VERSION, PeerMetadata};
