//! Target `frame`: [`regie_sync_protocol::decode`] on arbitrary bytes must answer (never panic,
//! never allocate beyond the frame), and whatever it decodes must survive
//! [`regie_sync_protocol::encode`] and decode to the same message.

use regie_sync_protocol::{decode, encode};

/// Decodes `data` as one frame; a decoded message round-trips.
///
/// # Panics
/// If decoding panics, or a decoded message does not round-trip.
pub fn frame(data: &[u8]) {
    let Ok(message) = decode(data) else {
        return;
    };
    let again = encode(&message);
    assert_eq!(
        decode(&again).as_ref(),
        Ok(&message),
        "a decoded frame does not round-trip through encode"
    );
}

/// The frames captured from the JS automerge-repo client (`sync-protocol/tests/fixtures`).
pub(crate) fn seeds() -> Vec<Vec<u8>> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sync-protocol/tests/fixtures");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cbor"))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    out.sort();
    out
}
