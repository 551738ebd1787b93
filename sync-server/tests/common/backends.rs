//! The two store backends behind one test interface, so a store story is written once and run
//! against each (`stories!` instantiates it per backend): SQLite in a temporary data
//! directory, PostgreSQL in a database of its own in a throwaway cluster shared by the tests
//! of the binary (`store::postgres::cluster`).
#![allow(dead_code)]

use std::collections::HashMap;

use gridlink_shared::demo::DemoSize;
use gridlink_shared::figures::Facts;
use gridlink_shared::time::Millis;
use gridlink_shared::{
    CaseFile, CaseId, DeviceId, DocId, GridId, HouseholdFile, HouseholdId, Role, Roster, Scope, UserId,
};
use gridlink_sync_server::store::postgres::cluster::TestDatabase;
use gridlink_sync_server::store::{
    AuditEntry, AuditFilter, CheckReport, ImportError, ImportSummary, PgStore, RosterReport, SecurityEvent,
};
use gridlink_sync_server::{SqliteStore, Store, StoreError};

/// What a store story needs of a backend beyond [`Store`]: where it lives, opening it again
/// (a restart, or a second process), the demo, the admin calls the stories make (users,
/// codes, scopes, the roster import and report, the audit, recovery keys, compaction, check),
/// how the CLI names it, and two inspections of the logs.
pub trait Backend: Store + Sized {
    /// The store's home; dropping it removes the data.
    type Place: Send + Sync + 'static;
    const NAME: &'static str;
    fn fresh() -> (Self::Place, Self);
    fn open(place: &Self::Place) -> Self;
    fn load_demo(&self, size: DemoSize, seed: u64, now: Millis);
    fn add_user(&self, name: &str, role: Role, scopes: &[Scope], now: Millis) -> Result<(UserId, String), StoreError>;
    fn new_code(&self, user: UserId, now: Millis, hours: i64) -> Result<String, StoreError>;
    fn set_scopes(&self, user: UserId, scopes: &[Scope]) -> Result<(), StoreError>;
    fn revoke_user_devices(&self, user: UserId, now: Millis) -> Result<usize, StoreError>;
    /// `--data DIR` or `--database URL`: where a `gridlink-server` command finds this store.
    fn cli_args(place: &Self::Place) -> [String; 2];
    fn import_csv_from(&self, input: &[u8], now: Millis) -> Result<ImportSummary, ImportError>;
    fn roster(&self) -> Result<Roster, StoreError>;
    fn roster_report(&self) -> Result<RosterReport, StoreError>;
    fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;
    fn record_security(&self, event: &SecurityEvent, now: Millis) -> Result<(), StoreError>;
    fn recovery_key(&self, device: DeviceId) -> Result<(UserId, Option<String>), StoreError>;
    fn compact(&self, keep: u64) -> Result<(usize, usize), StoreError>;
    /// Entries in a scope's log (test inspection).
    fn log_len(&self, scope: Scope) -> u64;
    /// A scope's compaction point, 0 when it has none (test inspection).
    fn scope_floor(&self, scope: Scope) -> u64;
    fn check(&self, repair: bool, now: Millis) -> Result<CheckReport, StoreError>;
    /// The server's stored bytes of a document (test inspection).
    fn doc_bytes(&self, id: DocId) -> Option<Vec<u8>>;
    /// Rows of the quarantine table with this hash (test inspection).
    fn quarantined(&self, hash: &str) -> u64;
    /// Writes what an old server stored for an accepted change that it should have refused:
    /// the change row, its log entries in every scope of the document, and the document with
    /// the change's bytes appended (a saved document followed by a change chunk loads as the
    /// two merged). Test damage, written behind the store's back.
    fn store_poison(&self, id: DocId, poison: &[u8], hash: &str, actor: &str);
    /// Runs one statement that reads the same in both dialects, behind the store's back
    /// (test damage).
    fn exec(&self, sql: &str);
    /// Rows in a table (test inspection).
    fn count_rows(&self, table: &str) -> i64;
    fn facts(&self, scopes: &[Scope]) -> Facts;
    fn facts_changed_since(&self, scopes: &[Scope], generation: u64) -> Facts;
    fn facts_generation(&self) -> u64;
    fn case_file(&self, id: CaseId) -> Option<CaseFile>;
    fn household_file(&self, id: HouseholdId) -> Option<HouseholdFile>;
    fn household_phones(&self, grids: &[GridId]) -> HashMap<HouseholdId, String>;
    fn grid_workers(&self, grid: GridId) -> Vec<(UserId, String)>;
    /// The console's household and case list rows, one line each (all columns but
    /// `updated_at`), sorted (test inspection).
    fn list_rows(&self) -> Vec<String>;
}

