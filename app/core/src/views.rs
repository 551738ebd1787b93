//! View-models: what screens and the CLI show, computed from the local store. Plain data
//! (serde, Clone, PartialEq), so the UI never touches SQL or automerge and tests compare whole
//! values. Times are UTC [`Millis`]; calendar days are Asia/Shanghai dates.

use chrono::NaiveDate;
use gridlink_shared::policy::{ArrivalState, CompletionState, DueState, VisitDue};
use gridlink_shared::validate::RejectCode;
use gridlink_shared::{
    ActionId, ActionKind, BuildingId, CaseId, CaseKind, CaseStatus, DeviceId, DocId, GridId, HelpNeed, HouseholdId,
    HouseholdStatus, MustArriveKind, MustVisitTag, Outlet, ResidentFlag, ResidentId, Role, ServiceCategory, Sex,
    UserId, VisitId, VisitOutcome, time::Millis,
};
use serde::{Deserialize, Serialize};

/// The home screen: what needs doing today.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TodayView {
    /// "Today" in Asia/Shanghai.
    pub date: NaiveDate,
    /// Must-visit households that are overdue, due today or due soon; most urgent first.
    pub due_visits: Vec<DueVisitRow>,
    /// Open must-arrive events (四必到), most urgent deadline first.
    pub must_arrive: Vec<MustArriveRow>,
    /// Open cases the current user is responsible for, oldest deadline first.
    pub my_cases: Vec<CaseRow>,
}

/// One household visit obligation on today's list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DueVisitRow {
    pub household: HouseholdId,
    pub address: String,
    pub head: String,
    pub tag: MustVisitTag,
    pub state: DueState,
    pub due_on: NaiveDate,
    /// When the household was last met in person, if ever.
    pub last_met: Option<Millis>,
}

/// One open must-arrive event on today's list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MustArriveRow {
    pub case: CaseId,
    pub title: String,
    pub kind: MustArriveKind,
    /// Arrival deadline.
    pub deadline: Millis,
    pub state: ArrivalState,
    pub address: Option<String>,
}

/// A case in a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseRow {
    pub id: CaseId,
    pub kind: CaseKind,
    pub title: String,
    /// Derived from the timeline.
    pub status: CaseStatus,
    pub responsible: UserId,
    pub responsible_name: String,
    pub reported_at: Millis,
    /// Completion deadline (限时办结).
    pub deadline: Millis,
    /// Open and past its completion deadline.
    pub overdue: bool,
    pub household: Option<HouseholdId>,
    pub building: Option<BuildingId>,
    /// Address of the household, or building name, when known.
    pub place: String,
}

/// A household in a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HouseholdRow {
    pub id: HouseholdId,
    pub building_id: BuildingId,
    pub building_name: String,
    pub grid_id: GridId,
    pub unit: String,
    pub room: String,
    pub address: String,
    pub head: String,
    pub phone: String,
    pub tags: Vec<MustVisitTag>,
    /// The earliest visit due date over its tags, if any tag asks for visits.
    pub next_due: Option<NaiveDate>,
    pub next_due_state: Option<DueState>,
    pub moved_out: bool,
}

/// Filter for [`crate::Client::households`]. The default lists everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HouseholdFilter {
    /// Matches head, residents, address, phone, and pinyin initials or full pinyin ("zs"
    /// finds 张三).
    pub search: Option<String>,
    /// Only households with a visit overdue, due today or due soon.
    pub due_only: bool,
    pub tag: Option<MustVisitTag>,
    pub building: Option<BuildingId>,
}

/// Rows a list screen shows at first and adds on each "load more" (加载更多).
pub const PAGE_ROWS: usize = 100;

/// A window onto a list: at most `limit` rows after skipping `offset` (in the list's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Page {
    pub offset: usize,
    pub limit: usize,
}

impl Page {
    /// The first `limit` rows.
    pub const fn first(limit: usize) -> Page {
        Page { offset: 0, limit }
    }

    /// The page after this one, of the same size.
    pub const fn next(self) -> Page {
        Page { offset: self.offset.saturating_add(self.limit), limit: self.limit }
    }
}

impl Default for Page {
    fn default() -> Page {
        Page::first(PAGE_ROWS)
    }
}

/// One page of a list and how many rows the filter matches in all, so a screen can say
/// "共 25,000 户，显示 1–100".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Paged<T> {
    pub rows: Vec<T>,
    /// Position of the first row in the whole list.
    pub offset: usize,
    /// Rows the filter matches, over all pages.
    pub total: usize,
}

