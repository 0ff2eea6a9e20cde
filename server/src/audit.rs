//! Audit events (I3) with the NEN 7513 fields — who, on whose behalf, which dossier, document
//! and persons, what action, on what legitimacy basis, from which device, when and with what
//! outcome — and the hash chain that makes the log tamper-evident: each row's hash covers the
//! previous row's hash and the row's own fields. Events never carry dossier content.
//!
//! # What a row's hash covers
//!
//! Each row stores the encoding its hash was computed over ([`Encoding`], the `encoding`
//! column; rows written before the column existed are [`Encoding::V1`]). New rows are written
//! in [`Encoding::CURRENT`]. A chain may hold V1 rows followed by V2 rows, never a V1 row after a
//! V2 row ([`ChainWalk`]).
//!
//! **V2** (since migration `0010_audit_encoding`): `hash = SHA-256(input)` where `input` is, in
//! this order and with nothing in between:
//!
//! 1. the 11 bytes `regie-audit` and the version byte `0x02`;
//! 2. the previous row's hash (32 zero bytes before the first row, [`GENESIS`]) as a *frame*: its
//!    length as a big-endian `u32`, then its bytes;
//! 3. `at` as the big-endian `i128` of nanoseconds since 1970-01-01 00:00 UTC, then the UTC
//!    offset it was recorded with as a big-endian `i32` of seconds;
//! 4. the text fields in this order: `actor`, `role`, `on_behalf_of`, `dossier`, `document`,
//!    `persons`, `action`, `basis`, `outcome`, `device`, `detail`. A present value is the byte
//!    `0x01` followed by its UTF-8 bytes as a frame; an absent one (only the optional fields) is
//!    the byte `0x00`. So `None` and `Some("")` differ, and no value can run into the next.
//!
//! **V1** (the first releases): `SHA-256(prev ‖ json)`, where `prev` is the previous hash
//! unframed and `json` is `serde_json`'s compact serialization of the event as a JSON object
//! with the keys `at` (RFC 3339, in the offset it was recorded with), `actor`, `role`,
//! `on_behalf_of`, `dossier`, `document`, `persons`, `action`, `basis`, `outcome`, `device`,
//! `detail` in that order, absent values as `null`. It is only verified, never written; the
//! test fixture `audit/v1_chain.json` holds rows written by that code.

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The action of an audit event (NEN 7513 "event"). Its stored code (`open`, `offline_read`, …)
/// is the variant's name in snake case, derived once for text, parsing and serde alike.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum AuditAction {
    /// A document was opened for sync: its bytes are about to leave the server.
    Open,
    /// A write batch was merged.
    Write,
    /// A write batch was rejected and quarantined.
    Reject,
    /// An access was refused.
    Deny,
    /// A device was told to purge a document.
    Revoke,
    /// Content or a listing was read over HTTP.
    Read,
    /// A device reported opening a document while offline (I3).
    OfflineRead,
    /// A dossier was created.
    Create,
    /// A relationship changed (assignment, link, partner, grant).
    Relate,
    /// The glass was broken.
    BreakGlass,
    /// The audit log itself was read or verified.
    AuditRead,
    /// An access review was recorded (R10).
    Review,
    /// A signal was registered, closed or turned into a dossier (R11).
    Signal,
    /// A dossier's data was destroyed at the end of its retention (R23, I6).
    Destroy,
    /// Dossier content was exported out of Regie (R19, NEN 7513 "export"); the reports count
    /// it as an access.
    Export,
    /// A rights request was filed, extended, decided or escalated, or an escalation decided
    /// (R19–R22).
    Rights,
    /// A breach was recorded in the register, or its notification (R24).
    Breach,
    /// A dossier's data key was created or destroyed, or a device key released, refused or
    /// destroyed (I6, R29); ids only, never key material.
    Key,
}

