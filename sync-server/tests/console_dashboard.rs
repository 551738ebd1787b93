//! The supervisors' dashboard, its drill-downs and the sync health page, through the real
//! router over the small demo: the numbers on the page are the shared figures for the same
//! rows, period and grouping; every count links to a list of exactly that many rows; nothing
//! outside the supervisor's community shows or can be asked for; a visit pushed from a phone
//! shows on the next request (the rows' cache follows the facts generation); devices are
//! flagged as the brief says. SQLite only: the web console is not served from PostgreSQL yet.

mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use chrono::NaiveDate;
use common::Harness;
use common::console::Browser;
use gridlink_shared::figures::{self, GroupBy, GroupKey, Grouping, Period};
use gridlink_shared::household::{HouseholdFile, Visit};
use gridlink_shared::protocol::{self, AckStatus, DeviceHealth};
use gridlink_shared::time::now_millis;
use gridlink_shared::{CommunityId, DocId, PolicyConfig, Role, Scope, Staff, VisitId, VisitOutcome};

const PASSWORD: &str = "社区督导Dashboard2026";

/// The first community supervisor of the demo and their community.
fn community_supervisor(h: &Harness) -> (Staff, CommunityId) {
    let staff = h
        .demo
        .staff_with_role(Role::Supervisor)
        .find(|s| matches!(s.scopes.as_slice(), [Scope::Community(_)]))
        .expect("a community supervisor in the demo")
        .clone();
    let Scope::Community(community) = staff.scopes[0] else { unreachable!() };
    (staff, community)
}

/// The neighbouring community the small demo lacks (it has one): 澜湖社区 in the demo's street,
/// with one grid, its worker 孙丽华, a building and a household, imported as an admin would.
struct Neighbour {
    community: CommunityId,
    name: &'static str,
    grid_name: &'static str,
    worker: Staff,
}

const NEIGHBOUR_COMMUNITY: &str = "00000000-0000-4000-8000-000000000011";
const NEIGHBOUR_GRID: &str = "00000000-0000-4000-8000-000000000101";

fn add_neighbour(h: &Harness) -> Neighbour {
    let street = h.demo.roster.streets[0].id;
    let csv = format!(
        "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room
community,{NEIGHBOUR_COMMUNITY},{street},澜湖社区,,,,,,,,
grid,{NEIGHBOUR_GRID},{NEIGHBOUR_COMMUNITY},澜湖社区第1网格,,,,,,,,
building,00000000-0000-4000-8000-000000000201,{NEIGHBOUR_GRID},澜湖印象3栋,,,,2,6,2,,
household,00000000-0000-4000-8000-000000000301,00000000-0000-4000-8000-000000000201,刘桂兰,13907149999,,,,,,2,302
staff,00000000-0000-4000-8000-000000000401,,孙丽华,13907140002,grid-worker,grid:{NEIGHBOUR_GRID},,,,,
"
    );
    h.admin.import_csv_from(csv.as_bytes(), now_millis()).unwrap();
    let worker = h.admin.roster().unwrap().staff.into_iter().find(|s| s.name == "孙丽华").unwrap();
    Neighbour {
        community: NEIGHBOUR_COMMUNITY.parse().unwrap(),
        name: "澜湖社区",
        grid_name: "澜湖社区第1网格",
        worker,
    }
}

async fn signed_in(h: &Harness, staff: &Staff) -> Browser {
    h.admin.set_console_password(staff.id, PASSWORD, now_millis()).unwrap();
    Browser::signed_in(h.app.clone(), &staff.phone, PASSWORD).await
}

/// Grid workers whose grid lies in `community`.
fn workers_in(h: &Harness, community: CommunityId) -> Vec<Staff> {
    h.grid_workers()
        .into_iter()
        .filter(|w| {
            let Scope::Grid(grid) = w.scopes[0] else { return false };
            h.demo.roster.grids.iter().any(|g| g.id == grid && g.community == community)
        })
        .collect()
}

