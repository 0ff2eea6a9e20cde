//! [`ClientError`]: everything that can go wrong on the device, each variant saying what the
//! user or app can do about it. A policy denial is a value ([`ClientError::Denied`]) carrying
//! regie-core's stable reason; errors never carry dossier content, a key or a token.

use regie_core::policy::DenyReason;

/// A device-side failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The device store (SQLite) failed.
    #[error("the device store failed: {0}")]
    Store(#[from] sqlx::Error),
    /// The device store's schema could not be brought up to date.
    #[error("the device store could not be migrated: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The profile directory could not be created.
    #[error("cannot create the profile directory {path}: {source}")]
    ProfileDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No token is stored yet.
    #[error("not logged in: run `regie login --server URL --token TOKEN` first")]
    NotLoggedIn,
    /// The token is not a Regie JWT, or its claims do not make a principal.
    #[error("the token is not usable: {0}")]
    BadToken(String),
    /// The server refused the token (expired, revoked or for another server).
    #[error("the server refused the token ({code}): {message}; log in again with a fresh token")]
    Unauthorized {
        /// The server's stable error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server cannot be reached; local work is kept and syncs later.
    #[error(
        "the server at {url} cannot be reached ({detail}); your work is kept on this device, sync again later"
    )]
    Unreachable {
        /// The server URL.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The server answered an API call with an error.
    #[error("the server answered {status} ({code}): {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// The message.
        message: String,
    },
    /// The server broke the sync protocol or closed the connection with an error.
    #[error("sync protocol failure: {0}")]
    Protocol(String),
    /// The device does not hold this dossier or document (not synced yet, or purged).
    #[error("{0} is not on this device; run `regie sync`, or check `regie ls`")]
    NotHeld(String),
    /// A goal, action or other item named by id does not exist in the document.
    #[error("{0} does not exist in this document")]
    NoSuchItem(String),
    /// The policy refuses the edit (I5): nothing was changed.
    #[error("not allowed to write {what}: {}", reason.code())]
    Denied {
        /// The document or path the edit would write.
        what: String,
        /// regie-core's reason.
        reason: DenyReason,
    },
    /// The edit would break the document's schema or the write rules (caught by
    /// `check_batch`): nothing was changed.
    #[error("the edit was refused ({code}): {detail}")]
    Invalid {
        /// The stable code (`schema`, `path_reserved`, …).
        code: String,
        /// Where, when one path is to blame.
        path: Option<String>,
        /// What is wrong, without content.
        detail: String,
    },
    /// A stored document or block does not load or open (the store was tampered with or
    /// damaged, or sealed with another key).
    #[error("the stored {0} is unreadable: {1}")]
    Corrupt(String, String),
    /// Automerge refused an edit.
    #[error("the edit failed: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// The device store holds its content sealed and the device key is not in memory (R29):
    /// nothing of the caseload is read or written until the user logs in again.
    #[error(
        "the device store is locked ({0}): log in again to unlock it (`regie login`, or give your token with --token or REGIE_TOKEN)"
    )]
    Locked(LockReason),
    /// The server refuses this device's key for good: the device was reported lost (R29).
    #[error(
        "this device was reported lost: the server destroyed its key and will never release it again, so its store cannot be opened; hand the device in and work on another one"
    )]
    DeviceLost,
    /// The operating system's random source or the cipher failed.
    #[error("encryption failed: {0}")]
    Crypto(&'static str),
}

/// Why the device store is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockReason {
    /// No login since the app started: the key is fetched from the server at each login.
    NotUnlocked,
    /// It was not used for this many seconds, so it dropped its key.
    Idle(u64),
    /// The server refused the key: the device was reported lost.
    DeviceLost,
}

impl std::fmt::Display for LockReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockReason::NotUnlocked => write!(f, "not unlocked since the app started"),
            LockReason::Idle(s) => write!(f, "unused for {s} s, so it dropped its key"),
            LockReason::DeviceLost => write!(f, "the device was reported lost"),
        }
    }
}

impl ClientError {
    /// Whether retrying later may help (the server was unreachable or the connection broke).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ClientError::Unreachable { .. } | ClientError::Protocol(_)
        )
    }
}

/// The result type of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
