//! The sync protocol, version 1: one HTTP request per sync. Types only; the server and the
//! client do the I/O. Bodies are CBOR (`application/cbor`), with change bytes as CBOR byte
//! strings, compressed with gzip by HTTP. `docs/protocol.md` walks through examples.
//!
//! * The client sends its [`Cursor`] per scope and its unsent changes.
//! * The server validates and stores each change (idempotent by change hash), then answers
//!   with one [`Ack`] per change, the changes in the client's scopes after its cursors (a
//!   page capped in bytes, with `more`), the new cursors, and the scopes added and removed.
//!   A client that says so (`compact_acks`) gets [`CompactAcks`] instead: one status byte per
//!   pushed change, plus the reasons of the refused ones; it checks them against what it
//!   pushed ([`check_acks`]) and names each change by its own copy ([`resolve_acks`]).
//! * A scope the client has never synced, or whose cursor is older than the server's
//!   compaction point, is sent as one snapshot per document instead of history.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::change_bytes::chunk_hash;
use crate::codes::code_enum;
use crate::digest::{DocEntry, ScopeDigest};
use crate::doc::DocType;
use crate::ids::{DeviceId, DocId};
use crate::org::{Principal, Roster, Scope};
use crate::time::Millis;
use crate::validate::RejectCode;

/// The protocol version spoken by this build.
pub const PROTOCOL_VERSION: u32 = 1;
/// Media type of request and response bodies.
pub const CONTENT_TYPE: &str = "application/cbor";
/// Page size the server uses when the client does not ask for one.
pub const DEFAULT_PAGE_BYTES: u64 = 1024 * 1024;
/// The largest page a client may ask for.
pub const MAX_PAGE_BYTES: u64 = 8 * 1024 * 1024;

/// Where a client stands in one scope's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "kebab-case")]
pub enum Cursor {
    /// Never synced: the server starts with snapshots.
    #[default]
    Start,
    /// Snapshot transfer under way: documents up to `after` (in id order) were sent; the log
    /// continues after `upto` once the snapshots are done.
    Snapshotting { upto: u64, after: DocId },
    /// Everything up to and including sequence number `seq` of this scope was received.
    Seq { seq: u64 },
}

/// One sync request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub protocol: u32,
    /// The client's cursor for every scope it holds.
    pub cursors: BTreeMap<Scope, Cursor>,
    /// Unsent local changes, oldest first (dependencies before dependants).
    pub changes: Vec<PushChange>,
    /// Requested page size in bytes (capped by [`MAX_PAGE_BYTES`]).
    pub page_bytes: Option<u64>,
    /// Documents whose full server copy the client wants (repair path).
    pub repair: Vec<DocId>,
    /// Version of the reference data (roster, outlets) the client holds.
    pub reference_version: Option<u64>,
    /// The device's clock when it sent this, for skew diagnostics.
    pub device_time: Millis,
    /// What the device reports about itself, for the supervisors' sync-health page. Absent
    /// from older apps, which keep working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<DeviceHealth>,
    /// Scopes whose digest did not match the server's: every document the device holds there,
    /// with its entry, so the server can send back only what differs. Absent from older apps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify: Vec<VerifyScope>,
    /// The device reads [`CompactAcks`]: the server answers with those and an empty `acks`.
    /// Absent from older apps, which get full acks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compact_acks: bool,
}

/// Documents in one verify list at most, over all scopes of a request. The server refuses a
/// longer list before any work; the device does not send one (a street holds about 40,000).
pub const MAX_VERIFY_DOCS: usize = 100_000;
/// Scopes in one request's verify list at most.
pub const MAX_VERIFY_SCOPES: usize = 8;

/// What the device holds in one scope whose digest differed: (document, entry) pairs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyScope {
    pub scope: Scope,
    pub docs: Vec<VerifyDoc>,
}

/// One held document and its [`DocEntry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyDoc {
    pub doc: DocId,
    pub entry: DocEntry,
}

