//! The web console's own storage on both backends: the same stories of passwords, the login
//! throttle (waits, lock, unlock, unknown logins alike) and sessions (idle and lifetime expiry,
//! the cap of ten per user, logout, a changed role, malformed tokens) run against the SQLite
//! store (its `ConsoleStore`) and the PostgreSQL store (`store/postgres/console.rs`), each on
//! the small demo street. Also with two stores on one database, as two server processes: a
//! session started on one is valid on the other and ended there for both; attempts reserved
//! at once through both are counted one by one; sign-ins at once keep the cap. And `migrate`
//! carries passwords, the throttle and sessions from SQLite to PostgreSQL, and `user password
//! --database` sets a password there. Time is passed in, never slept.

#[path = "common/backends.rs"]
mod backends;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use backends::Backend;
use gridlink_shared::demo::{self, DemoSize};
use gridlink_shared::time::DAY_MS;
use gridlink_shared::time::Millis;
use gridlink_shared::{BuildingId, GridId, Placement, Role, Scope, Staff, UserId};
use gridlink_sync_server::console::ConsolePolicy;
use gridlink_sync_server::console::password;
use gridlink_sync_server::console::store::{
    ConsoleStore, CoveredArea, LoginAttempt, NewSession, SessionRecord, ThrottleKey,
};
use gridlink_sync_server::store::PgStore;
use gridlink_sync_server::{SqliteStore, StoreError};

const BIN: &str = env!("CARGO_BIN_EXE_gridlink-server");
const NOW: Millis = 1_795_000_000_000;
const SEED: u64 = 7;
/// 周建平, the street's supervisor in the demo, signs in with his office phone.
const SUPERVISOR_PHONE: &str = "0711-3201000";
const PASSWORD: &str = "凤凰街道督导2026";
const SECOND: Millis = 1000;
const MINUTE: Millis = 60 * SECOND;

/// The console's storage calls, answered by each backend: the trait on SQLite, the inherent
/// methods on PostgreSQL (the same signatures).
trait ConsoleBackend: Backend + Send + Sync + 'static {
    fn begin_login(&self, login: &str, now: Millis, policy: &ConsolePolicy) -> LoginAttempt;
    fn finish_login(&self, key: &ThrottleKey, right: bool, now: Millis, policy: &ConsolePolicy) -> Option<Millis>;
    fn create_session(&self, staff: &Staff, now: Millis, policy: &ConsolePolicy) -> NewSession;
    fn session(&self, token: &str, now: Millis, policy: &ConsolePolicy) -> Option<SessionRecord>;
    fn end_session(&self, token: &str);
    fn set_password(&self, staff: &Staff, password: &str, now: Millis) -> Result<usize, StoreError>;
    fn placement_of_grid(&self, grid: GridId) -> Option<Placement>;
    fn placement_of_building(&self, building: BuildingId) -> Option<Placement>;
    fn covered_area(&self, scopes: &[Scope]) -> CoveredArea;
    /// One number from one SQL statement that reads the same in both dialects (inspection).
    fn number(&self, sql: &str) -> i64;
}

impl ConsoleBackend for SqliteStore {
    fn begin_login(&self, login: &str, now: Millis, policy: &ConsolePolicy) -> LoginAttempt {
        ConsoleStore::begin_login(self, login, now, policy).unwrap()
    }
    fn finish_login(&self, key: &ThrottleKey, right: bool, now: Millis, policy: &ConsolePolicy) -> Option<Millis> {
        ConsoleStore::finish_login(self, key, right, now, policy).unwrap()
    }
    fn create_session(&self, staff: &Staff, now: Millis, policy: &ConsolePolicy) -> NewSession {
        ConsoleStore::create_session(self, staff.id, now, policy).unwrap()
    }
    fn session(&self, token: &str, now: Millis, policy: &ConsolePolicy) -> Option<SessionRecord> {
        ConsoleStore::session(self, token, now, policy).unwrap()
    }
    fn end_session(&self, token: &str) {
        ConsoleStore::end_session(self, token).unwrap()
    }
    fn set_password(&self, staff: &Staff, password: &str, now: Millis) -> Result<usize, StoreError> {
        self.set_console_password(staff.id, password, now).map(|set| set.sessions_ended)
    }
    fn placement_of_grid(&self, grid: GridId) -> Option<Placement> {
        ConsoleStore::placement_of_grid(self, grid).unwrap()
    }
    fn placement_of_building(&self, building: BuildingId) -> Option<Placement> {
        ConsoleStore::placement_of_building(self, building).unwrap()
    }
    fn covered_area(&self, scopes: &[Scope]) -> CoveredArea {
        ConsoleStore::covered_area(self, scopes).unwrap()
    }
    fn number(&self, sql: &str) -> i64 {
        self.read(|c| Ok(c.query_row(sql, [], |r| r.get(0))?)).unwrap()
    }
}

