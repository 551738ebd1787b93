//! The server's decision on one pushed change, free of I/O: [`read_header`] reads the change
//! with bounded work and checks who signed it; [`decide`] takes what the executor looked up
//! (whether the hash is stored, the document as the server holds it, the scopes the user lost
//! recently) and returns a [`Verdict`]. The executor in `push.rs` performs it: stores and logs
//! an accepted change, audits a refusal, all in the sync's transaction. Tests drive the
//! decision with hand-built inputs; the order of the checks is the order below.

use automerge::AutoCommit;
use gridlink_shared::change_bytes::{
    ChangeHeader, ChangeIndex, ChangeRefusal, ContextRefusal, check_time, inspect_change,
};
use gridlink_shared::conflicts::check_edit_or_pick;
use gridlink_shared::protocol::{AckStatus, PushChange};
use gridlink_shared::time::Millis;
use gridlink_shared::{AnyDoc, DocError, Principal, RejectCode, Scope, ValidationError, doc};

use super::PushLimits;

/// How long a scope taken from a user still accepts the changes their phones made before.
pub const SCOPE_GRACE_MS: Millis = 30 * gridlink_shared::time::DAY_MS;

/// A document touched in this request, as the server holds it.
pub(super) struct Working {
    pub doc: AutoCommit,
    /// Seqs and op counters already in `doc`, to check each new change's numbering.
    pub index: ChangeIndex,
    /// The document is on the server (stored before, or created by an accepted change).
    pub exists: bool,
    /// Hydrated state after the last accepted change, when one was accepted.
    pub accepted: Option<AnyDoc>,
}

impl Working {
    /// A document the server has never seen.
    pub fn new_document() -> Working {
        Working { doc: AutoCommit::new(), index: ChangeIndex::default(), exists: false, accepted: None }
    }

    /// The server's stored copy, loaded with panics contained.
    pub fn load(bytes: &[u8]) -> Result<Working, DocError> {
        doc::guarded("loading the stored document", || {
            let mut doc = doc::load(bytes)?;
            let index = ChangeIndex::of(&mut doc);
            Ok(Working { doc, index, exists: true, accepted: None })
        })
    }
}

/// A scope the user lost, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct LostScope {
    pub scope: Scope,
    pub removed_at: Millis,
}

/// Who pushes: the device's principal, and the scopes it may still write in for a while
/// (lost within [`SCOPE_GRACE_MS`] after the device was enrolled).
pub(super) struct Pusher<'a> {
    pub principal: &'a Principal,
    pub lost: &'a [LostScope],
}

impl Pusher<'_> {
    /// The principal with the scopes it lost after `change_time` added back; `None` when no
    /// lost scope qualifies. The stamp is the phone's clock, but only a device that held the
    /// scope can claim it, and the audit log keeps both times.
    fn with_grace(&self, change_time: Millis) -> Option<Principal> {
        let regained: Vec<Scope> = self.lost.iter().filter(|l| l.removed_at >= change_time).map(|l| l.scope).collect();
        if regained.is_empty() {
            return None;
        }
        let mut former = self.principal.clone();
        former.scopes.extend(regained);
        Some(former)
    }
}

/// What to do with one change.
pub(super) enum Verdict {
    /// Over this request's op budget: no ack, so the phone sends it again next round.
    Defer,
    /// Acknowledge without storing anything (already held).
    Duplicate { hash: String },
    /// Refuse, with the code and message the phone keeps.
    Refuse { hash: String, status: AckStatus },
    /// Store the change (boxed: a document is large, the other verdicts are small).
    Accept(Box<Accepted>),
}

/// An accepted change and the document with it applied.
pub(super) struct Accepted {
    pub hash: String,
    pub header: ChangeHeader,
    /// The document with the change applied.
    pub candidate: AutoCommit,
    /// Its state.
    pub after: AnyDoc,
    /// Every scope the document was or now is in.
    pub log_scopes: Vec<Scope>,
}

pub(super) fn reject(code: RejectCode, message: impl Into<String>) -> AckStatus {
    AckStatus::Rejected { code, message: message.into() }
}

/// Whether a fresh phone can load a saved document: [`doc::load`] in production; tests put
/// a loader that fails on purpose in its place.
pub(super) type LoadCheck = fn(&[u8]) -> Result<(), DocError>;

/// A fresh phone's load of a saved document.
pub(super) fn phone_loads(bytes: &[u8]) -> Result<(), DocError> {
    doc::load(bytes).map(drop)
}

/// Where the executor proves that a fresh phone can load what it stores.
#[derive(Clone, Copy)]
pub(super) enum Proof {
    /// Once per document, on the bytes about to be stored (by the executor, not [`decide`]).
    PerDocument(LoadCheck),
    /// After every change, in [`decide`], so that a change that breaks loading is refused
    /// alone: the executor's second pass when a per-document proof failed.
    PerChange(LoadCheck),
}

/// The refusal of a change with which the document would not load.
pub(super) fn not_loadable(e: &DocError) -> AckStatus {
    reject(RejectCode::CorruptChange, format!("the document would not load with this change: {e}"))
}

