//! The web console's case actions on PostgreSQL: the backend-neutral action
//! ([`crate::store::console_write`]'s `act_on_case`) on the push transaction, with the case's
//! document lock taken first (as a phone's push takes it), so an action and a phone's change to
//! the same case never build on the same stale copy, whichever server process runs them.

use gridlink_shared::time::Millis;
use gridlink_shared::{CaseId, DeviceId, GridId, Staff, UserId};
use postgres::GenericClient;

use super::push::PgPush;
use super::{PUSH_ATTEMPTS, PgStore, load_device, load_staff};
use crate::secrets;
use crate::store::console_write::{ActTarget, act_on_case};
use crate::store::sqlite::parse_id;
use crate::store::{ActOutcome, AuthedDevice, CaseAct, StoreError};

impl ActTarget for PgPush<'_, '_> {
    fn staff(&mut self, user: UserId) -> Result<Option<Staff>, StoreError> {
        load_staff(self.tx(), user)
    }

    fn grid_workers(&mut self, grid: GridId) -> Result<Vec<(UserId, String)>, StoreError> {
        super::facts::grid_workers(self.tx(), grid)
    }

    fn server_device(
        &mut self,
        user: UserId,
        prefix: &str,
        name: &str,
        now: Millis,
    ) -> Result<AuthedDevice, StoreError> {
        server_device(self.tx(), user, prefix, name, now)
    }
}

/// A device the server itself writes through for `user` (the console's, the e-link's), as
/// SQLite's `console_write::server_device`: the newest not revoked whose token hash starts with
/// `prefix`, created on first use. Two processes creating one at once make two; the newer is
/// used from then on, and both are the server's.
pub(super) fn server_device(
    client: &mut impl GenericClient,
    user: UserId,
    prefix: &str,
    name: &str,
    now: Millis,
) -> Result<AuthedDevice, StoreError> {
    let found = client.query_opt(
        "SELECT id FROM devices WHERE user_id = $1 AND revoked_at IS NULL AND token_hash LIKE $2
         ORDER BY created_at DESC, id LIMIT 1",
        &[&user.to_string(), &format!("{prefix}%")],
    )?;
    let device: DeviceId = match found {
        Some(row) => parse_id(row.get::<_, &str>(0))?,
        None => {
            let device = DeviceId::new();
            client.execute(
                "INSERT INTO devices (id, user_id, name, token_hash, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &device.to_string(),
                    &user.to_string(),
                    &name,
                    &format!("{prefix}{}", secrets::new_token()),
                    &secrets::new_actor_hex(),
                    &now,
                ],
            )?;
            device
        }
    };
    load_device(client, device)
}

impl PgStore {
    /// Does `act` to case `case` as console user `user`, at `now`, as
    /// `SqliteStore::console_case_action` does.
    pub fn console_case_action(
        &self,
        user: UserId,
        case: CaseId,
        act: &CaseAct,
        now: Millis,
    ) -> Result<ActOutcome, StoreError> {
        let mut client = self.client()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = (|| {
                let mut tx = client.transaction()?;
                let mut target = PgPush::new(&mut tx);
                target.lock_documents(std::iter::once(case.into()))?;
                let outcome = act_on_case(&mut target, user, case, act, now)?;
                tx.commit()?;
                Ok(outcome)
            })();
            match result {
                Err(StoreError::Retryable(message)) if attempt < PUSH_ATTEMPTS => {
                    tracing::warn!(%user, %case, attempt, %message, "console action aborted by PostgreSQL; retrying");
                }
                other => return other,
            }
        }
    }
}
