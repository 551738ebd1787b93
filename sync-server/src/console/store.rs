//! The console's storage: its three tables (`console_passwords`, `console_throttle`,
//! `console_sessions`, defined in `store/schema.rs`) behind the [`ConsoleStore`] trait, the
//! roster look-ups that scope checks need, and the SQLite implementation of both. Also
//! [`SqliteStore::set_console_password`], behind `gridlink-server user password`. The
//! PostgreSQL store answers the same calls in `store/postgres/console.rs` with the pure rules
//! kept here (login normalization, throttle keys and waits, the token shape).
//!
//! Nothing here hashes a password while holding the database: a login is reserved in one
//! short transaction ([`ConsoleStore::begin_login`]), checked outside it, and recorded in
//! another ([`ConsoleStore::finish_login`]).

use std::collections::BTreeSet;
use std::time::Duration;

use gridlink_shared::time::{DAY_MS, Millis};
use gridlink_shared::{BuildingId, CommunityId, GridId, Lang, Placement, Role, Scope, StreetId, UserId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::ConsolePolicy;
use super::password;
use crate::secrets;
use crate::store::{AnyStore, SqliteStore, StoreError};

/// Sessions kept per user; signing in on an eleventh browser ends the oldest.
pub(crate) const SESSIONS_PER_USER: i64 = 10;

/// A session's `last_seen_at` is written at most this often (not on every page view).
pub(crate) const TOUCH_EVERY_MS: Millis = 60_000;

/// Whether a role may sign in to the console.
pub fn may_use_console(role: Role) -> bool {
    matches!(role, Role::Supervisor | Role::Admin)
}

/// What the console needs from storage. Every call that answers for a session reads the
/// roster afresh, so a changed role, name or scope takes effect on the next request.
pub trait ConsoleStore: Send + Sync + 'static {
    /// Reserves one login attempt for what was typed as `login` (a phone number or a user
    /// id): refuses it while the login is locked or must wait, else counts it as a wrong
    /// password until [`finish_login`](Self::finish_login) says otherwise (so parallel
    /// attempts cannot slip past the count) and returns the account and its password hash.
    fn begin_login(&self, login: &str, now: Millis, policy: &ConsolePolicy) -> Result<LoginAttempt, StoreError>;

    /// Records the outcome of a reserved attempt: a right password clears the count; a
    /// wrong one may lock the login, and then the lock's end is returned.
    fn finish_login(
        &self,
        key: &ThrottleKey,
        password_was_right: bool,
        now: Millis,
        policy: &ConsolePolicy,
    ) -> Result<Option<Millis>, StoreError>;

    /// Starts a session for `user`; returns the cookie token and the CSRF token (only their
    /// hash and the CSRF token are stored).
    fn create_session(&self, user: UserId, now: Millis, policy: &ConsolePolicy) -> Result<NewSession, StoreError>;

    /// The session behind a cookie token and its user as the roster says now; `None` for an
    /// unknown, expired or malformed token, or a user whose role may no longer use the console.
    fn session(&self, token: &str, now: Millis, policy: &ConsolePolicy) -> Result<Option<SessionRecord>, StoreError>;

    /// Ends the session behind a cookie token (logout). Unknown tokens are ignored.
    fn end_session(&self, token: &str) -> Result<(), StoreError>;

    /// Where a grid sits in the roster, if it exists.
    fn placement_of_grid(&self, grid: GridId) -> Result<Option<Placement>, StoreError>;

    /// Where a building sits in the roster, if it exists.
    fn placement_of_building(&self, building: BuildingId) -> Result<Option<Placement>, StoreError>;

    /// The grids and buildings `scopes` cover, for filtering lists in SQL.
    fn covered_area(&self, scopes: &[Scope]) -> Result<CoveredArea, StoreError>;

    /// The store itself, for the pages beyond login and scope checks (admin, cases,
    /// households, audit, ledger downloads): they call the same store functions as the admin
    /// CLI (`add_user`, `import_csv_from`, `ledgers::export`, ...), so the same checks apply.
    fn any(&self) -> AnyStore<'_>;
}

/// Identifies what a login attempt counts against: an account, or (when what was typed names
/// no account) the typed login itself, so unknown logins are slowed and locked alike.
#[derive(Clone, PartialEq, Eq)]
pub struct ThrottleKey(pub(crate) String);

impl std::fmt::Debug for ThrottleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // An account's key whole; the hash of an unknown login shortened, enough to follow it
        // in the log.
        let shown = if self.0.starts_with("user:") { &self.0 } else { &self.0[..self.0.len().min(22)] };
        f.write_str(shown)
    }
}

