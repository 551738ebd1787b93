//! The roster in SQLite: streets, communities, grids, buildings, outlets and staff, the party
//! branches, building party groups, party members and volunteers ([`PARTY_SCHEMA`]), and the
//! reference-data version. Backend-neutral, for PostgreSQL too: the slice each principal sees
//! ([`reference`]), the roster report ([`report`]) and the CSV import ([`import`]), each with
//! the backend's reads and writes behind a small interface.

mod import;
mod reference;
mod report;

use gridlink_shared::time::Millis;
use gridlink_shared::{
    Building, Community, Grid, Outlet, PartyBranch, PartyGroup, PartyMember, Roster, Scope, Staff, Street, Volunteer,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::sqlite::{parse_code, parse_id, scopes_json};

pub use import::{CSV_COLUMNS, ImportError, ImportSummary, MAX_IMPORT_BYTES, OPTIONAL_COLUMNS, RowProblem};
pub(super) use import::{ImportTarget, NewDoc, import, open_file};
pub(super) use reference::reference_from;
pub use report::RosterReport;
pub(super) use report::{DocCounts, build_report};

/// The tables of the "1" and "3" of the method, created at open like the rest of the schema
/// (`CREATE TABLE IF NOT EXISTS`, so data directories made before them gain them).
pub(super) const PARTY_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS party_branches (
    id    TEXT PRIMARY KEY,
    grid  TEXT NOT NULL REFERENCES grids(id),
    name  TEXT NOT NULL,
    phone TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS party_groups (
    id       TEXT PRIMARY KEY,
    branch   TEXT NOT NULL REFERENCES party_branches(id),
    building TEXT NOT NULL REFERENCES buildings(id),
    name     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS party_members (
    id          TEXT PRIMARY KEY,
    branch      TEXT NOT NULL REFERENCES party_branches(id),
    building    TEXT REFERENCES buildings(id),
    name        TEXT NOT NULL,
    phone       TEXT NOT NULL,
    reported_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS volunteers (
    id        TEXT PRIMARY KEY,
    community TEXT NOT NULL REFERENCES communities(id),
    name      TEXT NOT NULL,
    phone     TEXT NOT NULL,
    skills    TEXT NOT NULL
);
"#;

pub(super) fn reference_version(conn: &Connection) -> Result<u64, StoreError> {
    let raw: String =
        conn.prepare_cached("SELECT value FROM meta WHERE key = 'reference_version'")?.query_row([], |r| r.get(0))?;
    raw.parse().map_err(|_| StoreError::Backend(format!("reference_version '{raw}' is not a number")))
}

/// Marks the reference data changed, so every device receives it at its next sync.
pub(super) fn bump_reference_version(conn: &Connection) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'reference_version'",
        [],
    )?;
    Ok(())
}

fn exists(conn: &Connection, table: &str, id: &str) -> Result<bool, StoreError> {
    let sql = format!("SELECT 1 FROM {table} WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], |_| Ok(())).optional()?.is_some())
}

/// Refuses scopes that name no street, community, grid or building of the roster.
pub(super) fn check_scopes_exist(conn: &Connection, scopes: &[Scope]) -> Result<(), StoreError> {
    for scope in scopes {
        let (table, id) = scope_table(scope);
        if !exists(conn, table, &id)? {
            return Err(StoreError::Invalid(format!(
                "scope {scope}: no such {} on the roster",
                &table[..table.len() - 1]
            )));
        }
    }
    Ok(())
}

fn scope_table(scope: &Scope) -> (&'static str, String) {
    match scope {
        Scope::Street(id) => ("streets", id.to_string()),
        Scope::Community(id) => ("communities", id.to_string()),
        Scope::Grid(id) => ("grids", id.to_string()),
        Scope::Building(id) => ("buildings", id.to_string()),
    }
}

pub(super) fn insert_staff(conn: &Connection, staff: &Staff, now: Millis) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO users (id, name, role, phone, pledge, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, phone = excluded.phone,
            pledge = excluded.pledge, scopes = excluded.scopes",
    )?
    .execute(params![
        staff.id.to_string(),
        staff.name,
        staff.role.code(),
        staff.phone,
        staff.pledge,
        scopes_json(&staff.scopes)?,
        now
    ])?;
    Ok(())
}

fn upsert_street(conn: &Connection, s: &Street) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO streets (id, name) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
    )?
    .execute(params![s.id.to_string(), s.name])?;
    Ok(())
}

