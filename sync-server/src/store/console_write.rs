//! Supervisor actions from the web console (结案回访, 重新打开, 转派, 备注) as automerge changes
//! that take the phones' road into the store.
//!
//! Each console user gets a server-side *console device*: a `devices` row named "管理后台" with
//! its own actor id and a token hash no token can have (`console:` and random hex, never a
//! SHA-256 output), so nobody can sync as it. An action is one change built on the server's
//! copy of the case with that actor and pushed through the sync endpoint's own executor
//! ([`super::push::execute`]), inside one transaction: the same byte checks, the same shared
//! validator as the user's principal, the same scope-log entries (the phones pull it at their
//! next sync) and the same audit row, or the same reject code and refusal row. Nothing here
//! writes a document, a log entry or an audit row itself. [`act_on_case`] is the action on
//! either backend; each backend lends it its push target ([`ActTarget`]) and its transaction.

use std::collections::BTreeMap;

use automerge::ActorId;
use gridlink_shared::codes::{ActionKind, CaseStatus};
use gridlink_shared::protocol::{AckStatus, PROTOCOL_VERSION, PushChange, SyncRequest};
use gridlink_shared::time::Millis;
use gridlink_shared::{Action, ActionId, CaseFile, CaseId, DeviceId, GridId, RejectCode, Staff, UserId, doc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::console_read::grid_workers;
use super::push::{LogAppender, PushTarget, SqlitePush, execute};
use super::sqlite::{load_staff, parse_id};
use super::{AuthedDevice, PushLimits, SqliteStore, StoreError};
use crate::secrets;

/// The name of every console device, as `device list` and the sync page show it.
pub const CONSOLE_DEVICE_NAME: &str = "管理后台";

/// Prefix of a console device's token hash: SHA-256 hashes are plain hex, so no token ever
/// matches one.
pub const CONSOLE_TOKEN_PREFIX: &str = "console:";

/// The longest note (or reason) an action may carry, as the shared validator allows.
pub const MAX_NOTE_CHARS: usize = 2000;

/// What a supervisor does to a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseAct {
    /// 结案回访: verify and close, with the resident's satisfaction (1–5).
    Close { satisfaction: u8, note: String },
    /// 重新打开: reopen a resolved or closed case, with the reason.
    Reopen { reason: String },
    /// 转派: hand the case to a grid worker of its grid.
    Reassign { to: UserId, note: String },
    /// 备注: a comment on the timeline.
    Comment { note: String },
}

impl CaseAct {
    fn kind(&self) -> ActionKind {
        match self {
            CaseAct::Close { .. } => ActionKind::Close,
            CaseAct::Reopen { .. } => ActionKind::Reopen,
            CaseAct::Reassign { .. } => ActionKind::Reassign,
            CaseAct::Comment { .. } => ActionKind::Comment,
        }
    }

    fn note(&self) -> &str {
        match self {
            CaseAct::Close { note, .. } | CaseAct::Reassign { note, .. } | CaseAct::Comment { note } => note,
            CaseAct::Reopen { reason } => reason,
        }
    }
}

/// Why an action was not even built: the input or the case's state does not allow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActProblem {
    /// The note is longer than [`MAX_NOTE_CHARS`].
    NoteTooLong { chars: usize },
    /// A reopening needs a reason, a comment needs text.
    NoteRequired,
    /// Satisfaction outside 1–5.
    BadScore,
    /// The case is closed already.
    AlreadyClosed,
    /// Only a resolved or closed case can be reopened.
    NotDone,
    /// Only an open case can be handed on.
    NotOpen,
    /// The chosen person is not a grid worker of the case's grid.
    NotAGridWorker,
    /// The chosen person is responsible already.
    AlreadyResponsible,
}

/// The result of [`SqliteStore::console_case_action`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActOutcome {
    /// Stored, logged to the case's scopes and audited; the change's hash.
    Accepted { hash: String },
    /// Refused before a change was built; nothing stored.
    Problem(ActProblem),
    /// Built and refused by the push path (the same code a phone would get); only the refusal
    /// row is stored.
    Rejected { code: RejectCode, message: String },
}

