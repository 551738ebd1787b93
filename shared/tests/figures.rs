//! The supervisors' figures: exact answers on a hand-built community, agreement with a naive
//! recomputation straight from the documents on the `small` demo, drill-down lists as long as
//! their figures, and figures that do not depend on row order.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::NaiveDate;
use gridlink_shared::demo::{DemoData, DemoSize, generate};
use gridlink_shared::figures::*;
use gridlink_shared::policy::{self, ArrivalState, DueState};
use gridlink_shared::time::{DAY_MS, HOUR_MS, MINUTE_MS, Millis, start_of_local_day};
use gridlink_shared::*;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;

/// 2026-11-28 10:00 in Asia/Shanghai, a Saturday.
const NOW: Millis = 1_795_831_200_000;

fn date(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).unwrap()
}

/// An instant on a 2026 Asia/Shanghai wall clock.
fn sh(m: u32, d: u32, hour: i64, minute: i64) -> Millis {
    start_of_local_day(date(m, d)) + hour * HOUR_MS + minute * MINUTE_MS
}

// ---------------------------------------------------------------------------------------------
// A hand-built street: one community, two grids. Grid 1 is 李秀英's; grid 2 is shared by
// 王建国 and 陈丽华.

struct World {
    roster: Roster,
    street: StreetId,
    community: CommunityId,
    grid1: GridId,
    grid2: GridId,
    li: (UserId, &'static str),
    wang: (UserId, &'static str),
    chen: (UserId, &'static str),
    zhou: (UserId, &'static str),
    households: Vec<HouseholdFile>,
    cases: Vec<CaseFile>,
}

impl World {
    fn placement(&self, grid: GridId) -> Placement {
        let building = if grid == self.grid1 { BuildingId::from_u128(41) } else { BuildingId::from_u128(42) };
        Placement { street: self.street, community: self.community, grid, building: Some(building) }
    }

    fn household(&mut self, n: u128, grid: GridId, room: &str, head: &str) -> &mut HouseholdFile {
        let building = if grid == self.grid1 { "滨湖小区7栋" } else { "文星花园3栋" };
        let file = HouseholdFile::new(
            HouseholdId::from_u128(500 + n),
            self.placement(grid),
            building,
            "1",
            room,
            head,
            sh(1, 1, 9, 0),
        );
        self.households.push(file);
        self.households.last_mut().unwrap()
    }

    fn case(&mut self, n: u128, kind: CaseKind, grid: GridId, title: &str, reported_at: Millis) -> &mut CaseFile {
        let worker = if grid == self.grid1 { self.li } else { self.wang };
        let case = CaseFile::new(
            CaseId::from_u128(900 + n),
            kind,
            self.placement(grid),
            None,
            title,
            "",
            worker,
            worker,
            reported_at,
        );
        self.cases.push(case);
        self.cases.last_mut().unwrap()
    }
}

fn tag(file: &mut HouseholdFile, tag: MustVisitTag, since: NaiveDate) {
    file.tags.insert(tag, TagEntry { since, added_by: UserId::from_u128(1), note: String::new() });
}

fn visit(file: &mut HouseholdFile, n: u128, at: Millis, outcome: VisitOutcome) {
    let id = VisitId::from_u128(7000 + n);
    file.visits.insert(
        id,
        Visit {
            id,
            visitor: UserId::from_u128(10),
            visitor_name: "李秀英".into(),
            at,
            recorded_at: at + 30 * MINUTE_MS,
            outcome,
            notes: String::new(),
            needs_found: vec![],
            follow_up: None,
            residents_present: vec![],
        },
    );
}

fn act(case: &mut CaseFile, kind: ActionKind, at: Millis, by: (UserId, &str), satisfaction: Option<u8>) {
    case.push_action(Action {
        id: ActionId::from_u128(u128::try_from(at).unwrap() + u128::from(case.next_lamport())),
        kind,
        by: by.0,
        by_name: by.1.to_string(),
        at,
        lamport: 0,
        note: String::new(),
        satisfaction,
        to: None,
        to_name: None,
        claimant: None,
        outlet: None,
    });
}

fn world() -> World {
    let street = StreetId::from_u128(1);
    let community = CommunityId::from_u128(2);
    let (grid1, grid2) = (GridId::from_u128(31), GridId::from_u128(32));
    let li = (UserId::from_u128(10), "李秀英");
    let wang = (UserId::from_u128(11), "王建国");
    let chen = (UserId::from_u128(12), "陈丽华");
    let zhou = (UserId::from_u128(13), "周建平");
    let staff = |who: (UserId, &str), role: Role, scopes: Vec<Scope>| Staff {
        id: who.0,
        name: who.1.to_string(),
        role,
        phone: String::new(),
        scopes,
        pledge: String::new(),
    };
    let roster = Roster {
        streets: vec![Street { id: street, name: "凤凰街道".into() }],
        communities: vec![Community { id: community, street, name: "滨湖社区".into() }],
        grids: vec![
            Grid { id: grid1, community, name: "滨湖社区第1网格".into() },
            Grid { id: grid2, community, name: "滨湖社区第2网格".into() },
        ],
        buildings: vec![
            Building {
                id: BuildingId::from_u128(41),
                grid: grid1,
                name: "滨湖小区7栋".into(),
                units: 2,
                floors: 6,
                rooms_per_floor: 2,
            },
            Building {
                id: BuildingId::from_u128(42),
                grid: grid2,
                name: "文星花园3栋".into(),
                units: 2,
                floors: 6,
                rooms_per_floor: 2,
            },
        ],
        staff: vec![
            staff(li, Role::GridWorker, vec![Scope::Grid(grid1)]),
            staff(wang, Role::GridWorker, vec![Scope::Grid(grid2)]),
            staff(chen, Role::GridWorker, vec![Scope::Grid(grid2)]),
            staff(zhou, Role::Supervisor, vec![Scope::Street(street)]),
        ],
        outlets: vec![],
        ..Roster::default()
    };
    let mut w =
        World { roster, street, community, grid1, grid2, li, wang, chen, zhou, households: vec![], cases: vec![] };
    use MustVisitTag::*;
    use VisitOutcome::*;

    // Households (coverage is at NOW, Saturday 2026-11-28 10:00).
    // H1 张桂兰: empty-nest, met 3 days ago -> covered. A not-home early Monday 23rd.
    let h = w.household(1, grid1, "101", "张桂兰");
    tag(h, EmptyNest, date(1, 1));
    visit(h, 1, NOW - 3 * DAY_MS, Met);
    visit(h, 2, sh(11, 23, 0, 30), NotHome);
    // H2 刘德胜: empty-nest, met 9 days ago, "not home" yesterday -> overdue by 2 days.
    let h = w.household(2, grid1, "102", "刘德胜");
    tag(h, EmptyNest, date(1, 1));
    visit(h, 3, NOW - 9 * DAY_MS, Met);
    visit(h, 4, NOW - DAY_MS, NotHome);
    // H3 赵淑华: became a poor family 10 days ago, last met 20 days ago -> pending.
    let h = w.household(3, grid1, "201", "赵淑华");
    visit(h, 5, NOW - 20 * DAY_MS, Met);
    tag(h, PoorFamily, date(11, 18));
    // H4 孙建华: problem family, the only met visit stamped 3 days in the future -> counts as now.
    let h = w.household(4, grid1, "202", "孙建华");
    tag(h, ProblemFamily, date(1, 1));
    visit(h, 6, NOW + 3 * DAY_MS, Met);
    // H5 周玉兰: moved in on the 25th, refused on Sunday night -> pending (due 12-02).
    let h = w.household(5, grid1, "301", "周玉兰");
    tag(h, NewArrival, date(11, 25));
    visit(h, 7, sh(11, 22, 23, 30), Refused);
    // H6 吴志强: moved in on the 10th, met on the 12th -> covered for good.
    let h = w.household(6, grid1, "302", "吴志强");
    tag(h, NewArrival, date(11, 10));
    visit(h, 8, sh(11, 12, 15, 0), Met);
    // H7 郑春生: moved out, never visited -> not counted.
    let h = w.household(7, grid1, "401", "郑春生");
    tag(h, EmptyNest, date(1, 1));
    h.status = HouseholdStatus::MovedOut;
    h.moved_out_on = Some(date(10, 1));
    // H8 钱秀英 (grid 2): empty-nest and poor, met 8 days ago -> empty-nest overdue 1 day,
    // poor family covered.
    let h = w.household(8, grid2, "101", "钱秀英");
    tag(h, EmptyNest, date(1, 1));
    tag(h, PoorFamily, date(1, 1));
    visit(h, 9, NOW - 8 * DAY_MS, Met);

    // Cases (period 2026-11-16 .. 11-29, two Shanghai weeks).
    let (li, zhou) = (w.li, w.zhou);
    use ActionKind::*;
    // C1: emergency, arrived in 20 min (on time), resolved next day, closed with 5.
    let c = w.case(1, CaseKind::MustArrive(MustArriveKind::Emergency), grid1, "张桂兰家老人突发疾病", sh(11, 23, 9, 0));
    act(c, Accept, sh(11, 23, 9, 5), li, None);
    act(c, Arrive, sh(11, 23, 9, 20), li, None);
    act(c, Resolve, sh(11, 24, 9, 0), li, None);
    act(c, Close, sh(11, 24, 10, 0), zhou, Some(5));
    // C2: family dispute, arrived after 150 min (late: 120), resolved in 48 h (on time).
    let c = w.case(2, CaseKind::MustArrive(MustArriveKind::Dispute), grid1, "刘德胜家庭成员争吵", sh(11, 24, 20, 0));
    act(c, Accept, sh(11, 24, 20, 10), li, None);
    act(c, Arrive, sh(11, 24, 22, 30), li, None);
    act(c, Resolve, sh(11, 26, 20, 0), li, None);
    // C3: emergency reported 10 minutes ago: not yet arrived, still within 30 minutes.
    let c = w.case(3, CaseKind::MustArrive(MustArriveKind::Emergency), grid1, "孙建华家中漏气", NOW - 10 * MINUTE_MS);
    act(c, Accept, NOW - 5 * MINUTE_MS, li, None);
    // C4: discontent, nobody arrived within 24 h, still open after 72 h: overdue both ways.
    let c =
        w.case(4, CaseKind::MustArrive(MustArriveKind::Discontent), grid1, "赵淑华对物业收费不满", sh(11, 20, 10, 0));
    act(c, Accept, sh(11, 20, 11, 0), li, None);
    // C5: utilities help, closed with 2, reopened on the 26th: open, fresh window to the 29th.
    let c = w.case(5, CaseKind::Help(ServiceCategory::Utilities), grid1, "卫生间水管漏水", sh(11, 17, 10, 0));
    act(c, Accept, sh(11, 17, 11, 0), li, None);
    act(c, Resolve, sh(11, 18, 10, 0), li, None);
    act(c, Close, sh(11, 19, 10, 0), zhou, Some(2));
    act(c, Reopen, sh(11, 26, 10, 0), zhou, None);
    act(c, Progress, sh(11, 27, 10, 0), li, None);
    // C6: medical help reported Monday 07:00 Shanghai (still Sunday in UTC), resolved after
    // five days: completed late. Closed with 4.
    let c = w.case(6, CaseKind::Help(ServiceCategory::Medical), grid1, "请求上门测血压", sh(11, 16, 7, 0));
    act(c, Accept, sh(11, 16, 8, 0), li, None);
    act(c, Resolve, sh(11, 21, 10, 0), li, None);
    act(c, Close, sh(11, 22, 10, 0), zhou, Some(4));
    // C7: dispute on Sunday 23:30: first week. Open, 7 days to go.
    let c = w.case(7, CaseKind::Dispute, grid1, "楼道堆物引发邻里矛盾", sh(11, 22, 23, 30));
    act(c, Accept, sh(11, 23, 8, 0), li, None);
    // C8: sanitation report on Monday 00:30 Shanghai (still Sunday in UTC): second week.
    let c = w.case(8, CaseKind::Report(LeaderRole::Sanitation), grid1, "楼道垃圾未及时清运", sh(11, 23, 0, 30));
    act(c, Resolve, sh(11, 24, 9, 0), li, None);
    // C9: before the period.
    let c = w.case(9, CaseKind::Help(ServiceCategory::Locksmith), grid1, "钥匙锁在屋内", sh(11, 10, 9, 0));
    act(c, Resolve, sh(11, 10, 10, 0), li, None);
    // C10 (grid 2): micro-wish, fulfilled and closed with 5 the same day.
    let wang = w.wang;
    let c = w.case(10, CaseKind::MicroWish, grid2, "钱秀英家微心愿：一台助听器", sh(11, 25, 9, 0));
    act(c, Resolve, sh(11, 25, 15, 0), wang, None);
    act(c, Close, sh(11, 25, 16, 0), zhou, Some(5));
    // C11 (grid 2): utilities help closed with 3, reopened on the 25th, resolved again 48 h
    // later: on time against the restarted window, 9 days after the report.
    let c = w.case(11, CaseKind::Help(ServiceCategory::Utilities), grid2, "楼顶水箱漏水", sh(11, 18, 9, 0));
    act(c, Resolve, sh(11, 19, 9, 0), wang, None);
    act(c, Close, sh(11, 19, 12, 0), zhou, Some(3));
    act(c, Reopen, sh(11, 25, 9, 0), zhou, None);
    act(c, Resolve, sh(11, 27, 9, 0), wang, None);
    w
}

fn hand_facts(w: &World) -> Facts {
    Facts::from_documents(&w.households, &w.cases, &PolicyConfig::default())
}

fn period() -> Period {
    Period::days(date(11, 16), date(11, 29))
}

fn case_ids(rows: &[&CaseFacts]) -> Vec<u128> {
    rows.iter().map(|c| c.id.0.as_u128() - 900).collect()
}

fn household_ids(rows: &[CoverageRow<'_>]) -> Vec<u128> {
    rows.iter().map(|r| r.household.id.0.as_u128() - 500).collect()
}

#[test]
fn periods_are_shanghai_days_and_monday_weeks() {
    assert_eq!(Period::this_week(NOW), Period::days(date(11, 23), date(11, 29)));
    assert_eq!(Period::this_month(NOW), Period::days(date(11, 1), date(11, 30)));
    // Shanghai midnight is 16:00 UTC the day before.
    assert_eq!(Period::this_week(NOW).from, sh(11, 23, 0, 0));
    assert_eq!(gridlink_shared::time::to_datetime(sh(11, 23, 0, 0)).to_rfc3339(), "2026-11-22T16:00:00+00:00");
    let weeks = Period::days(date(11, 18), date(12, 2)).weeks();
    assert_eq!(
        weeks,
        vec![
            Period::days(date(11, 18), date(11, 22)),
            Period::days(date(11, 23), date(11, 29)),
            Period::days(date(11, 30), date(12, 2)),
        ],
        "weeks run Monday to Sunday and are clipped to the period"
    );
    assert!(Period { from: NOW, to: NOW }.weeks().is_empty());
    assert!(Period::this_week(NOW).contains(sh(11, 29, 23, 59)));
    assert!(!Period::this_week(NOW).contains(sh(11, 30, 0, 0)));
}

#[test]
fn facts_fold_the_timeline_into_deadlines_and_completion() {
    let w = world();
    let config = PolicyConfig::default();
    let facts = hand_facts(&w);
    assert_eq!(facts.households.len(), 8);
    assert_eq!(facts.visits.len(), 9);
    let c5 = facts.cases.iter().find(|c| c.id == CaseId::from_u128(905)).unwrap();
    assert_eq!(c5.status, CaseStatus::InProgress);
    assert_eq!(c5.reopened, 1);
    assert_eq!(c5.completion_deadline, sh(11, 26, 10, 0) + 72 * HOUR_MS, "the window restarts on reopening");
    assert_eq!(c5.completed_at, None);
    assert_eq!(c5.satisfaction, Some(2), "the score of the undone close stays until the next close");
    let c2 = facts.cases.iter().find(|c| c.id == CaseId::from_u128(902)).unwrap();
    assert_eq!(c2.arrival_deadline, Some(sh(11, 24, 22, 0)));
    assert_eq!(c2.first_arrival, Some(sh(11, 24, 22, 30)));
    assert_eq!(c2.minutes_to_arrive(), Some(150.0));
    assert_eq!(c2.arrival_state(NOW), Some(ArrivalState::Arrived { on_time: false }));
    let c11 = facts.cases.iter().find(|c| c.id == CaseId::from_u128(911)).unwrap();
    assert_eq!(c11.completed_at, Some(sh(11, 27, 9, 0)));
    assert_eq!(c11.completion_state(NOW), policy::CompletionState::Done { on_time: true });
    for (case, row) in w.cases.iter().zip(&facts.cases) {
        assert_eq!(row.completion_state(NOW), policy::completion_state(case, NOW, &config));
        assert_eq!(row.arrival_state(NOW), policy::arrival_state(case, NOW, &config));
    }
    // Plain rows travel as JSON.
    let json = serde_json::to_string(&facts).unwrap();
    assert_eq!(serde_json::from_str::<Facts>(&json).unwrap(), facts);
    assert!(json.contains("\"empty-nest\":\"2026-01-01\""), "{json}");
}

#[test]
fn must_visit_coverage_on_a_hand_built_community() {
    let w = world();
    let config = PolicyConfig::default();
    let facts = hand_facts(&w);
    let grouping = Grouping::new(&w.roster, GroupBy::Grid);
    let coverage = must_visit_coverage(&facts.households, &facts.visits, NOW, &config, &grouping);
    let tc = |tagged, covered, pending, overdue| TagCoverage {
        tagged,
        covered,
        pending,
        overdue,
        coverage_rate: policy::ratio(covered, tagged),
    };
    let total = &coverage.total;
    assert_eq!(total.by_tag[&MustVisitTag::EmptyNest], tc(3, 1, 0, 2), "H2 not home yesterday is still overdue");
    assert_eq!(total.by_tag[&MustVisitTag::PoorFamily], tc(2, 1, 1, 0), "H3 tagged after its last visit");
    assert_eq!(total.by_tag[&MustVisitTag::ProblemFamily], tc(1, 1, 0, 0), "a future visit counts as now");
    assert_eq!(total.by_tag[&MustVisitTag::NewArrival], tc(2, 1, 1, 0), "refused does not count");
    assert_eq!((total.households_tagged, total.households_overdue), (7, 2), "the moved-out household is left out");
    let grid1 = &coverage.groups[&GroupKey::Grid(w.grid1)];
    assert_eq!(grid1.by_tag[&MustVisitTag::EmptyNest], tc(2, 1, 0, 1));
    let grid2 = &coverage.groups[&GroupKey::Grid(w.grid2)];
    assert_eq!(grid2.by_tag[&MustVisitTag::EmptyNest], tc(1, 0, 0, 1));
    assert_eq!(grid2.by_tag[&MustVisitTag::NewArrival], tc(0, 0, 0, 0));
    assert_eq!(grid2.by_tag[&MustVisitTag::NewArrival].coverage_rate, 1.0);

    // Drill-down: the overdue empty-nest households, most overdue first, with their due dates.
    let rows = coverage_rows(
        &facts.households,
        &facts.visits,
        HouseholdFigure::Overdue(MustVisitTag::EmptyNest),
        None,
        NOW,
        &config,
        &grouping,
    );
    assert_eq!(household_ids(&rows), vec![2, 8]);
    assert_eq!(rows[0].due.as_ref().unwrap().state, DueState::Overdue { days: 2 });
    assert_eq!(rows[0].household.address, "滨湖小区7栋1单元102室");
    let pending = coverage_rows(
        &facts.households,
        &facts.visits,
        HouseholdFigure::Pending(MustVisitTag::PoorFamily),
        None,
        NOW,
        &config,
        &grouping,
    );
    assert_eq!(household_ids(&pending), vec![3]);
    assert_eq!(pending[0].due.as_ref().unwrap().last_met, None, "the visit before the tag does not count");
    assert_eq!(pending[0].due.as_ref().unwrap().due_on, date(12, 18));
    let done_arrival = coverage_rows(
        &facts.households,
        &facts.visits,
        HouseholdFigure::Covered(MustVisitTag::NewArrival),
        None,
        NOW,
        &config,
        &grouping,
    );
    assert_eq!(household_ids(&done_arrival), vec![6]);
    assert_eq!(done_arrival[0].due, None);
    let overdue_in_grid2 = coverage_rows(
        &facts.households,
        &facts.visits,
        HouseholdFigure::HouseholdsOverdue,
        Some(&GroupKey::Worker(w.chen.0)),
        NOW,
        &config,
        &grouping,
    );
    assert_eq!(household_ids(&overdue_in_grid2), vec![8]);
    assert_eq!(overdue_in_grid2[0].tag, MustVisitTag::EmptyNest, "the most urgent tag");
}

#[test]
fn case_figures_on_a_hand_built_community() {
    let w = world();
    let facts = hand_facts(&w);
    let grouping = Grouping::new(&w.roster, GroupBy::Grid);
    let cases = case_figures(&facts.cases, period(), NOW, &grouping);
    let all = &cases.total.all;
    assert_eq!(
        (
            all.opened,
            all.completed,
            all.completed_on_time,
            all.completed_late,
            all.open,
            all.open_overdue,
            all.reopened
        ),
        (10, 6, 5, 1, 4, 1, 2),
        "C9 is before the period; C6 completed late; C4 overdue; C5 and C11 reopened"
    );
    assert!((all.completion_rate - 0.6).abs() < 1e-12, "办结率 {}", all.completion_rate);
    assert!((all.on_time_rate - 5.0 / 6.0).abs() < 1e-12, "限时办结率 {}", all.on_time_rate);
    let utilities = &cases.total.by_kind[&CaseKind::Help(ServiceCategory::Utilities)];
    assert_eq!((utilities.opened, utilities.completed, utilities.reopened), (2, 1, 2));
    assert_eq!(cases.total.by_kind[&CaseKind::Help(ServiceCategory::Locksmith)].opened, 0);
    assert_eq!(cases.total.by_kind.len(), CaseKind::all().len());
    let g1 = &cases.groups[&GroupKey::Grid(w.grid1)].all;
    assert_eq!((g1.opened, g1.completed, g1.completed_on_time, g1.open_overdue, g1.reopened), (8, 4, 3, 1, 1));
    let g2 = &cases.groups[&GroupKey::Grid(w.grid2)].all;
    assert_eq!((g2.opened, g2.completed, g2.completed_on_time, g2.reopened), (2, 2, 2, 1));

    let rows = |figure, kind| case_ids(&case_rows(&facts.cases, figure, kind, None, period(), NOW, &grouping));
    assert_eq!(rows(CaseFigure::CompletedLate, None), vec![6]);
    assert_eq!(rows(CaseFigure::OpenOverdue, None), vec![4]);
    assert_eq!(rows(CaseFigure::Reopened, None), vec![5, 11]);
    assert_eq!(rows(CaseFigure::Open, None), vec![5, 4, 7, 3], "oldest report first");
    assert_eq!(rows(CaseFigure::Opened, Some(CaseKind::MicroWish)), vec![10]);
}

#[test]
fn must_arrive_and_satisfaction_on_a_hand_built_community() {
    let w = world();
    let facts = hand_facts(&w);
    let grouping = Grouping::new(&w.roster, GroupBy::Worker);
    let arrival = must_arrive_figures(&facts.cases, period(), NOW, &grouping);
    let all = arrival.total.all;
    assert_eq!((all.events, all.on_time, all.late, all.not_yet, all.not_yet_overdue), (4, 1, 1, 2, 1));
    assert!((all.on_time_rate - 1.0 / 3.0).abs() < 1e-12, "C3 is still within its 30 minutes");
    assert_eq!(all.median_minutes, Some(85.0), "median of 20 and 150");
    let emergency = arrival.total.by_kind[&MustArriveKind::Emergency];
    assert_eq!(
        (emergency.events, emergency.on_time, emergency.not_yet, emergency.median_minutes),
        (2, 1, 1, Some(20.0))
    );
    assert_eq!(arrival.groups[&GroupKey::Worker(w.wang.0)].all.events, 0);
    assert_eq!(arrival.groups[&GroupKey::Worker(w.li.0)].all, all);
    let rows = |figure| case_ids(&case_rows(&facts.cases, figure, None, None, period(), NOW, &grouping));
    assert_eq!(rows(CaseFigure::ArrivedLate), vec![2]);
    assert_eq!(rows(CaseFigure::NotYetArrived), vec![4, 3]);
    assert_eq!(rows(CaseFigure::NotYetArrivedOverdue), vec![4]);

    let satisfaction = satisfaction_figures(&facts.cases, period(), NOW, &grouping);
    assert_eq!(satisfaction.total.scored, 5);
    assert_eq!(satisfaction.total.distribution, [0, 1, 1, 1, 2]);
    assert!((satisfaction.total.mean.unwrap() - 3.8).abs() < 1e-12);
    // Grid 2 has two workers: each sees grid 2's cases; the total counts them once.
    for worker in [w.wang.0, w.chen.0] {
        let s = &satisfaction.groups[&GroupKey::Worker(worker)];
        assert_eq!((s.scored, s.distribution), (2, [0, 0, 1, 0, 1]));
    }
    assert_eq!(satisfaction.groups[&GroupKey::Worker(w.li.0)].scored, 3);
    assert_eq!(rows(CaseFigure::Score(5)), vec![1, 10]);
}

#[test]
fn visits_and_weekly_trends_follow_shanghai_weeks() {
    let w = world();
    let facts = hand_facts(&w);
    let grouping = Grouping::new(&w.roster, GroupBy::Community);
    let visits = visit_figures(&facts.visits, period(), NOW, &grouping);
    assert_eq!(
        visits.total,
        VisitCounts { visits: 7, met: 4, not_home: 2, refused: 1 },
        "H4's visit stamped in December counts as now; H3's and H6's are before the period"
    );
    assert_eq!(visits.groups[&GroupKey::Community(w.community)], visits.total);

    let trends = weekly_trends(&facts.cases, &facts.visits, period(), NOW, &grouping);
    let weeks = &trends.total;
    assert_eq!(weeks.len(), 2);
    assert_eq!((weeks[0].monday, weeks[1].monday), (date(11, 16), date(11, 23)));
    // Week 1: C4, C5, C6 (Monday 07:00 Shanghai), C7 (Sunday 23:30), C11.
    // Week 2: C1, C2, C3, C8 (Monday 00:30 Shanghai, Sunday in UTC), C10.
    assert_eq!((weeks[0].cases.opened, weeks[1].cases.opened), (5, 5));
    assert_eq!((weeks[0].cases.completed, weeks[1].cases.completed), (2, 4));
    assert_eq!((weeks[0].must_arrive.events, weeks[1].must_arrive.events), (1, 3));
    assert_eq!((weeks[0].satisfaction.scored, weeks[1].satisfaction.scored), (3, 2));
    assert_eq!(weeks[0].visits, VisitCounts { visits: 3, met: 2, not_home: 0, refused: 1 });
    assert_eq!(weeks[1].visits, VisitCounts { visits: 4, met: 2, not_home: 2, refused: 0 });
    let week2 = case_rows(&facts.cases, CaseFigure::Opened, None, None, weeks[1].week, NOW, &grouping);
    assert_eq!(case_ids(&week2), vec![8, 1, 2, 10, 3]);
    let refused = visit_rows(&facts.visits, VisitFigure::Refused, None, weeks[0].week, NOW, &grouping);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].at, sh(11, 22, 23, 30));
}

#[test]
fn a_scoped_grouping_sees_only_its_grid() {
    let w = world();
    let facts = hand_facts(&w);
    let config = PolicyConfig::default();
    let grouping = Grouping::within(&w.roster, GroupBy::Worker, Scope::Grid(w.grid2));
    assert_eq!(grouping.keys(), &[GroupKey::Worker(w.wang.0), GroupKey::Worker(w.chen.0)]);
    assert_eq!(grouping.label(&GroupKey::Worker(w.chen.0)), Some("陈丽华"));
    let board = dashboard(&facts, period(), NOW, &config, &grouping);
    assert_eq!(board.cases.total.all.opened, 2);
    assert_eq!(board.coverage.total.households_tagged, 1);
    assert_eq!(board.visits.total.visits, 1);
    let all = case_rows(&facts.cases, CaseFigure::Opened, None, None, period(), NOW, &grouping);
    assert_eq!(case_ids(&all), vec![11, 10]);
    // The console ships the dashboard as JSON, groups keyed by their written form.
    let json = serde_json::to_value(&board).unwrap();
    assert_eq!(json["cases"]["groups"][format!("worker:{}", w.chen.0)]["all"]["opened"], 2);
    assert_eq!(json["cases"]["total"]["by_kind"]["micro-wish"]["completed"], 1);
    assert_eq!(json["coverage"]["total"]["by_tag"]["empty-nest"]["overdue"], 1);
    let street = Grouping::new(&w.roster, GroupBy::Street);
    assert_eq!(street.keys(), &[GroupKey::Street(w.street)]);
    assert_eq!(street.label(&GroupKey::Street(w.street)), Some("凤凰街道"));
    let key: GroupKey = format!("worker:{}", w.li.0).parse().unwrap();
    assert_eq!(key, GroupKey::Worker(w.li.0));
    assert_eq!(key.to_string().parse::<GroupKey>().unwrap(), key);
    assert!("team:1".parse::<GroupKey>().is_err());
}

// ---------------------------------------------------------------------------------------------
// The small demo: every figure again, naively, straight from the documents.

fn small_demo() -> &'static DemoData {
    static DATA: OnceLock<DemoData> = OnceLock::new();
    DATA.get_or_init(|| generate(DemoSize::Small, 7, NOW))
}

/// Whether a document at `placement` belongs to `key`, looked up the slow way in the roster.
fn naive_member(roster: &Roster, key: Option<&GroupKey>, placement: &Placement) -> bool {
    let grid = roster.grids.iter().find(|g| g.id == placement.grid).unwrap();
    let community = roster.communities.iter().find(|c| c.id == grid.community).unwrap();
    match key {
        None => true,
        Some(GroupKey::Street(s)) => community.street == *s,
        Some(GroupKey::Community(c)) => community.id == *c,
        Some(GroupKey::Grid(g)) => grid.id == *g,
        Some(GroupKey::Worker(u)) => roster
            .staff
            .iter()
            .any(|s| s.id == *u && s.role == Role::GridWorker && s.scopes.contains(&Scope::Grid(grid.id))),
    }
}

fn naive_keys(roster: &Roster, by: GroupBy) -> Vec<GroupKey> {
    let mut keys: Vec<GroupKey> = match by {
        GroupBy::Street => roster.streets.iter().map(|s| GroupKey::Street(s.id)).collect(),
        GroupBy::Community => roster.communities.iter().map(|c| GroupKey::Community(c.id)).collect(),
        GroupBy::Grid => roster.grids.iter().map(|g| GroupKey::Grid(g.id)).collect(),
        GroupBy::Worker => roster
            .staff
            .iter()
            .filter(|s| s.role == Role::GridWorker && s.scopes.iter().any(|sc| matches!(sc, Scope::Grid(_))))
            .map(|s| GroupKey::Worker(s.id))
            .collect(),
    };
    keys.sort();
    keys
}

fn naive_coverage(data: &DemoData, key: Option<&GroupKey>, now: Millis, config: &PolicyConfig) -> CoverageFigures {
    let mut figures = CoverageFigures::default();
    for tag in MustVisitTag::ALL {
        figures.by_tag.insert(*tag, TagCoverage::default());
    }
    for h in &data.households {
        if h.status == HouseholdStatus::MovedOut || !naive_member(&data.roster, key, &h.placement) {
            continue;
        }
        let dues = policy::visits_due(h, now, config);
        let mut any_overdue = false;
        for t in h.tags.keys() {
            let counts = figures.by_tag.get_mut(t).unwrap();
            counts.tagged += 1;
            match dues.iter().find(|d| d.tag == *t) {
                None => counts.covered += 1, // a new arrival with its visit
                Some(d) if matches!(d.state, DueState::Overdue { .. }) => {
                    counts.overdue += 1;
                    any_overdue = true;
                }
                Some(d) if d.last_met.is_some() => counts.covered += 1,
                Some(_) => counts.pending += 1,
            }
        }
        figures.households_tagged += usize::from(!h.tags.is_empty());
        figures.households_overdue += usize::from(any_overdue);
    }
    for counts in figures.by_tag.values_mut() {
        counts.coverage_rate = if counts.tagged == 0 { 1.0 } else { counts.covered as f64 / counts.tagged as f64 };
    }
    figures
}

fn naive_cohort<'a>(data: &'a DemoData, key: Option<&GroupKey>, period: Period) -> Vec<&'a CaseFile> {
    data.cases
        .iter()
        .filter(|c| period.contains(c.reported_at) && naive_member(&data.roster, key, &c.placement))
        .collect()
}

