//! Fixtures shared by the gridlink-shared integration tests.
#![allow(dead_code)]

use gridlink_shared::time::Millis;
use gridlink_shared::*;

/// 2026-11-28 10:00 in Asia/Shanghai.
pub const NOW: Millis = 1_795_831_200_000;

pub fn placement() -> Placement {
    Placement {
        street: StreetId::from_u128(1),
        community: CommunityId::from_u128(2),
        grid: GridId::from_u128(3),
        building: Some(BuildingId::from_u128(4)),
    }
}

pub fn principal(role: Role, scopes: Vec<Scope>) -> Principal {
    Principal { user: UserId::new(), name: "测试员".to_string(), role, scopes }
}

pub fn grid_worker() -> Principal {
    Principal {
        user: UserId::from_u128(100),
        name: "李秀英".to_string(),
        role: Role::GridWorker,
        scopes: vec![Scope::Grid(placement().grid)],
    }
}

pub fn household() -> HouseholdFile {
    HouseholdFile::new(
        HouseholdId::from_u128(500),
        placement(),
        "滨湖小区7栋",
        "2",
        "302",
        "张桂兰",
        NOW - 400 * 86_400_000,
    )
}

pub fn case(kind: CaseKind, reporter: &Principal, reported_at: Millis) -> CaseFile {
    CaseFile::new(
        CaseId::from_u128(900),
        kind,
        placement(),
        Some(HouseholdId::from_u128(500)),
        "张桂兰家中老人突发疾病",
        "滨湖小区7栋2单元302室",
        (reporter.user, &reporter.name),
        (reporter.user, &reporter.name),
        reported_at,
    )
}

pub fn action(kind: ActionKind, by: &Principal, at: Millis) -> Action {
    Action {
        id: ActionId::new(),
        kind,
        by: by.user,
        by_name: by.name.clone(),
        at,
        lamport: 0,
        note: String::new(),
        satisfaction: (kind == ActionKind::Close).then_some(5),
        to: None,
        to_name: None,
        claimant: None,
        outlet: None,
    }
}