/// The message of a refusal for a stored document that does not load.
pub(super) const DAMAGED: &str = "the server's copy of this record is damaged; an administrator must repair it";

/// The reject code for a change that does not fit its document.
pub(super) fn context_reject(refusal: ContextRefusal) -> AckStatus {
    let code = match refusal {
        ContextRefusal::MissingDependencies(_) => RejectCode::MissingDependencies,
        ContextRefusal::OutOfOrder(_) => RejectCode::OutOfOrder,
        ContextRefusal::BadTime(_) => RejectCode::BadTime,
    };
    reject(code, refusal.to_string())
}

/// Bounded work first: nothing else runs on bytes that fail these checks, and a change must be
/// signed by the pushing device's own actor.
pub(super) fn read_header(pushed: &PushChange, actor: &str, limits: &PushLimits) -> Result<ChangeHeader, Verdict> {
    let header = match inspect_change(&pushed.bytes, &limits.change) {
        Ok(header) => header,
        Err(ChangeRefusal::TooLarge(m)) => {
            return Err(Verdict::Refuse { hash: String::new(), status: reject(RejectCode::TooLarge, m) });
        }
        Err(ChangeRefusal::Malformed(m)) => {
            return Err(Verdict::Refuse { hash: String::new(), status: reject(RejectCode::CorruptChange, m) });
        }
    };
    let signer = header.actor.to_hex_string();
    if signer != actor {
        let message = format!("change is signed by actor {signer}, not by this device");
        return Err(Verdict::Refuse {
            hash: header.hash.to_string(),
            status: reject(RejectCode::ForgedActor, message),
        });
    }
    Ok(header)
}

/// The checks that need no document: a stored hash is a duplicate; a change past this
/// request's op budget waits for the next round (the budget is spent on every change that
/// passes); a change stamped outside the plausible window is refused. `None`: go on to
/// [`decide`] with the document.
pub(super) fn admit(
    header: &ChangeHeader,
    stored: bool,
    limits: &PushLimits,
    ops_budget: &mut u64,
    now: Millis,
) -> Option<Verdict> {
    let hash = header.hash.to_string();
    if stored {
        return Some(Verdict::Duplicate { hash });
    }
    if header.ops > *ops_budget && *ops_budget < limits.max_request_ops {
        return Some(Verdict::Defer);
    }
    *ops_budget = ops_budget.saturating_sub(header.ops);
    if let Err(refusal) = check_time(header.time, now) {
        return Some(Verdict::Refuse { hash, status: context_reject(refusal) });
    }
    None
}

