//! The supervisor's figures on the phone (督导工作台): the console's figures, computed by the
//! same [`gridlink_shared::figures`] functions over the documents this phone holds, plus the
//! lists a supervisor acts on (overdue must-visit households, overdue cases, cases waiting to be
//! verified and closed 待核实办结).
//!
//! No figure is defined here. This module only turns the stored documents into the shared
//! fact rows ([`HouseholdFacts::from_file`], [`CaseFacts::from_case`], as the server does when
//! it writes a document) and picks the period and grouping the way the console does by default
//! (this month, one level below the user's broadest scope).
//!
//! # The fact cache
//!
//! A street supervisor holds about 40,000 documents; hydrating every automerge document for
//! each screen would take seconds. The rows are therefore cached in the `doc_facts` table, one
//! row per document, tagged with the document's heads. The store's save path writes a
//! document's row in the transaction that saves it (`cache_facts`: the document is hydrated
//! there already). Before figures are computed, any document whose heads differ from its
//! cached row (a store from before the cache, a row missing for any reason) is hydrated again,
//! in the same transaction, and rows of deleted documents are dropped. The heads identify a
//! document's state exactly, so the cache never serves rows of an older state. A fact row does
//! not depend on `now` (see docs/console.md), so it stays valid while its document is unchanged.
//!
//! Measured on the street demo (40,260 documents, release build, 2 shared cores; the ignored
//! test `street_scale_cost_of_the_supervisor_home`): filling the cache from nothing (a store
//! from before it) takes 17 to 20 s, once; installing all 40,260 documents took 20 s without
//! the save-time rows and 20 to 26 s with them (a shared machine: within its noise); a read
//! with the cache in place takes about
//! 0.75 s, nearly all of it parsing the cached JSON rows (the figures themselves take a few
//! milliseconds). The supervisor's screen therefore reads again only when the store changes.

use gridlink_shared::figures::{
    self, CaseFacts, CaseFigure, Dashboard, Facts, GroupBy, Grouping, HouseholdFacts, HouseholdFigure, Period,
    VisitFacts,
};
use gridlink_shared::policy::{DueState, PolicyConfig};
use gridlink_shared::time::Millis;
use gridlink_shared::{AnyDoc, CaseStatus, HouseholdId, MustVisitTag, Role, Roster, Scope, doc};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::quarantine::guarded;
use crate::{Client, store};

/// The cache table. Created on first use rather than by a store migration: it holds nothing
/// that cannot be rebuilt from `docs`, so an older store simply starts with an empty cache.
const CREATE_CACHE: &str = "CREATE TABLE IF NOT EXISTS doc_facts (
    doc TEXT PRIMARY KEY,
    heads TEXT NOT NULL,
    facts TEXT NOT NULL
)";

/// The cached rows of one document.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum DocFacts {
    Household {
        household: HouseholdFacts,
        visits: Vec<VisitFacts>,
    },
    Case {
        case: CaseFacts,
    },
    /// Activity records count in none of the supervisor's figures.
    Activity,
}

impl DocFacts {
    fn of(value: &AnyDoc, config: &PolicyConfig) -> DocFacts {
        match value {
            AnyDoc::Household(file) => {
                let (household, visits) = HouseholdFacts::from_file(file);
                DocFacts::Household { household, visits }
            }
            AnyDoc::Case(case) => DocFacts::Case { case: CaseFacts::from_case(case, config) },
            AnyDoc::Activity(_) => DocFacts::Activity,
        }
    }
}

/// What the cache refresh did: how many documents were hydrated again, how many were read
/// from the cache unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactsRefresh {
    pub rehydrated: usize,
    pub cached: usize,
}

/// Creates the cache table if this store has none yet (at open).
pub(crate) fn create_cache(conn: &Connection) -> Result<()> {
    conn.execute_batch(CREATE_CACHE)?;
    Ok(())
}

