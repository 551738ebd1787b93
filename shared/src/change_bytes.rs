//! Bounded inspection of a change's bytes before automerge is allowed to parse them.
//!
//! automerge trusts its input far more than a server may: an ~80-byte change can declare
//! millions of operations through run-length encoding, a compressed chunk can inflate to
//! gigabytes, and a few header fields set to odd values make it panic. [`inspect_change`]
//! reads the chunk header and counts the rows of every operation column with work bounded by
//! the byte length, refusing anything over [`ChangeLimits`], and returns the header facts
//! (hash, actor, seq, start op, time, deps, op count) that the caller checks against its
//! copy of the document before anything expensive runs. The format is automerge's binary
//! change chunk (<https://alexjg.github.io/automerge-storage-docs/#change-chunks>).

use automerge::{ActorId, ChangeHash};
use sha2::{Digest, Sha256};

/// The magic bytes that open every automerge chunk.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_DOCUMENT: u8 = 0;
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED: u8 = 2;

/// The operation column that has one row per operation (automerge's `ACTION_COL_ID`).
const ACTION_COLUMN_ID: u32 = 4;

/// What one change may carry. Defaults are far above what the app writes (a new household
/// with its residents is a few kilobytes and a few hundred operations) and far below what
/// hurts the server (see `docs/security.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeLimits {
    /// Bytes of the whole chunk.
    pub max_bytes: usize,
    /// Operations (rows of the action column).
    pub max_ops: u64,
    /// Rows of any one column, and the sum of any group column (for instance predecessors).
    pub max_column_rows: u64,
    /// Dependencies (heads the change was made on).
    pub max_deps: usize,
    /// Other actors referenced by the change's operations.
    pub max_other_actors: usize,
    /// Bytes of one actor id.
    pub max_actor_bytes: usize,
    /// Bytes of the commit message.
    pub max_message_bytes: usize,
    /// Operation columns.
    pub max_columns: usize,
}

impl Default for ChangeLimits {
    fn default() -> Self {
        ChangeLimits {
            max_bytes: 1024 * 1024,
            max_ops: 20_000,
            max_column_rows: 80_000,
            max_deps: 256,
            max_other_actors: 256,
            max_actor_bytes: 64,
            max_message_bytes: 4096,
            max_columns: 64,
        }
    }
}

impl ChangeLimits {
    /// Limits for changes a phone pulls from the server. The server checked them on the way in,
    /// but a store damaged earlier, or a server in the wrong hands, must not be able to make a
    /// phone parse millions of operations; imports write whole households in one change, so
    /// these sit above what a phone may push.
    pub const PULLED: ChangeLimits = ChangeLimits {
        max_bytes: 8 * 1024 * 1024,
        max_ops: 200_000,
        max_column_rows: 800_000,
        max_deps: 4096,
        max_other_actors: 4096,
        max_actor_bytes: 64,
        max_message_bytes: 64 * 1024,
        max_columns: 64,
    };
}

/// Why change bytes were refused before automerge saw them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRefusal {
    /// Well formed as far as it was read, but over a limit.
    #[error("{0}")]
    TooLarge(String),
    /// Not a readable, uncompressed change chunk.
    #[error("{0}")]
    Malformed(String),
}

/// The header facts of a change, read with bounded work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeHeader {
    /// The change's hash (SHA-256 of its type, length and data, as automerge computes it).
    pub hash: ChangeHash,
    pub actor: ActorId,
    pub seq: u64,
    pub start_op: u64,
    /// Milliseconds since the Unix epoch, as the author's clock said (0 when unset).
    pub time: i64,
    pub deps: Vec<ChangeHash>,
    /// Number of operations.
    pub ops: u64,
}

impl ChangeHeader {
    /// The counter of the change's last operation (`start_op - 1` for an empty change).
    pub fn max_op(&self) -> u64 {
        (self.start_op + self.ops).saturating_sub(1)
    }
}

