//! Either store, borrowed: [`AnyStore`] answers the admin and console calls that both backends
//! implement with the same signature, so the web console's pages, the ledger exports and the
//! admin CLI call one function whichever database is behind them. Each method only dispatches;
//! what is shared between the backends lives in the modules the methods come from.

use std::collections::HashMap;

use gridlink_shared::time::Millis;
use gridlink_shared::{
    CaseFile, CaseId, DeviceId, GridId, HouseholdFile, HouseholdId, Placement, Role, Roster, Scope, UserId,
};

use super::{
    ActOutcome, CaseAct, DeviceRow, ImportError, ImportSummary, PgStore, SecurityEvent, SqliteStore, StoreError,
    UserRow,
};
use gridlink_shared::figures::Facts;

/// One of the two stores.
#[derive(Clone, Copy)]
pub enum AnyStore<'a> {
    /// Embedded SQLite (`--data DIR`).
    Sqlite(&'a SqliteStore),
    /// PostgreSQL (`--database URL`).
    Postgres(&'a PgStore),
}

impl std::fmt::Debug for AnyStore<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AnyStore::Sqlite(_) => "AnyStore::Sqlite",
            AnyStore::Postgres(_) => "AnyStore::Postgres",
        })
    }
}

impl<'a> From<&'a SqliteStore> for AnyStore<'a> {
    fn from(store: &'a SqliteStore) -> Self {
        AnyStore::Sqlite(store)
    }
}

impl<'a> From<&'a PgStore> for AnyStore<'a> {
    fn from(store: &'a PgStore) -> Self {
        AnyStore::Postgres(store)
    }
}

/// Calls the same-named method of whichever store it is.
macro_rules! dispatch {
    ($store:expr, $method:ident($($arg:expr),*)) => {
        match $store {
            AnyStore::Sqlite(store) => store.$method($($arg),*),
            AnyStore::Postgres(store) => store.$method($($arg),*),
        }
    };
}

impl AnyStore<'_> {
    pub fn roster(&self) -> Result<Roster, StoreError> {
        dispatch!(self, roster())
    }

    pub fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        dispatch!(self, list_users())
    }

    pub fn list_devices(&self) -> Result<Vec<DeviceRow>, StoreError> {
        dispatch!(self, list_devices())
    }

    pub fn add_user(
        &self,
        name: &str,
        role: Role,
        scopes: &[Scope],
        phone: &str,
        now: Millis,
        code_hours: i64,
    ) -> Result<(UserId, String), StoreError> {
        dispatch!(self, add_user(name, role, scopes, phone, now, code_hours))
    }

    pub fn new_code(&self, user: UserId, now: Millis, code_hours: i64) -> Result<String, StoreError> {
        dispatch!(self, new_code(user, now, code_hours))
    }

    pub fn set_scopes(&self, user: UserId, scopes: &[Scope]) -> Result<(), StoreError> {
        dispatch!(self, set_scopes(user, scopes))
    }

    pub fn revoke_device(&self, device: DeviceId, now: Millis) -> Result<(), StoreError> {
        dispatch!(self, revoke_device(device, now))
    }

    pub fn revoke_user_devices(&self, user: UserId, now: Millis) -> Result<usize, StoreError> {
        dispatch!(self, revoke_user_devices(user, now))
    }

    pub fn device_user(&self, device: DeviceId) -> Result<UserId, StoreError> {
        dispatch!(self, device_user(device))
    }

    pub fn record_security(&self, event: &SecurityEvent, now: Millis) -> Result<(), StoreError> {
        dispatch!(self, record_security(event, now))
    }

    pub fn import_csv_from(&self, input: impl std::io::Read, now: Millis) -> Result<ImportSummary, ImportError> {
        dispatch!(self, import_csv_from(input, now))
    }

    pub fn facts_generation(&self) -> Result<u64, StoreError> {
        dispatch!(self, facts_generation())
    }

    pub fn facts(&self, scopes: &[Scope]) -> Result<Facts, StoreError> {
        dispatch!(self, facts(scopes))
    }

    pub fn facts_changed_since(&self, scopes: &[Scope], generation: u64) -> Result<Facts, StoreError> {
        dispatch!(self, facts_changed_since(scopes, generation))
    }

    pub fn case_file(&self, id: CaseId) -> Result<Option<CaseFile>, StoreError> {
        dispatch!(self, case_file(id))
    }

    pub fn household_file(&self, id: HouseholdId) -> Result<Option<HouseholdFile>, StoreError> {
        dispatch!(self, household_file(id))
    }

    pub fn household_phones(&self, grids: &[GridId]) -> Result<HashMap<HouseholdId, String>, StoreError> {
        dispatch!(self, household_phones(grids))
    }

    pub fn grid_workers(&self, grid: GridId) -> Result<Vec<(UserId, String)>, StoreError> {
        dispatch!(self, grid_workers(grid))
    }

    pub fn console_case_action(
        &self,
        user: UserId,
        case: CaseId,
        act: &CaseAct,
        now: Millis,
    ) -> Result<ActOutcome, StoreError> {
        dispatch!(self, console_case_action(user, case, act, now))
    }

    /// Every stored document of `doc_type` with its placement, in id order (the console reads
    /// the activity records this way; they have no query rows).
    pub fn docs_of_type(&self, doc_type: &str) -> Result<Vec<(Placement, Vec<u8>)>, StoreError> {
        dispatch!(self, docs_of_type(doc_type))
    }
}