impl AuditAction {
    /// The stored code.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One audit event, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// When (server clock, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The user (token `sub`), or `server` for the server's own acts.
    pub actor: String,
    /// The actor's role.
    pub role: String,
    /// On whose behalf, when someone acts for another (e.g. a resident's representative).
    pub on_behalf_of: Option<String>,
    /// The dossier, when one is concerned.
    pub dossier: Option<String>,
    /// The document key (`plan`, `record`, …).
    pub document: Option<String>,
    /// The persons concerned, comma-separated ids.
    pub persons: Option<String>,
    /// What happened.
    pub action: String,
    /// The legitimacy basis (`assignment`, `break_glass`, …).
    pub basis: Option<String>,
    /// `allowed`, `denied`, `rejected`, or a reason code.
    pub outcome: String,
    /// The device: peer id or storage id of the connection.
    pub device: Option<String>,
    /// Extra context without content (e.g. a reason code, a change count).
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An event by `actor` in `role` now, with nothing else filled in.
    pub fn new(at: OffsetDateTime, actor: &str, role: &str, action: AuditAction) -> Self {
        AuditEvent {
            at,
            actor: actor.to_owned(),
            role: role.to_owned(),
            on_behalf_of: None,
            dossier: None,
            document: None,
            persons: None,
            action: action.as_str().to_owned(),
            basis: None,
            outcome: "allowed".to_owned(),
            device: None,
            detail: None,
        }
    }

    /// The action as the enum, when the stored code is one.
    pub fn kind(&self) -> Option<AuditAction> {
        self.action.parse().ok()
    }

    /// The chained hash of this event after `prev` in [`Encoding::CURRENT`], as a new row
    /// stores it.
    pub fn chain_hash(&self, prev: &[u8]) -> Vec<u8> {
        self.chain_hash_as(Encoding::CURRENT, prev)
    }

    /// The chained hash of this event after `prev` in `encoding` (see the module's
    /// documentation).
    pub fn chain_hash_as(&self, encoding: Encoding, prev: &[u8]) -> Vec<u8> {
        let mut h = Sha256::new();
        match encoding {
            Encoding::V1 => {
                h.update(prev);
                h.update(serde_json::to_vec(&V1Json::of(self)).expect("audit events serialize"));
            }
            Encoding::V2 => h.update(self.encode_v2(prev)),
        }
        h.finalize().to_vec()
    }

    /// The bytes a V2 hash is computed over (see the module's documentation).
    pub fn encode_v2(&self, prev: &[u8]) -> Vec<u8> {
        fn frame(out: &mut Vec<u8>, bytes: &[u8]) {
            let len = u32::try_from(bytes.len()).expect("audit fields are shorter than 4 GiB");
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(bytes);
        }
        fn field(out: &mut Vec<u8>, value: Option<&str>) {
            match value {
                Some(v) => {
                    out.push(1);
                    frame(out, v.as_bytes());
                }
                None => out.push(0),
            }
        }
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(V2_TAG);
        out.push(Encoding::V2 as u8);
        frame(&mut out, prev);
        out.extend_from_slice(&self.at.unix_timestamp_nanos().to_be_bytes());
        out.extend_from_slice(&self.at.offset().whole_seconds().to_be_bytes());
        for value in [
            Some(self.actor.as_str()),
            Some(self.role.as_str()),
            self.on_behalf_of.as_deref(),
            self.dossier.as_deref(),
            self.document.as_deref(),
            self.persons.as_deref(),
            Some(self.action.as_str()),
            self.basis.as_deref(),
            Some(self.outcome.as_str()),
            self.device.as_deref(),
            self.detail.as_deref(),
        ] {
            field(&mut out, value);
        }
        out
    }
}

/// The first bytes of every V2 hash input, before the version byte.
const V2_TAG: &[u8] = b"regie-audit";

/// An event as V1 hashed it: this struct's serde form is frozen, whatever [`AuditEvent`]'s
/// own serialization becomes.
#[derive(Serialize)]
struct V1Json<'a> {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    actor: &'a str,
    role: &'a str,
    on_behalf_of: Option<&'a str>,
    dossier: Option<&'a str>,
    document: Option<&'a str>,
    persons: Option<&'a str>,
    action: &'a str,
    basis: Option<&'a str>,
    outcome: &'a str,
    device: Option<&'a str>,
    detail: Option<&'a str>,
}

