//! Regie's device library: what a tablet or phone app embeds to work a whole day offline. A
//! [`Client`] is one device profile with its own SQLite store ([`store`]): the caseload's
//! documents, their sync states and the server's last known heads, the token and claims,
//! offline reads waiting for upload and purge records. [`Client::sync`] reconciles the caseload
//! over one WebSocket speaking automerge-repo protocol 1 (with Regie's `rejected`, `revoked`
//! and `replaced`), resuming from the persisted sync states and reporting [`Progress`]. Edits
//! go through the typed vocabulary of [`edit`] and are put to regie-core's one policy before any
//! change exists (I5); opening a document records an offline read for the server's audit log
//! (I3); a revoked document is purged with a record of the purge (R28); and a batch the server
//! rejects is rebased: the document is reset to the server's version and every local edit the
//! policy allows is replayed as a new change (I2). The store's content is sealed with a device
//! key the server releases at each [`Client::login`] (R29), held in memory only and dropped
//! after an idle time; a device reported lost never gets it again.

mod client;
pub mod edit;
mod error;
pub mod json;
mod rebase;
mod seal;
pub mod store;
mod sync;

pub use client::{Client, LoginReport, OpenedDocument, Status, SyncOptions, token_claims};
pub use error::{ClientError, LockReason, Result};
pub use seal::DEFAULT_IDLE_LOCK;
pub use store::{DeviceStore, DocumentInfo, OfflineRead, PurgeRecord, RejectionRecord};
pub use sync::{Progress, SyncReport};