/// What a console action needs from a backend beyond the push path, inside the push
/// transaction (SQLite: [`SqlitePush`]; PostgreSQL: `postgres/console_write.rs`).
pub(super) trait ActTarget: PushTarget {
    /// The staff member as the roster says now.
    fn staff(&mut self, user: UserId) -> Result<Option<Staff>, StoreError>;
    /// The grid workers of `grid`, by name.
    fn grid_workers(&mut self, grid: GridId) -> Result<Vec<(UserId, String)>, StoreError>;
    /// The device the server writes through for `user` (see [`server_device`]).
    fn server_device(
        &mut self,
        user: UserId,
        prefix: &str,
        name: &str,
        now: Millis,
    ) -> Result<AuthedDevice, StoreError>;
}

impl ActTarget for SqlitePush<'_> {
    fn staff(&mut self, user: UserId) -> Result<Option<Staff>, StoreError> {
        load_staff(self.conn, user)
    }

    fn grid_workers(&mut self, grid: GridId) -> Result<Vec<(UserId, String)>, StoreError> {
        grid_workers(self.conn, grid)
    }

    fn server_device(
        &mut self,
        user: UserId,
        prefix: &str,
        name: &str,
        now: Millis,
    ) -> Result<AuthedDevice, StoreError> {
        server_device(self.conn, user, prefix, name, now)
    }
}

impl SqliteStore {
    /// Does `act` to case `case` as console user `user`, at `now`. `NotFound` when there is no
    /// such case or the user's scopes (read afresh) do not cover it: the same answer for both.
    pub fn console_case_action(
        &self,
        user: UserId,
        case: CaseId,
        act: &CaseAct,
        now: Millis,
    ) -> Result<ActOutcome, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let outcome =
                act_on_case(&mut SqlitePush { conn: &tx, log: LogAppender::default() }, user, case, act, now)?;
            tx.commit()?;
            Ok(outcome)
        })
    }
}

/// The action, on either backend, inside the caller's transaction (which the caller commits
/// on `Ok`): read the case and the user afresh, check, build one change with the user's console
/// device as actor, and push it through the phones' executor. A refusal is committed too (its
/// row), as for a phone; a [`ActOutcome::Problem`] writes nothing.
pub(super) fn act_on_case(
    target: &mut impl ActTarget,
    user: UserId,
    case: CaseId,
    act: &CaseAct,
    now: Millis,
) -> Result<ActOutcome, StoreError> {
    let not_found = || StoreError::NotFound(format!("case {case}"));
    let staff = target.staff(user)?.ok_or_else(not_found)?;
    let principal = staff.principal();
    let bytes = target.doc_bytes(case.into())?.ok_or_else(not_found)?;
    let mut automerge_doc = doc::guarded("loading the stored case", || doc::load(&bytes))
        .map_err(|e| StoreError::Backend(format!("stored case {case} does not load: {e}")))?;
    // A household's id, or a case that no longer reads, is no case to act on.
    let before: CaseFile = match doc::guarded("reading the stored case", || doc::read(&automerge_doc)) {
        Ok(before) => before,
        Err(_) => return Err(not_found()),
    };
    if !principal.covers(&before.placement) {
        return Err(not_found());
    }
    if let Some(problem) = problem_with(target, &before, act)? {
        return Ok(ActOutcome::Problem(problem));
    }

    let device = target.server_device(user, CONSOLE_TOKEN_PREFIX, CONSOLE_DEVICE_NAME, now)?;
    let actor = hex::decode(&device.actor).map_err(|e| StoreError::Backend(format!("console device actor: {e}")))?;
    automerge_doc.set_actor(ActorId::from(actor));
    let mut after = before.clone();
    let (to, to_name) = match act {
        CaseAct::Reassign { to, .. } => {
            let name =
                target.grid_workers(before.placement.grid)?.into_iter().find(|(id, _)| id == to).map(|(_, name)| name);
            (Some(*to), name)
        }
        _ => (None, None),
    };
    after.push_action(Action {
        id: ActionId::new(),
        kind: act.kind(),
        by: staff.id,
        by_name: staff.name.clone(),
        at: now,
        lamport: 0,
        note: act.note().trim().to_string(),
        satisfaction: match act {
            CaseAct::Close { satisfaction, .. } => Some(*satisfaction),
            _ => None,
        },
        to,
        to_name,
        claimant: None,
        outlet: None,
    });
    let message = format!("console: {}", act.kind().code());
    let changed = doc::guarded("writing the action", || doc::update(&mut automerge_doc, &after, &message, now))
        .map_err(|e| StoreError::Backend(format!("building the console change: {e}")))?;
    if changed.is_none() {
        return Err(StoreError::Backend("the console action changed nothing".into()));
    }
    let change = automerge_doc
        .get_last_local_change()
        .ok_or_else(|| StoreError::Backend("the console change is missing".into()))?;
    let request = SyncRequest {
        protocol: PROTOCOL_VERSION,
        cursors: BTreeMap::new(),
        changes: vec![PushChange { doc: case.into(), bytes: change.raw_bytes().to_vec() }],
        page_bytes: None,
        repair: Vec::new(),
        reference_version: None,
        device_time: now,
        health: None,
        verify: Vec::new(),
        compact_acks: false,
    };
    let pushed = execute(target, &device, &request, &PushLimits::default(), now)?;
    let ack =
        pushed.acks.into_iter().next().ok_or_else(|| StoreError::Backend("no ack for the console change".into()))?;
    // Either way the caller commits: an accepted change with its log entries and audit row, or
    // a refusal row, as for a phone.
    match ack.status {
        AckStatus::Accepted => Ok(ActOutcome::Accepted { hash: ack.hash }),
        AckStatus::Rejected { code, message } => Ok(ActOutcome::Rejected { code, message }),
        AckStatus::Duplicate => Err(StoreError::Backend("a fresh console change was taken for a duplicate".into())),
    }
}

