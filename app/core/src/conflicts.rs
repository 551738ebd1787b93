//! The review queue of concurrent edits (待确认的修改) on the phone: which household files
//! hold fields two offline edits left with more than one value, what the values are, and a
//! person's pick written as an ordinary edit ([`gridlink_shared::conflicts`] does the finding
//! and the writing).
//!
//! Lists must not load every document: the store keeps one row per household file in
//! `household_conflicts` (its heads and how many fields are in conflict), written with the
//! document in [`crate::store::save_doc`]'s transaction (`mark`). A store from before the
//! table, or a row whose heads differ from the document's, is brought up to date on read.
//!
//! Who wrote a value: the phone knows only actors (a device's automerge id). The server binds
//! actors to users but does not send that binding, so a value is shown as this device's (with
//! the user's name) or another device's, with the device's short id and the change's time.

use automerge::AutoCommit;
use automerge::transaction::CommitOptions;
use gridlink_shared::conflicts::{self, PlainValue};
use gridlink_shared::time::Millis;
use gridlink_shared::{AnyDoc, DocId, HouseholdFile, HouseholdId, Lang, doc};
use rusqlite::{Connection, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::quarantine::{self, guarded};
use crate::writes::Typed;
use crate::{Client, store};

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS household_conflicts (
    household TEXT PRIMARY KEY,
    heads TEXT NOT NULL,
    fields INTEGER NOT NULL
);";

/// One value a conflicted field holds, ready to show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConflictValueView {
    /// The value itself: hand it back to [`Client::resolve_conflict`] to pick it.
    pub value: PlainValue,
    /// As people read it (codes as labels, ID numbers masked).
    pub shown: String,
    /// Written on this device.
    pub by_this_device: bool,
    /// The user of this device, when it was written here.
    pub by_name: Option<String>,
    /// The writing device's short id (first 8 hex digits of its actor).
    pub device: String,
    /// When it was written (the writing device's clock), when known.
    pub at: Option<Millis>,
    /// The value the file shows today.
    pub current: bool,
}

/// A field of a household file with concurrent values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldConflict {
    /// The field's keys in the document; hand back to [`Client::resolve_conflict`].
    pub path: Vec<String>,
    /// The field in people's words, e.g. 户主电话, 居民「张秀英」的电话.
    pub field: String,
    pub values: Vec<ConflictValueView>,
}

/// A household file with fields to review, for the lists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HouseholdWithConflicts {
    pub household: HouseholdId,
    pub address: String,
    pub head: String,
    /// How many fields hold concurrent values (at most [`conflicts::MAX_CONFLICTS`]).
    pub fields: usize,
}

/// Creates the marker table if this store has none yet (at open).
pub(crate) fn create_table(conn: &Connection) -> Result<()> {
    conn.execute_batch(CREATE_TABLE)?;
    Ok(())
}

/// Rewrites the marker row of one document, in the transaction that saves it. Cases have no
/// row. The scan walks the document's keys once (bounded by [`conflicts::MAX_KEYS`]).
pub(crate) fn mark(tx: &Transaction<'_>, id: DocId, doc: &mut AutoCommit, value: Option<&AnyDoc>) -> Result<()> {
    if !matches!(value, Some(AnyDoc::Household(_))) {
        return Ok(());
    }
    let fields = guarded(|| Ok(conflicts::find(doc).conflicts.len()))?;
    write_row(tx, &id.to_string(), &heads_of(doc), fields)
}

fn heads_of(doc: &mut AutoCommit) -> String {
    let heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    serde_json::to_string(&heads).unwrap_or_default()
}

fn write_row(conn: &Connection, id: &str, heads: &str, fields: usize) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO household_conflicts (household, heads, fields) VALUES (?1, ?2, ?3)
         ON CONFLICT(household) DO UPDATE SET heads = excluded.heads, fields = excluded.fields",
    )?
    .execute(params![id, heads, fields as i64])?;
    Ok(())
}

/// Brings the marker rows up to date: rows of documents gone are dropped, household files
/// without a row or with another heads are scanned now. After a normal write or pull nothing
/// is stale and this is two indexed queries.
fn refresh(conn: &Connection) -> Result<()> {
    conn.execute_batch(CREATE_TABLE)?;
    conn.execute("DELETE FROM household_conflicts WHERE household NOT IN (SELECT id FROM docs)", [])?;
    let stale: Vec<(String, String, Vec<u8>)> = {
        let mut statement = conn.prepare(
            "SELECT d.id, d.heads, d.bytes FROM docs d LEFT JOIN household_conflicts c ON c.household = d.id
             WHERE d.doc_type = 'household' AND (c.household IS NULL OR c.heads != d.heads)",
        )?;
        statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?
    };
    for (id, heads, bytes) in stale {
        // A document that does not load is the quarantine's business; it lists no conflicts.
        // The row takes the heads as `docs` holds them, so it compares equal next time.
        let scanned = guarded(|| Ok(conflicts::find(&mut doc::load(&bytes)?).conflicts.len()));
        if let Ok(fields) = scanned {
            write_row(conn, &id, &heads, fields)?;
        }
    }
    Ok(())
}

