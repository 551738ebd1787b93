//! How long the street demo's visit ledger (走访台账) takes to write, and how much memory it
//! needs, as XLSX and as CSV.
//!
//! ```sh
//! cargo run --release -p gridlink-sync-server --example ledger_bench
//! ```
//!
//! The rows are the real visit ledger of `gridlink-server export --what visits` (the same
//! layout and rows, from [`ledgers::build`] over the street demo's facts), a year of visits,
//! streamed from memory into the writer. Peak memory is the process's VmHWM, reset before each
//! file, so "above baseline" is what the writer itself added on top of the loaded demo data.

use std::time::Instant;

use gridlink_shared::demo::{DemoSize, generate};
use gridlink_shared::figures::Facts;
use gridlink_shared::time::local_date;
use gridlink_shared::{Lang, PolicyConfig, Scope};
use gridlink_sync_server::ledger::{LedgerError, write_csv, write_xlsx};
use gridlink_sync_server::ledgers::{self, ExportRequest, Format, LedgerKind};

fn main() -> Result<(), LedgerError> {
    let started = Instant::now();
    let now = gridlink_shared::time::start_of_local_day(chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
    let demo = generate(DemoSize::Street, 7, now);
    let facts = Facts::from_documents(&demo.households, &demo.cases, &PolicyConfig::default());
    println!(
        "street demo: {} households, {} visits, generated in {:.1} s",
        demo.households.len(),
        facts.visits.len(),
        started.elapsed().as_secs_f64()
    );
    let request = |format| ExportRequest {
        what: LedgerKind::Visits,
        format,
        scopes: demo.roster.streets.iter().map(|s| Scope::Street(s.id)).collect(),
        period: None,
        lang: Lang::Zh,
    };

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
            "xlsx" => {
                let (ledger, rows) = ledgers::build(&demo.roster, &facts, &request(Format::Xlsx), now);
                write_xlsx(&ledger, rows, &path, Lang::Zh, &mut progress)?
            }
            _ => {
                let (ledger, rows) = ledgers::build(&demo.roster, &facts, &request(Format::Csv), now);
                write_csv(&ledger, rows, &path, Lang::Zh, &mut progress)?
            }
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
