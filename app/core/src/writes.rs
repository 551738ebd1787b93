//! Offline writes. Each one: load the document, hydrate it, change the typed value, run the
//! shared validator against the enrolled principal, commit one automerge change signed with
//! this device's actor, and store document, outbox entry and query rows in one transaction.

use automerge::AutoCommit;
use chrono::NaiveDate;
use gridlink_shared::case::{Action, Claimant, ClaimantId, OutletRef};
use gridlink_shared::household::{Departure, DepartureKind};
use gridlink_shared::time::{Millis, local_date};
use gridlink_shared::validate::{self, Field, FieldError, check_edit};
use gridlink_shared::{
    ActionId, ActionKind, AnyDoc, CaseFile, CaseId, DocId, GridDocument, HelpNeed, HouseholdFile, HouseholdId,
    HouseholdStatus, MustVisitTag, NeedEntry, OutletId, Resident, ResidentId, Role, TagEntry, Visit, VisitId, doc,
};
use rusqlite::{Transaction, params};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::{
    CaseAction, Client, HouseholdEdit, NewCase, NewHousehold, NewVisit, ResidentInput, keys, quarantine, store,
};

/// The document types, to move between typed values and [`AnyDoc`].
pub(crate) trait Typed: GridDocument + Sized {
    const WHAT: &'static str;
    fn to_any(&self) -> AnyDoc;
}

impl Typed for HouseholdFile {
    const WHAT: &'static str = "household";
    fn to_any(&self) -> AnyDoc {
        AnyDoc::Household(self.clone())
    }
}

impl Typed for CaseFile {
    const WHAT: &'static str = "case";
    fn to_any(&self) -> AnyDoc {
        AnyDoc::Case(self.clone())
    }
}

impl Typed for gridlink_shared::ActivityFile {
    const WHAT: &'static str = "activity";
    fn to_any(&self) -> AnyDoc {
        AnyDoc::Activity(self.clone())
    }
}

/// Stores the changes made since `heads_before`, the document and its query rows.
pub(crate) fn persist(
    tx: &Transaction<'_>,
    client: &Client,
    id: DocId,
    automerge_doc: &mut AutoCommit,
    heads_before: &[automerge::ChangeHash],
    summary: &str,
    now: Millis,
) -> Result<()> {
    for change in automerge_doc.get_changes(heads_before) {
        tx.execute(
            "INSERT OR IGNORE INTO outbox (hash, doc, bytes, summary, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![change.hash().to_string(), id.to_string(), change.raw_bytes(), summary, now],
        )?;
    }
    store::save_doc(tx, id, automerge_doc, client.policy())?;
    Ok(())
}

/// Creates a new document after validating it.
pub(crate) fn create<T: Typed>(client: &Client, value: &T, summary: &str, now: Millis) -> Result<()> {
    client.with_tx(|tx| {
        let principal = store::principal(tx)?;
        check_edit(None, &value.to_any(), &principal)?;
        let mut automerge_doc = doc::create(value, store::actor(tx)?, now)?;
        persist(tx, client, value.doc_id(), &mut automerge_doc, &[], summary, now)
    })
}

/// Loads, edits, validates and commits one document. A document set aside in quarantine is
/// refused with [`Error::Quarantined`]; one whose stored data automerge fails or panics on
/// is set aside now (after the write's transaction rolled back) and refused the same way.
fn edit<T: Typed, R>(
    client: &Client,
    id: DocId,
    summary: &str,
    now: Millis,
    change: impl FnOnce(&mut T, &gridlink_shared::Principal) -> Result<R>,
) -> Result<R> {
    let outcome = client.with_tx(|tx| {
        if quarantine::is_quarantined(tx, id)? {
            return Err(Error::Quarantined { what: T::WHAT, id: id.to_string() });
        }
        let principal = store::principal(tx)?;
        let (mut automerge_doc, before) = quarantine::load_stored::<T>(tx, T::WHAT, id)?;
        automerge_doc.set_actor(store::actor(tx)?);
        let mut after = before.clone();
        let result = change(&mut after, &principal)?;
        if after == before {
            return Ok(result);
        }
        check_edit(Some(&before.to_any()), &after.to_any(), &principal)?;
        quarantine::guarded(|| {
            let heads_before = automerge_doc.get_heads();
            doc::update(&mut automerge_doc, &after, summary, now)?;
            persist(tx, client, id, &mut automerge_doc, &heads_before, summary, now)
        })?;
        Ok(result)
    });
    quarantine::on_damage(&client.db(), T::WHAT, id, outcome)
}