fn naive_case_counts(cases: &[&CaseFile], now: Millis, config: &PolicyConfig) -> CaseCounts {
    let rates = policy::case_rates(cases.iter().copied(), now, config);
    CaseCounts {
        opened: cases.len(),
        completed: rates.completed,
        completed_on_time: rates.completed_on_time,
        completed_late: rates.completed - rates.completed_on_time,
        open: cases.iter().filter(|c| c.is_open()).count(),
        open_overdue: rates.overdue_open,
        reopened: cases.iter().filter(|c| c.status_history().iter().any(|(a, _)| a.kind == ActionKind::Reopen)).count(),
        completion_rate: rates.completion_rate,
        on_time_rate: rates.on_time_rate,
    }
}

fn naive_satisfaction(cases: &[&CaseFile]) -> SatisfactionFigures {
    let scores: Vec<u8> = cases.iter().filter_map(|c| c.satisfaction()).collect();
    let mut distribution = [0; 5];
    for s in &scores {
        distribution[usize::from(*s) - 1] += 1;
    }
    let sum: u64 = scores.iter().map(|s| u64::from(*s)).sum();
    SatisfactionFigures {
        scored: scores.len(),
        mean: (!scores.is_empty()).then(|| sum as f64 / scores.len() as f64),
        distribution,
    }
}