impl ConsoleBackend for PgStore {
    fn begin_login(&self, login: &str, now: Millis, policy: &ConsolePolicy) -> LoginAttempt {
        PgStore::begin_login(self, login, now, policy).unwrap()
    }
    fn finish_login(&self, key: &ThrottleKey, right: bool, now: Millis, policy: &ConsolePolicy) -> Option<Millis> {
        PgStore::finish_login(self, key, right, now, policy).unwrap()
    }
    fn create_session(&self, staff: &Staff, now: Millis, policy: &ConsolePolicy) -> NewSession {
        PgStore::create_session(self, staff.id, now, policy).unwrap()
    }
    fn session(&self, token: &str, now: Millis, policy: &ConsolePolicy) -> Option<SessionRecord> {
        PgStore::session(self, token, now, policy).unwrap()
    }
    fn end_session(&self, token: &str) {
        PgStore::end_session(self, token).unwrap()
    }
    fn set_password(&self, staff: &Staff, password: &str, now: Millis) -> Result<usize, StoreError> {
        self.set_console_password(staff.id, password, now).map(|set| set.sessions_ended)
    }
    fn placement_of_grid(&self, grid: GridId) -> Option<Placement> {
        PgStore::placement_of_grid(self, grid).unwrap()
    }
    fn placement_of_building(&self, building: BuildingId) -> Option<Placement> {
        PgStore::placement_of_building(self, building).unwrap()
    }
    fn covered_area(&self, scopes: &[Scope]) -> CoveredArea {
        PgStore::covered_area(self, scopes).unwrap()
    }
    fn number(&self, sql: &str) -> i64 {
        self.read(|c| Ok(c.query_one(sql, &[])?.get(0))).unwrap()
    }
}

/// The small demo street in a fresh store of backend `B`.
struct Street<B: Backend> {
    place: B::Place,
    store: B,
    data: demo::DemoData,
}

impl<B: ConsoleBackend> Street<B> {
    fn new() -> Self {
        let (place, store) = B::fresh();
        Backend::load_demo(&store, DemoSize::Small, SEED, NOW);
        Street { place, store, data: demo::generate(DemoSize::Small, SEED, NOW) }
    }

    fn staff(&self, name: &str) -> Staff {
        self.data
            .roster
            .staff
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} in the demo"))
            .clone()
    }

    fn zhou(&self) -> Staff {
        self.staff("周建平")
    }

    fn grid_worker(&self) -> Staff {
        self.data.roster.staff.iter().find(|s| s.role == Role::GridWorker).unwrap().clone()
    }

    fn failures(&self, staff: &Staff) -> i64 {
        self.store.number(&format!(
            "SELECT CAST(COALESCE((SELECT failures FROM console_throttle WHERE key = 'user:{}'), 0) AS BIGINT)",
            staff.id
        ))
    }

    fn sessions_of(&self, staff: &Staff) -> i64 {
        self.store.number(&format!("SELECT COUNT(*) FROM console_sessions WHERE user_id = '{}'", staff.id))
    }
}

/// An attempt the throttle refused (not counted), and until when.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    Wait(Millis),
    Locked(Millis),
}

impl From<LoginAttempt> for Refused {
    fn from(attempt: LoginAttempt) -> Self {
        match attempt {
            LoginAttempt::Wait { until } => Refused::Wait(until),
            LoginAttempt::Locked { until } => Refused::Locked(until),
            LoginAttempt::Check { .. } => panic!("a refusal expected: {attempt:?}"),
        }
    }
}

/// A wrong password, from reserving the attempt to recording it: the lock's end if it locked.
fn wrong<B: ConsoleBackend>(
    store: &B,
    login: &str,
    now: Millis,
    policy: &ConsolePolicy,
) -> Result<Option<Millis>, Refused> {
    match store.begin_login(login, now, policy) {
        LoginAttempt::Check { key, account } => {
            if let Some(hash) = account.and_then(|a| a.password_hash) {
                assert!(!password::verify("猜的密码123", &hash));
            }
            Ok(store.finish_login(&key, false, now, policy))
        }
        refused => Err(Refused::from(refused)),
    }
}

