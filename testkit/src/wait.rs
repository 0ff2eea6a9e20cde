//! Waiting on a condition with a bound, never for a fixed time: a test that needs something to
//! have happened polls for it and fails with a message once the bound passes.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How long a test waits for something that should happen at once on loopback.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(20);

/// Polls `probe` until it answers `Some`, for at most `within`; `None` once the bound passes.
pub async fn eventually<T, F, Fut>(within: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_condition_that_turns_true_is_seen_and_one_that_never_does_gives_up_in_time() {
        let mut n = 0;
        let seen = eventually(PATIENCE, || {
            n += 1;
            std::future::ready((n >= 3).then_some(n))
        })
        .await;
        assert_eq!(seen, Some(3));
        let started = Instant::now();
        let never: Option<()> =
            eventually(Duration::from_millis(100), || std::future::ready(None)).await;
        assert!(never.is_none());
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