fn naive_arrival(cases: &[&CaseFile], now: Millis, config: &PolicyConfig) -> ArrivalCounts {
    let mut counts = ArrivalCounts::default();
    let mut minutes = Vec::new();
    for c in cases {
        let Some(state) = policy::arrival_state(c, now, config) else { continue };
        counts.events += 1;
        match state {
            ArrivalState::Arrived { on_time: true } => counts.on_time += 1,
            ArrivalState::Arrived { on_time: false } => counts.late += 1,
            ArrivalState::Waiting { deadline, .. } => {
                counts.not_yet += 1;
                counts.not_yet_overdue += usize::from(now > deadline);
            }
        }
        if let Some(at) = policy::first_arrival(c) {
            minutes.push((at - c.reported_at).max(0) as f64 / 60_000.0);
        }
    }
    let decided = counts.on_time + counts.late + counts.not_yet_overdue;
    counts.on_time_rate = if decided == 0 { 1.0 } else { counts.on_time as f64 / decided as f64 };
    minutes.sort_by(|a, b| a.partial_cmp(b).unwrap());
    counts.median_minutes = match minutes.len() {
        0 => None,
        n if n % 2 == 1 => Some(minutes[n / 2]),
        n => Some((minutes[n / 2 - 1] + minutes[n / 2]) / 2.0),
    };
    counts
}

