//! Property tests: concurrent offline edits, merged in any order, give identical documents and
//! identical derived state (case status, due visits) on every replica, and lose no insert.

mod common;

use automerge::{ActorId, AutoCommit};
use common::*;
use gridlink_shared::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum HouseholdOp {
    SetPhone(u8),
    SetHead(u8),
    SetNotes(u8),
    AddVisit { outcome: u8, days_ago: u8 },
    AddResident(u8),
    RenameFirstResident(u8),
    AddTag(u8),
    RemoveTag(u8),
    MoveOut,
}

const HEADS: &[&str] = &["张桂兰", "李建国", "王秀英", "刘德胜", "陈美玲"];

fn household_op() -> impl Strategy<Value = HouseholdOp> {
    prop_oneof![
        any::<u8>().prop_map(HouseholdOp::SetPhone),
        any::<u8>().prop_map(HouseholdOp::SetHead),
        any::<u8>().prop_map(HouseholdOp::SetNotes),
        (0u8..3, 0u8..60).prop_map(|(outcome, days_ago)| HouseholdOp::AddVisit { outcome, days_ago }),
        any::<u8>().prop_map(HouseholdOp::AddResident),
        any::<u8>().prop_map(HouseholdOp::RenameFirstResident),
        (0u8..4).prop_map(HouseholdOp::AddTag),
        (0u8..4).prop_map(HouseholdOp::RemoveTag),
        Just(HouseholdOp::MoveOut),
    ]
}

fn apply_household_op(file: &mut HouseholdFile, op: &HouseholdOp) {
    match op {
        HouseholdOp::SetPhone(n) => file.phone = format!("1380711{:04}", n),
        HouseholdOp::SetHead(n) => file.head = HEADS[usize::from(*n) % HEADS.len()].to_string(),
        HouseholdOp::SetNotes(n) => file.notes = format!("走访记录第{n}条"),
        HouseholdOp::AddVisit { outcome, days_ago } => {
            let v = Visit {
                id: VisitId::new(),
                visitor: UserId::from_u128(100),
                visitor_name: "李秀英".into(),
                at: NOW - i64::from(*days_ago) * 86_400_000,
                recorded_at: NOW,
                outcome: VisitOutcome::ALL[usize::from(*outcome)],
                notes: "身体状况良好".into(),
                needs_found: vec![],
                follow_up: None,
                residents_present: vec![],
            };
            file.visits.insert(v.id, v);
        }
        HouseholdOp::AddResident(n) => {
            let r = Resident {
                id: ResidentId::new(),
                name: format!("{}{}", HEADS[usize::from(*n) % HEADS.len()], n),
                sex: Sex::Male,
                birth_year: 1950 + u16::from(*n % 60),
                relation: "子女".into(),
                phone: String::new(),
                id_number: String::new(),
                flags: Default::default(),
            };
            file.residents.insert(r.id, r);
        }
        HouseholdOp::RenameFirstResident(n) => {
            if let Some(r) = file.residents.values_mut().next() {
                r.name = format!("{}{}", HEADS[usize::from(*n) % HEADS.len()], n);
            }
        }
        HouseholdOp::AddTag(t) => {
            let tag = MustVisitTag::ALL[usize::from(*t)];
            file.tags.entry(tag).or_insert(TagEntry {
                since: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                added_by: UserId::from_u128(100),
                note: String::new(),
            });
        }
        HouseholdOp::RemoveTag(t) => {
            file.tags.remove(&MustVisitTag::ALL[usize::from(*t)]);
        }
        HouseholdOp::MoveOut => {
            file.status = HouseholdStatus::MovedOut;
            file.moved_out_on = chrono::NaiveDate::from_ymd_opt(2026, 11, 20);
        }
    }
}

/// Forks `base` once per op list, applies each list on its own replica with its own actor,
/// then merges every replica with all the others, each in its own order.
fn converge<T: GridDocument>(
    base: &mut AutoCommit,
    op_lists: &[Vec<impl Fn(&mut T)>],
    orders: &[Vec<usize>],
) -> Vec<AutoCommit> {
    let mut replicas: Vec<AutoCommit> = op_lists.iter().map(|_| base.fork().with_actor(ActorId::random())).collect();
    for (replica, ops) in replicas.iter_mut().zip(op_lists) {
        for op in ops {
            let mut value: T = doc::read(replica).unwrap();
            op(&mut value);
            doc::update(replica, &value, "edit", NOW).unwrap();
        }
    }
    let snapshots: Vec<AutoCommit> = replicas.iter_mut().map(|r| r.fork()).collect();
    for (i, replica) in replicas.iter_mut().enumerate() {
        for &j in &orders[i] {
            let mut other = snapshots[j].clone();
            replica.merge(&mut other).unwrap();
        }
    }
    replicas
}

