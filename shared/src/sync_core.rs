//! The device's half of a sync round as pure decisions. Given what the device holds (the
//! cursors it sent, the documents it has set aside, who it is) and one server response,
//! [`plan_apply`] returns the effects to perform, in order; [`next_round`] decides whether
//! another round is needed. No I/O, no clock, no randomness: the phone's SQLite executor
//! (`gridlink-client`) and the in-memory device of the server's tests and of the simulation
//! carry the effects out, so every one of them applies a page the same way.
//!
//! Effects point into the response (`repair`, `items` are indices) instead of copying bytes.
//!
//! Divergence: for every scope whose digest the server sent, [`plan_apply`] ends with a
//! [`Effect::CompareDigest`]; the executor computes its own digest after the round's other
//! effects and lets [`compare_digest`] judge it. A mismatch makes the next request carry a
//! verify list; the answer turns into [`Effect::Reconcile`] (server copy, with the device's own
//! changes it lacks queued again) and [`Effect::Forget`] per document.

use std::collections::{BTreeMap, BTreeSet};

use crate::digest::ScopeDigest;
use crate::ids::DocId;
use crate::org::{Principal, Scope};
use crate::protocol::{
    AckStatus, Cursor, ProtocolError, PullItem, SyncRequest, SyncResponse, check_page, resolve_acks,
};
use crate::validate::RejectCode;

/// What the decisions need to know about the device.
#[derive(Clone, Copy, Debug)]
pub struct DeviceView<'a> {
    /// Documents set aside as damaged: pulled items for them wait for the server's whole copy.
    pub quarantined: &'a BTreeSet<DocId>,
    /// Who the device believes it is (scopes, name, role), before this response.
    pub principal: &'a Principal,
    /// A purge of documents outside the held scopes is still waiting for unsent changes.
    pub purge_pending: bool,
}

/// One thing to do to the device's store. Performed in order, all in one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The server holds the change (accepted now, or already): it leaves the outbox.
    Sent { hash: String, accepted: bool },
    /// The server refused the change: move it from the outbox to the rejected list with its
    /// reason. Never dropped.
    KeepAside { hash: String, doc: DocId, code: RejectCode, message: String },
    /// Replace the document by the server's copy (`response.repairs[repair]`) with the
    /// device's unsent changes applied on top; on success it is no longer wanted or set aside.
    Restore { doc: DocId, repair: usize },
    /// Ask for the server's whole copy of the document in the next round.
    WantRepair { doc: DocId },
    /// Apply these pulled items (indices into `response.items`, in page order) to the
    /// document, one load and one save.
    Pull { doc: DocId, items: Vec<usize> },
    /// Pulled items for a document set aside: skipped, the whole copy is asked for instead.
    AwaitRepair { doc: DocId },
    /// The scope was taken from the device: forget its cursor.
    DropScope { scope: Scope },
    /// Move the scope's cursor.
    SetCursor { scope: Scope, cursor: Cursor },
    /// A new scope with no cursor in the response: start it from the beginning.
    StartScope { scope: Scope },
    /// Store `response.reference` (roster and its version).
    StoreReference,
    /// The device's principal after this response.
    SetPrincipal(Principal),
    /// Delete the documents no held scope covers (those with unsent changes are kept aside).
    PurgeUnheld,
    /// A verify answer found the device's copy different from the server's
    /// (`response.repairs[repair]`): queue again every change signed by this device that the
    /// server copy lacks (before its other unsent changes of the document), then replace the
    /// document by the server copy with all unsent changes on top. Nothing the device wrote is
    /// lost: what the server lost goes back to it in the next round.
    Reconcile { doc: DocId, repair: usize },
    /// A verify answer says the server does not hold this document for the device: queue again
    /// the device's own changes of it (the server may have lost them), keep it if it then has
    /// unsent changes, else delete it.
    Forget { doc: DocId },
    /// The verify list of this scope was answered whole (or declined by the server): no verify
    /// is pending for it any more.
    Verified { scope: Scope },
    /// The server's digest of a scope whose page is complete: compute the device's own digest
    /// now (after every other effect) and judge it with [`compare_digest`].
    CompareDigest { scope: Scope, server: ScopeDigest },
}

