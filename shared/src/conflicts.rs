//! Concurrent edits of a household file (the review queue, 待确认的修改).
//!
//! automerge merges two offline edits of one field by keeping both values and showing the one
//! with the higher op id; the other stays in the document, invisible. This module finds those
//! fields ([`find`]), says what they are in people's words ([`describe`], [`show_value`]),
//! writes a person's pick as an ordinary put whose predecessors are all the concurrent values
//! ([`pick`]), and tells the validator whether a change does nothing but such picks
//! ([`is_pick_only`], [`check_edit_or_pick`]) so that a supervisor, who may not edit household
//! files, may still settle them. Pure: callers pass the documents.
//!
//! Only scalar fields are listed (text, numbers, dates, codes, flags). Two phones creating the
//! same map entry at once (one tag added on both) leave two objects at one key; their fields
//! are read from the one automerge shows, and the other object is not listed.

use std::collections::{BTreeMap, HashMap};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

use crate::codes::{HelpNeed, HouseholdStatus, Lang, MustVisitTag, ResidentFlag, Role, Sex, VisitOutcome};
use crate::doc::AnyDoc;
use crate::household::{DepartureKind, HouseholdFile, mask_id_number};
use crate::org::Principal;
use crate::time::Millis;
use crate::validate::{RejectCode, ValidationError, check_edit};

/// At most this many conflicted fields are listed per document (a hostile document may hold
/// thousands); [`Scan::truncated`] says when more existed.
pub const MAX_CONFLICTS: usize = 50;
/// At most this many values are listed per field.
pub const MAX_VALUES: usize = 8;
/// At most this many map keys are looked at per document: the walk is bounded whatever the
/// document holds. A household file with years of visits has a few thousand.
pub const MAX_KEYS: usize = 50_000;
/// Household files nest four maps deep (residents > id > flags > flag); deeper is not walked.
const MAX_DEPTH: usize = 6;

/// A scalar value as stored in the document, in a form that travels (serde) and compares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "kebab-case")]
pub enum PlainValue {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    F64(f64),
    Str(String),
}

impl PlainValue {
    fn from_scalar(s: &ScalarValue) -> Option<PlainValue> {
        Some(match s {
            ScalarValue::Null => PlainValue::Null,
            ScalarValue::Boolean(b) => PlainValue::Bool(*b),
            ScalarValue::Int(i) => PlainValue::Int(*i),
            ScalarValue::Uint(u) => PlainValue::Uint(*u),
            ScalarValue::F64(f) => PlainValue::F64(*f),
            ScalarValue::Str(s) => PlainValue::Str(s.to_string()),
            // Never written by Gridlink's documents; a field holding them is not listed.
            _ => return None,
        })
    }

    fn to_scalar(&self) -> ScalarValue {
        match self {
            PlainValue::Null => ScalarValue::Null,
            PlainValue::Bool(b) => ScalarValue::Boolean(*b),
            PlainValue::Int(i) => ScalarValue::Int(*i),
            PlainValue::Uint(u) => ScalarValue::Uint(*u),
            PlainValue::F64(f) => ScalarValue::F64(*f),
            PlainValue::Str(s) => ScalarValue::Str(s.as_str().into()),
        }
    }
}

/// One of the values a field held at once, and who wrote it when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConcurrentValue {
    pub value: PlainValue,
    /// The automerge actor (hex) that wrote it: a device, bound to its user on the server.
    pub actor: String,
    /// When the change that wrote it was made (the writing device's clock), if found.
    pub at: Option<Millis>,
    /// The value automerge shows today.
    pub current: bool,
}

/// A field that holds more than one value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// The map keys from the document root, e.g. `["residents", "<id>", "phone"]`.
    pub path: Vec<String>,
    /// Every value (at most [`MAX_VALUES`]), oldest op first; the current one is marked.
    pub values: Vec<ConcurrentValue>,
}