fn orders_strategy(n: usize) -> impl Strategy<Value = Vec<Vec<usize>>> {
    proptest::collection::vec(Just((0..n).collect::<Vec<_>>()).prop_shuffle(), n)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_household_edits_converge(
        (op_lists, orders) in (2usize..4).prop_flat_map(|n| (
            proptest::collection::vec(proptest::collection::vec(household_op(), 0..6), n),
            orders_strategy(n),
        )),
    ) {
        let mut start = household();
        apply_household_op(&mut start, &HouseholdOp::AddResident(1));
        let mut base = doc::create(&start, ActorId::random(), NOW).unwrap();
        let closures: Vec<Vec<_>> = op_lists
            .iter()
            .map(|ops| ops.iter().cloned().map(|op| move |f: &mut HouseholdFile| apply_household_op(f, &op)).collect())
            .collect();
        let mut replicas = converge::<HouseholdFile>(&mut base, &closures, &orders);

        let expected_visits = op_lists.iter().flatten().filter(|op| matches!(op, HouseholdOp::AddVisit { .. })).count();
        let expected_residents = 1 + op_lists.iter().flatten().filter(|op| matches!(op, HouseholdOp::AddResident(_))).count();
        let first: HouseholdFile = doc::read(&replicas[0]).unwrap();
        let mut first_heads = replicas[0].get_heads();
        first_heads.sort();
        prop_assert_eq!(first.visits.len(), expected_visits, "no visit is lost in the merge");
        prop_assert_eq!(first.residents.len(), expected_residents, "no resident is lost in the merge");
        prop_assert!(validate::validate_document(&AnyDoc::Household(first.clone())).is_ok());
        let config = PolicyConfig::default();
        for replica in replicas.iter_mut().skip(1) {
            let other: HouseholdFile = doc::read(replica).unwrap();
            let mut heads = replica.get_heads();
            heads.sort();
            prop_assert_eq!(&heads, &first_heads);
            prop_assert_eq!(&other, &first);
            prop_assert_eq!(policy::visits_due(&other, NOW, &config), policy::visits_due(&first, NOW, &config));
        }
    }

    #[test]
    fn concurrent_case_timelines_converge_to_one_status(
        (action_lists, orders) in (2usize..5).prop_flat_map(|n| (
            proptest::collection::vec(proptest::collection::vec((0usize..8, 0i64..600), 0..6), n),
            orders_strategy(n),
        )),
    ) {
        let supervisor = principal(Role::Supervisor, vec![Scope::Community(placement().community)]);
        let start = case(CaseKind::MustArrive(MustArriveKind::Dispute), &supervisor, NOW - 3_600_000);
        let mut base = doc::create(&start, ActorId::random(), NOW).unwrap();
        let closures: Vec<Vec<_>> = action_lists
            .iter()
            .map(|list| {
                let supervisor = supervisor.clone();
                list.iter()
                    .map(move |(kind, minutes)| {
                        let supervisor = supervisor.clone();
                        let (kind, minutes) = (*kind, *minutes);
                        move |c: &mut CaseFile| {
                            let mut a = action(ActionKind::ALL[kind], &supervisor, NOW + minutes * 60_000);
                            if a.kind == ActionKind::Reassign {
                                a.to = Some(UserId::from_u128(7));
                                a.to_name = Some("王强".into());
                            }
                            c.push_action(a)
                        }
                    })
                    .collect()
            })
            .collect();
        let mut replicas = converge::<CaseFile>(&mut base, &closures, &orders);
        let first: CaseFile = doc::read(&replicas[0]).unwrap();
        let total: usize = action_lists.iter().map(Vec::len).sum();
        prop_assert_eq!(first.timeline.len(), total, "every action from every phone is kept");
        prop_assert!(validate::validate_document(&AnyDoc::Case(first.clone())).is_ok());
        for replica in replicas.iter_mut().skip(1) {
            let other: CaseFile = doc::read(replica).unwrap();
            prop_assert_eq!(other.status(), first.status());
            prop_assert_eq!(other.responsible(), first.responsible());
            let ids = |c: &CaseFile| c.ordered_timeline().iter().map(|a| a.id).collect::<Vec<_>>();
            prop_assert_eq!(ids(&other), ids(&first));
            prop_assert_eq!(&other, &first);
        }
        // Replaying the merged timeline's status machine by hand agrees with the derived status.
        let mut status = CaseStatus::Reported;
        for a in first.ordered_timeline() {
            if let Some(next) = case::transition(status, a.kind) {
                status = next;
            }
        }
        prop_assert_eq!(status, first.status());
    }
}

#[test]
fn a_later_causal_action_wins_even_with_a_slow_clock() {
    // Phone B's clock is an hour behind; it sees A's resolve, then reopens. Causal order (the
    // Lamport counter), not the wall clock, decides: the case ends reopened on every replica.
    let worker = grid_worker();
    let supervisor = principal(Role::Supervisor, vec![Scope::Community(placement().community)]);
    let start = case(CaseKind::Dispute, &worker, NOW - 7_200_000);
    let mut a = doc::create(&start, ActorId::random(), NOW).unwrap();
    let mut value: CaseFile = doc::read(&a).unwrap();
    value.push_action(action(ActionKind::Resolve, &worker, NOW));
    doc::update(&mut a, &value, "resolve", NOW).unwrap();
    let mut b = a.fork().with_actor(ActorId::random());
    let mut value: CaseFile = doc::read(&b).unwrap();
    value.push_action(action(ActionKind::Reopen, &supervisor, NOW - 3_600_000));
    doc::update(&mut b, &value, "reopen", NOW).unwrap();
    a.merge(&mut b).unwrap();
    let merged: CaseFile = doc::read(&a).unwrap();
    assert_eq!(merged.status(), CaseStatus::Accepted);
}
