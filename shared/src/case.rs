//! Cases (事件): must-arrive events, help requests, building-leader reports, disputes,
//! micro-wishes and residents' opinions; one automerge document per case.
//!
//! The timeline is append-only and the status is never stored: [`CaseFile::status`] folds the
//! timeline in causal order (a Lamport counter, then time, then id), so replicas that merged
//! the same actions in any order agree on the status.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::codes::{ActionKind, CaseStatus, Lang, LeaderRole, MustArriveKind, ServiceCategory, UnknownCode};
use crate::doc::{DocType, SCHEMA_VERSION};
use crate::ids::{ActionId, CaseId, HouseholdId, OutletId, PartyMemberId, UserId, VolunteerId};
use crate::org::Placement;
use crate::time::Millis;

/// What a case is about. Written `must-arrive:emergency`, `help:medical`,
/// `report:sanitation`, `dispute`, `micro-wish` or `opinion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CaseKind {
    /// One of the four must-arrive (四必到) events.
    MustArrive(MustArriveKind),
    /// A resident's help request in one of the 8 service categories.
    Help(ServiceCategory),
    /// A building leader's report in one of the four roles.
    Report(LeaderRole),
    /// A dispute to mediate (矛盾纠纷).
    Dispute,
    /// A micro-wish (微心愿) of a poor family, disabled person or left-behind child.
    MicroWish,
    /// A resident's opinion or request (民意诉求).
    Opinion,
}

impl CaseKind {
    /// Every kind, for menus and tests.
    pub fn all() -> Vec<CaseKind> {
        let mut all: Vec<CaseKind> = MustArriveKind::ALL.iter().map(|k| CaseKind::MustArrive(*k)).collect();
        all.extend(ServiceCategory::ALL.iter().map(|c| CaseKind::Help(*c)));
        all.extend(LeaderRole::ALL.iter().map(|r| CaseKind::Report(*r)));
        all.extend([CaseKind::Dispute, CaseKind::MicroWish, CaseKind::Opinion]);
        all
    }

    /// Chinese label, e.g. "四必到·家庭纠纷".
    pub fn zh(self) -> String {
        match self {
            CaseKind::MustArrive(k) => format!("四必到·{}", k.zh()),
            CaseKind::Help(c) => format!("求助·{}", c.zh()),
            CaseKind::Report(r) => format!("楼栋长·{}", r.zh()),
            CaseKind::Dispute => "矛盾纠纷".to_string(),
            CaseKind::MicroWish => "微心愿".to_string(),
            CaseKind::Opinion => "民意诉求".to_string(),
        }
    }

    /// English label, e.g. "Must-arrive: Family dispute".
    pub fn en(self) -> String {
        match self {
            CaseKind::MustArrive(k) => format!("Must-arrive: {}", k.en()),
            CaseKind::Help(c) => format!("Help: {}", c.en()),
            CaseKind::Report(r) => format!("Report: {}", r.en()),
            CaseKind::Dispute => "Dispute".to_string(),
            CaseKind::MicroWish => "Micro-wish".to_string(),
            CaseKind::Opinion => "Resident opinion".to_string(),
        }
    }

    pub fn label(self, lang: crate::codes::Lang) -> String {
        match lang {
            crate::codes::Lang::Zh => self.zh(),
            crate::codes::Lang::En => self.en(),
        }
    }

    /// A status as people say it for this kind: a micro-wish moves through the same derived
    /// statuses as any case (so completion figures count it), but is 待认领, 已认领, 已实现 and
    /// 已致谢 rather than 待受理, 已受理, 已办结 and 已关闭.
    pub fn status_label(self, status: CaseStatus, lang: Lang) -> &'static str {
        let wish = match (self, status) {
            (CaseKind::MicroWish, CaseStatus::Reported) => Some(("待认领", "Awaiting a claim")),
            (CaseKind::MicroWish, CaseStatus::Accepted | CaseStatus::OnSite) => Some(("已认领", "Claimed")),
            (CaseKind::MicroWish, CaseStatus::Resolved) => Some(("已实现", "Fulfilled")),
            (CaseKind::MicroWish, CaseStatus::Closed) => Some(("已致谢", "Thanked")),
            _ => None,
        };
        match (wish, lang) {
            (Some((zh, _)), Lang::Zh) => zh,
            (Some((_, en)), Lang::En) => en,
            (None, lang) => status.label(lang),
        }
    }
}