/// Decides a change that [`admit`] let through, against `work`, the document it writes as the
/// server holds it (`Err` when the stored copy does not load).
pub(super) fn decide(
    pushed: &PushChange,
    header: ChangeHeader,
    work: Result<&Working, &DocError>,
    pusher: &Pusher<'_>,
    proof: Proof,
) -> Verdict {
    let hash = header.hash.to_string();
    let refuse = |status: AckStatus| Verdict::Refuse { hash: hash.clone(), status };
    // A stored document automerge cannot load: `gridlink-server check --repair` rebuilds it.
    // Until then nothing is added to it.
    let work = match work {
        Ok(work) => work,
        Err(_) => return refuse(reject(RejectCode::InvalidDocument, DAMAGED)),
    };
    // Already inside the document (for instance merged in by the import): nothing to do.
    if work.index.contains(&header.hash) {
        return Verdict::Duplicate { hash };
    }
    if let Err(refusal) = work.index.check(&header) {
        return refuse(context_reject(refusal));
    }
    // A stored document that no longer reads (possible only through a merge) is treated as
    // new, so the author must still cover the place the document says it is in.
    let before = match (&work.accepted, work.exists) {
        (Some(accepted), _) => Some(accepted.clone()),
        (None, true) => doc::guarded("reading the stored document", || doc::read_any(&work.doc)).ok(),
        (None, false) => None,
    };
    // automerge's own parse and apply run only now, on bounded bytes, on a copy, with panics
    // contained: whatever still goes wrong fails this change alone.
    let applied = doc::guarded("applying the change", || {
        let change = doc::parse_change(&pushed.bytes)?;
        let mut candidate = work.doc.clone();
        candidate.apply_changes([change])?;
        Ok(candidate)
    });
    let mut candidate = match applied {
        Ok(candidate) => candidate,
        Err(e) => return refuse(reject(RejectCode::CorruptChange, format!("change does not apply: {e}"))),
    };
    let after = match doc::guarded("reading the document", || doc::read_any(&candidate)) {
        Ok(after) => after,
        Err(e) => return refuse(reject(RejectCode::InvalidDocument, e.to_string())),
    };
    if after.doc_id() != pushed.doc {
        let message = format!("the change writes document {}, but was pushed for {}", after.doc_id(), pushed.doc);
        return refuse(reject(RejectCode::InvalidDocument, message));
    }
    // The validator, with the one exception that needs the documents themselves: a
    // supervisor's change that only picks among concurrent values (shared::conflicts).
    let check = |principal: &Principal| check_edit_or_pick(&work.doc, before.as_ref(), &candidate, &after, principal);
    if let Err(ValidationError { code, message }) = check(pusher.principal) {
        let within_grace = code == RejectCode::OutOfScope
            && pusher.with_grace(header.time).is_some_and(|former| check(&former).is_ok());
        if !within_grace {
            return refuse(reject(code, message));
        }
    }
    // What a fresh phone will do with this document: save it and load the saved bytes. A
    // change that survives the apply but breaks that is refused here, before it is stored.
    // Usually the executor proves this once per document, on the bytes it stores, and decides
    // again change by change only when that fails (`push::execute`).
    if let Proof::PerChange(loads) = proof
        && let Err(e) = doc::guarded("saving and reloading the document", || loads(&candidate.save()))
    {
        return refuse(not_loadable(&e));
    }
    // Log the change wherever the document was or now is, so devices that lose sight of a
    // document still see the change that moved it.
    let mut log_scopes: Vec<Scope> = after.scopes();
    if let Some(before) = &before {
        log_scopes.extend(before.scopes());
    }
    log_scopes.sort();
    log_scopes.dedup();
    Verdict::Accept(Box::new(Accepted { hash, header, candidate, after, log_scopes }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridlink_shared::codes::Role;
    use gridlink_shared::{GridId, HouseholdFile, UserId};

    fn a_change(time: Millis) -> (PushChange, ChangeHeader) {
        let placement = gridlink_shared::Placement {
            street: gridlink_shared::StreetId::from_u128(1),
            community: gridlink_shared::CommunityId::from_u128(2),
            grid: GridId::from_u128(3),
            building: Some(gridlink_shared::BuildingId::from_u128(4)),
        };
        let file = HouseholdFile::new(
            gridlink_shared::HouseholdId::from_u128(9),
            placement,
            "滨湖小区7栋",
            "2",
            "302",
            "张桂兰",
            time,
        );
        let mut created = doc::create(&file, automerge::ActorId::from(vec![7u8; 16]), time).unwrap();
        let bytes = created.get_last_local_change().unwrap().raw_bytes().to_vec();
        let pushed = PushChange { doc: file.id.into(), bytes };
        let header = inspect_change(&pushed.bytes, &PushLimits::default().change).unwrap();
        (pushed, header)
    }

    #[test]
    fn a_stored_hash_is_a_duplicate_before_budget_or_clock_are_looked_at() {
        let now = 1_800_000_000_000;
        let (_, header) = a_change(now + 5 * 365 * gridlink_shared::time::DAY_MS);
        let mut budget = 0;
        assert!(matches!(
            admit(&header, true, &PushLimits::default(), &mut budget, now),
            Some(Verdict::Duplicate { .. })
        ));
        assert!(matches!(
            admit(&header, false, &PushLimits::default(), &mut 1_000_000, now),
            Some(Verdict::Refuse { status: AckStatus::Rejected { code: RejectCode::BadTime, .. }, .. })
        ));
    }

    #[test]
    fn past_the_op_budget_a_change_waits_unless_it_is_the_first() {
        let now = 1_800_000_000_000;
        let (_, header) = a_change(now);
        let limits = PushLimits { max_request_ops: header.ops + 1, ..PushLimits::default() };
        let mut budget = limits.max_request_ops;
        assert!(admit(&header, false, &limits, &mut budget, now).is_none(), "the first change always fits");
        assert_eq!(budget, 1);
        assert!(matches!(admit(&header, false, &limits, &mut budget, now), Some(Verdict::Defer)));
        assert_eq!(budget, 1, "a deferred change spends nothing");
    }

    #[test]
    fn a_lost_scope_covers_only_changes_made_before_it_was_lost() {
        let grid = Scope::Grid(GridId::from_u128(3));
        let principal =
            Principal { user: UserId::from_u128(5), name: "李建国".into(), role: Role::GridWorker, scopes: vec![] };
        let lost = [LostScope { scope: grid, removed_at: 1_000 }];
        let pusher = Pusher { principal: &principal, lost: &lost };
        assert_eq!(pusher.with_grace(999).map(|p| p.scopes), Some(vec![grid]));
        assert_eq!(pusher.with_grace(1_001), None);

        let (pushed, header) = a_change(900);
        let verdict =
            decide(&pushed, header.clone(), Ok(&Working::new_document()), &pusher, Proof::PerChange(phone_loads));
        match verdict {
            Verdict::Accept(accepted) => assert!(accepted.log_scopes.contains(&grid), "logged in the lost grid"),
            Verdict::Refuse { status, .. } => panic!("written before the move, yet refused: {status:?}"),
            _ => panic!("written before the move, yet not accepted"),
        }
        let (late, late_header) = a_change(1_100);
        let none = Pusher { principal: &principal, lost: &[] };
        assert!(matches!(
            decide(&late, late_header, Ok(&Working::new_document()), &none, Proof::PerChange(phone_loads)),
            Verdict::Refuse { status: AckStatus::Rejected { code: RejectCode::OutOfScope, .. }, .. }
        ));
    }
}
