//! 同步 `/console/sync`: the devices of the staff within the signed-in user's scopes, most
//! urgent first, so a supervisor sees who has gone quiet and whose phone holds records the
//! server refused or found damaged. Reads [`SqliteStore::list_devices`] (with the health each
//! device reported at its last sync) and the roster.
//!
//! [`SqliteStore::list_devices`]: crate::store::SqliteStore::list_devices

use std::collections::HashMap;

use gridlink_shared::time::{DAY_MS, MINUTE_MS, Millis, format_local, now_millis};
use gridlink_shared::{Lang, Placement, Role, Roster, Scope, Staff, UserId};
use maud::{Markup, html};

use super::errors::ConsoleError;
use super::layout::{self, Section, t};
use super::session::ConsoleUser;
use crate::store::DeviceRow;

/// A device silent longer than this is flagged.
pub const SILENT_AFTER_MS: Millis = DAY_MS;
/// A device clock this far from the server's at its last sync is shown.
pub const SKEW_SHOWN_MS: Millis = 5 * MINUTE_MS;

/// How urgent a row is; rows sort by this first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Urgency {
    /// Silent over a day, never synced, or holding rejected or damaged records.
    Act,
    /// Clock skew, no health reported, changes waiting.
    Watch,
    Fine,
    /// Revoked devices, for the record.
    Revoked,
}

#[derive(Clone, Debug)]
enum Flag {
    NeverSynced,
    Silent { days: i64 },
    Rejected(u64),
    Quarantined(u64),
    Skew { minutes: i64 },
    NoHealth,
    Unsent(u64),
    NoDevice,
    Revoked,
}

impl Flag {
    fn urgency(&self) -> Urgency {
        match self {
            Flag::NeverSynced | Flag::Silent { .. } | Flag::Rejected(_) | Flag::Quarantined(_) | Flag::NoDevice => {
                Urgency::Act
            }
            Flag::Skew { .. } | Flag::NoHealth | Flag::Unsent(_) => Urgency::Watch,
            Flag::Revoked => Urgency::Revoked,
        }
    }

    fn render(&self, lang: Lang) -> Markup {
        let class = match self.urgency() {
            Urgency::Act => "bad",
            Urgency::Watch => "warn",
            Urgency::Fine | Urgency::Revoked => "info",
        };
        let text = match self {
            Flag::NeverSynced => t(lang, "从未同步", "Never synced").to_string(),
            Flag::Silent { days } => match lang {
                Lang::Zh => format!("超过一天未同步（{days}天）"),
                Lang::En => format!("Silent for over a day ({days} d)"),
            },
            Flag::Rejected(n) => match lang {
                Lang::Zh => format!("有被拒绝的记录 {n} 条"),
                Lang::En => format!("{n} rejected records"),
            },
            Flag::Quarantined(n) => match lang {
                Lang::Zh => format!("有损坏的记录 {n} 份"),
                Lang::En => format!("{n} damaged records"),
            },
            Flag::Skew { minutes } => match lang {
                Lang::Zh => format!("时钟偏差 {} 分钟", minutes.abs()),
                Lang::En => format!("Clock off by {} min", minutes.abs()),
            },
            Flag::NoHealth => t(lang, "未上报", "Not reported").to_string(),
            Flag::Unsent(n) => match lang {
                Lang::Zh => format!("待上传 {n} 条"),
                Lang::En => format!("{n} changes waiting"),
            },
            Flag::NoDevice => t(lang, "未登记设备", "No device enrolled").to_string(),
            Flag::Revoked => t(lang, "已停用", "Revoked").to_string(),
        };
        html! { span.badge.(class) data-flag=(self.code()) { (text) } }
    }

    fn code(&self) -> &'static str {
        match self {
            Flag::NeverSynced => "never-synced",
            Flag::Silent { .. } => "silent",
            Flag::Rejected(_) => "rejected",
            Flag::Quarantined(_) => "quarantined",
            Flag::Skew { .. } => "skew",
            Flag::NoHealth => "no-health",
            Flag::Unsent(_) => "unsent",
            Flag::NoDevice => "no-device",
            Flag::Revoked => "revoked",
        }
    }
}

/// What to flag about a device at `now`.
fn flags(device: &DeviceRow, now: Millis) -> Vec<Flag> {
    if device.revoked_at.is_some() {
        return vec![Flag::Revoked];
    }
    let mut flags = Vec::new();
    match device.last_sync_at {
        None => flags.push(Flag::NeverSynced),
        Some(at) if now - at > SILENT_AFTER_MS => flags.push(Flag::Silent { days: (now - at) / DAY_MS }),
        Some(_) => {}
    }
    if let (Some(server), Some(device_time)) = (device.last_sync_at, device.last_device_time) {
        let skew = device_time - server;
        if skew.abs() > SKEW_SHOWN_MS {
            flags.push(Flag::Skew { minutes: skew / MINUTE_MS });
        }
    }
    match &device.health {
        Some(health) => {
            if health.rejected > 0 {
                flags.push(Flag::Rejected(health.rejected));
            }
            if health.quarantined > 0 {
                flags.push(Flag::Quarantined(health.quarantined));
            }
            if health.unsent > 0 {
                flags.push(Flag::Unsent(health.unsent));
            }
        }
        None if device.last_sync_at.is_some() => flags.push(Flag::NoHealth),
        None => {}
    }
    flags
}