/// The server's side of divergence detection in one response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integrity {
    /// The digest of every scope whose page is complete in this response (its cursor reached
    /// the scope's log head): what the device compares with its own once caught up.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digests: BTreeMap<Scope, ScopeDigest>,
    /// Answers to the request's verify lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified: Vec<VerifyAnswer>,
}

impl Integrity {
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty() && self.verified.is_empty()
    }
}

/// The server's answer to one [`VerifyScope`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyAnswer {
    pub scope: Scope,
    /// Documents whose entry differs from the server's, or that the device lacks: their server
    /// copies are in [`SyncResponse::repairs`].
    pub differing: Vec<DocId>,
    /// Documents the device listed that the server does not hold for this principal.
    pub absent: Vec<DocId>,
    /// False when the page filled before every differing copy went in: verify again.
    pub complete: bool,
}

/// A device's own account of its state at a sync.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHealth {
    /// The app's version.
    pub app_version: String,
    /// Changes waiting to be sent (before this request).
    pub unsent: u64,
    /// Changes the server refused, kept aside on the device.
    pub rejected: u64,
    /// Documents set aside as damaged, waiting for a repair.
    pub quarantined: u64,
}

/// One automerge change pushed by the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushChange {
    pub doc: DocId,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// The server's answer to one sync request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub protocol: u32,
    pub server_time: Millis,
    /// One ack per pushed change, in request order.
    pub acks: Vec<Ack>,
    /// Changes and snapshots for the client's scopes.
    pub items: Vec<PullItem>,
    /// New cursor for every scope the client now holds.
    pub cursors: BTreeMap<Scope, Cursor>,
    /// More items are waiting: sync again.
    pub more: bool,
    pub scopes_added: Vec<Scope>,
    pub scopes_removed: Vec<Scope>,
    /// The server's full copy of documents that had a change rejected in this request, or
    /// that the client asked to repair.
    pub repairs: Vec<DocSnapshot>,
    /// Newer reference data, when the client's version is out of date.
    pub reference: Option<ReferenceData>,
    /// Scope digests and verify answers. Absent from older servers (and empty ones are not
    /// sent), so older apps and servers keep working.
    #[serde(default, skip_serializing_if = "Integrity::is_empty")]
    pub integrity: Integrity,
    /// The acks in a few bytes, for a request that asked for them (`acks` is then empty).
    /// Absent from older servers, which send full acks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact_acks: Option<CompactAcks>,
}

/// The fate of one pushed change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub doc: DocId,
    /// Hex change hash.
    pub hash: String,
    pub status: AckStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum AckStatus {
    /// Stored durably now.
    Accepted,
    /// Already stored earlier (a retried request).
    Duplicate,
    /// Refused; the client keeps it aside and shows the reason.
    Rejected { code: RejectCode, message: String },
}

/// The acks of one request in a few bytes: the device already knows which change each ack
/// is for (acks follow request order), so the document id and the 64-hex-digit hash of a
/// full [`Ack`] (~117 bytes of CBOR) shrink to one status byte ([`AckByte`]). Only refusals
/// carry more: their code and message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactAcks {
    /// One [`AckByte`] per pushed change, in request order: exactly as many as were pushed.
    #[serde(with = "serde_bytes")]
    pub status: Vec<u8>,
    /// The reason for every change whose byte is [`AckByte::Rejected`], once each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejection>,
}

/// Why the change at `index` of the request was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub index: u32,
    pub code: RejectCode,
    pub message: String,
}

/// The fate of one pushed change as one byte of [`CompactAcks::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AckByte {
    /// Stored durably now.
    Accepted = 0,
    /// Already stored earlier (a retried request).
    Duplicate = 1,
    /// Refused: its reason is in [`CompactAcks::rejected`].
    Rejected = 2,
    /// Not looked at in this request (over the request's work budget): still unsent, the
    /// device sends it again. A full-ack answer leaves these changes without an ack.
    Deferred = 3,
}

impl AckByte {
    pub fn from_byte(byte: u8) -> Option<AckByte> {
        [AckByte::Accepted, AckByte::Duplicate, AckByte::Rejected, AckByte::Deferred]
            .into_iter()
            .find(|b| *b as u8 == byte)
    }
}

