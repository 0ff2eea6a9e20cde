//! Identifiers that appear on the wire: document IDs, peer IDs and storage IDs.
//!
//! A [`DocumentId`] is 16 random bytes (a UUID v4) written as **bs58check** (base58 with a
//! 4-byte double-SHA-256 checksum and no version byte), exactly as automerge-repo's
//! `binaryToDocumentId` does; its URL form is `automerge:<id>`. Peer and storage IDs are
//! opaque strings chosen by each peer.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The scheme prefix of an automerge document URL.
pub const URL_PREFIX: &str = "automerge:";

/// The identity of one Automerge document: a UUID, written on the wire as bs58check.
///
/// `Display` (and `to_string()`) gives the bs58check form automerge-repo uses in `documentId`
/// fields, e.g. `2VzPLXwa4R41PB944FYJS46nvFdj`. [`FromStr`] accepts that form and, like samod
/// and automerge-repo's `interpretAsDocumentId`, a hyphenated UUID
/// (`6ba7b810-9dad-41d1-80b4-00c04fd430c8`). Serde uses the bs58check string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId(Uuid);

/// Why a string is not a usable [`DocumentId`] or automerge URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentIdError {
    /// The string is neither valid bs58check nor a hyphenated UUID.
    #[error("not a bs58check document id or a hyphenated uuid")]
    NotBs58Check,
    /// The bs58check payload is not 16 bytes long (automerge-repo allows other lengths, Regie does not).
    #[error("document id is {0} bytes long, expected 16")]
    WrongLength(usize),
    /// A URL that does not start with `automerge:`.
    #[error("not an automerge url (expected it to start with `automerge:`)")]
    NotAutomergeUrl,
}

impl DocumentId {
    /// A fresh random (v4 UUID) document ID, as automerge-repo's `generateAutomergeUrl` makes.
    #[must_use]
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    /// Wraps an existing UUID.
    #[must_use]
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID inside.
    #[must_use]
    pub const fn uuid(&self) -> Uuid {
        self.0
    }

    /// The 16 raw bytes (automerge-repo's `BinaryDocumentId`).
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The automerge URL of this document: `automerge:<bs58check id>`.
    #[must_use]
    pub fn to_url(&self) -> String {
        format!("{URL_PREFIX}{self}")
    }

    /// Parses an automerge URL (`automerge:<id>`), ignoring any `/path` or `#heads` suffix.
    ///
    /// # Errors
    /// [`DocumentIdError::NotAutomergeUrl`] without the `automerge:` prefix, otherwise the
    /// errors of [`DocumentId::from_str`].
    pub fn from_url(url: &str) -> Result<Self, DocumentIdError> {
        let rest = url
            .strip_prefix(URL_PREFIX)
            .ok_or(DocumentIdError::NotAutomergeUrl)?;
        let end = rest.find(['/', '#']).unwrap_or(rest.len());
        rest[..end].parse()
    }
}

impl From<Uuid> for DocumentId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl From<DocumentId> for Uuid {
    fn from(id: DocumentId) -> Self {
        id.0
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0.as_bytes()).with_check().into_string())
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

impl FromStr for DocumentId {
    type Err = DocumentIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match bs58::decode(s).with_check(None).into_vec() {
            Ok(bytes) => Uuid::from_slice(&bytes)
                .map(Self)
                .map_err(|_| DocumentIdError::WrongLength(bytes.len())),
            // Only the hyphenated form, which is what automerge-repo's `isValidUuid` accepts.
            Err(_) if s.len() == 36 => Uuid::try_parse(s)
                .map(Self)
                .map_err(|_| DocumentIdError::NotBs58Check),
            Err(_) => Err(DocumentIdError::NotBs58Check),
        }
    }
}

impl Serialize for DocumentId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DocumentId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Defines an opaque string identifier newtype with the usual conversions.
macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string as this identifier.
            #[must_use]
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The identifier as a string slice.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The identifier as an owned string.
            #[must_use]
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id! {
    /// The ephemeral identity a peer claims in `join`/`peer` (`senderId`, `targetId`).
    ///
    /// automerge-repo makes these up per process (`peer-<random>`); nothing authenticates them,
    /// so a server must bind a connection's peer ID to its authenticated user itself.
    PeerId
}