/// Reads and bounds a change chunk. Compressed chunks are refused: the app always sends
/// uncompressed changes (HTTP gzip compresses the request), and inflating is where bombs hide.
pub fn inspect_change(bytes: &[u8], limits: &ChangeLimits) -> Result<ChangeHeader, ChangeRefusal> {
    if bytes.len() > limits.max_bytes {
        return Err(too_large(format!("change is {} bytes; at most {} are accepted", bytes.len(), limits.max_bytes)));
    }
    let mut r = Reader::new(bytes);
    if r.take(4)? != MAGIC {
        return Err(malformed("not an automerge chunk (wrong magic bytes)"));
    }
    let checksum: [u8; 4] = r.take(4)?.try_into().expect("4 bytes");
    let chunk_type = r.byte()?;
    match chunk_type {
        CHUNK_CHANGE => {}
        CHUNK_COMPRESSED => return Err(malformed("compressed change chunks are not accepted; send it uncompressed")),
        CHUNK_DOCUMENT => return Err(malformed("a whole document was sent where a change was expected")),
        other => return Err(malformed(format!("unknown chunk type {other}"))),
    }
    let data_len = r.uleb()?;
    let data_start = r.pos;
    if data_len != (bytes.len() - data_start) as u64 {
        return Err(malformed(format!(
            "chunk declares {data_len} bytes of data but carries {}",
            bytes.len() - data_start
        )));
    }
    let hash = change_hash(chunk_type, &bytes[data_start..]);
    if hash.0[..4] != checksum {
        return Err(malformed("checksum does not match the change's contents"));
    }

    let deps_count = r.uleb()?;
    if deps_count > limits.max_deps as u64 {
        return Err(too_large(format!(
            "change has {deps_count} dependencies; at most {} are accepted",
            limits.max_deps
        )));
    }
    let mut deps = Vec::with_capacity(deps_count as usize);
    for _ in 0..deps_count {
        deps.push(ChangeHash(r.take(32)?.try_into().expect("32 bytes")));
    }
    let actor = read_actor(&mut r, limits)?;
    let seq = r.uleb()?;
    let start_op = r.uleb()?;
    if seq == 0 || start_op == 0 {
        return Err(malformed("seq and start op of a change start at 1"));
    }
    let time = r.sleb()?;
    let message_len = r.uleb()?;
    if message_len > limits.max_message_bytes as u64 {
        return Err(too_large(format!("commit message is {message_len} bytes; at most {}", limits.max_message_bytes)));
    }
    std::str::from_utf8(r.take(message_len as usize)?).map_err(|_| malformed("commit message is not UTF-8"))?;
    let other_actors = r.uleb()?;
    if other_actors > limits.max_other_actors as u64 {
        return Err(too_large(format!(
            "change references {other_actors} other actors; at most {}",
            limits.max_other_actors
        )));
    }
    for _ in 0..other_actors {
        read_actor(&mut r, limits)?;
    }

    let column_count = r.uleb()?;
    if column_count > limits.max_columns as u64 {
        return Err(too_large(format!("change has {column_count} columns; at most {}", limits.max_columns)));
    }
    let mut columns = Vec::with_capacity(column_count as usize);
    for _ in 0..column_count {
        let spec = u32::try_from(r.uleb()?).map_err(|_| malformed("column specification out of range"))?;
        let len = r.uleb()?;
        columns.push((spec, len));
    }
    let mut ops = 0;
    for (spec, len) in columns {
        if spec & 0b1000 != 0 {
            return Err(malformed("compressed columns are not accepted in a change"));
        }
        let data = r.take(usize::try_from(len).map_err(|_| malformed("column length out of range"))?)?;
        let rows = count_rows(ColumnKind::from_spec(spec), data, limits.max_column_rows)?;
        if spec >> 4 == ACTION_COLUMN_ID {
            ops = ops.max(rows);
        }
    }
    if ops > limits.max_ops {
        return Err(too_large(format!("change has {ops} operations; at most {} are accepted", limits.max_ops)));
    }
    // automerge keeps op counters in 32 bits.
    if start_op.checked_add(ops).is_none_or(|end| end > u64::from(u32::MAX)) {
        return Err(malformed("operation counters of this change overflow"));
    }
    Ok(ChangeHeader { hash, actor, seq, start_op, time, deps, ops })
}

/// Why a well-formed change does not fit the document it was pushed for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContextRefusal {
    #[error("{0} earlier change(s) of this document are not here; push them first")]
    MissingDependencies(usize),
    /// Its numbering would repeat or skip an actor's changes or operations: automerge panics
    /// on such changes or, worse, stores duplicate operation ids that no phone can load.
    #[error("{0}")]
    OutOfOrder(String),
    #[error("{0}")]
    BadTime(String),
}

/// The earliest change time accepted: 0, which automerge also writes when no time is set. A
/// phone whose clock was reset to 1970 still syncs; only negative times are refused.
pub const EARLIEST_CHANGE_TIME: i64 = 0;

