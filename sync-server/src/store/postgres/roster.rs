//! The roster on PostgreSQL: writing a whole roster, staff, scope checks, the reference-data
//! version, reading it back, and this backend's reads and writes for the backend-neutral CSV
//! import ([`PgImport`] behind `store/roster/import.rs`) and roster report (its
//! [`DocCounts`], `store/roster/report.rs`). Same tables and text encodings as the SQLite
//! roster (`store/roster/`), so `migrate` can copy rows as they are.

use std::path::Path;

use gridlink_shared::time::Millis;
use gridlink_shared::{
    AnyDoc, Building, Community, DocId, Grid, Outlet, PartyBranch, PartyGroup, PartyMember, Roster, Scope, Staff,
    Street, Volunteer,
};
use postgres::{GenericClient, IsolationLevel};

use super::PgStore;
use super::push::{PgPush, write_doc};
use crate::store::roster::{DocCounts, ImportTarget, NewDoc, build_report, import, open_file};
use crate::store::sqlite::{parse_code, parse_id, scopes_json};
use crate::store::{ImportError, ImportSummary, RosterReport, StoreError};

/// Key of the advisory lock an import holds to its commit: imports plan against the roster
/// they read, so two at once (two admins, two processes) run one after the other, as SQLite's
/// single writer makes them.
const IMPORT_LOCK: i64 = 0x6772_6964_726f_7374; // "gridrost"

/// The PostgreSQL side of the import, on its transaction: changes, log entries and documents
/// go through the push executor's own writes ([`PgPush`]) and take its locks in its order
/// (documents, then log counters, then digest rows), so an import beside pushes cannot
/// deadlock with them.
struct PgImport<'a, 'b> {
    push: PgPush<'a, 'b>,
}

impl ImportTarget for PgImport<'_, '_> {
    fn stored_roster(&mut self) -> Result<Roster, StoreError> {
        load_roster(self.push.tx())
    }

    fn write_roster(&mut self, roster: &Roster, now: Millis) -> Result<(), StoreError> {
        insert_roster(self.push.tx(), roster, now)
    }

    fn lock_docs(&mut self, ids: &[DocId]) -> Result<(), StoreError> {
        self.push.lock_documents(ids.iter().copied())
    }

    fn has_doc(&mut self, id: DocId) -> Result<bool, StoreError> {
        Ok(self.push.tx().query_opt("SELECT 1 FROM docs WHERE id = $1", &[&id.to_string()])?.is_some())
    }

    fn store_change(&mut self, new: &NewDoc<'_>, now: Millis) -> Result<(), StoreError> {
        let id = new.any.doc_id();
        self.push.insert_change(new.hash, id, new.change, new.actor, now)?;
        for scope in new.any.scopes() {
            self.push.queue_log_entry(scope, new.hash, id);
        }
        Ok(())
    }

    fn finish_changes(&mut self) -> Result<(), StoreError> {
        self.push.number_queued_entries()
    }

    fn write_doc(&mut self, any: &AnyDoc, saved: &[u8], now: Millis) -> Result<(), StoreError> {
        write_doc(self.push.tx(), any, saved, now)
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        bump_reference_version(self.push.tx())
    }
}

impl PgStore {
    /// Imports a roster CSV, as [`crate::store::SqliteStore::import_csv`] does.
    pub fn import_csv(&self, path: &Path, now: Millis) -> Result<ImportSummary, ImportError> {
        self.import_csv_from(open_file(path)?, now)
    }

    /// [`Self::import_csv`] from any reader: one transaction, committed only if the whole
    /// file is clean.
    pub fn import_csv_from(&self, input: impl std::io::Read, now: Millis) -> Result<ImportSummary, ImportError> {
        let actor = self.import_actor()?;
        let mut client = self.client()?;
        let outcome = (|| {
            let mut tx = client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&IMPORT_LOCK])?;
            let outcome = import(&mut PgImport { push: PgPush::new(&mut tx) }, input, &actor, now)?;
            if outcome.is_ok() {
                tx.commit()?;
            }
            Ok::<_, StoreError>(outcome)
        })()?;
        outcome.map_err(ImportError::Rows)
    }

    /// The whole roster as stored.
    pub fn roster(&self) -> Result<Roster, StoreError> {
        load_roster(&mut *self.client()?)
    }

    /// `roster --json`: the same report as SQLite's, from one consistent snapshot.
    pub fn roster_report(&self) -> Result<RosterReport, StoreError> {
        let mut client = self.client()?;
        let mut tx =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
        let roster = load_roster(&mut tx)?;
        let version = reference_version(&mut tx)?;
        let counts = doc_counts(&mut tx)?;
        tx.commit()?;
        Ok(build_report(&roster, version, &counts))
    }
}

/// The report's counts, from the query rows as on SQLite.
fn doc_counts(client: &mut impl GenericClient) -> Result<DocCounts, StoreError> {
    DocCounts::from_rows(|sql| {
        Ok(client.query(sql, &[])?.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64)).collect())
    })
}

