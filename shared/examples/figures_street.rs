//! Times the supervisors' figures on the `street` demo (25,000 households, ~158,000 visits,
//! ~15,000 cases): generating the documents, building the plain rows (facts), and computing
//! the dashboard for the whole street and this month, grouped each way, plus a few drill-down
//! lists. Run: `cargo run --release -p gridlink-shared --example figures_street`.

use std::time::{Duration, Instant};

use gridlink_shared::demo::{DemoSize, generate};
use gridlink_shared::figures::{
    CaseFigure, Facts, GroupBy, Grouping, HouseholdFigure, Period, VisitFigure, case_rows, coverage_rows, dashboard,
    visit_rows,
};
use gridlink_shared::policy::PolicyConfig;
use gridlink_shared::time;

fn timed<T>(what: &str, work: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = work();
    let took = started.elapsed();
    println!("{what:<58} {took:>10.2?}");
    (value, took)
}

fn main() {
    // The same instant as the tests, so the numbers below are reproducible.
    let now = 1_795_831_200_000;
    let config = PolicyConfig::default();
    let (data, _) = timed("generate the street demo (typed documents)", || generate(DemoSize::Street, 1, now));
    let (facts, _) =
        timed("build facts from every document", || Facts::from_documents(&data.households, &data.cases, &config));
    println!(
        "  {} households, {} visits, {} cases, {} grids",
        facts.households.len(),
        facts.visits.len(),
        facts.cases.len(),
        data.roster.grids.len()
    );
    let month = Period::this_month(now);
    println!("  period: {} .. {} (Asia/Shanghai)", time::format_local(month.from), time::format_local(month.to));

    let mut slowest = Duration::ZERO;
    for by in [GroupBy::Street, GroupBy::Community, GroupBy::Grid, GroupBy::Worker] {
        let (grouping, t1) = timed(&format!("index the roster, grouped by {by:?}"), || Grouping::new(&data.roster, by));
        // The first run pays for cold caches; the best of five is what a warm server sees.
        let (board, first) = timed(&format!("dashboard for the street, this month, by {by:?}"), || {
            dashboard(&facts, month, now, &config, &grouping)
        });
        let best = (0..5)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(dashboard(&facts, month, now, &config, &grouping));
                started.elapsed()
            })
            .min()
            .unwrap_or(first);
        println!("{:<58} {best:>10.2?}", "  best of 5 more");
        let t2 = first;
        slowest = slowest.max(t1 + t2);
        if by == GroupBy::Street {
            let cases = board.cases.total.all;
            let coverage = &board.coverage.total;
            let arrival = board.must_arrive.total.all;
            println!(
                "  {} cases opened, 办结率 {:.1}%, 限时办结率 {:.1}%, {} overdue; 四必到 {} events, median {:.0} min; \
                 {} tagged households, {} overdue; satisfaction {:.2}; {} visits; {} weeks",
                cases.opened,
                100.0 * cases.completion_rate,
                100.0 * cases.on_time_rate,
                cases.open_overdue,
                arrival.events,
                arrival.median_minutes.unwrap_or(0.0),
                coverage.households_tagged,
                coverage.households_overdue,
                board.satisfaction.total.mean.unwrap_or(0.0),
                board.visits.total.visits,
                board.weeks.total.len(),
            );
        }
    }

    let grouping = Grouping::new(&data.roster, GroupBy::Grid);
    let (rows, _) = timed("drill-down: overdue households of the street", || {
        coverage_rows(
            &facts.households,
            &facts.visits,
            HouseholdFigure::HouseholdsOverdue,
            None,
            now,
            &config,
            &grouping,
        )
    });
    println!("  {} rows", rows.len());
    let (rows, _) = timed("drill-down: cases opened this month and overdue now", || {
        case_rows(&facts.cases, CaseFigure::OpenOverdue, None, None, month, now, &grouping)
    });
    println!("  {} rows", rows.len());
    let (rows, _) = timed("drill-down: met visits this month, the street", || {
        visit_rows(&facts.visits, VisitFigure::Met, None, month, now, &grouping)
    });
    println!("  {} rows", rows.len());
    println!("slowest console page (roster index + dashboard): {slowest:.2?}");
}
