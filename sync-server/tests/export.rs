//! `gridlink-server export`: the four ledgers from a real data directory through the real
//! binary, read back (XLSX with calamine, CSV with the csv crate) and held against the
//! supervisors' rows and the shared figures: same row counts, same numbers, scope respected.

mod common;

use std::path::Path;
use std::process::Command;

use calamine::{Data, Reader, Xlsx, open_workbook};
use common::Harness;
use gridlink_shared::figures::{self, GroupBy, GroupKey, Grouping, Period};
use gridlink_shared::time::{local_date, now_millis};
use gridlink_shared::{PolicyConfig, Scope};

fn export(h: &Harness, args: &[&str], out: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_gridlink-server"))
        .args(["export", "--data"])
        .arg(h.dir.path())
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{args:?}: {stdout} {}", String::from_utf8_lossy(&output.stderr));
    stdout
}

fn sheet(path: &Path) -> calamine::Range<Data> {
    let mut book: Xlsx<_> = open_workbook(path).unwrap();
    let name = book.sheet_names()[0].clone();
    book.worksheet_range(&name).unwrap()
}

#[test]
fn every_ledger_has_the_rows_and_numbers_of_the_figures() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    let street = Scope::Street(h.demo.roster.streets[0].id);
    let facts = h.admin.facts(&[street]).unwrap();

    let visits = dir.path().join("visits.xlsx");
    let printed = export(&h, &["--what", "visits"], &visits);
    assert!(printed.contains(&format!("wrote {} rows", facts.visits.len())), "{printed}");
    let range = sheet(&visits);
    assert_eq!(range.height(), facts.visits.len() + 1, "a header and one row per visit");
    assert_eq!(range.get((0, 0)), Some(&Data::String("走访时间".into())));
    assert!(matches!(range.get((1, 0)), Some(Data::DateTime(_))), "visit times are Excel dates");

    // A period and a community: only those visits.
    let community = h.demo.roster.communities[0].id;
    let today = local_date(now_millis());
    let first = today - chrono::Duration::days(30);
    let period = Period::days(first, today);
    let csv_path = dir.path().join("visits.csv");
    export(
        &h,
        &[
            "--what",
            "visits",
            "--format",
            "csv",
            "--scope",
            &format!("community:{community}"),
            "--from",
            &first.to_string(),
            "--to",
            &today.to_string(),
        ],
        &csv_path,
    );
    let expected = facts.visits.iter().filter(|v| v.placement.community == community && period.contains(v.at)).count();
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(reader.records().count(), expected);

    let cases = dir.path().join("cases.xlsx");
    export(&h, &["--what", "cases"], &cases);
    let range = sheet(&cases);
    assert_eq!(range.height(), facts.cases.len() + 1);
    let completed_late =
        facts.cases.iter().filter(|c| c.completed_at.is_some_and(|t| t > c.completion_deadline)).count();
    let on_time_column = 12;
    let late_in_file = range.rows().skip(1).filter(|r| r[on_time_column] == Data::String("否".into())).count();
    assert_eq!(late_in_file, completed_late, "按时办结 says 否 for every case completed after its deadline");

    let households = dir.path().join("households.csv");
    export(&h, &["--what", "households", "--format", "csv", "--english"], &households);
    let mut reader = csv::Reader::from_path(&households).unwrap();
    assert_eq!(reader.headers().unwrap().get(2), Some("Address"));
    assert_eq!(reader.records().count(), facts.households.len());

    // The summary: one row per grid with the dashboard's numbers.
    let summary = dir.path().join("summary.xlsx");
    export(&h, &["--what", "summary"], &summary);
    let range = sheet(&summary);
    let roster = h.admin.roster().unwrap();
    let now = now_millis();
    let board = figures::dashboard(
        &facts,
        Period::this_month(now),
        now,
        &PolicyConfig::default(),
        &Grouping::new(&roster, GroupBy::Grid),
    );
    assert_eq!(range.height(), roster.grids.len() + 1);
    for row in range.rows().skip(1) {
        let grid = roster.grids.iter().find(|g| Data::String(g.name.clone()) == row[1]).expect("a grid's name");
        let cases = board.cases.groups[&GroupKey::Grid(grid.id)].all;
        assert_eq!(row[11], Data::Float(cases.opened as f64), "受理事件 of {}", grid.name);
        assert_eq!(row[12], Data::Float(cases.completed as f64), "已办结 of {}", grid.name);
        let coverage = &board.coverage.groups[&GroupKey::Grid(grid.id)];
        assert_eq!(row[3], Data::Float(coverage.households_overdue as f64), "逾期未访户 of {}", grid.name);
    }
}

#[test]
fn bad_arguments_get_a_clear_error_and_no_file() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.xlsx");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gridlink-server"))
            .args(["export", "--data"])
            .arg(h.dir.path())
            .args(args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let output = run(&["--what", "visits", "--from", "2026-11-30", "--to", "2026-11-01"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("before --from"));
    let output = run(&["--what", "everything"]);
    assert!(!output.status.success());
    let output = run(&["--what", "visits", "--scope", "grid:not-a-uuid"]);
    assert!(!output.status.success());
    assert!(!out.exists(), "no file from a refused export");
}