impl CompactAcks {
    /// The server's side: `acks` answer the first changes of a request of `pushed` changes,
    /// in order (the push stops at the first change over its work budget); the rest are
    /// [`AckByte::Deferred`].
    pub fn from_acks(acks: &[Ack], pushed: usize) -> CompactAcks {
        let mut compact = CompactAcks { status: Vec::with_capacity(pushed.max(acks.len())), rejected: Vec::new() };
        for (index, ack) in acks.iter().enumerate() {
            let byte = match &ack.status {
                AckStatus::Accepted => AckByte::Accepted,
                AckStatus::Duplicate => AckByte::Duplicate,
                AckStatus::Rejected { code, message } => {
                    // A request's changes are counted by the server's push limits, far below this.
                    let index = u32::try_from(index).unwrap_or(u32::MAX);
                    compact.rejected.push(Rejection { index, code: *code, message: message.clone() });
                    AckByte::Rejected
                }
            };
            compact.status.push(byte as u8);
        }
        compact.status.resize(pushed.max(acks.len()), AckByte::Deferred as u8);
        compact
    }

    /// The device's side: one outcome per pushed change (`None`: deferred, still unsent),
    /// after checking the acks against the `pushed` changes: as many status bytes, every byte
    /// known, and exactly one reason per refused change, none outside the request.
    pub fn outcomes(&self, pushed: usize) -> Result<Vec<Option<AckStatus>>, ProtocolError> {
        if self.status.len() != pushed {
            return Err(ProtocolError::AckCount { pushed, got: self.status.len() });
        }
        let mut outcomes = Vec::with_capacity(pushed);
        for (index, &byte) in self.status.iter().enumerate() {
            outcomes.push(match AckByte::from_byte(byte) {
                Some(AckByte::Accepted) => Some(AckStatus::Accepted),
                Some(AckByte::Duplicate) => Some(AckStatus::Duplicate),
                Some(AckByte::Rejected) => None, // filled from its reason below
                Some(AckByte::Deferred) => None,
                None => return Err(ProtocolError::UnknownAckStatus { index, byte }),
            });
        }
        for rejection in &self.rejected {
            let index = rejection.index as usize;
            if index >= pushed {
                return Err(ProtocolError::RejectionOutOfRange { index: rejection.index, pushed });
            }
            if self.status[index] != AckByte::Rejected as u8 {
                return Err(ProtocolError::RejectionOfUnrejected { index });
            }
            if outcomes[index].is_some() {
                return Err(ProtocolError::RejectionRepeated { index });
            }
            outcomes[index] = Some(AckStatus::Rejected { code: rejection.code, message: rejection.message.clone() });
        }
        if let Some(index) = (0..pushed).find(|&i| self.status[i] == AckByte::Rejected as u8 && outcomes[i].is_none()) {
            return Err(ProtocolError::RejectionWithoutReason { index });
        }
        Ok(outcomes)
    }
}

/// Checks the acks of `response` against the changes `request` pushed: compact acks as
/// [`CompactAcks::outcomes`] does, and never both forms at once. Full acks (older servers)
/// name their change by hash, so one that matches no unsent change does nothing; they are
/// taken as before. Pure and cheap, so the client runs it with [`check_page`] before opening
/// its transaction: a bad answer changes nothing.
pub fn check_acks(request: &SyncRequest, response: &SyncResponse) -> Result<(), ProtocolError> {
    let pushed = request.changes.len();
    match &response.compact_acks {
        Some(_) if !response.acks.is_empty() => Err(ProtocolError::MixedAcks),
        Some(compact) => compact.outcomes(pushed).map(drop),
        None => Ok(()),
    }
}

