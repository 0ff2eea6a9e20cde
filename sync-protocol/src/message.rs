//! The messages of automerge-repo's network protocol "1", plus Regie's three extensions.
//!
//! Field names and meanings follow automerge-repo 2.5.6 (`network/messages.ts` and
//! `automerge-repo-network-websocket/src/messages.ts`); the wire names are given on each field.
//! See the crate documentation for the flow and [`crate::encode`]/[`crate::decode`] for the
//! CBOR mapping.

use std::collections::BTreeMap;

use crate::ids::{DocumentId, PeerId, StorageId};

/// The only protocol version automerge-repo (1.x and 2.x) speaks.
pub const PROTOCOL_VERSION: &str = "1";

/// What a peer says about itself in `join` and `peer` (`peerMetadata`, or `metadata` in the
/// README's CDDL).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerMetadata {
    /// `storageId`: the peer's persistent storage, if it has one. JS peers without storage send
    /// the key with the value `undefined`, which decodes as `None`.
    pub storage_id: Option<StorageId>,
    /// `isEphemeral`: true if the peer will not come back with this storage (so its sync state
    /// is not worth saving). Optional in JS; a missing value decodes as `false`.
    pub is_ephemeral: bool,
}

/// The heads one storage had of a document at some moment, as gossiped in `remote-heads-changed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadsAt {
    /// `heads`: the change hashes, each **bs58check-encoded** (automerge-repo 2.x `UrlHeads`,
    /// e.g. `2vaseobuhKFP…`), not hex and not base64 as the websocket README says.
    pub heads: Vec<String>,
    /// `timestamp`: milliseconds since the Unix epoch on the peer that first saw these heads.
    /// JS sends it as a CBOR float64 (cbor-x writes integers above 2³²−1 as floats).
    pub timestamp: u64,
}

