//! The web console's own storage on PostgreSQL: console passwords, the login throttle and
//! sessions (migration 3, `schema.rs`), and the roster look-ups the console's scope checks
//! need. The calls and their meaning are those of the console's store trait, answered as the
//! SQLite store answers them (`console/store.rs`, whose pure rules are used here: login
//! normalization, throttle keys and waits, the token shape).
//!
//! Several server processes share these tables, so what SQLite gets from its single writer is
//! had here with row locks: a login attempt is counted under the lock of its throttle row,
//! taken by an upsert in the transaction that reads the count, so attempts in any number of
//! processes are counted one after the other and none slips past a wait or a lock; sign-ins of
//! one user are ordered by a lock on the user's row, so the cap on their sessions holds. The
//! sweeps of old throttle rows and expired sessions run as statements of their own that skip
//! locked rows, so no transaction here waits while holding a lock another one wants.

use gridlink_shared::time::{DAY_MS, Millis};
use gridlink_shared::{BuildingId, CommunityId, GridId, Placement, Role, Scope, StreetId, UserId};
use postgres::GenericClient;

use super::PgStore;
use crate::console::ConsolePolicy;
use crate::console::password;
use crate::console::store::{
    Account, ConsoleStore, CoveredArea, LoginAttempt, NewSession, PasswordSet, SESSIONS_PER_USER, ScopeName,
    SessionRecord, TOUCH_EVERY_MS, ThrottleKey, account_key, delay_after, is_token, may_use_console, millis,
    normalize_login, parse, unknown_login_key,
};
use crate::secrets;
use crate::store::{AnyStore, StoreError};

impl PgStore {
    /// Sets (or replaces) a user's console password, clears their login lock and ends their
    /// console sessions, as [`crate::SqliteStore::set_console_password`] does.
    pub fn set_console_password(
        &self,
        user: UserId,
        new_password: &str,
        now: Millis,
    ) -> Result<PasswordSet, StoreError> {
        password::check_new_password(new_password).map_err(|rule| StoreError::Invalid(rule.to_string()))?;
        // Hashed before taking a connection: it takes tens of milliseconds.
        let hash = password::hash(new_password)
            .map_err(|error| StoreError::Backend(format!("hashing the password failed: {error}")))?;
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // Locked so a sign-in of the user in another process cannot start a session between
        // the sessions ending here and the new password.
        let row = tx.query_opt("SELECT name, role FROM users WHERE id = $1 FOR NO KEY UPDATE", &[&user.to_string()])?;
        let row = row.ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
        let (name, role): (String, String) = (row.get(0), row.get(1));
        tx.execute(
            "INSERT INTO console_passwords (user_id, hash, set_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
            &[&user.to_string(), &hash, &now],
        )?;
        tx.execute("DELETE FROM console_throttle WHERE key = $1", &[&account_key(user)])?;
        let sessions_ended = tx.execute("DELETE FROM console_sessions WHERE user_id = $1", &[&user.to_string()])?;
        tx.commit()?;
        Ok(PasswordSet { name, role: parse(&role)?, sessions_ended: sessions_ended as usize })
    }

