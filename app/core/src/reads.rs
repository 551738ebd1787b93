//! Reads: view-models from the query tables (lists) and from hydrated documents (details).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use gridlink_shared::case::transition;
use gridlink_shared::policy::{self, DueState};
use gridlink_shared::time::{Millis, local_date};
use gridlink_shared::validate::role_may_act;
use gridlink_shared::{
    ActionKind, BuildingId, CaseFile, CaseId, CaseKind, CaseStatus, DocId, GridId, HouseholdFile, HouseholdId,
    MustVisitTag, Role, Roster, Scope, ServiceCategory, Staff, doc, mask_id_number,
};
use rusqlite::types::Value;
use rusqlite::{Connection, Row, params_from_iter};

use crate::error::{Error, Result};
use crate::views::*;
use crate::{Client, quarantine, search, store};

fn parse<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    raw.parse().map_err(|e| Error::Corrupt(format!("stored {what} '{raw}': {e}")))
}

/// The state of a due date relative to today, as [`policy::visits_due`] computes it.
pub(crate) fn due_state(due_on: NaiveDate, now: Millis, config: &policy::PolicyConfig) -> DueState {
    let days = (due_on - local_date(now)).num_days();
    match days {
        d if d < 0 => DueState::Overdue { days: -d },
        0 => DueState::DueToday,
        d if d <= config.due_soon_days => DueState::DueSoon { days: d },
        d => DueState::NotDue { days: d },
    }
}

/// What `role` may do to `case` now: what the role allows and what moves the status (plus
/// comments, which never move it; reassign while open; a help request's referral while open).
/// A micro-wish moves by claim, fulfilment and thanks instead of accept, arrive, resolve and
/// close, which the validator still takes (from older phones) but the phone does not offer.
pub fn allowed_actions(case: &CaseFile, role: Role) -> Vec<ActionKind> {
    use ActionKind::*;
    let status = case.status();
    let wish = case.kind == CaseKind::MicroWish;
    ActionKind::ALL
        .iter()
        .copied()
        .filter(|a| role_may_act(role, *a))
        .filter(|a| match a {
            Accept | Arrive | Resolve | Close if wish => false,
            Claim | Fulfil | Thank if !wish => false,
            Comment => true,
            Reassign => case.is_open(),
            Refer => matches!(case.kind, CaseKind::Help(_)) && case.is_open(),
            other => transition(status, *other).is_some(),
        })
        .collect()
}

// ----- cases --------------------------------------------------------------------------------

const CASE_COLUMNS: &str = "c.id, c.kind, c.title, c.status, c.responsible, c.responsible_name, c.reported_at,
    c.completion_deadline, c.is_open, c.household, c.building_id, h.address";

/// The roster, read once per list and only when a row needs a building's name (a case filed on
/// a building rather than a household): most pages never parse it.
struct LazyRoster<'c> {
    conn: &'c Connection,
    roster: Option<Roster>,
}

impl LazyRoster<'_> {
    fn building_name(&mut self, building: BuildingId) -> Result<Option<String>> {
        if self.roster.is_none() {
            self.roster = Some(store::roster(self.conn)?);
        }
        let roster = self.roster.as_ref().map(|r| &r.buildings);
        Ok(roster.and_then(|b| b.iter().find(|x| x.id == building)).map(|x| x.name.clone()))
    }
}

fn case_row(row: &Row<'_>, now: Millis, roster: &mut LazyRoster<'_>) -> rusqlite::Result<Result<CaseRow>> {
    let (id, kind, title, status, responsible, responsible_name): (String, String, String, String, String, String) =
        (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?);
    let (reported_at, deadline, is_open): (i64, i64, bool) = (row.get(6)?, row.get(7)?, row.get(8)?);
    let (household, building, address): (Option<String>, Option<String>, Option<String>) =
        (row.get(9)?, row.get(10)?, row.get(11)?);
    Ok((|| {
        let building: Option<BuildingId> = building.map(|b| parse(&b, "building id")).transpose()?;
        let place = match (address, building) {
            (Some(address), _) => address,
            (None, Some(b)) => roster.building_name(b)?.unwrap_or_default(),
            (None, None) => String::new(),
        };
        Ok(CaseRow {
            id: parse(&id, "case id")?,
            kind: parse::<CaseKind>(&kind, "case kind")?,
            title,
            status: parse::<CaseStatus>(&status, "status")?,
            responsible: parse(&responsible, "user id")?,
            responsible_name,
            reported_at,
            deadline,
            overdue: is_open && now > deadline,
            household: household.map(|h| parse(&h, "household id")).transpose()?,
            building,
            place,
        })
    })())
}

