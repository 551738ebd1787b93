//! The one validator. It runs on the phone before every local commit and on the server for
//! every pushed change, so an honest client is never rejected: whatever the phone accepted,
//! the server accepts too (given the same roster).
//!
//! Two questions: is the document well formed ([`validate_document`]), and may this author
//! make this edit ([`authorize_edit`], comparing the document before and after)?
//!
//! Field-level checks ([`check_id_number`], [`check_phone`], [`check_room_free`]) answer for one
//! form field, with a message in Chinese and English, so the phone shows it beside the field
//! before saving. [`check_edit`] runs the same checks on every value an edit adds or changes,
//! so the server refuses what the phone would have refused; values already stored are not
//! judged again (a file from before these checks keeps its history and stays editable).

use serde::{Deserialize, Serialize};

use crate::activity::{ActivityFile, MAX_NOTES_CHARS, MAX_PARTICIPANTS, MAX_TENTHS, MAX_TITLE_CHARS};
use crate::case::{CaseFile, CaseKind, ClaimantId};
use crate::codes::{ActionKind, Lang, Role, code_enum};
use crate::doc::{AnyDoc, SCHEMA_VERSION};
use crate::household::HouseholdFile;
use crate::org::Principal;

code_enum!(
    /// Why a change was refused. Stable codes for machines, labels for people.
    RejectCode {
        InvalidDocument => ("invalid-document", "内容不合规", "The record is not valid"),
        OutOfScope => ("out-of-scope", "超出负责范围", "Outside your grid or building"),
        ForbiddenRole => ("forbidden-role", "角色无此权限", "Your role may not do this"),
        ForbiddenEdit => ("forbidden-edit", "不允许的修改", "This edit is not allowed"),
        ForgedActor => ("forged-actor", "设备身份不符", "Change not signed by this device"),
        MissingDependencies => ("missing-dependencies", "缺少前序修改", "Earlier changes are missing"),
        CorruptChange => ("corrupt-change", "数据损坏", "The change is corrupt"),
        TooLarge => ("too-large", "修改过大", "The change is too large"),
        OutOfOrder => ("out-of-order", "修改序号异常", "The change's numbering does not follow this device's earlier changes"),
        BadTime => ("bad-time", "修改时间异常", "The change's time is implausible; check the phone's clock"),
    }
);

/// A refusal with a reason a person can read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ValidationError {
    pub code: RejectCode,
    pub message: String,
}

impl ValidationError {
    pub fn new(code: RejectCode, message: impl Into<String>) -> Self {
        ValidationError { code, message: message.into() }
    }
}

fn invalid(message: impl Into<String>) -> ValidationError {
    ValidationError::new(RejectCode::InvalidDocument, message)
}

fn require(ok: bool, message: impl FnOnce() -> String) -> Result<(), ValidationError> {
    if ok { Ok(()) } else { Err(invalid(message())) }
}

fn text_field(name: &str, value: &str, required: bool, max_chars: usize) -> Result<(), ValidationError> {
    let len = value.chars().count();
    require(!required || !value.trim().is_empty(), || format!("{name} must not be empty"))?;
    require(len <= max_chars, || format!("{name} is {len} characters; at most {max_chars} are allowed"))?;
    // Text is typed by people: line breaks and tabs, never NUL or other control characters
    // (PostgreSQL cannot even store a NUL in text; a screen or a ledger would show garbage).
    let control = value.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
    require(control.is_none(), || format!("{name} holds a control character (U+{:04X})", control.map_or(0, u32::from)))
}

fn phone_field(name: &str, phone: &str) -> Result<(), ValidationError> {
    let ok = phone.is_empty()
        || (phone.len() <= 20
            && phone.chars().filter(|c| c.is_ascii_digit()).count() >= 5
            && phone.chars().all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | ' ')));
    require(ok, || format!("{name} '{phone}' is not a phone number"))
}

/// Accepts the 18-character resident ID (17 digits and a digit or X) or the old 15-digit one.
fn id_number_field(id_number: &str) -> Result<(), ValidationError> {
    let chars: Vec<char> = id_number.chars().collect();
    let ok = id_number.is_empty()
        || (chars.len() == 18
            && chars[..17].iter().all(|c| c.is_ascii_digit())
            && (chars[17].is_ascii_digit() || chars[17] == 'X' || chars[17] == 'x'))
        || (chars.len() == 15 && chars.iter().all(|c| c.is_ascii_digit()));
    require(ok, || "resident ID number must have 18 characters (or 15 digits)".to_string())
}

