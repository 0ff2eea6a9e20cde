//! Target `receive`: the hub's write path (`Hub::receive_sync` and `receive_changes`) without
//! its I/O — pre-check, decode, `receive_sync_message` on a fork of a real document of Regie's
//! schemas, the new changes put to `regie_core::validation::check_batch` for a worker, a
//! resident, a partner and a back-office user, the record's consent and projection reads, and
//! the server's answer. Never a panic; and a batch `check_batch` accepts leaves a document that
//! passes the schema's full validation (the incremental check agrees with the whole one).
//!
//! The input is structure-aware. Byte 0 picks the document (plan, record, maatwerk, partner);
//! byte 1's low bit picks the mode:
//! * raw (even): the rest is a sync message, mutated from real ones; change checksums are
//!   recomputed before the pre-check so mutations reach past Automerge's checksum test;
//! * scripted (odd): the rest is a script of edits ([`crate::script`]) a device makes on its
//!   synced copy, sent as the sync message real Automerge generates — optionally mutated
//!   afterwards (bit 2), checksums again recomputed.
//!
//! Bit 1 picks the server's sync state: fresh, or after it sent its opening message.

use std::sync::OnceLock;

use arbitrary::Unstructured;
use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, Change};
use regie_core::id::DocumentKey;
use regie_core::validation::check_batch;
use regie_core::{document, projection, share};
use regie_sync_protocol::{SyncLimits, check_sync_message};
use sha2::{Digest, Sha256};

use crate::fixtures::{self, Doc};

/// Runs one incoming message through the receive path; see the module documentation.
///
/// # Panics
/// If anything on the path panics, or an accepted batch leaves the document invalid.
pub fn receive(data: &[u8]) {
    let [which, mode, rest @ ..] = data else {
        return;
    };
    let docs = fixtures::documents();
    let index = usize::from(*which) % docs.len();
    let doc = &docs[index];
    let (server_state, opening) = if mode & 2 != 0 {
        let (state, message) = &openings()[index];
        (state.clone(), message.clone())
    } else {
        (sync::State::new(), None)
    };
    let bytes = if mode & 1 == 0 {
        let mut bytes = rest.to_vec();
        fix_checksums(&mut bytes);
        bytes
    } else {
        match scripted(doc, opening, rest, mode & 4 != 0) {
            Some(bytes) => bytes,
            None => return,
        }
    };
    hub(&doc.key, &doc.server, &server_state, &bytes);
}

/// The server's opening message about each document of [`fixtures::documents`] and its sync
/// state after sending it: the same for every input, so computed once per process.
fn openings() -> &'static [(sync::State, Option<sync::Message>)] {
    static OPENINGS: OnceLock<Vec<(sync::State, Option<sync::Message>)>> = OnceLock::new();
    OPENINGS.get_or_init(|| {
        fixtures::documents()
            .iter()
            .map(|doc| {
                let mut state = sync::State::new();
                let message = doc.server.generate_sync_message(&mut state);
                (state, message)
            })
            .collect()
    })
}

/// What the hub does with one message from a device holding a write token of the dossier.
fn hub(key: &DocumentKey, doc: &Automerge, state: &sync::State, bytes: &[u8]) {
    if check_sync_message(bytes, &SyncLimits::default()).is_err() {
        return;
    }
    let Ok(message) = sync::Message::decode(bytes) else {
        return;
    };
    let mut fork = doc.clone();
    let mut state = state.clone();
    if fork.receive_sync_message(&mut state, message).is_err() {
        return;
    }
    let new: Vec<Change> = doc.get_changes_added(&fork);
    let rel = fixtures::relationships();
    // The full validation depends on the fork alone, not on who sent the batch: once per input.
    let mut whole = None;
    for who in fixtures::principals() {
        let verdict = check_batch(who, key, rel, fixtures::now(), &fork, &new);
        if verdict.is_ok()
            && !new.is_empty()
            && let Err(e) = whole.get_or_insert_with(|| document::validate(key.kind(), &fork))
        {
            panic!(
                "check_batch accepted a batch of {} for {key} that leaves it invalid: {e}",
                who.role.as_str()
            );
        }
    }
    if *key == DocumentKey::Record {
        let touched = regie_core::validation::touched_paths(&fork, &new);
        let _ = share::touches_consents(&touched);
        let _ = projection::touched_entries(&fork, &touched);
        let person = fixtures::PERSON.parse().expect("a valid person id");
        for id in projection::entries_concerning(&fork, &person) {
            let _ = projection::view_entry(&fork, &id, &person);
        }
    }
    let _ = fork.generate_sync_message(&mut state);
}

