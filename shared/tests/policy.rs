//! Policy rules and their edges: tags added after a visit, moved-out households, clocks
//! hours off, visits recorded late, cases reopened after close.

mod common;

use chrono::NaiveDate;
use common::*;
use gridlink_shared::policy::*;
use gridlink_shared::time::{DAY_MS, HOUR_MS, MINUTE_MS, local_date};
use gridlink_shared::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn visit(at: i64, outcome: VisitOutcome) -> Visit {
    Visit {
        id: VisitId::new(),
        visitor: UserId::from_u128(100),
        visitor_name: "李秀英".into(),
        at,
        recorded_at: at,
        outcome,
        notes: String::new(),
        needs_found: vec![],
        follow_up: None,
        residents_present: vec![],
    }
}

fn tag(file: &mut HouseholdFile, tag: MustVisitTag, since: NaiveDate) {
    file.tags.insert(tag, TagEntry { since, added_by: UserId::from_u128(100), note: String::new() });
}

fn add_visit(file: &mut HouseholdFile, v: Visit) {
    file.visits.insert(v.id, v);
}

#[test]
fn empty_nest_household_is_due_weekly_after_the_last_met_visit() {
    let config = PolicyConfig::default();
    let mut file = household();
    tag(&mut file, MustVisitTag::EmptyNest, date(2026, 1, 1));
    add_visit(&mut file, visit(NOW - 9 * DAY_MS, VisitOutcome::Met));
    let due = visits_due(&file, NOW, &config);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].due_on, date(2026, 11, 26));
    assert_eq!(due[0].state, DueState::Overdue { days: 2 });

    add_visit(&mut file, visit(NOW - 7 * DAY_MS, VisitOutcome::Met));
    assert_eq!(visits_due(&file, NOW, &config)[0].state, DueState::DueToday);
    add_visit(&mut file, visit(NOW - DAY_MS, VisitOutcome::Met));
    assert_eq!(visits_due(&file, NOW, &config)[0].state, DueState::NotDue { days: 6 });
}

#[test]
fn not_home_and_refused_do_not_count_as_visits() {
    let config = PolicyConfig::default();
    let mut file = household();
    tag(&mut file, MustVisitTag::EmptyNest, date(2026, 11, 1));
    add_visit(&mut file, visit(NOW - HOUR_MS, VisitOutcome::NotHome));
    add_visit(&mut file, visit(NOW - 2 * HOUR_MS, VisitOutcome::Refused));
    let due = &visits_due(&file, NOW, &config)[0];
    assert_eq!(due.due_on, date(2026, 11, 8), "counted from the tag start, not from failed attempts");
    assert_eq!(due.state, DueState::Overdue { days: 20 });
    assert_eq!(due.last_met, None);
}

#[test]
fn a_tag_added_after_a_visit_ignores_that_visit() {
    let config = PolicyConfig::default();
    let mut file = household();
    add_visit(&mut file, visit(NOW - 20 * DAY_MS, VisitOutcome::Met));
    // Became a poor family 10 days ago: the visit before that does not count.
    tag(&mut file, MustVisitTag::PoorFamily, local_date(NOW - 10 * DAY_MS));
    let due = &visits_due(&file, NOW, &config)[0];
    assert_eq!(due.last_met, None);
    assert_eq!(due.due_on, local_date(NOW - 10 * DAY_MS) + chrono::Duration::days(30));
    assert_eq!(due.state, DueState::NotDue { days: 20 });
}

#[test]
fn new_arrival_needs_one_visit_within_seven_days_then_drops_off() {
    let config = PolicyConfig::default();
    let mut file = household();
    tag(&mut file, MustVisitTag::NewArrival, date(2026, 11, 20));
    assert_eq!(visits_due(&file, NOW, &config)[0].state, DueState::Overdue { days: 1 });
    add_visit(&mut file, visit(NOW - HOUR_MS, VisitOutcome::Met));
    assert!(visits_due(&file, NOW, &config).is_empty());
}

#[test]
fn moved_out_households_are_never_due() {
    let config = PolicyConfig::default();
    let mut file = household();
    tag(&mut file, MustVisitTag::EmptyNest, date(2025, 1, 1));
    assert!(!visits_due(&file, NOW, &config).is_empty());
    file.status = HouseholdStatus::MovedOut;
    file.moved_out_on = Some(date(2026, 11, 1));
    assert!(visits_due(&file, NOW, &config).is_empty());
}

#[test]
fn a_phone_clock_hours_fast_cannot_push_the_due_date_out() {
    let config = PolicyConfig::default();
    let mut file = household();
    tag(&mut file, MustVisitTag::EmptyNest, date(2026, 1, 1));
    // The phone's clock ran three days fast when it stamped the visit.
    add_visit(&mut file, visit(NOW + 3 * DAY_MS, VisitOutcome::Met));
    let due = &visits_due(&file, NOW, &config)[0];
    assert_eq!(due.last_met, Some(NOW), "a visit in the future counts as now");
    assert_eq!(due.due_on, local_date(NOW) + chrono::Duration::days(7));
}

#[test]
fn a_visit_recorded_late_counts_from_when_it_happened() {
    let config = PolicyConfig::default();
    let mut file = household();
    tag(&mut file, MustVisitTag::ProblemFamily, date(2026, 1, 1));
    let mut late = visit(NOW - 10 * DAY_MS, VisitOutcome::Met);
    late.recorded_at = NOW; // typed in today, after a week without signal
    add_visit(&mut file, late);
    let due = &visits_due(&file, NOW, &config)[0];
    assert_eq!(due.due_on, local_date(NOW - 10 * DAY_MS) + chrono::Duration::days(14));
    assert_eq!(due.state, DueState::NotDue { days: 4 });
}

