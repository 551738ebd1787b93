//! The roster in SQLite: streets, communities, grids, buildings, outlets and staff; the
//! reference-data version; the slice each principal sees; the roster report and CSV import.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use gridlink_shared::protocol::ReferenceData;
use gridlink_shared::time::Millis;
use gridlink_shared::validate::validate_document;
use gridlink_shared::{
    AnyDoc, Building, BuildingId, Community, CommunityId, Grid, GridId, HouseholdFile, HouseholdId, Outlet, Principal,
    Role, Roster, Scope, Staff, Street, StreetId, UserId, doc,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::push::{LogAppender, insert_change, write_doc};
use super::sqlite::{import_actor, parse_code, parse_id, scopes_json};
use super::{SqliteStore, StoreError};

pub(super) fn reference_version(conn: &Connection) -> Result<u64, StoreError> {
    let raw: String = conn.query_row("SELECT value FROM meta WHERE key = 'reference_version'", [], |r| r.get(0))?;
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

/// Writes a whole roster (demo data).
pub(super) fn insert_roster(conn: &Connection, roster: &Roster, now: Millis) -> Result<(), StoreError> {
    roster.streets.iter().try_for_each(|s| upsert_street(conn, s))?;
    roster.communities.iter().try_for_each(|c| upsert_community(conn, c))?;
    roster.grids.iter().try_for_each(|g| upsert_grid(conn, g))?;
    roster.buildings.iter().try_for_each(|b| upsert_building(conn, b))?;
    roster.outlets.iter().try_for_each(|o| upsert_outlet(conn, o))?;
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
    })
}

/// Which community each scope reaches into, indexed once per roster.
struct CommunityIndex<'a> {
    roster: &'a Roster,
    grid_community: HashMap<GridId, CommunityId>,
    building_grid: HashMap<BuildingId, GridId>,
}

impl<'a> CommunityIndex<'a> {
    fn new(roster: &'a Roster) -> Self {
        CommunityIndex {
            roster,
            grid_community: roster.grids.iter().map(|g| (g.id, g.community)).collect(),
            building_grid: roster.buildings.iter().map(|b| (b.id, b.grid)).collect(),
        }
    }

    /// The communities a set of scopes reaches into.
    fn communities_of(&self, scopes: &[Scope]) -> BTreeSet<CommunityId> {
        let mut out = BTreeSet::new();
        for scope in scopes {
            match scope {
                Scope::Street(street) => {
                    out.extend(self.roster.communities.iter().filter(|c| c.street == *street).map(|c| c.id));
                }
                Scope::Community(c) => {
                    out.insert(*c);
                }
                Scope::Grid(g) => out.extend(self.grid_community.get(g)),
                Scope::Building(b) => out.extend(self.building_grid.get(b).and_then(|g| self.grid_community.get(g))),
            }
        }
        out
    }
}

/// The reference data a principal sees: the communities their scopes reach into, with
/// their grids, buildings, staff and service outlets.
pub(super) fn reference_for(
    conn: &Connection,
    principal: &Principal,
    version: u64,
) -> Result<ReferenceData, StoreError> {
    let full = load_roster(conn)?;
    let index = CommunityIndex::new(&full);
    let visible = index.communities_of(&principal.scopes);
    let streets: BTreeSet<StreetId> =
        full.communities.iter().filter(|c| visible.contains(&c.id)).map(|c| c.street).collect();
    let grids: BTreeSet<GridId> = full.grids.iter().filter(|g| visible.contains(&g.community)).map(|g| g.id).collect();
    let roster = Roster {
        streets: full.streets.iter().filter(|s| streets.contains(&s.id)).cloned().collect(),
        communities: full.communities.iter().filter(|c| visible.contains(&c.id)).cloned().collect(),
        grids: full.grids.iter().filter(|g| grids.contains(&g.id)).cloned().collect(),
        buildings: full.buildings.iter().filter(|b| grids.contains(&b.grid)).cloned().collect(),
        staff: full
            .staff
            .iter()
            .filter(|s| s.id == principal.user || !index.communities_of(&s.scopes).is_disjoint(&visible))
            .cloned()
            .collect(),
        outlets: full.outlets.iter().filter(|o| visible.contains(&o.community)).cloned().collect(),
    };
    Ok(ReferenceData { version, roster })
}

