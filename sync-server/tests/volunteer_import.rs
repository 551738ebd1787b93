//! Volunteers (志愿者) on the roster: `Role::Volunteer` is a role of the domain, so the roster
//! CSV imports it like any other staff role, and `gridlink-server import --help` names it.

mod common;

use std::process::Command;

use common::Harness;
use gridlink_shared::time::now_millis;
use gridlink_shared::{Role, Scope};

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

#[test]
fn the_roster_csv_imports_volunteers_with_their_scope() {
    let h = Harness::new();
    let grid = h.demo.roster.grids[0].id;
    h.admin.import_csv_from(roster_with_volunteers(&grid.to_string()).as_bytes(), now_millis()).unwrap();

    let roster = h.admin.roster().unwrap();
    let volunteer = roster.staff.iter().find(|s| s.name == "周雅琴").expect("周雅琴 is on the roster after the import");
    assert_eq!(volunteer.name, "周雅琴");
    assert_eq!(volunteer.role, Role::Volunteer);
    assert_eq!(volunteer.scopes, vec![Scope::Grid(grid)]);
    let volunteers: Vec<&str> =
        roster.staff.iter().filter(|s| s.role == Role::Volunteer).map(|s| s.name.as_str()).collect();
    assert!(volunteers.contains(&"严国华") && !volunteers.contains(&"何丽萍"), "{volunteers:?}");
}

#[test]
fn an_unknown_role_is_still_refused_with_the_row_named() {
    let h = Harness::new();
    let grid = h.demo.roster.grids[0].id;
    let csv = roster_with_volunteers(&grid.to_string()).replace(",volunteer,grid", ",义工,grid");
    let err = h.admin.import_csv_from(csv.as_bytes(), now_millis()).unwrap_err().to_string();
    assert!(err.contains("role"), "{err}");
    assert!(!h.admin.roster().unwrap().staff.iter().any(|s| s.name == "周雅琴"), "nothing imported");
}

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
