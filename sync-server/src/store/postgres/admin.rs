//! The admin operations `gridlink-server` offers on PostgreSQL besides those in `mod.rs`
//! (users, codes, scopes): listing users and devices, revoking and wiping devices, recovery
//! keys, the security audit record of each CLI action and the audit listing (its query and
//! entries are `store/security.rs`'s, shared). Same rules and answers as SQLite's
//! (`store/sqlite.rs`, `store/wipe.rs`, `store/security.rs`), so the CLI prints the same for
//! both.

use gridlink_shared::protocol::DeviceHealth;
use gridlink_shared::time::Millis;
use gridlink_shared::{DeviceId, UserId};

use postgres::Transaction;

use super::{PgStore, load_staff, record_security};
use crate::store::compact::{CompactTarget, compact};
use crate::store::security::{AuditRow, audit_query, check_filter, limit_of};
use crate::store::sqlite::{parse_code, parse_id};
use crate::store::{AuditEntry, AuditFilter, DeviceRow, SecurityEvent, StoreError, UserRow};

/// Server-side signing devices (console, e-link) are not phones: never wiped, not counted.
/// PostgreSQL has none yet; the condition keeps the answers equal once it has.
const PHONES_ONLY: &str = "token_hash NOT LIKE 'console:%' AND token_hash NOT LIKE 'elink:%'";