/// The conflicted fields of one document.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scan {
    pub conflicts: Vec<Conflict>,
    /// More conflicts (or more keys) existed than were looked at.
    pub truncated: bool,
}

/// One map key as the walk meets it.
struct Slot<'a> {
    /// The keys of the map holding it.
    parent: &'a [String],
    key: &'a str,
    /// What automerge shows at this key.
    shown: Held,
    /// (value, op counter, actor) of every value, oldest op first, when it holds more than
    /// one (empty otherwise: reading them costs a lookup, and most keys hold one); `None`
    /// value for an object.
    values: Vec<(Option<PlainValue>, u64, automerge::ActorId)>,
}

impl Slot<'_> {
    fn path(&self) -> Vec<String> {
        let mut path = self.parent.to_vec();
        path.push(self.key.to_string());
        path
    }
}

/// Walks every map key under the root, depth first, calling `visit` with each; stops (and
/// returns `false`) after [`MAX_KEYS`] keys or when `visit` returns `false`. One pass of
/// `map_range` per map, whose items say whether the key holds concurrent values; only those
/// keys are looked up again with `get_all`.
fn walk(doc: &impl ReadDoc, mut visit: impl FnMut(Slot<'_>) -> bool) -> bool {
    let mut budget = MAX_KEYS;
    let mut stack: Vec<(ObjId, Vec<String>)> = vec![(automerge::ROOT, Vec::new())];
    while let Some((obj, path)) = stack.pop() {
        for item in doc.map_range(&obj, ..) {
            if budget == 0 {
                return false;
            }
            budget -= 1;
            let shown = match item.value.clone().into_value() {
                Value::Object(t) => {
                    if t == ObjType::Map && path.len() + 1 < MAX_DEPTH {
                        let mut child = path.clone();
                        child.push(item.key.to_string());
                        stack.push((item.id(), child));
                    }
                    Held::Object(t)
                }
                Value::Scalar(s) => Held::Scalar(PlainValue::from_scalar(&s)),
            };
            let mut values = Vec::new();
            if item.conflict {
                for (value, id) in doc.get_all(&obj, item.key.as_ref()).unwrap_or_default() {
                    let ObjId::Id(counter, actor, _) = id else { continue };
                    let plain = match value {
                        Value::Scalar(s) => PlainValue::from_scalar(&s),
                        Value::Object(_) => None,
                    };
                    values.push((plain, counter, actor));
                }
            }
            if !visit(Slot { parent: &path, key: item.key.as_ref(), shown, values }) {
                return false;
            }
        }
    }
    true
}

/// The scalar fields of `doc` holding more than one value, bounded by [`MAX_CONFLICTS`] and
/// [`MAX_KEYS`]. Each value carries the actor and time of the change that wrote it.
pub fn find(doc: &mut AutoCommit) -> Scan {
    #[allow(clippy::type_complexity)]
    let mut found: Vec<(
        Vec<String>,
        Vec<(PlainValue, u64, automerge::ActorId)>,
        Option<(u64, automerge::ActorId)>,
    )> = Vec::new();
    let mut truncated = false;
    let complete = walk(&*doc, |slot| {
        if slot.values.len() < 2 {
            return true;
        }
        let path = slot.path();
        // Only conflicts between scalars: an object at one key has no value to pick.
        let scalars: Option<Vec<_>> = slot.values.into_iter().map(|(v, c, a)| v.map(|v| (v, c, a))).collect();
        let Some(mut scalars) = scalars else { return true };
        if found.len() == MAX_CONFLICTS {
            truncated = true;
            return false;
        }
        // `get_all` lists in op order; the last is the one shown.
        let current = scalars.last().map(|(_, c, a)| (*c, a.clone()));
        if scalars.len() > MAX_VALUES {
            truncated = true;
            scalars.drain(..scalars.len() - MAX_VALUES);
        }
        found.push((path, scalars, current));
        true
    });
    truncated |= !complete;
    if found.is_empty() {
        return Scan { conflicts: Vec::new(), truncated };
    }
    // Who wrote each value: the change of that actor whose op range holds the op's counter.
    let mut changes: HashMap<automerge::ActorId, Vec<(u64, u64, Millis)>> = HashMap::new();
    for meta in doc.get_changes_meta(&[]) {
        changes.entry(meta.actor.into_owned()).or_default().push((meta.start_op, meta.max_op, meta.timestamp));
    }
    let time_of = |counter: u64, actor: &automerge::ActorId| {
        changes
            .get(actor)
            .and_then(|ranges| ranges.iter().find(|(start, max, _)| (*start..=*max).contains(&counter)))
            .map(|(_, _, at)| *at)
    };
    let conflicts = found
        .into_iter()
        .map(|(path, values, current)| Conflict {
            path,
            values: values
                .into_iter()
                .map(|(value, counter, actor)| ConcurrentValue {
                    value,
                    at: time_of(counter, &actor),
                    current: current.as_ref() == Some(&(counter, actor.clone())),
                    actor: actor.to_hex_string(),
                })
                .collect(),
        })
        .collect();
    Scan { conflicts, truncated }
}

/// Why a pick was not written.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PickError {
    #[error("the field {0} holds no concurrent values any more")]
    NoConflict(String),
    #[error("the chosen value is not one of the field's values")]
    NotAValue,
    #[error("automerge error: {0}")]
    Automerge(String),
}