/// `roster --json`: the org tree with household counts.
#[derive(Clone, Debug, Serialize)]
pub struct RosterReport {
    pub reference_version: u64,
    pub streets: Vec<StreetReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StreetReport {
    pub id: StreetId,
    pub name: String,
    pub communities: Vec<CommunityReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CommunityReport {
    pub id: CommunityId,
    pub name: String,
    pub grids: Vec<GridReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GridReport {
    pub id: GridId,
    pub name: String,
    /// Household files in the grid, moved-out households included.
    pub households: u64,
    pub moved_out: u64,
    pub open_cases: u64,
    pub buildings: Vec<BuildingReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BuildingReport {
    pub id: BuildingId,
    pub name: String,
    pub households: u64,
}

/// What `import` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportSummary {
    pub streets: usize,
    pub communities: usize,
    pub grids: usize,
    pub buildings: usize,
    pub staff: usize,
    pub households_created: usize,
    pub households_already_present: usize,
}

/// The columns of the roster CSV, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "record_type",
    "id",
    "parent_id",
    "name",
    "phone",
    "role",
    "scopes",
    "units",
    "floors",
    "rooms_per_floor",
    "unit",
    "room",
];

/// One problem in an import file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowProblem {
    /// Line in the file (the header is row 1).
    pub row: u64,
    pub column: String,
    /// In English (the CLI prints this).
    pub problem: String,
    /// The same in Chinese, for the console's roster upload.
    pub zh: String,
}

impl RowProblem {
    fn new(row: u64, column: &str, en: impl Into<String>, zh: impl Into<String>) -> Self {
        RowProblem { row, column: column.to_string(), problem: en.into(), zh: zh.into() }
    }
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}, column {}: {}", self.row, self.column, self.problem)
    }
}

/// A file that cannot be imported, with every problem found.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} problem(s); nothing was imported:\n{}", .0.len(), .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Rows(Vec<RowProblem>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct CsvRow {
    line: u64,
    fields: BTreeMap<&'static str, String>,
}

impl CsvRow {
    fn get(&self, column: &str) -> &str {
        self.fields.get(column).map(|s| s.as_str()).unwrap_or("")
    }
}