/// Writes the fact rows of a document just saved, tagged with the heads `docs` now holds for
/// it (called by the store's save path, in its transaction), so reads find them ready.
pub(crate) fn cache_facts(conn: &Connection, value: &AnyDoc, config: &PolicyConfig) -> Result<()> {
    let id = value.doc_id().to_string();
    let facts = serde_json::to_string(&DocFacts::of(value, config))
        .map_err(|e| Error::Corrupt(format!("fact row of {id}: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO doc_facts (doc, heads, facts) SELECT id, heads, ?2 FROM docs WHERE id = ?1
         ON CONFLICT(doc) DO UPDATE SET heads = excluded.heads, facts = excluded.facts",
    )?
    .execute(params![id, facts])?;
    Ok(())
}

/// Brings `doc_facts` up to date with `docs` and returns every row. A document whose bytes
/// do not load or hydrate (kept aside, waiting for dependencies) keeps its last good rows, as
/// the store's query tables do.
fn refresh_and_read(conn: &Connection, config: &PolicyConfig) -> Result<(Facts, FactsRefresh)> {
    conn.execute_batch(CREATE_CACHE)?;
    conn.execute("DELETE FROM doc_facts WHERE doc NOT IN (SELECT id FROM docs)", [])?;
    let stale: Vec<(String, String, Vec<u8>)> = {
        let mut statement = conn.prepare(
            "SELECT d.id, d.heads, d.bytes FROM docs d LEFT JOIN doc_facts f ON f.doc = d.id
             WHERE d.doc_type <> 'unknown' AND (f.heads IS NULL OR f.heads <> d.heads)",
        )?;
        statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?
    };
    let mut refresh = FactsRefresh::default();
    for (id, heads, bytes) in stale {
        let Ok(value) = guarded(|| Ok(doc::read_any(&doc::load(&bytes)?)?)) else { continue };
        let facts = serde_json::to_string(&DocFacts::of(&value, config))
            .map_err(|e| Error::Corrupt(format!("fact row of {id}: {e}")))?;
        conn.execute(
            "INSERT INTO doc_facts (doc, heads, facts) VALUES (?1, ?2, ?3)
             ON CONFLICT(doc) DO UPDATE SET heads = excluded.heads, facts = excluded.facts",
            params![id, heads, facts],
        )?;
        refresh.rehydrated += 1;
    }
    let mut all = Facts::default();
    let mut statement = conn.prepare("SELECT facts FROM doc_facts ORDER BY doc")?;
    let mut rows = statement.query([])?;
    let mut read = 0;
    while let Some(row) = rows.next()? {
        let raw: String = row.get(0)?;
        let cached =
            serde_json::from_str::<DocFacts>(&raw).map_err(|e| Error::Corrupt(format!("cached fact row: {e}")))?;
        match cached {
            DocFacts::Household { household, visits } => {
                all.households.push(household);
                all.visits.extend(visits);
            }
            DocFacts::Case { case } => all.cases.push(case),
            DocFacts::Activity => {}
        }
        read += 1;
    }
    refresh.cached = read - refresh.rehydrated.min(read);
    Ok((all, refresh))
}

/// The console's default grouping level: one below the user's broadest scope (a street
/// supervisor sees communities, a community supervisor grids, a grid its workers).
pub fn default_group_by(scopes: &[Scope]) -> GroupBy {
    if scopes.iter().any(|s| matches!(s, Scope::Street(_))) {
        GroupBy::Community
    } else if scopes.iter().any(|s| matches!(s, Scope::Community(_))) {
        GroupBy::Grid
    } else {
        GroupBy::Worker
    }
}

/// The console's grouping for these scopes: within the one scope, or over the whole roster
/// when there are several (the rows are already only the scopes').
pub fn grouping_for(roster: &Roster, by: GroupBy, scopes: &[Scope]) -> Grouping {
    match scopes {
        [one] => Grouping::within(roster, by, *one),
        _ => Grouping::new(roster, by),
    }
}

/// All time: the lists of what is overdue *now* are not limited to the period's reports.
const ALL_TIME: Period = Period { from: Millis::MIN, to: Millis::MAX };

/// An active household with an overdue must-visit (逾期未访), at its most urgent tag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverdueHouseholdRow {
    pub household: HouseholdId,
    pub head: String,
    pub address: String,
    pub tag: MustVisitTag,
    pub due: DueState,
}

/// The supervisor's home: the console's dashboard over the phone's documents, and the lists
/// to act on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SupervisorHome {
    pub dashboard: Dashboard,
    /// 逾期未访: most overdue first, as the console's drill-down lists them.
    pub overdue_households: Vec<OverdueHouseholdRow>,
    /// 逾期未办结, whenever reported: oldest report first.
    pub overdue_cases: Vec<CaseFacts>,
    /// 待核实办结: resolved by the worker, waiting for the supervisor to verify and close (or
    /// reopen); longest waiting first.
    pub to_verify: Vec<CaseFacts>,
    /// What the fact cache did for this read.
    pub refresh: FactsRefresh,
}

impl Client {
    /// Every fact row of the documents held locally, from the cache brought up to date first.
    pub fn facts(&self) -> Result<(Facts, FactsRefresh)> {
        let conn = self.db();
        refresh_and_read(&conn, self.policy())
    }

    /// The supervisor's home for `period` (this month when `None`, as the console) at `now`,
    /// grouped as the console groups it for the enrolled user.
    pub fn supervisor_home(&self, period: Option<Period>, now: Millis) -> Result<SupervisorHome> {
        let (facts, refresh, principal, roster) = {
            let conn = self.db();
            let (facts, refresh) = refresh_and_read(&conn, self.policy())?;
            (facts, refresh, store::principal(&conn)?, store::roster(&conn)?)
        };
        let config = self.policy();
        let grouping = grouping_for(&roster, default_group_by(&principal.scopes), &principal.scopes);
        let period = period.unwrap_or_else(|| Period::this_month(now));
        let dashboard = figures::dashboard(&facts, period, now, config, &grouping);
        let overdue_households = figures::coverage_rows(
            &facts.households,
            &facts.visits,
            HouseholdFigure::HouseholdsOverdue,
            None,
            now,
            config,
            &grouping,
        )
        .into_iter()
        .filter_map(|row| {
            let due = row.due?;
            Some(OverdueHouseholdRow {
                household: row.household.id,
                head: row.household.head.clone(),
                address: row.household.address.clone(),
                tag: row.tag,
                due: due.state,
            })
        })
        .collect();
        let overdue_cases =
            figures::case_rows(&facts.cases, CaseFigure::OpenOverdue, None, None, ALL_TIME, now, &grouping)
                .into_iter()
                .cloned()
                .collect();
        let mut to_verify: Vec<CaseFacts> = facts
            .cases
            .iter()
            .filter(|c| c.status == CaseStatus::Resolved && grouping.includes(None, &c.placement))
            .cloned()
            .collect();
        to_verify.sort_by_key(|c| (c.completed_at, c.reported_at, c.id));
        Ok(SupervisorHome { dashboard, overdue_households, overdue_cases, to_verify, refresh })
    }
}

/// Whether `role` gets the supervisor's home (督导 and the administrator, who may do what a
/// supervisor does).
pub fn has_supervisor_home(role: Role) -> bool {
    matches!(role, Role::Supervisor | Role::Admin)
}