/// Writes `value`, one of the values the field at `path` holds, as a new put on that key.
/// automerge makes every value it currently holds the put's predecessor, so once the change
/// reaches a replica the field holds the one value there too. The caller commits.
pub fn pick(doc: &mut AutoCommit, path: &[String], value: &PlainValue) -> Result<(), PickError> {
    let joined = || path.join("/");
    let (last, parents) = path.split_last().ok_or_else(|| PickError::NoConflict(joined()))?;
    let mut obj = automerge::ROOT;
    for key in parents {
        match doc.get(&obj, key.as_str()) {
            Ok(Some((Value::Object(ObjType::Map), id))) => obj = id,
            _ => return Err(PickError::NoConflict(joined())),
        }
    }
    let all = doc.get_all(&obj, last.as_str()).map_err(|e| PickError::Automerge(e.to_string()))?;
    if all.len() < 2 {
        return Err(PickError::NoConflict(joined()));
    }
    let held =
        all.iter().any(|(v, _)| matches!(v, Value::Scalar(s) if PlainValue::from_scalar(s).as_ref() == Some(value)));
    if !held {
        return Err(PickError::NotAValue);
    }
    doc.put(&obj, last.as_str(), value.to_scalar()).map_err(|e| PickError::Automerge(e.to_string()))
}

/// What a key holds, for comparing two versions of a document.
#[derive(Clone, Debug, PartialEq)]
enum Held {
    Object(ObjType),
    Scalar(Option<PlainValue>),
}

/// Every key of a document: what it shows and, when it holds more than one value, all of
/// them. `None` when the document is too large to walk.
#[allow(clippy::type_complexity)]
fn snapshot(doc: &impl ReadDoc) -> Option<BTreeMap<Vec<String>, (Held, Vec<Option<PlainValue>>)>> {
    let mut keys = BTreeMap::new();
    let complete = walk(doc, |slot| {
        let all = slot.values.iter().map(|(v, _, _)| v.clone()).collect();
        keys.insert(slot.path(), (slot.shown, all));
        true
    });
    complete.then_some(keys)
}

