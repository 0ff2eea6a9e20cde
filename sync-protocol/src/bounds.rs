//! Regie's own reading of an Automerge sync message, done before any Automerge code sees the
//! bytes (I7). Automerge trusts what it decodes: a Bloom filter asking for four billion probes
//! allocates without end, zero bits per entry divides by zero, a compressed change of zeros
//! inflates a hundredfold and more, and run-length-encoded columns can declare billions of
//! operations in a few bytes. [`check_sync_message`] walks the message's structure — heads,
//! needs, haves and their Bloom filters, every chunk of every change — with explicit
//! [`SyncLimits`], inflates compressed data through a hard cap (never trusting a declared
//! length), and counts each column's rows from its run lengths without expanding them. Only a
//! message it accepts may be handed to `automerge::sync::Message::decode`.
//!
//! The layouts follow the Automerge binary format
//! (<https://automerge.org/automerge-binary-format-spec/>) as `automerge` 0.12 parses it; where
//! this reader is stricter (bundle chunks, trailing bytes) it refuses what honest peers never
//! send.

use std::io::Read;

/// The limits one incoming sync message must keep. The defaults admit everything an honest
/// automerge-repo peer sends for a household's dossier and bound what one message can cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncLimits {
    /// Hashes in each of `heads`, `need` and a have's `lastSync`.
    pub max_hashes: usize,
    /// Entries in `have` (Automerge sends at most one).
    pub max_haves: usize,
    /// Entries summarised by one Bloom filter.
    pub max_bloom_entries: u32,
    /// Bits per entry of a Bloom filter (Automerge uses 10).
    pub max_bloom_bits_per_entry: u32,
    /// Probes per hash of a Bloom filter (Automerge uses 7).
    pub max_bloom_probes: u32,
    /// Chunks (changes or documents) in one message.
    pub max_chunks: usize,
    /// Bytes of one chunk once inflated.
    pub max_chunk_bytes: usize,
    /// Bytes of all chunks of one message once inflated.
    pub max_message_bytes: usize,
    /// Operations (column rows) in all chunks of one message.
    pub max_ops: u64,
}

impl Default for SyncLimits {
    fn default() -> Self {
        SyncLimits {
            max_hashes: 1024,
            max_haves: 4,
            max_bloom_entries: 1_000_000,
            max_bloom_bits_per_entry: 32,
            max_bloom_probes: 16,
            max_chunks: 10_000,
            max_chunk_bytes: 16 * 1024 * 1024,
            max_message_bytes: 32 * 1024 * 1024,
            max_ops: 1_000_000,
        }
    }
}

/// What an accepted message holds, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Chunks (changes or documents).
    pub chunks: usize,
    /// Bytes of all chunks once inflated.
    pub inflated_bytes: usize,
    /// Operations (column rows) across all chunks.
    pub ops: u64,
}

/// Why a sync message was refused before Automerge saw it. Each variant names its limit; the
/// text is fit to send back in an `error` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// The bytes do not follow the sync message layout.
    #[error("malformed sync message: {0}")]
    Malformed(&'static str),
    /// A list of hashes is longer than allowed.
    #[error("sync message refused: {count} hashes in `{field}` exceed the limit of {limit}")]
    TooManyHashes {
        /// `heads`, `need` or `lastSync`.
        field: &'static str,
        /// What the message declared.
        count: u64,
        /// The limit.
        limit: usize,
    },
    /// More `have` entries than allowed.
    #[error("sync message refused: {count} haves exceed the limit of {limit}")]
    TooManyHaves {
        /// What the message declared.
        count: u64,
        /// The limit.
        limit: usize,
    },
    /// A Bloom filter parameter is zero where it must not be, or above its limit.
    #[error("sync message refused: bloom filter {parameter} {value} is outside 1..={limit}")]
    Bloom {
        /// `entries`, `bits per entry` or `probes`.
        parameter: &'static str,
        /// What the message declared.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// A Bloom filter's bit array does not have the length its parameters imply.
    #[error(
        "sync message refused: bloom filter has {found} bytes of bits, its parameters need {expected}"
    )]
    BloomLength {
        /// What the parameters imply.
        expected: u64,
        /// What the message holds.
        found: usize,
    },
    /// More chunks than allowed.
    #[error("sync message refused: {count} changes exceed the limit of {limit}")]
    TooManyChunks {
        /// Chunks seen so far.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A chunk type devices may not send.
    #[error("sync message refused: chunk type {0} is not accepted from devices")]
    ChunkType(u8),
    /// A chunk inflates beyond the per-chunk limit.
    #[error("sync message refused: a change inflates beyond the limit of {limit} bytes")]
    ChunkTooLarge {
        /// The limit.
        limit: usize,
    },
    /// All chunks together inflate beyond the per-message limit.
    #[error("sync message refused: its changes inflate beyond the limit of {limit} bytes")]
    MessageTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The chunks hold more operations than allowed.
    #[error("sync message refused: its changes hold more than {limit} operations")]
    TooManyOps {
        /// The limit.
        limit: u64,
    },
}