/// The form field a [`FieldError`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Field {
    Unit,
    Room,
    Head,
    Phone,
    ResidentName,
    ResidentPhone,
    ResidentIdNumber,
    /// The day a new household moved in.
    MovedInOn,
}

/// One field's problem, in words for people in both languages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{en}")]
pub struct FieldError {
    pub field: Field,
    pub zh: String,
    pub en: String,
}

impl FieldError {
    fn new(field: Field, zh: impl Into<String>, en: impl Into<String>) -> Self {
        FieldError { field, zh: zh.into(), en: en.into() }
    }

    pub fn message(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }
}

impl From<FieldError> for ValidationError {
    fn from(e: FieldError) -> Self {
        invalid(format!("{} / {}", e.zh, e.en))
    }
}

/// Weights and check characters of the 18-character resident ID number (GB 11643-1999).
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The check character the first 17 digits of an ID number call for.
pub fn id_check_char(first_17_digits: &str) -> Option<char> {
    let digits: Vec<u32> = first_17_digits.chars().map(|c| c.to_digit(10)).collect::<Option<_>>()?;
    if digits.len() != 17 {
        return None;
    }
    let sum: u32 = digits.iter().zip(ID_WEIGHTS).map(|(d, w)| d * w).sum();
    Some(ID_CHECK_CHARS[(sum % 11) as usize])
}

/// A resident ID number as typed on a form: empty (not known yet), or 18 characters with a
/// real birth date and the right check character (a lower-case `x` counts as `X`).
pub fn check_id_number(id_number: &str) -> Result<(), FieldError> {
    let id = id_number.trim().to_uppercase();
    if id.is_empty() {
        return Ok(());
    }
    let chars: Vec<char> = id.chars().collect();
    let shape_ok = chars.len() == 18
        && chars[..17].iter().all(|c| c.is_ascii_digit())
        && (chars[17].is_ascii_digit() || chars[17] == 'X');
    if !shape_ok {
        return Err(FieldError::new(
            Field::ResidentIdNumber,
            format!("身份证号应为18位（前17位是数字，最后一位是数字或X），现在是{}位", chars.len()),
            format!("An ID number has 18 characters (17 digits, then a digit or X); this one has {}", chars.len()),
        ));
    }
    let birth: String = chars[6..14].iter().collect();
    if chrono::NaiveDate::parse_from_str(&birth, "%Y%m%d").is_err() {
        return Err(FieldError::new(
            Field::ResidentIdNumber,
            format!("身份证号中的出生日期{birth}不存在，请核对"),
            format!("The birth date {birth} in the ID number does not exist; check it"),
        ));
    }
    let body: String = chars[..17].iter().collect();
    let expected = id_check_char(&body).unwrap_or('?');
    if chars[17] != expected {
        return Err(FieldError::new(
            Field::ResidentIdNumber,
            "身份证号校验位不符，可能输错了一位，请核对",
            "The ID number's check digit does not match: a character is probably mistyped",
        ));
    }
    Ok(())
}

/// A phone number as typed on a form: empty, an 11-digit mobile number (13x–19x), or a
/// landline with its area code (0711-3200000) or without it (7–8 digits). Spaces, hyphens
/// and a leading +86 are allowed.
pub fn check_phone(field: Field, phone: &str) -> Result<(), FieldError> {
    let trimmed = phone.trim();
    let national = trimmed.strip_prefix("+86").unwrap_or(trimmed);
    let digits: String = national.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if digits.is_empty() && trimmed.is_empty() {
        return Ok(());
    }
    let all_digits = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit());
    let ok = all_digits
        && match digits.as_bytes()[0] {
            b'1' => digits.len() == 11 && (b'3'..=b'9').contains(&digits.as_bytes()[1]),
            b'0' => (10..=12).contains(&digits.len()),
            _ => (7..=8).contains(&digits.len()),
        };
    if ok {
        return Ok(());
    }
    if all_digits && digits.starts_with('1') {
        Err(FieldError::new(
            field,
            format!("手机号应为11位数字、以13到19开头（如13807110000），现在是{}位", digits.len()),
            format!(
                "A mobile number has 11 digits and starts with 13 to 19 (like 13807110000); this one has {}",
                digits.len()
            ),
        ))
    } else {
        Err(FieldError::new(
            field,
            "电话号码格式不对：请填11位手机号，或带区号的固定电话（如0711-3200000）",
            "Not a phone number: give an 11-digit mobile number or a landline with its area code (like 0711-3200000)",
        ))
    }
}