/// [`Backend::list_rows`]' query, the same in both dialects.
const LIST_ROWS: &str = "SELECT 'household|' || id || '|' || grid || '|' || COALESCE(building, '-') || '|' || address
        || '|' || head || '|' || phone || '|' || status || '|' || tags || '|' || needs || '|' || CAST(residents AS TEXT)
        || '|' || CAST(visits AS TEXT) || '|' || COALESCE(CAST(last_visit_at AS TEXT), '-') FROM household_rows
    UNION ALL
    SELECT 'case|' || id || '|' || grid || '|' || COALESCE(building, '-') || '|' || COALESCE(household, '-') || '|'
        || kind || '|' || title || '|' || status || '|' || reporter || '|' || responsible || '|' || responsible_name
        || '|' || CAST(reported_at AS TEXT) FROM case_rows";

/// The supervisors' reads, the same on each backend.
macro_rules! facts_reads {
    () => {
        fn facts(&self, scopes: &[Scope]) -> Facts {
            Self::facts(self, scopes).unwrap()
        }
        fn facts_changed_since(&self, scopes: &[Scope], generation: u64) -> Facts {
            Self::facts_changed_since(self, scopes, generation).unwrap()
        }
        fn facts_generation(&self) -> u64 {
            Self::facts_generation(self).unwrap()
        }
        fn case_file(&self, id: CaseId) -> Option<CaseFile> {
            Self::case_file(self, id).unwrap()
        }
        fn household_file(&self, id: HouseholdId) -> Option<HouseholdFile> {
            Self::household_file(self, id).unwrap()
        }
        fn household_phones(&self, grids: &[GridId]) -> HashMap<HouseholdId, String> {
            Self::household_phones(self, grids).unwrap()
        }
        fn grid_workers(&self, grid: GridId) -> Vec<(UserId, String)> {
            Self::grid_workers(self, grid).unwrap()
        }
    };
}