impl LimitError {
    /// A stable code for the audit log and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            LimitError::Malformed(_) => "malformed_sync_message",
            LimitError::TooManyHashes { .. } => "limit_hashes",
            LimitError::TooManyHaves { .. } => "limit_haves",
            LimitError::Bloom { .. } | LimitError::BloomLength { .. } => "limit_bloom_filter",
            LimitError::TooManyChunks { .. } => "limit_changes",
            LimitError::ChunkType(_) => "unsupported_chunk",
            LimitError::ChunkTooLarge { .. } => "limit_change_bytes",
            LimitError::MessageTooLarge { .. } => "limit_message_bytes",
            LimitError::TooManyOps { .. } => "limit_operations",
        }
    }
}

const MESSAGE_V1: u8 = 0x42;
const MESSAGE_V2: u8 = 0x43;
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const HASH_BYTES: usize = 32;
/// Columns in one chunk: Automerge writes about twenty.
const MAX_COLUMNS: u64 = 64;
/// Actors in one chunk's actor table.
const MAX_ACTORS: u64 = 65_536;
/// Flag bytes at the end of a message (Automerge writes two).
const MAX_FLAG_BYTES: u64 = 16;

/// Checks one Automerge sync message (the `data` of a `request` or `sync`) against `limits`.
/// Never panics and allocates at most what the limits allow.
pub fn check_sync_message(data: &[u8], limits: &SyncLimits) -> Result<SyncStats, LimitError> {
    let mut r = Reader::new(data);
    match r.byte()? {
        MESSAGE_V1 | MESSAGE_V2 => {}
        _ => return Err(LimitError::Malformed("not an automerge sync message")),
    }
    hashes(&mut r, "heads", limits)?;
    hashes(&mut r, "need", limits)?;
    let haves = r.uleb()?;
    if haves > limits.max_haves as u64 {
        return Err(LimitError::TooManyHaves {
            count: haves,
            limit: limits.max_haves,
        });
    }
    for _ in 0..haves {
        hashes(&mut r, "lastSync", limits)?;
        let len = r.len_prefix()?;
        bloom(r.take(len)?, limits)?;
    }
    // Automerge joins the change entries and loads them as one sequence of chunks, so a chunk
    // may span entries: read them the same way.
    let entries = r.uleb()?;
    if entries > limits.max_chunks as u64 {
        return Err(LimitError::TooManyChunks {
            count: usize::try_from(entries).unwrap_or(usize::MAX),
            limit: limits.max_chunks,
        });
    }
    let mut joined = Vec::new();
    for _ in 0..entries {
        let len = r.len_prefix()?;
        joined.extend_from_slice(r.take(len)?);
    }
    if !r.is_empty() {
        let len = r.uleb()?;
        if len > MAX_FLAG_BYTES {
            return Err(LimitError::Malformed("flags section too long"));
        }
        r.take(len as usize)?;
        if !r.is_empty() {
            return Err(LimitError::Malformed("bytes after the flags section"));
        }
    }
    chunks(&joined, limits)
}

/// Checks a sequence of storage chunks (changes, compressed changes, documents).
fn chunks(mut bytes: &[u8], limits: &SyncLimits) -> Result<SyncStats, LimitError> {
    let mut stats = SyncStats::default();
    while !bytes.is_empty() {
        stats.chunks += 1;
        if stats.chunks > limits.max_chunks {
            return Err(LimitError::TooManyChunks {
                count: stats.chunks,
                limit: limits.max_chunks,
            });
        }
        let (kind, body, rest) = split_chunk(bytes)?;
        bytes = rest;
        let (inflated, ops) = match kind {
            0 => document(body, limits)?,
            1 => (body.len(), change(body, limits)?),
            2 => {
                let inflated = inflate(body, limits.max_chunk_bytes)?;
                (inflated.len(), change(&inflated, limits)?)
            }
            other => return Err(LimitError::ChunkType(other)),
        };
        if inflated > limits.max_chunk_bytes {
            return Err(LimitError::ChunkTooLarge {
                limit: limits.max_chunk_bytes,
            });
        }
        stats.inflated_bytes += inflated;
        if stats.inflated_bytes > limits.max_message_bytes {
            return Err(LimitError::MessageTooLarge {
                limit: limits.max_message_bytes,
            });
        }
        stats.ops = stats.ops.saturating_add(ops);
        if stats.ops > limits.max_ops {
            return Err(LimitError::TooManyOps {
                limit: limits.max_ops,
            });
        }
    }
    Ok(stats)
}