/// One protocol message: one CBOR map in one binary WebSocket frame.
///
/// The first ten variants are automerge-repo's own; [`Message::Rejected`],
/// [`Message::Revoked`] and [`Message::Replaced`] are Regie extensions that only the server sends
/// (see the crate documentation). New variants may be added, so matches need a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// `join`: the first message of a connection, from the connecting (initiating) peer.
    Join {
        /// `senderId`: the connecting peer's ID.
        sender_id: PeerId,
        /// `supportedProtocolVersions`: the versions it speaks; `["1"]` from every JS client.
        supported_protocol_versions: Vec<String>,
        /// `peerMetadata` (decoding also accepts `metadata`): its storage ID and ephemerality.
        peer_metadata: Option<PeerMetadata>,
    },
    /// `peer`: the accepting peer's answer to `join`, which completes the handshake.
    Peer {
        /// `senderId`: the accepting peer's (the server's) ID.
        sender_id: PeerId,
        /// `targetId`: the ID the connecting peer sent in its `join`.
        target_id: PeerId,
        /// `selectedProtocolVersion`: always [`PROTOCOL_VERSION`].
        selected_protocol_version: String,
        /// `peerMetadata`: the accepting peer's storage ID and ephemerality.
        peer_metadata: Option<PeerMetadata>,
    },
    /// `request`: the first sync message for a document the sender does not have yet; the
    /// receiver answers with `sync`, or `doc-unavailable` if neither it nor its peers have it.
    Request {
        /// `senderId`: the peer asking.
        sender_id: PeerId,
        /// `targetId`: the peer asked.
        target_id: PeerId,
        /// `documentId`: the document wanted.
        document_id: DocumentId,
        /// `data`: an automerge sync message (CBOR byte string).
        data: Vec<u8>,
    },
    /// `sync`: an automerge sync message about one document.
    Sync {
        /// `senderId`: the peer sending the sync message.
        sender_id: PeerId,
        /// `targetId`: the peer it is for.
        target_id: PeerId,
        /// `documentId`: the document it is about.
        document_id: DocumentId,
        /// `data`: an automerge sync message (CBOR byte string; first byte 0x42, or 0x43 for
        /// the v2 form that carries a whole saved document).
        data: Vec<u8>,
    },
    /// `doc-unavailable`: the answer to a `request` for a document the sender cannot provide.
    DocUnavailable {
        /// `senderId`: the peer that does not have it.
        sender_id: PeerId,
        /// `targetId`: the peer that asked.
        target_id: PeerId,
        /// `documentId`: the document asked for.
        document_id: DocumentId,
    },
    /// `ephemeral`: an application message about a document (presence, cursors) that is
    /// gossiped to the document's peers and never stored.
    Ephemeral {
        /// `senderId`: the peer that created the message (kept when it is relayed).
        sender_id: PeerId,
        /// `targetId`: the next hop.
        target_id: PeerId,
        /// `count`: a per-session sequence number; receivers drop repeats.
        count: u64,
        /// `sessionId`: a random ID of the sender's process, scoping `count`.
        session_id: String,
        /// `documentId`: the document the message is about.
        document_id: DocumentId,
        /// `data`: the application payload (CBOR byte string; JS puts CBOR inside).
        data: Vec<u8>,
    },
    /// `remote-subscription-change`: the sender wants to hear (or stop hearing) about the
    /// heads of documents as held by these storages.
    RemoteSubscriptionChange {
        /// `senderId`: the subscribing peer.
        sender_id: PeerId,
        /// `targetId`: the peer asked to gossip.
        target_id: PeerId,
        /// `add`: storages to start following (absent or `undefined` in JS when only removing).
        add: Option<Vec<StorageId>>,
        /// `remove`: storages to stop following (JS sends `undefined` when only adding; that
        /// decodes as empty).
        remove: Vec<StorageId>,
    },
    /// `remote-heads-changed`: the heads of a document at some storages have moved.
    RemoteHeadsChanged {
        /// `senderId`: the peer passing the news on.
        sender_id: PeerId,
        /// `targetId`: the subscriber.
        target_id: PeerId,
        /// `documentId`: the document whose heads moved.
        document_id: DocumentId,
        /// `newHeads`: per storage ID, its new heads and when they were seen.
        new_heads: BTreeMap<StorageId, HeadsAt>,
    },
    /// `leave`: an advisory goodbye before disconnecting (in the README; JS 2.5.6 never sends it).
    Leave {
        /// `senderId`: the departing peer.
        sender_id: PeerId,
    },
    /// `error`: a protocol error; the sender closes the connection after it.
    Error {
        /// `message`: a human-readable description (JS clients only log it).
        message: String,
    },
    /// `rejected` (Regie extension): the server refused some of the sender's changes to a
    /// document; the client must reset to the server's heads and redo its intent as new changes.
    Rejected {
        /// `senderId`: the server.
        sender_id: PeerId,
        /// `targetId`: the peer whose changes were refused.
        target_id: PeerId,
        /// `documentId`: the document the changes were for.
        document_id: DocumentId,
        /// `reason`: a stable, machine-readable reason code such as `path_reserved`.
        reason: String,
        /// `detail`: optional human-readable detail (absent when `None`).
        detail: Option<String>,
        /// `changes`: the hashes of the refused changes, lower-case hex.
        changes: Vec<String>,
    },
    /// `revoked` (Regie extension): the target may no longer hold this document and must purge
    /// its local copy; the server will refuse further sync for it.
    Revoked {
        /// `senderId`: the server.
        sender_id: PeerId,
        /// `targetId`: the device that must purge.
        target_id: PeerId,
        /// `documentId`: the document to purge.
        document_id: DocumentId,
        /// `reason`: a stable reason code such as `access_revoked`.
        reason: String,
    },
    /// `replaced` (Regie extension): the document was rewritten under a new ID (e.g. to erase
    /// history); the old ID is refused forever and the client should fetch the new one.
    Replaced {
        /// `senderId`: the server.
        sender_id: PeerId,
        /// `targetId`: the peer that asked about the old document.
        target_id: PeerId,
        /// `documentId`: the old, retired document.
        document_id: DocumentId,
        /// `newDocumentId`: the document that replaces it.
        new_document_id: DocumentId,
    },
}

