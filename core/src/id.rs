//! Newtype identifiers: dossiers, signals, persons, users, organisations, districts, teams, and
//! the key that names one document of a dossier (`plan`, `record`, `view/<person>`,
//! `maatwerk/<n>`, `partner/<org>`, `meta`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One household dossier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DossierId(pub Uuid);

impl DossierId {
    /// A fresh random id.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for DossierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for DossierId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self).map_err(|_| IdError::Dossier)
    }
}

/// A signal: a first contact recorded without a name, which may later become a dossier (R11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SignalId(pub Uuid);

impl SignalId {
    /// A fresh random id.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for SignalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for SignalId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self).map_err(|_| IdError::Signal)
    }
}

/// Why an identifier did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// A dossier id is a UUID.
    #[error("a dossier id is a UUID")]
    Dossier,
    /// A name-like id is 1–64 characters of `[A-Za-z0-9._-]`.
    #[error("an id is 1 to 64 characters of letters, digits, '.', '_' or '-'")]
    Name,
    /// A document key is one of the six kinds of SPEC §2.
    #[error(
        "a document key is plan, record, meta, view/<person>, maatwerk/<number> or partner/<org>"
    )]
    DocumentKey,
    /// A signal id is a UUID.
    #[error("a signal id is a UUID")]
    Signal,
}

fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an id; see [`IdError::Name`] for the allowed characters.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                if valid_name(&s) { Ok(Self(s)) } else { Err(IdError::Name) }
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        #[cfg(feature = "utoipa")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                name_schema()
            }
        }

        #[cfg(feature = "utoipa")]
        impl utoipa::ToSchema for $name {}
    };
}

/// The schema of a name-like id (see [`IdError::Name`]).
#[cfg(feature = "utoipa")]
fn name_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Za-z0-9._-]{1,64}$"))
        .min_length(Some(1))
        .max_length(Some(64))
        .into()
}

/// The schema of a UUID id.
#[cfg(feature = "utoipa")]
fn uuid_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .into()
}

#[cfg(feature = "utoipa")]
impl utoipa::PartialSchema for DossierId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        uuid_schema()
    }
}

#[cfg(feature = "utoipa")]
impl utoipa::ToSchema for DossierId {}

#[cfg(feature = "utoipa")]
impl utoipa::PartialSchema for SignalId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        uuid_schema()
    }
}

#[cfg(feature = "utoipa")]
impl utoipa::ToSchema for SignalId {}

name_id!(
    /// A person in a dossier (a household member), and the `person` claim of a resident.
    PersonId
);
name_id!(
    /// An authenticated user: the token's `sub` claim.
    UserId
);
name_id!(
    /// A chain-partner organisation: the `org` claim.
    OrgId
);
name_id!(
    /// A district (wijk): the `district` claim.
    DistrictId
);
name_id!(
    /// A wijkteam: the `team` claim.
    TeamId
);

/// The kind of a dossier document, without its parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// The support plan, co-edited by workers and residents.
    Plan,
    /// The professional record; workers only.
    Record,
    /// The server-written projection for one resident.
    View,
    /// The extract for one maatwerk decision.
    Maatwerk,
    /// DAT-information for one chain partner.
    Partner,
    /// Server-written dossier metadata.
    Meta,
}

impl DocumentKind {
    /// Every kind, in SPEC §2 order.
    pub const ALL: [DocumentKind; 6] = [
        DocumentKind::Plan,
        DocumentKind::Record,
        DocumentKind::View,
        DocumentKind::Maatwerk,
        DocumentKind::Partner,
        DocumentKind::Meta,
    ];
}

/// Names one document of a dossier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocumentKey {
    /// `plan`
    Plan,
    /// `record`
    Record,
    /// `view/<person>`
    View(PersonId),
    /// `maatwerk/<n>`
    Maatwerk(u32),
    /// `partner/<org>`
    Partner(OrgId),
    /// `meta`
    Meta,
}

impl DocumentKey {
    /// The kind of document this key names.
    pub fn kind(&self) -> DocumentKind {
        match self {
            DocumentKey::Plan => DocumentKind::Plan,
            DocumentKey::Record => DocumentKind::Record,
            DocumentKey::View(_) => DocumentKind::View,
            DocumentKey::Maatwerk(_) => DocumentKind::Maatwerk,
            DocumentKey::Partner(_) => DocumentKind::Partner,
            DocumentKey::Meta => DocumentKind::Meta,
        }
    }
}

impl fmt::Display for DocumentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocumentKey::Plan => f.write_str("plan"),
            DocumentKey::Record => f.write_str("record"),
            DocumentKey::View(p) => write!(f, "view/{p}"),
            DocumentKey::Maatwerk(n) => write!(f, "maatwerk/{n}"),
            DocumentKey::Partner(o) => write!(f, "partner/{o}"),
            DocumentKey::Meta => f.write_str("meta"),
        }
    }
}

impl FromStr for DocumentKey {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = match s.split_once('/') {
            None => match s {
                "plan" => DocumentKey::Plan,
                "record" => DocumentKey::Record,
                "meta" => DocumentKey::Meta,
                _ => return Err(IdError::DocumentKey),
            },
            Some(("view", p)) => DocumentKey::View(p.parse()?),
            Some(("partner", o)) => DocumentKey::Partner(o.parse()?),
            Some(("maatwerk", n)) if !n.starts_with('+') => {
                DocumentKey::Maatwerk(n.parse().map_err(|_| IdError::DocumentKey)?)
            }
            _ => return Err(IdError::DocumentKey),
        };
        Ok(key)
    }
}

impl Serialize for DocumentKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DocumentKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