/// The storage chunk at the start of `bytes`: its type, its body, and the bytes after it.
fn split_chunk(bytes: &[u8]) -> Result<(u8, &[u8], &[u8]), LimitError> {
    let mut r = Reader::new(bytes);
    if r.take(4)? != MAGIC {
        return Err(LimitError::Malformed(
            "a change does not start with the magic bytes",
        ));
    }
    r.take(4)?; // checksum: Automerge verifies it
    let kind = r.byte()?;
    let len = r.len_prefix()?;
    let body = r.take(len)?;
    Ok((kind, body, r.rest()))
}

/// The length (header and body) of the Automerge storage chunk at the start of `bytes`, read
/// as [`check_sync_message`] reads it; `None` when `bytes` does not start with one.
pub fn chunk_len(bytes: &[u8]) -> Option<usize> {
    let (_, _, rest) = split_chunk(bytes).ok()?;
    Some(bytes.len() - rest.len())
}

/// A change chunk's body: header fields, then uncompressed columns. Returns its operations.
fn change(body: &[u8], limits: &SyncLimits) -> Result<u64, LimitError> {
    let mut r = Reader::new(body);
    hashes(&mut r, "deps", limits)?;
    let actor = r.len_prefix()?;
    r.take(actor)?;
    r.uleb()?; // seq
    r.uleb()?; // start op
    r.sleb()?; // time
    let message = r.len_prefix()?;
    r.take(message)?;
    actors(&mut r)?;
    let columns = column_specs(&mut r)?;
    let mut ops = 0;
    for (spec, len) in columns {
        if spec & DEFLATE != 0 {
            return Err(LimitError::Malformed("a change has compressed columns"));
        }
        ops = ops.max(rows(spec, r.take(len)?, limits.max_ops)?);
    }
    Ok(ops)
}

/// A document chunk's body (a whole document, as Automerge sends in a "v2" sync message).
/// Returns its bytes once inflated and its rows (changes plus operations).
fn document(body: &[u8], limits: &SyncLimits) -> Result<(usize, u64), LimitError> {
    let mut r = Reader::new(body);
    actors(&mut r)?;
    let heads = hashes(&mut r, "heads", limits)?;
    let change_columns = column_specs(&mut r)?;
    let op_columns = column_specs(&mut r)?;
    let mut inflated = body.len();
    let mut total = 0u64;
    for group in [change_columns, op_columns] {
        let mut most = 0;
        for (spec, len) in group {
            let data = r.take(len)?;
            let n = if spec & DEFLATE != 0 {
                let plain = inflate(data, limits.max_chunk_bytes)?;
                inflated += plain.len();
                if inflated > limits.max_chunk_bytes {
                    return Err(LimitError::ChunkTooLarge {
                        limit: limits.max_chunk_bytes,
                    });
                }
                rows(spec, &plain, limits.max_ops)?
            } else {
                rows(spec, data, limits.max_ops)?
            };
            most = most.max(n);
        }
        total = total.saturating_add(most);
    }
    // The suffix: one index per head, or nothing from older writers.
    if !r.is_empty() {
        for _ in 0..heads {
            r.uleb()?;
        }
    }
    Ok((inflated, total))
}

const DEFLATE: u32 = 0b1000;

/// Column specs and lengths, as `RawColumns` reads them.
fn column_specs(r: &mut Reader<'_>) -> Result<Vec<(u32, usize)>, LimitError> {
    let n = r.uleb()?;
    if n > MAX_COLUMNS {
        return Err(LimitError::Malformed("too many columns"));
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let spec = u32::try_from(r.uleb()?)
            .map_err(|_| LimitError::Malformed("column spec out of range"))?;
        out.push((spec, r.len_prefix()?));
    }
    Ok(out)
}

/// An actor table: a count, then length-prefixed ids.
fn actors(r: &mut Reader<'_>) -> Result<(), LimitError> {
    let n = r.uleb()?;
    if n > MAX_ACTORS {
        return Err(LimitError::Malformed("too many actors"));
    }
    for _ in 0..n {
        let len = r.len_prefix()?;
        r.take(len)?;
    }
    Ok(())
}

