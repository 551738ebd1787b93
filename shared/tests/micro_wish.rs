//! The micro-wish lifecycle (认领 → 已实现 → 致谢) and referrals (转介) of help requests to a
//! service outlet: status, validation refusals, figures, and old documents still hydrating.

mod common;

use common::*;
use gridlink_shared::figures::{GroupBy, Grouping, Period, case_figures};
use gridlink_shared::validate::*;
use gridlink_shared::*;

fn claim(by: &Principal, at: i64, claimant: ClaimantId, name: &str) -> Action {
    let mut a = action(ActionKind::Claim, by, at);
    a.claimant = Some(Claimant { id: claimant, name: name.to_string() });
    a
}

fn edit(before: &CaseFile, after: &CaseFile, by: &Principal) -> Result<(), ValidationError> {
    check_edit(Some(&AnyDoc::Case(before.clone())), &AnyDoc::Case(after.clone()), by)
}

#[test]
fn a_wish_is_claimed_fulfilled_and_thanked_and_the_status_says_so() {
    let worker = grid_worker();
    let mut wish = case(CaseKind::MicroWish, &worker, NOW);
    assert_eq!(CaseKind::MicroWish.status_label(wish.status(), Lang::Zh), "待认领");
    let member = ClaimantId::PartyMember(PartyMemberId::from_u128(7));
    for step in [
        claim(&worker, NOW + 1, member, "王建国"),
        action(ActionKind::Fulfil, &worker, NOW + 2),
        action(ActionKind::Thank, &worker, NOW + 3),
    ] {
        let before = wish.clone();
        wish.push_action(step);
        assert_eq!(edit(&before, &wish, &worker), Ok(()));
    }
    assert_eq!(wish.status(), CaseStatus::Closed);
    assert_eq!(CaseKind::MicroWish.status_label(wish.status(), Lang::Zh), "已致谢");
    assert_eq!(wish.claimant().map(|c| c.name.as_str()), Some("王建国"));
    assert!(!wish.is_open());
}

#[test]
fn a_claim_on_anything_but_a_wish_or_without_a_claimant_is_refused() {
    let worker = grid_worker();
    let help = case(CaseKind::Help(ServiceCategory::Medical), &worker, NOW);
    let mut claimed = help.clone();
    claimed.push_action(claim(&worker, NOW + 1, ClaimantId::Volunteer(VolunteerId::from_u128(8)), "刘芳"));
    let err = edit(&help, &claimed, &worker).unwrap_err();
    assert_eq!(err.code, RejectCode::InvalidDocument);
    assert!(err.message.contains("micro-wish"), "{}", err.message);

    let wish = case(CaseKind::MicroWish, &worker, NOW);
    let mut nameless = wish.clone();
    nameless.push_action(action(ActionKind::Claim, &worker, NOW + 1));
    let err = edit(&wish, &nameless, &worker).unwrap_err();
    assert_eq!(err.code, RejectCode::InvalidDocument);
    assert!(err.message.contains("names the party member"), "{}", err.message);

    let mut blank = wish.clone();
    blank.push_action(claim(&worker, NOW + 1, ClaimantId::Volunteer(VolunteerId::from_u128(8)), " "));
    assert_eq!(edit(&wish, &blank, &worker).unwrap_err().code, RejectCode::InvalidDocument);
}

#[test]
fn a_building_leader_may_not_fulfil_and_a_volunteer_claims_only_for_themself() {
    let worker = grid_worker();
    let mut wish = case(CaseKind::MicroWish, &worker, NOW);
    wish.push_action(claim(&worker, NOW + 1, ClaimantId::PartyMember(PartyMemberId::from_u128(7)), "王建国"));
    let leader = principal(Role::BuildingLeader, vec![Scope::Building(placement().building.unwrap())]);
    let mut fulfilled = wish.clone();
    fulfilled.push_action(action(ActionKind::Fulfil, &leader, NOW + 2));
    assert_eq!(edit(&wish, &fulfilled, &leader).unwrap_err().code, RejectCode::ForbiddenRole);

    let volunteer = principal(Role::Volunteer, vec![Scope::Grid(placement().grid)]);
    let open = case(CaseKind::MicroWish, &worker, NOW);
    let mut for_someone = open.clone();
    for_someone.push_action(claim(&volunteer, NOW + 1, ClaimantId::Volunteer(VolunteerId::from_u128(8)), "刘芳"));
    let err = edit(&open, &for_someone, &volunteer).unwrap_err();
    assert_eq!(err.code, RejectCode::ForbiddenEdit);
    assert!(err.message.contains("themself"), "{}", err.message);
    let mut for_self = open.clone();
    for_self.push_action(claim(&volunteer, NOW + 1, ClaimantId::Staff(volunteer.user), &volunteer.name));
    assert_eq!(edit(&open, &for_self, &volunteer), Ok(()));
    // ...and the volunteer may not record the resident's thanks.
    let mut done = for_self.clone();
    done.push_action(action(ActionKind::Fulfil, &volunteer, NOW + 2));
    assert_eq!(edit(&for_self, &done, &volunteer), Ok(()));
    let mut thanked = done.clone();
    thanked.push_action(action(ActionKind::Thank, &volunteer, NOW + 3));
    assert_eq!(edit(&done, &thanked, &volunteer).unwrap_err().code, RejectCode::ForbiddenRole);
}

