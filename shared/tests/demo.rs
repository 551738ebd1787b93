//! The demo dataset is deterministic, realistic and valid through the same typed API.

use gridlink_shared::demo::{self, DemoSize, generate};
use gridlink_shared::validate::check_edit;
use gridlink_shared::*;

const NOW: i64 = 1_795_831_200_000;

#[test]
fn small_demo_round_trips_through_automerge_and_validates() {
    let data = generate(DemoSize::Small, 7, NOW);
    assert_eq!(data.roster.communities.len(), 1);
    assert_eq!(data.roster.grids.len(), 3);
    assert_eq!(data.roster.buildings.len(), 20);
    assert_eq!(data.households.len(), 300);
    let admin = data.admin().principal();
    for file in &data.households {
        let mut doc = doc::create(file, automerge::ActorId::random(), NOW).unwrap();
        let loaded = doc::load(&doc.save()).unwrap();
        let back: HouseholdFile = doc::read(&loaded).unwrap();
        assert_eq!(&back, file);
        check_edit(None, &AnyDoc::Household(back), &admin).unwrap();
    }
    for case in &data.cases {
        let mut doc = doc::create(case, automerge::ActorId::random(), NOW).unwrap();
        let back: CaseFile = doc::read(&doc::load(&doc.save()).unwrap()).unwrap();
        assert_eq!(&back, case);
        assert_eq!(back.status(), case.status());
        check_edit(None, &AnyDoc::Case(back), &admin).unwrap();
    }
    assert!(!data.activities.is_empty());
    for activity in &data.activities {
        let mut doc = doc::create(activity, automerge::ActorId::random(), NOW).unwrap();
        let back: ActivityFile = doc::read(&doc::load(&doc.save()).unwrap()).unwrap();
        assert_eq!(&back, activity);
        check_edit(None, &AnyDoc::Activity(back), &admin).unwrap();
        // The grid's own worker recorded it and may.
        let worker = data.roster.staff.iter().find(|s| s.id == activity.recorded_by).unwrap().principal();
        check_edit(None, &AnyDoc::Activity(activity.clone()), &worker).unwrap();
    }
}

#[test]
fn demo_is_deterministic_per_seed() {
    let a = generate(DemoSize::Small, 7, NOW);
    let b = generate(DemoSize::Small, 7, NOW);
    let c = generate(DemoSize::Small, 8, NOW);
    assert_eq!(a.households, b.households);
    assert_eq!(a.cases, b.cases);
    assert_ne!(a.households, c.households);
}

#[test]
fn small_demo_has_work_for_today_and_realistic_names() {
    let data = generate(DemoSize::Small, 7, NOW);
    let config = PolicyConfig::default();
    let due: usize = data
        .households
        .iter()
        .filter(|h| policy::visits_due(h, NOW, &config).iter().any(|d| d.is_actionable()))
        .count();
    assert!(due > 0, "some must-visits are due or overdue");
    assert!(data.households.iter().all(|h| h.head.chars().all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))));
    assert!(data.households.iter().any(|h| h.tags.contains_key(&MustVisitTag::EmptyNest)));
    for kind in ["help", "dispute", "micro-wish", "must-arrive", "report", "opinion"] {
        assert!(data.cases.iter().any(|c| c.kind.to_string().starts_with(kind)), "{kind} cases exist");
    }
    // Micro-wishes in every state: 待认领, 已认领, 已实现, 已致谢.
    for status in [CaseStatus::Reported, CaseStatus::Accepted, CaseStatus::Resolved, CaseStatus::Closed] {
        let wishes = data.cases.iter().filter(|c| c.kind == CaseKind::MicroWish);
        assert!(
            wishes.clone().any(|c| c.status() == status),
            "a micro-wish {}",
            CaseKind::MicroWish.status_label(status, Lang::Zh)
        );
    }
    let rates = policy::case_rates(&data.cases, NOW, &config);
    assert!(rates.completion_rate > 0.85 && rates.completion_rate < 1.0, "rate {}", rates.completion_rate);
    // Grid workers, building leaders and supervisors all exist with scopes.
    assert_eq!(data.staff_with_role(Role::GridWorker).count(), 3);
    assert_eq!(data.staff_with_role(Role::BuildingLeader).count(), 20);
    assert!(data.roster.outlets.iter().any(|o| o.category == ServiceCategory::Medical));
}