/// `args` with a page's row count and offset appended, and the ` LIMIT ?n OFFSET ?m` that
/// binds them: bound rather than written into the SQL, so every page of a list reuses one
/// cached statement (SQLite takes signed 64-bit counts; larger ones saturate).
fn with_page(args: &[Value], page: Option<Page>) -> (String, Vec<Value>) {
    let mut all = args.to_vec();
    let Some(page) = page else { return (String::new(), all) };
    let clamp = |n: usize| Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    all.push(clamp(page.limit));
    all.push(clamp(page.offset));
    (format!(" LIMIT ?{} OFFSET ?{}", all.len() - 1, all.len()), all)
}

fn cases_sql(where_sql: &str, limit_sql: &str) -> String {
    format!(
        "SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN households h ON h.id = c.household WHERE {where_sql}
         ORDER BY c.completion_deadline, c.id{limit_sql}"
    )
}

/// Case rows matching `where_sql`, by completion deadline then id (the order the indexes
/// `cases_deadline`, `cases_open_deadline`, `cases_responsible` and `cases_status` hold).
fn query_cases(
    conn: &Connection,
    where_sql: &str,
    args: &[Value],
    page: Option<Page>,
    now: Millis,
) -> Result<Vec<CaseRow>> {
    let (limit_sql, args) = with_page(args, page);
    let mut roster = LazyRoster { conn, roster: None };
    let mut stmt = conn.prepare_cached(&cases_sql(where_sql, &limit_sql))?;
    let rows = stmt.query_map(params_from_iter(&args), |r| case_row(r, now, &mut roster))?;
    rows.map(|r| r?).collect()
}

/// The SQL condition of a case filter and its arguments.
fn case_where(conn: &Connection, filter: CaseFilter, now: Millis) -> Result<(&'static str, Vec<Value>)> {
    Ok(match filter {
        CaseFilter::All => ("1", Vec::new()),
        // `is_open = 1`, not `is_open`: only an equality lets SQLite use the index.
        CaseFilter::Open => ("c.is_open = 1", Vec::new()),
        CaseFilter::Overdue => ("c.is_open = 1 AND c.completion_deadline < ?1", vec![Value::Integer(now)]),
        CaseFilter::Resolved => ("c.status = ?1", vec![Value::Text(CaseStatus::Resolved.code().to_string())]),
        CaseFilter::Mine => {
            let me = store::principal(conn)?.user.to_string();
            ("c.responsible = ?1 AND c.is_open = 1", vec![Value::Text(me)])
        }
    })
}

pub(crate) fn cases(client: &Client, filter: CaseFilter, now: Millis) -> Result<Vec<CaseRow>> {
    let conn = client.db();
    let (where_sql, args) = case_where(&conn, filter, now)?;
    query_cases(&conn, where_sql, &args, None, now)
}

pub(crate) fn cases_page(client: &Client, filter: CaseFilter, page: Page, now: Millis) -> Result<Paged<CaseRow>> {
    let conn = client.db();
    let (where_sql, args) = case_where(&conn, filter, now)?;
    let total = count(&conn, &format!("SELECT count(*) FROM cases c WHERE {where_sql}"), &args)?;
    let rows = query_cases(&conn, where_sql, &args, Some(page), now)?;
    Ok(Paged { rows, offset: page.offset, total })
}