/// The acks of `response` as full [`Ack`]s, checked with [`check_acks`], deferred changes
/// left out. A compact ack is named by the device's own copy of the change it answers: its
/// document and its hash ([`chunk_hash`]; empty for bytes that are not a change chunk, which
/// then match no unsent change and stay where they are).
pub fn resolve_acks(request: &SyncRequest, response: &SyncResponse) -> Result<Vec<Ack>, ProtocolError> {
    check_acks(request, response)?;
    let Some(compact) = &response.compact_acks else {
        return Ok(response.acks.clone());
    };
    let outcomes = compact.outcomes(request.changes.len())?;
    Ok(request
        .changes
        .iter()
        .zip(outcomes)
        .filter_map(|(change, outcome)| {
            let hash = chunk_hash(&change.bytes).map(|h| h.to_string()).unwrap_or_default();
            outcome.map(|status| Ack { doc: change.doc, hash, status })
        })
        .collect())
}

/// One item of a pull page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "item", rename_all = "kebab-case")]
pub enum PullItem {
    /// A logged change, number `seq` of `scope`.
    Change {
        scope: Scope,
        seq: u64,
        doc: DocId,
        doc_type: DocType,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// A logged change that the requesting device pushed itself: it already holds the
    /// change, so only its place in the log is sent, no bytes.
    Echo { scope: Scope, seq: u64, doc: DocId },
    /// A whole document (automerge `save()`), sent during a snapshot transfer.
    Snapshot {
        scope: Scope,
        doc: DocId,
        doc_type: DocType,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
}

impl PullItem {
    pub fn doc(&self) -> DocId {
        match self {
            PullItem::Change { doc, .. } | PullItem::Echo { doc, .. } | PullItem::Snapshot { doc, .. } => *doc,
        }
    }
    pub fn scope(&self) -> Scope {
        match self {
            PullItem::Change { scope, .. } | PullItem::Echo { scope, .. } | PullItem::Snapshot { scope, .. } => *scope,
        }
    }
    /// The change or snapshot bytes (empty for an echo).
    pub fn bytes(&self) -> &[u8] {
        match self {
            PullItem::Change { bytes, .. } | PullItem::Snapshot { bytes, .. } => bytes,
            PullItem::Echo { .. } => &[],
        }
    }
}

/// A whole document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocSnapshot {
    pub doc: DocId,
    pub doc_type: DocType,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// Reference data written by the server only: the roster slice the user may see, staff
/// identity cards and the service-outlet directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceData {
    pub version: u64,
    pub roster: Roster,
}

/// `POST /v1/enroll` body (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub code: String,
    pub device_name: String,
}

/// `POST /v1/enroll` answer (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub device: DeviceId,
    /// Bearer token; shown once, stored only hashed on the server.
    pub token: String,
    /// The automerge actor id bound to this device (hex). Every change it signs must use it.
    pub actor: String,
    pub principal: Principal,
    /// 32 random bytes (hex) the server keeps for this device: the device wraps a second copy
    /// of its database key with it, so an admin (`gridlink-server device recovery-key`) can
    /// recover its unsent changes after it wiped its PIN-wrapped key. Absent from older
    /// servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_secret: Option<String>,
}

/// `GET /v1/me` answer (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeResponse {
    pub principal: Principal,
    pub device: DeviceId,
    pub actor: String,
}

code_enum!(
    /// Machine-readable error codes of the JSON error envelope.
    ErrorCode {
        BadRequest => ("bad-request", "请求格式错误", "Malformed request"),
        Unauthorized => ("unauthorized", "未登录或令牌无效", "Missing or invalid token"),
        DeviceRevoked => ("device-revoked", "设备已被停用", "This device was revoked"),
        DeviceWiped => ("device-wiped", "此设备已被远程清除", "This device was wiped remotely"),
        CodeInvalid => ("code-invalid", "注册码无效", "Enrolment code is invalid"),
        CodeExpired => ("code-expired", "注册码已过期", "Enrolment code has expired"),
        CodeUsed => ("code-used", "注册码已使用", "Enrolment code was already used"),
        Forbidden => ("forbidden", "无权限", "Not allowed"),
        NotFound => ("not-found", "未找到", "Not found"),
        PayloadTooLarge => ("payload-too-large", "数据过大", "Request body too large"),
        UnsupportedProtocol => ("unsupported-protocol", "协议版本不兼容", "Protocol version not supported"),
        UnsupportedMediaType => ("unsupported-media-type", "数据格式不支持", "Unsupported content type"),
        Timeout => ("timeout", "请求超时", "Request timed out"),
        TooManyRequests => ("too-many-requests", "尝试次数过多，请稍后再试", "Too many attempts; try again later"),
        Internal => ("internal", "服务器内部错误", "Internal server error"),
    }
);