/// The number shown with `data-figure="{figure}" data-group="{group}"`.
fn shown(body: &str, figure: &str, group: &str) -> usize {
    let marker = format!("data-figure=\"{figure}\" data-group=\"{group}\">");
    let start = body.find(&marker).unwrap_or_else(|| panic!("no {marker} on the page")) + marker.len();
    body[start..start + body[start..].find('<').unwrap()].trim().parse().unwrap()
}

/// Every count link on the page: (href, figure, group, number).
fn count_links(body: &str) -> Vec<(String, String, String, usize)> {
    let mut links = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find("<a class=\"num\" href=\"") {
        rest = &rest[at + "<a class=\"num\" href=\"".len()..];
        let href = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
        let attr = |name: &str| {
            let m = format!("{name}=\"");
            let s = rest.find(&m).unwrap() + m.len();
            rest[s..s + rest[s..].find('"').unwrap()].to_string()
        };
        let (figure, group) = (attr("data-figure"), attr("data-group"));
        let s = rest.find('>').unwrap() + 1;
        let n = rest[s..s + rest[s..].find('<').unwrap()].parse().unwrap();
        links.push((href, figure, group, n));
    }
    links
}

/// The row count a drill-down page states, checked against its table's rows.
fn rows_listed(body: &str) -> usize {
    let marker = "data-rows=\"";
    let start = body.find(marker).expect("a row count") + marker.len();
    let stated: usize = body[start..start + body[start..].find('"').unwrap()].parse().unwrap();
    let table_rows = body.find("<tbody>").map_or(0, |at| body[at..].matches("<tr").count());
    assert_eq!(stated, table_rows, "the stated count is the table's rows");
    stated
}

#[tokio::test]
async fn the_dashboard_shows_the_shared_figures_and_every_count_lists_its_rows() {
    let h = Harness::new();
    let neighbour = add_neighbour(&h);
    let (zhou, community) = community_supervisor(&h);
    let mut browser = signed_in(&h, &zhou).await;
    let (first, last) = (NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(), NaiveDate::from_ymd_opt(2026, 11, 30).unwrap());
    let page = browser.get("/console?from=2026-10-01&to=2026-11-30&by=grid").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("<svg"), "charts are inline SVG");
    assert!(!page.body.contains("style=") && !page.body.contains("<script"), "nothing the CSP would block");

    // The same figures computed here from the same rows.
    let scope = Scope::Community(community);
    let facts = h.admin.facts(&[scope]).unwrap();
    let roster = h.admin.roster().unwrap();
    let grouping = Grouping::within(&roster, GroupBy::Grid, scope);
    let d = figures::dashboard(&facts, Period::days(first, last), now_millis(), &PolicyConfig::default(), &grouping);
    assert!(d.cases.total.all.opened > 0 && d.visits.total.visits > 0, "the demo has a history in the period");
    let cases = &d.cases.total.all;
    assert_eq!(shown(&page.body, "cases.opened", "total"), cases.opened);
    assert_eq!(shown(&page.body, "cases.completed", "total"), cases.completed);
    assert_eq!(shown(&page.body, "cases.completed-on-time", "total"), cases.completed_on_time);
    assert_eq!(shown(&page.body, "cases.open-overdue", "total"), cases.open_overdue);
    assert_eq!(shown(&page.body, "arrive.events", "total"), d.must_arrive.total.all.events);
    assert_eq!(shown(&page.body, "arrive.on-time", "total"), d.must_arrive.total.all.on_time);
    assert_eq!(shown(&page.body, "satisfaction.scored", "total"), d.satisfaction.total.scored);
    assert_eq!(shown(&page.body, "visits.met", "total"), d.visits.total.met);
    assert_eq!(shown(&page.body, "coverage.households-overdue", "total"), d.coverage.total.households_overdue);
    for (tag, c) in &d.coverage.total.by_tag {
        assert_eq!(shown(&page.body, &format!("coverage.{}.covered", tag.code()), "total"), c.covered);
        assert_eq!(shown(&page.body, &format!("coverage.{}.overdue", tag.code()), "total"), c.overdue);
    }
    // Per grid, every grid of the community and no other.
    assert_eq!(d.cases.groups.len(), roster.grids.iter().filter(|g| g.community == community).count());
    for (key, g) in &d.cases.groups {
        assert_eq!(shown(&page.body, "cases.opened", &key.to_string()), g.all.opened);
        assert_eq!(shown(&page.body, "visits.all", &key.to_string()), d.visits.groups[key].visits);
    }
    assert!(!page.body.contains(neighbour.grid_name) && !page.body.contains(NEIGHBOUR_GRID));
    assert!(!page.body.contains(neighbour.name) && !page.body.contains(&neighbour.worker.name));

    // Every count is a link to exactly that many rows.
    let links = count_links(&page.body);
    assert!(links.len() > 100, "{} count links", links.len());
    let kinds: BTreeSet<&str> = links.iter().map(|(href, ..)| &href[..href.find('?').unwrap()]).collect();
    assert_eq!(kinds, BTreeSet::from(["/console/drill/cases", "/console/drill/households", "/console/drill/visits"]));
    let mut followed = BTreeSet::new();
    for (href, figure, group, n) in &links {
        if !followed.insert(href.clone()) {
            continue;
        }
        let drill = browser.get(href).await;
        assert_eq!(drill.status, StatusCode::OK, "{href}: {}", drill.body);
        assert_eq!(rows_listed(&drill.body), *n, "{figure} of {group}: {href}");
    }
    // Rows link to the case and household pages.
    let overdue = browser.get("/console/drill/households?figure=households-tagged").await;
    assert!(overdue.body.contains("href=\"/console/households/"), "{}", overdue.body);
    let opened = browser.get("/console/drill/cases?figure=opened&from=2026-10-01&to=2026-11-30").await;
    assert!(opened.body.contains("href=\"/console/cases/"));
    assert_eq!(rows_listed(&opened.body), cases.opened);

    // English.
    let english = browser.get("/console?lang=en&from=2026-10-01&to=2026-11-30").await;
    assert!(english.body.contains("Must-visit coverage") && english.body.contains("Weekly trends"));
    assert_eq!(shown(&english.body, "cases.opened", "total"), cases.opened);
}