fn naive_visits(data: &DemoData, key: Option<&GroupKey>, period: Period, now: Millis) -> VisitCounts {
    let mut counts = VisitCounts::default();
    for h in data.households.iter().filter(|h| naive_member(&data.roster, key, &h.placement)) {
        for v in h.visits.values().filter(|v| period.contains(v.at.min(now))) {
            counts.visits += 1;
            match v.outcome {
                VisitOutcome::Met => counts.met += 1,
                VisitOutcome::NotHome => counts.not_home += 1,
                VisitOutcome::Refused => counts.refused += 1,
            }
        }
    }
    counts
}

/// Micro-wishes counted from the timeline itself: the kind of the last action that moved the
/// status says how far a wish got (a generic accept or resolve counts like a claim or a
/// fulfilment).
fn naive_wish_counts(cohort: &[&CaseFile]) -> WishCounts {
    use ActionKind::*;
    let last: Vec<Option<ActionKind>> = cohort
        .iter()
        .filter(|c| c.kind == CaseKind::MicroWish)
        .map(|c| c.status_history().last().map(|(a, _)| a.kind))
        .collect();
    let count = |kinds: &[ActionKind]| last.iter().filter(|k| k.is_some_and(|k| kinds.contains(&k))).count();
    let (thanked, fulfilled) = (count(&[Thank, Close]), count(&[Fulfil, Resolve]));
    WishCounts {
        posted: last.len(),
        claimed: thanked + fulfilled + count(&[Claim, Accept, Arrive, Progress, Reopen]),
        fulfilled: thanked + fulfilled,
        thanked,
    }
}