/// The unit and room of a new household must not already hold a household living there
/// (`occupied` lists the unit and room of every household of the same building still living
/// there; a moved-out household's room is free for the next one). Blanks and case are ignored.
pub fn check_room_free<'a>(
    unit: &str,
    room: &str,
    occupied: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), FieldError> {
    let same = |a: &str, b: &str| a.trim().to_lowercase() == b.trim().to_lowercase();
    if room.trim().is_empty() {
        return Err(FieldError::new(Field::Room, "请填写房号", "Give the room number"));
    }
    if occupied.into_iter().any(|(u, r)| same(u, unit) && same(r, room)) {
        let (unit, room) = (unit.trim(), room.trim());
        let (zh_place, en_place) = if unit.is_empty() {
            (format!("{room}室"), format!("room {room}"))
        } else {
            (format!("{unit}单元{room}室"), format!("unit {unit}, room {room}"))
        };
        return Err(FieldError::new(
            Field::Room,
            format!("本楼{zh_place}已有在住住户档案，请核对房号，或先将原住户标记为迁出"),
            format!(
                "This building already has a household living in {en_place}: check the room, or mark the old household moved out first"
            ),
        ));
    }
    Ok(())
}

/// The field-level checks of a household file, on every value `after` adds or changes
/// compared with `before` (all of them for a new file).
pub fn check_household_fields(before: Option<&HouseholdFile>, after: &HouseholdFile) -> Result<(), FieldError> {
    if before.is_none_or(|b| b.phone != after.phone) {
        check_phone(Field::Phone, &after.phone)?;
    }
    for (id, resident) in &after.residents {
        let old = before.and_then(|b| b.residents.get(id));
        if old.is_none_or(|o| o.phone != resident.phone) {
            check_phone(Field::ResidentPhone, &resident.phone)?;
        }
        if old.is_none_or(|o| o.id_number != resident.id_number) {
            check_id_number(&resident.id_number)?;
        }
    }
    Ok(())
}

/// Checks that a document is well formed.
pub fn validate_document(doc: &AnyDoc) -> Result<(), ValidationError> {
    match doc {
        AnyDoc::Household(h) => validate_household(h),
        AnyDoc::Case(c) => validate_case(c),
        AnyDoc::Activity(a) => validate_activity(a),
    }
}

fn validate_activity(a: &ActivityFile) -> Result<(), ValidationError> {
    require(a.schema == SCHEMA_VERSION, || format!("schema {} is not {SCHEMA_VERSION}", a.schema))?;
    text_field("activity title", &a.title, true, MAX_TITLE_CHARS)?;
    text_field("activity notes", &a.notes, false, MAX_NOTES_CHARS)?;
    text_field("recorder name", &a.recorded_by_name, true, 50)?;
    require(a.recorded_at > 0, || "an activity record needs a time".to_string())?;
    require(!a.participants.is_empty(), || "an activity record names at least one person".to_string())?;
    require(a.participants.len() <= MAX_PARTICIPANTS, || {
        format!("{} participants; at most {MAX_PARTICIPANTS} in one record", a.participants.len())
    })?;
    for (person, p) in &a.participants {
        require(*person == p.person, || format!("participant {person} is filed under the wrong key"))?;
        text_field("participant name", &p.name, true, 50)?;
        require(p.tenths > 0 && p.tenths <= MAX_TENTHS, || {
            format!("{} is credited {} tenths of an hour; 0.1 to 24 hours are allowed", p.name, p.tenths)
        })?;
    }
    Ok(())
}

