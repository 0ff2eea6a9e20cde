//! Regie's pure core: the dossier model and the one policy.
//!
//! A dossier (one household) is several Automerge documents, one read audience each
//! ([`id::DocumentKey`]: `plan`, `record`, `view/<person>`, `maatwerk/<n>`, `partner/<org>`,
//! `meta`). Who may read, write, sync or export them, write at a given path, or break the glass
//! is decided by exactly one function, [`policy::decide`], from a [`principal::Principal`] (built
//! from token claims), the dossier's [`relationship::Relationships`] and the time, which is always
//! a parameter. [`validation::check_batch`] applies that policy to every operation of an incoming
//! change batch and then checks the [`document`] schema; [`consent`] (R16) and [`retention`]
//! (R23) are the pure rules for who consents and when data must be destroyed; [`writable`]
//! lists what one principal may write in one document, path by path, for client libraries.
//!
//! This crate does no I/O and reads no clock: no tokio, no sqlx, no HTTP. The server and the
//! client library both call it; neither re-implements it (I5).

pub mod consent;
pub mod document;
pub mod id;
pub mod path;
pub mod policy;
pub mod principal;
pub mod projection;
pub mod relationship;
pub mod retention;
pub mod rights;
pub mod share;
pub mod validation;
pub mod writable;