#[test]
fn a_help_request_is_referred_to_an_outlet_and_nothing_else_is() {
    let worker = grid_worker();
    let outlet = OutletRef { id: OutletId::from_u128(9), name: "凤凰社区家电维修服务点".into() };
    let help = case(CaseKind::Help(ServiceCategory::ApplianceRepair), &worker, NOW);
    let mut referred = help.clone();
    let mut refer = action(ActionKind::Refer, &worker, NOW + 1);
    refer.outlet = Some(outlet.clone());
    referred.push_action(refer.clone());
    assert_eq!(edit(&help, &referred, &worker), Ok(()));
    assert_eq!(referred.status(), CaseStatus::Reported, "a referral does not move the status");

    let dispute = case(CaseKind::Dispute, &worker, NOW);
    let mut wrong = dispute.clone();
    wrong.push_action(refer);
    assert_eq!(edit(&dispute, &wrong, &worker).unwrap_err().code, RejectCode::InvalidDocument);
    let mut nowhere = help.clone();
    nowhere.push_action(action(ActionKind::Refer, &worker, NOW + 1));
    assert_eq!(edit(&help, &nowhere, &worker).unwrap_err().code, RejectCode::InvalidDocument);
}

#[test]
fn an_action_written_before_claimants_and_outlets_hydrates_without_them() {
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    let worker = grid_worker();
    let mut old = case(CaseKind::Dispute, &worker, NOW);
    old.push_action(action(ActionKind::Accept, &worker, NOW + 1));
    let mut doc = doc::create(&old, automerge::ActorId::random(), NOW).unwrap();
    // Remove the new keys, as a document written by an older phone never had them.
    let timeline = match doc.get(automerge::ROOT, "timeline").unwrap() {
        Some((_, id)) => id,
        None => panic!("no timeline"),
    };
    let entry = doc.keys(&timeline).next().unwrap();
    let (_, action_obj) = doc.get(&timeline, &entry).unwrap().unwrap();
    doc.delete(&action_obj, "claimant").unwrap();
    doc.delete(&action_obj, "outlet").unwrap();
    let action_obj_keys: Vec<String> = doc.keys(&action_obj).collect();
    assert!(!action_obj_keys.iter().any(|k| k == "claimant" || k == "outlet"), "{action_obj_keys:?}");
    let back: CaseFile = doc::read(&doc::load(&doc.save()).unwrap()).unwrap();
    assert_eq!(back, old);
    assert!(back.timeline.values().all(|a| a.claimant.is_none() && a.outlet.is_none()));
}

#[test]
fn the_figures_count_wishes_posted_claimed_fulfilled_and_thanked() {
    let worker = grid_worker();
    let mut cases = Vec::new();
    let member = ClaimantId::PartyMember(PartyMemberId::from_u128(7));
    for (n, steps) in [0, 1, 2, 3, 3].into_iter().enumerate() {
        let mut wish = case(CaseKind::MicroWish, &worker, NOW - 10 * 60_000);
        wish.id = CaseId::from_u128(1_000 + n as u128);
        let all = [
            claim(&worker, NOW - 3000, member, "王建国"),
            action(ActionKind::Fulfil, &worker, NOW - 2000),
            action(ActionKind::Thank, &worker, NOW - 1000),
        ];
        for a in all.into_iter().take(steps) {
            wish.push_action(a);
        }
        cases.push(wish);
    }
    cases.push(case(CaseKind::Dispute, &worker, NOW - 10 * 60_000));
    let facts = figures::Facts::from_documents(&[], &cases, &PolicyConfig::default());
    let grouping = Grouping::new(&Roster::default(), GroupBy::Grid);
    let period = Period::this_month(NOW);
    let figures = case_figures(&facts.cases, period, NOW, &grouping).total;
    let w = figures.micro_wishes;
    assert_eq!((w.posted, w.claimed, w.fulfilled, w.thanked), (5, 4, 3, 2));
    // A fulfilled wish is a completed case for 办结率.
    assert_eq!(figures.by_kind[&CaseKind::MicroWish].completed, 3);
}