fn validate_household(h: &HouseholdFile) -> Result<(), ValidationError> {
    require(h.schema == SCHEMA_VERSION, || format!("schema {} is not {SCHEMA_VERSION}", h.schema))?;
    require(h.placement.building.is_some(), || "a household must be in a building".to_string())?;
    text_field("head of household", &h.head, true, 50)?;
    text_field("room", &h.room, true, 20)?;
    text_field("unit", &h.unit, false, 20)?;
    text_field("building name", &h.building_name, true, 60)?;
    text_field("notes", &h.notes, false, 2000)?;
    phone_field("phone", &h.phone)?;
    for (id, r) in &h.residents {
        require(*id == r.id, || format!("resident {id} is filed under the wrong key"))?;
        text_field("resident name", &r.name, true, 50)?;
        require((1900..=2100).contains(&r.birth_year), || {
            format!("birth year {} of {} is not between 1900 and 2100", r.birth_year, r.name)
        })?;
        phone_field("resident phone", &r.phone)?;
        id_number_field(&r.id_number)?;
    }
    for (id, v) in &h.visits {
        require(*id == v.id, || format!("visit {id} is filed under the wrong key"))?;
        require(v.at > 0 && v.recorded_at > 0, || "a visit needs a time".to_string())?;
        text_field("visit notes", &v.notes, false, 2000)?;
        for present in &v.residents_present {
            require(h.residents.contains_key(present), || {
                format!("visit lists resident {present}, who is not in this household")
            })?;
        }
    }
    for (tag, entry) in &h.tags {
        text_field(&format!("{tag} note"), &entry.note, false, 500)?;
    }
    for (id, departure) in &h.departures {
        require(h.residents.contains_key(id), || format!("departure of resident {id}, who is not in this household"))?;
        text_field("departure note", &departure.note, false, 500)?;
    }
    require(h.moved_out_on.is_none() || h.status == crate::codes::HouseholdStatus::MovedOut, || {
        "a move-out date needs the moved-out status".to_string()
    })
}

fn validate_case(c: &CaseFile) -> Result<(), ValidationError> {
    require(c.schema == SCHEMA_VERSION, || format!("schema {} is not {SCHEMA_VERSION}", c.schema))?;
    text_field("title", &c.title, true, 100)?;
    text_field("description", &c.description, false, 4000)?;
    require(c.reported_at > 0, || "a case needs a report time".to_string())?;
    for (id, a) in &c.timeline {
        require(*id == a.id, || format!("action {id} is filed under the wrong key"))?;
        text_field("action note", &a.note, false, 2000)?;
        require(a.lamport > 0, || "action counter must be positive".to_string())?;
        match (a.kind, a.satisfaction) {
            (ActionKind::Close, Some(s)) => {
                require((1..=5).contains(&s), || format!("satisfaction {s} is not between 1 and 5"))?
            }
            (_, Some(_)) => return Err(invalid("satisfaction is given only when closing a case")),
            _ => {}
        }
        require((a.kind == ActionKind::Reassign) == a.to.is_some(), || {
            "a reassignment, and only a reassignment, names the new responsible person".to_string()
        })?;
        validate_wish_or_referral(c, a)?;
    }
    Ok(())
}

/// The micro-wish actions belong to micro-wishes and a claim names who claims; a referral
/// belongs to a help request and names the outlet. Older actions carry neither name.
fn validate_wish_or_referral(c: &CaseFile, a: &crate::case::Action) -> Result<(), ValidationError> {
    let wish_action = matches!(a.kind, ActionKind::Claim | ActionKind::Fulfil | ActionKind::Thank);
    require(!wish_action || c.kind == CaseKind::MicroWish, || {
        format!("{} applies only to a micro-wish, not to a {} case", a.kind.en().to_lowercase(), c.kind)
    })?;
    require((a.kind == ActionKind::Claim) == a.claimant.is_some(), || {
        "a claim, and only a claim, names the party member or volunteer who claims the wish".to_string()
    })?;
    if let Some(claimant) = &a.claimant {
        text_field("claimant name", &claimant.name, true, 50)?;
    }
    require(a.kind != ActionKind::Refer || matches!(c.kind, CaseKind::Help(_)), || {
        format!("only a help request can be referred to a service outlet, not a {} case", c.kind)
    })?;
    require((a.kind == ActionKind::Refer) == a.outlet.is_some(), || {
        "a referral, and only a referral, names the service outlet".to_string()
    })?;
    if let Some(outlet) = &a.outlet {
        text_field("outlet name", &outlet.name, true, 100)?;
    }
    Ok(())
}

