//! Test and demo fixtures without a server: a real encrypted store filled with
//! `gridlink_shared::demo` data as if it had been synced, for UI component tests and demos.
//!
//! ```
//! use gridlink_client::fixtures;
//! use gridlink_shared::Role;
//! let dir = tempfile::tempdir().unwrap();
//! let (client, demo) = fixtures::demo_client(dir.path(), Role::GridWorker, fixtures::DEMO_NOW).unwrap();
//! let today = client.today(demo.now).unwrap();
//! assert!(!client.households(&Default::default(), demo.now).unwrap().is_empty());
//! # let _ = today;
//! ```

use std::path::Path;

use gridlink_shared::demo::{self, DemoData, DemoSize};
use gridlink_shared::time::Millis;
use gridlink_shared::{AnyDoc, Principal, Role};

use crate::Client;
use crate::error::{Error, Result};

/// 2026-11-28 09:00 in Asia/Shanghai: the default "now" of fixtures.
pub const DEMO_NOW: Millis = 1_795_827_600_000;

/// The seed fixtures use, so every run sees the same people and addresses.
pub const DEMO_SEED: u64 = 7;

/// The documents of `data` that `principal` would receive from the server.
pub fn documents_for(data: &DemoData, principal: &Principal) -> Vec<AnyDoc> {
    let households = data.households.iter().cloned().map(AnyDoc::Household);
    let cases = data.cases.iter().cloned().map(AnyDoc::Case);
    let activities = data.activities.iter().cloned().map(AnyDoc::Activity);
    households
        .chain(cases)
        .chain(activities)
        .filter(|doc| doc.scopes().iter().any(|scope| principal.scopes.contains(scope)))
        .collect()
}

/// Opens a store in `dir` holding the small demo dataset as seen by the first staff member
/// with `role`, as if enrolled and synced (no server, nothing unsent).
pub fn demo_client(dir: &Path, role: Role, now: Millis) -> Result<(Client, DemoData)> {
    let data = demo::generate(DemoSize::Small, DEMO_SEED, now);
    let staff = data
        .staff_with_role(role)
        .next()
        .ok_or_else(|| Error::Input(format!("the demo roster has no {}", role.en())))?
        .clone();
    let principal = staff.principal();
    let docs = documents_for(&data, &principal);
    let client = Client::open_with_documents(dir, principal, data.roster.clone(), docs)?;
    Ok((client, data))
}