    /// Reserves one login attempt for `login`, as the console store's `begin_login`: refused
    /// while the login is locked or must wait, else counted as a wrong password until
    /// [`finish_login`](Self::finish_login) says otherwise.
    pub fn begin_login(&self, login: &str, now: Millis, policy: &ConsolePolicy) -> Result<LoginAttempt, StoreError> {
        let typed = normalize_login(login);
        let mut client = self.client()?;
        let account = find_account(&mut *client, &typed)?;
        let key = match &account {
            Some((user, _)) => account_key(*user),
            None => unknown_login_key(&typed),
        };
        // Unknown logins add rows; a day after their last failure they go (unless locked).
        // A statement of its own, skipping rows another process holds: it never waits, and
        // holds nothing while this attempt waits for its own row below (two attempts that
        // swept each other's rows would otherwise wait on each other).
        client.execute(
            "DELETE FROM console_throttle WHERE key IN (
                 SELECT key FROM console_throttle WHERE updated_at < $1 AND locked_until < $2 AND key <> $3
                 FOR UPDATE SKIP LOCKED)",
            &[&(now - DAY_MS), &now, &key],
        )?;
        let mut tx = client.transaction()?;
        // The row of this login, created if missing and locked either way until commit: a
        // second attempt, in this process or another, reads the count only after this one
        // has written it.
        let row = tx.query_one(
            "INSERT INTO console_throttle AS t (key, failures, not_before, locked_until, updated_at)
             VALUES ($1, 0, 0, 0, $2)
             ON CONFLICT (key) DO UPDATE SET key = t.key
             RETURNING failures, not_before, locked_until, updated_at",
            &[&key, &now],
        )?;
        let (failures, not_before, locked_until, updated_at): (i32, Millis, Millis, Millis) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        // A row past its day counts as gone, as the sweep above would have removed it.
        let stale = updated_at < now - DAY_MS && locked_until < now;
        let (failures, not_before, locked_until) =
            if stale { (0, 0, 0) } else { (u32::try_from(failures).unwrap_or(0), not_before, locked_until) };
        // Refusals are not counted: dropping the transaction undoes the row lock's no-op.
        if locked_until > now {
            return Ok(LoginAttempt::Locked { until: locked_until });
        }
        if not_before > now {
            return Ok(LoginAttempt::Wait { until: not_before });
        }
        let failures = failures.saturating_add(1);
        let not_before = now.saturating_add(millis(delay_after(failures, policy)));
        tx.execute(
            "UPDATE console_throttle SET failures = $1, not_before = $2, locked_until = $3, updated_at = $4
             WHERE key = $5",
            &[&i32::try_from(failures).unwrap_or(i32::MAX), &not_before, &locked_until, &now, &key],
        )?;
        let account = match account {
            Some((user, role)) => {
                let password_hash = tx
                    .query_opt("SELECT hash FROM console_passwords WHERE user_id = $1", &[&user.to_string()])?
                    .map(|r| r.get(0));
                Some(Account { user, role, password_hash })
            }
            None => None,
        };
        tx.commit()?;
        Ok(LoginAttempt::Check { key: ThrottleKey(key), account })
    }

    /// Records the outcome of a reserved attempt, as the console store's `finish_login`: a
    /// right password clears the count; a wrong one may lock the login (its end returned).
    pub fn finish_login(
        &self,
        key: &ThrottleKey,
        password_was_right: bool,
        now: Millis,
        policy: &ConsolePolicy,
    ) -> Result<Option<Millis>, StoreError> {
        let mut client = self.client()?;
        if password_was_right {
            client.execute("DELETE FROM console_throttle WHERE key = $1", &[&key.0])?;
            return Ok(None);
        }
        let mut tx = client.transaction()?;
        let failures: u32 = tx
            .query_opt("SELECT failures FROM console_throttle WHERE key = $1 FOR UPDATE", &[&key.0])?
            .map(|r| u32::try_from(r.get::<_, i32>(0)).unwrap_or(0))
            .unwrap_or(1);
        if failures < policy.lock_after {
            // The wait runs from the answer, not from when the check began.
            let not_before = now.saturating_add(millis(delay_after(failures, policy)));
            tx.execute(
                "UPDATE console_throttle SET not_before = GREATEST(not_before, $1), updated_at = $2 WHERE key = $3",
                &[&not_before, &now, &key.0],
            )?;
            tx.commit()?;
            return Ok(None);
        }
        let until = now.saturating_add(millis(policy.lock_for));
        tx.execute(
            "UPDATE console_throttle SET locked_until = $1, updated_at = $2 WHERE key = $3",
            &[&until, &now, &key.0],
        )?;
        tx.commit()?;
        Ok(Some(until))
    }

    /// Starts a session for `user`, ending their oldest past `SESSIONS_PER_USER`; returns
    /// the cookie token and the CSRF token (only the token's hash is stored).
    pub fn create_session(&self, user: UserId, now: Millis, policy: &ConsolePolicy) -> Result<NewSession, StoreError> {
        let session = NewSession { token: secrets::new_token(), csrf: secrets::new_token() };
        let mut client = self.client()?;
        // Sweep every expired session now and then: here, at each sign-in. On its own and
        // skipping rows another process holds, so it never waits nor makes anyone wait.
        client.execute(
            "DELETE FROM console_sessions WHERE token_hash IN (
                 SELECT token_hash FROM console_sessions WHERE last_seen_at <= $1 OR created_at <= $2
                 FOR UPDATE SKIP LOCKED)",
            &[&(now - millis(policy.idle)), &(now - millis(policy.lifetime))],
        )?;
        let mut tx = client.transaction()?;
        // Sign-ins of one user, in any process, one after the other: each sees the sessions
        // the last one left when it trims to the cap.
        if tx.query_opt("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE", &[&user.to_string()])?.is_none() {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        tx.execute(
            "INSERT INTO console_sessions (token_hash, user_id, csrf, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $4)",
            &[&secrets::sha256_hex(&session.token), &user.to_string(), &session.csrf, &now],
        )?;
        tx.execute(
            "DELETE FROM console_sessions WHERE user_id = $1 AND token_hash NOT IN (
                 SELECT token_hash FROM console_sessions WHERE user_id = $1
                 ORDER BY created_at DESC, seq DESC LIMIT $2)",
            &[&user.to_string(), &SESSIONS_PER_USER],
        )?;
        tx.commit()?;
        Ok(session)
    }

    /// The session behind a cookie token and its user as the roster says now, as the console
    /// store's `session`: `None` for an unknown, expired or malformed token, or a user whose
    /// role may no longer use the console.
    pub fn session(
        &self,
        token: &str,
        now: Millis,
        policy: &ConsolePolicy,
    ) -> Result<Option<SessionRecord>, StoreError> {
        if !is_token(token) {
            return Ok(None);
        }
        let token_hash = secrets::sha256_hex(token);
        let mut client = self.client()?;
        let row = client.query_opt(
            "SELECT s.user_id, s.csrf, s.created_at, s.last_seen_at, u.name, u.role, u.scopes
             FROM console_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
            &[&token_hash],
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (user, csrf, created_at, last_seen_at, name, role, scopes): (
            String,
            String,
            Millis,
            Millis,
            String,
            String,
            String,
        ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5), row.get(6));
        let role: Role = parse(&role)?;
        let expired = now - last_seen_at >= millis(policy.idle) || now - created_at >= millis(policy.lifetime);
        if expired || !may_use_console(role) {
            client.execute("DELETE FROM console_sessions WHERE token_hash = $1", &[&token_hash])?;
            return Ok(None);
        }
        if now - last_seen_at >= TOUCH_EVERY_MS {
            // Never moved back by a process whose clock or request is behind another's.
            client.execute(
                "UPDATE console_sessions SET last_seen_at = GREATEST(last_seen_at, $1) WHERE token_hash = $2",
                &[&now, &token_hash],
            )?;
        }
        let scopes: Vec<Scope> = serde_json::from_str(&scopes)?;
        let scope_names = scopes.iter().map(|s| scope_name(&mut *client, *s)).collect::<Result<_, _>>()?;
        Ok(Some(SessionRecord { user: parse(&user)?, name, role, scopes, scope_names, csrf }))
    }

    /// Ends the session behind a cookie token (logout). Unknown and malformed tokens are
    /// ignored.
    pub fn end_session(&self, token: &str) -> Result<(), StoreError> {
        if !is_token(token) {
            return Ok(());
        }
        self.client()?.execute("DELETE FROM console_sessions WHERE token_hash = $1", &[&secrets::sha256_hex(token)])?;
        Ok(())
    }

    /// Where a grid sits in the roster, if it exists.
    pub fn placement_of_grid(&self, grid: GridId) -> Result<Option<Placement>, StoreError> {
        let row = self.client()?.query_opt(
            "SELECT c.street, g.community FROM grids g JOIN communities c ON c.id = g.community WHERE g.id = $1",
            &[&grid.to_string()],
        )?;
        row.map(|r| {
            Ok(Placement {
                street: parse(r.get::<_, &str>(0))?,
                community: parse(r.get::<_, &str>(1))?,
                grid,
                building: None,
            })
        })
        .transpose()
    }

    /// Where a building sits in the roster, if it exists.
    pub fn placement_of_building(&self, building: BuildingId) -> Result<Option<Placement>, StoreError> {
        let row = self.client()?.query_opt(
            "SELECT c.street, g.community, b.grid FROM buildings b JOIN grids g ON g.id = b.grid
             JOIN communities c ON c.id = g.community WHERE b.id = $1",
            &[&building.to_string()],
        )?;
        row.map(|r| {
            Ok(Placement {
                street: parse::<StreetId>(r.get::<_, &str>(0))?,
                community: parse::<CommunityId>(r.get::<_, &str>(1))?,
                grid: parse(r.get::<_, &str>(2))?,
                building: Some(building),
            })
        })
        .transpose()
    }

    /// The grids and buildings `scopes` cover, for filtering lists.
    pub fn covered_area(&self, scopes: &[Scope]) -> Result<CoveredArea, StoreError> {
        let mut client = self.client()?;
        let mut area = CoveredArea::default();
        for scope in scopes {
            let (sql, id) = match scope {
                Scope::Street(id) => (
                    "SELECT g.id FROM grids g JOIN communities c ON c.id = g.community WHERE c.street = $1",
                    id.to_string(),
                ),
                Scope::Community(id) => ("SELECT id FROM grids WHERE community = $1", id.to_string()),
                Scope::Grid(id) => ("SELECT id FROM grids WHERE id = $1", id.to_string()),
                Scope::Building(id) => {
                    area.buildings.insert(*id);
                    continue;
                }
            };
            for row in client.query(sql, &[&id])? {
                area.grids.insert(parse(row.get::<_, &str>(0))?);
            }
        }
        Ok(area)
    }
}