/// The right password, checked against the hash the store returned: the account signed in.
fn right<B: ConsoleBackend>(
    store: &B,
    login: &str,
    now: Millis,
    policy: &ConsolePolicy,
) -> Result<(UserId, Role), Refused> {
    match store.begin_login(login, now, policy) {
        LoginAttempt::Check { key, account: Some(account) } => {
            let hash = account.password_hash.expect("a password was set");
            assert!(password::verify(PASSWORD, &hash), "the stored hash verifies the password");
            assert_eq!(store.finish_login(&key, true, now, policy), None);
            Ok((account.user, account.role))
        }
        LoginAttempt::Check { account: None, .. } => panic!("{login} names an account"),
        refused => Err(Refused::from(refused)),
    }
}

fn right_and_wrong_passwords_by_phone_or_id<B: ConsoleBackend>() {
    let street = Street::<B>::new();
    let (store, zhou) = (&street.store, street.zhou());
    let policy = ConsolePolicy::default();
    // No password yet: the account is found, with nothing to check against.
    match store.begin_login(SUPERVISOR_PHONE, NOW, &policy) {
        LoginAttempt::Check { key, account: Some(account) } => {
            assert_eq!((account.user, account.role, account.password_hash), (zhou.id, Role::Supervisor, None));
            store.finish_login(&key, false, NOW, &policy);
        }
        other => panic!("{}: {other:?}", B::NAME),
    }
    assert_eq!(store.set_password(&zhou, PASSWORD, NOW).unwrap(), 0);
    assert_eq!(street.failures(&zhou), 0, "a new password lifts the count");
    assert!(matches!(store.set_password(&zhou, "短", NOW), Err(StoreError::Invalid(_))));
    let nobody = UserId::new();
    assert!(matches!(
        store.set_password(&Staff { id: nobody, ..zhou.clone() }, PASSWORD, NOW),
        Err(StoreError::NotFound(_))
    ));

    // By phone, however it is written, and by id in any case.
    for login in [SUPERVISOR_PHONE, " 0711 3201000 ", "+86 0711-3201000", &zhou.id.to_string().to_uppercase()] {
        let signed_in = right(store, login, NOW, &policy).unwrap_or_else(|r| panic!("{login}: {r:?}"));
        assert_eq!(signed_in, (zhou.id, Role::Supervisor), "{login}");
    }
    // A wrong password counts; the right one afterwards clears the count.
    assert_eq!(wrong(store, SUPERVISOR_PHONE, NOW, &policy), Ok(None));
    assert_eq!(wrong(store, SUPERVISOR_PHONE, NOW, &policy), Ok(None));
    assert_eq!(street.failures(&zhou), 2);
    right(store, SUPERVISOR_PHONE, NOW, &policy).unwrap();
    assert_eq!(street.failures(&zhou), 0);
    assert_eq!(store.number("SELECT COUNT(*) FROM console_passwords"), 1);
}

fn waits_double_then_the_login_locks_and_unlocks_after_lock_for<B: ConsoleBackend>() {
    let street = Street::<B>::new();
    let (store, zhou) = (&street.store, street.zhou());
    store.set_password(&zhou, PASSWORD, NOW).unwrap();
    let policy = ConsolePolicy {
        slow_after: 2,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(4),
        lock_after: 5,
        lock_for: Duration::from_secs(60),
        ..ConsolePolicy::default()
    };
    let t = NOW;
    assert_eq!(wrong(store, SUPERVISOR_PHONE, t, &policy), Ok(None));
    assert_eq!(wrong(store, SUPERVISOR_PHONE, t, &policy), Ok(None));
    // After the second wrong password each attempt waits: 1 s, then 2 s, then 4 s (the cap).
    assert!(
        matches!(store.begin_login(SUPERVISOR_PHONE, t, &policy), LoginAttempt::Wait { until } if until == t + SECOND)
    );
    let waits = [(t + SECOND, t + 3 * SECOND), (t + 3 * SECOND, t + 7 * SECOND)];
    for (at, until) in waits {
        let refused = wrong(store, SUPERVISOR_PHONE, at - 1, &policy);
        assert_eq!(refused, Err(Refused::Wait(at)), "{}", B::NAME);
        // Even the right password waits, and the refusal is not counted.
        assert!(matches!(right(store, SUPERVISOR_PHONE, at - 1, &policy), Err(Refused::Wait(_))));
        assert_eq!(wrong(store, SUPERVISOR_PHONE, at, &policy), Ok(None));
        assert!(
            matches!(store.begin_login(SUPERVISOR_PHONE, at, &policy), LoginAttempt::Wait { until: u } if u == until)
        );
    }
    assert_eq!(street.failures(&zhou), 5 - 1);
    // The fifth wrong password locks for a minute; the right one is refused meanwhile.
    let locked_until = t + 7 * SECOND + MINUTE;
    assert_eq!(wrong(store, SUPERVISOR_PHONE, t + 7 * SECOND, &policy), Ok(Some(locked_until)));
    for at in [t + 8 * SECOND, locked_until - 1] {
        assert!(right(store, SUPERVISOR_PHONE, at, &policy) == Err(Refused::Locked(locked_until)));
    }
    assert_eq!(street.failures(&zhou), 5, "refusals are not counted");
    // After the lock one more wrong password locks again; after that lock the right one works
    // and starts the count afresh.
    let again = locked_until + MINUTE;
    assert_eq!(wrong(store, SUPERVISOR_PHONE, locked_until, &policy), Ok(Some(again)));
    assert!(matches!(store.begin_login(SUPERVISOR_PHONE, again - 1, &policy), LoginAttempt::Locked { .. }));
    right(store, SUPERVISOR_PHONE, again, &policy).unwrap();
    assert_eq!(street.failures(&zhou), 0);
    assert_eq!(wrong(store, SUPERVISOR_PHONE, again, &policy), Ok(None));
    assert_eq!(street.failures(&zhou), 1);
    // A new password lifts a lock at once.
    let later = again + MINUTE;
    let locks: Vec<Option<Millis>> =
        (0..4).map(|k| wrong(store, SUPERVISOR_PHONE, later + k * 10 * SECOND, &policy).unwrap()).collect();
    assert_eq!(locks, [None, None, None, Some(later + 30 * SECOND + MINUTE)]);
    assert!(matches!(store.begin_login(SUPERVISOR_PHONE, later + 40 * SECOND, &policy), LoginAttempt::Locked { .. }));
    store.set_password(&zhou, PASSWORD, later + 40 * SECOND).unwrap();
    right(store, SUPERVISOR_PHONE, later + 40 * SECOND, &policy).unwrap();
}