impl<T> Paged<T> {
    /// Whether rows follow this page.
    pub fn has_more(&self) -> bool {
        self.offset + self.rows.len() < self.total
    }
}

/// One household's file as the detail screen shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HouseholdDetail {
    pub id: HouseholdId,
    pub building_id: BuildingId,
    pub building_name: String,
    pub grid_id: GridId,
    pub unit: String,
    pub room: String,
    pub address: String,
    pub head: String,
    pub phone: String,
    pub notes: String,
    pub status: HouseholdStatus,
    pub moved_out_on: Option<NaiveDate>,
    pub created_at: Millis,
    /// Residents with their ID numbers masked; the full number never leaves the store.
    pub residents: Vec<ResidentView>,
    pub tags: Vec<TagView>,
    pub needs: Vec<NeedView>,
    /// Newest first.
    pub visits: Vec<VisitView>,
    pub open_cases: Vec<CaseRow>,
    /// Visit obligations at `now`, most urgent first.
    pub dues: Vec<VisitDue>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResidentView {
    pub id: ResidentId,
    pub name: String,
    pub sex: Sex,
    pub birth_year: u16,
    pub relation: String,
    pub phone: String,
    /// For example "4207**********0021".
    pub id_number_masked: String,
    pub flags: Vec<ResidentFlag>,
    /// Moved out or deceased, with the date; such a resident stays listed, marked.
    pub departure: Option<gridlink_shared::household::Departure>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagView {
    pub tag: MustVisitTag,
    pub since: NaiveDate,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeedView {
    pub need: HelpNeed,
    pub since: NaiveDate,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VisitView {
    pub id: VisitId,
    pub at: Millis,
    pub recorded_at: Millis,
    pub visitor: UserId,
    pub visitor_name: String,
    pub outcome: VisitOutcome,
    pub notes: String,
    pub needs_found: Vec<HelpNeed>,
    pub follow_up: Option<NaiveDate>,
    /// Names of the residents met.
    pub residents_present: Vec<String>,
}

/// One case with its timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseDetail {
    pub row: CaseRow,
    pub description: String,
    pub reporter: UserId,
    pub reporter_name: String,
    /// Arrival state of a must-arrive event; `None` for other kinds.
    pub arrival: Option<ArrivalState>,
    pub completion: CompletionState,
    pub satisfaction: Option<u8>,
    /// Who claimed a micro-wish ([`gridlink_shared::CaseFile::claimant`]).
    #[serde(default)]
    pub claimant: Option<String>,
    /// In causal order.
    pub timeline: Vec<TimelineRow>,
    /// What the current user may do now, given their role and the status.
    pub allowed_actions: Vec<ActionKind>,
    /// Activity and service records done for this case (志愿服务), newest first.
    #[serde(default)]
    pub services: Vec<crate::activities::ActivityRow>,
}

/// One action on a case timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineRow {
    pub id: ActionId,
    pub kind: ActionKind,
    pub by: UserId,
    pub by_name: String,
    pub at: Millis,
    pub note: String,
    pub satisfaction: Option<u8>,
    pub to: Option<UserId>,
    pub to_name: Option<String>,
    /// Who claimed a micro-wish, on a claim.
    #[serde(default)]
    pub claimant_name: Option<String>,
    /// The service outlet a help request was referred to, on a referral.
    #[serde(default)]
    pub outlet_name: Option<String>,
    /// The status this action moved the case to; `None` when it did not move it (a comment,
    /// or an action merged from an offline phone after the case had moved on).
    pub status_after: Option<CaseStatus>,
}

/// Which cases [`crate::Client::cases`] lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseFilter {
    /// Open cases the current user is responsible for.
    Mine,
    /// All open cases.
    Open,
    /// Open cases past their completion deadline.
    Overdue,
    /// Cases resolved and waiting for a supervisor's verification (待核实).
    Resolved,
    #[default]
    All,
}

/// A building of the user's roster slice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildingRow {
    pub id: BuildingId,
    pub name: String,
    pub grid: GridId,
    pub grid_name: String,
    pub units: u16,
    pub floors: u16,
    /// Households held locally in this building (moved-out ones included).
    pub households: usize,
}

/// Service outlets of one category (便民服务).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutletGroup {
    pub category: ServiceCategory,
    pub outlets: Vec<Outlet>,
}

/// A message for people, in both UI languages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlainWords {
    pub zh: String,
    pub en: String,
}

