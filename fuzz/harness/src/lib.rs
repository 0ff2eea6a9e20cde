//! The entry points of Regie's fuzz targets (issue 12, item 6), in one place so that the
//! cargo-fuzz binaries in `fuzz/fuzz_targets/` (nightly, libFuzzer) and the corpus replay and
//! property tests in `tests/` (stable, CI) run exactly the same code on the same bytes. Each
//! entry point takes arbitrary bytes, feeds them to one of Regie's input boundaries, and panics
//! only when an invariant breaks — every panic is a bug.
//!
//! The six targets ([`Target`]): the frame decoder ([`frame`]), the sync-message pre-check and
//! what Automerge does with a message it accepts ([`sync_message`]), the hub's receive path with
//! structure-aware inputs against real documents of Regie's schemas ([`receive`]), the policy's
//! decisions and path rules ([`policy`]), schema validation of edited documents ([`schema`]),
//! and token parsing ([`token`]).

mod fixtures;
mod frame;
mod policy;
mod receive;
mod schema;
mod script;
mod sync_message;
mod token;

use std::path::PathBuf;

pub use frame::frame;
pub use policy::policy;
pub use receive::{receive, receive_seeds};
pub use schema::schema;
pub use sync_message::{sync_message, sync_message_seeds};
pub use token::{token, token_seeds};

/// One fuzz target: its name (the cargo-fuzz binary and corpus directory) and entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `regie_sync_protocol::decode`, and `encode` of what it decodes.
    Frame,
    /// `check_sync_message`, then Automerge on a fork of a real document.
    SyncMessage,
    /// The hub's receive path: pre-check, decode, receive on a fork, `check_batch`.
    Receive,
    /// `policy::decide` over arbitrary principals, dossiers, keys and paths.
    Policy,
    /// `document::validate` and `validate_paths` on scripted edits of every kind of document.
    Schema,
    /// `Authenticator` (HS256) on arbitrary and on correctly signed tokens; `bearer_token`.
    Token,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 6] = [
        Target::Frame,
        Target::SyncMessage,
        Target::Receive,
        Target::Policy,
        Target::Schema,
        Target::Token,
    ];

    /// The cargo-fuzz target name, also the corpus directory's name.
    pub fn name(self) -> &'static str {
        match self {
            Target::Frame => "frame",
            Target::SyncMessage => "sync_message",
            Target::Receive => "receive",
            Target::Policy => "policy",
            Target::Schema => "schema",
            Target::Token => "token",
        }
    }

    /// Runs the target's entry point on `data`.
    pub fn run(self, data: &[u8]) {
        match self {
            Target::Frame => frame(data),
            Target::SyncMessage => sync_message(data),
            Target::Receive => receive(data),
            Target::Policy => policy(data),
            Target::Schema => schema(data),
            Target::Token => token(data),
        }
    }

    /// The checked-in corpus of this target: `fuzz/corpus/<name>/`.
    pub fn corpus_dir(self) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../corpus")
            .join(self.name())
    }

    /// Hand-made starting points beyond the corpus: real sync messages of Regie's documents,
    /// the captured protocol fixtures, correctly signed tokens.
    pub fn seeds(self) -> Vec<Vec<u8>> {
        match self {
            Target::Frame => frame::seeds(),
            Target::SyncMessage => sync_message_seeds(),
            Target::Receive => receive_seeds(),
            Target::Policy => policy::seeds(),
            Target::Schema => schema::seeds(),
            Target::Token => token_seeds(),
        }
    }
}

/// Every file of a target's checked-in corpus, sorted by name, with its contents.
///
/// # Panics
/// If the directory cannot be read.
pub fn corpus(target: Target) -> Vec<(String, Vec<u8>)> {
    let dir = target.corpus_dir();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}