/// How many rows a column holds, from its run lengths, without expanding them. Stops as soon
/// as the count passes `limit`.
fn rows(spec: u32, data: &[u8], limit: u64) -> Result<u64, LimitError> {
    let mut r = Reader::new(data);
    let mut n: u64 = 0;
    let over = |n: u64| -> Result<(), LimitError> {
        if n > limit {
            Err(LimitError::TooManyOps { limit })
        } else {
            Ok(())
        }
    };
    match spec & 0b111 {
        // Raw values: their lengths live in the metadata column.
        7 => return Ok(0),
        // Boolean: alternating run lengths.
        4 => {
            while !r.is_empty() {
                n = n.saturating_add(r.uleb()?);
                over(n)?;
            }
        }
        kind => {
            // Run-length encoded: a positive count repeats one value, a negative count is a
            // literal run, zero is a run of nulls whose length follows.
            while !r.is_empty() {
                let count = r.sleb()?;
                let len = match count {
                    0 => r.uleb()?,
                    c if c > 0 => {
                        value(&mut r, kind)?;
                        c.unsigned_abs()
                    }
                    c => {
                        let len = c.unsigned_abs();
                        over(n.saturating_add(len))?;
                        for _ in 0..len {
                            value(&mut r, kind)?;
                        }
                        len
                    }
                };
                n = n.saturating_add(len);
                over(n)?;
            }
        }
    }
    Ok(n)
}

/// Skips one value of a run-length encoded column of `kind`.
fn value(r: &mut Reader<'_>, kind: u32) -> Result<(), LimitError> {
    match kind {
        3 => r.sleb().map(drop),
        5 => {
            let len = r.len_prefix()?;
            r.take(len).map(drop)
        }
        _ => r.uleb().map(drop),
    }
}

/// Reads a list of hashes, refusing a long one before reading it.
fn hashes(r: &mut Reader<'_>, field: &'static str, limits: &SyncLimits) -> Result<u64, LimitError> {
    let count = r.uleb()?;
    if count > limits.max_hashes as u64 {
        return Err(LimitError::TooManyHashes {
            field,
            count,
            limit: limits.max_hashes,
        });
    }
    r.take(count as usize * HASH_BYTES)?;
    Ok(count)
}

/// A Bloom filter: empty, or entries, bits per entry, probes and exactly the bits they imply.
fn bloom(bytes: &[u8], limits: &SyncLimits) -> Result<(), LimitError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(bytes);
    let entries = r.uleb()?;
    let bits_per_entry = r.uleb()?;
    let probes = r.uleb()?;
    let within = |parameter, value: u64, limit: u64| {
        if (1..=limit).contains(&value) {
            Ok(())
        } else {
            Err(LimitError::Bloom {
                parameter,
                value,
                limit,
            })
        }
    };
    within("entries", entries, limits.max_bloom_entries.into())?;
    within(
        "bits per entry",
        bits_per_entry,
        limits.max_bloom_bits_per_entry.into(),
    )?;
    within("probes", probes, limits.max_bloom_probes.into())?;
    let expected = (entries * bits_per_entry).div_ceil(8);
    if r.rest().len() as u64 != expected {
        return Err(LimitError::BloomLength {
            expected,
            found: r.rest().len(),
        });
    }
    Ok(())
}

/// Inflates raw deflate data, refusing to produce more than `cap` bytes.
fn inflate(data: &[u8], cap: usize) -> Result<Vec<u8>, LimitError> {
    let mut out = Vec::new();
    flate2::bufread::DeflateDecoder::new(data)
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| LimitError::Malformed("compressed data does not inflate"))?;
    if out.len() > cap {
        return Err(LimitError::ChunkTooLarge { limit: cap });
    }
    Ok(out)
}

/// A cursor over bytes with the LEB128 rules Automerge applies (no overlong encodings).
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    fn byte(&mut self) -> Result<u8, LimitError> {
        let (&b, rest) = self
            .bytes
            .split_first()
            .ok_or(LimitError::Malformed("the message ends early"))?;
        self.bytes = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], LimitError> {
        if n > self.bytes.len() {
            return Err(LimitError::Malformed("a length runs past the end"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// A length that must fit in what is left.
    fn len_prefix(&mut self) -> Result<usize, LimitError> {
        let n = self.uleb()?;
        if n > self.bytes.len() as u64 {
            return Err(LimitError::Malformed("a length runs past the end"));
        }
        Ok(n as usize)
    }

    fn uleb(&mut self) -> Result<u64, LimitError> {
        let mut result = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            if i == 9 && b > 1 {
                return Err(LimitError::Malformed("a number is too large"));
            }
            result |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(LimitError::Malformed("an overlong number"));
                }
                return Ok(result);
            }
        }
        Err(LimitError::Malformed("a number is too large"))
    }

    fn sleb(&mut self) -> Result<i64, LimitError> {
        let mut result = 0i64;
        for i in 0..10 {
            let b = self.byte()?;
            result |= i64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == 9 && b != 0 && b != 0x7f {
                    return Err(LimitError::Malformed("a number is too large"));
                }
                let shift = 7 * (i + 1);
                if shift < 64 && b & 0x40 != 0 {
                    result |= -1i64 << shift;
                }
                return Ok(result);
            }
        }
        Err(LimitError::Malformed("a number is too large"))
    }
}

#[cfg(test)]
mod tests;