fn count(conn: &Connection, sql: &str, args: &[Value]) -> Result<usize> {
    let n: i64 = conn.prepare_cached(sql)?.query_row(params_from_iter(args), |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// A case, hydrated; [`Error::Quarantined`] when its data is damaged (see [`quarantine`]).
fn load_case(conn: &Connection, id: CaseId) -> Result<CaseFile> {
    quarantine::read_stored(conn, "case", id.into())
}

/// A household file, hydrated; [`Error::Quarantined`] when its data is damaged.
pub(crate) fn load_household(conn: &Connection, id: HouseholdId) -> Result<HouseholdFile> {
    quarantine::read_stored(conn, "household", id.into())
}

pub(crate) fn case(client: &Client, id: CaseId, now: Millis) -> Result<CaseDetail> {
    let conn = client.db();
    let principal = store::principal(&conn)?;
    let case = load_case(&conn, id)?;
    let row = query_cases(&conn, "c.id = ?1", &[Value::Text(id.to_string())], None, now)?
        .pop()
        .ok_or_else(|| Error::NotFound { what: "case", id: id.to_string() })?;
    let config = client.policy();
    let moved: BTreeMap<_, _> = case.status_history().into_iter().map(|(a, s)| (a.id, s)).collect();
    let timeline = case
        .ordered_timeline()
        .into_iter()
        .map(|a| TimelineRow {
            id: a.id,
            kind: a.kind,
            by: a.by,
            by_name: a.by_name.clone(),
            at: a.at,
            note: a.note.clone(),
            satisfaction: a.satisfaction,
            to: a.to,
            to_name: a.to_name.clone(),
            claimant_name: a.claimant.as_ref().map(|c| c.name.clone()),
            outlet_name: a.outlet.as_ref().map(|o| o.name.clone()),
            status_after: moved.get(&a.id).copied(),
        })
        .collect();
    Ok(CaseDetail {
        row,
        description: case.description.clone(),
        reporter: case.reporter,
        reporter_name: case.reporter_name.clone(),
        arrival: policy::arrival_state(&case, now, config),
        completion: policy::completion_state(&case, now, config),
        satisfaction: case.satisfaction(),
        claimant: case.claimant().map(|c| c.name.clone()),
        timeline,
        allowed_actions: allowed_actions(&case, principal.role),
        services: crate::activities::for_case(&conn, id)?,
    })
}

// ----- households ---------------------------------------------------------------------------

/// The SQL condition of a household filter and its arguments. The due filter compares the
/// stored next due date (`YYYY-MM-DD`, so text order is date order) with the last day that
/// [`due_state`] calls due soon: overdue, due today and due soon are exactly the dates up to it.
fn household_where(filter: &HouseholdFilter, now: Millis, config: &policy::PolicyConfig) -> (String, Vec<Value>) {
    let mut conditions = Vec::new();
    let mut args = Vec::new();
    let mut arg = |condition: &str, value: Value, conditions: &mut Vec<String>| {
        args.push(value);
        conditions.push(condition.replace('?', &format!("?{}", args.len())));
    };
    if let Some(query) = filter.search.as_deref().map(search::normalize_query).filter(|q| !q.is_empty()) {
        // instr() is a plain substring test, as the search text is built for: no LIKE
        // wildcards or case folding to escape from what a user typed.
        arg("instr(h.search, ?) > 0", Value::Text(query), &mut conditions);
    }
    if let Some(building) = filter.building {
        arg("h.building_id = ?", Value::Text(building.to_string()), &mut conditions);
    }
    if let Some(tag) = filter.tag {
        arg(
            "h.id IN (SELECT t.household FROM household_tags t WHERE t.tag = ?)",
            Value::Text(tag.code().to_string()),
            &mut conditions,
        );
    }
    if filter.due_only {
        arg("h.next_due <= ?", Value::Text(last_due_day(now, config)), &mut conditions);
    }
    let where_sql = if conditions.is_empty() { "1".to_string() } else { conditions.join(" AND ") };
    (where_sql, args)
}

/// The last due date [`due_state`] calls due (overdue, today or soon) at `now`, as stored text.
fn last_due_day(now: Millis, config: &policy::PolicyConfig) -> String {
    let today = local_date(now);
    match chrono::TimeDelta::try_days(config.due_soon_days).and_then(|d| today.checked_add_signed(d)) {
        Some(day) => day.to_string(),
        // A window past the calendar's range: every date or none.
        None if config.due_soon_days > 0 => "9999-12-31".into(),
        None => String::new(),
    }
}

/// The households list's order: building, unit, room (as a number first, so 302 comes before
/// 1101), then id; the index `households_order` holds it.
const HOUSEHOLD_ORDER: &str = "h.building_name, h.unit, CAST(h.room AS INTEGER), h.room, h.id";

fn households_sql(where_sql: &str, limit_sql: &str) -> String {
    format!(
        "SELECT h.id, h.building_id, h.building_name, h.grid_id, h.unit, h.room, h.address, h.head, h.phone,
             h.moved_out, h.next_due, h.tags
         FROM households h WHERE {where_sql} ORDER BY {HOUSEHOLD_ORDER}{limit_sql}"
    )
}

/// The ids of the households matching `where_sql`, in list order (a search's one pass).
fn household_ids_sql(where_sql: &str) -> String {
    format!("SELECT h.id FROM households h WHERE {where_sql} ORDER BY {HOUSEHOLD_ORDER}")
}

fn query_households(
    conn: &Connection,
    where_sql: &str,
    args: &[Value],
    page: Option<Page>,
    now: Millis,
    config: &policy::PolicyConfig,
) -> Result<Vec<HouseholdRow>> {
    let (limit_sql, args) = with_page(args, page);
    let mut stmt = conn.prepare_cached(&households_sql(where_sql, &limit_sql))?;
    let rows = stmt.query_map(params_from_iter(&args), |r| {
        Ok((
            (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?),
            (r.get::<_, String>(4)?, r.get::<_, String>(5)?, r.get::<_, String>(6)?),
            (r.get::<_, String>(7)?, r.get::<_, String>(8)?, r.get::<_, bool>(9)?),
            (r.get::<_, Option<String>>(10)?, r.get::<_, String>(11)?),
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let ((id, building_id, building_name, grid_id), (unit, room, address), (head, phone, moved_out), (due, tags)) =
            row?;
        let next_due: Option<NaiveDate> = due.map(|d| parse(&d, "date")).transpose()?;
        let mut tags: Vec<MustVisitTag> =
            tags.split(',').filter(|t| !t.is_empty()).map(|t| parse(t, "tag")).collect::<Result<_>>()?;
        // In the order of their codes, as the rows have always listed them.
        tags.sort_by_key(|t| t.code());
        out.push(HouseholdRow {
            id: parse(&id, "household id")?,
            building_id: parse(&building_id, "building id")?,
            building_name,
            grid_id: parse::<GridId>(&grid_id, "grid id")?,
            unit,
            room,
            address,
            head,
            phone,
            tags,
            next_due,
            next_due_state: next_due.map(|d| due_state(d, now, config)),
            moved_out,
        });
    }
    Ok(out)
}

pub(crate) fn households(client: &Client, filter: &HouseholdFilter, now: Millis) -> Result<Vec<HouseholdRow>> {
    let conn = client.db();
    let (where_sql, args) = household_where(filter, now, client.policy());
    query_households(&conn, &where_sql, &args, None, now, client.policy())
}

pub(crate) fn households_page(
    client: &Client,
    filter: &HouseholdFilter,
    page: Page,
    now: Millis,
) -> Result<Paged<HouseholdRow>> {
    let conn = client.db();
    let config = client.policy();
    let (where_sql, args) = household_where(filter, now, config);
    let searching = filter.search.as_deref().is_some_and(|q| !search::normalize_query(q).is_empty());
    if !searching {
        let total = count(&conn, &format!("SELECT count(*) FROM households h WHERE {where_sql}"), &args)?;
        let rows = query_households(&conn, &where_sql, &args, Some(page), now, config)?;
        return Ok(Paged { rows, offset: page.offset, total });
    }
    // A search reads every search text: once, in list order, from the index `households_order`
    // that holds them (no row is read), giving the count and the page's ids together.
    let ids: Vec<String> = {
        let mut stmt = conn.prepare_cached(&household_ids_sql(&where_sql))?;
        stmt.query_map(params_from_iter(&args), |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    };
    let shown: Vec<&String> = ids.iter().skip(page.offset).take(page.limit).collect();
    let shown = serde_json::to_string(&shown).map_err(|e| Error::Encode(e.to_string()))?;
    let rows =
        query_households(&conn, "h.id IN (SELECT value FROM json_each(?1))", &[Value::Text(shown)], None, now, config)?;
    Ok(Paged { rows, offset: page.offset, total: ids.len() })
}

pub(crate) fn household(client: &Client, id: HouseholdId, now: Millis) -> Result<HouseholdDetail> {
    let conn = client.db();
    let h = load_household(&conn, id)?;
    let open_cases =
        query_cases(&conn, "c.household = ?1 AND c.is_open = 1", &[Value::Text(id.to_string())], None, now)?;
    let residents = h
        .residents
        .values()
        .map(|r| ResidentView {
            id: r.id,
            name: r.name.clone(),
            sex: r.sex,
            birth_year: r.birth_year,
            relation: r.relation.clone(),
            phone: r.phone.clone(),
            id_number_masked: mask_id_number(&r.id_number),
            flags: r.flags.iter().filter(|(_, on)| **on).map(|(f, _)| *f).collect(),
            departure: h.departures.get(&r.id).cloned(),
        })
        .collect();
    let visits = h
        .visits_newest_first()
        .into_iter()
        .map(|v| VisitView {
            id: v.id,
            at: v.at,
            recorded_at: v.recorded_at,
            visitor: v.visitor,
            visitor_name: v.visitor_name.clone(),
            outcome: v.outcome,
            notes: v.notes.clone(),
            needs_found: v.needs_found.clone(),
            follow_up: v.follow_up,
            residents_present: v
                .residents_present
                .iter()
                .map(|r| h.residents.get(r).map(|x| x.name.clone()).unwrap_or_else(|| r.to_string()))
                .collect(),
        })
        .collect();
    Ok(HouseholdDetail {
        id: h.id,
        building_id: h.placement.building.unwrap_or_else(|| BuildingId::from_u128(0)),
        building_name: h.building_name.clone(),
        grid_id: h.placement.grid,
        unit: h.unit.clone(),
        room: h.room.clone(),
        address: h.address(),
        head: h.head.clone(),
        phone: h.phone.clone(),
        notes: h.notes.clone(),
        status: h.status,
        moved_out_on: h.moved_out_on,
        created_at: h.created_at,
        residents,
        tags: h.tags.iter().map(|(t, e)| TagView { tag: *t, since: e.since, note: e.note.clone() }).collect(),
        needs: h.needs.iter().map(|(n, e)| NeedView { need: *n, since: e.since, note: e.note.clone() }).collect(),
        visits,
        open_cases,
        dues: policy::visits_due(&h, now, client.policy()),
    })
}

// ----- today --------------------------------------------------------------------------------

pub(crate) fn today(client: &Client, now: Millis) -> Result<TodayView> {
    let config = client.policy();
    let conn = client.db();
    let mut due_visits = Vec::new();
    {
        // Only the obligations due by the end of the due-soon window are read (index
        // `household_tags_due`); the rest are not due at `now`.
        let mut stmt = conn.prepare_cached(
            "SELECT t.household, h.address, h.head, t.tag, t.due_on, t.last_met
             FROM household_tags t JOIN households h ON h.id = t.household
             WHERE t.due_on IS NOT NULL AND t.due_on <= ?1 AND h.moved_out = 0",
        )?;
        let rows = stmt.query_map([last_due_day(now, config)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })?;
        for row in rows {
            let (household, address, head, tag, due_on, last_met) = row?;
            let due_on: NaiveDate = parse(&due_on, "date")?;
            let state = due_state(due_on, now, config);
            if matches!(state, DueState::NotDue { .. }) {
                continue;
            }
            due_visits.push(DueVisitRow {
                household: parse(&household, "household id")?,
                address,
                head,
                tag: parse(&tag, "tag")?,
                state,
                due_on,
                last_met,
            });
        }
    }
    due_visits.sort_by(|a, b| (a.due_on, &a.address, a.tag).cmp(&(b.due_on, &b.address, b.tag)));

    // Must-arrive events from their query rows (arrival deadline and first arrival are
    // materialized with the case), without loading each case document.
    let mut must_arrive = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT c.id, c.title, c.kind, c.arrival_deadline, c.first_arrival, h.address
             FROM cases c LEFT JOIN households h ON h.id = c.household
             WHERE c.is_open = 1 AND c.kind LIKE 'must-arrive:%' AND c.arrival_deadline IS NOT NULL
             ORDER BY c.arrival_deadline, c.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })?;
        for row in rows {
            let (id, title, kind, deadline, first_arrival, address) = row?;
            let CaseKind::MustArrive(kind) = parse::<CaseKind>(&kind, "case kind")? else { continue };
            must_arrive.push(MustArriveRow {
                case: parse(&id, "case id")?,
                title,
                kind,
                deadline,
                state: policy::arrival_state_at(deadline, first_arrival, now),
                address,
            });
        }
    }
    let (where_sql, args) = case_where(&conn, CaseFilter::Mine, now)?;
    let my_cases = query_cases(&conn, where_sql, &args, None, now)?;
    Ok(TodayView { date: local_date(now), due_visits, must_arrive, my_cases })
}

// ----- reference data, status ---------------------------------------------------------------

pub(crate) fn buildings(client: &Client) -> Result<Vec<BuildingRow>> {
    let conn = client.db();
    let roster = store::roster(&conn)?;
    let principal = store::principal(&conn)?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    {
        let mut stmt = conn.prepare("SELECT building_id, count(*) FROM households GROUP BY building_id")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (b, n) = row?;
            counts.insert(b, n as usize);
        }
    }
    let mut out: Vec<BuildingRow> = roster
        .buildings
        .iter()
        .filter_map(|b| {
            let placement = roster.placement_of_building(b.id)?;
            principal.covers(&placement).then(|| BuildingRow {
                id: b.id,
                name: b.name.clone(),
                grid: b.grid,
                grid_name: roster.grids.iter().find(|g| g.id == b.grid).map(|g| g.name.clone()).unwrap_or_default(),
                units: b.units,
                floors: b.floors,
                households: counts.get(&b.id.to_string()).copied().unwrap_or(0),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.grid_name, &a.name, a.id).cmp(&(&b.grid_name, &b.name, b.id)));
    Ok(out)
}

pub(crate) fn services(client: &Client) -> Result<Vec<OutletGroup>> {
    let roster = store::roster(&client.db())?;
    Ok(ServiceCategory::ALL
        .iter()
        .map(|category| {
            let mut outlets: Vec<_> = roster.outlets.iter().filter(|o| o.category == *category).cloned().collect();
            outlets.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
            OutletGroup { category: *category, outlets }
        })
        .collect())
}

pub(crate) fn staff(client: &Client) -> Result<Vec<Staff>> {
    let mut staff = store::roster(&client.db())?.staff;
    staff.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
    Ok(staff)
}

/// The staff a case can be handed on to: those whose role may accept and work a case. Building
/// leaders and volunteers (among them the server's e-link accounts) may only comment, so a case
/// handed to them would stall.
pub(crate) fn case_handlers(client: &Client) -> Result<Vec<Staff>> {
    let mut staff = staff(client)?;
    staff.retain(|s| gridlink_shared::validate::role_may_act(s.role, ActionKind::Accept));
    Ok(staff)
}

/// Every change not on the server: the outbox in commit order, then the refused ones.
pub(crate) fn changes_not_on_server(client: &Client) -> Result<Vec<RecoveredChange>> {
    let conn = client.db();
    let mut out = Vec::new();
    let mut stmt = conn.prepare("SELECT hash, doc, summary, recorded_at, bytes FROM outbox ORDER BY seq")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Vec<u8>>(4)?,
        ))
    })?;
    for row in rows {
        let (hash, doc, summary, recorded_at, bytes) = row?;
        let doc = parse::<DocId>(&doc, "document id")?;
        out.push(RecoveredChange {
            hash,
            doc,
            summary,
            recorded_at,
            state: "unsent".into(),
            refused_because: None,
            bytes: hex::encode(bytes),
        });
    }
    let mut stmt = conn.prepare(
        "SELECT hash, doc, summary, recorded_at, bytes, code, message FROM rejected ORDER BY rejected_at, hash",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Vec<u8>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
        ))
    })?;
    for row in rows {
        let (hash, doc, summary, recorded_at, bytes, code, message) = row?;
        out.push(RecoveredChange {
            hash,
            doc: parse::<DocId>(&doc, "document id")?,
            summary,
            recorded_at,
            state: "refused".into(),
            refused_because: Some(format!("{code}: {message}")),
            bytes: hex::encode(bytes),
        });
    }
    Ok(out)
}