pub(super) fn reference_version(client: &mut impl GenericClient) -> Result<u64, StoreError> {
    let raw: String = client.query_one("SELECT value FROM meta WHERE key = 'reference_version'", &[])?.get(0);
    raw.parse().map_err(|_| StoreError::Backend(format!("reference_version '{raw}' is not a number")))
}

/// Marks the reference data changed, so every device receives it at its next sync.
pub(super) fn bump_reference_version(client: &mut impl GenericClient) -> Result<(), StoreError> {
    client.execute("UPDATE meta SET value = (CAST(value AS BIGINT) + 1)::TEXT WHERE key = 'reference_version'", &[])?;
    Ok(())
}

/// Refuses scopes that name no street, community, grid or building of the roster.
pub(super) fn check_scopes_exist(client: &mut impl GenericClient, scopes: &[Scope]) -> Result<(), StoreError> {
    for scope in scopes {
        let (table, id) = match scope {
            Scope::Street(id) => ("streets", id.to_string()),
            Scope::Community(id) => ("communities", id.to_string()),
            Scope::Grid(id) => ("grids", id.to_string()),
            Scope::Building(id) => ("buildings", id.to_string()),
        };
        if client.query_opt(&format!("SELECT 1 FROM {table} WHERE id = $1"), &[&id])?.is_none() {
            return Err(StoreError::Invalid(format!(
                "scope {scope}: no such {} on the roster",
                &table[..table.len() - 1]
            )));
        }
    }
    Ok(())
}

pub(super) fn insert_staff(client: &mut impl GenericClient, staff: &Staff, now: Millis) -> Result<(), StoreError> {
    client.execute(
        "INSERT INTO users (id, name, role, phone, pledge, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, phone = excluded.phone,
            pledge = excluded.pledge, scopes = excluded.scopes",
        &[
            &staff.id.to_string(),
            &staff.name,
            &staff.role.code(),
            &staff.phone,
            &staff.pledge,
            &scopes_json(&staff.scopes)?,
            &now,
        ],
    )?;
    Ok(())
}

/// Writes a whole roster (demo data), parents first.
pub(super) fn insert_roster(client: &mut impl GenericClient, roster: &Roster, now: Millis) -> Result<(), StoreError> {
    for Street { id, name } in &roster.streets {
        client.execute(
            "INSERT INTO streets (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
            &[&id.to_string(), name],
        )?;
    }
    for Community { id, street, name } in &roster.communities {
        client.execute(
            "INSERT INTO communities (id, street, name) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET street = excluded.street, name = excluded.name",
            &[&id.to_string(), &street.to_string(), name],
        )?;
    }
    for Grid { id, community, name } in &roster.grids {
        client.execute(
            "INSERT INTO grids (id, community, name) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET community = excluded.community, name = excluded.name",
            &[&id.to_string(), &community.to_string(), name],
        )?;
    }
    for b in &roster.buildings {
        client.execute(
            "INSERT INTO buildings (id, grid, name, units, floors, rooms_per_floor) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET grid = excluded.grid, name = excluded.name, units = excluded.units,
                floors = excluded.floors, rooms_per_floor = excluded.rooms_per_floor",
            &[
                &b.id.to_string(),
                &b.grid.to_string(),
                &b.name,
                &i32::from(b.units),
                &i32::from(b.floors),
                &i32::from(b.rooms_per_floor),
            ],
        )?;
    }
    for o in &roster.outlets {
        client.execute(
            "INSERT INTO outlets (id, community, category, name, phone, address, hours) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET community = excluded.community, category = excluded.category,
                name = excluded.name, phone = excluded.phone, address = excluded.address, hours = excluded.hours",
            &[&o.id.to_string(), &o.community.to_string(), &o.category.code(), &o.name, &o.phone, &o.address, &o.hours],
        )?;
    }
    for b in &roster.party_branches {
        client.execute(
            "INSERT INTO party_branches (id, grid, name, phone) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET grid = excluded.grid, name = excluded.name, phone = excluded.phone",
            &[&b.id.to_string(), &b.grid.to_string(), &b.name, &b.phone],
        )?;
    }
    for g in &roster.party_groups {
        client.execute(
            "INSERT INTO party_groups (id, branch, building, name) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET branch = excluded.branch, building = excluded.building, name = excluded.name",
            &[&g.id.to_string(), &g.branch.to_string(), &g.building.to_string(), &g.name],
        )?;
    }
    for m in &roster.party_members {
        client.execute(
            "INSERT INTO party_members (id, branch, building, name, phone, reported_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET branch = excluded.branch, building = excluded.building,
                name = excluded.name, phone = excluded.phone, reported_at = excluded.reported_at",
            &[
                &m.id.to_string(),
                &m.branch.to_string(),
                &m.building.map(|b| b.to_string()),
                &m.name,
                &m.phone,
                &m.reported_at.to_string(),
            ],
        )?;
    }
    for v in &roster.volunteers {
        client.execute(
            "INSERT INTO volunteers (id, community, name, phone, skills) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET community = excluded.community, name = excluded.name,
                phone = excluded.phone, skills = excluded.skills",
            &[&v.id.to_string(), &v.community.to_string(), &v.name, &v.phone, &serde_json::to_string(&v.skills)?],
        )?;
    }
    roster.staff.iter().try_for_each(|s| insert_staff(client, s, now))
}