impl std::fmt::Display for CaseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaseKind::MustArrive(k) => write!(f, "must-arrive:{k}"),
            CaseKind::Help(c) => write!(f, "help:{c}"),
            CaseKind::Report(r) => write!(f, "report:{r}"),
            CaseKind::Dispute => f.write_str("dispute"),
            CaseKind::MicroWish => f.write_str("micro-wish"),
            CaseKind::Opinion => f.write_str("opinion"),
        }
    }
}

impl std::str::FromStr for CaseKind {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownCode {
            vocabulary: "CaseKind",
            got: s.to_string(),
            expected: &["must-arrive:KIND", "help:CATEGORY", "report:ROLE", "dispute", "micro-wish", "opinion"],
        };
        match s.split_once(':') {
            Some(("must-arrive", k)) => Ok(CaseKind::MustArrive(k.parse()?)),
            Some(("help", c)) => Ok(CaseKind::Help(c.parse()?)),
            Some(("report", r)) => Ok(CaseKind::Report(r.parse()?)),
            Some(_) => Err(unknown()),
            None => match s {
                "dispute" => Ok(CaseKind::Dispute),
                "micro-wish" => Ok(CaseKind::MicroWish),
                "opinion" => Ok(CaseKind::Opinion),
                _ => Err(unknown()),
            },
        }
    }
}

impl Serialize for CaseKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CaseKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Reconcile for CaseKind {
    type Key<'a> = autosurgeon::reconcile::NoKey;
    fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(self.to_string())
    }
}

impl Hydrate for CaseKind {
    fn hydrate_string(s: &'_ str) -> Result<Self, autosurgeon::HydrateError> {
        s.parse().map_err(|_| autosurgeon::HydrateError::unexpected("a case kind", s.to_string()))
    }
}

/// Who claims a micro-wish: a party member or volunteer from the roster (recorded by a grid
/// worker), or a staff user claiming for themself. Written `party-member:UUID`,
/// `volunteer:UUID` or `staff:UUID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClaimantId {
    PartyMember(PartyMemberId),
    Volunteer(VolunteerId),
    Staff(UserId),
}

impl std::fmt::Display for ClaimantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimantId::PartyMember(id) => write!(f, "party-member:{id}"),
            ClaimantId::Volunteer(id) => write!(f, "volunteer:{id}"),
            ClaimantId::Staff(id) => write!(f, "staff:{id}"),
        }
    }
}

impl std::str::FromStr for ClaimantId {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownCode {
            vocabulary: "ClaimantId",
            got: s.to_string(),
            expected: &["party-member:UUID", "volunteer:UUID", "staff:UUID"],
        };
        let (kind, id) = s.split_once(':').ok_or_else(unknown)?;
        match kind {
            "party-member" => id.parse().map(ClaimantId::PartyMember).map_err(|_| unknown()),
            "volunteer" => id.parse().map(ClaimantId::Volunteer).map_err(|_| unknown()),
            "staff" => id.parse().map(ClaimantId::Staff).map_err(|_| unknown()),
            _ => Err(unknown()),
        }
    }
}

impl Serialize for ClaimantId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClaimantId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Reconcile for ClaimantId {
    type Key<'a> = autosurgeon::reconcile::NoKey;
    fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(self.to_string())
    }
}

impl Hydrate for ClaimantId {
    fn hydrate_string(s: &'_ str) -> Result<Self, autosurgeon::HydrateError> {
        s.parse().map_err(|_| autosurgeon::HydrateError::unexpected("a claimant", s.to_string()))
    }
}

/// The claimant of a micro-wish as the timeline keeps it: the name is copied so the timeline
/// reads right on a phone whose roster no longer lists them.
#[derive(Clone, Debug, PartialEq, Eq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Claimant {
    pub id: ClaimantId,
    pub name: String,
}

/// The service outlet a help request was referred to, with its name as it was then.
#[derive(Clone, Debug, PartialEq, Eq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct OutletRef {
    pub id: OutletId,
    pub name: String,
}

/// One case document.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct CaseFile {
    pub schema: u64,
    /// Always [`DocType::Case`].
    pub doc_type: DocType,
    pub id: CaseId,
    pub kind: CaseKind,
    pub placement: Placement,
    pub household: Option<HouseholdId>,
    pub title: String,
    pub description: String,
    pub reporter: UserId,
    pub reporter_name: String,
    /// The first-asked person responsible (首问负责); reassign actions hand it on.
    pub first_responsible: UserId,
    pub first_responsible_name: String,
    /// When the reporter says it happened or was raised.
    pub reported_at: Millis,
    #[autosurgeon(with = "autosurgeon::map_with_parseable_keys")]
    pub timeline: BTreeMap<ActionId, Action>,
}