pub(crate) fn rejected_changes(client: &Client) -> Result<Vec<RejectedChange>> {
    let conn = client.db();
    let mut stmt = conn.prepare(
        "SELECT hash, doc, summary, code, message, recorded_at, rejected_at FROM rejected
         ORDER BY rejected_at DESC, hash",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, i64>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (hash, doc, summary, code, message, recorded_at, rejected_at) = row?;
        out.push(RejectedChange {
            hash,
            doc: parse::<DocId>(&doc, "document id")?,
            summary,
            code: parse(&code, "reject code")?,
            message,
            recorded_at,
            rejected_at,
        });
    }
    Ok(out)
}

pub(crate) fn status(client: &Client) -> Result<SyncStatus> {
    let conn = client.db();
    let get = |key: &str| store::meta_get(&conn, key);
    let millis = |raw: Option<String>| raw.and_then(|v| v.parse::<i64>().ok());
    Ok(SyncStatus {
        enrolled: get("token")?.is_some(),
        server_url: get("server_url")?,
        online: get("online")?.map(|v| v == "1"),
        last_error: store::meta_json(&conn, "last_error")?,
        last_attempt_at: millis(get("last_attempt_at")?),
        last_success_at: millis(get("last_success_at")?),
        unsent: store::count(&conn, "outbox")?,
        rejected: store::count(&conn, "rejected")?,
        quarantined: quarantine::open_count(&conn)?,
        revoked: get("revoked")?.is_some(),
        device: get("device")?.and_then(|d| d.parse().ok()),
    })
}

