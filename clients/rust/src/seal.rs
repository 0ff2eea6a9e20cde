//! Encryption at rest on the device (R29, I6): every block of dossier content the device store
//! keeps (a snapshot, an incremental save, a sync state, the server's heads, an offline read, a
//! rejection report) is sealed with the device key by AES-256-GCM (ring) under a fresh random
//! 96-bit nonce, with the block's identity (its table and row key, e.g. document and sequence)
//! as associated data, so a block moved to another row no longer opens. The key is the one the
//! server releases per user and device after authentication; the [`Lock`] holds it in memory
//! only, with the token it was fetched with, and drops both after an idle time, after which the
//! store refuses content until the user logs in again. Neither key nor token is ever written
//! to disk or formatted into an error or a log: [`DeviceKey`]'s `Debug` shows its id only. The
//! raw key bytes are zeroized once the AES key is made; ring's expanded key schedule is not
//! (ring offers no zeroizing drop), so a memory image taken while unlocked may still hold it.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::error::{ClientError, LockReason, Result};

/// The length of a device key, in bytes.
pub(crate) const KEY_LEN: usize = 32;
/// The first byte of every sealed block: the format (AES-256-GCM, nonce, ciphertext, tag).
const SEALED_V1: u8 = 1;
/// The tag AES-GCM appends.
const TAG_LEN: usize = 16;

/// How long an unlocked store may stay unused before it drops its key, unless configured.
pub const DEFAULT_IDLE_LOCK: Duration = Duration::from_secs(15 * 60);

/// The device key the server released (R29), in memory only.
pub(crate) struct DeviceKey {
    id: String,
    aead: LessSafeKey,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey({})", self.id)
    }
}

