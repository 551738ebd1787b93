//! Lost or stolen phones: remote wipe and the recovery secret.
//!
//! `device wipe` marks a device (or every phone of a user) for wipe and revokes it. From then
//! on every request with its token is answered 410 `device-wiped` ([`StoreError::DeviceWiped`])
//! before anything else is read, and the first such answer is recorded as delivered; the
//! device keeps being told, so one that lost the reply still wipes at its next contact.
//! `device revoke` is different: 401 `device-revoked`, and the device keeps its data for a
//! handover.
//!
//! The recovery secret (32 random bytes, hex, made at enrolment) lets an admin recover the
//! unsent changes of a device that wiped its PIN-wrapped key (`device recovery-key`).

use gridlink_shared::time::Millis;
use gridlink_shared::{DeviceId, UserId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::security::{Origin, SecurityEvent, SecurityKind, record};
use super::sqlite::load_staff;
use super::{SqliteStore, StoreError};

/// Devices the console signs with (`token_hash` `console:...`) are not phones: never wiped.
const PHONES_ONLY: &str = "token_hash NOT LIKE 'console:%'";

/// If `device` is marked for wipe: records the first delivery (and audits it) and answers
/// [`StoreError::DeviceWiped`]. Called right after the token is recognised, outside any
/// transaction.
pub(super) fn refuse_if_wiped(conn: &Connection, device: &str, now: Millis) -> Result<(), StoreError> {
    let marks: Option<(Option<i64>, Option<i64>, String)> = conn
        .prepare_cached("SELECT wipe_requested_at, wipe_delivered_at, user_id FROM devices WHERE id = ?1")?
        .query_row([device], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((Some(_), delivered, user)) = marks else {
        return Ok(());
    };
    if delivered.is_none() {
        // The delivery and its audit event together (called outside any transaction).
        let tx = conn.unchecked_transaction()?;
        let first = tx.execute(
            "UPDATE devices SET wipe_delivered_at = ?1 WHERE id = ?2 AND wipe_delivered_at IS NULL",
            params![now, device],
        )? == 1;
        if let (true, Ok(device_id), Ok(user_id)) = (first, device.parse::<DeviceId>(), user.parse::<UserId>()) {
            let event = SecurityEvent::new(SecurityKind::WipeDelivered, Origin::Device(device_id))
                .user(user_id)
                .device(device_id);
            record(&tx, &event, now)?;
        }
        tx.commit()?;
    }
    Err(StoreError::DeviceWiped)
}

impl SqliteStore {
    /// Marks one phone for wipe (and revokes it). Returns false if it was already marked.
    pub fn wipe_device(&self, device: DeviceId, now: Millis) -> Result<bool, StoreError> {
        self.with_conn(|conn| {
            let found: Option<(Option<i64>, bool)> = conn
                .query_row(
                    &format!("SELECT wipe_requested_at, NOT ({PHONES_ONLY}) FROM devices WHERE id = ?1"),
                    [device.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match found {
                None => Err(StoreError::NotFound(format!("device {device}"))),
                Some((_, true)) => Err(StoreError::Invalid(format!(
                    "device {device} signs web console actions on the server; it is not a phone and cannot be wiped"
                ))),
                Some((Some(_), false)) => Ok(false),
                Some((None, false)) => {
                    conn.execute(
                        "UPDATE devices SET wipe_requested_at = ?1, revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2",
                        params![now, device.to_string()],
                    )?;
                    Ok(true)
                }
            }
        })
    }

    /// Marks every phone of a user for wipe (revoked ones too: a phone revoked when it was
    /// lost still wipes if it ever comes back), ends their console sessions and expires their
    /// unused codes, as `revoke --user` does. Returns how many were newly marked.
    pub fn wipe_user_devices(&self, user: UserId, now: Millis) -> Result<usize, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if load_staff(&tx, user)?.is_none() {
                return Err(StoreError::NotFound(format!("user {user}")));
            }
            let n = tx.execute(
                &format!(
                    "UPDATE devices SET wipe_requested_at = ?1, revoked_at = COALESCE(revoked_at, ?1)
                     WHERE user_id = ?2 AND wipe_requested_at IS NULL AND {PHONES_ONLY}"
                ),
                params![now, user.to_string()],
            )?;
            tx.execute("DELETE FROM console_sessions WHERE user_id = ?1", [user.to_string()])?;
            tx.execute(
                "UPDATE enrol_codes SET expires_at = MIN(expires_at, ?1) WHERE user_id = ?2 AND used_at IS NULL",
                params![now, user.to_string()],
            )?;
            tx.commit()?;
            Ok(n)
        })
    }

    /// The user a device belongs to (for the audit of an action on the device).
    pub fn device_user(&self, device: DeviceId) -> Result<UserId, StoreError> {
        let user: Option<String> = self.with_conn(|conn| {
            Ok(conn
                .query_row("SELECT user_id FROM devices WHERE id = ?1", [device.to_string()], |r| r.get(0))
                .optional()?)
        })?;
        super::sqlite::parse_id(&user.ok_or_else(|| StoreError::NotFound(format!("device {device}")))?)
    }

    /// The device's recovery secret (hex) and its user; `None` for a device enrolled before
    /// the server made them.
    pub fn recovery_key(&self, device: DeviceId) -> Result<(UserId, Option<String>), StoreError> {
        self.with_conn(|conn| {
            let found: Option<(String, Option<String>)> = conn
                .query_row("SELECT user_id, recovery_secret FROM devices WHERE id = ?1", [device.to_string()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let (user, secret) = found.ok_or_else(|| StoreError::NotFound(format!("device {device}")))?;
            Ok((super::sqlite::parse_id(&user)?, secret))
        })
    }
}