fn an_unknown_login_is_slowed_and_locked_exactly_like_an_account<B: ConsoleBackend>() {
    let street = Street::<B>::new();
    let store = &street.store;
    store.set_password(&street.zhou(), PASSWORD, NOW).unwrap();
    let policy = ConsolePolicy {
        slow_after: 2,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
        lock_after: 4,
        lock_for: Duration::from_secs(600),
        ..ConsolePolicy::default()
    };
    let mut seen = Vec::new();
    for login in [SUPERVISOR_PHONE, "13800138000"] {
        let mut answers = Vec::new();
        let mut at = NOW;
        for _ in 0..6 {
            let answer = wrong(store, login, at, &policy);
            answers.push(match answer {
                Ok(lock) => format!("counted, lock {:?}", lock.map(|u| u - at)),
                Err(Refused::Wait(until)) => format!("wait {}", until - at),
                Err(Refused::Locked(until)) => format!("locked {}", until - at),
            });
            at += SECOND;
        }
        seen.push(answers);
    }
    assert_eq!(seen[0], seen[1], "{}: an attacker cannot tell accounts from strangers", B::NAME);
    assert!(seen[0].iter().any(|a| a.starts_with("locked")), "{:?}", seen[0]);
    // The stranger's row holds a hash, never what was typed.
    assert_eq!(store.number("SELECT COUNT(*) FROM console_throttle WHERE key LIKE 'login:%'"), 1);
    assert_eq!(store.number("SELECT COUNT(*) FROM console_throttle WHERE key LIKE '%13800138000%'"), 0);
    // A day after their last attempt, rows go, locked or not once the lock is over: the
    // stranger's row is swept by anyone's attempt, and the account counts from one again.
    let zhou = street.zhou();
    assert_eq!(street.failures(&zhou), 4);
    store.begin_login(SUPERVISOR_PHONE, NOW + DAY_MS + 3600 * SECOND, &policy);
    assert_eq!(store.number("SELECT COUNT(*) FROM console_throttle WHERE key LIKE 'login:%'"), 0, "{}", B::NAME);
    assert_eq!(street.failures(&zhou), 1, "{}", B::NAME);

    // An empty login, or one with bytes no phone has, names no account: counted like a
    // stranger, never an error.
    for login in ["", "0711\u{0}3201000", "\0", "0711-3201000'; DROP TABLE users; --", "凤凰街道"] {
        match store.begin_login(login, NOW, &policy) {
            LoginAttempt::Check { account: None, .. } => {}
            other => panic!("{}: {login:?}: {other:?}", B::NAME),
        }
    }
}