#[test]
fn street_demo_has_the_scale_of_fenghuang_street() {
    let data = generate(DemoSize::Street, 1, NOW);
    assert_eq!(data.roster.grids.len(), 86);
    assert_eq!(data.roster.buildings.len(), 471);
    assert_eq!(data.households.len(), 25_000);
    let help = data.cases.iter().filter(|c| matches!(c.kind, CaseKind::Help(_))).count();
    let disputes = data.cases.iter().filter(|c| c.kind == CaseKind::Dispute).count();
    let wishes = data.cases.iter().filter(|c| c.kind == CaseKind::MicroWish).count();
    assert!(help >= 9_000, "{help} help requests");
    assert_eq!(disputes, 1_200);
    assert_eq!(wishes, 660);
    let visits: usize = data.households.iter().map(|h| h.visits.len()).sum();
    assert!(visits > 50_000, "a year of visits: {visits}");
    assert_eq!(data.activities.len(), 86 * demo::ACTIVITIES_PER_GRID);
    let members: std::collections::BTreeSet<_> = data
        .activities
        .iter()
        .flat_map(|a| a.participants.keys())
        .filter(|p| matches!(p, PersonRef::PartyMember(_)))
        .collect();
    assert!(members.len() > 500, "many reported party members serve: {}", members.len());
}

#[test]
fn street_demo_wishes_mostly_come_true_and_some_help_is_referred() {
    let data = generate(DemoSize::Street, 1, NOW);
    let wishes: Vec<&CaseFile> = data.cases.iter().filter(|c| c.kind == CaseKind::MicroWish).collect();
    let count = |status: CaseStatus| wishes.iter().filter(|c| c.status() == status).count();
    let (open, claimed, fulfilled, thanked) = (
        count(CaseStatus::Reported),
        count(CaseStatus::Accepted),
        count(CaseStatus::Resolved),
        count(CaseStatus::Closed),
    );
    assert_eq!(open + claimed + fulfilled + thanked, 660, "every wish is in one of the four states");
    assert!(open > 0 && claimed > 0 && fulfilled > 0, "{open} open, {claimed} claimed, {fulfilled} fulfilled");
    assert!(thanked > fulfilled && fulfilled + thanked > 500, "most came true and were thanked: {thanked}");
    // Each claim names a party member of the wish's grid or a volunteer of its community.
    for wish in &wishes {
        let Some(claimant) = wish.claimant() else { continue };
        let known = match claimant.id {
            ClaimantId::PartyMember(id) => {
                data.roster.party_members.iter().any(|m| m.id == id && m.name == claimant.name)
            }
            ClaimantId::Volunteer(id) => data.roster.volunteers.iter().any(|v| v.id == id && v.name == claimant.name),
            ClaimantId::Staff(_) => false,
        };
        assert!(known, "{} claimed {}", claimant.name, wish.title);
    }
    let referred: Vec<&CaseFile> =
        data.cases.iter().filter(|c| c.timeline.values().any(|a| a.kind == ActionKind::Refer)).collect();
    assert!(referred.len() > 100, "{} referrals", referred.len());
    for case in referred {
        let CaseKind::Help(category) = case.kind else { panic!("{} is not a help request", case.title) };
        let refer = case.timeline.values().find(|a| a.kind == ActionKind::Refer).unwrap();
        let outlet = refer.outlet.as_ref().unwrap();
        assert!(data.roster.outlets.iter().any(|o| o.id == outlet.id && o.category == category));
    }
}