/// How far ahead of the server's clock a change may be stamped: a year. Far enough that no
/// phone with a wrong date loses work, near enough that time deltas cannot overflow.
pub const MAX_CHANGE_TIME_AHEAD_MS: i64 = 366 * 24 * 3_600_000;

/// Refuses change times that are negative or far in the future. automerge delta-encodes
/// times, and an extreme one (`i64::MIN`) makes it overflow while saving the document.
pub fn check_time(time: i64, now: i64) -> Result<(), ContextRefusal> {
    let latest = now.saturating_add(MAX_CHANGE_TIME_AHEAD_MS);
    if (EARLIEST_CHANGE_TIME..=latest).contains(&time) {
        Ok(())
    } else {
        Err(ContextRefusal::BadTime(format!(
            "change time {time} is outside 0..={latest} (milliseconds since 1970); check the phone's clock"
        )))
    }
}

/// What a document already holds, for checking a new change's place in it: each actor's last
/// seq and op counter, and the last op counter of every change.
#[derive(Clone, Debug, Default)]
pub struct ChangeIndex {
    by_actor: std::collections::HashMap<ActorId, (u64, u64)>,
    max_op_by_hash: std::collections::HashMap<ChangeHash, u64>,
}

impl ChangeIndex {
    /// Indexes a document from its change metadata (no op is read).
    pub fn of(doc: &mut automerge::AutoCommit) -> Self {
        let mut index = ChangeIndex::default();
        for meta in doc.get_changes_meta(&[]) {
            index.insert(meta.hash, &meta.actor, meta.seq, meta.max_op);
        }
        index
    }

    /// Whether the document holds this change.
    pub fn contains(&self, hash: &ChangeHash) -> bool {
        self.max_op_by_hash.contains_key(hash)
    }

    /// Checks that the change extends the document the way an honest automerge would:
    /// its dependencies are here, its seq is the next for its actor, and its first op counter
    /// is the next after every op it depends on and its actor's earlier ops (so no op id
    /// repeats and counters grow only by the ops actually made).
    pub fn check(&self, change: &ChangeHeader) -> Result<(), ContextRefusal> {
        let missing = change.deps.iter().filter(|dep| !self.contains(dep)).count();
        if missing > 0 {
            return Err(ContextRefusal::MissingDependencies(missing));
        }
        let (last_seq, actor_max_op) = self.by_actor.get(&change.actor).copied().unwrap_or((0, 0));
        if change.seq != last_seq + 1 {
            return Err(ContextRefusal::OutOfOrder(format!(
                "change has seq {} but this device's next change here is {}",
                change.seq,
                last_seq + 1
            )));
        }
        // automerge starts a change one past the highest op counter of the document it was
        // made on, which is the highest of its dependencies. Lower repeats op ids; higher
        // lets one change push the counters towards their 32-bit end, after which every
        // honest edit of the document panics.
        let deps_max_op = change.deps.iter().filter_map(|dep| self.max_op_by_hash.get(dep)).copied().max().unwrap_or(0);
        let expected = deps_max_op.max(actor_max_op) + 1;
        if change.start_op != expected {
            return Err(ContextRefusal::OutOfOrder(format!(
                "change starts at op {} but must start at op {expected}, after the ops it builds on",
                change.start_op
            )));
        }
        Ok(())
    }

    /// Records an accepted change.
    pub fn record(&mut self, change: &ChangeHeader) {
        self.insert(change.hash, &change.actor, change.seq, change.max_op());
    }

    fn insert(&mut self, hash: ChangeHash, actor: &ActorId, seq: u64, max_op: u64) {
        self.max_op_by_hash.insert(hash, max_op);
        let entry = self.by_actor.entry(actor.clone()).or_insert((0, 0));
        entry.0 = entry.0.max(seq);
        entry.1 = entry.1.max(max_op);
    }
}

/// automerge's change hash: SHA-256 over the chunk type, the LEB128 data length and the data.
/// The hash of a change chunk from its header alone: magic bytes, chunk type and length, no
/// limits and no reading of its operations. The device names the changes it pushed by it when
/// the server's acks carry only their place in the request (`protocol::CompactAcks`); `None`
/// for bytes that are not an uncompressed change chunk of exactly their length.
pub fn chunk_hash(bytes: &[u8]) -> Option<ChangeHash> {
    let mut r = Reader::new(bytes);
    if r.take(4).ok()? != MAGIC {
        return None;
    }
    r.take(4).ok()?; // checksum: the hash is what matters here
    if r.byte().ok()? != CHUNK_CHANGE {
        return None;
    }
    let data_len = r.uleb().ok()?;
    let data = &bytes[r.pos..];
    (data_len == data.len() as u64).then(|| change_hash(CHUNK_CHANGE, data))
}