#[tokio::test]
async fn groups_outside_the_supervisors_community_are_not_found_and_grid_workers_cannot_sign_in() {
    let h = Harness::new();
    let neighbour = add_neighbour(&h);
    let (zhou, community) = community_supervisor(&h);
    let mut browser = signed_in(&h, &zhou).await;
    let roster = h.admin.roster().unwrap();
    let own_grid = roster.grids.iter().find(|g| g.community == community).unwrap();
    for group in [
        GroupKey::Community(neighbour.community).to_string(),
        format!("grid:{NEIGHBOUR_GRID}"),
        GroupKey::Worker(neighbour.worker.id).to_string(),
        GroupKey::Street(roster.streets[0].id).to_string(),
        "street:not-a-uuid".to_string(),
    ] {
        for list in ["cases?figure=opened", "households?figure=households-tagged", "visits?figure=met"] {
            let page = browser.get(&format!("/console/drill/{list}&group={group}")).await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{list} {group}");
            assert!(!page.body.contains(neighbour.name) && !page.body.contains("刘桂兰"));
        }
    }
    let everything = browser.get("/console/drill/households?figure=households-tagged").await;
    assert!(!everything.body.contains("刘桂兰"), "the neighbour's household is not in the whole area's list");
    let own = browser.get(&format!("/console/drill/cases?figure=opened&group=grid:{}", own_grid.id)).await;
    assert_eq!(own.status, StatusCode::OK);
    let bad = browser.get("/console?period=year").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // A grid worker with a password is still refused at the door.
    let worker = &workers_in(&h, community)[0];
    h.admin.set_console_password(worker.id, PASSWORD, now_millis()).unwrap();
    let mut phone_user = Browser::new(h.app.clone());
    let answer = phone_user.sign_in(&worker.phone, PASSWORD).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(phone_user.get("/console").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_visit_pushed_from_a_phone_shows_on_the_next_request() {
    let h = Harness::new();
    let (zhou, community) = community_supervisor(&h);
    let mut browser = signed_in(&h, &zhou).await;
    let before = browser.get("/console").await;
    assert_eq!(before.status, StatusCode::OK);
    let visits = shown(&before.body, "visits.all", "total");
    let met = shown(&before.body, "visits.met", "total");
    // Unchanged rows: the same numbers from the cache.
    let again = browser.get("/console").await;
    assert_eq!(shown(&again.body, "visits.all", "total"), visits);

    let worker = workers_in(&h, community)[0].clone();
    let Scope::Grid(grid) = worker.scopes[0] else { unreachable!() };
    let mut phone = h.enroll(&worker).await;
    h.sync_all(&mut phone).await;
    let household = h.admin.facts(&[Scope::Grid(grid)]).unwrap().households[0].id;
    let visit = VisitId::new();
    let change = phone.edit::<HouseholdFile>(DocId::from(household), |f| {
        f.visits.insert(
            visit,
            Visit {
                id: visit,
                visitor: worker.id,
                visitor_name: worker.name.clone(),
                at: now_millis(),
                recorded_at: now_millis(),
                outcome: VisitOutcome::Met,
                notes: "王大爷身体硬朗，问了降压药的报销。".into(),
                needs_found: Vec::new(),
                follow_up: None,
                residents_present: Vec::new(),
            },
        );
    });
    assert_eq!(h.sync(&mut phone, vec![change]).await.acks[0].status, AckStatus::Accepted);

    let after = browser.get("/console").await;
    assert_eq!(shown(&after.body, "visits.all", "total"), visits + 1);
    assert_eq!(shown(&after.body, "visits.met", "total"), met + 1);
    assert!(shown(&after.body, "visits.met", &GroupKey::Grid(grid).to_string()) > 0);
    let list = browser.get(&format!("/console/drill/visits?figure=met&group=grid:{grid}")).await;
    assert!(list.body.contains(&worker.name));
}

#[tokio::test]
async fn sync_health_flags_silent_devices_and_shows_what_a_device_reported() {
    let h = Harness::new();
    let neighbour = add_neighbour(&h);
    let (zhou, community) = community_supervisor(&h);
    let mut browser = signed_in(&h, &zhou).await;
    let inside = workers_in(&h, community);
    assert!(inside.len() >= 2, "two grid workers in the community");

    // One phone syncs and reports two rejected changes; another never syncs; a third belongs
    // to another community.
    let mut reporting = h.enroll(&inside[0]).await;
    let mut request = reporting.request(Vec::new());
    request.health = Some(DeviceHealth { app_version: "2.7.1".into(), unsent: 3, rejected: 2, quarantined: 0 });
    let (status, _, body) = h.post_sync(&reporting.token, protocol::encode(&request)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    reporting.apply(&protocol::decode(&body).unwrap());
    let silent = h.enroll(&inside[1]).await;
    let elsewhere = h.enroll(&neighbour.worker).await;

    let page = browser.get("/console/sync").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let row = |device: &str| {
        let at = page.body.find(&format!("data-device=\"{device}\"")).unwrap_or_else(|| panic!("no row for {device}"));
        page.body[at..at + page.body[at..].find("</tr>").unwrap()].to_string()
    };
    let reported = row(&reporting.enrolled.device.to_string());
    assert!(reported.contains("2.7.1") && reported.contains("data-flag=\"rejected\""), "{reported}");
    assert!(reported.contains("有被拒绝的记录 2 条") && reported.contains("待上传 3 条"), "{reported}");
    let never = row(&silent.enrolled.device.to_string());
    assert!(never.contains("data-flag=\"never-synced\"") && never.contains("从未同步"), "{never}");
    assert!(!page.body.contains(&elsewhere.enrolled.device.to_string()), "another community's device");
    assert!(!page.body.contains(&neighbour.worker.name), "another community's worker");
    // The supervisor's own workers without a phone are listed as such.
    assert!(page.body.contains("data-flag=\"no-device\""));

    let english = browser.get("/console/sync?lang=en").await;
    assert!(english.body.contains("Never synced") && english.body.contains("2 rejected records"), "{}", english.body);
}