/// The message a device sends after editing its synced copy of `doc` with the script in
/// `rest`, having heard the server's `opening` (if any). With `mutate`, the script's tail
/// overwrites bytes of the message.
fn scripted(
    doc: &Doc,
    opening: Option<sync::Message>,
    rest: &[u8],
    mutate: bool,
) -> Option<Vec<u8>> {
    let mut u = Unstructured::new(rest);
    let mut device = doc.device.clone();
    crate::script::edit(&mut device, &mut u).ok()?;
    let mut state = sync::State::new();
    if let Some(opening) = opening {
        device
            .sync()
            .receive_sync_message(&mut state, opening)
            .ok()?;
    }
    let mut bytes = device.sync().generate_sync_message(&mut state)?.encode();
    if mutate && !bytes.is_empty() {
        // Arbitrary reads zeros once the input is used up: stop there, and after 64 edits.
        for _ in 0..64 {
            if u.is_empty() {
                break;
            }
            let (at, byte) = (u.arbitrary::<u16>().ok()?, u.arbitrary::<u8>().ok()?);
            let i = usize::from(at) % bytes.len();
            bytes[i] = byte;
        }
        fix_checksums(&mut bytes);
    }
    Some(bytes)
}

/// Recomputes the checksum of every change and document chunk of a sync message, as far as
/// the message's layout can be followed, so that a mutated change is judged on its content.
pub(crate) fn fix_checksums(message: &mut [u8]) {
    let _ = try_fix_checksums(message);
}

fn try_fix_checksums(message: &mut [u8]) -> Option<()> {
    let mut pos = 1;
    for _ in 0..2 {
        let hashes = uleb(message, &mut pos)?;
        pos = pos.checked_add(hashes.checked_mul(32)?)?;
    }
    let haves = uleb(message, &mut pos)?;
    for _ in 0..haves {
        let hashes = uleb(message, &mut pos)?;
        pos = pos.checked_add(hashes.checked_mul(32)?)?;
        let bloom = uleb(message, &mut pos)?;
        pos = pos.checked_add(bloom)?;
    }
    let changes = uleb(message, &mut pos)?;
    for _ in 0..changes {
        let len = uleb(message, &mut pos)?;
        let end = pos.checked_add(len)?;
        fix_chunks(message.get_mut(pos..end)?)?;
        pos = end;
    }
    Some(())
}

fn fix_chunks(bytes: &mut [u8]) -> Option<()> {
    let mut pos = 0;
    while pos < bytes.len() {
        let start = pos;
        pos = pos.checked_add(8)?;
        let kind = *bytes.get(pos)?;
        pos += 1;
        let len = uleb(bytes, &mut pos)?;
        let end = pos.checked_add(len)?;
        let body = bytes.get(pos..end)?;
        // Compressed changes carry the checksum of their inflated form: left as they are.
        if kind <= 1 {
            let mut header = vec![kind];
            let mut n = len as u64;
            loop {
                let b = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    header.push(b);
                    break;
                }
                header.push(b | 0x80);
            }
            let hash = Sha256::new()
                .chain_update(&header)
                .chain_update(body)
                .finalize();
            bytes
                .get_mut(start + 4..start + 8)?
                .copy_from_slice(&hash[..4]);
        }
        pos = end;
    }
    Some(())
}

fn uleb(bytes: &[u8], pos: &mut usize) -> Option<usize> {
    let mut result: u64 = 0;
    for i in 0..10 {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        result |= u64::from(b & 0x7f).checked_shl(7 * i)?;
        if b & 0x80 == 0 {
            return usize::try_from(result).ok();
        }
    }
    None
}

/// Real messages about each document in raw mode, and a few edit scripts per document in each
/// scripted mode.
pub fn receive_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x.to_le_bytes()[0]
    };
    let messages = crate::sync_message_seeds();
    for which in 0..fixtures::documents().len() as u8 {
        for m in &messages {
            let mut seed = vec![which, 0];
            seed.extend_from_slice(m);
            out.push(seed);
        }
        for mode in [1u8, 3, 7] {
            for len in [16usize, 64, 256] {
                let mut seed = vec![which, mode];
                seed.extend((0..len).map(|_| next()));
                out.push(seed);
            }
        }
    }
    out
}
