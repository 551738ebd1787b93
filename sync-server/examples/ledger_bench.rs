//! How long a year's visit ledger of the street demo takes to write, and how much memory it
//! needs, as XLSX and as CSV.
//!
//! ```sh
//! cargo run --release -p gridlink-sync-server --example ledger_bench
//! ```
//!
//! The rows are the street demo's own visits (address, head of household, visitor, time,
//! outcome, notes), 158,000 of them, streamed from memory into the writer the way an export
//! streams them from the store. Peak memory is the process's VmHWM, reset before each file,
//! so "above baseline" is what the writer itself added on top of the loaded demo data.

use std::collections::HashMap;
use std::time::Instant;

use gridlink_shared::demo::{DemoSize, generate};
use gridlink_shared::time::local_date;
use gridlink_shared::{HouseholdFile, Lang, Visit, VisitOutcome};
use gridlink_sync_server::ledger::{Cell, Column, Kind, Label, Ledger, LedgerError, Row, write_csv, write_xlsx};

const ROWS: usize = 158_000;

const VISITS: Ledger = Ledger::new(
    Label::new("走访台账", "Visit ledger"),
    Label::new("走访", "Visits"),
    &[
        Column::new("走访时间", "Visit time", Kind::DateTime),
        Column::new("社区", "Community", Kind::Text),
        Column::new("网格", "Grid", Kind::Text),
        Column::new("住户地址", "Address", Kind::Text),
        Column::new("户主", "Head of household", Kind::Text),
        Column::new("走访人", "Visitor", Kind::Text),
        Column::new("结果", "Outcome", Kind::Text),
        Column::new("见到本人", "Met", Kind::YesNo),
        Column::new("发现需求", "Needs found", Kind::Text),
        Column::new("备注", "Notes", Kind::Text),
        Column::new("回访日期", "Follow-up", Kind::Date),
    ],
);

fn main() -> Result<(), LedgerError> {
    let started = Instant::now();
    let now = gridlink_shared::time::start_of_local_day(chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
    let demo = generate(DemoSize::Street, 7, now);
    let communities: HashMap<_, _> = demo.roster.communities.iter().map(|c| (c.id, c.name.as_str())).collect();
    let grids: HashMap<_, _> = demo.roster.grids.iter().map(|g| (g.id, g.name.as_str())).collect();
    let mut visits: Vec<(&HouseholdFile, &Visit)> =
        demo.households.iter().flat_map(|h| h.visits.values().map(move |v| (h, v))).collect();
    visits.sort_by_key(|(_, v)| (v.at, v.id));
    let in_demo = visits.len();
    println!(
        "street demo: {} households, {in_demo} visits, generated in {:.1} s; writing {ROWS} rows",
        demo.households.len(),
        started.elapsed().as_secs_f64()
    );

    let row = |(h, v): &(&HouseholdFile, &Visit)| -> Row {
        let needs: Vec<&str> = v.needs_found.iter().map(|n| n.label(Lang::Zh)).collect();
        vec![
            Cell::DateTime(v.at),
            Cell::text(communities.get(&h.placement.community).copied().unwrap_or("")),
            Cell::text(grids.get(&h.placement.grid).copied().unwrap_or("")),
            Cell::Text(format!("{}{}单元{}", h.building_name, h.unit, h.room)),
            Cell::text(&h.head),
            Cell::text(&v.visitor_name),
            Cell::text(v.outcome.label(Lang::Zh)),
            Cell::YesNo(v.outcome == VisitOutcome::Met),
            if needs.is_empty() { Cell::Empty } else { Cell::Text(needs.join("、")) },
            if v.notes.is_empty() { Cell::Empty } else { Cell::text(&v.notes) },
            v.follow_up.map_or(Cell::Empty, Cell::Date),
        ]
    };
    // The demo's year, cycled if it holds fewer visits than the figure we measure.
    let rows = || visits.iter().cycle().take(ROWS).map(row);

    let dir = tempfile::tempdir().expect("temp dir");
    println!("process RSS with the demo data loaded: {:.1} MiB", status_kib("VmRSS:") as f64 / 1024.0);
    println!(
        "{:<5} {:>8} {:>8} {:>9} {:>10} {:>10} {:>15}",
        "", "rows", "seconds", "rows/s", "MiB", "peak MiB", "above baseline"
    );
    for format in ["xlsx", "csv"] {
        let path = dir.path().join(format!("visits-{}.{format}", local_date(now)));
        reset_peak();
        let baseline = status_kib("VmRSS:");
        let started = Instant::now();
        let mut progress_calls = 0;
        let mut progress = |_| progress_calls += 1;
        let written = match format {
            "xlsx" => write_xlsx(&VISITS, rows(), &path, Lang::Zh, &mut progress)?,
            _ => write_csv(&VISITS, rows(), &path, Lang::Zh, &mut progress)?,
        };
        let seconds = started.elapsed().as_secs_f64();
        let peak = status_kib("VmHWM:");
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "{format:<5} {written:>8} {seconds:>8.2} {:>9.0} {:>10.1} {:>10.1} {:>15.1}",
            written as f64 / seconds,
            size as f64 / 1_048_576.0,
            peak as f64 / 1024.0,
            peak.saturating_sub(baseline) as f64 / 1024.0,
        );
        assert!(progress_calls >= written / gridlink_sync_server::ledger::PROGRESS_EVERY);
    }
    Ok(())
}

/// Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs), so each file's peak is
/// its own.
fn reset_peak() {
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        println!("(cannot reset VmHWM here: the peaks below include generating the demo)");
    }
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}
