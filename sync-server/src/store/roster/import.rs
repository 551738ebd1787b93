//! The roster CSV import, for both backends: reading the file (at most [`MAX_IMPORT_BYTES`]),
//! planning (pure: parsed rows and the stored roster in, a plan or every row problem out) and
//! writing the plan through an [`ImportTarget`] in one transaction of the backend ([`import`];
//! SQLite's target is here, PostgreSQL's in `store/postgres/roster.rs`).
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use automerge::ActorId;
use chrono::Datelike;

use gridlink_shared::time::Millis;
use gridlink_shared::validate::validate_document;
use gridlink_shared::{
    AnyDoc, Building, BuildingId, Community, CommunityId, DocId, Grid, GridId, HouseholdFile, HouseholdId, Outlet,
    OutletId, PartyBranch, PartyBranchId, PartyGroup, PartyGroupId, PartyMember, PartyMemberId, Role, Roster, Scope,
    ServiceCategory, Staff, Street, StreetId, UserId, Volunteer, VolunteerId, doc, party,
};
use rusqlite::{Connection, TransactionBehavior};
use serde::Serialize;

use super::{bump_reference_version, exists, insert_roster, load_roster};
use crate::store::push::{LogAppender, insert_change, write_doc};
use crate::store::sqlite::import_actor;
use crate::store::{SqliteStore, StoreError};

/// What `import` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportSummary {
    pub streets: usize,
    pub communities: usize,
    pub grids: usize,
    pub buildings: usize,
    pub staff: usize,
    /// Service outlets (便民服务网点).
    pub outlets: usize,
    /// Grid party branches (网格党支部), building party groups (楼栋党小组), party members
    /// (在职党员) and volunteers (志愿者).
    pub party_branches: usize,
    pub party_groups: usize,
    pub party_members: usize,
    pub volunteers: usize,
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

/// Columns a file may add after [`CSV_COLUMNS`]; a file without them reads them as empty, so
/// files written before they existed still import. `pledge`: a staff member's service pledge
/// printed on the identity card (服务承诺); `category`, `address`, `hours`: a service outlet's
/// category code, street address and opening hours; `building`: the building of a party group
/// or where a party member lives; `reported_at`: the day a party member reported to the
/// community; `skills`: a volunteer's skills.
pub const OPTIONAL_COLUMNS: &[&str] = &["pledge", "category", "address", "hours", "building", "reported_at", "skills"];

/// Every record type, in the order the plan reads them (parents before children).
const RECORD_TYPES: &[&str] = &[
    "street",
    "community",
    "grid",
    "building",
    "outlet",
    "party-branch",
    "party-group",
    "party-member",
    "volunteer",
    "staff",
    "household",
];

/// Longest accepted service pledge, address and opening hours, in characters.
const MAX_PLEDGE: usize = 200;
const MAX_ADDRESS: usize = 100;
const MAX_HOURS: usize = 60;

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

/// Largest roster file the import reads (a district of ~250,000 households is ~30 MiB): a
/// bigger file is refused before it is parsed rather than held in memory row by row.
pub const MAX_IMPORT_BYTES: u64 = 64 * 1024 * 1024;

/// Opens a roster file for [`import`], refusing one over [`MAX_IMPORT_BYTES`].
pub(in crate::store) fn open_file(path: &Path) -> Result<impl std::io::Read, StoreError> {
    let file =
        std::fs::File::open(path).map_err(|e| StoreError::Invalid(format!("cannot open {}: {e}", path.display())))?;
    let len = file.metadata().map_err(|e| StoreError::Invalid(format!("cannot read {}: {e}", path.display())))?.len();
    if len > MAX_IMPORT_BYTES {
        return Err(too_large(path.display()));
    }
    Ok(file)
}

fn too_large(what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!(
        "{what} is larger than {} MiB; split the roster into several files (parents first) and import each",
        MAX_IMPORT_BYTES / (1024 * 1024)
    ))
}