pub(crate) fn identity(client: &Client) -> Result<Identity> {
    let conn = client.db();
    let principal = store::principal(&conn)?;
    let roster = store::roster(&conn)?;
    let staff = roster.staff.iter().find(|s| s.id == principal.user);
    let scopes = staff.map(|s| s.scopes.clone()).unwrap_or_else(|| principal.scopes.clone());
    let grid_names = scopes
        .iter()
        .filter_map(|scope| match scope {
            Scope::Grid(id) => roster.grids.iter().find(|g| g.id == *id).map(|g| g.name.clone()),
            Scope::Building(id) => roster.buildings.iter().find(|b| b.id == *id).map(|b| b.name.clone()),
            Scope::Community(id) => roster.communities.iter().find(|c| c.id == *id).map(|c| c.name.clone()),
            Scope::Street(id) => roster.streets.iter().find(|s| s.id == *id).map(|s| s.name.clone()),
        })
        .collect();
    Ok(Identity {
        user: principal.user,
        name: staff.map(|s| s.name.clone()).unwrap_or(principal.name.clone()),
        role: principal.role,
        grid_names,
        phone: staff.map(|s| s.phone.clone()).unwrap_or_default(),
        pledge: staff.map(|s| s.pledge.clone()).unwrap_or_default(),
    })
}