/// The JSON envelope of every error status: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

/// A body or page that breaks the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("body is not valid CBOR for this message: {0}")]
    Decode(String),
    #[error("gap in scope {scope}: expected change {expected}, got {got}")]
    Gap { scope: Scope, expected: u64, got: u64 },
    #[error("server sent scope {0} that this device does not hold")]
    UnknownScope(Scope),
    #[error("cursor of scope {scope} went backwards")]
    CursorBackwards { scope: Scope },
    #[error("the server sent {got} acks for {pushed} pushed changes")]
    AckCount { pushed: usize, got: usize },
    #[error("ack {index} has the unknown status byte {byte}")]
    UnknownAckStatus { index: usize, byte: u8 },
    #[error("a rejection names change {index}, but only {pushed} were pushed")]
    RejectionOutOfRange { index: u32, pushed: usize },
    #[error("change {index} is rejected more than once")]
    RejectionRepeated { index: usize },
    #[error("a rejection names change {index}, whose ack is not a rejection")]
    RejectionOfUnrejected { index: usize },
    #[error("change {index} is rejected without a reason")]
    RejectionWithoutReason { index: usize },
    #[error("the server sent both full and compact acks")]
    MixedAcks,
}

/// Encodes a message as CBOR.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail for these plain data types.
    ciborium::into_writer(message, &mut out).expect("CBOR encoding into memory");
    out
}

/// Decodes a CBOR message.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtocolError> {
    ciborium::from_reader(bytes).map_err(|e| ProtocolError::Decode(e.to_string()))
}