/// An account a login names.
#[derive(Clone, Debug)]
pub struct Account {
    pub user: UserId,
    pub role: Role,
    /// The PHC string, if a console password was set.
    pub password_hash: Option<String>,
}

/// The answer to [`ConsoleStore::begin_login`].
#[derive(Clone, Debug)]
pub enum LoginAttempt {
    /// Check the password now; the attempt already counts as wrong until finished.
    Check { key: ThrottleKey, account: Option<Account> },
    /// Too soon after the last wrong password; not counted.
    Wait { until: Millis },
    /// Locked after too many wrong passwords; not counted.
    Locked { until: Millis },
}

/// A fresh session's secrets, for the cookie and the forms.
#[derive(Clone)]
pub struct NewSession {
    pub token: String,
    pub csrf: String,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSession(..)")
    }
}

/// A live session and its user as the roster says now.
#[derive(Clone)]
pub struct SessionRecord {
    pub user: UserId,
    pub name: String,
    pub role: Role,
    pub scopes: Vec<Scope>,
    pub scope_names: Vec<ScopeName>,
    pub csrf: String,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord").field("user", &self.user).field("role", &self.role).finish_non_exhaustive()
    }
}

/// A scope and the roster's name for it, for people ("凤凰街道", "凤凰社区第2网格").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeName {
    pub scope: Scope,
    pub name: String,
}

impl ScopeName {
    /// "街道" / "Street" and so on.
    pub fn kind(&self, lang: Lang) -> &'static str {
        let (zh, en) = match self.scope {
            Scope::Street(_) => ("街道", "Street"),
            Scope::Community(_) => ("社区", "Community"),
            Scope::Grid(_) => ("网格", "Grid"),
            Scope::Building(_) => ("楼栋", "Building"),
        };
        match lang {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

/// The part of the roster a user's scopes cover: whole grids (from street, community and grid
/// scopes) and single buildings (from building scopes). A row is covered when its grid is in
/// `grids` or its building is in `buildings`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoveredArea {
    pub grids: BTreeSet<GridId>,
    pub buildings: BTreeSet<BuildingId>,
}

impl CoveredArea {
    /// Whether a row placed in `grid` (and `building`, if any) is covered.
    pub fn contains(&self, grid: GridId, building: Option<BuildingId>) -> bool {
        self.grids.contains(&grid) || building.is_some_and(|b| self.buildings.contains(&b))
    }