/// Whether every scope of `staff` lies within the user's (a supervisor sees the devices of the
/// people working inside their area, not of those above or beside it).
fn within_user(roster: &Roster, staff: &Staff, user: &ConsoleUser) -> bool {
    let community_street: HashMap<_, _> = roster.communities.iter().map(|c| (c.id, c.street)).collect();
    let covered = |scope: &Scope| -> bool {
        match scope {
            Scope::Street(id) => user.scopes.contains(&Scope::Street(*id)),
            Scope::Community(id) => {
                user.scopes.contains(&Scope::Community(*id))
                    || community_street.get(id).is_some_and(|s| user.scopes.contains(&Scope::Street(*s)))
            }
            Scope::Grid(id) => roster.grids.iter().find(|g| g.id == *id).is_some_and(|g| {
                community_street.get(&g.community).is_some_and(|street| {
                    user.covers(&Placement { street: *street, community: g.community, grid: *id, building: None })
                })
            }),
            Scope::Building(id) => roster.placement_of_building(*id).is_some_and(|p| user.covers(&p)),
        }
    };
    !staff.scopes.is_empty() && staff.scopes.iter().all(covered)
}

struct Row<'a> {
    staff: &'a Staff,
    device: Option<&'a DeviceRow>,
    flags: Vec<Flag>,
}

impl Row<'_> {
    fn urgency(&self) -> Urgency {
        self.flags.iter().map(Flag::urgency).min().unwrap_or(Urgency::Fine)
    }
}

/// `GET /console/sync`.
pub(super) async fn page(user: ConsoleUser) -> Result<Markup, ConsoleError> {
    let (roster, devices) =
        user.console().blocking(|store| Ok((store.any().roster()?, store.any().list_devices()?))).await?;
    let now = now_millis();
    let staff: Vec<&Staff> =
        roster.staff.iter().filter(|s| s.id != user.id && within_user(&roster, s, &user)).collect();
    // Phones only: the console's own signing devices never sync.
    let by_user: HashMap<UserId, Vec<&DeviceRow>> =
        devices.iter().filter(|d| !d.console).fold(HashMap::new(), |mut map, d| {
            map.entry(d.user).or_default().push(d);
            map
        });
    let mut rows: Vec<Row<'_>> = Vec::new();
    for s in &staff {
        match by_user.get(&s.id) {
            Some(devices) => {
                rows.extend(devices.iter().map(|d| Row { staff: s, device: Some(d), flags: flags(d, now) }))
            }
            // A grid worker without a phone cannot be synced at all; other roles may not use one.
            None if s.role == Role::GridWorker => {
                rows.push(Row { staff: s, device: None, flags: vec![Flag::NoDevice] })
            }
            None => {}
        }
    }
    rows.sort_by(|a, b| {
        let last = |r: &Row<'_>| r.device.and_then(|d| d.last_sync_at).unwrap_or(Millis::MIN);
        (a.urgency(), last(a), &a.staff.name).cmp(&(b.urgency(), last(b), &b.staff.name))
    });
    let grid_names: HashMap<_, _> = roster.grids.iter().map(|g| (g.id, g.name.as_str())).collect();
    let lang = user.lang;
    let act = rows.iter().filter(|r| r.urgency() == Urgency::Act).count();
    let content = html! {
        section.card {
            p.lead {
                (t(lang, "共 ", "")) strong { (rows.len()) } (t(lang, " 台设备（含未登记设备的网格员）", " devices (and grid workers without one)"))
                " · " span.bad data-count="act" { strong { (act) } (t(lang, " 项需要处理", " need action")) }
                " · " span.muted { (t(lang, "截至 ", "as of ")) (format_local(now)) }
            }
            p.muted {
                (t(lang,
                    "超过一天未同步、有被拒绝或损坏的记录的排在最前；时钟与服务器相差超过5分钟时显示偏差；旧版应用不上报设备状态，显示为“未上报”。",
                    "Devices silent for over a day or holding rejected or damaged records come first; a clock more than 5 minutes off the server's is shown; older apps report no health and show as “Not reported”."))
            }
        }
        @if rows.is_empty() {
            section.card { p.muted { (t(lang, "您的管辖范围内没有工作人员的设备。", "No staff devices in your area.")) } }
        } @else {
            div.table-scroll { table.data.sync-health {
                thead { tr {
                    th { (t(lang, "人员", "Staff")) }
                    th { (t(lang, "网格", "Grid")) }
                    th { (t(lang, "设备", "Device")) }
                    th { (t(lang, "应用版本", "App")) }
                    th { (t(lang, "最后同步", "Last sync")) }
                    th.num { (t(lang, "待上传", "Unsent")) }
                    th.num { (t(lang, "被拒绝", "Rejected")) }
                    th.num { (t(lang, "已损坏", "Damaged")) }
                    th { (t(lang, "状态", "Status")) }
                } }
                tbody {
                    @for row in &rows {
                        @let urgency = row.urgency();
                        tr.act[urgency == Urgency::Act] .watch[urgency == Urgency::Watch] .revoked[urgency == Urgency::Revoked]
                            data-device=[row.device.map(|d| d.id.to_string())] {
                            td { strong { (row.staff.name) } br; span.muted { (row.staff.role.label(lang)) " · " (row.staff.phone) } }
                            td {
                                @for (i, scope) in row.staff.scopes.iter().enumerate() {
                                    @if i > 0 { "、" }
                                    @match scope {
                                        Scope::Grid(g) => (grid_names.get(g).copied().unwrap_or("—")),
                                        _ => (scope_label(scope, lang)),
                                    }
                                }
                            }
                            @match row.device {
                                Some(d) => {
                                    td { (d.name) }
                                    td { @match &d.health { Some(h) => (h.app_version), None => span.muted { (t(lang, "未上报", "Not reported")) } } }
                                    td.nowrap {
                                        @match d.last_sync_at {
                                            Some(at) => { (format_local(at)) br; span.muted { (ago(now - at, lang)) } }
                                            None => span.muted { "—" },
                                        }
                                    }
                                    @match &d.health {
                                        Some(h) => {
                                            td.num { (h.unsent) }
                                            td.num.bad[h.rejected > 0] { (h.rejected) }
                                            td.num.bad[h.quarantined > 0] { (h.quarantined) }
                                        }
                                        None => { td.num.muted { "—" } td.num.muted { "—" } td.num.muted { "—" } }
                                    }
                                }
                                None => { td.muted { "—" } td { } td { } td { } td { } td { } }
                            }
                            td.flags {
                                @if row.flags.is_empty() { span.badge.ok { (t(lang, "正常", "OK")) } }
                                @for flag in &row.flags { (flag.render(lang)) " " }
                            }
                        }
                    }
                }
            } }
        }
    };
    Ok(layout::page(&user, Section::Sync, user.t("同步情况", "Sync health"), content))
}