/// The account a normalized login names: by user id, else by phone number when exactly one
/// user has it (as SQLite's `find_account`).
fn find_account(client: &mut impl GenericClient, typed: &str) -> Result<Option<(UserId, Role)>, StoreError> {
    // PostgreSQL text cannot hold a NUL byte (a query with one fails), and so no phone has one.
    if typed.is_empty() || typed.contains('\0') {
        return Ok(None);
    }
    let rows = if let Ok(user) = typed.parse::<UserId>() {
        client.query("SELECT id, role FROM users WHERE id = $1", &[&user.to_string()])?
    } else {
        client.query(
            "SELECT id, role FROM users WHERE phone <> '' AND REPLACE(REPLACE(phone, '-', ''), ' ', '') = $1 LIMIT 2",
            &[&typed],
        )?
    };
    match rows.as_slice() {
        [row] => Ok(Some((parse(row.get::<_, &str>(0))?, parse(row.get::<_, &str>(1))?))),
        _ => Ok(None),
    }
}

fn scope_name(client: &mut impl GenericClient, scope: Scope) -> Result<ScopeName, StoreError> {
    let (sql, id) = match scope {
        Scope::Street(id) => ("SELECT name FROM streets WHERE id = $1", id.to_string()),
        Scope::Community(id) => ("SELECT name FROM communities WHERE id = $1", id.to_string()),
        Scope::Grid(id) => ("SELECT name FROM grids WHERE id = $1", id.to_string()),
        Scope::Building(id) => ("SELECT name FROM buildings WHERE id = $1", id.to_string()),
    };
    let name: Option<String> = client.query_opt(sql, &[&id])?.map(|r| r.get(0));
    Ok(ScopeName { scope, name: name.unwrap_or_else(|| scope.to_string()) })
}