fn sessions_expire_when_idle_and_at_their_lifetime<B: ConsoleBackend>() {
    let street = Street::<B>::new();
    let (store, zhou) = (&street.store, street.zhou());
    let policy = ConsolePolicy {
        idle: Duration::from_secs(30 * 60),
        lifetime: Duration::from_secs(8 * 3600),
        ..ConsolePolicy::default()
    };
    let idle = 30 * MINUTE;
    let session = store.create_session(&zhou, NOW, &policy);
    let record = store.session(&session.token, NOW, &policy).expect("a fresh session");
    assert_eq!((record.user, record.name.as_str(), record.role), (zhou.id, "周建平", Role::Supervisor));
    assert_eq!(record.csrf, session.csrf);
    assert_eq!(record.scopes, zhou.scopes);
    let street_name = &street.data.roster.streets[0].name;
    assert_eq!(record.scope_names.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), [street_name.as_str()]);
    // Only the token's hash is stored.
    assert_eq!(
        store.number(&format!("SELECT COUNT(*) FROM console_sessions WHERE token_hash = '{}'", session.token)),
        0
    );

    // Touched at most once a minute: a read 30 s in leaves last_seen_at alone.
    let last_seen = |s: &NewSession| {
        store.number(&format!(
            "SELECT last_seen_at FROM console_sessions WHERE token_hash = '{}'",
            gridlink_sync_server::secrets::sha256_hex(&s.token)
        ))
    };
    store.session(&session.token, NOW + 30 * SECOND, &policy).unwrap();
    assert_eq!(last_seen(&session), NOW);
    store.session(&session.token, NOW + MINUTE, &policy).unwrap();
    assert_eq!(last_seen(&session), NOW + MINUTE);

    // Unused for the idle time: gone, and its row too.
    let idle_one = store.create_session(&zhou, NOW, &policy);
    assert!(store.session(&idle_one.token, NOW + idle - 1, &policy).is_some());
    assert!(store.session(&idle_one.token, NOW + idle - 1 + idle, &policy).is_none());
    assert!(store.session(&idle_one.token, NOW + idle, &policy).is_none(), "ended for good");

    // Used every 20 minutes, it still ends 8 hours after sign-in.
    let lifetime = 8 * 60 * MINUTE;
    let mut at = NOW + MINUTE;
    while at < NOW + lifetime - 20 * MINUTE {
        at += 20 * MINUTE;
        assert!(store.session(&session.token, at, &policy).is_some(), "{} at {}", B::NAME, at - NOW);
    }
    assert!(store.session(&session.token, NOW + lifetime - 1, &policy).is_some());
    assert!(store.session(&session.token, NOW + lifetime, &policy).is_none());
    assert_eq!(street.sessions_of(&zhou), 0);

    // A sign-in sweeps every expired session of anyone.
    let admin = street.staff("系统管理员");
    let stale = store.create_session(&admin, NOW, &policy);
    store.create_session(&zhou, NOW + idle, &policy);
    assert_eq!(store.number("SELECT COUNT(*) FROM console_sessions"), 1);
    assert!(store.session(&stale.token, NOW, &policy).is_none());
}

fn an_eleventh_session_ends_the_oldest_and_logout_ends_one<B: ConsoleBackend>() {
    let street = Street::<B>::new();
    let (store, zhou) = (&street.store, street.zhou());
    let policy = ConsolePolicy::default();
    let sessions: Vec<NewSession> = (0..11).map(|i| store.create_session(&zhou, NOW + i, &policy)).collect();
    assert_eq!(street.sessions_of(&zhou), 10);
    assert!(store.session(&sessions[0].token, NOW + 11, &policy).is_none(), "the oldest ended");
    for s in &sessions[1..] {
        assert!(store.session(&s.token, NOW + 11, &policy).is_some());
    }
    // Started in the same millisecond, the first started is the oldest.
    let admin = street.staff("系统管理员");
    let same: Vec<NewSession> = (0..11).map(|_| store.create_session(&admin, NOW, &policy)).collect();
    assert!(store.session(&same[0].token, NOW, &policy).is_none(), "{}", B::NAME);
    assert!(same[1..].iter().all(|s| store.session(&s.token, NOW, &policy).is_some()));

    // Logout ends that session only; logging out twice, or an unknown token, is no error.
    store.end_session(&sessions[5].token);
    store.end_session(&sessions[5].token);
    store.end_session(&gridlink_sync_server::secrets::new_token());
    assert!(store.session(&sessions[5].token, NOW + 11, &policy).is_none());
    assert!(store.session(&sessions[6].token, NOW + 11, &policy).is_some());
    assert_eq!(street.sessions_of(&zhou), 9);
}