impl<'a> V1Json<'a> {
    fn of(e: &'a AuditEvent) -> Self {
        V1Json {
            at: e.at,
            actor: &e.actor,
            role: &e.role,
            on_behalf_of: e.on_behalf_of.as_deref(),
            dossier: e.dossier.as_deref(),
            document: e.document.as_deref(),
            persons: e.persons.as_deref(),
            action: &e.action,
            basis: e.basis.as_deref(),
            outcome: &e.outcome,
            device: e.device.as_deref(),
            detail: e.detail.as_deref(),
        }
    }
}

/// The encoding a row's hash was computed over, stored with the row (`audit.encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Encoding {
    /// `serde_json` of the event after the previous hash: rows written before the `encoding`
    /// column existed (the column's default).
    V1 = 1,
    /// Length-prefixed fields in a fixed order behind a version tag.
    V2 = 2,
}

impl Encoding {
    /// What new rows are written in.
    pub const CURRENT: Encoding = Encoding::V2;

    /// The encoding stored as `n`, if it is one.
    pub fn from_stored(n: i64) -> Option<Encoding> {
        match n {
            1 => Some(Encoding::V1),
            2 => Some(Encoding::V2),
            _ => None,
        }
    }

    /// The number stored in `audit.encoding`.
    pub fn stored(self) -> i64 {
        i64::from(self as u8)
    }
}

/// One stored row as [`ChainWalk`] checks it.
#[derive(Debug, Clone, Copy)]
pub struct StoredRow<'a> {
    /// Its position in the log.
    pub seq: i64,
    /// The stored `encoding` column.
    pub encoding: i64,
    /// The event read back, or `None` when its columns do not parse.
    pub event: Option<&'a AuditEvent>,
    /// The stored hash of the row before.
    pub prev_hash: &'a [u8],
    /// The stored hash of the row.
    pub hash: &'a [u8],
}

/// A walk along the chain, oldest row first: each row must link to the row before (its
/// `prev_hash` is that row's hash, [`GENESIS`] for the first), its hash must be its event's
/// hash in its stored encoding, its encoding must be known, and no row may use an older
/// encoding than a row before it (a V1 row after a V2 row is a downgrade, not history).
#[derive(Debug, Clone)]
pub struct ChainWalk {
    prev: Vec<u8>,
    newest: Encoding,
    rows: u64,
    first_broken_seq: Option<i64>,
}

impl Default for ChainWalk {
    fn default() -> Self {
        ChainWalk::new()
    }
}

impl ChainWalk {
    /// A walk from the start of the log.
    pub fn new() -> ChainWalk {
        ChainWalk {
            prev: GENESIS.to_vec(),
            newest: Encoding::V1,
            rows: 0,
            first_broken_seq: None,
        }
    }

    /// Checks the next row; returns whether the chain is still intact. After the first broken
    /// row every further row is ignored.
    pub fn check(&mut self, row: StoredRow<'_>) -> bool {
        if self.first_broken_seq.is_some() {
            return false;
        }
        let ok = match (Encoding::from_stored(row.encoding), row.event) {
            (Some(encoding), Some(event)) => {
                encoding >= self.newest
                    && row.prev_hash == self.prev.as_slice()
                    && event.chain_hash_as(encoding, &self.prev) == row.hash
            }
            _ => false,
        };
        if ok {
            self.newest = Encoding::from_stored(row.encoding).unwrap_or(self.newest);
            self.prev = row.hash.to_vec();
            self.rows += 1;
        } else {
            self.first_broken_seq = Some(row.seq);
        }
        ok
    }

    /// The result so far.
    pub fn verification(&self) -> Verification {
        Verification {
            rows: self.rows,
            first_broken_seq: self.first_broken_seq,
        }
    }
}

/// The hash before the first row.
pub const GENESIS: [u8; 32] = [0; 32];

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = LogIntegrity)]
pub struct Verification {
    /// How many rows were checked.
    pub rows: u64,
    /// The first row whose hash or link does not match, if any.
    pub first_broken_seq: Option<i64>,
}

impl Verification {
    /// Whether the whole chain is intact.
    pub fn intact(&self) -> bool {
        self.first_broken_seq.is_none()
    }
}

#[cfg(test)]
mod tests;