/// The whole roster as stored, in SQLite's order (byte order of names, then ids).
pub(super) fn load_roster(client: &mut impl GenericClient) -> Result<Roster, StoreError> {
    fn rows<T>(
        client: &mut impl GenericClient,
        sql: &str,
        f: impl Fn(&postgres::Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        client.query(sql, &[])?.iter().map(f).collect()
    }
    let id = |r: &postgres::Row, i: usize| r.get::<_, String>(i);
    Ok(Roster {
        streets: rows(client, r#"SELECT id, name FROM streets ORDER BY name COLLATE "C", id COLLATE "C""#, |r| {
            Ok(Street { id: parse_id(&id(r, 0))?, name: r.get(1) })
        })?,
        communities: rows(
            client,
            r#"SELECT id, street, name FROM communities ORDER BY name COLLATE "C", id COLLATE "C""#,
            |r| Ok(Community { id: parse_id(&id(r, 0))?, street: parse_id(&id(r, 1))?, name: r.get(2) }),
        )?,
        grids: rows(
            client,
            r#"SELECT id, community, name FROM grids ORDER BY name COLLATE "C", id COLLATE "C""#,
            |r| Ok(Grid { id: parse_id(&id(r, 0))?, community: parse_id(&id(r, 1))?, name: r.get(2) }),
        )?,
        buildings: rows(
            client,
            r#"SELECT id, grid, name, units, floors, rooms_per_floor FROM buildings ORDER BY name COLLATE "C", id COLLATE "C""#,
            |r| {
                let small = |i: usize| {
                    u16::try_from(r.get::<_, i32>(i))
                        .map_err(|_| StoreError::Backend("building size out of range".into()))
                };
                Ok(Building {
                    id: parse_id(&id(r, 0))?,
                    grid: parse_id(&id(r, 1))?,
                    name: r.get(2),
                    units: small(3)?,
                    floors: small(4)?,
                    rooms_per_floor: small(5)?,
                })
            },
        )?,
        staff: rows(
            client,
            r#"SELECT id, name, role, phone, pledge, scopes FROM users ORDER BY name COLLATE "C", id COLLATE "C""#,
            |r| {
                Ok(Staff {
                    id: parse_id(&id(r, 0))?,
                    name: r.get(1),
                    role: parse_code(r.get::<_, &str>(2))?,
                    phone: r.get(3),
                    pledge: r.get(4),
                    scopes: serde_json::from_str(r.get::<_, &str>(5))?,
                })
            },
        )?,
        outlets: rows(
            client,
            r#"SELECT id, community, category, name, phone, address, hours FROM outlets ORDER BY name COLLATE "C", id COLLATE "C""#,
            |r| {
                Ok(Outlet {
                    id: parse_id(&id(r, 0))?,
                    community: parse_id(&id(r, 1))?,
                    category: parse_code(r.get::<_, &str>(2))?,
                    name: r.get(3),
                    phone: r.get(4),
                    address: r.get(5),
                    hours: r.get(6),
                })
            },
        )?,
        party_branches: rows(
            client,
            r#"SELECT id, grid, name, phone FROM party_branches ORDER BY name COLLATE "C", id COLLATE "C""#,
            |r| {
                Ok(PartyBranch {
                    id: parse_id(&id(r, 0))?,
                    grid: parse_id(&id(r, 1))?,
                    name: r.get(2),
                    phone: r.get(3),
                })
            },
        )?,
        party_groups: rows(
            client,
            r#"SELECT id, branch, building, name FROM party_groups ORDER BY name COLLATE "C", id COLLATE "C""#,
            |r| {
                Ok(PartyGroup {
                    id: parse_id(&id(r, 0))?,
                    branch: parse_id(&id(r, 1))?,
                    building: parse_id(&id(r, 2))?,
                    name: r.get(3),
                })
            },
        )?,
        party_members: rows(
            client,
            r#"SELECT id, branch, building, name, phone, reported_at FROM party_members ORDER BY name COLLATE "C", id COLLATE "C""#,
            |r| {
                let reported: String = r.get(5);
                Ok(PartyMember {
                    id: parse_id(&id(r, 0))?,
                    branch: parse_id(&id(r, 1))?,
                    building: r.get::<_, Option<String>>(2).map(|b| parse_id(&b)).transpose()?,
                    name: r.get(3),
                    phone: r.get(4),
                    reported_at: reported.parse().map_err(|_| {
                        StoreError::Backend(format!("party member reported_at '{reported}' is not a date"))
                    })?,
                })
            },
        )?,
        volunteers: rows(
            client,
            r#"SELECT id, community, name, phone, skills FROM volunteers ORDER BY name COLLATE "C", id COLLATE "C""#,
            |r| {
                Ok(Volunteer {
                    id: parse_id(&id(r, 0))?,
                    community: parse_id(&id(r, 1))?,
                    name: r.get(2),
                    phone: r.get(3),
                    skills: serde_json::from_str(r.get::<_, &str>(4))?,
                })
            },
        )?,
    })
}