fn required(field: &str, value: &str) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::Input(format!("{field} must not be empty")));
    }
    Ok(trimmed.to_string())
}

pub(crate) fn record_visit(client: &Client, visit: NewVisit, now: Millis) -> Result<VisitId> {
    let id = VisitId::new();
    let summary = format!("visit {} ({})", visit.household, visit.outcome);
    edit(client, visit.household.into(), &summary, now, |h: &mut HouseholdFile, principal| {
        h.visits.insert(
            id,
            Visit {
                id,
                visitor: principal.user,
                visitor_name: principal.name.clone(),
                at: visit.at,
                recorded_at: now,
                outcome: visit.outcome,
                notes: visit.notes.trim().to_string(),
                needs_found: visit.needs_found.clone(),
                follow_up: visit.follow_up,
                residents_present: visit.residents_present.clone(),
            },
        );
        // Needs found at the door become open needs of the household.
        for need in &visit.needs_found {
            h.needs
                .entry(*need)
                .or_insert_with(|| NeedEntry { since: local_date(visit.at.min(now)), note: String::new() });
        }
        Ok(())
    })?;
    Ok(id)
}

/// The unit and room of every household of `building` still living there.
fn occupied_rooms(client: &Client, building: gridlink_shared::BuildingId) -> Result<Vec<(String, String)>> {
    let conn = client.db();
    let mut statement = conn.prepare("SELECT unit, room FROM households WHERE building_id = ?1 AND moved_out = 0")?;
    let rows = statement
        .query_map([building.to_string()], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Every field problem of a household about to be filed, checked by the shared validator
/// against this phone's own store (a room already lived in, in the same building and unit):
/// `None` marks a household field, `Some(i)` a field of `residents[i]`. Empty when it may be
/// saved.
pub(crate) fn new_household_problems(
    client: &Client,
    input: &NewHousehold,
    residents: &[ResidentInput],
) -> Result<Vec<(Option<usize>, FieldError)>> {
    let mut problems = Vec::new();
    let occupied = occupied_rooms(client, input.building)?;
    if let Err(e) =
        validate::check_room_free(&input.unit, &input.room, occupied.iter().map(|(u, r)| (u.as_str(), r.as_str())))
    {
        problems.push((None, e));
    }
    if input.head.trim().is_empty() {
        problems.push((
            None,
            FieldError {
                field: Field::Head, zh: "请填写户主姓名".into(), en: "Give the head of household".into()
            },
        ));
    }
    if let Err(e) = validate::check_phone(Field::Phone, &input.phone) {
        problems.push((None, e));
    }
    for (i, resident) in residents.iter().enumerate() {
        if resident.name.trim().is_empty() {
            problems.push((
                Some(i),
                FieldError {
                    field: Field::ResidentName,
                    zh: "请填写姓名".into(),
                    en: "Give the resident's name".into(),
                },
            ));
        }
        if let Err(e) = validate::check_phone(Field::ResidentPhone, &resident.phone) {
            problems.push((Some(i), e));
        }
        if let Err(e) = validate::check_id_number(resident.id_number.as_deref().unwrap_or("")) {
            problems.push((Some(i), e));
        }
    }
    Ok(problems)
}

/// Refuses input with field problems, naming the first in both languages.
fn refuse_problems(problems: Vec<(Option<usize>, FieldError)>) -> Result<()> {
    match problems.into_iter().next() {
        None => Ok(()),
        Some((_, e)) => Err(Error::Invalid(e.into())),
    }
}

/// The household file for `input`, not yet saved.
fn new_household_file(client: &Client, input: &NewHousehold, now: Millis) -> Result<HouseholdFile> {
    let roster = store::roster(&client.db())?;
    let building = roster
        .buildings
        .iter()
        .find(|b| b.id == input.building)
        .ok_or_else(|| Error::NotFound { what: "building", id: input.building.to_string() })?;
    let placement = roster
        .placement_of_building(input.building)
        .ok_or_else(|| Error::NotFound { what: "building", id: input.building.to_string() })?;
    let mut file = HouseholdFile::new(
        HouseholdId::new(),
        placement,
        &building.name,
        input.unit.trim(),
        &required("room", &input.room)?,
        &required("head of household", &input.head)?,
        now,
    );
    file.phone = input.phone.trim().to_string();
    file.notes = input.notes.trim().to_string();
    Ok(file)
}

pub(crate) fn add_household(client: &Client, input: NewHousehold, now: Millis) -> Result<HouseholdId> {
    refuse_problems(new_household_problems(client, &input, &[])?)?;
    let file = new_household_file(client, &input, now)?;
    create(client, &file, &format!("add household {}", file.address()), now)?;
    Ok(file.id)
}

/// Files a newly moved-in household (新迁入) with its residents in one change: the
/// new-arrival must-visit tag starts on the move-in day (today when not given), so its
/// first-visit deadline (policy) runs from the moment the file exists, on every phone.
pub(crate) fn file_new_arrival(
    client: &Client,
    input: NewHousehold,
    residents: Vec<ResidentInput>,
    moved_in_on: Option<NaiveDate>,
    now: Millis,
) -> Result<HouseholdId> {
    refuse_problems(new_household_problems(client, &input, &residents)?)?;
    let today = local_date(now);
    let moved_in_on = moved_in_on.unwrap_or(today);
    if moved_in_on > today {
        return Err(Error::Input(format!("the move-in date {moved_in_on} is in the future")));
    }
    let principal = store::principal(&client.db())?;
    let mut file = new_household_file(client, &input, now)?;
    for resident_input in &residents {
        let id = ResidentId::new();
        let mut resident = empty_resident(id, resident_input);
        fill_resident(&mut resident, resident_input)?;
        file.residents.insert(id, resident);
    }
    file.tags.insert(
        MustVisitTag::NewArrival,
        TagEntry { since: moved_in_on, added_by: principal.user, note: String::new() },
    );
    create(client, &file, &format!("file new arrival {}", file.address()), now)?;
    Ok(file.id)
}

/// Records that a resident moved out or passed away on `on`, or (with `None`) withdraws a
/// mistaken record. The resident stays on the file: visits that met them keep their name.
pub(crate) fn set_departure(
    client: &Client,
    household: HouseholdId,
    resident: ResidentId,
    departure: Option<(DepartureKind, NaiveDate)>,
    note: &str,
    now: Millis,
) -> Result<()> {
    if let Some((_, on)) = departure
        && on > local_date(now)
    {
        return Err(Error::Input(format!("the date {on} is in the future")));
    }
    let summary = match departure {
        Some((kind, _)) => format!("resident {kind}"),
        None => "resident back on the file".to_string(),
    };
    edit(client, household.into(), &summary, now, |h: &mut HouseholdFile, principal| {
        if !h.residents.contains_key(&resident) {
            return Err(Error::NotFound { what: "resident", id: resident.to_string() });
        }
        match departure {
            Some((kind, on)) => {
                h.departures.insert(
                    resident,
                    Departure { kind, on, recorded_by: principal.user, note: note.trim().to_string() },
                );
            }
            None => {
                h.departures.remove(&resident);
            }
        }
        Ok(())
    })
}

pub(crate) fn edit_household(client: &Client, id: HouseholdId, e: HouseholdEdit, now: Millis) -> Result<()> {
    edit(client, id.into(), "edit household", now, |h: &mut HouseholdFile, _| {
        if let Some(head) = &e.head {
            h.head = required("head of household", head)?;
        }
        if let Some(phone) = &e.phone {
            h.phone = phone.trim().to_string();
        }
        if let Some(notes) = &e.notes {
            h.notes = notes.trim().to_string();
        }
        match e.status {
            Some(HouseholdStatus::MovedOut) => {
                h.status = HouseholdStatus::MovedOut;
                h.moved_out_on = Some(e.moved_out_on.unwrap_or_else(|| local_date(now)));
            }
            Some(HouseholdStatus::Active) => {
                h.status = HouseholdStatus::Active;
                h.moved_out_on = None;
            }
            None => {
                if e.moved_out_on.is_some() && h.status == HouseholdStatus::MovedOut {
                    h.moved_out_on = e.moved_out_on;
                }
            }
        }
        Ok(())
    })
}

fn fill_resident(r: &mut Resident, input: &ResidentInput) -> Result<()> {
    r.name = required("resident name", &input.name)?;
    r.sex = input.sex;
    r.birth_year = input.birth_year;
    r.relation = input.relation.trim().to_string();
    r.phone = input.phone.trim().to_string();
    if let Some(number) = &input.id_number {
        r.id_number = number.trim().to_uppercase();
    }
    r.flags = input.flags.iter().map(|f| (*f, true)).collect();
    Ok(())
}

fn empty_resident(id: ResidentId, input: &ResidentInput) -> Resident {
    Resident {
        id,
        name: String::new(),
        sex: input.sex,
        birth_year: input.birth_year,
        relation: String::new(),
        phone: String::new(),
        id_number: String::new(),
        flags: Default::default(),
    }
}

pub(crate) fn add_resident(
    client: &Client,
    household: HouseholdId,
    input: ResidentInput,
    now: Millis,
) -> Result<ResidentId> {
    let id = ResidentId::new();
    edit(client, household.into(), "add resident", now, |h: &mut HouseholdFile, _| {
        let mut resident = empty_resident(id, &input);
        fill_resident(&mut resident, &input)?;
        h.residents.insert(id, resident);
        Ok(())
    })?;
    Ok(id)
}

pub(crate) fn edit_resident(
    client: &Client,
    household: HouseholdId,
    resident: ResidentId,
    input: ResidentInput,
    now: Millis,
) -> Result<()> {
    edit(client, household.into(), "edit resident", now, |h: &mut HouseholdFile, _| {
        let r = h
            .residents
            .get_mut(&resident)
            .ok_or_else(|| Error::NotFound { what: "resident", id: resident.to_string() })?;
        fill_resident(r, &input)
    })
}

pub(crate) fn set_tag(
    client: &Client,
    household: HouseholdId,
    tag: MustVisitTag,
    on: bool,
    since: Option<chrono::NaiveDate>,
    now: Millis,
) -> Result<()> {
    let summary = format!("{} tag {tag}", if on { "add" } else { "remove" });
    edit(client, household.into(), &summary, now, |h: &mut HouseholdFile, principal| {
        if on {
            let since = since.unwrap_or_else(|| local_date(now));
            match h.tags.get_mut(&tag) {
                Some(entry) => entry.since = since,
                None => {
                    h.tags.insert(tag, TagEntry { since, added_by: principal.user, note: String::new() });
                }
            }
        } else {
            h.tags.remove(&tag);
        }
        Ok(())
    })
}

pub(crate) fn set_need(
    client: &Client,
    household: HouseholdId,
    need: HelpNeed,
    on: bool,
    note: &str,
    now: Millis,
) -> Result<()> {
    let summary = format!("{} need {need}", if on { "add" } else { "remove" });
    edit(client, household.into(), &summary, now, |h: &mut HouseholdFile, _| {
        if on {
            let entry =
                h.needs.entry(need).or_insert_with(|| NeedEntry { since: local_date(now), note: String::new() });
            entry.note = note.trim().to_string();
        } else {
            h.needs.remove(&need);
        }
        Ok(())
    })
}

pub(crate) fn open_case(client: &Client, input: NewCase, now: Millis) -> Result<CaseId> {
    let (principal, roster) = {
        let conn = client.db();
        (store::principal(&conn)?, store::roster(&conn)?)
    };
    let placement = if let Some(household) = input.household {
        crate::reads::load_household(&client.db(), household)?.placement
    } else if let Some(building) = input.building {
        roster
            .placement_of_building(building)
            .ok_or_else(|| Error::NotFound { what: "building", id: building.to_string() })?
    } else {
        // A case about no particular address goes to the first grid the author covers.
        principal
            .scopes
            .iter()
            .find_map(|scope| match scope {
                gridlink_shared::Scope::Grid(grid) => roster.placement_of_grid(*grid),
                gridlink_shared::Scope::Building(b) => roster.placement_of_building(*b),
                _ => None,
            })
            .ok_or_else(|| Error::Input("name a household or a building for this case".into()))?
    };
    // First-asked responsibility (首问负责): a grid worker answers for what they open; a report
    // from anyone else goes to the grid worker of that grid.
    let responsible = if principal.role == Role::GridWorker {
        (principal.user, principal.name.clone())
    } else {
        roster
            .staff
            .iter()
            .filter(|s| s.role == Role::GridWorker)
            .find(|s| s.scopes.iter().any(|scope| placement.is_within(scope)))
            .map(|s| (s.id, s.name.clone()))
            .unwrap_or((principal.user, principal.name.clone()))
    };
    let id = CaseId::new();
    let case = CaseFile::new(
        id,
        input.kind,
        placement,
        input.household,
        &required("title", &input.title)?,
        input.note.trim(),
        (principal.user, &principal.name),
        (responsible.0, &responsible.1),
        input.at,
    );
    create(client, &case, &format!("open case {}", input.kind), now)?;
    Ok(id)
}

pub(crate) fn act_on_case(client: &Client, input: CaseAction, now: Millis) -> Result<()> {
    add_action(client, input, None, None, now)
}

/// Adds one action, with the claimant of a claim or the outlet of a referral, once the
/// status and the role allow it ([`crate::reads::allowed_actions`]).
fn add_action(
    client: &Client,
    input: CaseAction,
    claimant: Option<Claimant>,
    outlet: Option<OutletRef>,
    now: Millis,
) -> Result<()> {
    let roster = store::roster(&client.db())?;
    let to_name = match input.to {
        Some(to) => Some(
            roster
                .staff
                .iter()
                .find(|s| s.id == to)
                .map(|s| s.name.clone())
                .ok_or_else(|| Error::NotFound { what: "staff member", id: to.to_string() })?,
        ),
        None => None,
    };
    if input.action == ActionKind::Reassign && input.to.is_none() {
        return Err(Error::Input("reassign needs the person to hand the case to".into()));
    }
    if input.action == ActionKind::Claim && claimant.is_none() {
        return Err(Error::Input("a claim names who claims the wish: use claim_wish".into()));
    }
    if input.action == ActionKind::Refer && outlet.is_none() {
        return Err(Error::Input("a referral names the outlet: use refer_to_outlet".into()));
    }
    let summary = format!("{} case", input.action);
    edit(client, input.case.into(), &summary, now, |c: &mut CaseFile, principal| {
        if !crate::reads::allowed_actions(c, principal.role).contains(&input.action) {
            let status = c.kind.status_label(c.status(), gridlink_shared::Lang::Zh);
            return Err(Error::Input(format!(
                "cannot {} a {} that is {} ({})",
                input.action.en().to_lowercase(),
                c.kind.en().to_lowercase(),
                c.kind.status_label(c.status(), gridlink_shared::Lang::En).to_lowercase(),
                status
            )));
        }
        c.push_action(Action {
            id: ActionId::new(),
            kind: input.action,
            by: principal.user,
            by_name: principal.name.clone(),
            at: now,
            lamport: 0,
            note: input.note.trim().to_string(),
            satisfaction: input.satisfaction,
            to: input.to,
            to_name: to_name.clone(),
            claimant: claimant.clone(),
            outlet: outlet.clone(),
        });
        Ok(())
    })
}

/// The claimant's name as the roster on this phone has it; a staff user claims only as
/// themself (the validator refuses a volunteer claiming for someone else anyway).
fn claimant_named(client: &Client, id: ClaimantId) -> Result<Claimant> {
    let conn = client.db();
    let roster = store::roster(&conn)?;
    let name = match id {
        ClaimantId::PartyMember(m) => roster.party_members.iter().find(|x| x.id == m).map(|x| x.name.clone()),
        ClaimantId::Volunteer(v) => roster.volunteers.iter().find(|x| x.id == v).map(|x| x.name.clone()),
        ClaimantId::Staff(u) => roster.staff.iter().find(|x| x.id == u).map(|x| x.name.clone()),
    };
    let name = name.ok_or_else(|| Error::NotFound { what: "party member or volunteer", id: id.to_string() })?;
    Ok(Claimant { id, name })
}

/// The micro-wish lifecycle and referrals. Beside the writes they call, like the filing API.
impl Client {
    /// Claims a micro-wish (认领) for a party member or volunteer of the roster (a grid worker
    /// records it for them), or for the enrolled user themself (`ClaimantId::Staff`).
    pub fn claim_wish(&self, case: CaseId, claimant: ClaimantId, note: &str, now: Millis) -> Result<()> {
        let claimant = claimant_named(self, claimant)?;
        let input =
            CaseAction { case, action: ActionKind::Claim, note: note.to_string(), satisfaction: None, to: None };
        add_action(self, input, Some(claimant), None, now)
    }

    /// Refers a help request (转介) to a service outlet of the directory on this phone.
    pub fn refer_to_outlet(&self, case: CaseId, outlet: OutletId, note: &str, now: Millis) -> Result<()> {
        let roster = store::roster(&self.db())?;
        let found = roster
            .outlets
            .iter()
            .find(|o| o.id == outlet)
            .ok_or_else(|| Error::NotFound { what: "service outlet", id: outlet.to_string() })?;
        let outlet = OutletRef { id: found.id, name: found.name.clone() };
        let input =
            CaseAction { case, action: ActionKind::Refer, note: note.to_string(), satisfaction: None, to: None };
        add_action(self, input, None, Some(outlet), now)
    }
}

// ----- household filing (public API) ------------------------------------------------------

/// Filing new arrivals and residents' departures. Kept beside the writes they call; the rest
/// of the public API is in lib.rs.
impl Client {
    /// Every field problem of a household about to be filed (see [`Client::file_new_arrival`]),
    /// for the form to show at each field: `None` marks a household field, `Some(i)` a field
    /// of `residents[i]`. The same checks the server runs, plus a room already lived in,
    /// which this phone checks against its own store.
    pub fn new_household_problems(
        &self,
        household: &NewHousehold,
        residents: &[ResidentInput],
    ) -> Result<Vec<(Option<usize>, FieldError)>> {
        new_household_problems(self, household, residents)
    }

    /// Files a newly moved-in household (新迁入) with its residents; the new-arrival tag starts
    /// on `moved_in_on` (today when `None`) and with it the first-visit deadline.
    pub fn file_new_arrival(
        &self,
        household: NewHousehold,
        residents: Vec<ResidentInput>,
        moved_in_on: Option<NaiveDate>,
        now: Millis,
    ) -> Result<HouseholdId> {
        file_new_arrival(self, household, residents, moved_in_on, now)
    }

    /// Records that a resident moved out or passed away (`Some`), or withdraws that record
    /// (`None`). The resident stays listed on the file, marked.
    pub fn set_departure(
        &self,
        household: HouseholdId,
        resident: ResidentId,
        departure: Option<(DepartureKind, NaiveDate)>,
        note: &str,
        now: Millis,
    ) -> Result<()> {
        set_departure(self, household, resident, departure, note, now)
    }
}

// ----- app lock -----------------------------------------------------------------------------

/// The app-lock PIN of an older version: a salted hash inside the database, checked only to
/// move it to the wrapped key ([`set_pin`]) the first time it is typed.
fn legacy_pin_hash(salt: &str, pin: &str) -> String {
    let mut digest = Sha256::digest(format!("{salt}:{pin}").as_bytes());
    for _ in 0..10_000 {
        digest = Sha256::digest(digest);
    }
    hex::encode(digest)
}

pub(crate) fn set_pin(client: &Client, pin: &str) -> Result<()> {
    if !(4..=12).contains(&pin.len()) || !pin.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::Input("a PIN is 4 to 12 digits".into()));
    }
    keys::set_pin(client.dir(), &client.inner.key, pin)?;
    let conn = client.db();
    store::meta_delete(&conn, "pin_salt")?;
    store::meta_delete(&conn, "pin_hash")
}