impl Client {
    /// The fields of a household file holding concurrent values, with every value, who wrote
    /// it and when, in `lang`. Empty when there is nothing to review.
    pub fn household_conflicts(&self, id: HouseholdId, lang: Lang) -> Result<Vec<FieldConflict>> {
        let conn = self.db();
        let Some(mut automerge_doc) = store::load_doc(&conn, id.into())? else {
            return Err(Error::NotFound { what: "household", id: id.to_string() });
        };
        let own_actor = store::actor(&conn).ok().map(|a| a.to_hex_string());
        let own_name = store::principal(&conn).ok().map(|p| p.name);
        drop(conn);
        let (file, scan) = guarded(|| {
            let file: HouseholdFile = doc::read(&automerge_doc)?;
            Ok((file, conflicts::find(&mut automerge_doc)))
        })?;
        Ok(scan
            .conflicts
            .into_iter()
            .map(|c| FieldConflict {
                field: conflicts::describe(&c.path, &file, lang),
                values: c
                    .values
                    .iter()
                    .map(|v| {
                        let mine = own_actor.as_deref() == Some(v.actor.as_str());
                        ConflictValueView {
                            shown: conflicts::show_value(&c.path, &v.value, lang),
                            value: v.value.clone(),
                            by_this_device: mine,
                            by_name: if mine { own_name.clone() } else { None },
                            device: v.actor.chars().take(8).collect(),
                            at: v.at,
                            current: v.current,
                        }
                    })
                    .collect(),
                path: c.path,
            })
            .collect())
    }

    /// Every household file on this device with fields to review (the worker's grid, the
    /// supervisor's community or street), by address. Reads the marker rows, not the files.
    pub fn conflicts_in_scope(&self) -> Result<Vec<HouseholdWithConflicts>> {
        let conn = self.db();
        refresh(&conn)?;
        let mut statement = conn.prepare(
            "SELECT h.id, h.address, h.head, c.fields FROM household_conflicts c
             JOIN households h ON h.id = c.household
             WHERE c.fields > 0 ORDER BY h.address, h.id",
        )?;
        let rows = statement
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(id, address, head, fields)| {
                let household =
                    id.parse().map_err(|_| Error::Corrupt(format!("household id {id} in household_conflicts")))?;
                Ok(HouseholdWithConflicts { household, address, head, fields: fields.max(0) as usize })
            })
            .collect()
    }

    /// Picks `value` for the field at `path` of a household file: one change, signed by this
    /// device, whose put supersedes every concurrent value, so once synced the field holds
    /// one value everywhere. A grid worker of the grid or a supervisor over it may pick (the
    /// validator's pick rule, the same on the server); the pick goes out at the next sync.
    pub fn resolve_conflict(
        &self,
        household: HouseholdId,
        path: &[String],
        value: &PlainValue,
        now: Millis,
    ) -> Result<()> {
        let id: DocId = household.into();
        let outcome = self.with_tx(|tx| {
            if quarantine::is_quarantined(tx, id)? {
                return Err(Error::Quarantined { what: HouseholdFile::WHAT, id: id.to_string() });
            }
            let principal = store::principal(tx)?;
            let (mut automerge_doc, before) = quarantine::load_stored::<HouseholdFile>(tx, HouseholdFile::WHAT, id)?;
            let before_doc = automerge_doc.clone();
            automerge_doc.set_actor(store::actor(tx)?);
            let heads_before = automerge_doc.get_heads();
            let summary = format!("resolve conflict {}", path.join("/"));
            guarded(|| {
                conflicts::pick(&mut automerge_doc, path, value).map_err(|e| Error::Input(e.to_string()))?;
                automerge_doc.commit_with(CommitOptions::default().with_time(now).with_message(summary.as_str()));
                let after: HouseholdFile = doc::read(&automerge_doc)?;
                conflicts::check_edit_or_pick(
                    &before_doc,
                    Some(&before.to_any()),
                    &automerge_doc,
                    &after.to_any(),
                    &principal,
                )?;
                crate::writes::persist(tx, self, id, &mut automerge_doc, &heads_before, &summary, now)
            })
        });
        quarantine::on_damage(&self.db(), HouseholdFile::WHAT, id, outcome)
    }
}