/// Checks a pull page against the cursors the client sent: per scope, logged changes must
/// continue the client's sequence with no gap, and cursors never move backwards. Pure, so
/// the client runs it before opening its transaction.
pub fn check_page(sent: &BTreeMap<Scope, Cursor>, response: &SyncResponse) -> Result<(), ProtocolError> {
    let mut expected: BTreeMap<Scope, u64> = BTreeMap::new();
    for item in &response.items {
        let scope = item.scope();
        let known = sent.contains_key(&scope) || response.scopes_added.contains(&scope);
        if !known {
            return Err(ProtocolError::UnknownScope(scope));
        }
        if let PullItem::Change { seq, .. } | PullItem::Echo { seq, .. } = item {
            let next = expected.entry(scope).or_insert_with(|| match sent.get(&scope) {
                Some(Cursor::Seq { seq }) => seq + 1,
                Some(Cursor::Snapshotting { upto, .. }) => upto + 1,
                _ => *seq,
            });
            if *seq != *next {
                return Err(ProtocolError::Gap { scope, expected: *next, got: *seq });
            }
            *next += 1;
        }
    }
    for (scope, cursor) in &response.cursors {
        let before = match sent.get(scope) {
            Some(Cursor::Seq { seq }) => *seq,
            _ => 0,
        };
        if let Cursor::Seq { seq } = cursor {
            if *seq < before {
                return Err(ProtocolError::CursorBackwards { scope: *scope });
            }
            let last_delivered = expected.get(scope).map(|next| next - 1);
            let sent_seq = matches!(sent.get(scope), Some(Cursor::Seq { .. })).then_some(before);
            // The new cursor must sit exactly on the last change delivered; with no changes
            // delivered, a cursor that was already in the log must not move.
            if let Some(want) = last_delivered.or(sent_seq)
                && *seq != want
            {
                return Err(ProtocolError::Gap { scope: *scope, expected: want, got: *seq });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::GridId;

    fn change(scope: Scope, seq: u64) -> PullItem {
        PullItem::Change { scope, seq, doc: DocId::from_u128(1), doc_type: DocType::Household, bytes: vec![1, 2, 3] }
    }

    fn response(items: Vec<PullItem>, cursors: BTreeMap<Scope, Cursor>) -> SyncResponse {
        SyncResponse {
            protocol: PROTOCOL_VERSION,
            server_time: 0,
            acks: vec![],
            items,
            cursors,
            more: false,
            scopes_added: vec![],
            scopes_removed: vec![],
            repairs: vec![],
            reference: None,
            integrity: Integrity::default(),
            compact_acks: None,
        }
    }

    #[test]
    fn a_contiguous_page_passes_and_a_gap_is_caught() {
        let grid = Scope::Grid(GridId::from_u128(3));
        let sent = BTreeMap::from([(grid, Cursor::Seq { seq: 4 })]);
        let ok = response(vec![change(grid, 5), change(grid, 6)], BTreeMap::from([(grid, Cursor::Seq { seq: 6 })]));
        assert_eq!(check_page(&sent, &ok), Ok(()));

        let gap = response(vec![change(grid, 5), change(grid, 7)], BTreeMap::from([(grid, Cursor::Seq { seq: 7 })]));
        assert_eq!(check_page(&sent, &gap), Err(ProtocolError::Gap { scope: grid, expected: 6, got: 7 }));

        let skipped_tail = response(vec![change(grid, 5)], BTreeMap::from([(grid, Cursor::Seq { seq: 9 })]));
        assert!(matches!(check_page(&sent, &skipped_tail), Err(ProtocolError::Gap { .. })));

        let silent_jump = response(vec![], BTreeMap::from([(grid, Cursor::Seq { seq: 9 })]));
        assert!(matches!(check_page(&sent, &silent_jump), Err(ProtocolError::Gap { .. })));

        let echo = PullItem::Echo { scope: grid, seq: 6, doc: DocId::from_u128(1) };
        let with_echo =
            response(vec![change(grid, 5), echo, change(grid, 7)], BTreeMap::from([(grid, Cursor::Seq { seq: 7 })]));
        assert_eq!(check_page(&sent, &with_echo), Ok(()), "an echo holds its place in the sequence");

        let backwards = response(vec![], BTreeMap::from([(grid, Cursor::Seq { seq: 2 })]));
        assert!(check_page(&sent, &backwards).is_err());
    }

    #[test]
    fn items_for_scopes_the_device_does_not_hold_are_refused() {
        let grid = Scope::Grid(GridId::from_u128(3));
        let stranger = Scope::Grid(GridId::from_u128(4));
        let sent = BTreeMap::from([(grid, Cursor::Start)]);
        let page = response(vec![change(stranger, 1)], BTreeMap::new());
        assert_eq!(check_page(&sent, &page), Err(ProtocolError::UnknownScope(stranger)));
    }

    fn pushed(n: usize) -> SyncRequest {
        SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursors: BTreeMap::new(),
            changes: (0..n)
                .map(|i| PushChange { doc: DocId::from_u128(i as u128 + 1), bytes: vec![i as u8] })
                .collect(),
            page_bytes: None,
            repair: vec![],
            reference_version: None,
            device_time: 0,
            health: None,
            verify: vec![],
            compact_acks: true,
        }
    }

    fn refused(message: &str) -> AckStatus {
        AckStatus::Rejected { code: RejectCode::OutOfScope, message: message.into() }
    }

    #[test]
    fn compact_acks_carry_every_outcome_and_defer_the_unanswered_tail() {
        let full: Vec<Ack> = [AckStatus::Accepted, AckStatus::Duplicate, refused("不在您的网格"), AckStatus::Accepted]
            .into_iter()
            .enumerate()
            .map(|(i, status)| Ack { doc: DocId::from_u128(i as u128 + 1), hash: "ab".repeat(32), status })
            .collect();
        let compact = CompactAcks::from_acks(&full, 6);
        assert_eq!(compact.status, [0, 1, 2, 0, 3, 3]);
        assert_eq!(compact.rejected.len(), 1);
        let outcomes = compact.outcomes(6).unwrap();
        let want: Vec<Option<AckStatus>> = full.iter().map(|a| Some(a.status.clone())).chain([None, None]).collect();
        assert_eq!(outcomes, want);

        let mut response = response(vec![], BTreeMap::new());
        response.compact_acks = Some(compact.clone());
        let decoded: SyncResponse = decode(&encode(&response)).unwrap();
        assert_eq!(decoded.compact_acks, Some(compact), "through CBOR");
        let resolved = resolve_acks(&pushed(6), &decoded).unwrap();
        assert_eq!(resolved.len(), 4, "deferred changes get no ack");
        assert_eq!(resolved[2].doc, DocId::from_u128(3), "named by the request's own change");
        assert_eq!(resolved[2].status, refused("不在您的网格"));
    }

    #[test]
    fn compact_acks_that_do_not_fit_the_request_are_refused() {
        let ok = CompactAcks {
            status: vec![0, 2],
            rejected: vec![Rejection { index: 1, code: RejectCode::OutOfScope, message: "x".into() }],
        };
        assert!(ok.outcomes(2).is_ok());
        let bad = |f: &dyn Fn(&mut CompactAcks)| {
            let mut acks = ok.clone();
            f(&mut acks);
            acks.outcomes(2).unwrap_err()
        };
        assert_eq!(bad(&|a| a.status.push(0)), ProtocolError::AckCount { pushed: 2, got: 3 });
        assert_eq!(bad(&|a| a.status.truncate(1)), ProtocolError::AckCount { pushed: 2, got: 1 });
        assert_eq!(bad(&|a| a.status[0] = 9), ProtocolError::UnknownAckStatus { index: 0, byte: 9 });
        assert_eq!(bad(&|a| a.rejected[0].index = 2), ProtocolError::RejectionOutOfRange { index: 2, pushed: 2 });
        assert_eq!(
            bad(&|a| a.rejected[0].index = u32::MAX),
            ProtocolError::RejectionOutOfRange { index: u32::MAX, pushed: 2 }
        );
        assert_eq!(bad(&|a| a.rejected.push(a.rejected[0].clone())), ProtocolError::RejectionRepeated { index: 1 });
        assert_eq!(bad(&|a| a.rejected[0].index = 0), ProtocolError::RejectionOfUnrejected { index: 0 });
        assert_eq!(bad(&|a| a.rejected.clear()), ProtocolError::RejectionWithoutReason { index: 1 });

        let mut mixed = response(vec![], BTreeMap::new());
        mixed.compact_acks = Some(ok.clone());
        mixed.acks = vec![Ack { doc: DocId::from_u128(1), hash: String::new(), status: AckStatus::Accepted }];
        assert_eq!(check_acks(&pushed(2), &mixed), Err(ProtocolError::MixedAcks));
        mixed.compact_acks = None;
        assert_eq!(check_acks(&pushed(2), &mixed), Ok(()), "an older server may ack only the first changes");
    }

    #[test]
    fn the_flag_and_the_compact_form_are_absent_unless_used() {
        let mut request = pushed(1);
        request.compact_acks = false;
        let old_style = encode(&request);
        assert_eq!(decode::<SyncRequest>(&old_style).unwrap(), request, "an older app's request still decodes");
        request.compact_acks = true;
        assert!(encode(&request).len() > old_style.len());
        let plain = response(vec![], BTreeMap::new());
        let decoded: SyncResponse = decode(&encode(&plain)).unwrap();
        assert_eq!(decoded.compact_acks, None);
    }

    #[test]
    fn messages_round_trip_through_cbor_and_garbage_is_an_error() {
        let grid = Scope::Grid(GridId::from_u128(3));
        let message = response(vec![change(grid, 1)], BTreeMap::from([(grid, Cursor::Seq { seq: 1 })]));
        let bytes = encode(&message);
        assert_eq!(decode::<SyncResponse>(&bytes).unwrap(), message);
        assert!(decode::<SyncResponse>(&bytes[..bytes.len() / 2]).is_err());
        assert!(decode::<SyncRequest>(b"\xff\x00garbage").is_err());
    }
}
