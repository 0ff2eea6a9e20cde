//! What WebSocket permessage-deflate (RFC 7692) would make of a recorded exchange, so that
//! scenario (b) can say by measurement whether compression would bring a reconnect under 1.3×
//! the raw change bytes, without a second WebSocket stack: each direction's messages are
//! compressed as a peer compresses them (raw DEFLATE at zlib's default level, a sync flush per
//! message, the trailing `00 00 ff ff` dropped), once with the compression context kept from
//! message to message (the extension's default) and once with a fresh context per message
//! (`*_no_context_takeover`, which a server must ask for to avoid keeping ~300 KB of zlib state
//! per idle connection); frame headers are recounted for the new payload lengths.

use std::io::Write;

use flate2::Compression;
use flate2::write::DeflateEncoder;

/// Frame bytes (headers and payloads) of the recorded messages, as sent and as they would be.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Uncompressed, as measured.
    pub plain: u64,
    /// Compressed with the context kept across messages.
    pub context: u64,
    /// Compressed with a fresh context per message.
    pub fresh: u64,
}

/// The estimate for `frames`: each a message payload and whether the device sent it (a client's
/// frames carry a 4-byte mask).
pub fn estimate(frames: &[(bool, Vec<u8>)]) -> Estimate {
    let mut up = DeflateEncoder::new(Vec::new(), Compression::default());
    let mut down = DeflateEncoder::new(Vec::new(), Compression::default());
    let mut e = Estimate::default();
    for (sent, payload) in frames {
        let kept = if *sent { &mut up } else { &mut down };
        let context = flushed(kept, payload);
        let fresh = flushed(
            &mut DeflateEncoder::new(Vec::new(), Compression::default()),
            payload,
        );
        e.plain += (header(payload.len(), *sent) + payload.len()) as u64;
        e.context += (header(context, *sent) + context) as u64;
        e.fresh += (header(fresh, *sent) + fresh) as u64;
    }
    e
}

/// Compresses one message through `encoder` and returns its length on the wire (RFC 7692 §7.2.1:
/// the sync flush's empty stored block's `00 00 ff ff` is not sent).
fn flushed(encoder: &mut DeflateEncoder<Vec<u8>>, payload: &[u8]) -> usize {
    encoder
        .write_all(payload)
        .and_then(|()| encoder.flush())
        .expect("writing into a Vec cannot fail");
    let out = std::mem::take(encoder.get_mut());
    debug_assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.len().saturating_sub(4)
}

/// A WebSocket frame header's length for a payload of `len` bytes (RFC 6455 §5.2).
fn header(len: usize, masked: bool) -> usize {
    let extended = if len < 126 {
        0
    } else if len <= 0xffff {
        2
    } else {
        8
    };
    2 + extended + if masked { 4 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_envelopes_shrink_with_the_context_kept_and_far_less_without() {
        let envelope = |i: u32| {
            format!(
                "type sync senderId dev-0-1 targetId regie-server-0123abcd documentId 2VzPLXwa4R41PB944FYJS46nvFdj data {i}"
            )
            .into_bytes()
        };
        let frames: Vec<(bool, Vec<u8>)> = (0..50).map(|i| (i % 2 == 0, envelope(i))).collect();
        let e = estimate(&frames);
        assert!(e.context * 3 < e.plain, "{e:?}");
        assert!(e.fresh > e.context * 2, "{e:?}");
    }

    #[test]
    fn headers_follow_rfc_6455() {
        assert_eq!(header(125, false), 2);
        assert_eq!(header(126, false), 4);
        assert_eq!(header(70_000, true), 14);
    }
}