/// The effects of one response, with the counts that do not depend on performing them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoundPlan {
    pub effects: Vec<Effect>,
    /// Changes pushed in the request.
    pub pushed: usize,
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub scopes_added: Vec<Scope>,
    pub scopes_removed: Vec<Scope>,
}

/// Decides what one response does to the device. The page and the acks are checked first
/// ([`check_page`], [`resolve_acks`]): a page with a gap or a foreign scope, or acks that do
/// not fit the changes pushed, are refused whole and nothing is applied.
pub fn plan_apply(
    device: DeviceView<'_>,
    request: &SyncRequest,
    response: &SyncResponse,
) -> Result<RoundPlan, ProtocolError> {
    check_page(&request.cursors, response)?;
    let acks = resolve_acks(request, response)?;
    let mut plan = RoundPlan { pushed: request.changes.len(), ..RoundPlan::default() };
    let effects = &mut plan.effects;

    let mut rejected_docs: BTreeSet<DocId> = BTreeSet::new();
    for ack in &acks {
        match &ack.status {
            AckStatus::Accepted => {
                plan.accepted += 1;
                effects.push(Effect::Sent { hash: ack.hash.clone(), accepted: true });
            }
            AckStatus::Duplicate => {
                plan.duplicates += 1;
                effects.push(Effect::Sent { hash: ack.hash.clone(), accepted: false });
            }
            AckStatus::Rejected { code, message } => {
                plan.rejected += 1;
                effects.push(Effect::KeepAside {
                    hash: ack.hash.clone(),
                    doc: ack.doc,
                    code: *code,
                    message: message.clone(),
                });
                rejected_docs.insert(ack.doc);
            }
        }
    }

    // Verify answers count only for scopes this request asked about, and only for documents
    // it listed or the server holds for it (the copies in `repairs`).
    let asked: BTreeMap<Scope, BTreeSet<DocId>> =
        request.verify.iter().map(|v| (v.scope, v.docs.iter().map(|d| d.doc).collect())).collect();
    let mut differing: BTreeSet<DocId> = BTreeSet::new();
    let mut absent: BTreeSet<DocId> = BTreeSet::new();
    let mut verified: Vec<Scope> = Vec::new();
    for answer in &response.integrity.verified {
        let Some(listed) = asked.get(&answer.scope) else { continue };
        differing.extend(answer.differing.iter().copied());
        absent.extend(answer.absent.iter().filter(|doc| listed.contains(doc)).copied());
        if answer.complete {
            verified.push(answer.scope);
        }
    }
    // A list the server declined (over its bounds, a scope no longer held) is not retried in
    // every round: the next comparison decides again.
    let answered: BTreeSet<Scope> = response.integrity.verified.iter().map(|a| a.scope).collect();
    verified.extend(asked.keys().filter(|scope| !answered.contains(scope)).copied());

    // A refused change may have been merged into the local copy: the server's copy (plus the
    // rest of the outbox) puts the document back where the server has it. A copy sent because
    // it differed keeps the device's own changes the server lacks.
    for (index, repair) in response.repairs.iter().enumerate() {
        if differing.contains(&repair.doc) && !rejected_docs.contains(&repair.doc) {
            effects.push(Effect::Reconcile { doc: repair.doc, repair: index });
        } else {
            effects.push(Effect::Restore { doc: repair.doc, repair: index });
        }
        rejected_docs.remove(&repair.doc);
        absent.remove(&repair.doc);
    }
    effects.extend(rejected_docs.into_iter().map(|doc| Effect::WantRepair { doc }));
    effects.extend(absent.into_iter().map(|doc| Effect::Forget { doc }));
    effects.extend(verified.into_iter().map(|scope| Effect::Verified { scope }));

    // Pulled items grouped per document, in page order. Echoes are the device's own changes;
    // a document repaired in this response already has its pulled changes (the server wrote
    // both at the same moment).
    let repaired: BTreeSet<DocId> = response.repairs.iter().map(|r| r.doc).collect();
    let mut pulled: BTreeMap<DocId, Vec<usize>> = BTreeMap::new();
    for (index, item) in response.items.iter().enumerate() {
        if !matches!(item, PullItem::Echo { .. }) && !repaired.contains(&item.doc()) {
            pulled.entry(item.doc()).or_default().push(index);
        }
    }
    for (doc, items) in pulled {
        if device.quarantined.contains(&doc) {
            effects.push(Effect::AwaitRepair { doc });
        } else {
            effects.push(Effect::Pull { doc, items });
        }
    }

    // Cursors and scopes.
    let mut principal = device.principal.clone();
    for scope in &response.scopes_removed {
        effects.push(Effect::DropScope { scope: *scope });
        principal.scopes.retain(|s| s != scope);
        plan.scopes_removed.push(*scope);
    }
    for scope in &response.scopes_added {
        if !principal.scopes.contains(scope) {
            principal.scopes.push(*scope);
        }
        plan.scopes_added.push(*scope);
    }
    for (scope, cursor) in &response.cursors {
        if !response.scopes_removed.contains(scope) {
            effects.push(Effect::SetCursor { scope: *scope, cursor: *cursor });
        }
    }
    for scope in &response.scopes_added {
        if !response.cursors.contains_key(scope) {
            effects.push(Effect::StartScope { scope: *scope });
        }
    }
    if let Some(reference) = &response.reference {
        effects.push(Effect::StoreReference);
        if let Some(me) = reference.roster.staff.iter().find(|s| s.id == principal.user) {
            principal.name = me.name.clone();
            principal.role = me.role;
        }
    }
    effects.push(Effect::SetPrincipal(principal));
    if !response.scopes_removed.is_empty() || device.purge_pending {
        effects.push(Effect::PurgeUnheld);
    }
    // Last: the device's digest is only comparable once everything above is applied.
    for (scope, server) in &response.integrity.digests {
        if response.cursors.contains_key(scope) && !response.scopes_removed.contains(scope) {
            effects.push(Effect::CompareDigest { scope: *scope, server: *server });
        }
    }
    Ok(plan)
}