/// What the import writes through, inside one transaction of its backend: the backend-neutral
/// [`import`] reads the stored roster, plans, and writes the plan through these calls, so a
/// file with any problem writes nothing on either backend.
pub(in crate::store) trait ImportTarget {
    /// The roster as stored now, read in the import's transaction (the plan's parents).
    fn stored_roster(&mut self) -> Result<Roster, StoreError>;
    /// Upserts the planned roster rows, parents first.
    fn write_roster(&mut self, roster: &Roster, now: Millis) -> Result<(), StoreError>;
    /// Called with the planned households before any is looked up (PostgreSQL locks them
    /// against a concurrent push, in the pushers' lock order).
    fn lock_docs(&mut self, ids: &[DocId]) -> Result<(), StoreError> {
        let _ = ids;
        Ok(())
    }
    /// Whether a document with this id is stored.
    fn has_doc(&mut self, id: DocId) -> Result<bool, StoreError>;
    /// Stores a new document's one change and its log entries (PostgreSQL queues the entries).
    fn store_change(&mut self, new: &NewDoc<'_>, now: Millis) -> Result<(), StoreError>;
    /// After the last change, before any document is written (PostgreSQL numbers the queued
    /// entries here: log counters before digest rows, the pushers' lock order).
    fn finish_changes(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Writes a new document with its scopes, digest entry and query rows.
    fn write_doc(&mut self, any: &AnyDoc, saved: &[u8], now: Millis) -> Result<(), StoreError>;
    /// After the last write: marks the reference data changed.
    fn finish(&mut self) -> Result<(), StoreError>;
}

/// A document the import creates, as [`ImportTarget::store_change`] stores its change.
pub(in crate::store) struct NewDoc<'a> {
    pub any: &'a AnyDoc,
    pub hash: &'a str,
    pub change: &'a [u8],
    /// Hex actor id of the server's import actor.
    pub actor: &'a str,
}

/// Imports a roster CSV through `target` (see [`CSV_COLUMNS`] and `docs/protocol.md`): every
/// bad row is reported and a file with any problem writes nothing. The caller commits the
/// transaction on `Ok(Ok(_))` only.
pub(in crate::store) fn import(
    target: &mut impl ImportTarget,
    input: impl std::io::Read,
    actor: &ActorId,
    now: Millis,
) -> Result<Result<ImportSummary, Vec<RowProblem>>, StoreError> {
    let mut problems = Vec::new();
    // One byte past the cap tells a reader that is too long from one that is exactly full.
    let mut limited = input.take(MAX_IMPORT_BYTES + 1);
    let rows = read_csv(&mut limited, &mut problems);
    if limited.limit() == 0 {
        return Err(too_large("the roster file"));
    }
    let plan = plan_import(&target.stored_roster()?, &rows, now, &mut problems);
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    let r = &plan.roster;
    target.write_roster(r, now)?;
    let mut summary = ImportSummary {
        streets: r.streets.len(),
        communities: r.communities.len(),
        grids: r.grids.len(),
        buildings: r.buildings.len(),
        staff: r.staff.len(),
        outlets: r.outlets.len(),
        party_branches: r.party_branches.len(),
        party_groups: r.party_groups.len(),
        party_members: r.party_members.len(),
        volunteers: r.volunteers.len(),
        ..ImportSummary::default()
    };
    let ids: Vec<DocId> = plan.households.iter().map(|h| DocId::from(h.id)).collect();
    target.lock_docs(&ids)?;
    let actor_hex = actor.to_hex_string();
    let mut created_docs = Vec::new();
    for household in &plan.households {
        if target.has_doc(household.id.into())? {
            summary.households_already_present += 1;
            continue;
        }
        let mut created = doc::create(household, actor.clone(), now)
            .map_err(|e| StoreError::Backend(format!("household document: {e}")))?;
        let change = created
            .get_last_local_change()
            .ok_or_else(|| StoreError::Backend("new household document has no change".into()))?;
        let hash = change.hash().to_string();
        let change = change.raw_bytes().to_vec();
        let any = AnyDoc::Household(household.clone());
        target.store_change(&NewDoc { any: &any, hash: &hash, change: &change, actor: &actor_hex }, now)?;
        created_docs.push((any, created.save()));
    }
    target.finish_changes()?;
    for (any, saved) in &created_docs {
        target.write_doc(any, saved, now)?;
    }
    summary.households_created = created_docs.len();
    target.finish()?;
    Ok(Ok(summary))
}

/// The SQLite side of [`import`]: every call on the import's `BEGIN IMMEDIATE` transaction.
struct SqliteImport<'a> {
    conn: &'a Connection,
    log: LogAppender,
}

impl ImportTarget for SqliteImport<'_> {
    fn stored_roster(&mut self) -> Result<Roster, StoreError> {
        load_roster(self.conn)
    }

    fn write_roster(&mut self, roster: &Roster, now: Millis) -> Result<(), StoreError> {
        insert_roster(self.conn, roster, now)
    }

    fn has_doc(&mut self, id: DocId) -> Result<bool, StoreError> {
        exists(self.conn, "docs", &id.to_string())
    }

    fn store_change(&mut self, new: &NewDoc<'_>, now: Millis) -> Result<(), StoreError> {
        let id = new.any.doc_id();
        insert_change(self.conn, new.hash, id, new.change, new.actor, now)?;
        for scope in new.any.scopes() {
            self.log.append(self.conn, scope, new.hash, id)?;
        }
        Ok(())
    }

    fn write_doc(&mut self, any: &AnyDoc, saved: &[u8], now: Millis) -> Result<(), StoreError> {
        write_doc(self.conn, any, saved, now)
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        bump_reference_version(self.conn)
    }
}

impl SqliteStore {
    /// Imports a roster CSV (see [`CSV_COLUMNS`] and `docs/protocol.md`). Every bad row is
    /// reported; a file with any problem imports nothing.
    pub fn import_csv(&self, path: &Path, now: Millis) -> Result<ImportSummary, ImportError> {
        self.import_csv_from(open_file(path)?, now)
    }

