//! # gridlink-shared
//!
//! The domain of Gridlink (网格通), the offline-first app for the "1234" community work
//! method. Everything here is pure: no files, no sockets, no clocks (callers pass `now`).
//! The client core and the sync server both depend on this crate; it depends on neither.
//!
//! * [`org`]: the roster (street > community > grid > building), staff, [`Scope`]s.
//! * [`party`]: grid party branches, building party groups, party members and volunteers.
//! * [`household`], [`case`] and [`activity`]: the three synced documents, typed with
//!   autosurgeon; [`activity`] also adds up service hours per person and party branch.
//! * [`doc`]: create, read and update documents as automerge.
//! * [`change_bytes`]: bounded checks of a change's bytes before automerge parses them.
//! * [`conflicts`]: fields two offline edits left with concurrent values (the review queue).
//! * [`validate`]: the one validator run on the phone before each commit and on the server
//!   for every pushed change.
//! * [`policy`]: visit cadence, must-arrive and completion deadlines, rates.
//! * [`figures`]: the supervisors' figures (coverage, 四必到, 办结率, 限时办结率, satisfaction,
//!   weekly trends) over plain rows, with a drill-down list behind every number.
//! * [`protocol`]: the one-round-trip sync messages.
//! * [`digest`]: per-scope digests that show a device and the server hold the same documents.
//! * [`search`]: pinyin search text for household lists (phone and console).
//! * [`elink`]: the residents' grid e-link (社区网格e通): its accounts, case text and
//!   reference numbers, shared by the server's public form and the demo.
//! * [`demo`]: deterministic demo datasets (`small`, `street`).
//!
//! ```
//! use gridlink_shared::{doc, HouseholdFile, HouseholdId, MustVisitTag, TagEntry, UserId};
//! # use gridlink_shared::{Placement, StreetId, CommunityId, GridId, BuildingId};
//! # let placement = Placement { street: StreetId::new(), community: CommunityId::new(),
//! #     grid: GridId::new(), building: Some(BuildingId::new()) };
//! let mut file = HouseholdFile::new(HouseholdId::new(), placement, "滨湖小区7栋", "2", "302", "张桂兰", 0);
//! let mut automerge_doc = doc::create(&file, automerge::ActorId::random(), 0).unwrap();
//! file.tags.insert(MustVisitTag::EmptyNest, TagEntry {
//!     since: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
//!     added_by: UserId::new(),
//!     note: String::new(),
//! });
//! doc::update(&mut automerge_doc, &file, "tag empty-nest", 1).unwrap();
//! let read_back: HouseholdFile = doc::read(&automerge_doc).unwrap();
//! assert!(read_back.tags.contains_key(&MustVisitTag::EmptyNest));
//! ```

pub mod activity;
pub mod case;
pub mod change_bytes;
pub mod codes;
pub mod conflicts;
pub mod demo;
pub mod digest;
pub mod doc;
pub mod elink;
pub mod figures;
pub mod household;
pub mod ids;
pub mod org;
pub mod party;
pub mod policy;
pub mod prefetch;
pub mod protocol;
pub mod search;
pub mod sync_core;
pub mod time;
pub mod validate;

pub use activity::{ActivityFile, ActivityKind, Participant, PersonRef};
pub use case::{Action, CaseFile, CaseKind, Claimant, ClaimantId, OutletRef};
pub use codes::{
    ActionKind, CaseStatus, HelpNeed, HouseholdStatus, Lang, LeaderRole, MustArriveKind, MustVisitTag, ResidentFlag,
    Role, ServiceCategory, Sex, VisitOutcome,
};
pub use doc::{AnyDoc, DocError, DocType, GridDocument, SCHEMA_VERSION};
pub use household::{HouseholdFile, NeedEntry, Resident, TagEntry, Visit, mask_id_number};
pub use ids::*;
pub use org::{Building, Community, Grid, Outlet, Placement, Principal, Roster, Scope, Staff, Street};
pub use party::{PartyBranch, PartyGroup, PartyMember, Volunteer};
pub use policy::PolicyConfig;
pub use validate::{RejectCode, ValidationError};

pub use automerge;