/// What the device has in flight when it compares a scope's digest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InFlight {
    /// Unsent changes of documents of the scope (or of documents it cannot place yet).
    pub unsent: usize,
    /// Documents whose server copy is wanted (refused changes, missing history).
    pub repairs_wanted: usize,
    /// Documents set aside as damaged.
    pub set_aside: usize,
    /// A verify list for the scope is still waiting to be answered whole.
    pub verify_pending: bool,
}

/// The outcome of comparing a scope's digests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Comparison {
    /// The device holds exactly the server's documents, with the same heads.
    Match,
    /// They differ: verify in the next round.
    Mismatch,
    /// Not comparable yet: something is still in flight, and the copies differ legitimately.
    NotCaughtUp,
}

/// Judges a scope: only a device with nothing in flight can be held to the server's digest.
pub fn compare_digest(local: ScopeDigest, server: ScopeDigest, in_flight: InFlight) -> Comparison {
    if in_flight.unsent > 0 || in_flight.repairs_wanted > 0 || in_flight.set_aside > 0 || in_flight.verify_pending {
        Comparison::NotCaughtUp
    } else if local == server {
        Comparison::Match
    } else {
        Comparison::Mismatch
    }
}

/// Whether a repair needs another round of this sync: changes were queued again (they go to
/// the server now), or a scope mismatched and has not been verified during this sync yet.
pub fn repair_round(requeued: usize, verify_due: usize) -> bool {
    requeued > 0 || verify_due > 0
}