fn a_changed_role_or_scope_or_password_ends_access<B: ConsoleBackend>() {
    let street = Street::<B>::new();
    let (store, zhou) = (&street.store, street.zhou());
    let policy = ConsolePolicy::default();
    // A grid worker may hold a password but not a session that answers.
    let worker = street.grid_worker();
    store.set_password(&worker, "网格员的密码2026", NOW).unwrap();
    let theirs = store.create_session(&worker, NOW, &policy);
    assert!(store.session(&theirs.token, NOW, &policy).is_none());

    let session = store.create_session(&zhou, NOW, &policy);
    assert!(store.session(&session.token, NOW, &policy).is_some());
    // The roster changes his role behind the console's back: the next request finds out.
    store.exec(&format!("UPDATE users SET role = 'grid-worker' WHERE id = '{}'", zhou.id));
    assert!(store.session(&session.token, NOW + 1, &policy).is_none());
    assert_eq!(street.sessions_of(&zhou), 0, "the session row is gone");
    store.exec(&format!("UPDATE users SET role = 'supervisor' WHERE id = '{}'", zhou.id));
    assert!(store.session(&session.token, NOW + 2, &policy).is_none(), "and stays gone");

    // New scopes, lost phones and a new password each sign every browser out.
    let community = street.data.roster.communities[0].id;
    for (what, end) in [("new scopes", 0), ("revoked devices", 1), ("a new password", 2)] {
        let a = store.create_session(&zhou, NOW, &policy);
        let b = store.create_session(&zhou, NOW, &policy);
        match end {
            0 => Backend::set_scopes(store, zhou.id, &[Scope::Community(community)]).unwrap(),
            1 => {
                Backend::revoke_user_devices(store, zhou.id, NOW).unwrap();
            }
            _ => assert_eq!(store.set_password(&zhou, PASSWORD, NOW).unwrap(), 2),
        }
        for s in [a, b] {
            assert!(store.session(&s.token, NOW, &policy).is_none(), "{}: {what}", B::NAME);
        }
    }
    // The new scopes are read afresh at the next sign-in.
    let session = store.create_session(&zhou, NOW, &policy);
    assert_eq!(store.session(&session.token, NOW, &policy).unwrap().scopes, [Scope::Community(community)]);
}

fn malformed_tokens_are_refused_before_sql<B: ConsoleBackend>() {
    let street = Street::<B>::new();
    let (store, zhou) = (&street.store, street.zhou());
    let policy = ConsolePolicy::default();
    let session = store.create_session(&zhou, NOW, &policy);
    let too_long = format!("{}0", session.token);
    let injection = format!("{}' OR '1'='1", &session.token[..50]);
    for token in [
        "",
        "garbage",
        &"G".repeat(64),
        &session.token.to_uppercase(),
        &too_long,
        &session.token[..63],
        &injection,
        "街道",
    ] {
        assert!(store.session(token, NOW, &policy).is_none(), "{token}");
        store.end_session(token);
    }
    assert!(store.session(&session.token, NOW, &policy).is_some(), "no other session was touched");
}

/// Two stores on one database (two server processes, or two connections to one SQLite file)
/// share sessions and the throttle.
fn a_session_and_a_lock_hold_across_two_servers<B: ConsoleBackend>() {
    let street = Street::<B>::new();
    let (one, zhou) = (&street.store, street.zhou());
    let two = B::open(&street.place);
    let policy = ConsolePolicy { lock_after: 3, lock_for: Duration::from_secs(600), ..ConsolePolicy::default() };
    one.set_password(&zhou, PASSWORD, NOW).unwrap();
    let session = one.create_session(&zhou, NOW, &policy);
    assert_eq!(two.session(&session.token, NOW, &policy).unwrap().csrf, session.csrf);
    two.end_session(&session.token);
    assert!(one.session(&session.token, NOW, &policy).is_none());
    // Wrong passwords spread over both lock the login on both.
    wrong(one, SUPERVISOR_PHONE, NOW, &policy).unwrap();
    wrong(&two, SUPERVISOR_PHONE, NOW, &policy).unwrap();
    assert!(wrong(one, SUPERVISOR_PHONE, NOW, &policy).unwrap().is_some());
    for store in [one, &two] {
        assert!(matches!(right(store, SUPERVISOR_PHONE, NOW + 1, &policy), Err(Refused::Locked(_))));
    }
}