    /// [`Self::import_csv`] from any reader.
    pub fn import_csv_from(&self, input: impl std::io::Read, now: Millis) -> Result<ImportSummary, ImportError> {
        let actor = import_actor(self)?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let outcome = import(&mut SqliteImport { conn: &tx, log: LogAppender::default() }, input, &actor, now)?;
            if outcome.is_ok() {
                tx.commit()?;
            }
            Ok(outcome)
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
    for column in OPTIONAL_COLUMNS {
        if let Some(i) = headers.iter().position(|h| h == *column) {
            index.insert(column, i);
        }
    }
    for (i, header) in headers.iter().enumerate() {
        if header.is_empty() {
            let n = i + 1;
            problems.push(RowProblem::new(1, "-", format!("column {n} has no name"), format!("第 {n} 列没有列名")));
        } else if !CSV_COLUMNS.contains(&header) && !OPTIONAL_COLUMNS.contains(&header) {
            problems.push(RowProblem::new(1, header, "unknown column", "未知的列"));
        } else if headers.iter().position(|h| h == header) != Some(i) {
            // Which of the two would count is anyone's guess: refuse rather than pick one.
            problems.push(RowProblem::new(1, header, "appears twice in the header", "表头中重复出现"));
        }
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

/// Turns the parsed rows into what to write, given the roster already stored; every problem
/// found goes to `problems` (sorted by row). Pure: reads and writes nothing else.
fn plan_import(stored: &Roster, rows: &[CsvRow], now: Millis, problems: &mut Vec<RowProblem>) -> ImportPlan {
    let mut roster = Roster::default();
    let mut households = Vec::new();
    let mut seen_ids: HashMap<String, u64> = HashMap::new();
    // Stored roster plus this file's org rows, built once the org rows are read.
    let mut merged: Option<Roster> = None;
    let mut problem = |row: &CsvRow, column: &str, (en, zh): (String, String)| {
        problems.push(RowProblem::new(row.line, column, en, zh));
    };
    // Parents may come later in the file, so the org rows are read in order of the hierarchy.
    for kind in RECORD_TYPES.iter().copied() {
        for row in rows.iter().filter(|r| r.get("record_type") == kind) {
            // No store can keep a NUL in text (PostgreSQL refuses it outright), and no roster
            // has one: refused in every column, before the column's own checks.
            if let Some((column, _)) = row.fields.iter().find(|(_, value)| value.contains('\0')) {
                problem(row, column, ("contains a NUL character".into(), "含有空字符（NUL）".into()));
                continue;
            }
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
                    Ok(street) if has_street(stored, &roster, street) => {
                        roster.communities.push(Community { id: CommunityId(id), street, name })
                    }
                    _ => problem(row, "parent_id", parent_missing("street", "街道")),
                },
                "grid" => match parent.parse::<CommunityId>() {
                    Ok(community) if has_community(stored, &roster, community) => {
                        roster.grids.push(Grid { id: GridId(id), community, name })
                    }
                    _ => problem(row, "parent_id", parent_missing("community", "社区")),
                },
                "building" => {
                    let grid = match parent.parse::<GridId>() {
                        Ok(grid) if has_grid(stored, &roster, grid) => Some(grid),
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
                            Ok(scope) if scope_known(stored, &roster, &scope) => scopes.push(scope),
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
                    let pledge = match free_text(row, "pledge", MAX_PLEDGE, false) {
                        Ok(pledge) => pledge,
                        Err(e) => {
                            problem(row, "pledge", e);
                            continue;
                        }
                    };
                    roster.staff.push(Staff {
                        id: UserId(id),
                        name,
                        role,
                        phone: row.get("phone").to_string(),
                        scopes,
                        pledge,
                    });
                }
                "outlet" => {
                    let mut ok = true;
                    let community = match parent.parse::<CommunityId>() {
                        Ok(community) if has_community(stored, &roster, community) => Some(community),
                        _ => {
                            problem(row, "parent_id", parent_missing("community", "社区"));
                            None
                        }
                    };
                    let category = match row.get("category").parse::<ServiceCategory>() {
                        Ok(category) => Some(category),
                        Err(e) => {
                            problem(row, "category", (e.to_string(), format!("服务类别无效：{e}")));
                            None
                        }
                    };
                    let phone = row.get("phone");
                    if !is_phone(phone) {
                        problem(row, "phone", not_a_phone(phone));
                        ok = false;
                    }
                    let mut texts = [String::new(), String::new()];
                    for (slot, (column, max)) in texts.iter_mut().zip([("address", MAX_ADDRESS), ("hours", MAX_HOURS)])
                    {
                        match free_text(row, column, max, column == "address") {
                            Ok(text) => *slot = text,
                            Err(e) => {
                                problem(row, column, e);
                                ok = false;
                            }
                        }
                    }
                    if let (true, Some(community), Some(category)) = (ok, community, category) {
                        let [address, hours] = texts;
                        roster.outlets.push(Outlet {
                            id: OutletId(id),
                            community,
                            category,
                            name,
                            phone: phone.to_string(),
                            address,
                            hours,
                        });
                    }
                }
                "party-branch" => {
                    let grid = match parent.parse::<GridId>() {
                        Ok(grid) if has_grid(stored, &roster, grid) => Some(grid),
                        _ => {
                            problem(row, "parent_id", parent_missing("grid", "网格"));
                            None
                        }
                    };
                    let phone = row.get("phone");
                    let phone_ok = phone.is_empty() || is_phone(phone);
                    if !phone_ok {
                        problem(row, "phone", not_a_phone(phone));
                    }
                    if let (true, Some(grid)) = (phone_ok, grid) {
                        roster.party_branches.push(PartyBranch {
                            id: PartyBranchId(id),
                            grid,
                            name,
                            phone: phone.to_string(),
                        });
                    }
                }
                "party-group" | "party-member" => {
                    let branch_grid = parent
                        .parse::<PartyBranchId>()
                        .ok()
                        .and_then(|b| branch_grid(stored, &roster, b).map(|grid| (b, grid)));
                    if branch_grid.is_none() {
                        problem(row, "parent_id", parent_missing("party branch", "网格党支部"));
                    }
                    // A group is for a building, a member may say where they live: either
                    // way a building of the branch's own grid.
                    let building_text = row.get("building");
                    let building = if building_text.is_empty() {
                        if kind == "party-group" {
                            problem(
                                row,
                                "building",
                                ("a building party group needs its building".into(), "楼栋党小组须填写所在楼栋".into()),
                            );
                            Err(())
                        } else {
                            Ok(None)
                        }
                    } else {
                        match building_text
                            .parse::<BuildingId>()
                            .ok()
                            .and_then(|b| building_grid(stored, &roster, b).map(|g| (b, g)))
                        {
                            None => {
                                problem(
                                    row,
                                    "building",
                                    (
                                        format!("no building with id '{building_text}' in this file or on the roster"),
                                        format!("本文件和花名册中都没有编号为“{building_text}”的楼栋"),
                                    ),
                                );
                                Err(())
                            }
                            Some((_, grid)) if branch_grid.is_some_and(|(_, branch)| branch != grid) => {
                                problem(
                                    row,
                                    "building",
                                    (
                                        "the building is not in the party branch's grid".into(),
                                        "该楼栋不在所属网格党支部的网格内".into(),
                                    ),
                                );
                                Err(())
                            }
                            Some((building, _)) => Ok(Some(building)),
                        }
                    };
                    if kind == "party-group" {
                        if let (Some((branch, _)), Ok(Some(building))) = (branch_grid, building) {
                            roster.party_groups.push(PartyGroup { id: PartyGroupId(id), branch, building, name });
                        }
                        continue;
                    }
                    let phone = row.get("phone");
                    let phone_ok = is_phone(phone);
                    if !phone_ok {
                        problem(row, "phone", not_a_phone(phone));
                    }
                    let reported_text = row.get("reported_at");
                    let today = gridlink_shared::time::local_date(now);
                    let reported_at = match chrono::NaiveDate::parse_from_str(reported_text, "%Y-%m-%d") {
                        Ok(date) if date <= today && date.year() >= 1949 => Some(date),
                        Ok(_) => {
                            problem(
                                row,
                                "reported_at",
                                (
                                    format!("{reported_text} is in the future or before 1949"),
                                    format!("{reported_text} 晚于今天或早于 1949 年"),
                                ),
                            );
                            None
                        }
                        Err(_) => {
                            problem(
                                row,
                                "reported_at",
                                (
                                    format!("'{reported_text}' is not a date written YYYY-MM-DD"),
                                    format!("“{reported_text}”不是 YYYY-MM-DD 格式的日期"),
                                ),
                            );
                            None
                        }
                    };
                    if let (true, Some((branch, _)), Ok(building), Some(reported_at)) =
                        (phone_ok, branch_grid, building, reported_at)
                    {
                        roster.party_members.push(PartyMember {
                            id: PartyMemberId(id),
                            branch,
                            building,
                            name,
                            phone: phone.to_string(),
                            reported_at,
                        });
                    }
                }
                "volunteer" => {
                    let community = match parent.parse::<CommunityId>() {
                        Ok(community) if has_community(stored, &roster, community) => Some(community),
                        _ => {
                            problem(row, "parent_id", parent_missing("community", "社区"));
                            None
                        }
                    };
                    let phone = row.get("phone");
                    let phone_ok = is_phone(phone);
                    if !phone_ok {
                        problem(row, "phone", not_a_phone(phone));
                    }
                    let skills = match party::parse_skills(row.get("skills")) {
                        Ok(skills) => Some(skills),
                        Err(e) => {
                            problem(row, "skills", (e.to_string(), e.zh()));
                            None
                        }
                    };
                    if let (true, Some(community), Some(skills)) = (phone_ok, community, skills) {
                        roster.volunteers.push(Volunteer {
                            id: VolunteerId(id),
                            community,
                            name,
                            phone: phone.to_string(),
                            skills,
                        });
                    }
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
        if !RECORD_TYPES.contains(&kind) {
            problem(
                row,
                "record_type",
                (
                    format!("'{kind}' is not one of {}", RECORD_TYPES.join(", ")),
                    format!("“{kind}”不是 {} 之一", RECORD_TYPES.join("、")),
                ),
            );
        }
    }
    problems.sort_by_key(|p| p.row);
    ImportPlan { roster, households }
}

/// A free-text column: at most `max` characters, no control characters (a line break in a
/// pledge would print across the identity card), and not empty when `required`.
fn free_text(row: &CsvRow, column: &str, max: usize, required: bool) -> Result<String, (String, String)> {
    let text = row.get(column);
    if required && text.is_empty() {
        return Err(("must not be empty".into(), "不能为空".into()));
    }
    let chars = text.chars().count();
    if chars > max {
        return Err((
            format!("{chars} characters, at most {max} allowed"),
            format!("共 {chars} 个字，最多 {max} 个字"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err((
            "contains a control character (line break, tab, ...)".into(),
            "含有换行、制表符等控制字符".into(),
        ));
    }
    Ok(text.to_string())
}

/// A phone number a resident can dial: 3 to 20 characters of digits, `-`, `+`, spaces and
/// parentheses, with at least 3 digits (`110`, `027-8888 6666`, `+86 139 7112 0501`).
fn is_phone(text: &str) -> bool {
    let chars = text.chars().count();
    (3..=20).contains(&chars)
        && text.chars().all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | ' ' | '(' | ')'))
        && text.chars().filter(char::is_ascii_digit).count() >= 3
}

/// The problem of a phone number that is not [`is_phone`].
fn not_a_phone(phone: &str) -> (String, String) {
    (
        format!("'{phone}' is not a phone number (3 to 20 digits, '-', '+', spaces)"),
        format!("“{phone}”不是有效的电话号码（3 到 20 位数字，可含 -、+、空格）"),
    )
}

/// The grid of a party branch in this file or on the roster.
fn branch_grid(stored: &Roster, new: &Roster, id: PartyBranchId) -> Option<GridId> {
    stored.party_branches.iter().chain(&new.party_branches).find(|b| b.id == id).map(|b| b.grid)
}

/// The grid of a building in this file or on the roster.
fn building_grid(stored: &Roster, new: &Roster, id: BuildingId) -> Option<GridId> {
    stored.buildings.iter().chain(&new.buildings).find(|b| b.id == id).map(|b| b.grid)
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

#[cfg(test)]
mod tests {
    //! The import plan on its own: CSV text and a stored roster in, a plan or problems out.

    use super::*;

    const HEADER: &str = "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room\n";
    const STREET: &str = "00000000-0000-4000-8000-000000000001";
    const COMMUNITY: &str = "00000000-0000-4000-8000-000000000002";
    const GRID: &str = "00000000-0000-4000-8000-000000000003";
    const BUILDING: &str = "00000000-0000-4000-8000-000000000004";
    const HOUSEHOLD: &str = "00000000-0000-4000-8000-000000000005";
    const STAFF: &str = "00000000-0000-4000-8000-000000000006";

    fn plan_of(stored: &Roster, body: &str) -> (ImportPlan, Vec<RowProblem>) {
        let mut problems = Vec::new();
        let rows = read_csv(format!("{HEADER}{body}").as_bytes(), &mut problems);
        let plan = plan_import(stored, &rows, 1_700_000_000_000, &mut problems);
        (plan, problems)
    }

    fn stored_street_only() -> Roster {
        Roster { streets: vec![Street { id: STREET.parse().unwrap(), name: "东街".into() }], ..Roster::default() }
    }

    fn columns(problems: &[RowProblem]) -> Vec<(u64, &str)> {
        problems.iter().map(|p| (p.row, p.column.as_str())).collect()
    }

    #[test]
    fn children_before_parents_in_the_file_still_plan_every_row() {
        let body = format!(
            "household,{HOUSEHOLD},{BUILDING},王芳,13800000000,,,,,,1,101\n\
             staff,{STAFF},,李娜,13900000000,grid-worker,grid:{GRID},,,,,\n\
             building,{BUILDING},{GRID},1号楼,,,,2,6,4,,\n\
             grid,{GRID},{COMMUNITY},第一网格,,,,,,,,\n\
             community,{COMMUNITY},{STREET},和平社区,,,,,,,,\n"
        );
        let (plan, problems) = plan_of(&stored_street_only(), &body);
        assert_eq!(problems, vec![]);
        assert_eq!(plan.roster.streets.len(), 0, "the stored street is the parent, not re-planned");
        assert_eq!(plan.roster.communities.len(), 1);
        assert_eq!(plan.roster.grids[0].community.to_string(), COMMUNITY);
        let building = &plan.roster.buildings[0];
        assert_eq!((building.units, building.floors, building.rooms_per_floor), (2, 6, 4));
        assert_eq!(plan.roster.staff[0].scopes, vec![format!("grid:{GRID}").parse::<Scope>().unwrap()]);
        let household = &plan.households[0];
        assert_eq!(household.id.to_string(), HOUSEHOLD);
        assert_eq!(household.phone, "13800000000");
    }

    #[test]
    fn every_problem_is_reported_with_its_row_and_column_in_both_languages() {
        let body = format!(
            "community,not-a-uuid,{STREET},和平社区,,,,,,,,\n\
             grid,{GRID},{COMMUNITY},第一网格,,,,,,,,\n\
             building,{BUILDING},{GRID},1号楼,,,,0,6,x,,\n\
             staff,{STAFF},,李娜,,mayor,grid:{GRID},,,,,\n\
             villa,{HOUSEHOLD},,别墅,,,,,,,,\n\
             street,{STREET},,,,,,,,,,\n"
        );
        let (plan, problems) = plan_of(&Roster::default(), &body);
        assert_eq!(
            columns(&problems),
            vec![
                (2, "id"),
                (3, "parent_id"),
                (4, "parent_id"),
                (4, "units"),
                (4, "rooms_per_floor"),
                (5, "role"),
                (6, "record_type"),
                (7, "name"),
            ]
        );
        assert!(problems.iter().all(|p| !p.problem.is_empty() && p.zh.chars().any(|c| c > '\u{2e80}')));
        assert!(plan.roster.buildings.is_empty() && plan.roster.staff.is_empty() && plan.households.is_empty());
    }

    #[test]
    fn a_duplicate_id_names_the_first_row_that_used_it() {
        let body = format!("street,{STREET},,东街,,,,,,,,\ncommunity,{STREET},{STREET},和平社区,,,,,,,,\n");
        let (_, problems) = plan_of(&Roster::default(), &body);
        assert_eq!(columns(&problems), vec![(3, "id")]);
        assert!(problems[0].problem.contains("row 2"), "{}", problems[0].problem);
    }

    #[test]
    fn staff_scopes_must_name_the_roster_and_at_least_one_must_be_given() {
        let body = format!(
            "staff,{STAFF},,李娜,,grid-worker,grid:{GRID};nonsense,,,,,\n\
             staff,{HOUSEHOLD},,王强,,supervisor,,,,,,\n"
        );
        let (plan, problems) = plan_of(&stored_street_only(), &body);
        assert_eq!(columns(&problems), vec![(2, "scopes"), (2, "scopes"), (2, "scopes"), (3, "scopes")]);
        assert!(problems[0].problem.contains("not on the roster") || problems[1].problem.contains("not on the roster"));
        assert!(plan.roster.staff.is_empty());
    }

    #[test]
    fn a_household_that_fails_document_validation_names_the_column() {
        let mut stored = stored_street_only();
        stored.communities.push(Community {
            id: COMMUNITY.parse().unwrap(),
            street: STREET.parse().unwrap(),
            name: "和平社区".into(),
        });
        stored.grids.push(Grid {
            id: GRID.parse().unwrap(),
            community: COMMUNITY.parse().unwrap(),
            name: "第一网格".into(),
        });
        stored.buildings.push(Building {
            id: BUILDING.parse().unwrap(),
            grid: GRID.parse().unwrap(),
            name: "1号楼".into(),
            units: 2,
            floors: 6,
            rooms_per_floor: 4,
        });
        let body = format!("household,{HOUSEHOLD},{BUILDING},王芳,not a phone number at all!!,,,,,,1,101\n");
        let (plan, problems) = plan_of(&stored, &body);
        assert_eq!(columns(&problems), vec![(2, "phone")]);
        assert!(plan.households.is_empty());
        let body = format!("household,{HOUSEHOLD},{BUILDING},王芳,13800000000,,,,,,1,101\n");
        let (plan, problems) = plan_of(&stored, &body);
        assert_eq!(problems, vec![]);
        assert_eq!(plan.households.len(), 1);
    }

    #[test]
    fn a_header_with_missing_and_unknown_columns_is_reported_on_row_one() {
        let mut problems = Vec::new();
        let rows = read_csv("record_type,id,name,colour\nstreet,x,y,z\n".as_bytes(), &mut problems);
        assert_eq!(rows.len(), 1);
        let missing: Vec<&str> =
            problems.iter().filter(|p| p.problem == "missing from the header").map(|p| p.column.as_str()).collect();
        assert_eq!(missing.len(), CSV_COLUMNS.len() - 3);
        assert!(problems.iter().any(|p| p.column == "colour" && p.problem == "unknown column"));
        assert!(problems.iter().all(|p| p.row == 1));
    }

    /// The header of a file with the optional columns of outlets and pledges.
    const WIDE_HEADER: &str = "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room,\
                               pledge,category,address,hours\n";
    const OUTLET: &str = "00000000-0000-4000-8000-000000000007";

    fn wide_plan_of(stored: &Roster, body: &str) -> (ImportPlan, Vec<RowProblem>) {
        let mut problems = Vec::new();
        let rows = read_csv(format!("{WIDE_HEADER}{body}").as_bytes(), &mut problems);
        let plan = plan_import(stored, &rows, 1_700_000_000_000, &mut problems);
        (plan, problems)
    }

    fn stored_with_community() -> Roster {
        let mut stored = stored_street_only();
        stored.communities.push(Community {
            id: COMMUNITY.parse().unwrap(),
            street: STREET.parse().unwrap(),
            name: "凤凰社区".into(),
        });
        stored.grids.push(Grid {
            id: GRID.parse().unwrap(),
            community: COMMUNITY.parse().unwrap(),
            name: "凤凰社区第1网格".into(),
        });
        stored
    }

    #[test]
    fn outlets_and_pledges_are_planned_from_the_optional_columns() {
        let body = format!(
            "outlet,{OUTLET},{COMMUNITY},凤凰家政服务中心,0711-3226688,,,,,,,,,housekeeping,古楼街128号,8:00-18:00\n\
             staff,{STAFF},,李娜,13972201234,grid-worker,grid:{GRID},,,,,,\"有呼必应，有难必帮，24小时内回复\",,,\n"
        );
        let (plan, problems) = wide_plan_of(&stored_with_community(), &body);
        assert_eq!(problems, vec![]);
        let outlet = &plan.roster.outlets[0];
        assert_eq!(outlet.id.to_string(), OUTLET);
        assert_eq!(outlet.community.to_string(), COMMUNITY);
        assert_eq!(outlet.category, ServiceCategory::Housekeeping);
        assert_eq!((outlet.name.as_str(), outlet.phone.as_str()), ("凤凰家政服务中心", "0711-3226688"));
        assert_eq!((outlet.address.as_str(), outlet.hours.as_str()), ("古楼街128号", "8:00-18:00"));
        assert_eq!(plan.roster.staff[0].pledge, "有呼必应，有难必帮，24小时内回复");
    }

    #[test]
    fn a_file_without_the_optional_columns_still_imports_staff_with_no_pledge() {
        let body = format!("staff,{STAFF},,李娜,13972201234,grid-worker,grid:{GRID},,,,,\n");
        let (plan, problems) = plan_of(&stored_with_community(), &body);
        assert_eq!(problems, vec![]);
        assert_eq!(plan.roster.staff[0].pledge, "");
        // An outlet needs its category and address, so it cannot come from such a file.
        let body = format!("outlet,{OUTLET},{COMMUNITY},凤凰家政服务中心,0711-3226688,,,,,,,\n");
        let (plan, problems) = plan_of(&stored_with_community(), &body);
        assert_eq!(columns(&problems), vec![(2, "category"), (2, "address")]);
        assert!(plan.roster.outlets.is_empty());
    }

    #[test]
    fn every_bad_outlet_field_and_pledge_is_reported_in_both_languages() {
        let long_pledge = "服".repeat(MAX_PLEDGE + 1);
        let body = format!(
            "outlet,{OUTLET},{GRID},凤凰家政服务中心,call us,,,,,,,,,plumbing,古楼街128号,8:00-18:00\n\
             outlet,{HOUSEHOLD},{COMMUNITY},福康药房,0711-3226688,,,,,,,,,medical,,全天\n\
             outlet,{BUILDING},{COMMUNITY},福康药房,0711-3226688,,,,,,,,,medical,\"古楼街\n12号\",全天\n\
             staff,{STAFF},,李娜,13972201234,grid-worker,grid:{GRID},,,,,,{long_pledge},,,\n"
        );
        let (plan, problems) = wide_plan_of(&stored_with_community(), &body);
        assert_eq!(
            columns(&problems),
            vec![(2, "parent_id"), (2, "category"), (2, "phone"), (3, "address"), (4, "address"), (6, "pledge")]
        );
        assert!(problems.iter().all(|p| !p.problem.is_empty() && p.zh.chars().any(|c| c > '\u{2e80}')));
        assert!(problems[5].problem.contains("201 characters"), "{}", problems[5].problem);
        assert!(plan.roster.outlets.is_empty() && plan.roster.staff.is_empty());
    }

    #[test]
    fn phone_numbers_of_outlets_are_dialable() {
        for good in ["110", "0711-3226688", "+86 139 7112 0501", "(0711)3226688"] {
            assert!(is_phone(good), "{good}");
        }
        for bad in ["", "12", "call us", "139７1120501", "0711-3226688-0711-3226688", "1-2"] {
            assert!(!is_phone(bad), "{bad}");
        }
    }

    /// The header with every optional column.
    const PARTY_HEADER: &str = "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room,\
                                pledge,category,address,hours,building,reported_at,skills\n";
    const BRANCH: &str = "00000000-0000-4000-8000-000000000008";
    const GROUP: &str = "00000000-0000-4000-8000-000000000009";
    const MEMBER: &str = "00000000-0000-4000-8000-00000000000a";
    const VOLUNTEER: &str = "00000000-0000-4000-8000-00000000000b";
    const OTHER_GRID: &str = "00000000-0000-4000-8000-00000000000c";
    const OTHER_BUILDING: &str = "00000000-0000-4000-8000-00000000000d";

    fn party_plan_of(stored: &Roster, body: &str) -> (ImportPlan, Vec<RowProblem>) {
        let mut problems = Vec::new();
        let rows = read_csv(format!("{PARTY_HEADER}{body}").as_bytes(), &mut problems);
        // 2025-11-28 in Asia/Shanghai.
        let plan = plan_import(stored, &rows, 1_764_300_000_000, &mut problems);
        (plan, problems)
    }

    /// A community with two grids, each with one building.
    fn stored_with_two_grids() -> Roster {
        let mut stored = stored_with_community();
        stored.grids.push(Grid {
            id: OTHER_GRID.parse().unwrap(),
            community: COMMUNITY.parse().unwrap(),
            name: "凤凰社区第2网格".into(),
        });
        for (id, grid, name) in [(BUILDING, GRID, "滨湖小区7栋"), (OTHER_BUILDING, OTHER_GRID, "文星花园3栋")]
        {
            stored.buildings.push(Building {
                id: id.parse().unwrap(),
                grid: grid.parse().unwrap(),
                name: name.into(),
                units: 2,
                floors: 6,
                rooms_per_floor: 2,
            });
        }
        stored
    }

    #[test]
    fn party_branches_groups_members_and_volunteers_are_planned_children_first() {
        let body = format!(
            "volunteer,{VOLUNTEER},{COMMUNITY},王秀英,13907140061,,,,,,,,,,,,,,助老、理发；量血压\n\
             party-member,{MEMBER},{BRANCH},陈志刚,13972205566,,,,,,,,,,,,{BUILDING},2019-03-12,\n\
             party-group,{GROUP},{BRANCH},滨湖小区7栋党小组,,,,,,,,,,,,,{BUILDING},,\n\
             party-branch,{BRANCH},{GRID},凤凰社区第1网格党支部,0711-3220001,,,,,,,,,,,,,,\n"
        );
        let (plan, problems) = party_plan_of(&stored_with_two_grids(), &body);
        assert_eq!(problems, vec![]);
        let branch = &plan.roster.party_branches[0];
        assert_eq!((branch.grid.to_string().as_str(), branch.phone.as_str()), (GRID, "0711-3220001"));
        let group = &plan.roster.party_groups[0];
        assert_eq!((group.branch.to_string().as_str(), group.building.to_string().as_str()), (BRANCH, BUILDING));
        let member = &plan.roster.party_members[0];
        assert_eq!(member.building.map(|b| b.to_string()), Some(BUILDING.to_string()));
        assert_eq!(member.reported_at, chrono::NaiveDate::from_ymd_opt(2019, 3, 12).unwrap());
        assert_eq!(plan.roster.volunteers[0].skills, ["助老", "理发", "量血压"]);
    }

    #[test]
    fn every_bad_party_row_is_reported_with_its_column_in_both_languages() {
        let body = format!(
            "party-branch,{BRANCH},{GRID},凤凰社区第1网格党支部,,,,,,,,,,,,,,,\n\
             party-branch,{HOUSEHOLD},{COMMUNITY},无网格党支部,,,,,,,,,,,,,,,\n\
             party-group,{GROUP},{BRANCH},文星花园3栋党小组,,,,,,,,,,,,,{OTHER_BUILDING},,\n\
             party-group,{OUTLET},{BRANCH},无楼栋党小组,,,,,,,,,,,,,,,\n\
             party-member,{MEMBER},{STAFF},陈志刚,电话,,,,,,,,,,,,,2019-13-01,\n\
             party-member,{OTHER_GRID},{BRANCH},郑晓燕,13972205567,,,,,,,,,,,,{BUILDING},2031-01-01,\n\
             volunteer,{VOLUNTEER},{GRID},王秀英,,,,,,,,,,,,,,,\"助老\n理发\"\n"
        );
        let (plan, problems) = party_plan_of(&stored_with_two_grids(), &body);
        assert_eq!(
            columns(&problems),
            vec![
                (3, "parent_id"),
                (4, "building"),
                (5, "building"),
                (6, "parent_id"),
                (6, "phone"),
                (6, "reported_at"),
                (7, "reported_at"),
                (8, "parent_id"),
                (8, "phone"),
                (8, "skills"),
            ]
        );
        assert!(problems.iter().all(|p| !p.problem.is_empty() && p.zh.chars().any(|c| c > '\u{2e80}')));
        assert!(problems[1].problem.contains("not in the party branch's grid"), "{}", problems[1].problem);
        assert!(problems[6].problem.contains("future"), "{}", problems[6].problem);
        assert_eq!(plan.roster.party_branches.len(), 1, "the good branch is planned (and nothing written)");
        assert!(plan.roster.party_groups.is_empty() && plan.roster.party_members.is_empty());
        assert!(plan.roster.volunteers.is_empty());
    }

    #[test]
    fn a_nul_in_any_column_is_refused_with_the_column_named() {
        let body = format!(
            "street,{STREET},,东\u{0}街,,,,,,,,\n\
             staff,{STAFF},,李娜,139\u{0}00000000,grid-worker,street:{STREET},,,,,\n"
        );
        let (plan, problems) = plan_of(&Roster::default(), &body);
        assert_eq!(columns(&problems), vec![(2, "name"), (3, "phone")]);
        assert!(problems.iter().all(|p| p.problem.contains("NUL") && p.zh.contains("空字符")));
        assert!(plan.roster.streets.is_empty() && plan.roster.staff.is_empty());
    }

    /// Found by `fuzz_targets::roster_import` (seed 20261132): an empty column name was
    /// reported with an empty column, and a repeated column was silently read from its first
    /// copy.
    #[test]
    fn a_header_with_an_empty_or_repeated_column_names_the_problem() {
        let mut problems = Vec::new();
        read_csv(format!("{},name,\nstreet,x,,东街,,,,,,,,,,\n", HEADER.trim_end()).as_bytes(), &mut problems);
        let found: Vec<(&str, &str)> = problems.iter().map(|p| (p.column.as_str(), p.problem.as_str())).collect();
        assert_eq!(found, vec![("name", "appears twice in the header"), ("-", "column 14 has no name")]);
        assert!(problems.iter().all(|p| p.row == 1 && !p.zh.is_empty()));
    }
}
