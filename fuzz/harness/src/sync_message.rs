//! Target `sync_message`: [`check_sync_message`] on arbitrary bytes, and for every message it
//! accepts, what the hub then does with it — `automerge::sync::Message::decode`, then
//! `receive_sync_message` on a fork of a real plan and the answer `generate_sync_message`
//! computes from the message's Bloom filter. Nothing may panic, and libFuzzer's
//! `-rss_limit_mb`/`-malloc_limit_mb` hold every accepted message to bounded memory.

use automerge::Automerge;
use automerge::sync::{self, SyncDoc};
use regie_sync_protocol::{SyncLimits, check_sync_message};

use crate::fixtures;

/// Pre-checks `data`; what passes goes through Automerge on a fork of the plan.
///
/// # Panics
/// If the pre-check or Automerge panics on a message the pre-check accepted.
pub fn sync_message(data: &[u8]) {
    if check_sync_message(data, &SyncLimits::default()).is_err() {
        return;
    }
    let Ok(message) = sync::Message::decode(data) else {
        return;
    };
    let mut fork = fixtures::documents()[0].server.clone();
    let mut state = sync::State::new();
    if fork.receive_sync_message(&mut state, message).is_ok() {
        let _ = fork.generate_sync_message(&mut state);
    }
}

/// Every message real peers exchange about Regie's documents: a new device fetching each
/// document (v1 and v2), the server fetching from a device, and a device sending an edit.
pub fn sync_message_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for doc in fixtures::documents() {
        out.extend(conversation(&mut doc.server.clone(), &mut Automerge::new()));
        out.extend(conversation(&mut Automerge::new(), &mut doc.server.clone()));
        let mut device = doc.device.clone();
        let mut u = arbitrary::Unstructured::new(&[7, 1, 0, 3, 2, 9, 1, 4, 200, 17, 5, 3]);
        let _ = crate::script::edit(&mut device, &mut u);
        out.extend(conversation(
            &mut device.document().clone(),
            &mut doc.server.clone(),
        ));
    }
    out
}

/// The messages two peers exchange until they agree, `a` speaking first.
pub(crate) fn conversation(a: &mut Automerge, b: &mut Automerge) -> Vec<Vec<u8>> {
    let (mut sa, mut sb) = (sync::State::new(), sync::State::new());
    let mut out = Vec::new();
    for _ in 0..10 {
        let sent_a = step(a, &mut sa, b, &mut sb, &mut out);
        let sent_b = step(b, &mut sb, a, &mut sa, &mut out);
        if !sent_a && !sent_b {
            break;
        }
    }
    out
}

/// One message from `from` to `to`, if `from` has something to say; recorded in `out`.
fn step(
    from: &Automerge,
    s_from: &mut sync::State,
    to: &mut Automerge,
    s_to: &mut sync::State,
    out: &mut Vec<Vec<u8>>,
) -> bool {
    let Some(m) = from.generate_sync_message(s_from) else {
        return false;
    };
    let bytes = m.encode();
    let decoded = sync::Message::decode(&bytes).expect("automerge decodes its own message");
    to.receive_sync_message(s_to, decoded)
        .expect("automerge receives its own message");
    out.push(bytes);
    true
}
