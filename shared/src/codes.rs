//! Closed vocabularies of the 1234 method (must-visit tags, help needs, case kinds, ...).
//! Each value has a stable kebab-case code used in documents, the protocol and the CLI, and a
//! Chinese and an English label for people.

/// Declares a closed vocabulary: `Name { Variant => ("code", "中文", "English"), ... }`.
macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => ($code:literal, $zh:literal, $en:literal)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable code stored in documents and typed on the CLI.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            /// The label in Chinese (zh-CN), the UI's default language.
            pub fn zh(self) -> &'static str {
                match self { $($name::$variant => $zh),+ }
            }

            /// The label in English.
            pub fn en(self) -> &'static str {
                match self { $($name::$variant => $en),+ }
            }

            /// The label in the given language.
            pub fn label(self, lang: $crate::codes::Lang) -> &'static str {
                match lang {
                    $crate::codes::Lang::Zh => self.zh(),
                    $crate::codes::Lang::En => self.en(),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::codes::UnknownCode;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($code => Ok($name::$variant),)+
                    other => Err($crate::codes::UnknownCode {
                        vocabulary: stringify!($name),
                        got: other.to_string(),
                        expected: &[$($code),+],
                    }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.code())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }

        impl autosurgeon::Reconcile for $name {
            type Key<'a> = autosurgeon::reconcile::NoKey;
            fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
                reconciler.str(self.code())
            }
        }

        impl autosurgeon::Hydrate for $name {
            fn hydrate_string(s: &'_ str) -> Result<Self, autosurgeon::HydrateError> {
                s.parse().map_err(|_| autosurgeon::HydrateError::unexpected(stringify!($name), s.to_string()))
            }
        }
    };
}

pub(crate) use code_enum;

/// UI language. Chinese is the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lang {
    #[default]
    Zh,
    En,
}

/// A code that is not in its vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {vocabulary} '{got}'; expected one of: {}", expected.join(", "))]
pub struct UnknownCode {
    pub vocabulary: &'static str,
    pub got: String,
    pub expected: &'static [&'static str],
}

code_enum!(
    /// The four must-visit (四必访) household tags.
    MustVisitTag {
        NewArrival => ("new-arrival", "新迁入", "Newly moved in"),
        ProblemFamily => ("problem-family", "问题家庭", "Problem family"),
        PoorFamily => ("poor-family", "贫困家庭", "Poor family"),
        EmptyNest => ("empty-nest", "空巢老人", "Empty-nest elderly"),
    }
);

code_enum!(
    /// The five kinds of help (五助) a household may need.
    HelpNeed {
        Jobs => ("jobs", "助业", "Jobs"),
        Medical => ("medical", "助医", "Medical"),
        Elderly => ("elderly", "助老", "Elderly care"),
        Hardship => ("hardship", "助困", "Hardship"),
        Schooling => ("schooling", "助学", "Schooling"),
    }
);

code_enum!(
    /// What happened at the door.
    VisitOutcome {
        Met => ("met", "已见面", "Met"),
        NotHome => ("not-home", "不在家", "Not home"),
        Refused => ("refused", "拒绝", "Refused"),
    }
);

code_enum!(
    /// Whether a household still lives at its address.
    HouseholdStatus {
        Active => ("active", "在住", "Active"),
        MovedOut => ("moved-out", "已迁出", "Moved out"),
    }
);

code_enum!(
    /// A resident's sex as recorded in the household register.
    Sex {
        Male => ("male", "男", "Male"),
        Female => ("female", "女", "Female"),
    }
);

code_enum!(
    /// Care flags on a resident.
    ResidentFlag {
        Disabled => ("disabled", "残疾", "Disabled"),
        LeftBehindChild => ("left-behind-child", "留守儿童", "Left-behind child"),
        PartyMember => ("party-member", "党员", "Party member"),
        LivingAlone => ("living-alone", "独居", "Living alone"),
    }
);