/// The whole dashboard, one group at a time, from the documents and the policy functions.
fn naive_dashboard(data: &DemoData, period: Period, now: Millis, config: &PolicyConfig, by: GroupBy) -> Dashboard {
    let keys = naive_keys(&data.roster, by);
    fn grouped<T>(keys: &[GroupKey], figure: impl Fn(Option<&GroupKey>) -> T) -> Grouped<T> {
        Grouped { total: figure(None), groups: keys.iter().map(|k| (*k, figure(Some(k)))).collect::<BTreeMap<_, _>>() }
    }
    let cases_of = |key: Option<&GroupKey>| {
        let cohort = naive_cohort(data, key, period);
        CaseFigures {
            all: naive_case_counts(&cohort, now, config),
            by_kind: CaseKind::all()
                .into_iter()
                .map(|k| {
                    let of_kind: Vec<&CaseFile> = cohort.iter().copied().filter(|c| c.kind == k).collect();
                    (k, naive_case_counts(&of_kind, now, config))
                })
                .collect(),
            micro_wishes: naive_wish_counts(&cohort),
        }
    };
    let arrival_of = |key: Option<&GroupKey>| {
        let cohort = naive_cohort(data, key, period);
        ArrivalFigures {
            all: naive_arrival(&cohort, now, config),
            by_kind: MustArriveKind::ALL
                .iter()
                .map(|k| {
                    let of_kind: Vec<&CaseFile> =
                        cohort.iter().copied().filter(|c| c.kind == CaseKind::MustArrive(*k)).collect();
                    (*k, naive_arrival(&of_kind, now, config))
                })
                .collect(),
        }
    };
    let weeks_of = |key: Option<&GroupKey>| {
        period
            .weeks()
            .into_iter()
            .map(|week| {
                let cohort = naive_cohort(data, key, week);
                WeekFigures {
                    monday: monday_of(gridlink_shared::time::local_date(week.from)),
                    week,
                    cases: naive_case_counts(&cohort, now, config),
                    must_arrive: naive_arrival(&cohort, now, config),
                    satisfaction: naive_satisfaction(&cohort),
                    visits: naive_visits(data, key, week, now),
                }
            })
            .collect::<Vec<_>>()
    };
    Dashboard {
        period,
        now,
        by,
        coverage: grouped(&keys, |k| naive_coverage(data, k, now, config)),
        must_arrive: grouped(&keys, arrival_of),
        cases: grouped(&keys, cases_of),
        satisfaction: grouped(&keys, |k| naive_satisfaction(&naive_cohort(data, k, period))),
        visits: grouped(&keys, |k| naive_visits(data, k, period, now)),
        weeks: grouped(&keys, weeks_of),
    }
}

