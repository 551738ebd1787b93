//! Divergence digests: a short fingerprint of everything a scope holds, the same on the device
//! and on the server when both hold the same documents with the same history.
//!
//! * A document's [`DocEntry`] is SHA-256 over a domain tag, the document id (16 bytes) and its
//!   heads, sorted (32 bytes each). Two copies with the same heads hold the same changes.
//! * A scope's [`ScopeDigest`] is the XOR of the entries of its documents plus their count.
//!   XOR makes it independent of order and incremental: a document's write removes its old
//!   entry ([`ScopeDigest::remove`]) and adds its new one ([`ScopeDigest::add`]), so the
//!   server keeps one row per scope up to date inside the write's transaction instead of
//!   reading the scope again. The count guards against the one blind spot of a bare XOR (an
//!   entry counted twice cancels out).
//!
//! [`saved_heads`] reads a saved automerge document's heads from its chunk header with
//! bounded work and no automerge parse, so the server computes entries on every write cheaply.
//! Pure: no I/O.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::ids::DocId;

/// Domain tag hashed before every entry, so an entry cannot collide with another SHA-256 use.
const ENTRY_TAG: &[u8] = b"gridlink-doc-entry-v1";

/// One document's contribution to its scopes' digests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocEntry(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl DocEntry {
    /// The entry of document `doc` with these heads (any order; they are sorted here).
    pub fn of(doc: DocId, heads: &[[u8; 32]]) -> DocEntry {
        let mut sorted = heads.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut hasher = Sha256::new();
        hasher.update(ENTRY_TAG);
        hasher.update(doc.0.as_bytes());
        for head in &sorted {
            hasher.update(head);
        }
        DocEntry(hasher.finalize().into())
    }

    /// The entry from heads written as hex (the client's `docs.heads` column); `None` when a
    /// head is not 64 hex digits.
    pub fn of_hex_heads<S: AsRef<str>>(doc: DocId, heads: &[S]) -> Option<DocEntry> {
        let mut raw = Vec::with_capacity(heads.len());
        for head in heads {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(head.as_ref(), &mut bytes).ok()?;
            raw.push(bytes);
        }
        Some(DocEntry::of(doc, &raw))
    }

    /// The entry from stored bytes; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<DocEntry> {
        bytes.try_into().ok().map(DocEntry)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// The fingerprint of one scope: XOR of its documents' entries and how many there are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeDigest {
    /// Documents counted.
    pub count: u64,
    /// XOR of their entries.
    #[serde(with = "serde_bytes")]
    pub xor: [u8; 32],
}

impl ScopeDigest {
    /// The digest of a set of entries, in any order.
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a DocEntry>) -> ScopeDigest {
        let mut digest = ScopeDigest::default();
        for entry in entries {
            digest.add(entry);
        }
        digest
    }

    /// Counts a document in.
    pub fn add(&mut self, entry: &DocEntry) {
        self.fold(entry);
        self.count = self.count.wrapping_add(1);
    }

    /// Takes a document counted earlier (with this same entry) out again.
    pub fn remove(&mut self, entry: &DocEntry) {
        self.fold(entry);
        self.count = self.count.wrapping_sub(1);
    }

    fn fold(&mut self, entry: &DocEntry) {
        for (acc, byte) in self.xor.iter_mut().zip(entry.0) {
            *acc ^= byte;
        }
    }

    /// `count:hex` for people and JSON reports.
    pub fn display(&self) -> String {
        format!("{}:{}", self.count, hex::encode(self.xor))
    }
}