/// Which timeline actions each role may add.
pub fn role_may_act(role: Role, action: ActionKind) -> bool {
    use ActionKind::*;
    match role {
        Role::Admin | Role::Supervisor => true,
        Role::GridWorker => {
            matches!(action, Accept | Arrive | Progress | Resolve | Reassign | Comment | Claim | Fulfil | Thank | Refer)
        }
        // A volunteer with a login claims a micro-wish for themself and says when it came true;
        // the resident's thanks are recorded by the grid worker.
        Role::Volunteer => matches!(action, Comment | Claim | Fulfil),
        Role::BuildingLeader => matches!(action, Comment),
    }
}

/// Checks that `author` may turn `before` (None for a new document) into `after`.
pub fn authorize_edit(before: Option<&AnyDoc>, after: &AnyDoc, author: &Principal) -> Result<(), ValidationError> {
    let out_of_scope =
        || ValidationError::new(RejectCode::OutOfScope, format!("{} is not responsible for this place", author.name));
    if !author.covers(&after.placement()) {
        return Err(out_of_scope());
    }
    if let Some(before) = before {
        if before.doc_id() != after.doc_id() || before.doc_type() != after.doc_type() {
            return Err(ValidationError::new(RejectCode::ForbiddenEdit, "a document cannot change its id or kind"));
        }
        if !author.covers(&before.placement()) {
            return Err(out_of_scope());
        }
    }
    match (before, after) {
        (None, AnyDoc::Household(new)) => authorize_household_edit(None, new, author),
        (Some(AnyDoc::Household(old)), AnyDoc::Household(new)) => authorize_household_edit(Some(old), new, author),
        (None, AnyDoc::Case(case)) => authorize_case_edit(None, case, author),
        (Some(AnyDoc::Case(old)), AnyDoc::Case(new)) => authorize_case_edit(Some(old), new, author),
        (None, AnyDoc::Activity(new)) => authorize_activity_edit(None, new, author),
        (Some(AnyDoc::Activity(old)), AnyDoc::Activity(new)) => authorize_activity_edit(Some(old), new, author),
        _ => Err(ValidationError::new(RejectCode::ForbiddenEdit, "a document cannot change its kind")),
    }
}

/// Grid workers (and admins) edit household files. A visit is signed by whoever records it:
/// a new visit names its author, and who made an earlier visit never changes.
fn authorize_household_edit(
    before: Option<&HouseholdFile>,
    after: &HouseholdFile,
    author: &Principal,
) -> Result<(), ValidationError> {
    if !matches!(author.role, Role::GridWorker | Role::Admin) {
        return Err(ValidationError::new(
            RejectCode::ForbiddenRole,
            format!("a {} may not edit household files", author.role.en().to_lowercase()),
        ));
    }
    let forbidden = |message: &str| Err(ValidationError::new(RejectCode::ForbiddenEdit, message));
    for (id, visit) in &after.visits {
        match before.and_then(|b| b.visits.get(id)) {
            Some(old) if old.visitor != visit.visitor || old.visitor_name != visit.visitor_name => {
                return forbidden("who made a visit cannot be changed");
            }
            Some(_) => {}
            None if author.role != Role::Admin
                && (visit.visitor != author.user || visit.visitor_name != author.name) =>
            {
                return forbidden("a visit must be recorded in the name of the person recording it");
            }
            None => {}
        }
    }
    Ok(())
}