fn change_hash(chunk_type: u8, data: &[u8]) -> ChangeHash {
    let mut hasher = Sha256::new();
    hasher.update([chunk_type]);
    let mut len = data.len() as u64;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            hasher.update([byte]);
            break;
        }
        hasher.update([byte | 0x80]);
    }
    hasher.update(data);
    ChangeHash(hasher.finalize().into())
}

fn read_actor(r: &mut Reader<'_>, limits: &ChangeLimits) -> Result<ActorId, ChangeRefusal> {
    let len = r.uleb()?;
    if len == 0 || len > limits.max_actor_bytes as u64 {
        return Err(malformed(format!("actor id of {len} bytes")));
    }
    Ok(ActorId::from(r.take(len as usize)?))
}

/// How a column's rows are encoded (the low three bits of its specification).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ColumnKind {
    /// Run-length encoded unsigned numbers whose values are also counted (a group's sizes).
    Group,
    /// Run-length encoded unsigned LEB128 values (actor indexes, integers, value metadata).
    Unsigned,
    /// Run-length encoded signed LEB128 deltas.
    Delta,
    /// Alternating run lengths of false and true.
    Boolean,
    /// Run-length encoded length-prefixed strings.
    String,
    /// Raw value bytes, addressed by the metadata column: no rows of its own.
    Raw,
}

impl ColumnKind {
    fn from_spec(spec: u32) -> Self {
        match spec & 0b111 {
            0 => ColumnKind::Group,
            1 | 2 | 6 => ColumnKind::Unsigned,
            3 => ColumnKind::Delta,
            4 => ColumnKind::Boolean,
            5 => ColumnKind::String,
            _ => ColumnKind::Raw,
        }
    }
}

/// Counts a column's rows without materialising them, refusing more than `cap` (and, for a
/// group column, a sum of group sizes over `cap`). Work is linear in the column's bytes.
fn count_rows(kind: ColumnKind, data: &[u8], cap: u64) -> Result<u64, ChangeRefusal> {
    let over = |what: &str| too_large(format!("a column declares more than {cap} {what}"));
    let mut r = Reader::new(data);
    let mut rows: u64 = 0;
    let mut group_total: u64 = 0;
    let add = |total: &mut u64, n: u64, what: &str| -> Result<(), ChangeRefusal> {
        *total = total.checked_add(n).filter(|t| *t <= cap).ok_or_else(|| over(what))?;
        Ok(())
    };
    match kind {
        ColumnKind::Raw => return Ok(0),
        ColumnKind::Boolean => {
            while !r.is_empty() {
                add(&mut rows, r.uleb()?, "rows")?;
            }
        }
        ColumnKind::Group | ColumnKind::Unsigned | ColumnKind::Delta | ColumnKind::String => {
            let value = |r: &mut Reader<'_>| -> Result<u64, ChangeRefusal> {
                match kind {
                    ColumnKind::Delta => r.sleb().map(|_| 0),
                    ColumnKind::String => {
                        let len = r.uleb()?;
                        r.take(usize::try_from(len).map_err(|_| malformed("string length out of range"))?)?;
                        Ok(0)
                    }
                    _ => r.uleb(),
                }
            };
            while !r.is_empty() {
                let run = r.sleb()?;
                if run > 0 {
                    // One value repeated `run` times.
                    let n = run.unsigned_abs();
                    add(&mut rows, n, "rows")?;
                    let v = value(&mut r)?;
                    if kind == ColumnKind::Group {
                        add(&mut group_total, v.checked_mul(n).ok_or_else(|| over("grouped rows"))?, "grouped rows")?;
                    }
                } else if run < 0 {
                    // `-run` literal values.
                    let n = run.unsigned_abs();
                    add(&mut rows, n, "rows")?;
                    for _ in 0..n {
                        let v = value(&mut r)?;
                        if kind == ColumnKind::Group {
                            add(&mut group_total, v, "grouped rows")?;
                        }
                    }
                } else {
                    add(&mut rows, r.uleb()?, "rows")?; // a run of nulls
                }
            }
        }
    }
    Ok(rows)
}

fn too_large(message: impl Into<String>) -> ChangeRefusal {
    ChangeRefusal::TooLarge(message.into())
}

fn malformed(message: impl Into<String>) -> ChangeRefusal {
    ChangeRefusal::Malformed(message.into())
}