#[test]
fn due_dates_use_shanghai_days_not_utc() {
    let config = PolicyConfig::default();
    let mut file = household();
    tag(&mut file, MustVisitTag::EmptyNest, date(2026, 1, 1));
    // 23:30 on Nov 21 in Shanghai is 15:30 UTC: the visit belongs to Nov 21, so the next one
    // is due on Nov 28, and at 00:30 on Nov 28 Shanghai time (still Nov 27 in UTC) it is due today.
    let visit_at = NOW - 7 * DAY_MS + 13 * HOUR_MS + 30 * MINUTE_MS;
    assert_eq!(local_date(visit_at), date(2026, 11, 21));
    add_visit(&mut file, visit(visit_at, VisitOutcome::Met));
    let just_after_midnight = NOW - 9 * HOUR_MS - 30 * MINUTE_MS;
    assert_eq!(local_date(just_after_midnight), date(2026, 11, 28));
    assert_eq!(visits_due(&file, just_after_midnight, &config)[0].state, DueState::DueToday);
}

#[test]
fn must_arrive_deadline_is_met_or_missed_by_the_first_arrival() {
    let config = PolicyConfig::default();
    let worker = grid_worker();
    let reported = NOW - 2 * HOUR_MS;
    let mut emergency = case(CaseKind::MustArrive(MustArriveKind::Emergency), &worker, reported);
    assert_eq!(arrival_deadline(&emergency, &config), Some(reported + 30 * MINUTE_MS));
    assert_eq!(
        arrival_state(&emergency, reported + 10 * MINUTE_MS, &config),
        Some(ArrivalState::Waiting { deadline: reported + 30 * MINUTE_MS, remaining_ms: 20 * MINUTE_MS })
    );
    emergency.push_action(action(ActionKind::Arrive, &worker, reported + 29 * MINUTE_MS));
    assert_eq!(arrival_state(&emergency, NOW, &config), Some(ArrivalState::Arrived { on_time: true }));

    let mut late = case(CaseKind::MustArrive(MustArriveKind::Emergency), &worker, reported);
    late.push_action(action(ActionKind::Arrive, &worker, reported + 31 * MINUTE_MS));
    assert_eq!(arrival_state(&late, NOW, &config), Some(ArrivalState::Arrived { on_time: false }));

    let help = case(CaseKind::Help(ServiceCategory::Medical), &worker, reported);
    assert_eq!(arrival_state(&help, NOW, &config), None, "only must-arrive events have an arrival deadline");
}

#[test]
fn completion_deadline_restarts_when_a_closed_case_is_reopened() {
    let config = PolicyConfig::default();
    let worker = grid_worker();
    let supervisor = principal(Role::Supervisor, vec![Scope::Community(placement().community)]);
    let reported = NOW - 10 * DAY_MS;
    let mut c = case(CaseKind::Help(ServiceCategory::Utilities), &worker, reported);
    assert_eq!(completion_deadline(&c, &config), reported + 72 * HOUR_MS);
    c.push_action(action(ActionKind::Accept, &worker, reported + HOUR_MS));
    c.push_action(action(ActionKind::Resolve, &worker, reported + DAY_MS));
    c.push_action(action(ActionKind::Close, &supervisor, reported + 2 * DAY_MS));
    assert_eq!(completion_state(&c, NOW, &config), CompletionState::Done { on_time: true });

    let reopened_at = NOW - 4 * DAY_MS;
    c.push_action(action(ActionKind::Reopen, &supervisor, reopened_at));
    assert_eq!(c.status(), CaseStatus::Accepted);
    assert_eq!(completion_deadline(&c, &config), reopened_at + 72 * HOUR_MS);
    assert_eq!(
        completion_state(&c, NOW, &config),
        CompletionState::Open { deadline: reopened_at + 72 * HOUR_MS, overdue: true }
    );
    c.push_action(action(ActionKind::Resolve, &worker, NOW - HOUR_MS));
    assert_eq!(completion_state(&c, NOW, &config), CompletionState::Done { on_time: false });
}

#[test]
fn completion_rate_counts_resolved_and_closed_cases() {
    let config = PolicyConfig::default();
    let worker = grid_worker();
    let reported = NOW - 5 * DAY_MS;
    let open = case(CaseKind::Dispute, &worker, reported);
    let mut resolved = case(CaseKind::Dispute, &worker, reported);
    resolved.push_action(action(ActionKind::Resolve, &worker, reported + DAY_MS));
    let mut closed_late = case(CaseKind::Help(ServiceCategory::Locksmith), &worker, reported);
    closed_late.push_action(action(ActionKind::Close, &worker, reported + 4 * DAY_MS));
    let rates = case_rates([&open, &resolved, &closed_late], NOW, &config);
    assert_eq!((rates.total, rates.completed, rates.completed_on_time), (3, 2, 1));
    assert!((rates.completion_rate - 2.0 / 3.0).abs() < 1e-9);
    assert!((rates.on_time_rate - 0.5).abs() < 1e-9);
    assert_eq!(rates.overdue_open, 0, "a dispute has 7 days");
    assert_eq!(rates.mean_satisfaction, Some(5.0));
    assert_eq!(case_rates([], NOW, &config).completion_rate, 1.0);
}