// ----- export -------------------------------------------------------------------------------

fn all_docs(conn: &Connection) -> Result<Vec<(String, Vec<u8>)>> {
    let mut stmt = conn.prepare("SELECT id, bytes FROM docs ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| Error::Encode(e.to_string()))
}

/// Everything held locally, deterministic: objects have sorted keys (serde_json's map is a
/// BTreeMap), lists are sorted by id (timelines in causal order), ID numbers masked.
pub(crate) fn export(client: &Client) -> Result<serde_json::Value> {
    let conn = client.db();
    let mut households = Vec::new();
    let mut cases = Vec::new();
    let mut activities = Vec::new();
    for (id, bytes) in all_docs(&conn)? {
        let id: DocId = parse(&id, "document id")?;
        let loaded = quarantine::guarded(|| Ok(doc::read_any(&doc::load(&bytes)?)?));
        let value = match quarantine::on_damage(&conn, "record", id, loaded) {
            // Set aside: its repair is asked for; the export holds everything else.
            Err(Error::Quarantined { .. }) => continue,
            other => other?,
        };
        match value {
            gridlink_shared::AnyDoc::Household(mut h) => {
                for r in h.residents.values_mut() {
                    r.id_number = mask_id_number(&r.id_number);
                }
                let mut value = json(&h)?;
                value["residents"] = json(&h.residents.values().collect::<Vec<_>>())?;
                value["visits"] = json(&h.visits.values().collect::<Vec<_>>())?;
                households.push(value);
            }
            gridlink_shared::AnyDoc::Case(c) => {
                let mut value = json(&c)?;
                value["timeline"] = json(&c.ordered_timeline())?;
                value["status"] = json(&c.status())?;
                let (responsible, responsible_name) = c.responsible();
                value["responsible"] = json(&responsible)?;
                value["responsible_name"] = json(&responsible_name)?;
                cases.push(value);
            }
            gridlink_shared::AnyDoc::Activity(a) => {
                let mut value = json(&a)?;
                value["participants"] = json(&a.participants.values().collect::<Vec<_>>())?;
                activities.push(value);
            }
        }
    }
    Ok(serde_json::json!({ "households": households, "cases": cases, "activities": activities }))
}

#[cfg(test)]
mod tests {
    //! The list queries' plans (`EXPLAIN QUERY PLAN`) on a real store: every table is reached
    //! through an index, and the lists that page through the whole street (all households, a
    //! search, a building, every case filter) come out of an index already in order, so a page
    //! never sorts the street.

    use gridlink_shared::Role;

    use super::*;
    use crate::fixtures::{DEMO_NOW, demo_client};

    fn plan(conn: &Connection, sql: &str, args: &[Value]) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        stmt.query_map(params_from_iter(args), |r| r.get::<_, String>(3)).unwrap().map(|r| r.unwrap()).collect()
    }

    fn assert_indexed(what: &str, plan: &[String], sorted_by_index: bool) {
        for step in plan {
            let full_scan = step.starts_with("SCAN ") && !step.contains("INDEX");
            assert!(!full_scan, "{what}: a table is read without an index: {plan:?}");
        }
        if sorted_by_index {
            assert!(
                !plan.iter().any(|s| s.contains("TEMP B-TREE")),
                "{what}: the rows are sorted after reading: {plan:?}"
            );
        }
    }

    #[test]
    fn list_queries_use_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let (client, demo) = demo_client(dir.path(), Role::GridWorker, DEMO_NOW).unwrap();
        let building = demo.households[0].placement.building;
        let conn = client.db();
        let config = client.policy();
        let household_filters = [
            ("all households", HouseholdFilter::default(), true),
            ("a building", HouseholdFilter { building, ..Default::default() }, true),
            ("due only", HouseholdFilter { due_only: true, ..Default::default() }, false),
            ("a tag", HouseholdFilter { tag: Some(MustVisitTag::ALL[0]), ..Default::default() }, false),
        ];
        for (what, filter, in_order) in household_filters {
            let (where_sql, args) = household_where(&filter, DEMO_NOW, config);
            let (limit_sql, paged) = with_page(&args, Some(Page::default()));
            assert_indexed(what, &plan(&conn, &households_sql(&where_sql, &limit_sql), &paged), in_order);
            let count = format!("SELECT count(*) FROM households h WHERE {where_sql}");
            assert_indexed(what, &plan(&conn, &count, &args), false);
        }
        let search = HouseholdFilter { search: Some("zs".into()), ..Default::default() };
        let (where_sql, args) = household_where(&search, DEMO_NOW, config);
        let ids = plan(&conn, &household_ids_sql(&where_sql), &args);
        assert!(ids.iter().any(|s| s.contains("COVERING INDEX households_order")), "a search reads one index: {ids:?}");
        assert_indexed("search", &ids, true);

        for filter in [CaseFilter::All, CaseFilter::Open, CaseFilter::Overdue, CaseFilter::Mine, CaseFilter::Resolved] {
            let (where_sql, args) = case_where(&conn, filter, DEMO_NOW).unwrap();
            let what = format!("cases {filter:?}");
            let (limit_sql, paged) = with_page(&args, Some(Page::default()));
            assert_indexed(&what, &plan(&conn, &cases_sql(where_sql, &limit_sql), &paged), true);
            assert_indexed(
                &what,
                &plan(&conn, &format!("SELECT count(*) FROM cases c WHERE {where_sql}"), &args),
                true,
            );
        }
    }
}