/// What stops `act` on `case` before a change is built, if anything.
fn problem_with(target: &mut impl ActTarget, case: &CaseFile, act: &CaseAct) -> Result<Option<ActProblem>, StoreError> {
    let note = act.note().trim();
    let chars = note.chars().count();
    if chars > MAX_NOTE_CHARS {
        return Ok(Some(ActProblem::NoteTooLong { chars }));
    }
    let status = case.status();
    let problem = match act {
        CaseAct::Close { satisfaction, .. } if !(1..=5).contains(satisfaction) => Some(ActProblem::BadScore),
        CaseAct::Close { .. } if status == CaseStatus::Closed => Some(ActProblem::AlreadyClosed),
        CaseAct::Reopen { .. } if note.is_empty() => Some(ActProblem::NoteRequired),
        CaseAct::Reopen { .. } if case.is_open() => Some(ActProblem::NotDone),
        CaseAct::Reassign { .. } if !case.is_open() => Some(ActProblem::NotOpen),
        CaseAct::Reassign { to, .. } if case.responsible().0 == *to => Some(ActProblem::AlreadyResponsible),
        CaseAct::Reassign { to, .. } => {
            let workers = target.grid_workers(case.placement.grid)?;
            (!workers.iter().any(|(id, _)| id == to)).then_some(ActProblem::NotAGridWorker)
        }
        CaseAct::Comment { .. } if note.is_empty() => Some(ActProblem::NoteRequired),
        _ => None,
    };
    Ok(problem)
}

/// A device the server itself writes through for `user` (the console's, the e-link's): the
/// newest not revoked whose token hash starts with `prefix`, created on first use. No token
/// hashes to such a value, so nobody can sync as it.
pub(super) fn server_device(
    conn: &Connection,
    user: UserId,
    prefix: &str,
    name: &str,
    now: Millis,
) -> Result<AuthedDevice, StoreError> {
    let found: Option<String> = conn
        .query_row(
            "SELECT id FROM devices WHERE user_id = ?1 AND revoked_at IS NULL AND token_hash LIKE ?2
             ORDER BY created_at DESC LIMIT 1",
            params![user.to_string(), format!("{prefix}%")],
            |r| r.get(0),
        )
        .optional()?;
    let device = match found {
        Some(id) => parse_id(&id)?,
        None => {
            let device = DeviceId::new();
            conn.execute(
                "INSERT INTO devices (id, user_id, name, token_hash, actor, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    device.to_string(),
                    user.to_string(),
                    name,
                    format!("{prefix}{}", secrets::new_token()),
                    secrets::new_actor_hex(),
                    now
                ],
            )?;
            device
        }
    };
    super::sqlite::load_device(conn, device)
}