/// What the status bar shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// This device has a server token.
    pub enrolled: bool,
    pub server_url: Option<String>,
    /// Whether the last sync attempt reached the server; `None` before the first attempt.
    pub online: Option<bool>,
    /// The last sync error, in plain words; `None` after a successful sync.
    pub last_error: Option<PlainWords>,
    pub last_attempt_at: Option<Millis>,
    pub last_success_at: Option<Millis>,
    /// Local changes not yet accepted by the server.
    pub unsent: usize,
    /// Changes the server refused, kept aside for the user.
    pub rejected: usize,
    /// Documents set aside (quarantined) because their data is damaged, waiting for the
    /// server's copy to repair them.
    pub quarantined: usize,
    /// The server revoked this device; sync is stopped, unsynced data kept (encrypted).
    pub revoked: bool,
    pub device: Option<DeviceId>,
}

/// The identity card shown to residents (亮身份).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub user: UserId,
    pub name: String,
    pub role: Role,
    /// Names of the grids (or buildings, for a building leader) this person answers for.
    pub grid_names: Vec<String>,
    pub phone: String,
    /// Service pledge (服务承诺).
    pub pledge: String,
}

/// A change the server refused, kept aside (never deleted silently).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RejectedChange {
    /// Hex change hash.
    pub hash: String,
    pub doc: DocId,
    /// What the change did, e.g. "visit 张桂兰".
    pub summary: String,
    pub code: RejectCode,
    pub message: String,
    pub recorded_at: Millis,
    pub rejected_at: Millis,
}

/// A change that had not reached the server, as `gridlink recover` exports it for the
/// administrator: unsent (the outbox) or refused and kept aside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveredChange {
    /// Hex change hash.
    pub hash: String,
    pub doc: DocId,
    pub summary: String,
    pub recorded_at: Millis,
    /// `unsent`, or `refused` (with the server's reason in `refused_because`).
    pub state: String,
    pub refused_because: Option<String>,
    /// The automerge change, hex.
    pub bytes: String,
}

/// A document set aside because automerge failed or panicked on its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedDoc {
    pub doc: DocId,
    /// The offending bytes (a pulled change or snapshot, several concatenated, a repair copy,
    /// or the stored copy), kept as they came. Not in JSON.
    #[serde(skip)]
    pub bytes: Vec<u8>,
    pub reason: String,
    pub quarantined_at: Millis,
    /// When a clean repair released it (or it left the device); `None` while set aside.
    pub resolved_at: Option<Millis>,
    /// `repaired` or `purged`.
    pub resolution: Option<String>,
}

/// What one [`crate::Client::sync`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Round trips made.
    pub rounds: usize,
    /// Local changes sent.
    pub pushed: usize,
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    /// Changes received from the log.
    pub pulled_changes: usize,
    /// Whole documents received (first sync or after compaction).
    pub pulled_snapshots: usize,
    /// Documents replaced by the server's copy.
    pub repaired: usize,
    /// Documents set aside (quarantined) when the sync ended: their data is damaged and the
    /// server's copy is asked for (see `Client::quarantined`).
    pub quarantined: usize,
    /// Documents whose repair arrived clean during this sync and left quarantine.
    pub released: usize,
    pub scopes_added: Vec<String>,
    pub scopes_removed: Vec<String>,
    /// Documents deleted because their scopes were removed.
    pub purged: usize,
    /// Documents of removed scopes kept because they still hold unsent changes.
    pub kept_aside: usize,
    /// Retried attempts after transient errors.
    pub retries: usize,
    /// Request bytes on the wire (gzip) of the successful rounds.
    pub bytes_sent: usize,
    /// Response bytes of the successful rounds, after HTTP decompression (CBOR).
    pub bytes_received: usize,
    /// Scopes whose digest differed from the server's although nothing was in flight: the
    /// device's documents diverged, and were verified and repaired in the following round.
    #[serde(default)]
    pub diverged: Vec<String>,
    /// Documents replaced by the server's copy after a verify found them different.
    #[serde(default)]
    pub reconciled: usize,
    /// Changes of this device the server's copy lacked, queued to be sent again.
    #[serde(default)]
    pub requeued: usize,
    /// Documents deleted because the server does not hold them in the device's scopes.
    #[serde(default)]
    pub forgotten: usize,
    /// Milliseconds spent waiting for the server's answers (network and server), over all
    /// rounds, retries included.
    #[serde(default)]
    pub exchange_ms: u64,
    /// Milliseconds spent applying the answers to the local store.
    #[serde(default)]
    pub apply_ms: u64,
}