string_id! {
    /// The identity of a peer's persistent storage (a UUID string in automerge-repo), sent in
    /// `peerMetadata.storageId` and used as the key of remote-heads gossip.
    StorageId
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (UUID, bs58check) pairs produced by automerge-repo 2.5.6's `stringifyAutomergeUrl`.
    const JS_VECTORS: &[(&str, &str)] = &[
        (
            "00000000-0000-0000-0000-000000000000",
            "11111111111111114Ki9Gx",
        ),
        (
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "4ZrjxJnU1LA5xSyrWMNuXTozYEvA",
        ),
        (
            "6ba7b810-9dad-41d1-80b4-00c04fd430c8",
            "2VzPLXwa4R41PB944FYJS46nvFdj",
        ),
        (
            "0f0e0d0c-0b0a-4908-8706-050403020100",
            "DAZmSpd1a38fPH8v5mEx3uZStLm",
        ),
        (
            "d9e48a9b-415f-41b4-b83b-7be39b713c30",
            "434oM9rTvUK7V85HfTCLRC5pPeD7",
        ),
    ];

    #[test]
    fn display_matches_automerge_repo() {
        for (uuid, bs58) in JS_VECTORS {
            let id = DocumentId::from_uuid(Uuid::parse_str(uuid).unwrap());
            assert_eq!(id.to_string(), *bs58);
            assert_eq!(id.to_url(), format!("automerge:{bs58}"));
            assert_eq!(bs58.parse::<DocumentId>().unwrap(), id);
            assert_eq!(uuid.parse::<DocumentId>().unwrap(), id);
        }
    }

    #[test]
    fn from_url_ignores_path_and_heads() {
        let id: DocumentId = "2VzPLXwa4R41PB944FYJS46nvFdj".parse().unwrap();
        for url in [
            "automerge:2VzPLXwa4R41PB944FYJS46nvFdj",
            "automerge:2VzPLXwa4R41PB944FYJS46nvFdj/items/0",
            "automerge:2VzPLXwa4R41PB944FYJS46nvFdj#2vaseobuhKFPg1yDDJVKt4WV7TAAp8GZhWqkJGURg9raYQosEy",
            "automerge:2VzPLXwa4R41PB944FYJS46nvFdj#",
        ] {
            assert_eq!(DocumentId::from_url(url), Ok(id), "{url}");
        }
        assert_eq!(
            DocumentId::from_url("2VzPLXwa4R41PB944FYJS46nvFdj"),
            Err(DocumentIdError::NotAutomergeUrl)
        );
        assert_eq!(
            DocumentId::from_url("automerge:"),
            Err(DocumentIdError::NotBs58Check)
        );
    }

    #[test]
    fn rejects_bad_ids() {
        // One character changed: the checksum no longer matches.
        assert_eq!(
            "2VzPLXwa4R41PB944FYJS46nvFdk".parse::<DocumentId>(),
            Err(DocumentIdError::NotBs58Check)
        );
        // Valid bs58check of 3 bytes.
        let short = bs58::encode([1u8, 2, 3]).with_check().into_string();
        assert_eq!(
            short.parse::<DocumentId>(),
            Err(DocumentIdError::WrongLength(3))
        );
        // Only the hyphenated UUID form is accepted as a fallback.
        assert!(
            "6ba7b8109dad41d180b400c04fd430c8"
                .parse::<DocumentId>()
                .is_err()
        );
        assert!("".parse::<DocumentId>().is_err());
        assert!("not an id at all ✓".parse::<DocumentId>().is_err());
    }

    #[test]
    fn random_ids_are_v4_and_round_trip() {
        let id = DocumentId::new_random();
        assert_eq!(id.uuid().get_version_num(), 4);
        assert_eq!(id.to_string().parse::<DocumentId>(), Ok(id));
        assert_eq!(DocumentId::from_url(&id.to_url()), Ok(id));
        assert_ne!(id, DocumentId::new_random());
    }

    #[test]
    fn serde_uses_the_bs58check_string() {
        let id: DocumentId = "2VzPLXwa4R41PB944FYJS46nvFdj".parse().unwrap();
        let mut bytes = Vec::new();
        ciborium::into_writer(&id, &mut bytes).unwrap();
        let value: ciborium::Value = ciborium::from_reader(&bytes[..]).unwrap();
        assert_eq!(value, ciborium::Value::Text(id.to_string()));
        let back: DocumentId = ciborium::from_reader(&bytes[..]).unwrap();
        assert_eq!(back, id);

        let bad = ciborium::Value::Text("nope".into());
        let mut bytes = Vec::new();
        ciborium::into_writer(&bad, &mut bytes).unwrap();
        assert!(ciborium::from_reader::<DocumentId, _>(&bytes[..]).is_err());
    }

    #[test]
    fn string_ids() {
        let p = PeerId::new("peer-1");
        assert_eq!(p.as_str(), "peer-1");
        assert_eq!(p.to_string(), "peer-1");
        assert_eq!(format!("{p:?}"), "PeerId(\"peer-1\")");
        assert_eq!(PeerId::from("peer-1"), p);
        let s = StorageId::from(String::from("s"));
        assert_eq!(s.clone().into_string(), "s");
        let set: std::collections::BTreeSet<StorageId> = [s].into();
        assert!(set.contains("s"));
    }
}