impl DeviceKey {
    /// The key `id` made of `bytes`, which must be [`KEY_LEN`] long.
    pub(crate) fn new(id: &str, bytes: &Zeroizing<Vec<u8>>) -> Result<DeviceKey> {
        if bytes.len() != KEY_LEN || id.is_empty() {
            // The length, never the bytes.
            return Err(ClientError::Protocol(format!(
                "the server released a device key of {} bytes (expected {KEY_LEN}) or without an id",
                bytes.len()
            )));
        }
        let aead = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &bytes[..])
                .map_err(|_| ClientError::Protocol("the device key is not an AES key".into()))?,
        );
        Ok(DeviceKey {
            id: id.to_owned(),
            aead,
        })
    }

    /// The key's id, as the server names it (`dvk-…`).
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plain` as the block `block`: format byte, nonce, ciphertext and tag.
    pub(crate) fn seal(&self, block: &Block, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0_u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ClientError::Crypto("the system has no random bytes"))?;
        let mut body = Vec::with_capacity(plain.len() + TAG_LEN);
        body.extend_from_slice(plain);
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&block.0[..]),
                &mut body,
            )
            .map_err(|_| ClientError::Crypto("sealing failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens the sealed block `block`; an error when it was altered, moved to another row or
    /// sealed with another key (the error names the block, never its bytes).
    pub(crate) fn open(&self, block: &Block, sealed: &[u8]) -> Result<Vec<u8>> {
        let refused = || {
            ClientError::Corrupt(
                block.describe(),
                "it does not open with this device's key (altered, moved or sealed with another key)"
                    .into(),
            )
        };
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != SEALED_V1 {
            return Err(refused());
        }
        let nonce =
            Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).map_err(|_| refused())?;
        let mut body = sealed[1 + NONCE_LEN..].to_vec();
        let n = self
            .aead
            .open_in_place(nonce, Aad::from(&block.0[..]), &mut body)
            .map_err(|_| refused())?
            .len();
        body.truncate(n);
        Ok(body)
    }
}

/// The identity of a sealed block, bound to it as associated data: the table and the row's
/// key, each part length-prefixed so that no two identities encode alike.
pub(crate) struct Block(Vec<u8>);

impl Block {
    fn new(table: &str, parts: &[&str]) -> Block {
        let mut out = Vec::with_capacity(64);
        for part in std::iter::once(table).chain(parts.iter().copied()) {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        Block(out)
    }

    /// A document's compacted snapshot.
    pub(crate) fn snapshot(doc: &str) -> Block {
        Block::new("documents.snapshot", &[doc])
    }

    /// The server's last known heads of a document.
    pub(crate) fn heads(doc: &str) -> Block {
        Block::new("documents.heads", &[doc])
    }

    /// An incremental save: document and sequence number.
    pub(crate) fn chunk(doc: &str, seq: i64) -> Block {
        Block::new("chunks", &[doc, &seq.to_string()])
    }

    /// A document's sync state.
    pub(crate) fn sync_state(doc: &str) -> Block {
        Block::new("sync_states", &[doc])
    }

    /// An offline read waiting for upload, by its id.
    pub(crate) fn read(id: &str) -> Block {
        Block::new("reads", &[id])
    }

    /// A rejection report, by its id.
    pub(crate) fn rejection(id: &str) -> Block {
        Block::new("rejection_reports", &[id])
    }

    /// The identity in words, for an error: table and row key, which are ids, not content.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut rest = &self.0[..];
        while rest.len() >= 4 {
            let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let end = (4 + n).min(rest.len());
            parts.push(String::from_utf8_lossy(&rest[4..end]).into_owned());
            rest = &rest[end..];
        }
        format!("block {}", parts.join(" "))
    }
}

/// What an unlocked store holds in memory: the key, the token it was released for, and when
/// the store was last used.
struct Unlocked {
    key: Arc<DeviceKey>,
    token: Zeroizing<String>,
    last_used: Instant,
}

struct State {
    unlocked: Option<Unlocked>,
    /// Why the store is locked when it is.
    reason: LockReason,
    idle: Duration,
    /// Bumped at every unlock, so the idle watch of an earlier unlock stops.
    generation: u64,
}

/// The store's lock: the device key and token while unlocked, dropped after the idle time
/// (by a timer, not only at the next use) or when the server refuses the key.
pub(crate) struct Lock {
    state: Mutex<State>,
}

impl Lock {
    /// A locked lock with the default idle time.
    pub(crate) fn new() -> Arc<Lock> {
        Arc::new(Lock {
            state: Mutex::new(State {
                unlocked: None,
                reason: LockReason::NotUnlocked,
                idle: DEFAULT_IDLE_LOCK,
                generation: 0,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it, but a poisoned lock must not unlock anything either:
        // its data is still a consistent Option.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the idle time (from the next unlock on, and for the current one).
    pub(crate) fn set_idle(&self, idle: Duration) {
        self.state().idle = idle;
    }

    /// Drops the key and token now, for `reason`.
    pub(crate) fn lock(&self, reason: LockReason) {
        let mut s = self.state();
        s.unlocked = None;
        s.reason = reason;
    }

    /// Whether the store is locked (without counting as a use).
    pub(crate) fn is_locked(&self) -> bool {
        let mut s = self.state();
        expire(&mut s);
        s.unlocked.is_none()
    }

    /// The key, counting as a use; the lock's reason when locked.
    pub(crate) fn key(&self) -> Result<Arc<DeviceKey>> {
        let mut s = self.state();
        expire(&mut s);
        match &mut s.unlocked {
            Some(u) => {
                u.last_used = Instant::now();
                Ok(u.key.clone())
            }
            None => Err(ClientError::Locked(s.reason)),
        }
    }

    /// The token the key was released for, counting as a use.
    pub(crate) fn token(&self) -> Result<Zeroizing<String>> {
        let mut s = self.state();
        expire(&mut s);
        match &mut s.unlocked {
            Some(u) => {
                u.last_used = Instant::now();
                Ok(u.token.clone())
            }
            None => Err(ClientError::Locked(s.reason)),
        }
    }

    /// Holds `key` and `token` until the idle time passes without a use; a timer task drops
    /// them then even if nothing touches the store again.
    pub(crate) fn unlock(self: &Arc<Self>, key: DeviceKey, token: &str) {
        let generation = {
            let mut s = self.state();
            s.generation += 1;
            s.unlocked = Some(Unlocked {
                key: Arc::new(key),
                token: Zeroizing::new(token.to_owned()),
                last_used: Instant::now(),
            });
            s.generation
        };
        tokio::spawn(watch(Arc::downgrade(self), generation));
    }
}

/// Drops the key when the idle time has passed since the last use.
fn expire(s: &mut State) {
    if s.unlocked
        .as_ref()
        .is_some_and(|u| u.last_used.elapsed() >= s.idle)
    {
        s.unlocked = None;
        s.reason = LockReason::Idle(s.idle.as_secs());
    }
}

/// The idle timer of one unlock: sleeps until the idle time could have passed, locks if it
/// has, and ends when the store is locked, unlocked again or gone.
async fn watch(lock: Weak<Lock>, generation: u64) {
    loop {
        let wait = {
            let Some(lock) = lock.upgrade() else { return };
            let mut s = lock.state();
            if s.generation != generation {
                return;
            }
            expire(&mut s);
            match &s.unlocked {
                None => return,
                Some(u) => s.idle.saturating_sub(u.last_used.elapsed()),
            }
        };
        tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> DeviceKey {
        DeviceKey::new(id, &Zeroizing::new(vec![byte; KEY_LEN])).unwrap()
    }

    #[test]
    fn a_sealed_block_opens_only_as_itself_with_its_key_and_unaltered() {
        let k = key("dvk-1", 7);
        let plain = b"SENTINEL-seal-test";
        let sealed = k.seal(&Block::chunk("doc-a", 1), plain).unwrap();
        assert!(!sealed.windows(plain.len()).any(|w| w == plain));
        assert_eq!(k.open(&Block::chunk("doc-a", 1), &sealed).unwrap(), plain);
        // Moved to another sequence, another document or another table: refused.
        for other in [
            Block::chunk("doc-a", 2),
            Block::chunk("doc-b", 1),
            Block::snapshot("doc-a"),
        ] {
            assert!(matches!(
                k.open(&other, &sealed),
                Err(ClientError::Corrupt(..))
            ));
        }
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(k.open(&Block::chunk("doc-a", 1), &altered).is_err());
        assert!(
            key("dvk-2", 8)
                .open(&Block::chunk("doc-a", 1), &sealed)
                .is_err()
        );
        // Fresh nonces: the same content never seals alike.
        assert_ne!(sealed, k.seal(&Block::chunk("doc-a", 1), plain).unwrap());
    }

    #[test]
    fn a_key_shows_its_id_only_and_a_refusal_names_the_block_only() {
        let k = key("dvk-shown", 0xAB);
        let shown = format!("{k:?}");
        assert_eq!(shown, "DeviceKey(dvk-shown)");
        let err = k
            .open(&Block::read("r-1"), &[1; 40])
            .unwrap_err()
            .to_string();
        assert!(err.contains("reads r-1"), "{err}");
        assert!(
            DeviceKey::new("dvk-short", &Zeroizing::new(vec![1; 16])).is_err(),
            "a 16-byte key is refused"
        );
    }

    #[tokio::test]
    async fn an_idle_lock_drops_the_key_by_its_timer_and_a_use_postpones_it() {
        let lock = Lock::new();
        assert!(matches!(
            lock.key(),
            Err(ClientError::Locked(LockReason::NotUnlocked))
        ));
        lock.set_idle(Duration::from_millis(300));
        lock.unlock(key("dvk-idle", 1), "token");
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            lock.key()
                .expect("used within the idle time: still unlocked");
        }
        let held = Arc::downgrade(&lock.key().unwrap());
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The timer dropped the key: nothing holds it any more, before anyone asks.
        assert!(held.upgrade().is_none(), "the key left memory");
        assert!(lock.is_locked());
        assert!(matches!(
            lock.token(),
            Err(ClientError::Locked(LockReason::Idle(_)))
        ));
    }
}