code_enum!(
    /// Roles on the roster.
    Role {
        GridWorker => ("grid-worker", "网格员", "Grid worker"),
        BuildingLeader => ("building-leader", "楼栋长", "Building leader"),
        Volunteer => ("volunteer", "志愿者", "Volunteer"),
        Supervisor => ("supervisor", "督导", "Supervisor"),
        Admin => ("admin", "管理员", "Admin"),
    }
);

code_enum!(
    /// The four must-arrive (四必到) events.
    MustArriveKind {
        Emergency => ("emergency", "家庭突发事情", "Family emergency"),
        Dispute => ("dispute", "家庭纠纷", "Family dispute"),
        Discontent => ("discontent", "不满情绪", "Resident discontent"),
        WeddingFuneral => ("wedding-funeral", "婚丧嫁娶", "Wedding or funeral"),
    }
);

code_enum!(
    /// The eight service categories of the grid e-link (社区网格e通). The source report names
    /// three (家政服务, 家电维修, 医疗卫生); the other five are the common remaining ones.
    ServiceCategory {
        Housekeeping => ("housekeeping", "家政服务", "Housekeeping"),
        ApplianceRepair => ("appliance-repair", "家电维修", "Appliance repair"),
        Medical => ("medical", "医疗卫生", "Medical and health"),
        ElderlyCare => ("elderly-care", "养老服务", "Elderly care"),
        Utilities => ("utilities", "水电维修", "Water and power repair"),
        Legal => ("legal", "法律咨询", "Legal advice"),
        Locksmith => ("locksmith", "开锁换锁", "Locksmith"),
        Errands => ("errands", "便民代办", "Errands on your behalf"),
    }
);

code_enum!(
    /// The four roles of a building leader (楼栋长), each a kind of report.
    LeaderRole {
        Sanitation => ("sanitation", "卫生监督", "Sanitation"),
        Publicity => ("publicity", "宣传", "Publicity"),
        Information => ("information", "信息", "Information"),
        Mediation => ("mediation", "调解", "Mediation"),
    }
);

code_enum!(
    /// What someone did on a case timeline.
    ActionKind {
        Accept => ("accept", "受理", "Accept"),
        Arrive => ("arrive", "到场", "Arrive"),
        Progress => ("progress", "进展", "Progress"),
        Resolve => ("resolve", "办结", "Resolve"),
        Close => ("close", "关闭", "Close"),
        Reopen => ("reopen", "重新打开", "Reopen"),
        Reassign => ("reassign", "转派", "Reassign"),
        Comment => ("comment", "备注", "Comment"),
        /// A party member or volunteer takes on a micro-wish (认领); names who claims.
        Claim => ("claim", "认领", "Claim"),
        /// The micro-wish came true (已实现).
        Fulfil => ("fulfil", "已实现", "Fulfilled"),
        /// The resident's thanks, recorded by the grid worker; closes the wish.
        Thank => ("thank", "致谢", "Thanks"),
        /// A help request referred to a service outlet (转介); names the outlet.
        Refer => ("refer", "转介", "Refer"),
    }
);

code_enum!(
    /// A case's status, derived from its timeline (never stored).
    CaseStatus {
        Reported => ("reported", "待受理", "Reported"),
        Accepted => ("accepted", "已受理", "Accepted"),
        OnSite => ("on-site", "已到场", "On site"),
        InProgress => ("in-progress", "处理中", "In progress"),
        Resolved => ("resolved", "已办结", "Resolved"),
        Closed => ("closed", "已关闭", "Closed"),
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_name_the_choices() {
        for tag in MustVisitTag::ALL {
            assert_eq!(tag.code().parse::<MustVisitTag>().unwrap(), *tag);
        }
        let err = "ghost".parse::<MustVisitTag>().unwrap_err();
        assert!(err.to_string().contains("new-arrival, problem-family"));
        assert_eq!(ServiceCategory::ALL.len(), 8);
        assert_eq!(MustVisitTag::EmptyNest.label(Lang::Zh), "空巢老人");
        assert_eq!(MustVisitTag::EmptyNest.label(Lang::En), "Empty-nest elderly");
    }
}