fn authorize_case_edit(before: Option<&CaseFile>, after: &CaseFile, author: &Principal) -> Result<(), ValidationError> {
    let forbidden = |message: String| ValidationError::new(RejectCode::ForbiddenEdit, message);
    if let Some(before) = before {
        let fixed_changed = before.kind != after.kind
            || before.placement != after.placement
            || before.household != after.household
            || before.reporter != after.reporter
            || before.first_responsible != after.first_responsible
            || before.reported_at != after.reported_at;
        if fixed_changed {
            return Err(forbidden("kind, place, reporter and report time of a case are fixed".into()));
        }
        if (before.title != after.title || before.description != after.description)
            && author.user != after.reporter
            && !matches!(author.role, Role::Supervisor | Role::Admin)
        {
            return Err(forbidden("only the reporter or a supervisor may edit the title and description".into()));
        }
        for (id, old) in &before.timeline {
            match after.timeline.get(id) {
                Some(new) if new == old => {}
                _ => return Err(forbidden("the timeline is append-only: actions cannot be changed or removed".into())),
            }
        }
    } else if after.reporter != author.user && author.role != Role::Admin {
        return Err(forbidden("a new case must name its author as the reporter".into()));
    }
    for (id, action) in &after.timeline {
        if before.is_some_and(|b| b.timeline.contains_key(id)) {
            continue;
        }
        if action.by != author.user && author.role != Role::Admin {
            return Err(forbidden("an action must be signed by the person adding it".into()));
        }
        if !role_may_act(author.role, action.kind) {
            return Err(ValidationError::new(
                RejectCode::ForbiddenRole,
                format!("a {} may not {} a case", author.role.en().to_lowercase(), action.kind.en().to_lowercase()),
            ));
        }
        // A volunteer is not tied to a register entry (see the party module), so the only
        // claim the validator can vouch for is one in their own name.
        if author.role == Role::Volunteer
            && action.claimant.as_ref().is_some_and(|c| c.id != ClaimantId::Staff(author.user))
        {
            return Err(forbidden("a volunteer claims a micro-wish only for themself".into()));
        }
    }
    Ok(())
}

/// Grid workers of the grid, supervisors and admins record activities and service hours.
/// Building leaders do not (they do not receive these records), nor do volunteers: the roster
/// does not tie a volunteer's login to their register entry, so "only for themselves" cannot
/// be checked here. A record is signed by whoever creates it, and where, when and by whom it
/// was recorded never changes.
fn authorize_activity_edit(
    before: Option<&ActivityFile>,
    after: &ActivityFile,
    author: &Principal,
) -> Result<(), ValidationError> {
    if !matches!(author.role, Role::GridWorker | Role::Supervisor | Role::Admin) {
        return Err(ValidationError::new(
            RejectCode::ForbiddenRole,
            format!("a {} may not record activities or service hours", author.role.en().to_lowercase()),
        ));
    }
    let forbidden = |message: &str| Err(ValidationError::new(RejectCode::ForbiddenEdit, message));
    match before {
        Some(old)
            if old.placement != after.placement
                || old.recorded_by != after.recorded_by
                || old.recorded_by_name != after.recorded_by_name
                || old.recorded_at != after.recorded_at =>
        {
            forbidden("the place of an activity record and who recorded it when are fixed")
        }
        None if author.role != Role::Admin
            && (after.recorded_by != author.user || after.recorded_by_name != author.name) =>
        {
            forbidden("an activity record must be made in the name of the person recording it")
        }
        _ => Ok(()),
    }
}