impl SqliteStore {
    /// `roster --json`.
    pub fn roster_report(&self) -> Result<RosterReport, StoreError> {
        self.read(|conn| {
            let roster = load_roster(conn)?;
            let count_by = |sql: &str| -> Result<HashMap<String, u64>, StoreError> {
                let mut stmt = conn.prepare(sql)?;
                let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            };
            let per_grid = count_by("SELECT grid, COUNT(*) FROM household_rows GROUP BY grid")?;
            let moved_out =
                count_by("SELECT grid, COUNT(*) FROM household_rows WHERE status != 'active' GROUP BY grid")?;
            let per_building =
                count_by("SELECT building, COUNT(*) FROM household_rows WHERE building IS NOT NULL GROUP BY building")?;
            let open = count_by("SELECT grid, COUNT(*) FROM case_rows WHERE status != 'closed' GROUP BY grid")?;
            let streets = roster
                .streets
                .iter()
                .map(|s| StreetReport {
                    id: s.id,
                    name: s.name.clone(),
                    communities: roster
                        .communities
                        .iter()
                        .filter(|c| c.street == s.id)
                        .map(|c| CommunityReport {
                            id: c.id,
                            name: c.name.clone(),
                            grids: roster
                                .grids
                                .iter()
                                .filter(|g| g.community == c.id)
                                .map(|g| GridReport {
                                    id: g.id,
                                    name: g.name.clone(),
                                    households: per_grid.get(&g.id.to_string()).copied().unwrap_or(0),
                                    moved_out: moved_out.get(&g.id.to_string()).copied().unwrap_or(0),
                                    open_cases: open.get(&g.id.to_string()).copied().unwrap_or(0),
                                    buildings: roster
                                        .buildings
                                        .iter()
                                        .filter(|b| b.grid == g.id)
                                        .map(|b| BuildingReport {
                                            id: b.id,
                                            name: b.name.clone(),
                                            households: per_building.get(&b.id.to_string()).copied().unwrap_or(0),
                                        })
                                        .collect(),
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect();
            Ok(RosterReport { reference_version: reference_version(conn)?, streets })
        })
    }

    /// Imports a roster CSV (see [`CSV_COLUMNS`] and `docs/protocol.md`). Every bad row is
    /// reported; a file with any problem imports nothing.
    pub fn import_csv(&self, path: &Path, now: Millis) -> Result<ImportSummary, ImportError> {
        let file = std::fs::File::open(path)
            .map_err(|e| StoreError::Invalid(format!("cannot open {}: {e}", path.display())))?;
        self.import_csv_from(file, now)
    }

    /// [`Self::import_csv`] from any reader.
    pub fn import_csv_from(&self, input: impl std::io::Read, now: Millis) -> Result<ImportSummary, ImportError> {
        let mut problems = Vec::new();
        let rows = read_csv(input, &mut problems);
        let actor = import_actor(self)?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let plan = plan_import(&tx, &rows, now, &mut problems)?;
            if !problems.is_empty() {
                return Ok(Err(problems));
            }
            let mut summary = ImportSummary::default();
            for s in &plan.roster.streets {
                upsert_street(&tx, s)?;
                summary.streets += 1;
            }
            for c in &plan.roster.communities {
                upsert_community(&tx, c)?;
                summary.communities += 1;
            }
            for g in &plan.roster.grids {
                upsert_grid(&tx, g)?;
                summary.grids += 1;
            }
            for b in &plan.roster.buildings {
                upsert_building(&tx, b)?;
                summary.buildings += 1;
            }
            for s in &plan.roster.staff {
                insert_staff(&tx, s, now)?;
                summary.staff += 1;
            }
            let mut log = LogAppender::default();
            for household in &plan.households {
                if exists(&tx, "docs", &household.id.to_string())? {
                    summary.households_already_present += 1;
                    continue;
                }
                let mut created = doc::create(household, actor.clone(), now)
                    .map_err(|e| StoreError::Backend(format!("household document: {e}")))?;
                let change = created
                    .get_last_local_change()
                    .ok_or_else(|| StoreError::Backend("new household document has no change".into()))?;
                let hash = change.hash().to_string();
                let any = AnyDoc::Household(household.clone());
                insert_change(&tx, &hash, any.doc_id(), change.raw_bytes(), &actor.to_hex_string(), now)?;
                for scope in any.scopes() {
                    log.append(&tx, scope, &hash, any.doc_id())?;
                }
                write_doc(&tx, &any, &created.save(), now)?;
                summary.households_created += 1;
            }
            bump_reference_version(&tx)?;
            tx.commit()?;
            Ok(Ok(summary))
        })?
        .map_err(ImportError::Rows)
    }
}

fn read_csv(input: impl std::io::Read, problems: &mut Vec<RowProblem>) -> Vec<CsvRow> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(input);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            problems.push(RowProblem::new(1, "-", format!("unreadable header: {e}"), format!("无法读取表头：{e}")));
            return Vec::new();
        }
    };
    let mut index: BTreeMap<&'static str, usize> = BTreeMap::new();
    for column in CSV_COLUMNS {
        match headers.iter().position(|h| h == *column) {
            Some(i) => {
                index.insert(column, i);
            }
            None => problems.push(RowProblem::new(1, column, "missing from the header", "表头缺少这一列")),
        }
    }
    for header in headers.iter().filter(|h| !CSV_COLUMNS.contains(h)) {
        problems.push(RowProblem::new(1, header, "unknown column", "未知的列"));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        match record {
            Ok(record) => {
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                if record.iter().all(|f| f.is_empty()) {
                    continue;
                }
                let fields = index.iter().map(|(col, i)| (*col, record.get(*i).unwrap_or("").to_string())).collect();
                rows.push(CsvRow { line, fields });
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                problems.push(RowProblem::new(
                    line,
                    "-",
                    format!("unreadable row: {e}"),
                    format!("无法读取这一行：{e}"),
                ));
            }
        }
    }
    rows
}

struct ImportPlan {
    roster: Roster,
    households: Vec<HouseholdFile>,
}

fn plan_import(
    conn: &Connection,
    rows: &[CsvRow],
    now: Millis,
    problems: &mut Vec<RowProblem>,
) -> Result<ImportPlan, StoreError> {
    let stored = load_roster(conn)?;
    let mut roster = Roster::default();
    let mut households = Vec::new();
    let mut seen_ids: HashMap<String, u64> = HashMap::new();
    // Stored roster plus this file's org rows, built once the org rows are read.
    let mut merged: Option<Roster> = None;
    let mut problem = |row: &CsvRow, column: &str, (en, zh): (String, String)| {
        problems.push(RowProblem::new(row.line, column, en, zh));
    };
    // Parents may come later in the file, so the org rows are read in order of the hierarchy.
    for kind in ["street", "community", "grid", "building", "staff", "household"] {
        for row in rows.iter().filter(|r| r.get("record_type") == kind) {
            let id_text = row.get("id");
            let Ok(id) = id_text.parse::<uuid::Uuid>() else {
                problem(row, "id", (format!("'{id_text}' is not a UUID"), format!("“{id_text}”不是有效的 UUID")));
                continue;
            };
            if let Some(first) = seen_ids.insert(id.to_string(), row.line) {
                problem(
                    row,
                    "id",
                    (format!("id {id} is already used on row {first}"), format!("编号 {id} 已在第 {first} 行使用")),
                );
                continue;
            }
            let name = row.get("name").to_string();
            if name.is_empty() || name.chars().count() > 60 {
                problem(row, "name", ("must be 1 to 60 characters".into(), "名称须为 1 到 60 个字".into()));
                continue;
            }
            let parent = row.get("parent_id");
            let parent_missing = |what: &str, zh: &str| {
                (
                    format!("no {what} with id '{parent}' in this file or on the roster"),
                    format!("本文件和花名册中都没有编号为“{parent}”的{zh}"),
                )
            };
            match kind {
                "street" => roster.streets.push(Street { id: StreetId(id), name }),
                "community" => match parent.parse::<StreetId>() {
                    Ok(street) if has_street(&stored, &roster, street) => {
                        roster.communities.push(Community { id: CommunityId(id), street, name })
                    }
                    _ => problem(row, "parent_id", parent_missing("street", "街道")),
                },
                "grid" => match parent.parse::<CommunityId>() {
                    Ok(community) if has_community(&stored, &roster, community) => {
                        roster.grids.push(Grid { id: GridId(id), community, name })
                    }
                    _ => problem(row, "parent_id", parent_missing("community", "社区")),
                },
                "building" => {
                    let grid = match parent.parse::<GridId>() {
                        Ok(grid) if has_grid(&stored, &roster, grid) => Some(grid),
                        _ => {
                            problem(row, "parent_id", parent_missing("grid", "网格"));
                            None
                        }
                    };
                    let mut numbers = [0u16; 3];
                    let mut ok = grid.is_some();
                    for (slot, column) in numbers.iter_mut().zip(["units", "floors", "rooms_per_floor"]) {
                        match row.get(column).parse::<u16>() {
                            Ok(n) if (1..=200).contains(&n) => *slot = n,
                            _ => {
                                problem(
                                    row,
                                    column,
                                    (
                                        format!("'{}' is not a number from 1 to 200", row.get(column)),
                                        format!("“{}”不是 1 到 200 之间的数字", row.get(column)),
                                    ),
                                );
                                ok = false;
                            }
                        }
                    }
                    if let (true, Some(grid)) = (ok, grid) {
                        roster.buildings.push(Building {
                            id: BuildingId(id),
                            grid,
                            name,
                            units: numbers[0],
                            floors: numbers[1],
                            rooms_per_floor: numbers[2],
                        });
                    }
                }
                "staff" => {
                    let role = match row.get("role").parse::<Role>() {
                        Ok(role) => role,
                        Err(e) => {
                            problem(row, "role", (e.to_string(), format!("角色无效：{e}")));
                            continue;
                        }
                    };
                    let mut scopes = Vec::new();
                    for raw in row.get("scopes").split([';', ' ']).filter(|s| !s.is_empty()) {
                        match raw.parse::<Scope>() {
                            Ok(scope) if scope_known(&stored, &roster, &scope) => scopes.push(scope),
                            Ok(scope) => problem(
                                row,
                                "scopes",
                                (format!("{scope} is not on the roster"), format!("花名册中没有 {scope}")),
                            ),
                            Err(e) => problem(row, "scopes", (e.to_string(), format!("管辖范围无效：{e}"))),
                        }
                    }
                    if scopes.is_empty() {
                        problem(
                            row,
                            "scopes",
                            ("a staff member needs at least one scope".into(), "工作人员至少需要一个管辖范围".into()),
                        );
                        continue;
                    }
                    roster.staff.push(Staff {
                        id: UserId(id),
                        name,
                        role,
                        phone: row.get("phone").to_string(),
                        scopes,
                        pledge: String::new(),
                    });
                }
                _ => {
                    let both = merged.get_or_insert_with(|| {
                        let mut both = stored.clone();
                        both.streets.extend(roster.streets.iter().cloned());
                        both.communities.extend(roster.communities.iter().cloned());
                        both.grids.extend(roster.grids.iter().cloned());
                        both.buildings.extend(roster.buildings.iter().cloned());
                        both
                    });
                    let placement = parent.parse::<BuildingId>().ok().and_then(|b| both.placement_of_building(b));
                    let Some(placement) = placement else {
                        problem(row, "parent_id", parent_missing("building", "楼栋"));
                        continue;
                    };
                    let building_name = both
                        .buildings
                        .iter()
                        .find(|b| Some(b.id) == placement.building)
                        .map(|b| b.name.clone())
                        .unwrap_or_default();
                    let mut file = HouseholdFile::new(
                        HouseholdId(id),
                        placement,
                        &building_name,
                        row.get("unit"),
                        row.get("room"),
                        &name,
                        now,
                    );
                    file.phone = row.get("phone").to_string();
                    if let Err(e) = validate_document(&AnyDoc::Household(file.clone())) {
                        let column = if e.message.contains("phone") {
                            "phone"
                        } else if e.message.contains("room") {
                            "room"
                        } else if e.message.contains("unit") {
                            "unit"
                        } else {
                            "name"
                        };
                        let zh = format!("住户档案不合规：{}", e.message);
                        problem(row, column, (e.message, zh));
                        continue;
                    }
                    households.push(file);
                }
            }
        }
    }
    for row in rows {
        let kind = row.get("record_type");
        if !["street", "community", "grid", "building", "staff", "household"].contains(&kind) {
            problem(
                row,
                "record_type",
                (
                    format!("'{kind}' is not one of street, community, grid, building, staff, household"),
                    format!("“{kind}”不是 street、community、grid、building、staff、household 之一"),
                ),
            );
        }
    }
    problems.sort_by_key(|p| p.row);
    Ok(ImportPlan { roster, households })
}

fn has_street(stored: &Roster, new: &Roster, id: StreetId) -> bool {
    stored.streets.iter().chain(&new.streets).any(|s| s.id == id)
}
fn has_community(stored: &Roster, new: &Roster, id: CommunityId) -> bool {
    stored.communities.iter().chain(&new.communities).any(|c| c.id == id)
}
fn has_grid(stored: &Roster, new: &Roster, id: GridId) -> bool {
    stored.grids.iter().chain(&new.grids).any(|g| g.id == id)
}
fn scope_known(stored: &Roster, new: &Roster, scope: &Scope) -> bool {
    match scope {
        Scope::Street(id) => has_street(stored, new, *id),
        Scope::Community(id) => has_community(stored, new, *id),
        Scope::Grid(id) => has_grid(stored, new, *id),
        Scope::Building(id) => stored.buildings.iter().chain(&new.buildings).any(|b| b.id == *id),
    }
}