/// Many attempts at once through two stores: each is counted (no update lost), and with a
/// wait after the first, exactly one gets to check a password.
fn attempts_at_once_through_two_servers_are_each_counted<B: ConsoleBackend>() {
    const THREADS: usize = 12;
    let street = Street::<B>::new();
    let zhou = street.zhou();
    let stores = Arc::new([B::open(&street.place), B::open(&street.place)]);
    let run = |policy: ConsolePolicy, now: Millis| -> Vec<LoginAttempt> {
        let barrier = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|i| {
                let (stores, barrier, policy) = (stores.clone(), barrier.clone(), policy);
                std::thread::spawn(move || {
                    barrier.wait();
                    stores[i % 2].begin_login(SUPERVISOR_PHONE, now, &policy)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    };
    let no_waits = ConsolePolicy { slow_after: 1000, lock_after: 1000, ..ConsolePolicy::default() };
    let answers = run(no_waits, NOW);
    assert!(answers.iter().all(|a| matches!(a, LoginAttempt::Check { .. })), "{answers:?}");
    assert_eq!(street.failures(&zhou), THREADS as i64, "{}: every attempt counted", B::NAME);

    let one_then_wait = ConsolePolicy {
        slow_after: 1,
        first_delay: Duration::from_secs(30),
        max_delay: Duration::from_secs(30),
        ..ConsolePolicy::default()
    };
    street.store.set_password(&zhou, PASSWORD, NOW).unwrap();
    let answers = run(one_then_wait, NOW + MINUTE);
    let checked = answers.iter().filter(|a| matches!(a, LoginAttempt::Check { .. })).count();
    let waiting = answers.iter().filter(|a| matches!(a, LoginAttempt::Wait { .. })).count();
    assert_eq!((checked, waiting), (1, THREADS - 1), "{}: {answers:?}", B::NAME);
    assert_eq!(street.failures(&zhou), 1);
}

/// Sign-ins of one user at once through two stores keep the cap of ten sessions.
fn sign_ins_at_once_through_two_servers_keep_the_cap<B: ConsoleBackend>() {
    const THREADS: usize = 16;
    let street = Street::<B>::new();
    let zhou = street.zhou();
    let stores = Arc::new([B::open(&street.place), B::open(&street.place)]);
    let policy = ConsolePolicy::default();
    // Several rounds: a race that lets two sign-ins trim past each other shows in one of them.
    for round in 0..5 {
        let barrier = Arc::new(Barrier::new(THREADS));
        let started = NOW + round * 100;
        let threads: Vec<_> = (0..THREADS)
            .map(|i| {
                let (stores, barrier, zhou) = (stores.clone(), barrier.clone(), zhou.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    stores[i % 2].create_session(&zhou, started + i as Millis, &policy)
                })
            })
            .collect();
        let sessions: Vec<NewSession> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(street.sessions_of(&zhou), 10, "{} round {round}", B::NAME);
        // The ten newest are the ones left, whatever order the sign-ins ran in.
        let live: Vec<bool> =
            sessions.iter().map(|s| street.store.session(&s.token, started + 99, &policy).is_some()).collect();
        assert_eq!(live, [[false; 6].as_slice(), &[true; 10]].concat(), "{} round {round}", B::NAME);
    }
}

/// The roster look-ups behind the console's scope checks.
fn placements_and_covered_areas_come_from_the_roster<B: ConsoleBackend>() {
    let street = Street::<B>::new();
    let (store, roster) = (&street.store, &street.data.roster);
    let street_id = roster.streets[0].id;
    let grid = &roster.grids[1];
    let building = roster.buildings.iter().find(|b| b.grid == grid.id).unwrap();
    let placement = Placement { street: street_id, community: grid.community, grid: grid.id, building: None };
    assert_eq!(store.placement_of_grid(grid.id), Some(placement));
    assert_eq!(store.placement_of_building(building.id), Some(Placement { building: Some(building.id), ..placement }));
    assert_eq!(store.placement_of_grid(GridId::new()), None);
    assert_eq!(store.placement_of_building(BuildingId::new()), None);

    let grids_of = |keep: &dyn Fn(&gridlink_shared::Grid) -> bool| -> CoveredArea {
        CoveredArea {
            grids: roster.grids.iter().filter(|g| keep(g)).map(|g| g.id).collect(),
            buildings: Default::default(),
        }
    };
    assert_eq!(store.covered_area(&[Scope::Street(street_id)]), grids_of(&|_| true));
    assert_eq!(store.covered_area(&[Scope::Community(grid.community)]), grids_of(&|g| g.community == grid.community));
    let other = roster.buildings.iter().find(|b| b.grid != grid.id).unwrap();
    assert_eq!(
        store.covered_area(&[Scope::Grid(grid.id), Scope::Building(other.id), Scope::Grid(GridId::new())]),
        CoveredArea { grids: [grid.id].into(), buildings: [other.id].into() }
    );
    assert_eq!(store.covered_area(&[]), CoveredArea::default());
}

stories!(
    placements_and_covered_areas_come_from_the_roster,
    right_and_wrong_passwords_by_phone_or_id,
    waits_double_then_the_login_locks_and_unlocks_after_lock_for,
    an_unknown_login_is_slowed_and_locked_exactly_like_an_account,
    sessions_expire_when_idle_and_at_their_lifetime,
    an_eleventh_session_ends_the_oldest_and_logout_ends_one,
    a_changed_role_or_scope_or_password_ends_access,
    malformed_tokens_are_refused_before_sql,
    a_session_and_a_lock_hold_across_two_servers,
    attempts_at_once_through_two_servers_are_each_counted,
    sign_ins_at_once_through_two_servers_keep_the_cap,
);

/// `migrate` carries the console's tables: the password still verifies, a wrong-password
/// count goes on, and a browser signed in before the move stays signed in after it.
#[test]
fn migrate_carries_passwords_the_throttle_and_sessions_to_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let policy = ConsolePolicy::default();
    let (zhou, session) = {
        let sqlite = SqliteStore::create(dir.path()).unwrap();
        Backend::load_demo(&sqlite, DemoSize::Small, SEED, NOW);
        let data = demo::generate(DemoSize::Small, SEED, NOW);
        let zhou = data.roster.staff.iter().find(|s| s.name == "周建平").unwrap().clone();
        sqlite.set_password(&zhou, PASSWORD, NOW).unwrap();
        let session = ConsoleBackend::create_session(&sqlite, &zhou, NOW, &policy);
        wrong(&sqlite, SUPERVISOR_PHONE, NOW, &policy).unwrap();
        (zhou, session)
    };
    let (db, _) = PgStore::fresh();
    let migration = gridlink_sync_server::store::postgres::migrate_sqlite(dir.path(), &db.url, &mut |_| {}).unwrap();
    assert!(migration.committed, "{}", migration.verification.render());
    for table in ["console_passwords", "console_throttle", "console_sessions"] {
        let copied = migration.tables.iter().find(|t| t.table == table).unwrap_or_else(|| panic!("{table} copied"));
        assert_eq!(copied.rows, 1, "{table}");
        let counted = migration.verification.tables.iter().find(|t| t.table == table).unwrap();
        assert_eq!((counted.sqlite, counted.postgres), (1, 1), "{table} verified by its rows");
    }
    assert!(!migration.not_copied.iter().any(|n| n.what.contains("console")), "{:?}", migration.not_copied);

    let pg = PgStore::open(&db.url).unwrap();
    let record = ConsoleBackend::session(&pg, &session.token, NOW + MINUTE, &policy).expect("still signed in");
    assert_eq!((record.user, record.csrf), (zhou.id, session.csrf));
    assert_eq!(
        pg.number(&format!("SELECT CAST(failures AS BIGINT) FROM console_throttle WHERE key = 'user:{}'", zhou.id)),
        1
    );
    right(&pg, SUPERVISOR_PHONE, NOW + MINUTE, &policy).unwrap();
    // New sessions are numbered after the copied one.
    let later: Vec<NewSession> =
        (0..10).map(|_| ConsoleBackend::create_session(&pg, &zhou, NOW + MINUTE, &policy)).collect();
    assert!(ConsoleBackend::session(&pg, &session.token, NOW + MINUTE, &policy).is_none(), "the oldest of eleven");
    assert!(ConsoleBackend::session(&pg, &later[0].token, NOW + MINUTE, &policy).is_some());
}

/// `gridlink-server user password --database URL`, the password on standard input.
#[test]
fn user_password_sets_a_console_password_on_postgresql() {
    let street = Street::<PgStore>::new();
    let zhou = street.zhou();
    let policy = ConsolePolicy::default();
    let session = ConsoleBackend::create_session(&street.store, &zhou, NOW, &policy);
    let run = |user: &str, stdin: &[u8]| {
        let mut child = Command::new(BIN)
            .args(["user", "password", "--database", &street.place.url, "--user", user])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&zhou.id.to_string(), format!("{PASSWORD}\n").as_bytes());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("console password set for 周建平"), "{stdout}");
    assert!(stdout.contains("signed out 1 console session"), "{stdout}");
    assert!(ConsoleBackend::session(&street.store, &session.token, NOW, &policy).is_none());
    right(&street.store, SUPERVISOR_PHONE, NOW, &policy).unwrap();
    assert_eq!(street.store.number("SELECT COUNT(*) FROM security_audit WHERE kind = 'user-password'"), 1);

    // Too short, or for nobody: exit 1, a message naming the problem, nothing changed.
    let short = run(&zhou.id.to_string(), "凤凰\n".as_bytes());
    assert_eq!(short.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&short.stderr).contains("nothing was changed"));
    let stranger = UserId::new();
    let nobody = run(&stranger.to_string(), format!("{PASSWORD}\n").as_bytes());
    assert_eq!(nobody.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&nobody.stderr);
    assert!(stderr.contains(&stranger.to_string()), "{stderr}");
    right(&street.store, SUPERVISOR_PHONE, NOW, &policy).unwrap();
}