fn scope_label(scope: &Scope, lang: Lang) -> &'static str {
    match scope {
        Scope::Street(_) => t(lang, "街道", "Street"),
        Scope::Community(_) => t(lang, "社区", "Community"),
        Scope::Grid(_) => t(lang, "网格", "Grid"),
        Scope::Building(_) => t(lang, "楼栋", "Building"),
    }
}

/// "3小时前" / "3 h ago".
fn ago(ms: Millis, lang: Lang) -> String {
    let minutes = ms.max(0) / MINUTE_MS;
    let (n, zh, en) = if minutes < 60 {
        (minutes, "分钟前", "min ago")
    } else if minutes < 48 * 60 {
        (minutes / 60, "小时前", "h ago")
    } else {
        (minutes / (24 * 60), "天前", "d ago")
    };
    match lang {
        Lang::Zh => format!("{n}{zh}"),
        Lang::En => format!("{n} {en}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridlink_shared::DeviceId;
    use gridlink_shared::protocol::DeviceHealth;

    fn device(
        last_sync_at: Option<Millis>,
        last_device_time: Option<Millis>,
        health: Option<DeviceHealth>,
    ) -> DeviceRow {
        DeviceRow {
            id: DeviceId::from_u128(1),
            user: UserId::from_u128(2),
            user_name: "李秀英".into(),
            name: "李秀英的手机".into(),
            actor: "00".into(),
            created_at: 0,
            revoked_at: None,
            last_sync_at,
            last_device_time,
            health,
            console: false,
            wipe_requested_at: None,
            wipe_delivered_at: None,
        }
    }

    #[test]
    fn silence_skew_and_damage_are_flagged() {
        let now = 10 * DAY_MS;
        let codes = |d: &DeviceRow| flags(d, now).iter().map(Flag::code).collect::<Vec<_>>();
        assert_eq!(codes(&device(None, None, None)), ["never-synced"]);
        assert_eq!(codes(&device(Some(now - 2 * DAY_MS), Some(now - 2 * DAY_MS), None)), ["silent", "no-health"]);
        let health = DeviceHealth { app_version: "1.4.0".into(), unsent: 0, rejected: 2, quarantined: 1 };
        assert_eq!(
            codes(&device(Some(now - MINUTE_MS), Some(now - MINUTE_MS + 6 * MINUTE_MS), Some(health))),
            ["skew", "rejected", "quarantined"]
        );
        let fine = DeviceHealth { app_version: "1.4.0".into(), unsent: 0, rejected: 0, quarantined: 0 };
        assert!(codes(&device(Some(now), Some(now + 4 * MINUTE_MS), Some(fine))).is_empty());
    }
}
