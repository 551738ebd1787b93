//! Hand-built automerge chunks for hostile-input tests: the binary change format written out
//! field by field (<https://alexjg.github.io/automerge-storage-docs/#change-chunks>), so a test
//! can declare what an honest automerge never would.

use gridlink_shared::{DocId, doc};
use sha2::{Digest, Sha256};

pub const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

pub fn uleb(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub fn sleb(out: &mut Vec<u8>, mut value: i64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
        if done {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The fields of a change chunk's data.
pub struct RawChange {
    pub deps: Vec<[u8; 32]>,
    pub actor: Vec<u8>,
    pub seq: u64,
    pub start_op: u64,
    pub time: i64,
    pub message: String,
    /// (column specification, column bytes), in specification order.
    pub columns: Vec<(u32, Vec<u8>)>,
}

impl RawChange {
    pub fn data(&self) -> Vec<u8> {
        let mut out = Vec::new();
        uleb(&mut out, self.deps.len() as u64);
        for dep in &self.deps {
            out.extend_from_slice(dep);
        }
        uleb(&mut out, self.actor.len() as u64);
        out.extend_from_slice(&self.actor);
        uleb(&mut out, self.seq);
        uleb(&mut out, self.start_op);
        sleb(&mut out, self.time);
        uleb(&mut out, self.message.len() as u64);
        out.extend_from_slice(self.message.as_bytes());
        uleb(&mut out, 0); // no other actors
        uleb(&mut out, self.columns.len() as u64);
        for (spec, bytes) in &self.columns {
            uleb(&mut out, u64::from(*spec));
            uleb(&mut out, bytes.len() as u64);
        }
        for (_, bytes) in &self.columns {
            out.extend_from_slice(bytes);
        }
        out
    }

    /// The change as an uncompressed chunk with a valid checksum.
    pub fn chunk(&self) -> Vec<u8> {
        chunk(1, &self.data(), None)
    }
}

fn hash(chunk_type: u8, data: &[u8]) -> [u8; 32] {
    let mut prefix = vec![chunk_type];
    uleb(&mut prefix, data.len() as u64);
    let mut hasher = Sha256::new();
    hasher.update(&prefix);
    hasher.update(data);
    hasher.finalize().into()
}

/// A chunk of `chunk_type` around `data`; the checksum is of `checksum_of` when given (a
/// compressed chunk carries the checksum of its inflated change).
pub fn chunk(chunk_type: u8, data: &[u8], checksum_of: Option<&[u8]>) -> Vec<u8> {
    let sum = match checksum_of {
        Some(inflated) => hash(1, inflated),
        None => hash(chunk_type, data),
    };
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&sum[..4]);
    out.push(chunk_type);
    uleb(&mut out, data.len() as u64);
    out.extend_from_slice(data);
    out
}

/// `ops` operations "set key `a` of the root map to null", declared in a few bytes by
/// run-length encoding: a key-string run, an action run and a value-metadata run.
pub fn op_bomb(actor: &[u8], ops: u64) -> RawChange {
    let run = |value: &[u8]| {
        let mut col = Vec::new();
        sleb(&mut col, ops as i64);
        col.extend_from_slice(value);
        col
    };
    RawChange {
        deps: Vec::new(),
        actor: actor.to_vec(),
        seq: 1,
        start_op: 1,
        time: 1_795_000_000_000,
        message: String::new(),
        columns: vec![
            ((1 << 4) | 5, run(&[1, b'a'])), // key: string "a"
            ((4 << 4) | 2, run(&[1])),       // action: set
            ((5 << 4) | 6, run(&[0])),       // value metadata: null
        ],
    }
}

/// Re-encodes a real change with some header fields changed (the ops stay byte for byte).
pub fn reencode(change: &automerge::Change, edit: impl FnOnce(&mut automerge::ExpandedChange)) -> Vec<u8> {
    let mut expanded = change.decode();
    edit(&mut expanded);
    automerge::Change::from(expanded).raw_bytes().to_vec()
}

/// Recomputes the checksum of a (possibly mutated) chunk over whatever follows its length
/// field, so a mutation reaches the parser behind the checksum check.
pub fn fix_checksum(bytes: &mut [u8]) {
    if bytes.len() < 10 || bytes[..4] != MAGIC {
        return;
    }
    let mut pos = 9;
    while pos < bytes.len() && bytes[pos] & 0x80 != 0 {
        pos += 1;
    }
    if pos >= bytes.len() {
        return;
    }
    let data = &bytes[pos + 1..];
    let sum = hash(bytes[8], data);
    bytes[4..8].copy_from_slice(&sum[..4]);
}

/// One hostile variant of a real change (the fuzz stories): bit flips, extreme header fields,
/// accepted ops under another seq, truncation, another document, an unknown dependency.
/// Returns the document to push it for, the bytes, and what was done.
pub fn mutate(rng: &mut impl rand::Rng, honest: &[u8], other_doc: DocId, own: DocId) -> (DocId, Vec<u8>, &'static str) {
    let change = doc::parse_change(honest).unwrap();
    let mut bytes = honest.to_vec();
    let mut target = own;
    let kind = match rng.random_range(0..9) {
        0 => {
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..bytes.len());
                bytes[i] ^= 1 << rng.random_range(0..8);
            }
            "bit flips"
        }
        1 => {
            let i = rng.random_range(0..bytes.len());
            bytes[i] = [0x00, 0x7f, 0x80, 0xff][rng.random_range(0..4)];
            "byte set to an extreme"
        }
        2 => {
            let seq = [0, 1, 2, change.seq() + 1, change.seq() + 1000, u64::MAX >> 1][rng.random_range(0..6)];
            bytes = reencode_or(honest, &change, |c| c.seq = seq);
            "seq set to an extreme"
        }
        3 => {
            let start = [1, 2, u64::from(u32::MAX) - 1, 1 << 40][rng.random_range(0..4)];
            bytes = reencode_or(honest, &change, |c| c.start_op = std::num::NonZeroU64::new(start).unwrap());
            "start op set to an extreme"
        }
        4 => {
            let time = [i64::MIN, -1, 0, i64::MAX, 1 << 62][rng.random_range(0..5)];
            bytes = reencode_or(honest, &change, |c| c.time = time);
            "time set to an extreme"
        }
        5 => {
            let bump = rng.random_range(1..4);
            bytes = reencode_or(honest, &change, |c| c.seq += bump);
            "the same ops under another seq"
        }
        6 => {
            bytes.truncate(rng.random_range(0..bytes.len()));
            "truncated"
        }
        7 => {
            target = other_doc;
            "pushed for another document"
        }
        _ => {
            bytes = reencode_or(honest, &change, |c| c.deps.push(automerge::ChangeHash([7; 32])));
            "an unknown dependency"
        }
    };
    // Most byte-level damage would stop at the checksum; usually make it valid again so the
    // damage reaches the parser behind it.
    if matches!(kind, "bit flips" | "byte set to an extreme" | "truncated") && rng.random_bool(0.7) {
        fix_checksum(&mut bytes);
    }
    (target, bytes, kind)
}

/// Re-encodes with automerge's own encoder; if that encoder refuses the edit (it panics on
/// some), the honest bytes with one flipped bit stand in.
fn reencode_or(
    honest: &[u8],
    change: &automerge::Change,
    edit: impl FnOnce(&mut automerge::ExpandedChange) + std::panic::UnwindSafe,
) -> Vec<u8> {
    let change = change.clone();
    std::panic::catch_unwind(move || reencode(&change, edit)).unwrap_or_else(|_| {
        let mut bytes = honest.to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        bytes
    })
}
