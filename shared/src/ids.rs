//! Identifier newtypes. Every id is a UUID generated where the record is born (UUIDv7 on the
//! device, so ids sort roughly by creation time and never need a server round trip).

/// Declares a UUID newtype with string serde, `Display`/`FromStr` and autosurgeon support.
macro_rules! new_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A fresh time-ordered id (UUIDv7).
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            /// A deterministic id, for demo data and tests.
            pub fn from_u128(value: u128) -> Self {
                Self(uuid::Uuid::from_u128(value))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self)
            }
        }

        impl autosurgeon::Reconcile for $name {
            type Key<'a> = autosurgeon::reconcile::NoKey;
            fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
                reconciler.str(self.0.to_string())
            }
        }

        impl autosurgeon::Hydrate for $name {
            fn hydrate_string(s: &'_ str) -> Result<Self, autosurgeon::HydrateError> {
                s.parse().map_err(|_| autosurgeon::HydrateError::unexpected("a UUID string", s.to_string()))
            }
        }
    };
}

new_id!(
    /// A street (街道), the top of the roster.
    StreetId
);
new_id!(
    /// A community (社区).
    CommunityId
);
new_id!(
    /// A grid (网格), the unit a grid worker answers for.
    GridId
);
new_id!(
    /// A residential building (楼栋).
    BuildingId
);
new_id!(
    /// A household; also the id of its household-file document.
    HouseholdId
);
new_id!(
    /// A resident inside a household file.
    ResidentId
);
new_id!(
    /// One visit record inside a household file.
    VisitId
);
new_id!(
    /// A case; also the id of its case document.
    CaseId
);
new_id!(
    /// One action on a case timeline.
    ActionId
);
new_id!(
    /// A person on the roster: grid worker, building leader, supervisor, admin.
    UserId
);
new_id!(
    /// An enrolled phone or PC.
    DeviceId
);
new_id!(
    /// A service outlet (便民服务网点).
    OutletId
);
new_id!(
    /// A grid party branch (网格党支部).
    PartyBranchId
);
new_id!(
    /// A building party group (楼栋党小组).
    PartyGroupId
);
new_id!(
    /// A party member living in the grid who reported to the community (在职党员进社区).
    PartyMemberId
);
new_id!(
    /// A volunteer (志愿者) on the community's register.
    VolunteerId
);
new_id!(
    /// An activity or service record (志愿服务/党员活动); also the id of its document.
    ActivityId
);
new_id!(
    /// Any synced document: a household file, a case or an activity record.
    DocId
);

impl From<HouseholdId> for DocId {
    fn from(id: HouseholdId) -> Self {
        DocId(id.0)
    }
}

impl From<CaseId> for DocId {
    fn from(id: CaseId) -> Self {
        DocId(id.0)
    }
}

impl From<ActivityId> for DocId {
    fn from(id: ActivityId) -> Self {
        DocId(id.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_strings_and_sort_by_creation() {
        let first = HouseholdId::new();
        let second = HouseholdId::new();
        assert!(first < second, "UUIDv7 ids must sort by creation time");
        let parsed: HouseholdId = first.to_string().parse().unwrap();
        assert_eq!(parsed, first);
        assert!("not-a-uuid".parse::<HouseholdId>().is_err());
    }
}
