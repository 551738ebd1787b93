//! The admin commands give the same answers on both backends: the same demo and the same
//! roster CSV loaded into SQLite and into PostgreSQL, then the roster report (`roster
//! --json` and its text) compared whole, so PostgreSQL's counts from the documents agree
//! with SQLite's query rows.

#[path = "common/backends.rs"]
mod backends;
mod common;

use std::process::Output;

use backends::Backend;
use common::{DEMO_NOW, DEMO_SEED};
use gridlink_shared::demo::{self, DemoSize};
use gridlink_shared::time::now_millis;
use gridlink_sync_server::SqliteStore;
use gridlink_sync_server::store::PgStore;

const BIN: &str = env!("CARGO_BIN_EXE_gridlink-server");

fn run<B: Backend>(place: &B::Place, args: &[&str]) -> Output {
    let out = std::process::Command::new(BIN).args(args).args(B::cli_args(place)).output().unwrap();
    assert!(out.status.success(), "{} {args:?}: {}", B::NAME, String::from_utf8_lossy(&out.stderr));
    out
}

/// A new building with two households in the demo's first grid, and a new grid worker.
fn roster_csv(grid: &str) -> String {
    format!(
        "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room
building,00000000-0000-4000-8000-000000000881,{grid},滨湖小区9栋,,,,2,6,2,,
household,00000000-0000-4000-8000-000000000882,00000000-0000-4000-8000-000000000881,欧阳秀兰,13907148821,,,,,,1,101
household,00000000-0000-4000-8000-000000000883,00000000-0000-4000-8000-000000000881,司马建国,13907148832,,,,,,2,602
staff,00000000-0000-4000-8000-000000000884,,诸葛晓燕,13907148843,grid-worker,grid:{grid},,,,,
"
    )
}

fn loaded<B: Backend>() -> (B::Place, B) {
    let (place, store) = B::fresh();
    store.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let grid = demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW).roster.grids[0].id;
    let summary = store.import_csv_from(roster_csv(&grid.to_string()).as_bytes(), now_millis()).unwrap();
    assert_eq!((summary.buildings, summary.staff, summary.households_created), (1, 1, 2), "{}", B::NAME);
    (place, store)
}

#[test]
fn the_roster_report_and_its_text_are_the_same_on_both_backends() {
    let (sqlite_place, sqlite) = loaded::<SqliteStore>();
    let (pg_place, pg) = loaded::<PgStore>();

    let report = serde_json::to_value(sqlite.roster_report().unwrap()).unwrap();
    assert_eq!(report, serde_json::to_value(pg.roster_report().unwrap()).unwrap());
    let grids: Vec<&serde_json::Value> = report["streets"][0]["communities"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["grids"].as_array().unwrap())
        .collect();
    // The comparison means something only if the demo has each kind of count.
    for count in ["households", "moved_out", "open_cases"] {
        assert!(grids.iter().any(|g| g[count].as_u64().unwrap() > 0), "no grid has {count}");
    }
    let building = grids.iter().flat_map(|g| g["buildings"].as_array().unwrap()).find(|b| b["name"] == "滨湖小区9栋");
    assert_eq!(building.unwrap()["households"], 2);

    let text = |out: Output| String::from_utf8(out.stdout).unwrap();
    assert_eq!(text(run::<SqliteStore>(&sqlite_place, &["roster"])), text(run::<PgStore>(&pg_place, &["roster"])));
}