/// Whether `after` differs from `before` only by picks: every key whose shown value changed
/// held several values in `before`, one of them the new one; no key was added or removed; a
/// key holding several values holds only values it held before. Such a change settles conflicts and writes
/// nothing new.
pub fn is_pick_only(before: &impl ReadDoc, after: &impl ReadDoc) -> bool {
    let (Some(old), Some(new)) = (snapshot(before), snapshot(after)) else { return false };
    if old.len() != new.len() {
        return false;
    }
    for (path, (shown, all)) in &new {
        let Some((old_shown, old_all)) = old.get(path) else { return false };
        // Still several values: only ones it held before (a crafted change could add another
        // beside them by naming only some of them as predecessors).
        if !all.iter().all(|v| old_all.contains(v)) {
            return false;
        }
        if shown != old_shown {
            let Held::Scalar(value) = shown else { return false };
            if !old_all.contains(value) || value.is_none() {
                return false;
            }
        }
    }
    true
}

/// The validator for a change, given the documents as automerge holds them: [`check_edit`],
/// and, for a supervisor refused only for their role on a household file, a change that does
/// nothing but pick among concurrent values ([`is_pick_only`]) is allowed (issue #12: a worker
/// or a supervisor settles a conflict). Scope and document checks still apply.
pub fn check_edit_or_pick(
    before_doc: &impl ReadDoc,
    before: Option<&AnyDoc>,
    after_doc: &impl ReadDoc,
    after: &AnyDoc,
    author: &Principal,
) -> Result<(), ValidationError> {
    match check_edit(before, after, author) {
        Err(e)
            if e.code == RejectCode::ForbiddenRole
                && author.role == Role::Supervisor
                && matches!((before, after), (Some(AnyDoc::Household(_)), AnyDoc::Household(_)))
                && is_pick_only(before_doc, after_doc) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// The field at `path` in people's words, e.g. 户主电话, 居民「张秀英」的电话.
pub fn describe(path: &[String], file: &HouseholdFile, lang: Lang) -> String {
    let zh = lang == Lang::Zh;
    let pick = |z: &str, e: &str| if zh { z.to_string() } else { e.to_string() };
    let keys: Vec<&str> = path.iter().map(String::as_str).collect();
    let resident_name = |id: &str| {
        file.residents.iter().find(|(rid, _)| rid.to_string() == id).map(|(_, r)| r.name.clone()).unwrap_or_default()
    };
    match keys.as_slice() {
        ["head"] => pick("户主", "Head of household"),
        ["phone"] => pick("户主电话", "Household phone"),
        ["unit"] => pick("单元", "Unit"),
        ["room"] => pick("房号", "Room"),
        ["building_name"] => pick("楼栋", "Building"),
        ["notes"] => pick("备注", "Notes"),
        ["status"] => pick("住户状态", "Status"),
        ["moved_out_on"] => pick("迁出日期", "Moved out on"),
        ["residents", id, rest @ ..] => {
            let name = resident_name(id);
            let field = match rest {
                ["name"] => pick("姓名", "name"),
                ["sex"] => pick("性别", "sex"),
                ["birth_year"] => pick("出生年份", "birth year"),
                ["relation"] => pick("与户主关系", "relation to the head"),
                ["phone"] => pick("电话", "phone"),
                ["id_number"] => pick("身份证号", "ID number"),
                ["flags", flag] => {
                    let label = flag.parse::<ResidentFlag>().map(|f| f.label(lang).to_string());
                    let label = label.unwrap_or_else(|_| flag.to_string());
                    if zh { format!("「{label}」标记") } else { format!("{label} flag") }
                }
                other => other.join("/"),
            };
            if zh { format!("居民「{name}」的{field}") } else { format!("Resident {name}: {field}") }
        }
        ["departures", id, rest @ ..] => {
            let name = resident_name(id);
            let field = match rest {
                ["kind"] => pick("离开方式", "how they left"),
                ["on"] => pick("离开日期", "date left"),
                ["note"] => pick("离开说明", "note on leaving"),
                other => other.join("/"),
            };
            if zh { format!("居民「{name}」的{field}") } else { format!("Resident {name}: {field}") }
        }
        [kind @ ("tags" | "needs"), code, rest @ ..] => {
            let label = if *kind == "tags" {
                code.parse::<MustVisitTag>().map(|t| t.label(lang).to_string())
            } else {
                code.parse::<HelpNeed>().map(|n| n.label(lang).to_string())
            }
            .unwrap_or_else(|_| code.to_string());
            let field = match rest {
                ["since"] => pick("起始日期", "start date"),
                ["note"] => pick("说明", "note"),
                ["added_by"] => pick("登记人", "added by"),
                other => other.join("/"),
            };
            if zh { format!("「{label}」的{field}") } else { format!("{label}: {field}") }
        }
        ["visits", id, rest @ ..] => {
            let day = file
                .visits
                .iter()
                .find(|(vid, _)| vid.to_string() == *id)
                .map(|(_, v)| crate::time::local_date(v.at).to_string())
                .unwrap_or_default();
            let field = match rest {
                ["notes"] => pick("记录", "notes"),
                ["outcome"] => pick("结果", "outcome"),
                ["follow_up"] => pick("回访日期", "follow-up date"),
                ["at"] => pick("走访时间", "time"),
                other => other.join("/"),
            };
            if zh { format!("{day}走访的{field}") } else { format!("Visit of {day}: {field}") }
        }
        other => other.join("/"),
    }
}

/// A value as people read it: codes as their labels, ID numbers masked, blanks named.
pub fn show_value(path: &[String], value: &PlainValue, lang: Lang) -> String {
    let zh = lang == Lang::Zh;
    let last = path.last().map(String::as_str).unwrap_or("");
    match value {
        PlainValue::Null => (if zh { "（无）" } else { "(none)" }).to_string(),
        PlainValue::Bool(b) => (match (b, zh) {
            (true, true) => "是",
            (false, true) => "否",
            (true, false) => "yes",
            (false, false) => "no",
        })
        .to_string(),
        PlainValue::Int(i) => i.to_string(),
        PlainValue::Uint(u) => u.to_string(),
        PlainValue::F64(f) => f.to_string(),
        PlainValue::Str(s) if s.trim().is_empty() => (if zh { "（空）" } else { "(empty)" }).to_string(),
        PlainValue::Str(s) => {
            let label = match last {
                "id_number" => return mask_id_number(s),
                "status" => s.parse::<HouseholdStatus>().map(|c| c.label(lang)).ok(),
                "sex" => s.parse::<Sex>().map(|c| c.label(lang)).ok(),
                "kind" => s.parse::<DepartureKind>().map(|c| c.label(lang)).ok(),
                "outcome" => s.parse::<VisitOutcome>().map(|c| c.label(lang)).ok(),
                _ => None,
            };
            label.map(str::to_string).unwrap_or_else(|| s.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc;
    use crate::ids::*;
    use crate::org::{Placement, Scope};
    use crate::{Resident, Sex};
    use automerge::ActorId;

    fn file() -> HouseholdFile {
        let placement = Placement {
            street: StreetId::from_u128(1),
            community: CommunityId::from_u128(2),
            grid: GridId::from_u128(3),
            building: Some(BuildingId::from_u128(4)),
        };
        let mut f = HouseholdFile::new(HouseholdId::from_u128(9), placement, "滨湖小区7栋", "2", "302", "张桂兰", 1);
        f.phone = "13807110000".into();
        let id = ResidentId::from_u128(5);
        f.residents.insert(
            id,
            Resident {
                id,
                name: "张秀英".into(),
                sex: Sex::Female,
                birth_year: 1948,
                relation: "母亲".into(),
                phone: "13807110001".into(),
                id_number: String::new(),
                flags: BTreeMap::new(),
            },
        );
        f
    }

    /// Two phones with the same file, each editing it offline, then merged.
    fn forked(
        edit_a: impl Fn(&mut HouseholdFile),
        edit_b: impl Fn(&mut HouseholdFile),
    ) -> (AutoCommit, ActorId, ActorId) {
        let (a, b) = (ActorId::from(vec![0xaa; 16]), ActorId::from(vec![0xbb; 16]));
        let base = file();
        let mut phone_a = doc::create(&base, a.clone(), 1_000).unwrap();
        let mut phone_b = phone_a.fork().with_actor(b.clone());
        let mut fa = base.clone();
        edit_a(&mut fa);
        doc::update(&mut phone_a, &fa, "edit household", 2_000).unwrap();
        let mut fb = base;
        edit_b(&mut fb);
        doc::update(&mut phone_b, &fb, "edit household", 3_000).unwrap();
        phone_a.merge(&mut phone_b).unwrap();
        (phone_a, a, b)
    }

    #[test]
    fn two_offline_edits_of_one_field_are_found_with_both_values_authors_and_times() {
        let (mut merged, _, _) = forked(
            |f| f.phone = "13900000001".into(),
            |f| f.residents.values_mut().for_each(|r| r.phone = "13900000002".into()),
        );
        assert!(find(&mut merged).conflicts.is_empty(), "different fields merge without conflict");

        let (mut merged, a, b) = forked(|f| f.phone = "13900000001".into(), |f| f.phone = "13900000002".into());
        let scan = find(&mut merged);
        assert!(!scan.truncated);
        assert_eq!(scan.conflicts.len(), 1);
        let conflict = &scan.conflicts[0];
        assert_eq!(conflict.path, vec!["phone".to_string()]);
        let mut seen: Vec<_> =
            conflict.values.iter().map(|v| (v.value.clone(), v.actor.clone(), v.at, v.current)).collect();
        seen.sort_by(|x, y| x.1.cmp(&y.1));
        assert_eq!(
            seen,
            vec![
                (PlainValue::Str("13900000001".into()), a.to_hex_string(), Some(2_000), false),
                (PlainValue::Str("13900000002".into()), b.to_hex_string(), Some(3_000), true),
            ]
        );
        let read: HouseholdFile = doc::read(&merged).unwrap();
        assert_eq!(describe(&conflict.path, &read, Lang::Zh), "户主电话");
    }

    #[test]
    fn a_resident_field_is_named_by_the_resident_and_id_numbers_stay_masked() {
        let (mut merged, _, _) = forked(
            |f| f.residents.values_mut().for_each(|r| r.id_number = "420704195503120021".into()),
            |f| f.residents.values_mut().for_each(|r| r.id_number = "420704195503120048".into()),
        );
        let scan = find(&mut merged);
        let read: HouseholdFile = doc::read(&merged).unwrap();
        let c = &scan.conflicts[0];
        assert_eq!(describe(&c.path, &read, Lang::Zh), "居民「张秀英」的身份证号");
        assert_eq!(describe(&c.path, &read, Lang::En), "Resident 张秀英: ID number");
        assert_eq!(show_value(&c.path, &c.values[0].value, Lang::Zh), "4207**********0021");
    }

    #[test]
    fn a_pick_clears_the_conflict_on_every_replica_and_is_a_pick_only_change() {
        let (mut merged, _, _) = forked(|f| f.phone = "13900000001".into(), |f| f.phone = "13900000002".into());
        let before = merged.clone();
        let mut other = merged.fork().with_actor(ActorId::from(vec![0xcc; 16]));
        let path = vec!["phone".to_string()];
        // The value not shown today.
        assert_eq!(pick(&mut merged, &path, &PlainValue::Str("13800000000".into())), Err(PickError::NotAValue));
        pick(&mut merged, &path, &PlainValue::Str("13900000001".into())).unwrap();
        merged.commit();
        assert!(find(&mut merged).conflicts.is_empty());
        assert!(is_pick_only(&before, &merged));
        other.merge(&mut merged).unwrap();
        assert!(find(&mut other).conflicts.is_empty());
        assert_eq!(doc::read::<HouseholdFile>(&other).unwrap().phone, "13900000001");
        assert_eq!(
            pick(&mut other, &path, &PlainValue::Str("13900000001".into())),
            Err(PickError::NoConflict("phone".into()))
        );

        // Picking the value already shown also settles it.
        let (mut again, _, _) = forked(|f| f.phone = "13900000001".into(), |f| f.phone = "13900000002".into());
        pick(&mut again, &path, &PlainValue::Str("13900000002".into())).unwrap();
        assert!(find(&mut again).conflicts.is_empty());
    }

    #[test]
    fn sequential_edits_leave_no_conflict() {
        let mut d = doc::create(&file(), ActorId::from(vec![0xaa; 16]), 1).unwrap();
        let mut other = d.fork().with_actor(ActorId::from(vec![0xbb; 16]));
        let mut f = file();
        f.phone = "13900000001".into();
        doc::update(&mut d, &f, "edit", 2).unwrap();
        other.merge(&mut d).unwrap();
        f.phone = "13900000002".into();
        doc::update(&mut other, &f, "edit", 3).unwrap();
        d.merge(&mut other).unwrap();
        assert_eq!(find(&mut d), Scan::default());
    }

    #[test]
    fn a_supervisor_may_pick_but_not_edit() {
        let (merged, _, _) = forked(|f| f.phone = "13900000001".into(), |f| f.phone = "13900000002".into());
        let before: HouseholdFile = doc::read(&merged).unwrap();
        let supervisor = Principal {
            user: UserId::new(),
            name: "李督导".into(),
            role: Role::Supervisor,
            scopes: vec![Scope::Community(CommunityId::from_u128(2))],
        };
        let check = |after_doc: &AutoCommit| {
            let after = AnyDoc::Household(doc::read(after_doc).unwrap());
            check_edit_or_pick(&merged, Some(&AnyDoc::Household(before.clone())), after_doc, &after, &supervisor)
        };
        let mut picked = merged.clone();
        pick(&mut picked, &["phone".to_string()], &PlainValue::Str("13900000001".into())).unwrap();
        picked.commit();
        assert_eq!(check(&picked), Ok(()));

        let mut edited = picked.clone();
        let mut f: HouseholdFile = doc::read(&edited).unwrap();
        f.notes = "督导改的".into();
        doc::update(&mut edited, &f, "edit", 4).unwrap();
        assert_eq!(check(&edited).unwrap_err().code, RejectCode::ForbiddenRole);

        let mut elsewhere = merged.clone();
        elsewhere.put(automerge::ROOT, "head", "别人").unwrap();
        elsewhere.commit();
        assert!(!is_pick_only(&merged, &elsewhere), "a new value is not a pick");

        // A third value written beside the two (from before they were merged) is not a pick.
        let mut third = merged.clone();
        let heads = third.get_heads();
        let mut offline = third.fork_at(&heads[..1]).unwrap().with_actor(ActorId::from(vec![0xdd; 16]));
        offline.put(automerge::ROOT, "phone", "13900000009").unwrap();
        offline.commit();
        third.merge(&mut offline).unwrap();
        assert_eq!(find(&mut third).conflicts[0].values.len(), 2, "the new put replaced one of them");
        assert!(!is_pick_only(&merged, &third));
    }

    #[test]
    fn a_document_with_thousands_of_conflicts_lists_a_bounded_number() {
        let mut a = AutoCommit::new().with_actor(ActorId::from(vec![1; 16]));
        let mut b = a.fork().with_actor(ActorId::from(vec![2; 16]));
        for i in 0..2_000 {
            a.put(automerge::ROOT, format!("k{i}"), "a").unwrap();
            b.put(automerge::ROOT, format!("k{i}"), "b").unwrap();
        }
        a.merge(&mut b).unwrap();
        let scan = find(&mut a);
        assert_eq!(scan.conflicts.len(), MAX_CONFLICTS);
        assert!(scan.truncated);
    }
}
