//! Regie end to end: real servers on 127.0.0.1:0 over real SQLite files, real WebSocket peers.
//! One test binary; each module is one concern.

mod js;
mod support;

mod at_rest;
mod audience;
mod audit;
mod bounds;
mod client;
mod cluster;
mod deflate;
mod erasure;
mod extract;
mod frame;
mod house;
mod household;
mod http_bounds;
mod interop;
mod journey;
mod lifecycle;
mod oversight;
mod revocation;
mod rights;
mod share;
mod signal;
mod storage;
mod token;
mod validated;
mod view;
mod write;