    /// A SQL condition selecting covered rows, with its parameters in order, e.g.
    /// `(grid IN (?,?) OR building IN (?))`. Column names come from the caller's code, never
    /// from a request. Matches nothing when the area is empty.
    pub fn sql_condition(&self, grid_column: &str, building_column: &str) -> (String, Vec<String>) {
        let mut parts = Vec::new();
        let mut values = Vec::new();
        if !self.grids.is_empty() {
            parts.push(format!("{grid_column} IN ({})", vec!["?"; self.grids.len()].join(",")));
            values.extend(self.grids.iter().map(|g| g.to_string()));
        }
        if !self.buildings.is_empty() {
            parts.push(format!("{building_column} IN ({})", vec!["?"; self.buildings.len()].join(",")));
            values.extend(self.buildings.iter().map(|b| b.to_string()));
        }
        if parts.is_empty() {
            return ("0".to_string(), values);
        }
        (format!("({})", parts.join(" OR ")), values)
    }
}

/// What `user password` did.
#[derive(Clone, Debug)]
pub struct PasswordSet {
    pub name: String,
    pub role: Role,
    /// Sessions of the user that ended (a new password signs every browser out).
    pub sessions_ended: usize,
}

impl SqliteStore {
    /// Sets (or replaces) a user's console password, clears their login lock and ends their
    /// console sessions. Users of any role may have one; only supervisors and admins can sign
    /// in with it (see [`may_use_console`]).
    pub fn set_console_password(
        &self,
        user: UserId,
        new_password: &str,
        now: Millis,
    ) -> Result<PasswordSet, StoreError> {
        password::check_new_password(new_password).map_err(|rule| StoreError::Invalid(rule.to_string()))?;
        // Hashed before taking the database: it takes tens of milliseconds.
        let hash = password::hash(new_password)
            .map_err(|error| StoreError::Backend(format!("hashing the password failed: {error}")))?;
        self.with_connection(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row: Option<(String, String)> = tx
                .query_row("SELECT name, role FROM users WHERE id = ?1", [user.to_string()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let (name, role) = row.ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
            tx.execute(
                "INSERT INTO console_passwords (user_id, hash, set_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
                params![user.to_string(), hash, now],
            )?;
            tx.execute("DELETE FROM console_throttle WHERE key = ?1", [account_key(user)])?;
            let sessions_ended = tx.execute("DELETE FROM console_sessions WHERE user_id = ?1", [user.to_string()])?;
            tx.commit()?;
            Ok(PasswordSet { name, role: parse(&role)?, sessions_ended })
        })
    }
}

impl ConsoleStore for SqliteStore {
    fn begin_login(&self, login: &str, now: Millis, policy: &ConsolePolicy) -> Result<LoginAttempt, StoreError> {
        let typed = normalize_login(login);
        self.with_connection(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let account = find_account(&tx, &typed)?;
            let key = match &account {
                Some((user, _)) => account_key(*user),
                None => unknown_login_key(&typed),
            };
            // Unknown logins add rows; a day after their last failure they go (unless locked).
            tx.execute(
                "DELETE FROM console_throttle WHERE updated_at < ?1 AND locked_until < ?2",
                params![now - DAY_MS, now],
            )?;
            let (failures, not_before, locked_until): (u32, Millis, Millis) = tx
                .query_row(
                    "SELECT failures, not_before, locked_until FROM console_throttle WHERE key = ?1",
                    [&key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?
                .unwrap_or((0, 0, 0));
            if locked_until > now {
                return Ok(LoginAttempt::Locked { until: locked_until });
            }
            if not_before > now {
                return Ok(LoginAttempt::Wait { until: not_before });
            }
            let failures = failures.saturating_add(1);
            let not_before = now.saturating_add(millis(delay_after(failures, policy)));
            tx.execute(
                "INSERT INTO console_throttle (key, failures, not_before, locked_until, updated_at)
                 VALUES (?1, ?2, ?3, 0, ?4)
                 ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, not_before = excluded.not_before,
                     updated_at = excluded.updated_at",
                params![key, failures, not_before, now],
            )?;
            let account = match account {
                Some((user, role)) => {
                    let password_hash = tx
                        .query_row("SELECT hash FROM console_passwords WHERE user_id = ?1", [user.to_string()], |r| {
                            r.get(0)
                        })
                        .optional()?;
                    Some(Account { user, role, password_hash })
                }
                None => None,
            };
            tx.commit()?;
            Ok(LoginAttempt::Check { key: ThrottleKey(key), account })
        })
    }

    fn finish_login(
        &self,
        key: &ThrottleKey,
        password_was_right: bool,
        now: Millis,
        policy: &ConsolePolicy,
    ) -> Result<Option<Millis>, StoreError> {
        self.with_connection(|conn| {
            if password_was_right {
                conn.execute("DELETE FROM console_throttle WHERE key = ?1", [&key.0])?;
                return Ok(None);
            }
            let failures: u32 = conn
                .query_row("SELECT failures FROM console_throttle WHERE key = ?1", [&key.0], |r| r.get(0))
                .optional()?
                .unwrap_or(1);
            if failures < policy.lock_after {
                // The wait runs from the answer, not from when the check began.
                let not_before = now.saturating_add(millis(delay_after(failures, policy)));
                conn.execute(
                    "UPDATE console_throttle SET not_before = MAX(not_before, ?1), updated_at = ?2 WHERE key = ?3",
                    params![not_before, now, key.0],
                )?;
                return Ok(None);
            }
            let until = now.saturating_add(millis(policy.lock_for));
            conn.execute(
                "UPDATE console_throttle SET locked_until = ?1, updated_at = ?2 WHERE key = ?3",
                params![until, now, key.0],
            )?;
            Ok(Some(until))
        })
    }

    fn create_session(&self, user: UserId, now: Millis, policy: &ConsolePolicy) -> Result<NewSession, StoreError> {
        let session = NewSession { token: secrets::new_token(), csrf: secrets::new_token() };
        self.with_connection(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Sweep every expired session now and then: here, at each sign-in.
            tx.execute(
                "DELETE FROM console_sessions WHERE last_seen_at <= ?1 OR created_at <= ?2",
                params![now - millis(policy.idle), now - millis(policy.lifetime)],
            )?;
            tx.execute(
                "INSERT INTO console_sessions (token_hash, user_id, csrf, created_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![secrets::sha256_hex(&session.token), user.to_string(), session.csrf, now],
            )?;
            tx.execute(
                "DELETE FROM console_sessions WHERE user_id = ?1 AND token_hash NOT IN (
                     SELECT token_hash FROM console_sessions WHERE user_id = ?1
                     ORDER BY created_at DESC, rowid DESC LIMIT ?2)",
                params![user.to_string(), SESSIONS_PER_USER],
            )?;
            tx.commit()?;
            Ok(session)
        })
    }