/// Both checks, as run before a commit and on every pushed change.
pub fn check_edit(before: Option<&AnyDoc>, after: &AnyDoc, author: &Principal) -> Result<(), ValidationError> {
    validate_document(after)?;
    if let AnyDoc::Household(new) = after {
        let old = match before {
            Some(AnyDoc::Household(old)) => Some(old),
            _ => None,
        };
        check_household_fields(old, new)?;
    }
    authorize_edit(before, after, author)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_takes_line_breaks_and_tabs_but_no_nul_or_other_control_characters() {
        assert!(text_field("visit notes", "王秀英在家，血压正常。\n下周再来\t（网格员）", false, 2000).is_ok());
        for hostile in ["张\0三", "李四\u{1b}[2J", "\u{7f}", "赵\u{85}磊"] {
            let refused = text_field("head of household", hostile, true, 50).unwrap_err();
            assert!(refused.message.contains("control character"), "{hostile:?}: {}", refused.message);
        }
    }

    #[test]
    fn an_id_number_with_the_right_check_digit_passes_and_a_typo_is_caught() {
        assert_eq!(check_id_number("420704195503120026"), Ok(()));
        assert_eq!(check_id_number("420703201209010047"), Ok(()));
        assert_eq!(check_id_number(""), Ok(()), "an unknown ID number may be left blank");
        let typo = check_id_number("420704195503120021").unwrap_err();
        assert_eq!(typo.field, Field::ResidentIdNumber);
        assert!(typo.zh.contains("校验位"), "{}", typo.zh);
        assert!(typo.message(Lang::En).contains("check digit"));
    }

    #[test]
    fn an_id_number_of_the_wrong_shape_or_with_no_such_birth_date_is_refused() {
        let short = check_id_number("42070419550312002").unwrap_err();
        assert!(short.zh.contains("18位") && short.zh.contains("17位"), "{}", short.zh);
        assert!(check_id_number("42070419550312002A").is_err());
        let feb_30 = check_id_number(&format!("42070419550230002{}", id_check_char("42070419550230002").unwrap()));
        assert!(feb_30.unwrap_err().zh.contains("19550230"));
    }

    #[test]
    fn mobile_and_landline_numbers_pass_and_malformed_ones_say_why() {
        for good in ["13807110000", "138 0711 0000", "+86 13807110000", "0711-3200000", "3200000", ""] {
            assert_eq!(check_phone(Field::Phone, good), Ok(()), "{good}");
        }
        let short = check_phone(Field::ResidentPhone, "1380711000").unwrap_err();
        assert_eq!(short.field, Field::ResidentPhone);
        assert!(short.zh.contains("11位") && short.zh.contains("10位"), "{}", short.zh);
        assert!(check_phone(Field::Phone, "12807110000").is_err(), "no mobile number starts with 12");
        assert!(check_phone(Field::Phone, "138-abc").unwrap_err().zh.contains("电话号码格式不对"));
    }

    fn file_with_resident(id_number: &str, phone: &str) -> HouseholdFile {
        use crate::ids::{BuildingId, CommunityId, GridId, HouseholdId, ResidentId, StreetId};
        use crate::org::Placement;
        let placement = Placement {
            street: StreetId::from_u128(1),
            community: CommunityId::from_u128(2),
            grid: GridId::from_u128(3),
            building: Some(BuildingId::from_u128(4)),
        };
        let mut file = HouseholdFile::new(HouseholdId::from_u128(5), placement, "滨湖小区7栋", "2", "302", "张桂兰", 1);
        let id = ResidentId::from_u128(6);
        file.residents.insert(
            id,
            crate::household::Resident {
                id,
                name: "张桂兰".into(),
                sex: crate::codes::Sex::Female,
                birth_year: 1955,
                relation: "户主".into(),
                phone: phone.into(),
                id_number: id_number.into(),
                flags: Default::default(),
            },
        );
        file
    }

    #[test]
    fn an_edit_is_checked_on_the_values_it_adds_or_changes_and_old_values_are_not_judged_again() {
        // A new file with a typo in an ID number is refused, naming the field.
        let typo = file_with_resident("420704195503120021", "13907141234");
        assert_eq!(check_household_fields(None, &typo).unwrap_err().field, Field::ResidentIdNumber);
        // The same value stored before these checks existed does not block other edits...
        let mut edited = typo.clone();
        edited.notes = "独居，子女在武汉".into();
        assert_eq!(check_household_fields(Some(&typo), &edited), Ok(()));
        // ...but changing a phone to a malformed one is refused.
        let mut bad_phone = typo.clone();
        bad_phone.residents.values_mut().for_each(|r| r.phone = "1390714123".into());
        assert_eq!(check_household_fields(Some(&typo), &bad_phone).unwrap_err().field, Field::ResidentPhone);
        let good = file_with_resident("420704195503120026", "13907141234");
        assert_eq!(check_household_fields(None, &good), Ok(()));
    }

    #[test]
    fn a_room_is_taken_only_by_a_household_living_in_the_same_unit() {
        let occupied = [("2", "302"), ("1", "302")];
        let taken = check_room_free(" 2 ", "302", occupied).unwrap_err();
        assert_eq!(taken.field, Field::Room);
        assert!(taken.zh.contains("2单元302室"), "{}", taken.zh);
        assert_eq!(check_room_free("3", "302", occupied), Ok(()));
        assert_eq!(check_room_free("2", "301", occupied), Ok(()));
        assert_eq!(check_room_free("2", " ", occupied).unwrap_err().field, Field::Room);
    }
}