impl PgStore {
    /// Users with their count of active phones, in `user list` order.
    pub fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query(
            &format!(
                "SELECT u.id, u.name, u.role, u.phone, u.scopes,
                        (SELECT COUNT(*) FROM devices d
                         WHERE d.user_id = u.id AND d.revoked_at IS NULL AND {PHONES_ONLY})
                 FROM users u ORDER BY u.role, u.name, u.id"
            ),
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(UserRow {
                    id: parse_id(r.get::<_, &str>(0))?,
                    name: r.get(1),
                    role: parse_code(r.get::<_, &str>(2))?,
                    phone: r.get(3),
                    scopes: serde_json::from_str(r.get::<_, &str>(4))?,
                    active_devices: r.get::<_, i64>(5).max(0) as u64,
                })
            })
            .collect()
    }

    /// Every device, oldest first, as `device list` shows it.
    pub fn list_devices(&self) -> Result<Vec<DeviceRow>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query(
            &format!(
                "SELECT d.id, d.user_id, u.name, d.name, d.actor, d.created_at, d.revoked_at, d.last_sync_at,
                        d.last_device_time, d.app_version, d.unsent, d.rejected, d.quarantined,
                        NOT ({PHONES_ONLY}), d.wipe_requested_at, d.wipe_delivered_at
                 FROM devices d JOIN users u ON u.id = d.user_id ORDER BY d.created_at, d.id"
            ),
            &[],
        )?;
        let count = |r: &postgres::Row, i: usize| r.get::<_, Option<i64>>(i).unwrap_or(0).max(0) as u64;
        rows.iter()
            .map(|r| {
                let health = r.get::<_, Option<String>>(9).map(|app_version| DeviceHealth {
                    app_version,
                    unsent: count(r, 10),
                    rejected: count(r, 11),
                    quarantined: count(r, 12),
                });
                Ok(DeviceRow {
                    id: parse_id(r.get::<_, &str>(0))?,
                    user: parse_id(r.get::<_, &str>(1))?,
                    user_name: r.get(2),
                    name: r.get(3),
                    actor: r.get(4),
                    created_at: r.get(5),
                    revoked_at: r.get(6),
                    last_sync_at: r.get(7),
                    last_device_time: r.get(8),
                    health,
                    console: r.get(13),
                    wipe_requested_at: r.get(14),
                    wipe_delivered_at: r.get(15),
                })
            })
            .collect()
    }

    /// Revokes one device; its token stops working at the next request, in every process.
    pub fn revoke_device(&self, device: DeviceId, now: Millis) -> Result<(), StoreError> {
        let mut client = self.client()?;
        let found = client.query_opt(
            "UPDATE devices SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING id",
            &[&now, &device.to_string()],
        )?;
        found.map(|_| ()).ok_or_else(|| StoreError::NotFound(format!("device {device}")))
    }

    /// Marks one phone for wipe (and revokes it). Returns false if it was already marked.
    pub fn wipe_device(&self, device: DeviceId, now: Millis) -> Result<bool, StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let found = tx.query_opt(
            &format!("SELECT wipe_requested_at, NOT ({PHONES_ONLY}) FROM devices WHERE id = $1 FOR UPDATE"),
            &[&device.to_string()],
        )?;
        let Some(found) = found else {
            return Err(StoreError::NotFound(format!("device {device}")));
        };
        if found.get::<_, bool>(1) {
            return Err(StoreError::Invalid(format!(
                "device {device} signs web console actions on the server; it is not a phone and cannot be wiped"
            )));
        }
        if found.get::<_, Option<i64>>(0).is_some() {
            return Ok(false);
        }
        tx.execute(
            "UPDATE devices SET wipe_requested_at = $1, revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
            &[&now, &device.to_string()],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Marks every phone of a user for wipe (revoked ones too) and expires their unused
    /// codes, as SQLite's `wipe_user_devices` does. Returns how many were newly marked.
    pub fn wipe_user_devices(&self, user: UserId, now: Millis) -> Result<usize, StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        if load_staff(&mut tx, user)?.is_none() {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        let n = tx.execute(
            &format!(
                "UPDATE devices SET wipe_requested_at = $1, revoked_at = COALESCE(revoked_at, $1)
                 WHERE user_id = $2 AND wipe_requested_at IS NULL AND {PHONES_ONLY}"
            ),
            &[&now, &user.to_string()],
        )?;
        tx.execute("DELETE FROM console_sessions WHERE user_id = $1", &[&user.to_string()])?;
        tx.execute(
            "UPDATE enrol_codes SET expires_at = LEAST(expires_at, $1) WHERE user_id = $2 AND used_at IS NULL",
            &[&now, &user.to_string()],
        )?;
        tx.commit()?;
        Ok(n as usize)
    }

    /// The user a device belongs to (for the audit of an action on the device).
    pub fn device_user(&self, device: DeviceId) -> Result<UserId, StoreError> {
        let mut client = self.client()?;
        let row = client.query_opt("SELECT user_id FROM devices WHERE id = $1", &[&device.to_string()])?;
        parse_id(row.ok_or_else(|| StoreError::NotFound(format!("device {device}")))?.get::<_, &str>(0))
    }

    /// Records a security event (an admin action of the CLI) in the audit table.
    pub fn record_security(&self, event: &SecurityEvent, now: Millis) -> Result<(), StoreError> {
        record_security(&mut *self.client()?, event, now)
    }

    /// The security events, accepted changes and refused pushes that match `filter`, newest
    /// first, as SQLite's `audit_log` lists them.
    pub fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        check_filter(filter)?;
        let mut client = self.client()?;
        let rows = client.query(
            &audit_query(|n| format!("${n}")),
            &[
                &filter.user.map(|u| u.to_string()),
                &filter.device.map(|d| d.to_string()),
                &filter.since,
                &filter.kind,
                &limit_of(filter),
            ],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                AuditRow {
                    at: r.get(0),
                    source: r.get(1),
                    kind: r.get(2),
                    user: r.get(3),
                    device: r.get(4),
                    origin: r.get(5),
                    detail: r.get(6),
                    change_hash: r.get(7),
                    doc_id: r.get(8),
                    device_time: r.get(9),
                    change_time: r.get(10),
                    code: r.get(11),
                    message: r.get(12),
                    bytes_len: r.get(13),
                }
                .entry()
            })
            .collect())
    }

    /// A device's user and recovery key (`None` for a device enrolled before keys were kept).
    pub fn recovery_key(&self, device: DeviceId) -> Result<(UserId, Option<String>), StoreError> {
        let mut client = self.client()?;
        let row =
            client.query_opt("SELECT user_id, recovery_secret FROM devices WHERE id = $1", &[&device.to_string()])?;
        let row = row.ok_or_else(|| StoreError::NotFound(format!("device {device}")))?;
        Ok((parse_id(row.get::<_, &str>(0))?, row.get(1)))
    }

    /// Compacts every scope log to its newest `keep` entries, as SQLite's `compact` does
    /// (`store/compact.rs`), in one transaction. Pushes keep running: a push in flight holds
    /// log numbers above the committed entries compaction reads, so it loses nothing, and
    /// readers see the floor and the shorter log together (one snapshot each).
    pub fn compact(&self, keep: u64) -> Result<(usize, usize), StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let removed = compact(&mut PgCompact(&mut tx), keep)?;
        tx.commit()?;
        Ok(removed)
    }
}

struct PgCompact<'a, 'b>(&'a mut Transaction<'b>);

impl CompactTarget for PgCompact<'_, '_> {
    fn log_heads(&mut self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = self.0.query("SELECT scope, MAX(seq) FROM scope_log GROUP BY scope", &[])?;
        Ok(rows.iter().map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64)).collect())
    }

    fn cut(&mut self, scope: &str, floor: u64) -> Result<usize, StoreError> {
        let floor = i64::try_from(floor).map_err(|_| StoreError::Backend(format!("floor {floor} of {scope}")))?;
        let deleted = self.0.execute("DELETE FROM scope_log WHERE scope = $1 AND seq <= $2", &[&scope, &floor])?;
        self.0.execute(
            "INSERT INTO scope_floor (scope, floor) VALUES ($1, $2)
             ON CONFLICT (scope) DO UPDATE SET floor = GREATEST(scope_floor.floor, excluded.floor)",
            &[&scope, &floor],
        )?;
        Ok(deleted as usize)
    }

    fn drop_unlogged_changes(&mut self) -> Result<usize, StoreError> {
        Ok(self.0.execute(
            "DELETE FROM changes c WHERE NOT EXISTS (SELECT 1 FROM scope_log l WHERE l.change_hash = c.hash)",
            &[],
        )? as usize)
    }
}