/// One entry of a case timeline.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Action {
    pub id: ActionId,
    pub kind: ActionKind,
    pub by: UserId,
    pub by_name: String,
    pub at: Millis,
    /// One more than the highest counter the author had seen: orders causally related
    /// actions correctly even when device clocks disagree.
    pub lamport: u64,
    pub note: String,
    /// Resident satisfaction, 1 (very unhappy) to 5 (very satisfied); only on `close`.
    pub satisfaction: Option<u8>,
    /// New responsible person; only on `reassign`.
    pub to: Option<UserId>,
    pub to_name: Option<String>,
    /// Who claims the micro-wish; only on `claim`. Actions written before wishes had a
    /// lifecycle lack the key: `missing` hydrates them as `None` (autosurgeon would refuse).
    #[serde(default)]
    #[autosurgeon(missing = "Option::default")]
    pub claimant: Option<Claimant>,
    /// The outlet a help request is referred to; only on `refer` (absent on older actions).
    #[serde(default)]
    #[autosurgeon(missing = "Option::default")]
    pub outlet: Option<OutletRef>,
}

/// The status machine: what an action does to a status. `None` means the action does not
/// apply in that status (for instance `accept` on a closed case merged from an offline phone);
/// such an action stays in the timeline but does not move the status.
pub fn transition(status: CaseStatus, action: ActionKind) -> Option<CaseStatus> {
    use CaseStatus::*;
    let open = matches!(status, Reported | Accepted | OnSite | InProgress);
    match action {
        ActionKind::Accept if status == Reported => Some(Accepted),
        ActionKind::Arrive if matches!(status, Reported | Accepted) => Some(OnSite),
        ActionKind::Progress if open => Some(InProgress),
        ActionKind::Resolve if open => Some(Resolved),
        ActionKind::Close if status != Closed => Some(Closed),
        ActionKind::Reopen if matches!(status, Resolved | Closed) => Some(Accepted),
        // A micro-wish: claimed (认领) like an accepted case, fulfilled (已实现) like a resolved
        // one, thanked (已致谢) like a closed one, so completion figures count wishes too.
        ActionKind::Claim if status == Reported => Some(Accepted),
        ActionKind::Fulfil if matches!(status, Accepted | OnSite | InProgress) => Some(Resolved),
        ActionKind::Thank if status == Resolved => Some(Closed),
        _ => None,
    }
}

impl CaseFile {
    /// A freshly reported case with an empty timeline.
    #[expect(clippy::too_many_arguments, reason = "a case is born with all of these")]
    pub fn new(
        id: CaseId,
        kind: CaseKind,
        placement: Placement,
        household: Option<HouseholdId>,
        title: &str,
        description: &str,
        reporter: (UserId, &str),
        responsible: (UserId, &str),
        reported_at: Millis,
    ) -> Self {
        CaseFile {
            schema: SCHEMA_VERSION,
            doc_type: DocType::Case,
            id,
            kind,
            placement,
            household,
            title: title.to_string(),
            description: description.to_string(),
            reporter: reporter.0,
            reporter_name: reporter.1.to_string(),
            first_responsible: responsible.0,
            first_responsible_name: responsible.1.to_string(),
            reported_at,
            timeline: BTreeMap::new(),
        }
    }

    /// The timeline in causal order: Lamport counter, then time, then id.
    pub fn ordered_timeline(&self) -> Vec<&Action> {
        let mut actions: Vec<&Action> = self.timeline.values().collect();
        actions.sort_by_key(|a| (a.lamport, a.at, a.id));
        actions
    }

    /// The Lamport counter for the next action added on this replica.
    pub fn next_lamport(&self) -> u64 {
        self.timeline.values().map(|a| a.lamport).max().unwrap_or(0) + 1
    }

    /// Appends an action (the caller fills id, author and time; the counter is set here).
    pub fn push_action(&mut self, mut action: Action) {
        action.lamport = self.next_lamport();
        self.timeline.insert(action.id, action);
    }

    /// The status, derived from the timeline.
    pub fn status(&self) -> CaseStatus {
        self.status_history().last().map(|(_, s)| *s).unwrap_or(CaseStatus::Reported)
    }