#[test]
fn street_demo_help_requests_mostly_come_through_the_grid_elink() {
    let data = generate(DemoSize::Street, 1, NOW);
    let help: Vec<&CaseFile> = data.cases.iter().filter(|c| matches!(c.kind, CaseKind::Help(_))).collect();
    let requests = &data.elink_requests;
    let share = requests.len() as f64 / help.len() as f64;
    assert!((0.97..=0.995).contains(&share), "{} of {} help requests through the e-link", requests.len(), help.len());
    assert!(requests.len() >= 9_000, "the report's 9,000+: {}", requests.len());
    assert!(help.len() > requests.len(), "some help is still reported by the worker in person");

    // One e-link account per grid, as the server would create it.
    let accounts: Vec<&Staff> = data.roster.staff.iter().filter(|s| elink::is_elink_account(s)).collect();
    assert_eq!(accounts.len(), 86);
    for grid in &data.roster.grids {
        let account: Vec<&&Staff> = accounts.iter().filter(|s| s.scopes == vec![Scope::Grid(grid.id)]).collect();
        assert_eq!(account.len(), 1, "{}", grid.name);
        assert_eq!(**account[0], elink::elink_account(account[0].id, grid.id));
    }

    let cases: std::collections::BTreeMap<CaseId, &CaseFile> = data.cases.iter().map(|c| (c.id, c)).collect();
    let mut references = std::collections::BTreeSet::new();
    let mut previous = None;
    for request in requests {
        let case = cases[&request.case];
        let CaseKind::Help(category) = case.kind else { panic!("{} is not a help request", case.title) };
        let account = data.roster.staff.iter().find(|s| s.id == case.reporter).unwrap();
        assert!(elink::is_elink_account(account), "{} reported by {}", case.title, case.reporter_name);
        assert_eq!(account.scopes, vec![Scope::Grid(case.placement.grid)], "its grid's account");
        assert_eq!(case.reporter_name, elink::ELINK_ACCOUNT_NAME);
        let worker = data.roster.staff.iter().find(|s| s.id == case.first_responsible).unwrap();
        assert_eq!(worker.role, Role::GridWorker, "首问负责: the grid's worker");
        assert_eq!(worker.scopes, vec![Scope::Grid(case.placement.grid)]);
        assert_eq!(case.placement.building, Some(request.building));
        assert_eq!(request.filed_at, case.reported_at);
        // The case text in the e-link's shape, the resident's name and phone in it.
        assert!(case.title.starts_with(&format!("网格e通求助·{}·", category.zh())), "{}", case.title);
        let room = case.title.rsplit('·').next().unwrap();
        assert!(
            case.description.ends_with(&format!(
                "\n\n居民：{}　房号：{room}　电话：{}（经社区网格e通提交）",
                request.name, request.phone
            )),
            "{}",
            case.description
        );
        assert!(!request.name.is_empty() && request.name.chars().count() <= 20);
        assert!(
            request.phone.len() == 11
                && request.phone.starts_with('1')
                && request.phone.chars().all(|c| c.is_ascii_digit())
                && validate::check_phone(validate::Field::Phone, &request.phone).is_ok(),
            "a mobile: {}",
            request.phone
        );
        assert_eq!(elink::normalize_reference(&request.reference).as_deref(), Some(request.reference.as_str()));
        assert!(references.insert(request.reference.clone()), "{} is unique", request.reference);
        let index = data.cases.iter().position(|c| c.id == request.case).unwrap();
        assert!(previous.is_none_or(|p| p < index), "in case order");
        previous = Some(index);
    }
    // Help requests not through the e-link are reported by staff as before.
    let filed: std::collections::BTreeSet<CaseId> = requests.iter().map(|r| r.case).collect();
    for case in help.iter().filter(|c| !filed.contains(&c.id)) {
        let reporter = data.roster.staff.iter().find(|s| s.id == case.reporter).unwrap();
        assert!(!elink::is_elink_account(reporter) && !case.title.starts_with("网格e通求助"), "{}", case.title);
    }
    // Still fresh requests wait for the worker; most were handled (the 97.3% completion).
    let open = requests.iter().filter(|r| cases[&r.case].status() == CaseStatus::Reported).count();
    assert!(open > 0 && open < requests.len() / 10, "{open} waiting");
}

#[test]
fn the_elink_requests_are_deterministic_and_leave_the_rest_of_the_small_demo_alone() {
    let a = generate(DemoSize::Small, 7, NOW);
    let b = generate(DemoSize::Small, 7, NOW);
    assert_eq!(a.elink_requests, b.elink_requests);
    assert!(!a.elink_requests.is_empty());
    assert_eq!(a.roster.staff.iter().filter(|s| elink::is_elink_account(s)).count(), 3, "one per grid");
    // The small demo's only volunteer-role staff are its e-link accounts.
    assert_eq!(a.staff_with_role(Role::Volunteer).count(), 3);
    // The accounts' ids come after every other row.
    let last_activity = a.activities.iter().map(|x| x.id.0.as_u128()).max().unwrap();
    assert!(a.roster.staff.iter().filter(|s| elink::is_elink_account(s)).all(|s| s.id.0.as_u128() > last_activity));
}