fn upsert_community(conn: &Connection, c: &Community) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO communities (id, street, name) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET street = excluded.street, name = excluded.name",
    )?
    .execute(params![c.id.to_string(), c.street.to_string(), c.name])?;
    Ok(())
}

fn upsert_grid(conn: &Connection, g: &Grid) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO grids (id, community, name) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET community = excluded.community, name = excluded.name",
    )?
    .execute(params![g.id.to_string(), g.community.to_string(), g.name])?;
    Ok(())
}

fn upsert_building(conn: &Connection, b: &Building) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO buildings (id, grid, name, units, floors, rooms_per_floor) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET grid = excluded.grid, name = excluded.name, units = excluded.units,
            floors = excluded.floors, rooms_per_floor = excluded.rooms_per_floor",
    )?
    .execute(params![b.id.to_string(), b.grid.to_string(), b.name, b.units, b.floors, b.rooms_per_floor])?;
    Ok(())
}

fn upsert_outlet(conn: &Connection, o: &Outlet) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO outlets (id, community, category, name, phone, address, hours)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        o.id.to_string(),
        o.community.to_string(),
        o.category.code(),
        o.name,
        o.phone,
        o.address,
        o.hours
    ])?;
    Ok(())
}

fn upsert_party_branch(conn: &Connection, b: &PartyBranch) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO party_branches (id, grid, name, phone) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET grid = excluded.grid, name = excluded.name, phone = excluded.phone",
    )?
    .execute(params![b.id.to_string(), b.grid.to_string(), b.name, b.phone])?;
    Ok(())
}

fn upsert_party_group(conn: &Connection, g: &PartyGroup) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO party_groups (id, branch, building, name) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET branch = excluded.branch, building = excluded.building, name = excluded.name",
    )?
    .execute(params![g.id.to_string(), g.branch.to_string(), g.building.to_string(), g.name])?;
    Ok(())
}

fn upsert_party_member(conn: &Connection, m: &PartyMember) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO party_members (id, branch, building, name, phone, reported_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET branch = excluded.branch, building = excluded.building,
            name = excluded.name, phone = excluded.phone, reported_at = excluded.reported_at",
    )?
    .execute(params![
        m.id.to_string(),
        m.branch.to_string(),
        m.building.map(|b| b.to_string()),
        m.name,
        m.phone,
        m.reported_at.to_string()
    ])?;
    Ok(())
}

fn upsert_volunteer(conn: &Connection, v: &Volunteer) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO volunteers (id, community, name, phone, skills) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET community = excluded.community, name = excluded.name,
            phone = excluded.phone, skills = excluded.skills",
    )?
    .execute(params![
        v.id.to_string(),
        v.community.to_string(),
        v.name,
        v.phone,
        serde_json::to_string(&v.skills)?
    ])?;
    Ok(())
}

/// Writes a whole roster (demo data).
pub(super) fn insert_roster(conn: &Connection, roster: &Roster, now: Millis) -> Result<(), StoreError> {
    roster.streets.iter().try_for_each(|s| upsert_street(conn, s))?;
    roster.communities.iter().try_for_each(|c| upsert_community(conn, c))?;
    roster.grids.iter().try_for_each(|g| upsert_grid(conn, g))?;
    roster.buildings.iter().try_for_each(|b| upsert_building(conn, b))?;
    roster.outlets.iter().try_for_each(|o| upsert_outlet(conn, o))?;
    roster.party_branches.iter().try_for_each(|b| upsert_party_branch(conn, b))?;
    roster.party_groups.iter().try_for_each(|g| upsert_party_group(conn, g))?;
    roster.party_members.iter().try_for_each(|m| upsert_party_member(conn, m))?;
    roster.volunteers.iter().try_for_each(|v| upsert_volunteer(conn, v))?;
    roster.staff.iter().try_for_each(|s| insert_staff(conn, s, now))
}