/// The console on PostgreSQL: each call is the inherent method above (inherent methods win
/// over the trait's, so these do not recurse).
impl ConsoleStore for PgStore {
    fn begin_login(&self, login: &str, now: Millis, policy: &ConsolePolicy) -> Result<LoginAttempt, StoreError> {
        self.begin_login(login, now, policy)
    }

    fn finish_login(
        &self,
        key: &ThrottleKey,
        password_was_right: bool,
        now: Millis,
        policy: &ConsolePolicy,
    ) -> Result<Option<Millis>, StoreError> {
        self.finish_login(key, password_was_right, now, policy)
    }

    fn create_session(&self, user: UserId, now: Millis, policy: &ConsolePolicy) -> Result<NewSession, StoreError> {
        self.create_session(user, now, policy)
    }

    fn session(&self, token: &str, now: Millis, policy: &ConsolePolicy) -> Result<Option<SessionRecord>, StoreError> {
        self.session(token, now, policy)
    }

    fn end_session(&self, token: &str) -> Result<(), StoreError> {
        self.end_session(token)
    }

    fn placement_of_grid(&self, grid: GridId) -> Result<Option<Placement>, StoreError> {
        self.placement_of_grid(grid)
    }

    fn placement_of_building(&self, building: BuildingId) -> Result<Option<Placement>, StoreError> {
        self.placement_of_building(building)
    }

    fn covered_area(&self, scopes: &[Scope]) -> Result<CoveredArea, StoreError> {
        self.covered_area(scopes)
    }

    fn any(&self) -> AnyStore<'_> {
        AnyStore::Postgres(self)
    }
}