impl Message {
    /// The wire value of the `type` key, e.g. `"doc-unavailable"`.
    #[must_use]
    pub const fn type_name(&self) -> &'static str {
        match self {
            Self::Join { .. } => "join",
            Self::Peer { .. } => "peer",
            Self::Request { .. } => "request",
            Self::Sync { .. } => "sync",
            Self::DocUnavailable { .. } => "doc-unavailable",
            Self::Ephemeral { .. } => "ephemeral",
            Self::RemoteSubscriptionChange { .. } => "remote-subscription-change",
            Self::RemoteHeadsChanged { .. } => "remote-heads-changed",
            Self::Leave { .. } => "leave",
            Self::Error { .. } => "error",
            Self::Rejected { .. } => "rejected",
            Self::Revoked { .. } => "revoked",
            Self::Replaced { .. } => "replaced",
        }
    }

    /// True for `rejected`, `revoked` and `replaced`, which unmodified automerge-repo peers do
    /// not know (and silently drop).
    #[must_use]
    pub const fn is_regie_extension(&self) -> bool {
        matches!(
            self,
            Self::Rejected { .. } | Self::Revoked { .. } | Self::Replaced { .. }
        )
    }

    /// The `senderId`, for every message type except `error`.
    #[must_use]
    pub const fn sender_id(&self) -> Option<&PeerId> {
        match self {
            Self::Join { sender_id, .. }
            | Self::Peer { sender_id, .. }
            | Self::Request { sender_id, .. }
            | Self::Sync { sender_id, .. }
            | Self::DocUnavailable { sender_id, .. }
            | Self::Ephemeral { sender_id, .. }
            | Self::RemoteSubscriptionChange { sender_id, .. }
            | Self::RemoteHeadsChanged { sender_id, .. }
            | Self::Leave { sender_id }
            | Self::Rejected { sender_id, .. }
            | Self::Revoked { sender_id, .. }
            | Self::Replaced { sender_id, .. } => Some(sender_id),
            Self::Error { .. } => None,
        }
    }

    /// The `targetId`, for every message type except `join`, `leave` and `error`.
    #[must_use]
    pub const fn target_id(&self) -> Option<&PeerId> {
        match self {
            Self::Peer { target_id, .. }
            | Self::Request { target_id, .. }
            | Self::Sync { target_id, .. }
            | Self::DocUnavailable { target_id, .. }
            | Self::Ephemeral { target_id, .. }
            | Self::RemoteSubscriptionChange { target_id, .. }
            | Self::RemoteHeadsChanged { target_id, .. }
            | Self::Rejected { target_id, .. }
            | Self::Revoked { target_id, .. }
            | Self::Replaced { target_id, .. } => Some(target_id),
            Self::Join { .. } | Self::Leave { .. } | Self::Error { .. } => None,
        }
    }

    /// The `documentId` the message is about, if any.
    #[must_use]
    pub const fn document_id(&self) -> Option<&DocumentId> {
        match self {
            Self::Request { document_id, .. }
            | Self::Sync { document_id, .. }
            | Self::DocUnavailable { document_id, .. }
            | Self::Ephemeral { document_id, .. }
            | Self::RemoteHeadsChanged { document_id, .. }
            | Self::Rejected { document_id, .. }
            | Self::Revoked { document_id, .. }
            | Self::Replaced { document_id, .. } => Some(document_id),
            Self::Join { .. }
            | Self::Peer { .. }
            | Self::RemoteSubscriptionChange { .. }
            | Self::Leave { .. }
            | Self::Error { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let doc = DocumentId::new_random();
        let sync = Message::Sync {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: doc,
            data: vec![0x42],
        };
        assert_eq!(sync.type_name(), "sync");
        assert_eq!(sync.sender_id(), Some(&PeerId::from("a")));
        assert_eq!(sync.target_id(), Some(&PeerId::from("b")));
        assert_eq!(sync.document_id(), Some(&doc));
        assert!(!sync.is_regie_extension());

        let err = Message::Error {
            message: "x".into(),
        };
        assert_eq!(err.sender_id(), None);
        assert_eq!(err.target_id(), None);
        assert_eq!(err.document_id(), None);

        let revoked = Message::Revoked {
            sender_id: "s".into(),
            target_id: "c".into(),
            document_id: doc,
            reason: "access_revoked".into(),
        };
        assert!(revoked.is_regie_extension());
        assert_eq!(revoked.type_name(), "revoked");
    }
}