/// A cursor over bytes whose every read is checked.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ChangeRefusal> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.bytes.len()).ok_or_else(truncated)?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, ChangeRefusal> {
        Ok(self.take(1)?[0])
    }

    fn uleb(&mut self) -> Result<u64, ChangeRefusal> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = self.byte()?;
            let part = u64::from(byte & 0x7f);
            if i == 9 && part > 1 {
                return Err(malformed("number too large"));
            }
            value |= part << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("number too large"))
    }

    fn sleb(&mut self) -> Result<i64, ChangeRefusal> {
        let mut value: i64 = 0;
        let mut shift = 0;
        loop {
            let byte = self.byte()?;
            if shift == 63 && byte != 0x00 && byte != 0x7f {
                return Err(malformed("number too large"));
            }
            value |= i64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
            if shift > 63 {
                return Err(malformed("number too large"));
            }
        }
    }
}

fn truncated() -> ChangeRefusal {
    malformed("change bytes end early")
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::{CommitOptions, Transactable};
    use automerge::{AutoCommit, ROOT};

    fn sample_change(ops: usize) -> automerge::Change {
        let mut doc = AutoCommit::new();
        for i in 0..ops {
            doc.put(ROOT, format!("k{i}"), i as i64).unwrap();
        }
        doc.commit_with(CommitOptions::default().with_time(1_795_000_000_000).with_message("走访"));
        doc.get_last_local_change().unwrap()
    }

    #[test]
    fn reads_the_same_facts_as_automerge() {
        for ops in [1, 3, 300] {
            let change = sample_change(ops);
            let header = inspect_change(change.raw_bytes(), &ChangeLimits::default()).unwrap();
            assert_eq!(header.hash, change.hash());
            assert_eq!(&header.actor, change.actor_id());
            assert_eq!(header.seq, change.seq());
            assert_eq!(header.start_op, change.start_op().get());
            assert_eq!(header.ops, change.len() as u64);
            assert_eq!(header.max_op(), change.max_op());
            assert_eq!(header.time, change.timestamp());
            assert_eq!(header.deps, change.deps());
        }
    }

    #[test]
    fn the_header_hash_is_automerges_and_anything_else_has_none() {
        for ops in [1, 300] {
            let change = sample_change(ops);
            assert_eq!(chunk_hash(change.raw_bytes()), Some(change.hash()));
            let bytes = change.raw_bytes();
            assert_eq!(chunk_hash(&bytes[..bytes.len() - 1]), None, "a cut chunk");
            let mut longer = bytes.to_vec();
            longer.push(0);
            assert_eq!(chunk_hash(&longer), None, "trailing bytes");
        }
        assert_eq!(chunk_hash(b""), None);
        assert_eq!(chunk_hash(b"\x85\x6f\x4a\x83\0\0\0\0\x00\x00"), None, "a document chunk");
    }

    #[test]
    fn every_truncation_is_refused_without_panic() {
        let change = sample_change(20);
        let bytes = change.raw_bytes();
        for len in 0..bytes.len() {
            assert!(inspect_change(&bytes[..len], &ChangeLimits::default()).is_err(), "prefix of {len} bytes");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let change = sample_change(50);
        let limits = ChangeLimits { max_ops: 49, ..ChangeLimits::default() };
        assert!(matches!(inspect_change(change.raw_bytes(), &limits), Err(ChangeRefusal::TooLarge(_))));
        let limits = ChangeLimits { max_bytes: 10, ..ChangeLimits::default() };
        assert!(matches!(inspect_change(change.raw_bytes(), &limits), Err(ChangeRefusal::TooLarge(_))));
    }

    #[test]
    fn compressed_chunks_are_refused() {
        let mut change = sample_change(300);
        let compressed = change.bytes().into_owned();
        assert_eq!(compressed[8], CHUNK_COMPRESSED, "automerge compresses a change this size");
        let refusal = inspect_change(&compressed, &ChangeLimits::default()).unwrap_err();
        assert!(refusal.to_string().contains("compressed"), "{refusal}");
    }

    #[test]
    fn leb128_edges() {
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).uleb(), Ok(u64::MAX));
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).uleb().is_err());
        assert_eq!(Reader::new(&[0x7f]).sleb(), Ok(-1));
        assert_eq!(Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f]).sleb(), Ok(i64::MIN));
        assert_eq!(Reader::new(&[0x3f]).sleb(), Ok(63));
        assert_eq!(Reader::new(&[0xc0, 0x00]).sleb(), Ok(64));
    }
}
