//! A micro-wish's lifecycle (认领 → 已实现 → 致谢) and a help request's referral (转介) on a real
//! encrypted store: each step is an offline commit checked by the shared validator, the status
//! is derived, and the figures (the supervisor's home) count the wish where it got to.

use gridlink_client::fixtures::{self, DEMO_NOW};
use gridlink_client::{Client, Error, HouseholdFilter, NewCase};
use gridlink_shared::figures::Period;
use gridlink_shared::time::MINUTE_MS;
use gridlink_shared::{ActionKind, CaseId, CaseKind, CaseStatus, ClaimantId, Lang, Role, ServiceCategory};

fn worker() -> (tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = fixtures::demo_client(dir.path(), Role::GridWorker, DEMO_NOW).unwrap();
    (dir, client)
}

fn open(client: &Client, kind: CaseKind, title: &str) -> CaseId {
    let household = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap()[0].id;
    let case = NewCase {
        kind,
        household: Some(household),
        building: None,
        title: title.into(),
        note: String::new(),
        at: DEMO_NOW - 10 * MINUTE_MS,
    };
    client.open_case(case, DEMO_NOW - 10 * MINUTE_MS).unwrap()
}

#[test]
fn a_wish_is_claimed_for_a_party_member_fulfilled_and_thanked_and_counted() {
    let (_dir, client) = worker();
    let wishes_before = client.supervisor_home(Some(Period::this_month(DEMO_NOW)), DEMO_NOW).unwrap();
    let wish = open(&client, CaseKind::MicroWish, "微心愿：一台助听器");
    let detail = client.case(wish, DEMO_NOW).unwrap();
    assert_eq!(CaseKind::MicroWish.status_label(detail.row.status, Lang::Zh), "待认领");
    assert!(detail.allowed_actions.contains(&ActionKind::Claim));
    assert!(!detail.allowed_actions.contains(&ActionKind::Accept), "a wish is claimed, not accepted");
    assert!(!detail.allowed_actions.contains(&ActionKind::Refer), "only help requests are referred");

    // A claim without a claimant is not a claim.
    let bare = gridlink_client::CaseAction {
        case: wish,
        action: ActionKind::Claim,
        note: String::new(),
        satisfaction: None,
        to: None,
    };
    assert!(matches!(client.act_on_case(bare, DEMO_NOW), Err(Error::Input(_))));

    let directory = client.party_directory().unwrap();
    let member = directory.branches[0].members[0].0.clone();
    client.claim_wish(wish, ClaimantId::PartyMember(member.id), "周末送到", DEMO_NOW - 5 * MINUTE_MS).unwrap();
    let detail = client.case(wish, DEMO_NOW).unwrap();
    assert_eq!(detail.row.status, CaseStatus::Accepted);
    assert_eq!(CaseKind::MicroWish.status_label(detail.row.status, Lang::Zh), "已认领");
    assert_eq!(detail.claimant.as_deref(), Some(member.name.as_str()));
    assert_eq!(detail.timeline[0].claimant_name.as_deref(), Some(member.name.as_str()));
    assert!(!detail.allowed_actions.contains(&ActionKind::Claim), "claimed once");
    assert!(detail.allowed_actions.contains(&ActionKind::Fulfil));

    let fulfil = |kind| gridlink_client::CaseAction {
        case: wish,
        action: kind,
        note: String::new(),
        satisfaction: None,
        to: None,
    };
    client.act_on_case(fulfil(ActionKind::Fulfil), DEMO_NOW - 4 * MINUTE_MS).unwrap();
    assert_eq!(client.case(wish, DEMO_NOW).unwrap().row.status, CaseStatus::Resolved);
    client.act_on_case(fulfil(ActionKind::Thank), DEMO_NOW - 3 * MINUTE_MS).unwrap();
    let detail = client.case(wish, DEMO_NOW).unwrap();
    assert_eq!(detail.row.status, CaseStatus::Closed);
    assert_eq!(CaseKind::MicroWish.status_label(detail.row.status, Lang::Zh), "已致谢");
    assert!(client.act_on_case(fulfil(ActionKind::Thank), DEMO_NOW).is_err(), "thanked once");

    // The figures count the new wish as posted, claimed, fulfilled and thanked.
    let home = client.supervisor_home(Some(Period::this_month(DEMO_NOW)), DEMO_NOW).unwrap();
    let (before, after) = (wishes_before.dashboard.cases.total.micro_wishes, home.dashboard.cases.total.micro_wishes);
    assert_eq!(after.posted, before.posted + 1);
    assert_eq!(after.claimed, before.claimed + 1);
    assert_eq!(after.fulfilled, before.fulfilled + 1);
    assert_eq!(after.thanked, before.thanked + 1);
    // Every step is waiting to be sent.
    assert!(client.status().unwrap().unsent >= 4);
}

#[test]
fn a_help_request_is_referred_to_an_outlet_of_the_directory() {
    let (_dir, client) = worker();
    let help = open(&client, CaseKind::Help(ServiceCategory::ApplianceRepair), "空调不制冷");
    let detail = client.case(help, DEMO_NOW).unwrap();
    assert!(detail.allowed_actions.contains(&ActionKind::Refer));
    assert!(!detail.allowed_actions.contains(&ActionKind::Claim));
    let outlet = client
        .services()
        .unwrap()
        .into_iter()
        .find(|g| g.category == ServiceCategory::ApplianceRepair)
        .unwrap()
        .outlets[0]
        .clone();
    client.refer_to_outlet(help, outlet.id, "请网点上门", DEMO_NOW).unwrap();
    let detail = client.case(help, DEMO_NOW).unwrap();
    let referral = detail.timeline.iter().find(|e| e.kind == ActionKind::Refer).unwrap();
    assert_eq!(referral.outlet_name.as_deref(), Some(outlet.name.as_str()));
    assert_eq!(referral.status_after, None, "a referral does not move the status");
    assert_eq!(detail.row.status, CaseStatus::Reported);
    // A wish cannot be referred, even through the low-level call.
    let wish = open(&client, CaseKind::MicroWish, "微心愿：学习台灯");
    assert!(client.refer_to_outlet(wish, outlet.id, "", DEMO_NOW).is_err());
}
