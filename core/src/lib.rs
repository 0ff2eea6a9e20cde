//! Regie's pure core.
pub mod id;
pub mod principal;
