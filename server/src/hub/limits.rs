//! What one device may cost the server (I7): the runtime limits built from `LimitArgs`, the
//! token bucket that paces a connection's messages, and the bookkeeping that bounds relayed
//! ephemeral messages (rates per connection and per document, and duplicates dropped).

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use regie_sync_protocol::SyncLimits;

use crate::config::LimitArgs;

/// Bytes of one ephemeral message's payload (presence is a few hundred bytes).
pub const MAX_EPHEMERAL_BYTES: usize = 64 * 1024;
/// Ephemeral messages one connection may have relayed per second, sustained.
const EPHEMERAL_PER_CONNECTION: f64 = 20.0;
/// Ephemeral messages relayed per document per second, sustained, from all its peers.
const EPHEMERAL_PER_DOCUMENT: f64 = 100.0;
/// Recently relayed ephemeral messages remembered per document, to drop repeats.
const EPHEMERAL_REMEMBERED: usize = 512;

/// The limits the hub and sessions enforce.
#[derive(Debug, Clone)]
pub struct Limits {
    /// What one incoming sync message may hold.
    pub sync: SyncLimits,
    /// Bytes queued for one connection.
    pub outbox_bytes: usize,
    /// Live connections per user.
    pub connections_per_user: usize,
    /// Live connections in all.
    pub connections: usize,
    /// Messages per second per connection (sustained).
    pub messages_per_second: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from(&LimitArgs::default())
    }
}

impl From<&LimitArgs> for Limits {
    fn from(a: &LimitArgs) -> Self {
        let mib = 1024 * 1024;
        let max_message_bytes = a.max_sync_inflated_mib.max(1) * mib;
        Limits {
            sync: SyncLimits {
                max_ops: a.max_sync_ops,
                max_message_bytes,
                max_chunk_bytes: max_message_bytes.min(SyncLimits::default().max_chunk_bytes),
                ..SyncLimits::default()
            },
            outbox_bytes: a.max_outbox_mib.max(1) * mib,
            connections_per_user: a.max_connections_per_user.max(1),
            connections: a.max_connections.max(1),
            messages_per_second: f64::from(a.messages_per_second.max(1)),
        }
    }
}

/// A token bucket: `rate` tokens a second, holding at most `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
    }

    /// Takes a token if there is one.
    pub fn try_take(&mut self) -> bool {
        self.refill(Instant::now());
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes a token, first saying how long to wait for it when there is none.
    pub fn take(&mut self) -> Option<Duration> {
        self.refill(Instant::now());
        self.tokens -= 1.0;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.rate))
    }
}

/// The per-connection ephemeral budget.
pub(super) fn ephemeral_bucket() -> TokenBucket {
    TokenBucket::new(EPHEMERAL_PER_CONNECTION, 2.0 * EPHEMERAL_PER_CONNECTION)
}

/// Per document: which ephemeral messages were relayed lately, and the document's budget.
#[derive(Debug)]
pub(super) struct EphemeralLog {
    seen: HashSet<(String, String, u64)>,
    order: VecDeque<(String, String, u64)>,
    bucket: TokenBucket,
}

impl Default for EphemeralLog {
    fn default() -> Self {
        EphemeralLog {
            seen: HashSet::new(),
            order: VecDeque::new(),
            bucket: TokenBucket::new(EPHEMERAL_PER_DOCUMENT, 2.0 * EPHEMERAL_PER_DOCUMENT),
        }
    }
}

impl EphemeralLog {
    /// Whether a message from `sender` (its session and count) may be relayed now: not seen
    /// before and within the document's budget.
    pub(super) fn admit(&mut self, sender: &str, session: &str, count: u64) -> bool {
        let key = (sender.to_owned(), session.to_owned(), count);
        if self.seen.contains(&key) || !self.bucket.try_take() {
            return false;
        }
        if self.order.len() == EPHEMERAL_REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(key.clone());
        self.order.push_back(key);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_asks_to_wait() {
        let mut b = TokenBucket::new(10.0, 3.0);
        assert!(b.take().is_none() && b.take().is_none() && b.take().is_none());
        let wait = b.take().expect("empty now");
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100));
    }

    #[test]
    fn a_repeated_ephemeral_message_is_relayed_once() {
        let mut log = EphemeralLog::default();
        assert!(log.admit("peer-a", "s1", 1));
        assert!(!log.admit("peer-a", "s1", 1));
        assert!(log.admit("peer-a", "s1", 2));
        assert!(log.admit("peer-b", "s1", 1));
    }

    #[test]
    fn a_document_relays_no_more_than_its_budget_at_once() {
        let mut log = EphemeralLog::default();
        let relayed = (0..1000).filter(|i| log.admit("p", "s", *i)).count();
        assert!((200..=210).contains(&relayed), "{relayed}");
    }

    #[test]
    fn the_log_forgets_old_messages_so_its_memory_is_bounded() {
        let mut log = EphemeralLog {
            bucket: TokenBucket::new(1e9, 1e9),
            ..EphemeralLog::default()
        };
        for i in 0..10_000 {
            log.admit("p", "s", i);
        }
        assert_eq!(log.seen.len(), EPHEMERAL_REMEMBERED);
    }
}