/// The whole roster as stored.
pub(super) fn load_roster(conn: &Connection) -> Result<Roster, StoreError> {
    fn rows<T>(
        conn: &Connection,
        sql: &str,
        f: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = conn.prepare(sql)?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(f(row)?);
        }
        Ok(out)
    }
    let text = |row: &rusqlite::Row<'_>, i: usize| -> Result<String, StoreError> { Ok(row.get::<_, String>(i)?) };
    Ok(Roster {
        streets: rows(conn, "SELECT id, name FROM streets ORDER BY name, id", |r| {
            Ok(Street { id: parse_id(&text(r, 0)?)?, name: text(r, 1)? })
        })?,
        communities: rows(conn, "SELECT id, street, name FROM communities ORDER BY name, id", |r| {
            Ok(Community { id: parse_id(&text(r, 0)?)?, street: parse_id(&text(r, 1)?)?, name: text(r, 2)? })
        })?,
        grids: rows(conn, "SELECT id, community, name FROM grids ORDER BY name, id", |r| {
            Ok(Grid { id: parse_id(&text(r, 0)?)?, community: parse_id(&text(r, 1)?)?, name: text(r, 2)? })
        })?,
        buildings: rows(
            conn,
            "SELECT id, grid, name, units, floors, rooms_per_floor FROM buildings ORDER BY name, id",
            |r| {
                Ok(Building {
                    id: parse_id(&text(r, 0)?)?,
                    grid: parse_id(&text(r, 1)?)?,
                    name: text(r, 2)?,
                    units: r.get(3)?,
                    floors: r.get(4)?,
                    rooms_per_floor: r.get(5)?,
                })
            },
        )?,
        staff: rows(conn, "SELECT id, name, role, phone, pledge, scopes FROM users ORDER BY name, id", |r| {
            Ok(Staff {
                id: parse_id(&text(r, 0)?)?,
                name: text(r, 1)?,
                role: parse_code(&text(r, 2)?)?,
                phone: text(r, 3)?,
                pledge: text(r, 4)?,
                scopes: serde_json::from_str(&text(r, 5)?)?,
            })
        })?,
        outlets: rows(
            conn,
            "SELECT id, community, category, name, phone, address, hours FROM outlets ORDER BY name, id",
            |r| {
                Ok(Outlet {
                    id: parse_id(&text(r, 0)?)?,
                    community: parse_id(&text(r, 1)?)?,
                    category: parse_code(&text(r, 2)?)?,
                    name: text(r, 3)?,
                    phone: text(r, 4)?,
                    address: text(r, 5)?,
                    hours: text(r, 6)?,
                })
            },
        )?,
        party_branches: rows(conn, "SELECT id, grid, name, phone FROM party_branches ORDER BY name, id", |r| {
            Ok(PartyBranch {
                id: parse_id(&text(r, 0)?)?,
                grid: parse_id(&text(r, 1)?)?,
                name: text(r, 2)?,
                phone: text(r, 3)?,
            })
        })?,
        party_groups: rows(conn, "SELECT id, branch, building, name FROM party_groups ORDER BY name, id", |r| {
            Ok(PartyGroup {
                id: parse_id(&text(r, 0)?)?,
                branch: parse_id(&text(r, 1)?)?,
                building: parse_id(&text(r, 2)?)?,
                name: text(r, 3)?,
            })
        })?,
        party_members: rows(
            conn,
            "SELECT id, branch, building, name, phone, reported_at FROM party_members ORDER BY name, id",
            |r| {
                let reported = text(r, 5)?;
                Ok(PartyMember {
                    id: parse_id(&text(r, 0)?)?,
                    branch: parse_id(&text(r, 1)?)?,
                    building: r.get::<_, Option<String>>(2)?.map(|b| parse_id(&b)).transpose()?,
                    name: text(r, 3)?,
                    phone: text(r, 4)?,
                    reported_at: reported.parse().map_err(|_| {
                        StoreError::Backend(format!("party member reported_at '{reported}' is not a date"))
                    })?,
                })
            },
        )?,
        volunteers: rows(conn, "SELECT id, community, name, phone, skills FROM volunteers ORDER BY name, id", |r| {
            Ok(Volunteer {
                id: parse_id(&text(r, 0)?)?,
                community: parse_id(&text(r, 1)?)?,
                name: text(r, 2)?,
                phone: text(r, 3)?,
                skills: serde_json::from_str(&text(r, 4)?)?,
            })
        })?,
    })
}