    fn session(&self, token: &str, now: Millis, policy: &ConsolePolicy) -> Result<Option<SessionRecord>, StoreError> {
        if !is_token(token) {
            return Ok(None);
        }
        let token_hash = secrets::sha256_hex(token);
        self.with_connection(|conn| {
            let row: Option<(String, String, Millis, Millis, String, String, String)> = conn
                .query_row(
                    "SELECT s.user_id, s.csrf, s.created_at, s.last_seen_at, u.name, u.role, u.scopes
                     FROM console_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1",
                    [&token_hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
                )
                .optional()?;
            let Some((user, csrf, created_at, last_seen_at, name, role, scopes)) = row else {
                return Ok(None);
            };
            let role: Role = parse(&role)?;
            let expired = now - last_seen_at >= millis(policy.idle) || now - created_at >= millis(policy.lifetime);
            if expired || !may_use_console(role) {
                conn.execute("DELETE FROM console_sessions WHERE token_hash = ?1", [&token_hash])?;
                return Ok(None);
            }
            if now - last_seen_at >= TOUCH_EVERY_MS {
                conn.execute(
                    "UPDATE console_sessions SET last_seen_at = ?1 WHERE token_hash = ?2",
                    params![now, token_hash],
                )?;
            }
            let scopes: Vec<Scope> = serde_json::from_str(&scopes)?;
            let scope_names = scopes.iter().map(|s| scope_name(conn, *s)).collect::<Result<_, _>>()?;
            Ok(Some(SessionRecord { user: parse(&user)?, name, role, scopes, scope_names, csrf }))
        })
    }

    fn end_session(&self, token: &str) -> Result<(), StoreError> {
        if !is_token(token) {
            return Ok(());
        }
        let token_hash = secrets::sha256_hex(token);
        self.with_connection(|conn| {
            conn.execute("DELETE FROM console_sessions WHERE token_hash = ?1", [token_hash])?;
            Ok(())
        })
    }

    fn placement_of_grid(&self, grid: GridId) -> Result<Option<Placement>, StoreError> {
        self.with_connection(|conn| {
            let row: Option<(String, String)> = conn
                .query_row(
                    "SELECT c.street, g.community FROM grids g JOIN communities c ON c.id = g.community
                     WHERE g.id = ?1",
                    [grid.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            row.map(|(street, community)| {
                Ok(Placement { street: parse(&street)?, community: parse(&community)?, grid, building: None })
            })
            .transpose()
        })
    }

    fn placement_of_building(&self, building: BuildingId) -> Result<Option<Placement>, StoreError> {
        self.with_connection(|conn| {
            let row: Option<(String, String, String)> = conn
                .query_row(
                    "SELECT c.street, g.community, b.grid FROM buildings b JOIN grids g ON g.id = b.grid
                     JOIN communities c ON c.id = g.community WHERE b.id = ?1",
                    [building.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            row.map(|(street, community, grid)| {
                Ok(Placement {
                    street: parse::<StreetId>(&street)?,
                    community: parse::<CommunityId>(&community)?,
                    grid: parse(&grid)?,
                    building: Some(building),
                })
            })
            .transpose()
        })
    }

    fn covered_area(&self, scopes: &[Scope]) -> Result<CoveredArea, StoreError> {
        self.with_connection(|conn| {
            let mut area = CoveredArea::default();
            for scope in scopes {
                let (sql, id) = match scope {
                    Scope::Street(id) => (
                        "SELECT g.id FROM grids g JOIN communities c ON c.id = g.community WHERE c.street = ?1",
                        id.to_string(),
                    ),
                    Scope::Community(id) => ("SELECT id FROM grids WHERE community = ?1", id.to_string()),
                    Scope::Grid(id) => ("SELECT id FROM grids WHERE id = ?1", id.to_string()),
                    Scope::Building(id) => {
                        area.buildings.insert(*id);
                        continue;
                    }
                };
                let mut stmt = conn.prepare_cached(sql)?;
                for grid in stmt.query_map([id], |r| r.get::<_, String>(0))? {
                    area.grids.insert(parse(&grid?)?);
                }
            }
            Ok(area)
        })
    }

    fn any(&self) -> AnyStore<'_> {
        AnyStore::Sqlite(self)
    }
}

/// The throttle key of an account.
pub(crate) fn account_key(user: UserId) -> String {
    format!("user:{user}")
}

/// The throttle key of a normalized login that names no account: its hash, so the table
/// never holds what strangers typed.
pub(crate) fn unknown_login_key(typed: &str) -> String {
    format!("login:{}", secrets::sha256_hex(typed))
}

/// What was typed, made comparable: trimmed; a user id lower-cased; a phone number without
/// spaces, dashes or a leading +86.
pub(crate) fn normalize_login(login: &str) -> String {
    let login = login.trim();
    if login.parse::<UserId>().is_ok() {
        return login.to_ascii_lowercase();
    }
    let digits: String = login.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    digits.strip_prefix("+86").map(str::to_string).unwrap_or(digits)
}

/// The account a normalized login names: by user id, else by phone number when exactly one
/// user has it (a phone shared by two users names neither; they sign in by id).
fn find_account(conn: &Connection, typed: &str) -> Result<Option<(UserId, Role)>, StoreError> {
    if typed.is_empty() {
        return Ok(None);
    }
    let rows: Vec<(String, String)> = if let Ok(user) = typed.parse::<UserId>() {
        let mut stmt = conn.prepare_cached("SELECT id, role FROM users WHERE id = ?1")?;
        stmt.query_map([user.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?
    } else {
        let mut stmt = conn.prepare_cached(
            "SELECT id, role FROM users WHERE phone <> '' AND REPLACE(REPLACE(phone, '-', ''), ' ', '') = ?1 LIMIT 2",
        )?;
        stmt.query_map([typed], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?
    };
    match rows.as_slice() {
        [(id, role)] => Ok(Some((parse(id)?, parse(role)?))),
        _ => Ok(None),
    }
}

/// The wait before the attempt after `failures` wrong passwords in a row.
pub(crate) fn delay_after(failures: u32, policy: &ConsolePolicy) -> Duration {
    if failures < policy.slow_after {
        return Duration::ZERO;
    }
    let doublings = (failures - policy.slow_after).min(20);
    policy.first_delay.saturating_mul(1 << doublings).min(policy.max_delay)
}

pub(crate) fn millis(duration: Duration) -> Millis {
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX)
}

/// Whether a cookie value can be a session token (64 hex digits, as `secrets::new_token`
/// makes them); anything else is refused before it reaches SQL.
pub(crate) fn is_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn scope_name(conn: &Connection, scope: Scope) -> Result<ScopeName, StoreError> {
    let (sql, id) = match scope {
        Scope::Street(id) => ("SELECT name FROM streets WHERE id = ?1", id.to_string()),
        Scope::Community(id) => ("SELECT name FROM communities WHERE id = ?1", id.to_string()),
        Scope::Grid(id) => ("SELECT name FROM grids WHERE id = ?1", id.to_string()),
        Scope::Building(id) => ("SELECT name FROM buildings WHERE id = ?1", id.to_string()),
    };
    let name: Option<String> = conn.prepare_cached(sql)?.query_row([id], |r| r.get(0)).optional()?;
    Ok(ScopeName { scope, name: name.unwrap_or_else(|| scope.to_string()) })
}

pub(crate) fn parse<T: std::str::FromStr>(raw: &str) -> Result<T, StoreError> {
    raw.parse().map_err(|_| StoreError::Backend(format!("stored value '{raw}' does not parse")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_start_at_the_third_wrong_password_and_double_up_to_the_cap() {
        let policy = ConsolePolicy::default();
        let waits: Vec<u64> = (1..=10).map(|n| delay_after(n, &policy).as_secs()).collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn logins_are_compared_without_spaces_dashes_or_country_code() {
        assert_eq!(normalize_login(" 0711-3201000 "), "07113201000");
        assert_eq!(normalize_login("+86 138 0000 1111"), "13800001111");
        let id = UserId::new();
        assert_eq!(normalize_login(&id.to_string().to_uppercase()), id.to_string());
    }

    #[test]
    fn only_tokens_of_our_own_shape_reach_sql() {
        assert!(is_token(&secrets::new_token()));
        assert!(!is_token("garbage"));
        assert!(!is_token(&"G".repeat(64)));
        assert!(!is_token(&secrets::new_token().to_uppercase()));
    }

    #[test]
    fn covered_area_selects_its_grids_and_buildings_and_nothing_when_empty() {
        let (grid, building) = (GridId::new(), BuildingId::new());
        let area = CoveredArea { grids: [grid].into(), buildings: [building].into() };
        assert!(area.contains(grid, None));
        assert!(area.contains(GridId::new(), Some(building)));
        assert!(!area.contains(GridId::new(), Some(BuildingId::new())));
        let (sql, values) = area.sql_condition("grid", "building");
        assert_eq!(sql, "(grid IN (?) OR building IN (?))");
        assert_eq!(values, [grid.to_string(), building.to_string()]);
        assert_eq!(CoveredArea::default().sql_condition("grid", "building").0, "0");
    }
}