/// Whether the device should send another round: the server has more, or a batch-limited
/// outbox is still shrinking (a round that pushed and left changes behind). An outbox that
/// did not shrink (everything refused, or deferred by the server) waits for the next sync.
pub fn next_round(more: bool, pushed: usize, unsent_before: usize, unsent_after: usize) -> bool {
    more || (pushed > 0 && unsent_after > 0 && unsent_after < unsent_before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::Role;
    use crate::digest::DocEntry;
    use crate::doc::DocType;
    use crate::ids::{GridId, UserId};
    use crate::protocol::{
        Ack, AckByte, CompactAcks, DocSnapshot, Integrity, PROTOCOL_VERSION, PushChange, Rejection, VerifyAnswer,
        VerifyDoc, VerifyScope,
    };

    fn principal(scopes: Vec<Scope>) -> Principal {
        Principal { user: UserId::from_u128(7), name: "王秀英".into(), role: Role::GridWorker, scopes }
    }

    fn request(cursors: BTreeMap<Scope, Cursor>) -> SyncRequest {
        SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursors,
            changes: vec![],
            page_bytes: None,
            repair: vec![],
            reference_version: None,
            device_time: 0,
            health: None,
            verify: vec![],
            compact_acks: false,
        }
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

    fn change(scope: Scope, seq: u64, doc: u128) -> PullItem {
        PullItem::Change {
            scope,
            seq,
            doc: DocId::from_u128(doc),
            doc_type: DocType::Household,
            bytes: vec![seq as u8],
        }
    }

    #[test]
    fn a_page_with_a_gap_yields_no_effects_at_all() {
        let grid = Scope::Grid(GridId::from_u128(3));
        let me = principal(vec![grid]);
        let view = DeviceView { quarantined: &BTreeSet::new(), principal: &me, purge_pending: false };
        let sent = request(BTreeMap::from([(grid, Cursor::Seq { seq: 4 })]));
        let gap =
            response(vec![change(grid, 5, 1), change(grid, 7, 2)], BTreeMap::from([(grid, Cursor::Seq { seq: 7 })]));
        assert_eq!(plan_apply(view, &sent, &gap), Err(ProtocolError::Gap { scope: grid, expected: 6, got: 7 }));
    }

    #[test]
    fn items_group_per_document_in_page_order_and_set_aside_documents_wait_for_repair() {
        let grid = Scope::Grid(GridId::from_u128(3));
        let me = principal(vec![grid]);
        let quarantined = BTreeSet::from([DocId::from_u128(2)]);
        let view = DeviceView { quarantined: &quarantined, principal: &me, purge_pending: false };
        let sent = request(BTreeMap::from([(grid, Cursor::Seq { seq: 0 })]));
        let echo = PullItem::Echo { scope: grid, seq: 3, doc: DocId::from_u128(1) };
        let page = response(
            vec![change(grid, 1, 1), change(grid, 2, 2), echo, change(grid, 4, 1)],
            BTreeMap::from([(grid, Cursor::Seq { seq: 4 })]),
        );
        let plan = plan_apply(view, &sent, &page).unwrap();
        assert!(plan.effects.contains(&Effect::Pull { doc: DocId::from_u128(1), items: vec![0, 3] }));
        assert!(plan.effects.contains(&Effect::AwaitRepair { doc: DocId::from_u128(2) }));
        assert!(plan.effects.contains(&Effect::SetCursor { scope: grid, cursor: Cursor::Seq { seq: 4 } }));
        assert!(!plan.effects.contains(&Effect::PurgeUnheld));
    }

    #[test]
    fn refused_changes_are_kept_aside_and_want_a_repair_unless_one_came() {
        let grid = Scope::Grid(GridId::from_u128(3));
        let me = principal(vec![grid]);
        let view = DeviceView { quarantined: &BTreeSet::new(), principal: &me, purge_pending: false };
        let mut sent = request(BTreeMap::from([(grid, Cursor::Start)]));
        sent.changes = (1..=3).map(|doc| PushChange { doc: DocId::from_u128(doc), bytes: vec![] }).collect();
        let mut page = response(vec![], BTreeMap::new());
        let refused = |doc: u128, hash: &str| Ack {
            doc: DocId::from_u128(doc),
            hash: hash.into(),
            status: AckStatus::Rejected { code: RejectCode::OutOfScope, message: "不在您的网格".into() },
        };
        page.acks = vec![
            refused(1, "aa"),
            refused(2, "bb"),
            Ack { doc: DocId::from_u128(3), hash: "cc".into(), status: AckStatus::Accepted },
        ];
        page.repairs = vec![DocSnapshot { doc: DocId::from_u128(2), doc_type: DocType::Household, bytes: vec![1] }];
        let plan = plan_apply(view, &sent, &page).unwrap();
        assert_eq!((plan.accepted, plan.rejected), (1, 2));
        assert!(plan.effects.contains(&Effect::WantRepair { doc: DocId::from_u128(1) }));
        assert!(!plan.effects.contains(&Effect::WantRepair { doc: DocId::from_u128(2) }));
        assert!(plan.effects.contains(&Effect::Restore { doc: DocId::from_u128(2), repair: 0 }));
        assert!(plan.effects.contains(&Effect::Sent { hash: "cc".into(), accepted: true }));
    }

    #[test]
    fn compact_acks_name_each_change_by_the_devices_own_copy_and_bad_ones_change_nothing() {
        use automerge::transaction::Transactable;
        let grid = Scope::Grid(GridId::from_u128(3));
        let me = principal(vec![grid]);
        let view = DeviceView { quarantined: &BTreeSet::new(), principal: &me, purge_pending: false };
        let mut doc = automerge::AutoCommit::new();
        let mut changes = Vec::new();
        for (i, notes) in ["独居老人，已上门", "家属在场", "需跟进低保申请"].into_iter().enumerate()
        {
            doc.put(automerge::ROOT, "notes", notes).unwrap();
            doc.commit();
            let change = doc.get_last_local_change().unwrap();
            changes.push((
                change.hash().to_string(),
                PushChange { doc: DocId::from_u128(i as u128 + 1), bytes: change.raw_bytes().to_vec() },
            ));
        }
        let mut sent = request(BTreeMap::from([(grid, Cursor::Start)]));
        sent.compact_acks = true;
        sent.changes = changes.iter().map(|(_, c)| c.clone()).collect();
        let mut page = response(vec![], BTreeMap::new());
        page.compact_acks = Some(CompactAcks {
            status: vec![AckByte::Duplicate as u8, AckByte::Rejected as u8, AckByte::Deferred as u8],
            rejected: vec![Rejection { index: 1, code: RejectCode::OutOfScope, message: "不在您的网格".into() }],
        });
        let plan = plan_apply(view, &sent, &page).unwrap();
        assert_eq!((plan.pushed, plan.accepted, plan.duplicates, plan.rejected), (3, 0, 1, 1));
        assert!(plan.effects.contains(&Effect::Sent { hash: changes[0].0.clone(), accepted: false }));
        assert!(plan.effects.contains(&Effect::KeepAside {
            hash: changes[1].0.clone(),
            doc: DocId::from_u128(2),
            code: RejectCode::OutOfScope,
            message: "不在您的网格".into()
        }));
        assert!(plan.effects.contains(&Effect::WantRepair { doc: DocId::from_u128(2) }));
        let touched = |hash: &str| {
            plan.effects
                .iter()
                .any(|e| matches!(e, Effect::Sent { hash: h, .. } | Effect::KeepAside { hash: h, .. } if h == hash))
        };
        assert!(!touched(&changes[2].0), "a deferred change stays unsent");

        page.compact_acks.as_mut().unwrap().status.pop();
        assert_eq!(plan_apply(view, &sent, &page), Err(ProtocolError::AckCount { pushed: 3, got: 2 }));
    }

    #[test]
    fn a_removed_scope_drops_its_cursor_leaves_the_principal_and_purges() {
        let (kept, lost) = (Scope::Grid(GridId::from_u128(3)), Scope::Grid(GridId::from_u128(4)));
        let me = principal(vec![kept, lost]);
        let view = DeviceView { quarantined: &BTreeSet::new(), principal: &me, purge_pending: false };
        let sent = request(BTreeMap::from([(kept, Cursor::Seq { seq: 2 }), (lost, Cursor::Seq { seq: 9 })]));
        let mut page =
            response(vec![], BTreeMap::from([(kept, Cursor::Seq { seq: 2 }), (lost, Cursor::Seq { seq: 9 })]));
        page.scopes_removed = vec![lost];
        let plan = plan_apply(view, &sent, &page).unwrap();
        assert!(plan.effects.contains(&Effect::DropScope { scope: lost }));
        assert!(!plan.effects.iter().any(|e| matches!(e, Effect::SetCursor { scope, .. } if *scope == lost)));
        assert!(plan.effects.contains(&Effect::SetPrincipal(principal(vec![kept]))));
        assert_eq!(plan.effects.last(), Some(&Effect::PurgeUnheld));
    }

    #[test]
    fn another_round_while_the_server_has_more_or_the_outbox_shrinks() {
        assert!(next_round(true, 0, 0, 0));
        assert!(next_round(false, 500, 900, 400));
        assert!(!next_round(false, 500, 500, 500), "nothing moved: wait for the next sync");
        assert!(!next_round(false, 3, 3, 0));
        assert!(!next_round(false, 0, 7, 7));
    }

    #[test]
    fn a_complete_scope_is_compared_last_and_only_with_nothing_in_flight() {
        let (kept, lost) = (Scope::Grid(GridId::from_u128(3)), Scope::Grid(GridId::from_u128(4)));
        let me = principal(vec![kept, lost]);
        let view = DeviceView { quarantined: &BTreeSet::new(), principal: &me, purge_pending: false };
        let sent = request(BTreeMap::from([(kept, Cursor::Seq { seq: 2 }), (lost, Cursor::Seq { seq: 9 })]));
        let mut page = response(vec![], BTreeMap::from([(kept, Cursor::Seq { seq: 2 })]));
        page.scopes_removed = vec![lost];
        let digest = ScopeDigest::of([&DocEntry([1; 32])]);
        page.integrity.digests = BTreeMap::from([(kept, digest), (lost, digest)]);
        let plan = plan_apply(view, &sent, &page).unwrap();
        assert_eq!(plan.effects.last(), Some(&Effect::CompareDigest { scope: kept, server: digest }));
        assert!(!plan.effects.iter().any(|e| matches!(e, Effect::CompareDigest { scope, .. } if *scope == lost)));

        let other = ScopeDigest::of([&DocEntry([2; 32])]);
        assert_eq!(compare_digest(digest, digest, InFlight::default()), Comparison::Match);
        assert_eq!(compare_digest(digest, other, InFlight::default()), Comparison::Mismatch);
        for in_flight in [
            InFlight { unsent: 1, ..InFlight::default() },
            InFlight { repairs_wanted: 1, ..InFlight::default() },
            InFlight { set_aside: 1, ..InFlight::default() },
            InFlight { verify_pending: true, ..InFlight::default() },
        ] {
            assert_eq!(compare_digest(digest, other, in_flight), Comparison::NotCaughtUp, "{in_flight:?}");
        }
    }

    #[test]
    fn a_verify_answer_reconciles_differing_copies_and_forgets_only_listed_absent_documents() {
        let grid = Scope::Grid(GridId::from_u128(3));
        let stranger = Scope::Grid(GridId::from_u128(9));
        let me = principal(vec![grid]);
        let view = DeviceView { quarantined: &BTreeSet::new(), principal: &me, purge_pending: false };
        let mut sent = request(BTreeMap::from([(grid, Cursor::Seq { seq: 2 })]));
        let listed = |n: u128| VerifyDoc { doc: DocId::from_u128(n), entry: DocEntry([n as u8; 32]) };
        sent.verify = vec![VerifyScope { scope: grid, docs: vec![listed(1), listed(2)] }];
        let mut page = response(vec![], BTreeMap::from([(grid, Cursor::Seq { seq: 2 })]));
        page.repairs = vec![
            DocSnapshot { doc: DocId::from_u128(1), doc_type: DocType::Household, bytes: vec![1] },
            DocSnapshot { doc: DocId::from_u128(5), doc_type: DocType::Household, bytes: vec![5] },
        ];
        page.integrity.verified = vec![
            VerifyAnswer {
                scope: grid,
                differing: vec![DocId::from_u128(1), DocId::from_u128(5)],
                absent: vec![DocId::from_u128(2), DocId::from_u128(77)],
                complete: true,
            },
            VerifyAnswer { scope: stranger, differing: vec![], absent: vec![DocId::from_u128(1)], complete: true },
        ];
        let plan = plan_apply(view, &sent, &page).unwrap();
        assert!(plan.effects.contains(&Effect::Reconcile { doc: DocId::from_u128(1), repair: 0 }));
        assert!(plan.effects.contains(&Effect::Reconcile { doc: DocId::from_u128(5), repair: 1 }), "a missing one");
        assert!(plan.effects.contains(&Effect::Forget { doc: DocId::from_u128(2) }));
        assert!(!plan.effects.contains(&Effect::Forget { doc: DocId::from_u128(77) }), "never listed: ignored");
        assert!(plan.effects.contains(&Effect::Verified { scope: grid }));
        assert!(!plan.effects.contains(&Effect::Verified { scope: stranger }), "never asked: ignored");

        let declined = response(vec![], BTreeMap::from([(grid, Cursor::Seq { seq: 2 })]));
        let plan = plan_apply(view, &sent, &declined).unwrap();
        assert!(plan.effects.contains(&Effect::Verified { scope: grid }), "not retried in every round");
        assert!(!plan.effects.iter().any(|e| matches!(e, Effect::Forget { .. } | Effect::Reconcile { .. })));
        assert!(repair_round(1, 0) && repair_round(0, 1) && !repair_round(0, 0));
    }
}