pub(crate) fn verify_pin(client: &Client, pin: &str, now: Millis) -> Result<()> {
    if keys::has_pin(client.dir())? {
        let key = keys::unlock_with_pin(client.dir(), pin, now)?;
        if key != client.inner.key {
            return Err(Error::Corrupt("the PIN-wrapped key is not the key of this store".into()));
        }
        return Ok(());
    }
    let legacy = {
        let conn = client.db();
        (store::meta_get(&conn, "pin_salt")?, store::meta_get(&conn, "pin_hash")?)
    };
    match legacy {
        (Some(salt), Some(hash)) if legacy_pin_hash(&salt, pin) == hash => set_pin(client, pin),
        (Some(_), Some(_)) => Err(Error::WrongPin { left: keys::MAX_PIN_FAILURES, wait_ms: 0 }),
        _ => Ok(()),
    }
}

pub(crate) fn has_pin(client: &Client) -> Result<bool> {
    Ok(keys::has_pin(client.dir())? || store::meta_get(&client.db(), "pin_hash")?.is_some())
}

pub(crate) fn logout(client: &Client, force: bool) -> Result<()> {
    let conn = client.db();
    let unsent = store::count(&conn, "outbox")?;
    let rejected = store::count(&conn, "rejected")?;
    if (unsent > 0 || rejected > 0) && !force {
        return Err(Error::Unsent { unsent, rejected });
    }
    conn.execute_batch(
        "BEGIN;
         DELETE FROM docs; DELETE FROM outbox; DELETE FROM cursors; DELETE FROM rejected;
         DELETE FROM repair_wanted; DELETE FROM households; DELETE FROM residents; DELETE FROM visits;
         DELETE FROM household_tags; DELETE FROM cases; DELETE FROM timeline; DELETE FROM meta;
         DELETE FROM quarantine;
         COMMIT;",
    )?;
    Ok(())
}