impl Backend for SqliteStore {
    type Place = tempfile::TempDir;
    const NAME: &'static str = "sqlite";
    fn fresh() -> (Self::Place, Self) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::create(dir.path()).unwrap();
        (dir, store)
    }
    fn open(place: &Self::Place) -> Self {
        SqliteStore::open(place.path()).unwrap()
    }
    fn load_demo(&self, size: DemoSize, seed: u64, now: Millis) {
        SqliteStore::load_demo(self, size, seed, now).unwrap();
    }
    fn add_user(&self, name: &str, role: Role, scopes: &[Scope], now: Millis) -> Result<(UserId, String), StoreError> {
        SqliteStore::add_user(self, name, role, scopes, "", now, 72)
    }
    fn new_code(&self, user: UserId, now: Millis, hours: i64) -> Result<String, StoreError> {
        SqliteStore::new_code(self, user, now, hours)
    }
    fn set_scopes(&self, user: UserId, scopes: &[Scope]) -> Result<(), StoreError> {
        SqliteStore::set_scopes(self, user, scopes)
    }
    fn revoke_user_devices(&self, user: UserId, now: Millis) -> Result<usize, StoreError> {
        SqliteStore::revoke_user_devices(self, user, now)
    }
    fn cli_args(place: &Self::Place) -> [String; 2] {
        ["--data".into(), place.path().display().to_string()]
    }
    fn import_csv_from(&self, input: &[u8], now: Millis) -> Result<ImportSummary, ImportError> {
        SqliteStore::import_csv_from(self, input, now)
    }
    fn roster(&self) -> Result<Roster, StoreError> {
        SqliteStore::roster(self)
    }
    fn roster_report(&self) -> Result<RosterReport, StoreError> {
        SqliteStore::roster_report(self)
    }
    fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        SqliteStore::audit_log(self, filter)
    }
    fn record_security(&self, event: &SecurityEvent, now: Millis) -> Result<(), StoreError> {
        SqliteStore::record_security(self, event, now)
    }
    fn recovery_key(&self, device: DeviceId) -> Result<(UserId, Option<String>), StoreError> {
        SqliteStore::recovery_key(self, device)
    }
    fn compact(&self, keep: u64) -> Result<(usize, usize), StoreError> {
        SqliteStore::compact(self, keep)
    }
    fn log_len(&self, scope: Scope) -> u64 {
        self.read(|c| {
            Ok(c.query_row("SELECT COUNT(*) FROM scope_log WHERE scope = ?1", [scope.to_string()], |r| r.get(0))?)
        })
        .unwrap()
    }
    fn scope_floor(&self, scope: Scope) -> u64 {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COALESCE((SELECT floor FROM scope_floor WHERE scope = ?1), 0)",
                [scope.to_string()],
                |r| r.get(0),
            )?)
        })
        .unwrap()
    }
    fn check(&self, repair: bool, now: Millis) -> Result<CheckReport, StoreError> {
        SqliteStore::check(self, repair, now, &mut |_, _| {})
    }
    fn doc_bytes(&self, id: DocId) -> Option<Vec<u8>> {
        self.read(|c| {
            use rusqlite::OptionalExtension;
            Ok(c.query_row("SELECT bytes FROM docs WHERE id = ?1", [id.to_string()], |r| r.get(0)).optional()?)
        })
        .unwrap()
    }
    fn quarantined(&self, hash: &str) -> u64 {
        self.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM quarantine WHERE hash = ?1", [hash], |r| r.get(0))?))
            .unwrap()
    }
    fn exec(&self, sql: &str) {
        self.read(|c| Ok(c.execute(sql, [])?)).unwrap();
    }
    fn count_rows(&self, table: &str) -> i64 {
        self.read(|c| Ok(c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)).unwrap()
    }
    facts_reads!();
    fn list_rows(&self) -> Vec<String> {
        let mut rows: Vec<String> =
            self.read(|c| Ok(c.prepare(LIST_ROWS)?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?)).unwrap();
        rows.sort();
        rows
    }
    fn store_poison(&self, id: DocId, poison: &[u8], hash: &str, actor: &str) {
        let saved = self.doc_bytes(id).unwrap();
        self.read(|conn| {
            conn.execute(
                "INSERT INTO changes (hash, doc_id, bytes, actor, accepted_at) VALUES (?1, ?2, ?3, ?4, 1)",
                rusqlite::params![hash, id.to_string(), poison, actor],
            )?;
            conn.execute(
                "INSERT INTO scope_log (scope, seq, change_hash, doc_id)
                 SELECT s.scope, (SELECT COALESCE(MAX(seq), 0) + 1 FROM scope_log l WHERE l.scope = s.scope), ?1, ?2
                 FROM doc_scopes s WHERE s.doc_id = ?2",
                rusqlite::params![hash, id.to_string()],
            )?;
            let poisoned = [saved, poison.to_vec()].concat();
            conn.execute("UPDATE docs SET bytes = ?1 WHERE id = ?2", rusqlite::params![poisoned, id.to_string()])?;
            Ok(())
        })
        .unwrap();
    }
}

