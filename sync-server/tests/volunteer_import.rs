//! Volunteers (志愿者) on the roster: `Role::Volunteer` is a role of the domain, so the roster
//! CSV imports it like any other staff role, and `gridlink-server import --help` names it.
//! The import stories run against both backends (`stories!`).

#[path = "common/backends.rs"]
mod backends;

use std::process::Command;

use backends::Backend;
use gridlink_shared::demo::{self, DemoData, DemoSize};
use gridlink_shared::time::now_millis;
use gridlink_shared::{Role, Scope};

const DEMO_NOW: i64 = 1_795_000_000_000;

fn demo_store<B: Backend>() -> (B::Place, B, DemoData) {
    let (place, store) = B::fresh();
    store.load_demo(DemoSize::Small, 7, DEMO_NOW);
    (place, store, demo::generate(DemoSize::Small, 7, DEMO_NOW))
}

/// A grid worker and two volunteers of the demo's first grid.
fn roster_with_volunteers(grid: &str) -> String {
    format!(
        "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room
staff,00000000-0000-4000-8000-000000000501,,周雅琴,13971120501,volunteer,grid:{grid},,,,,
staff,00000000-0000-4000-8000-000000000502,,严国华,13971120502,volunteer,grid:{grid},,,,,
staff,00000000-0000-4000-8000-000000000503,,何丽萍,13971120503,grid-worker,grid:{grid},,,,,
"
    )
}

fn the_roster_csv_imports_volunteers_with_their_scope<B: Backend>() {
    let (_place, store, demo) = demo_store::<B>();
    let grid = demo.roster.grids[0].id;
    store.import_csv_from(roster_with_volunteers(&grid.to_string()).as_bytes(), now_millis()).unwrap();

    let roster = store.roster().unwrap();
    let volunteer = roster.staff.iter().find(|s| s.name == "周雅琴").expect("周雅琴 is on the roster after the import");
    assert_eq!(volunteer.name, "周雅琴");
    assert_eq!(volunteer.role, Role::Volunteer);
    assert_eq!(volunteer.scopes, vec![Scope::Grid(grid)]);
    let volunteers: Vec<&str> =
        roster.staff.iter().filter(|s| s.role == Role::Volunteer).map(|s| s.name.as_str()).collect();
    assert!(volunteers.contains(&"严国华") && !volunteers.contains(&"何丽萍"), "{volunteers:?}");
}

fn an_unknown_role_is_still_refused_with_the_row_named<B: Backend>() {
    let (_place, store, demo) = demo_store::<B>();
    let grid = demo.roster.grids[0].id;
    let csv = roster_with_volunteers(&grid.to_string()).replace(",volunteer,grid", ",义工,grid");
    let err = store.import_csv_from(csv.as_bytes(), now_millis()).unwrap_err().to_string();
    assert!(err.contains("row 2, column role"), "{err}");
    assert!(!store.roster().unwrap().staff.iter().any(|s| s.name == "周雅琴"), "nothing imported");
}

/// PostgreSQL cannot store a NUL in text: without the importer's own check this was a
/// storage fault there and an import on SQLite.
fn a_nul_in_a_name_is_a_row_problem_on_every_backend<B: Backend>() {
    let (_place, store, demo) = demo_store::<B>();
    let grid = demo.roster.grids[0].id;
    let csv = roster_with_volunteers(&grid.to_string()).replace("严国华", "严国\0华");
    let err = store.import_csv_from(csv.as_bytes(), now_millis()).unwrap_err().to_string();
    assert!(err.contains("row 3, column name: contains a NUL character"), "{err}");
    assert!(!store.roster().unwrap().staff.iter().any(|s| s.name == "周雅琴"), "nothing imported");
}

stories!(
    the_roster_csv_imports_volunteers_with_their_scope,
    an_unknown_role_is_still_refused_with_the_row_named,
    a_nul_in_a_name_is_a_row_problem_on_every_backend,
);

#[test]
fn the_import_help_and_user_add_help_name_the_volunteer_role() {
    let bin = env!("CARGO_BIN_EXE_gridlink-server");
    let import = Command::new(bin).args(["import", "--help"]).output().unwrap();
    assert!(import.status.success());
    let text = String::from_utf8(import.stdout).unwrap();
    let role_line = text.lines().find(|l| l.starts_with("role ")).expect("the role line of the CSV help");
    assert!(role_line.contains("volunteer") && role_line.contains("building-leader"), "{role_line}");

    let add = Command::new(bin).args(["user", "add", "--help"]).output().unwrap();
    let text = String::from_utf8(add.stdout).unwrap();
    assert!(text.contains("volunteer"), "{text}");
}