/// Why [`saved_heads`] could not read the heads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a saved automerge document: {0}")]
pub struct NotASavedDocument(&'static str);

/// automerge's chunk magic bytes.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Chunk type of a whole document (`save()`).
const DOCUMENT_CHUNK: u8 = 0;
/// More heads than any real document has: refuse rather than allocate on a hostile header.
const MAX_HEADS: u64 = 4096;
const MAX_ACTORS: u64 = 1 << 20;

/// The heads recorded in a saved document's header (automerge `save()` bytes): magic,
/// checksum, chunk type 0, length, the actor table, then the heads. Reads only the header,
/// bounded; the caller still loads the document with automerge where it needs its content.
pub fn saved_heads(bytes: &[u8]) -> Result<Vec<[u8; 32]>, NotASavedDocument> {
    let mut input = Reader { bytes, at: 0 };
    if input.take(4)? != MAGIC {
        return Err(NotASavedDocument("wrong magic bytes"));
    }
    input.take(4)?; // checksum
    if input.take(1)?[0] != DOCUMENT_CHUNK {
        return Err(NotASavedDocument("not a document chunk"));
    }
    let length = input.leb128()?;
    if length > (bytes.len() - input.at) as u64 {
        return Err(NotASavedDocument("chunk longer than the bytes"));
    }
    let actors = input.leb128()?;
    if actors > MAX_ACTORS {
        return Err(NotASavedDocument("too many actors"));
    }
    for _ in 0..actors {
        let len = input.leb128()?;
        input.take(usize::try_from(len).map_err(|_| NotASavedDocument("actor length"))?)?;
    }
    let count = input.leb128()?;
    if count > MAX_HEADS {
        return Err(NotASavedDocument("too many heads"));
    }
    let mut heads = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let mut head = [0u8; 32];
        head.copy_from_slice(input.take(32)?);
        heads.push(head);
    }
    Ok(heads)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], NotASavedDocument> {
        let end =
            self.at.checked_add(n).filter(|end| *end <= self.bytes.len()).ok_or(NotASavedDocument("truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn leb128(&mut self) -> Result<u64, NotASavedDocument> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(NotASavedDocument("LEB128 number too long"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(n: u8) -> DocEntry {
        DocEntry::of(DocId::from_u128(n as u128), &[[n; 32]])
    }

    #[test]
    fn an_entry_depends_on_the_id_and_the_set_of_heads_not_their_order() {
        let doc = DocId::from_u128(7);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(DocEntry::of(doc, &[a, b]), DocEntry::of(doc, &[b, a]));
        assert_ne!(DocEntry::of(doc, &[a, b]), DocEntry::of(doc, &[a]));
        assert_ne!(DocEntry::of(doc, &[a]), DocEntry::of(DocId::from_u128(8), &[a]));
        let hex_heads = [hex::encode(b), hex::encode(a)];
        assert_eq!(DocEntry::of_hex_heads(doc, &hex_heads), Some(DocEntry::of(doc, &[a, b])));
        assert_eq!(DocEntry::of_hex_heads(doc, &["zz"]), None);
    }

    #[test]
    fn the_count_tells_apart_what_the_xor_alone_cannot() {
        let twice = ScopeDigest::of([&entry(1), &entry(1)]);
        assert_eq!(twice.xor, [0; 32]);
        assert_ne!(twice, ScopeDigest::default(), "two equal entries cancel in the XOR, not in the count");
    }

    proptest! {
        #[test]
        fn the_digest_is_order_independent_and_incremental_equals_recomputed(
            ids in proptest::collection::btree_set(0u8..200, 0..40),
            order in any::<u64>(),
            edits in proptest::collection::vec((0u8..200, any::<u8>()), 0..30),
        ) {
            let entries: Vec<DocEntry> = ids.iter().map(|&n| entry(n)).collect();
            let mut shuffled = entries.clone();
            let len = shuffled.len().max(1);
            shuffled.rotate_left(order as usize % len);
            shuffled.reverse();
            prop_assert_eq!(ScopeDigest::of(&entries), ScopeDigest::of(&shuffled));

            // Incremental updates (a write replaces a document's entry, a new document is
            // added) end where a recomputation from scratch ends.
            let mut current: std::collections::BTreeMap<u8, DocEntry> =
                ids.iter().map(|&n| (n, entry(n))).collect();
            let mut running = ScopeDigest::of(current.values());
            for (doc, head) in edits {
                let new = DocEntry::of(DocId::from_u128(doc as u128), &[[head; 32]]);
                if let Some(old) = current.insert(doc, new) {
                    running.remove(&old);
                }
                running.add(&new);
            }
            prop_assert_eq!(running, ScopeDigest::of(current.values()));
        }
    }

    #[test]
    fn saved_heads_reads_what_automerge_says_and_refuses_garbage() {
        use automerge::transaction::Transactable;
        let mut first = automerge::AutoCommit::new();
        first.put(automerge::ROOT, "a", 1).unwrap();
        let mut second = first.fork();
        second.put(automerge::ROOT, "b", 2).unwrap();
        first.put(automerge::ROOT, "c", 3).unwrap();
        first.merge(&mut second).unwrap();
        let mut want: Vec<[u8; 32]> = first.get_heads().iter().map(|h| h.0).collect();
        want.sort();
        assert_eq!(want.len(), 2, "two concurrent heads");
        let bytes = first.save();
        let mut got = saved_heads(&bytes).unwrap();
        got.sort();
        assert_eq!(got, want);
        assert!(saved_heads(&automerge::AutoCommit::new().save()).is_ok_and(|h| h.is_empty()));
        for cut in [0, 3, 9, 12, 20] {
            assert!(saved_heads(&bytes[..cut.min(bytes.len())]).is_err(), "truncated at {cut}");
        }
        assert!(saved_heads(b"not automerge at all").is_err());
        let change = first.get_changes(&[]).last().unwrap().raw_bytes().to_vec();
        assert!(saved_heads(&change).is_err(), "a change chunk is not a document");
    }
}