fn monday_of(day: NaiveDate) -> NaiveDate {
    use chrono::Datelike;
    day - chrono::Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

fn demo_periods(now: Millis) -> Vec<Period> {
    let today = gridlink_shared::time::local_date(now);
    vec![
        Period::this_week(now),
        Period::this_month(now),
        Period::days(today - chrono::Duration::days(90), today),
        Period::days(today - chrono::Duration::days(400), today + chrono::Duration::days(3)),
    ]
}

#[test]
fn small_demo_figures_equal_a_naive_recomputation_from_the_documents() {
    let data = small_demo();
    let config = PolicyConfig::default();
    let facts = Facts::from_documents(&data.households, &data.cases, &config);
    for by in [GroupBy::Street, GroupBy::Community, GroupBy::Grid, GroupBy::Worker] {
        let grouping = Grouping::new(&data.roster, by);
        assert_eq!(grouping.keys(), naive_keys(&data.roster, by).as_slice());
        for period in demo_periods(NOW) {
            let fast = dashboard(&facts, period, NOW, &config, &grouping);
            let slow = naive_dashboard(data, period, NOW, &config, by);
            assert_eq!(fast.coverage, slow.coverage, "coverage by {by:?}");
            assert_eq!(fast.must_arrive, slow.must_arrive, "must-arrive by {by:?} over {period:?}");
            assert_eq!(fast.cases, slow.cases, "cases by {by:?} over {period:?}");
            assert_eq!(fast.satisfaction, slow.satisfaction, "satisfaction by {by:?} over {period:?}");
            assert_eq!(fast.visits, slow.visits, "visits by {by:?} over {period:?}");
            assert_eq!(fast.weeks, slow.weeks, "weeks by {by:?} over {period:?}");
        }
    }
    // The demo exercises the interesting branches, so the equalities above mean something.
    let year = demo_periods(NOW)[3];
    let board = dashboard(&facts, year, NOW, &config, &Grouping::new(&data.roster, GroupBy::Street));
    let all = board.cases.total.all;
    assert!(all.completed_late > 0 && all.open_overdue > 0 && all.completed_on_time > 0, "{all:?}");
    let arrival = board.must_arrive.total.all;
    assert!(arrival.on_time > 0 && arrival.late > 0, "{arrival:?}");
    let coverage = &board.coverage.total.by_tag;
    assert!(coverage.values().any(|t| t.overdue > 0) && coverage.values().any(|t| t.covered > 0));
    assert!(board.visits.total.not_home > 0 && board.satisfaction.total.scored > 0);
}

/// Asserts that every drill-down list of `board` is as long as its figure.
fn assert_drill_downs_match(facts: &Facts, board: &Dashboard, config: &PolicyConfig, grouping: &Grouping) {
    let (period, now) = (board.period, board.now);
    let groups: Vec<Option<GroupKey>> =
        std::iter::once(None).chain(grouping.keys().iter().copied().map(Some)).collect();
    for group_key in &groups {
        let group = group_key.as_ref();
        let coverage = match group {
            None => &board.coverage.total,
            Some(k) => &board.coverage.groups[k],
        };
        let rows = |figure| coverage_rows(&facts.households, &facts.visits, figure, group, now, config, grouping).len();
        for (tag, counts) in &coverage.by_tag {
            assert_eq!(rows(HouseholdFigure::Tagged(*tag)), counts.tagged);
            assert_eq!(rows(HouseholdFigure::Covered(*tag)), counts.covered);
            assert_eq!(rows(HouseholdFigure::Pending(*tag)), counts.pending);
            assert_eq!(rows(HouseholdFigure::Overdue(*tag)), counts.overdue);
        }
        assert_eq!(rows(HouseholdFigure::HouseholdsTagged), coverage.households_tagged);
        assert_eq!(rows(HouseholdFigure::HouseholdsOverdue), coverage.households_overdue);

        let (cases, arrival, satisfaction, visits, weeks) = match group {
            None => (
                &board.cases.total,
                &board.must_arrive.total,
                &board.satisfaction.total,
                &board.visits.total,
                &board.weeks.total,
            ),
            Some(k) => (
                &board.cases.groups[k],
                &board.must_arrive.groups[k],
                &board.satisfaction.groups[k],
                &board.visits.groups[k],
                &board.weeks.groups[k],
            ),
        };
        let check_cases = |counts: &CaseCounts, kind: Option<CaseKind>, period: Period| {
            let rows = |figure| case_rows(&facts.cases, figure, kind, group, period, now, grouping).len();
            assert_eq!(rows(CaseFigure::Opened), counts.opened);
            assert_eq!(rows(CaseFigure::Completed), counts.completed);
            assert_eq!(rows(CaseFigure::CompletedOnTime), counts.completed_on_time);
            assert_eq!(rows(CaseFigure::CompletedLate), counts.completed_late);
            assert_eq!(rows(CaseFigure::Open), counts.open);
            assert_eq!(rows(CaseFigure::OpenOverdue), counts.open_overdue);
            assert_eq!(rows(CaseFigure::Reopened), counts.reopened);
        };
        let check_arrival = |counts: &ArrivalCounts, kind: Option<CaseKind>, period: Period| {
            let rows = |figure| case_rows(&facts.cases, figure, kind, group, period, now, grouping).len();
            assert_eq!(rows(CaseFigure::MustArrive), counts.events);
            assert_eq!(rows(CaseFigure::ArrivedOnTime), counts.on_time);
            assert_eq!(rows(CaseFigure::ArrivedLate), counts.late);
            assert_eq!(rows(CaseFigure::NotYetArrived), counts.not_yet);
            assert_eq!(rows(CaseFigure::NotYetArrivedOverdue), counts.not_yet_overdue);
        };
        let check_satisfaction = |s: &SatisfactionFigures, period: Period| {
            let rows = |figure| case_rows(&facts.cases, figure, None, group, period, now, grouping).len();
            assert_eq!(rows(CaseFigure::Scored), s.scored);
            for score in 1..=5u8 {
                assert_eq!(rows(CaseFigure::Score(score)), s.distribution[usize::from(score - 1)]);
            }
        };
        let check_visits = |v: &VisitCounts, period: Period| {
            let rows = |figure| visit_rows(&facts.visits, figure, group, period, now, grouping).len();
            assert_eq!(rows(VisitFigure::All), v.visits);
            assert_eq!(rows(VisitFigure::Met), v.met);
            assert_eq!(rows(VisitFigure::NotHome), v.not_home);
            assert_eq!(rows(VisitFigure::Refused), v.refused);
        };
        check_cases(&cases.all, None, period);
        for (kind, counts) in &cases.by_kind {
            check_cases(counts, Some(*kind), period);
        }
        check_arrival(&arrival.all, None, period);
        for (kind, counts) in &arrival.by_kind {
            check_arrival(counts, Some(CaseKind::MustArrive(*kind)), period);
        }
        check_satisfaction(satisfaction, period);
        check_visits(visits, period);
        for week in weeks {
            check_cases(&week.cases, None, week.week);
            check_arrival(&week.must_arrive, None, week.week);
            check_satisfaction(&week.satisfaction, week.week);
            check_visits(&week.visits, week.week);
        }
    }
}

#[test]
fn small_demo_every_drill_down_list_is_as_long_as_its_figure() {
    let data = small_demo();
    let config = PolicyConfig::default();
    let facts = Facts::from_documents(&data.households, &data.cases, &config);
    let today = gridlink_shared::time::local_date(NOW);
    let period = Period::days(today - chrono::Duration::days(60), today);
    for by in [GroupBy::Community, GroupBy::Grid, GroupBy::Worker] {
        let grouping = Grouping::new(&data.roster, by);
        let board = dashboard(&facts, period, NOW, &config, &grouping);
        assert_drill_downs_match(&facts, &board, &config, &grouping);
    }
    // And on the hand-built community, where grid 2 has two workers.
    let w = world();
    let facts = hand_facts(&w);
    let grouping = Grouping::new(&w.roster, GroupBy::Worker);
    let board = dashboard(&facts, Period::days(date(11, 1), date(12, 31)), NOW, &config, &grouping);
    assert_drill_downs_match(&facts, &board, &config, &grouping);
}

// ---------------------------------------------------------------------------------------------
// Row order does not matter.

fn shuffled<T: Clone>(rows: &[T], seed: u64) -> Vec<T> {
    let mut rows = rows.to_vec();
    rows.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    rows
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Documents in any order give the same facts (as a set), and facts in any order give the
    /// same figures and the same drill-down lists.
    #[test]
    fn figures_do_not_depend_on_row_order(
        seed in any::<u64>(),
        by_index in 0usize..4,
        days_back in 0i64..120,
        length in 1i64..60,
        now_offset_hours in 0i64..72,
    ) {
        let data = small_demo();
        let config = PolicyConfig::default();
        let now = NOW + now_offset_hours * HOUR_MS;
        let by = [GroupBy::Street, GroupBy::Community, GroupBy::Grid, GroupBy::Worker][by_index];
        let grouping = Grouping::new(&data.roster, by);
        let today = gridlink_shared::time::local_date(now);
        let first = today - chrono::Duration::days(days_back);
        let period = Period::days(first, first + chrono::Duration::days(length));

        let facts = Facts::from_documents(&data.households, &data.cases, &config);
        let from_shuffled_docs = Facts::from_documents(
            &shuffled(&data.households, seed),
            &shuffled(&data.cases, seed ^ 1),
            &config,
        );
        let sorted = |f: &Facts| {
            let mut f = f.clone();
            f.households.sort_by_key(|h| h.id);
            f.visits.sort_by_key(|v| v.id);
            f.cases.sort_by_key(|c| c.id);
            f
        };
        prop_assert_eq!(sorted(&facts), sorted(&from_shuffled_docs));

        let shuffled_rows = Facts {
            households: shuffled(&facts.households, seed ^ 2),
            visits: shuffled(&facts.visits, seed ^ 3),
            cases: shuffled(&facts.cases, seed ^ 4),
        };
        let board = dashboard(&facts, period, now, &config, &grouping);
        prop_assert_eq!(&board, &dashboard(&shuffled_rows, period, now, &config, &grouping));
        prop_assert_eq!(&board, &dashboard(&from_shuffled_docs, period, now, &config, &grouping));

        let group = grouping.keys().get(usize::try_from(seed % 3).unwrap()).copied();
        let ids = |rows: Vec<&CaseFacts>| rows.into_iter().map(|c| c.id).collect::<Vec<_>>();
        for figure in [CaseFigure::Opened, CaseFigure::CompletedLate, CaseFigure::OpenOverdue, CaseFigure::ArrivedLate] {
            prop_assert_eq!(
                ids(case_rows(&facts.cases, figure, None, group.as_ref(), period, now, &grouping)),
                ids(case_rows(&shuffled_rows.cases, figure, None, group.as_ref(), period, now, &grouping))
            );
        }
        let households = |f: &Facts| {
            coverage_rows(&f.households, &f.visits, HouseholdFigure::HouseholdsOverdue, group.as_ref(), now, &config, &grouping)
                .into_iter()
                .map(|r| (r.household.id, r.tag))
                .collect::<Vec<_>>()
        };
        prop_assert_eq!(households(&facts), households(&shuffled_rows));
        let visits = |f: &Facts| {
            visit_rows(&f.visits, VisitFigure::Met, group.as_ref(), period, now, &grouping)
                .into_iter()
                .map(|v| v.id)
                .collect::<Vec<_>>()
        };
        prop_assert_eq!(visits(&facts), visits(&shuffled_rows));
    }
}

// ---------------------------------------------------------------------------------------------
// Random documents: reopened cases, concurrent (merged) actions, clocks running fast.

#[derive(Clone, Debug)]
struct RandomHousehold {
    grid2: bool,
    moved_out: bool,
    tags: Vec<(usize, i64)>,
    visits: Vec<(i64, usize)>,
}

#[derive(Clone, Debug)]
struct RandomCase {
    kind: usize,
    grid2: bool,
    reported_minutes_ago: i64,
    /// (action kind, minutes after the previous action, concurrent with the previous one)
    actions: Vec<(usize, i64, bool, u8)>,
}

fn random_household() -> impl Strategy<Value = RandomHousehold> {
    (
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::collection::vec((0usize..4, 0i64..60), 0..4),
        prop::collection::vec((-40 * 24i64..3 * 24, 0usize..3), 0..6),
    )
        .prop_map(|(grid2, moved_out, tags, visits)| RandomHousehold { grid2, moved_out, tags, visits })
}

fn random_case() -> impl Strategy<Value = RandomCase> {
    (
        0usize..CaseKind::all().len(),
        any::<bool>(),
        0i64..35 * 24 * 60,
        prop::collection::vec((0usize..7, 0i64..5 * 24 * 60, prop::bool::weighted(0.2), 1u8..=5), 0..7),
    )
        .prop_map(|(kind, grid2, reported_minutes_ago, actions)| RandomCase {
            kind,
            grid2,
            reported_minutes_ago,
            actions,
        })
}

fn random_world(households: &[RandomHousehold], cases: &[RandomCase]) -> DemoData {
    let mut w = world();
    w.households.clear();
    w.cases.clear();
    let (g1, g2, li, zhou) = (w.grid1, w.grid2, w.li, w.zhou);
    for (n, spec) in households.iter().enumerate() {
        let grid = if spec.grid2 { g2 } else { g1 };
        let h = w.household(n as u128, grid, "101", "韩淑华");
        for (t, days_ago) in &spec.tags {
            tag(h, MustVisitTag::ALL[*t], gridlink_shared::time::local_date(NOW - days_ago * DAY_MS));
        }
        for (i, (hours, outcome)) in spec.visits.iter().enumerate() {
            let outcome = [VisitOutcome::Met, VisitOutcome::NotHome, VisitOutcome::Refused][*outcome];
            visit(h, (n * 10 + i) as u128, NOW + hours * HOUR_MS, outcome);
        }
        if spec.moved_out {
            h.status = HouseholdStatus::MovedOut;
        }
    }
    let mut next_action = 0u128;
    for (n, spec) in cases.iter().enumerate() {
        let grid = if spec.grid2 { g2 } else { g1 };
        let kind = CaseKind::all()[spec.kind];
        let c = w.case(n as u128, kind, grid, "随机事件", NOW - spec.reported_minutes_ago * MINUTE_MS);
        let mut at = c.reported_at;
        let mut lamport = 0;
        for (action, minutes, concurrent, score) in &spec.actions {
            use ActionKind::*;
            let kind = [Accept, Arrive, Progress, Resolve, Close, Reopen, Comment][*action];
            at += minutes * MINUTE_MS;
            // A concurrent action was made offline on another phone: same counter as the last.
            lamport = if *concurrent && lamport > 0 { lamport } else { lamport + 1 };
            next_action += 1;
            let who = if kind == Close || kind == Reopen { zhou } else { li };
            c.timeline.insert(
                ActionId::from_u128(next_action),
                Action {
                    id: ActionId::from_u128(next_action),
                    kind,
                    by: who.0,
                    by_name: who.1.to_string(),
                    at,
                    lamport,
                    note: String::new(),
                    satisfaction: (kind == Close).then_some(*score),
                    to: None,
                    to_name: None,
                    claimant: None,
                    outlet: None,
                },
            );
        }
    }
    DemoData {
        roster: w.roster,
        households: w.households,
        cases: w.cases,
        activities: Vec::new(),
        elink_requests: Vec::new(),
        now: NOW,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// On random documents, the facts path equals the naive path straight from the documents,
    /// whatever the row order, and every drill-down list is as long as its figure.
    #[test]
    fn random_documents_agree_with_the_naive_path(
        households in prop::collection::vec(random_household(), 0..10),
        cases in prop::collection::vec(random_case(), 0..14),
        seed in any::<u64>(),
        by_index in 0usize..4,
    ) {
        let data = random_world(&households, &cases);
        let config = PolicyConfig::default();
        let by = [GroupBy::Street, GroupBy::Community, GroupBy::Grid, GroupBy::Worker][by_index];
        let grouping = Grouping::new(&data.roster, by);
        let period = Period::days(date(10, 20), date(11, 28));
        let facts = Facts::from_documents(&data.households, &data.cases, &config);
        let shuffled_rows = Facts {
            households: shuffled(&facts.households, seed),
            visits: shuffled(&facts.visits, seed ^ 1),
            cases: shuffled(&facts.cases, seed ^ 2),
        };
        let board = dashboard(&shuffled_rows, period, NOW, &config, &grouping);
        prop_assert_eq!(&board, &naive_dashboard(&data, period, NOW, &config, by));
        prop_assert_eq!(&board, &dashboard(&facts, period, NOW, &config, &grouping));
        assert_drill_downs_match(&shuffled_rows, &board, &config, &grouping);
    }
}
