//! The two store backends behind one test interface, so a store story is written once and run
//! against each (`stories!` instantiates it per backend): SQLite in a temporary data
//! directory, PostgreSQL in a database of its own in a throwaway cluster shared by the tests
//! of the binary (`store::postgres::cluster`).
#![allow(dead_code)]

use gridlink_shared::demo::DemoSize;
use gridlink_shared::time::Millis;
use gridlink_shared::{Role, Scope, UserId};
use gridlink_sync_server::store::PgStore;
use gridlink_sync_server::store::postgres::cluster::TestDatabase;
use gridlink_sync_server::{SqliteStore, Store, StoreError};

/// What a store story needs of a backend beyond [`Store`]: where it lives, opening it again
/// (a restart, or a second process), the demo, and the admin calls the stories make.
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
