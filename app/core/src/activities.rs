//! Activity and service records on the phone (志愿服务/党员活动与服务时长): recording one for one
//! or more party members or volunteers, listing them (all, one person's, one case's), and the
//! per-branch and per-person totals of the 党群 screen.
//!
//! Records are synced documents ([`gridlink_shared::ActivityFile`]); the store keeps the query
//! rows `activities` and `activity_people` in the same transaction as each document write, so
//! lists and totals read SQLite only, never automerge.

use chrono::NaiveDate;
use gridlink_shared::activity::{self, ActivityEntry, ActivityTotals, parse_hours};
use gridlink_shared::time::Millis;
use gridlink_shared::{ActivityFile, ActivityId, ActivityKind, CaseId, GridId, PartyBranchId, PersonRef, Role, search};
use rusqlite::{Connection, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{Client, store};

/// A record to make: what, where, when, for which case, and who served how long (hours as
/// typed, e.g. "2.5").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewActivity {
    pub kind: ActivityKind,
    pub grid: GridId,
    pub title: String,
    pub notes: String,
    pub on: NaiveDate,
    pub case: Option<CaseId>,
    pub participants: Vec<(PersonRef, String)>,
}

/// One record as lists show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRow {
    pub id: ActivityId,
    pub kind: ActivityKind,
    pub title: String,
    pub on: NaiveDate,
    pub case: Option<CaseId>,
    pub recorded_by_name: String,
    /// Hours of all participants, in tenths.
    pub tenths: u32,
    /// Participants with their names and hours in tenths, in name order.
    pub people: Vec<(PersonRef, String, u32)>,
}

/// What the recording form offers: the grids the user may record for, each with the party
/// members of its branches and the volunteers of its community.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityChoices {
    /// Grid workers, supervisors and admins record; building leaders and volunteers do not.
    pub may_record: bool,
    pub grids: Vec<GridChoice>,
}

/// One grid of [`ActivityChoices`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridChoice {
    pub grid: GridId,
    pub name: String,
    pub members: Vec<(PersonRef, String)>,
    pub volunteers: Vec<(PersonRef, String)>,
    /// The grid's open cases a record may be linked to, newest first.
    pub open_cases: Vec<(CaseId, String)>,
}

/// Which records to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivityFilter {
    All,
    Person(PersonRef),
    Case(CaseId),
}

/// Creates the query tables (a store migration, see [`store::MIGRATIONS`]).
pub(crate) const MIGRATION: &str = r#"
CREATE TABLE activities (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    grid_id TEXT NOT NULL,
    title TEXT NOT NULL,
    on_day TEXT NOT NULL,
    case_id TEXT,
    recorded_by_name TEXT NOT NULL
);
CREATE INDEX activities_case ON activities(case_id);
CREATE TABLE activity_people (
    activity TEXT NOT NULL,
    person TEXT NOT NULL,
    name TEXT NOT NULL,
    tenths INTEGER NOT NULL,
    on_day TEXT NOT NULL,
    PRIMARY KEY (activity, person)
);
CREATE INDEX activity_people_person ON activity_people(person);
"#;

/// Deletes the query rows of a document (any kind: cheap when it is not a record).
pub(crate) fn unmaterialize(tx: &Transaction<'_>, id: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM activities WHERE id = ?1")?.execute([id])?;
    tx.prepare_cached("DELETE FROM activity_people WHERE activity = ?1")?.execute([id])?;
    Ok(())
}

/// Writes the query rows of one record.
pub(crate) fn materialize(tx: &Transaction<'_>, a: &ActivityFile) -> Result<()> {
    let id = a.id.to_string();
    let on = a.on.to_string();
    tx.prepare_cached(
        "INSERT INTO activities (id, kind, grid_id, title, on_day, case_id, recorded_by_name)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id,
        a.kind.code(),
        a.placement.grid.to_string(),
        a.title,
        on,
        a.case.map(|c| c.to_string()),
        a.recorded_by_name
    ])?;
    for p in a.participants.values() {
        tx.prepare_cached(
            "INSERT INTO activity_people (activity, person, name, tenths, on_day) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![id, p.person.to_string(), p.name, p.tenths, on])?;
    }
    Ok(())
}

fn parse<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T> {
    raw.parse().map_err(|_| Error::Corrupt(format!("stored {what} '{raw}'")))
}

