//! What every Regie test and the load generator share to speak to a running server: one
//! automerge-repo peer ([`Peer`]) over one wire connection ([`Connection`], also what the
//! benchmark's measuring device drives), the scans that look for a sentinel in what a peer
//! received ([`text`]), bounded waits on a condition instead of fixed sleeps ([`wait`]), and the
//! tests' PostgreSQL databases ([`postgres`]).
//! It speaks only the wire protocol (`regie-sync-protocol`), never the server's types, so the
//! server's own integration tests can depend on it without a cycle.

pub mod connection;
pub mod peer;
pub mod postgres;
pub mod text;
pub mod wait;

pub use connection::{ConnectError, Connection, Dial};
pub use peer::{Cast, Peer};
pub use wait::{PATIENCE, eventually};