    /// Each action that moved the status, with the status it moved to, in causal order.
    pub fn status_history(&self) -> Vec<(&Action, CaseStatus)> {
        let mut status = CaseStatus::Reported;
        let mut history = Vec::new();
        for action in self.ordered_timeline() {
            if let Some(next) = transition(status, action.kind) {
                status = next;
                history.push((action, next));
            }
        }
        history
    }

    /// The person currently responsible, with their name.
    pub fn responsible(&self) -> (UserId, String) {
        self.ordered_timeline()
            .into_iter()
            .filter(|a| a.kind == ActionKind::Reassign)
            .filter_map(|a| Some((a.to?, a.to_name.clone().unwrap_or_default())))
            .next_back()
            .unwrap_or((self.first_responsible, self.first_responsible_name.clone()))
    }

    /// Whether the case still needs work (not resolved or closed).
    pub fn is_open(&self) -> bool {
        !matches!(self.status(), CaseStatus::Resolved | CaseStatus::Closed)
    }

    /// Who claimed the micro-wish: the claim that moved the status last (a later claim merged
    /// from an offline phone does not take it over).
    pub fn claimant(&self) -> Option<&Claimant> {
        self.status_history()
            .into_iter()
            .rev()
            .find(|(a, _)| a.kind == ActionKind::Claim)
            .and_then(|(a, _)| a.claimant.as_ref())
    }

    /// Satisfaction given at the latest close that moved the status, if any.
    pub fn satisfaction(&self) -> Option<u8> {
        self.status_history()
            .into_iter()
            .rev()
            .find(|(a, _)| a.kind == ActionKind::Close)
            .and_then(|(a, _)| a.satisfaction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_kinds_round_trip_through_codes() {
        for kind in CaseKind::all() {
            assert_eq!(kind.to_string().parse::<CaseKind>().unwrap(), kind);
        }
        assert_eq!(CaseKind::all().len(), 4 + 8 + 4 + 3);
        assert!("help:teleport".parse::<CaseKind>().is_err());
        assert!("party".parse::<CaseKind>().is_err());
    }

    #[test]
    fn transitions_follow_the_service_rules() {
        use CaseStatus::*;
        assert_eq!(transition(Reported, ActionKind::Accept), Some(Accepted));
        assert_eq!(transition(Closed, ActionKind::Accept), None);
        assert_eq!(transition(Resolved, ActionKind::Reopen), Some(Accepted));
        assert_eq!(transition(InProgress, ActionKind::Reopen), None);
        assert_eq!(transition(InProgress, ActionKind::Comment), None);
        assert_eq!(transition(Closed, ActionKind::Close), None);
    }

    #[test]
    fn a_micro_wish_is_claimed_fulfilled_and_thanked_in_that_order() {
        use CaseStatus::*;
        assert_eq!(transition(Reported, ActionKind::Claim), Some(Accepted));
        assert_eq!(transition(Accepted, ActionKind::Claim), None, "claimed once");
        assert_eq!(transition(Reported, ActionKind::Fulfil), None, "fulfilled only once claimed");
        assert_eq!(transition(Accepted, ActionKind::Fulfil), Some(Resolved));
        assert_eq!(transition(Accepted, ActionKind::Thank), None, "thanks follow the fulfilment");
        assert_eq!(transition(Resolved, ActionKind::Thank), Some(Closed));
        assert_eq!(transition(Accepted, ActionKind::Refer), None, "a referral does not move the status");
        assert_eq!(CaseKind::MicroWish.status_label(Reported, Lang::Zh), "待认领");
        assert_eq!(CaseKind::MicroWish.status_label(Closed, Lang::Zh), "已致谢");
        assert_eq!(CaseKind::Dispute.status_label(Closed, Lang::Zh), "已关闭");
    }

    #[test]
    fn claimants_round_trip_through_codes() {
        for id in [
            ClaimantId::PartyMember(PartyMemberId::from_u128(1)),
            ClaimantId::Volunteer(VolunteerId::from_u128(2)),
            ClaimantId::Staff(UserId::from_u128(3)),
        ] {
            assert_eq!(id.to_string().parse::<ClaimantId>().unwrap(), id);
        }
        assert!("party-member:x".parse::<ClaimantId>().is_err());
        assert!("mayor:00000000-0000-0000-0000-000000000001".parse::<ClaimantId>().is_err());
    }
}
