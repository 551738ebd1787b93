//! The one validator. It runs on the phone before every local commit and on the server for
//! every pushed change, so an honest client is never rejected: whatever the phone accepted,
//! the server accepts too (given the same roster).
//!
//! Two questions: is the document well formed ([`validate_document`]), and may this author
//! make this edit ([`authorize_edit`], comparing the document before and after)?

use serde::{Deserialize, Serialize};

use crate::case::CaseFile;
use crate::codes::{ActionKind, Role, code_enum};
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
    require(len <= max_chars, || format!("{name} is {len} characters; at most {max_chars} are allowed"))
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

/// Checks that a document is well formed.
pub fn validate_document(doc: &AnyDoc) -> Result<(), ValidationError> {
    match doc {
        AnyDoc::Household(h) => validate_household(h),
        AnyDoc::Case(c) => validate_case(c),
    }
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
    }
    Ok(())
}

/// Which timeline actions each role may add.
pub fn role_may_act(role: Role, action: ActionKind) -> bool {
    use ActionKind::*;
    match role {
        Role::Admin | Role::Supervisor => true,
        Role::GridWorker => matches!(action, Accept | Arrive | Progress | Resolve | Reassign | Comment),
        Role::BuildingLeader | Role::Volunteer => matches!(action, Comment),
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
    }
    Ok(())
}

/// Both checks, as run before a commit and on every pushed change.
pub fn check_edit(before: Option<&AnyDoc>, after: &AnyDoc, author: &Principal) -> Result<(), ValidationError> {
    validate_document(after)?;
    authorize_edit(before, after, author)
}