fn rows(conn: &Connection, filter: ActivityFilter) -> Result<Vec<ActivityRow>> {
    let (condition, arg) = match filter {
        ActivityFilter::All => ("?1 IS NOT NULL", String::new()),
        ActivityFilter::Person(person) => {
            ("a.id IN (SELECT activity FROM activity_people WHERE person = ?1)", person.to_string())
        }
        ActivityFilter::Case(case) => ("a.case_id = ?1", case.to_string()),
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT a.id, a.kind, a.title, a.on_day, a.case_id, a.recorded_by_name FROM activities a
         WHERE {condition} ORDER BY a.on_day DESC, a.id DESC"
    ))?;
    let raw = stmt
        .query_map([arg], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut people =
        conn.prepare("SELECT person, name, tenths FROM activity_people WHERE activity = ?1 ORDER BY name, person")?;
    let mut out = Vec::with_capacity(raw.len());
    for (id, kind, title, on, case, recorded_by_name) in raw {
        let names = people
            .query_map([&id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, u32>(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .map(|(person, name, tenths)| Ok((parse(&person, "participant")?, name, tenths)))
            .collect::<Result<Vec<_>>>()?;
        out.push(ActivityRow {
            id: parse(&id, "activity id")?,
            kind: parse(&kind, "activity kind")?,
            title,
            on: parse(&on, "activity day")?,
            case: case.map(|c| parse(&c, "case id")).transpose()?,
            recorded_by_name,
            tenths: names.iter().map(|(_, _, t)| t).sum(),
            people: names,
        });
    }
    Ok(out)
}

/// The records done for one case (for its detail screen).
pub(crate) fn for_case(conn: &Connection, case: CaseId) -> Result<Vec<ActivityRow>> {
    rows(conn, ActivityFilter::Case(case))
}

/// Every participant of every record held, for the totals.
fn entries(conn: &Connection) -> Result<Vec<ActivityEntry>> {
    let mut stmt = conn.prepare("SELECT activity, person, name, tenths, on_day FROM activity_people")?;
    let raw = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raw.into_iter()
        .map(|(activity, person, name, tenths, on)| {
            Ok(ActivityEntry {
                activity: parse(&activity, "activity id")?,
                on: parse(&on, "activity day")?,
                person: parse(&person, "participant")?,
                name,
                tenths,
            })
        })
        .collect()
}

impl Client {
    /// Records an activity or service for one or more party members or volunteers of the
    /// roster held here, in the name of the enrolled user. Names come from the roster; hours
    /// are parsed with [`gridlink_shared::activity::parse_hours`].
    pub fn record_activity(&self, new: NewActivity, now: Millis) -> Result<ActivityId> {
        let (roster, principal) = {
            let conn = self.db();
            (store::roster(&conn)?, store::principal(&conn)?)
        };
        let placement = roster
            .placement_of_grid(new.grid)
            .ok_or_else(|| Error::Input(format!("grid {} is not on this device's roster", new.grid)))?;
        let title = new.title.trim();
        if title.is_empty() {
            return Err(Error::Input("say what was done".into()));
        }
        if new.participants.is_empty() {
            return Err(Error::Input("choose at least one party member or volunteer".into()));
        }
        let id = ActivityId::new();
        let mut record =
            ActivityFile::new(id, new.kind, placement, title, new.on, new.case, (principal.user, &principal.name), now);
        record.notes = new.notes.trim().to_string();
        for (person, hours) in &new.participants {
            let name = match person {
                PersonRef::PartyMember(m) => roster.party_members.iter().find(|p| p.id == *m).map(|p| p.name.clone()),
                PersonRef::Volunteer(v) => roster.volunteers.iter().find(|p| p.id == *v).map(|p| p.name.clone()),
            }
            .ok_or_else(|| Error::Input(format!("{person} is not on this device's roster")))?;
            let tenths = parse_hours(hours).map_err(|e| Error::Input(format!("{name}: {} / {e}", e.zh())))?;
            record.add(*person, &name, tenths);
        }
        crate::writes::create(self, &record, &format!("activity {} ({})", title, record.participants.len()), now)?;
        Ok(id)
    }

    /// The grids and people the recording form offers this user.
    pub fn activity_choices(&self) -> Result<ActivityChoices> {
        let conn = self.db();
        let (roster, principal) = (store::roster(&conn)?, store::principal(&conn)?);
        let may_record = matches!(principal.role, Role::GridWorker | Role::Supervisor | Role::Admin);
        let mut cases =
            conn.prepare("SELECT id, title FROM cases WHERE is_open AND grid_id = ?1 ORDER BY reported_at DESC")?;
        let mut grids = Vec::new();
        for g in roster.grids.iter().filter(|g| roster.placement_of_grid(g.id).is_some_and(|p| principal.covers(&p))) {
            let open_cases = cases
                .query_map([g.id.to_string()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .map(|(id, title)| Ok((parse(&id, "case id")?, title)))
                .collect::<Result<Vec<_>>>()?;
            grids.push({
                let branches: Vec<_> = roster.party_branches.iter().filter(|b| b.grid == g.id).map(|b| b.id).collect();
                let mut members: Vec<(PersonRef, String)> = roster
                    .party_members
                    .iter()
                    .filter(|m| branches.contains(&m.branch))
                    .map(|m| (PersonRef::PartyMember(m.id), m.name.clone()))
                    .collect();
                let mut volunteers: Vec<(PersonRef, String)> = roster
                    .volunteers
                    .iter()
                    .filter(|v| v.community == g.community)
                    .map(|v| (PersonRef::Volunteer(v.id), v.name.clone()))
                    .collect();
                members.sort_by_cached_key(|(p, name)| (search::pinyin_forms(name).0, *p));
                volunteers.sort_by_cached_key(|(p, name)| (search::pinyin_forms(name).0, *p));
                GridChoice { grid: g.id, name: g.name.clone(), members, volunteers, open_cases }
            });
        }
        Ok(ActivityChoices { may_record, grids })
    }

    /// Records held here, newest day first.
    pub fn activities(&self, filter: ActivityFilter) -> Result<Vec<ActivityRow>> {
        rows(&self.db(), filter)
    }

    /// Hours and counts per party branch (and volunteers) and per person over `from..=to`.
    /// Branches of grids outside this phone's scopes are listed only when someone of theirs
    /// served here: the phone receives no records of those grids (the roster it holds reaches
    /// the whole community), so their zeros would mislead.
    pub fn activity_totals(&self, from: NaiveDate, to: NaiveDate) -> Result<ActivityTotals> {
        let conn = self.db();
        let roster = store::roster(&conn)?;
        let principal = store::principal(&conn)?;
        let mut totals = activity::totals(&entries(&conn)?, &roster, from, to);
        let held = |branch: PartyBranchId| {
            roster
                .party_branches
                .iter()
                .find(|b| b.id == branch)
                .and_then(|b| roster.placement_of_grid(b.grid))
                .is_some_and(|placement| principal.covers(&placement))
        };
        totals.branches.retain(|group| group.count > 0 || group.branch.is_some_and(held));
        Ok(totals)
    }
}
