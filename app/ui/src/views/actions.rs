//! What the screens' buttons do, as plain functions over the [`Client`]: the screens call
//! these from their handlers and the tests call the very same functions. Each write is local
//! and instant; sync carries it to the server later.

use chrono::NaiveDate;
use gridlink_client::{CaseAction, Client, Error, NewCase, NewVisit, ResidentInput};
use gridlink_shared::time::Millis;
use gridlink_shared::{
    ActionKind, BuildingId, CaseId, CaseKind, ClaimantId, HelpNeed, HouseholdId, OutletId, ResidentFlag, ResidentId,
    Sex, UserId, VisitId, VisitOutcome,
};

/// Enrols this device; the device name says which app it is.
pub async fn enroll(client: &Client, server_url: &str, code: &str) -> Result<(), Error> {
    let url = if server_url.contains("://") { server_url.to_string() } else { format!("http://{server_url}") };
    client.enroll(url.trim_end_matches('/'), code, &device_name()).await.map(|_| ())
}

fn device_name() -> String {
    format!("网格通 {} {}", std::env::consts::OS, std::env::consts::ARCH)
}

/// The record-a-visit form as typed.
#[derive(Clone, Debug, PartialEq)]
pub struct VisitForm {
    pub outcome: VisitOutcome,
    pub notes: String,
    pub needs_found: Vec<HelpNeed>,
    /// `YYYY-MM-DD` or empty.
    pub follow_up: String,
    pub residents_present: Vec<ResidentId>,
}

impl Default for VisitForm {
    fn default() -> Self {
        VisitForm {
            outcome: VisitOutcome::Met,
            notes: String::new(),
            needs_found: Vec::new(),
            follow_up: String::new(),
            residents_present: Vec::new(),
        }
    }
}

/// Parses an optional `YYYY-MM-DD` date.
pub fn parse_date(text: &str) -> Result<Option<NaiveDate>, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<NaiveDate>()
        .map(Some)
        .map_err(|_| Error::Input(format!("'{text}' is not a date like 2026-12-01 / 日期格式应为 2026-12-01")))
}

/// Saves a visit at `now`, offline.
pub fn record_visit(client: &Client, household: HouseholdId, form: &VisitForm, now: Millis) -> Result<VisitId, Error> {
    let visit = NewVisit {
        household,
        outcome: form.outcome,
        notes: form.notes.trim().to_string(),
        needs_found: form.needs_found.clone(),
        follow_up: parse_date(&form.follow_up)?,
        residents_present: form.residents_present.clone(),
        at: now,
    };
    client.record_visit(visit, now)
}

/// The open-a-case form as typed.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseForm {
    pub kind: CaseKind,
    pub household: Option<HouseholdId>,
    pub building: Option<BuildingId>,
    pub title: String,
    pub note: String,
}

/// Opens a case at `now`, offline. A title is required; the kind's label fills an empty one
/// for one-tap reports.
pub fn open_case(client: &Client, form: &CaseForm, now: Millis) -> Result<CaseId, Error> {
    let title = form.title.trim();
    if title.is_empty() {
        return Err(Error::Input("a case needs a title / 请填写标题".to_string()));
    }
    client.open_case(
        NewCase {
            kind: form.kind,
            household: form.household,
            building: form.building,
            title: title.to_string(),
            note: form.note.trim().to_string(),
            at: now,
        },
        now,
    )
}

/// Adds an action to a case timeline, offline.
pub fn act_on_case(
    client: &Client,
    case: CaseId,
    action: ActionKind,
    note: &str,
    satisfaction: Option<u8>,
    to: Option<UserId>,
    now: Millis,
) -> Result<(), Error> {
    client.act_on_case(CaseAction { case, action, note: note.trim().to_string(), satisfaction, to }, now)
}

/// Claims a micro-wish (认领) for a party member or volunteer, or for the user themself.
pub fn claim_wish(client: &Client, case: CaseId, claimant: ClaimantId, note: &str, now: Millis) -> Result<(), Error> {
    client.claim_wish(case, claimant, note.trim(), now)
}

/// Refers a help request (转介) to a service outlet.
pub fn refer_to_outlet(client: &Client, case: CaseId, outlet: OutletId, note: &str, now: Millis) -> Result<(), Error> {
    client.refer_to_outlet(case, outlet, note.trim(), now)
}

/// The add-a-resident form as typed.
#[derive(Clone, Debug, PartialEq)]
pub struct ResidentForm {
    pub name: String,
    pub sex: Sex,
    /// Four digits, as typed.
    pub birth_year: String,
    pub relation: String,
    pub phone: String,
    /// The full ID number, or empty.
    pub id_number: String,
    pub flags: Vec<ResidentFlag>,
}

impl Default for ResidentForm {
    fn default() -> Self {
        ResidentForm {
            name: String::new(),
            sex: Sex::Female,
            birth_year: String::new(),
            relation: String::new(),
            phone: String::new(),
            id_number: String::new(),
            flags: Vec::new(),
        }
    }
}

/// Adds a resident to a household file, offline. A name and a plausible birth year are required.
pub fn add_resident(
    client: &Client,
    household: HouseholdId,
    form: &ResidentForm,
    now: Millis,
) -> Result<ResidentId, Error> {
    let name = form.name.trim();
    if name.is_empty() {
        return Err(Error::Input("a resident needs a name / 请填写姓名".to_string()));
    }
    let birth_year: u16 =
        form.birth_year.trim().parse().ok().filter(|y| (1900..=2100).contains(y)).ok_or_else(|| {
            Error::Input(format!("'{}' is not a birth year / 出生年份应为四位数字", form.birth_year.trim()))
        })?;
    let id_number = form.id_number.trim().to_uppercase();
    client.add_resident(
        household,
        ResidentInput {
            name: name.to_string(),
            sex: form.sex,
            birth_year,
            relation: form.relation.trim().to_string(),
            phone: form.phone.trim().to_string(),
            id_number: (!id_number.is_empty()).then_some(id_number),
            flags: form.flags.clone(),
        },
        now,
    )
}
