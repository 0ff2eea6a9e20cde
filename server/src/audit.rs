//! Audit events (I3) with the NEN 7513 fields — who, on whose behalf, which dossier, document
//! and persons, what action, on what legitimacy basis, from which device, when and with what
//! outcome — and the hash chain that makes the log tamper-evident: each row's hash covers the
//! previous row's hash and the row's own fields. Events never carry dossier content.

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The action of an audit event (NEN 7513 "event").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
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
}

impl AuditAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Open => "open",
            AuditAction::Write => "write",
            AuditAction::Reject => "reject",
            AuditAction::Deny => "deny",
            AuditAction::Revoke => "revoke",
            AuditAction::Read => "read",
            AuditAction::OfflineRead => "offline_read",
            AuditAction::Create => "create",
            AuditAction::Relate => "relate",
            AuditAction::BreakGlass => "break_glass",
            AuditAction::AuditRead => "audit_read",
            AuditAction::Review => "review",
            AuditAction::Signal => "signal",
            AuditAction::Destroy => "destroy",
        }
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

    /// The chained hash of this event after `prev`.
    pub fn chain_hash(&self, prev: &[u8]) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(prev);
        // Field order is fixed by the struct, so the JSON is canonical for one Regie version.
        h.update(serde_json::to_vec(self).expect("audit events always serialize"));
        h.finalize().to_vec()
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