impl Backend for PgStore {
    type Place = TestDatabase;
    const NAME: &'static str = "postgres";
    fn fresh() -> (Self::Place, Self) {
        let db = TestDatabase::new().unwrap_or_else(|e| panic!("a throwaway PostgreSQL cluster: {e}"));
        let store = PgStore::open(&db.url).unwrap();
        (db, store)
    }
    fn open(place: &Self::Place) -> Self {
        PgStore::open(&place.url).unwrap()
    }
    fn load_demo(&self, size: DemoSize, seed: u64, now: Millis) {
        PgStore::load_demo(self, size, seed, now).unwrap();
    }
    fn add_user(&self, name: &str, role: Role, scopes: &[Scope], now: Millis) -> Result<(UserId, String), StoreError> {
        PgStore::add_user(self, name, role, scopes, "", now, 72)
    }
    fn new_code(&self, user: UserId, now: Millis, hours: i64) -> Result<String, StoreError> {
        PgStore::new_code(self, user, now, hours)
    }
    fn set_scopes(&self, user: UserId, scopes: &[Scope]) -> Result<(), StoreError> {
        PgStore::set_scopes(self, user, scopes)
    }
    fn revoke_user_devices(&self, user: UserId, now: Millis) -> Result<usize, StoreError> {
        PgStore::revoke_user_devices(self, user, now)
    }
    fn cli_args(place: &Self::Place) -> [String; 2] {
        ["--database".into(), place.url.clone()]
    }
    fn import_csv_from(&self, input: &[u8], now: Millis) -> Result<ImportSummary, ImportError> {
        PgStore::import_csv_from(self, input, now)
    }
    fn roster(&self) -> Result<Roster, StoreError> {
        PgStore::roster(self)
    }
    fn roster_report(&self) -> Result<RosterReport, StoreError> {
        PgStore::roster_report(self)
    }
    fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        PgStore::audit_log(self, filter)
    }
    fn record_security(&self, event: &SecurityEvent, now: Millis) -> Result<(), StoreError> {
        PgStore::record_security(self, event, now)
    }
    fn recovery_key(&self, device: DeviceId) -> Result<(UserId, Option<String>), StoreError> {
        PgStore::recovery_key(self, device)
    }
    fn compact(&self, keep: u64) -> Result<(usize, usize), StoreError> {
        PgStore::compact(self, keep)
    }
    fn log_len(&self, scope: Scope) -> u64 {
        self.read(|c| {
            Ok(c.query_one("SELECT COUNT(*) FROM scope_log WHERE scope = $1", &[&scope.to_string()])?.get::<_, i64>(0))
        })
        .unwrap() as u64
    }
    fn scope_floor(&self, scope: Scope) -> u64 {
        self.read(|c| {
            Ok(c.query_one(
                "SELECT COALESCE((SELECT floor FROM scope_floor WHERE scope = $1), 0)",
                &[&scope.to_string()],
            )?
            .get::<_, i64>(0))
        })
        .unwrap() as u64
    }
    fn check(&self, repair: bool, now: Millis) -> Result<CheckReport, StoreError> {
        PgStore::check(self, repair, now, &mut |_, _| {})
    }
    fn doc_bytes(&self, id: DocId) -> Option<Vec<u8>> {
        self.read(|c| Ok(c.query_opt("SELECT bytes FROM docs WHERE id = $1", &[&id.to_string()])?.map(|r| r.get(0))))
            .unwrap()
    }
    fn quarantined(&self, hash: &str) -> u64 {
        self.read(|c| Ok(c.query_one("SELECT COUNT(*) FROM quarantine WHERE hash = $1", &[&hash])?.get::<_, i64>(0)))
            .unwrap() as u64
    }
    fn exec(&self, sql: &str) {
        self.read(|c| Ok(c.execute(sql, &[])?)).unwrap();
    }
    fn count_rows(&self, table: &str) -> i64 {
        self.read(|c| Ok(c.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])?.get(0))).unwrap()
    }
    facts_reads!();
    fn list_rows(&self) -> Vec<String> {
        let mut rows: Vec<String> =
            self.read(|c| Ok(c.query(LIST_ROWS, &[])?.iter().map(|r| r.get(0)).collect())).unwrap();
        rows.sort();
        rows
    }
    fn store_poison(&self, id: DocId, poison: &[u8], hash: &str, actor: &str) {
        let saved = self.doc_bytes(id).unwrap();
        self.read(|c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "INSERT INTO changes (hash, doc_id, bytes, actor, accepted_at) VALUES ($1, $2, $3, $4, 1)",
                &[&hash, &id.to_string(), &poison, &actor],
            )?;
            // Numbered as PostgreSQL numbers: the scope's counter moves with its log.
            tx.execute(
                "WITH numbered AS (
                    UPDATE scope_heads h SET head = h.head + 1 FROM doc_scopes s
                    WHERE s.doc_id = $2 AND h.scope = s.scope RETURNING h.scope, h.head)
                 INSERT INTO scope_log (scope, seq, change_hash, doc_id) SELECT scope, head, $1, $2 FROM numbered",
                &[&hash, &id.to_string()],
            )?;
            let poisoned = [saved, poison.to_vec()].concat();
            tx.execute("UPDATE docs SET bytes = $1 WHERE id = $2", &[&poisoned, &id.to_string()])?;
            tx.commit()?;
            Ok(())
        })
        .unwrap();
    }
}

/// Instantiates each generic story `fn name<B: Backend>()` once per backend, as
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! stories {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name::<gridlink_sync_server::SqliteStore>() })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name::<gridlink_sync_server::store::PgStore>() })*
        }
    };
}
