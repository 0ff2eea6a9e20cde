//! Regie's benchmarks (issue 8): a load generator that drives simulated devices over real
//! WebSockets on 127.0.0.1 against Regie (full privacy path, and with the bench-only privacy
//! bypass), the published JS `@automerge/automerge-repo-sync-server`, and the limit (raw
//! Automerge in-process plus an SQLite append), side by side in one run, with a seeded,
//! reproducible workload. The binaries are `regie-load` (the scenarios) and
//! `regie-bench-server` (Regie as a separate process, so its RSS and CPU time are its own).
//! Nothing here runs as part of the test suite except a short smoke test; see `BENCHMARKS.md`.

pub mod flood;
pub mod peer;
pub mod raw;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod server;
pub mod workload;
