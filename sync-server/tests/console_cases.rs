//! The console's case review and household pages through the real router over the small demo:
//! the case list agrees with the supervisors' rows under every filter; supervisor actions
//! (close with satisfaction, reopen, reassign, comment) are automerge changes that take the
//! sync path, so a grid worker's phone receives them and the audit has them; refusals and
//! hostile input store nothing; another community's records are 404s; the household search
//! finds pinyin initials and phone numbers, and a household page masks ID numbers. SQLite
//! only: the web console is not served from PostgreSQL yet.

mod common;

use axum::http::StatusCode;
use common::Harness;
use common::console::{Browser, Page};
use gridlink_shared::codes::{ActionKind, CaseStatus, HelpNeed, MustVisitTag, Sex, VisitOutcome};
use gridlink_shared::figures::CaseFacts;
use gridlink_shared::household::{Resident, TagEntry, Visit};
use gridlink_shared::policy::CompletionState;
use gridlink_shared::time::{DAY_MS, now_millis};
use gridlink_shared::{
    CaseFile, CaseId, CaseKind, CommunityId, GridId, HouseholdFile, HouseholdId, Placement, ResidentId, Role, Scope,
    Staff, UserId, VisitId, doc,
};

const PASSWORD: &str = "滨湖社区督导2026";

/// The demo's community supervisor, signed in.
async fn supervisor(h: &Harness) -> (Staff, CommunityId, Browser) {
    let staff = h
        .demo
        .staff_with_role(Role::Supervisor)
        .find(|s| matches!(s.scopes.as_slice(), [Scope::Community(_)]))
        .expect("the demo has a community supervisor")
        .clone();
    let Scope::Community(community) = staff.scopes[0] else { unreachable!() };
    h.admin.set_console_password(staff.id, PASSWORD, now_millis()).unwrap();
    let browser = Browser::signed_in(h.app.clone(), &staff.id.to_string(), PASSWORD).await;
    (staff, community, browser)
}

fn count(h: &Harness, sql: &str) -> i64 {
    h.admin.read(|conn| Ok(conn.query_row(sql, [], |r| r.get(0))?)).unwrap()
}

/// Rows written by accepted or refused changes: what "nothing stored" compares.
fn stored(h: &Harness) -> (i64, i64, i64) {
    (
        count(h, "SELECT COUNT(*) FROM changes"),
        count(h, "SELECT COUNT(*) FROM audit"),
        count(h, "SELECT COUNT(*) FROM scope_log"),
    )
}

/// The number the list says it found.
fn total(page: &Page) -> usize {
    let marker = "<span class=\"total\">";
    let start = page.body.find(marker).unwrap_or_else(|| panic!("no total: {}", page.body)) + marker.len();
    page.body[start..start + page.body[start..].find('<').unwrap()].parse().unwrap()
}

fn rows(page: &Page, class: &str) -> usize {
    page.body.matches(&format!("<tr class=\"{class}\"")).count()
}

fn cases(h: &Harness, community: CommunityId) -> Vec<CaseFacts> {
    h.admin.facts(&[Scope::Community(community)]).unwrap().cases
}

fn is_done(case: &CaseFacts) -> bool {
    matches!(case.status, CaseStatus::Resolved | CaseStatus::Closed)
}

fn worker_of(h: &Harness, grid: GridId) -> Staff {
    h.grid_workers().into_iter().find(|w| w.scopes.contains(&Scope::Grid(grid))).unwrap()
}

fn server_case(h: &Harness, id: CaseId) -> CaseFile {
    doc::read(&h.server_doc(id.into()).unwrap()).unwrap()
}

#[tokio::test]
async fn the_case_list_gives_exactly_the_rows_the_plain_rows_say() {
    let h = Harness::new();
    let (_, community, mut browser) = supervisor(&h).await;
    let all = cases(&h, community);
    assert!(all.len() > 100, "the small demo has more than a page of cases ({})", all.len());

    let page = browser.get("/console/cases").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(total(&page), all.len());
    assert_eq!(rows(&page, "case-row"), 100, "paged by 100");
    assert!(!page.body.contains("<script") && !page.body.contains("style=\""));
    // Newest first: the first row is the latest report.
    let newest = all.iter().max_by_key(|c| (c.reported_at, c.id)).unwrap();
    let first_link = page.body.find("href=\"/console/cases/").unwrap();
    assert!(page.body[first_link..].starts_with(&format!("href=\"/console/cases/{}\"", newest.id)));
    let last = browser.get(&format!("/console/cases?page={}", all.len().div_ceil(100))).await;
    assert_eq!(rows(&last, "case-row"), all.len() - (all.len().div_ceil(100) - 1) * 100);

    let open = all.iter().filter(|c| !is_done(c)).count();
    assert_eq!(total(&browser.get("/console/cases?status=open").await), open);
    let closed = all.iter().filter(|c| c.status == CaseStatus::Closed).count();
    assert_eq!(total(&browser.get("/console/cases?status=closed").await), closed);

    let now = now_millis();
    let overdue =
        all.iter().filter(|c| matches!(c.completion_state(now), CompletionState::Open { overdue: true, .. })).count();
    assert_eq!(total(&browser.get("/console/cases?overdue=1").await), overdue);

    let must_arrive = all.iter().filter(|c| matches!(c.kind, CaseKind::MustArrive(_))).count();
    assert_eq!(total(&browser.get("/console/cases?kind=must-arrive").await), must_arrive);
    let dispute = all.iter().filter(|c| c.kind == CaseKind::Dispute).count();
    assert_eq!(total(&browser.get("/console/cases?kind=dispute").await), dispute);

    let grid = all[0].placement.grid;
    let worker = worker_of(&h, grid);
    let in_grid = all.iter().filter(|c| c.placement.grid == grid).count();
    assert_eq!(total(&browser.get(&format!("/console/cases?grid={grid}")).await), in_grid);
    let theirs_open = all.iter().filter(|c| c.responsible == worker.id && !is_done(c)).count();
    let page = browser.get(&format!("/console/cases?worker={}&status=open", worker.id)).await;
    assert_eq!(total(&page), theirs_open);

    // A period by Asia/Shanghai days, both ends included.
    let (from, to) = ("2026-10-01", "2026-10-31");
    let period = gridlink_shared::figures::Period::days(from.parse().unwrap(), to.parse().unwrap());
    let in_period = all.iter().filter(|c| period.contains(c.reported_at)).count();
    assert_eq!(total(&browser.get(&format!("/console/cases?from={from}&to={to}")).await), in_period);
    let combined =
        all.iter().filter(|c| period.contains(c.reported_at) && c.placement.grid == grid && !is_done(c)).count();
    let page = browser.get(&format!("/console/cases?from={from}&to={to}&grid={grid}&status=open")).await;
    assert_eq!(total(&page), combined);

    // Filters that do not parse say which.
    let bad = browser.get("/console/cases?kind=party").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("类别"), "{}", bad.body);
    assert_eq!(browser.get("/console/cases?from=yesterday").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(browser.get("/console/cases?page=0").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn closing_with_satisfaction_reaches_the_grid_workers_phone_and_the_audit() {
    let h = Harness::new();
    let (zhou, community, mut browser) = supervisor(&h).await;
    let case = cases(&h, community).into_iter().find(|c| !is_done(c)).expect("an open case");
    let worker = worker_of(&h, case.placement.grid);
    let mut phone = h.enroll(&worker).await;
    h.sync_all(&mut phone).await;
    assert!(phone.docs.contains_key(&case.id.into()), "the worker's phone holds the case");

    let page = browser.get(&format!("/console/cases/{}", case.id)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(&case.title) && page.body.contains("结案回访"));
    assert!(!page.body.contains("data-status=\"closed\""));
    let before = stored(&h);
    let answer = browser
        .post(
            &format!("/console/cases/{}/close", case.id),
            &[("csrf", &page.csrf()), ("satisfaction", "4"), ("note", "电话回访李秀英阿姨，问题已解决，基本满意。")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), Some(format!("/console/cases/{}?done=close", case.id).as_str()));
    let shown = browser.get(answer.location().unwrap()).await;
    assert!(shown.body.contains("data-status=\"closed\""), "{}", shown.body);
    assert!(shown.body.contains("已结案") && shown.body.contains("4 / 5"));
    let after = stored(&h);
    assert_eq!(after.0, before.0 + 1, "one change");
    assert_eq!(after.1, before.1 + 1, "one audit row");
    assert!(after.2 > before.2, "logged to the case's scopes");

    // The phone that synced before pulls the change at its next sync.
    h.sync_all(&mut phone).await;
    let on_phone: CaseFile = doc::read(&phone.docs[&case.id.into()]).unwrap();
    assert_eq!(on_phone.status(), CaseStatus::Closed);
    assert_eq!(on_phone.satisfaction(), Some(4));
    let close = on_phone.ordered_timeline().into_iter().next_back().unwrap().clone();
    assert_eq!((close.kind, close.by, close.by_name.as_str()), (ActionKind::Close, zhou.id, zhou.name.as_str()));
    assert_eq!(close.satisfaction, Some(4));

    // Audited as the supervisor, from their console device (never a token that could sync).
    let audited = count(
        &h,
        &format!(
            "SELECT COUNT(*) FROM audit a JOIN devices d ON d.id = a.device_id
             WHERE a.doc_id = '{}' AND a.user_id = '{}' AND d.name = '管理后台' AND d.token_hash LIKE 'console:%'",
            case.id, zhou.id
        ),
    );
    assert_eq!(audited, 1);
    h.assert_store_loads("after a console close");

    // Closing again is refused in plain words; nothing stored.
    let before = stored(&h);
    let again = browser
        .post(&format!("/console/cases/{}/close", case.id), &[("csrf", &shown.csrf()), ("satisfaction", "5")])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.form_error().unwrap().contains("已经关闭"), "{:?}", again.form_error());
    assert_eq!(stored(&h), before);
}

#[tokio::test]
async fn reopen_reassign_and_comment_and_a_worker_of_another_grid_is_refused() {
    let h = Harness::new();
    let (zhou, community, mut browser) = supervisor(&h).await;
    let all = cases(&h, community);
    let done = all.iter().find(|c| is_done(c)).expect("a done case").clone();
    let open = all.iter().find(|c| !is_done(c)).expect("an open case").clone();
    let csrf = browser.get(&format!("/console/cases/{}", done.id)).await.csrf();

    // Reopen needs a reason.
    let before = stored(&h);
    let no_reason =
        browser.post(&format!("/console/cases/{}/reopen", done.id), &[("csrf", &csrf), ("reason", "  ")]).await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    assert!(no_reason.form_error().is_some());
    assert_eq!(stored(&h), before);
    let reopened = browser
        .post(
            &format!("/console/cases/{}/reopen", done.id),
            &[("csrf", &csrf), ("reason", "回访时居民王德胜反映漏水仍未修好。")],
        )
        .await;
    assert_eq!(reopened.status, StatusCode::SEE_OTHER, "{}", reopened.body);
    let case = server_case(&h, done.id);
    assert_eq!(case.status(), CaseStatus::Accepted);
    let last = case.ordered_timeline().into_iter().next_back().unwrap().clone();
    assert_eq!((last.kind, last.by), (ActionKind::Reopen, zhou.id));
    assert!(last.note.contains("漏水"));

    // Reassign: only to a grid worker of the case's grid.
    let grid = open.placement.grid;
    let (colleague, _) =
        h.admin.add_user("孙丽华", Role::GridWorker, &[Scope::Grid(grid)], "13907140002", now_millis(), 72).unwrap();
    let stranger = h.grid_workers().into_iter().find(|w| !w.scopes.contains(&Scope::Grid(grid))).unwrap();
    let page = browser.get(&format!("/console/cases/{}", open.id)).await;
    assert!(page.body.contains("孙丽华"), "the select offers the grid's workers");
    assert!(!page.body.contains(&format!("value=\"{}\"", stranger.id)), "and no one else");
    let before = stored(&h);
    let refused = browser
        .post(
            &format!("/console/cases/{}/reassign", open.id),
            &[("csrf", &page.csrf()), ("to", &stranger.id.to_string())],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.form_error().unwrap().contains("本网格的网格员"), "{:?}", refused.form_error());
    assert_eq!(stored(&h), before, "nothing stored");
    let junk = browser
        .post(&format!("/console/cases/{}/reassign", open.id), &[("csrf", &page.csrf()), ("to", "nobody")])
        .await;
    assert_eq!(junk.status, StatusCode::BAD_REQUEST);
    assert_eq!(stored(&h), before);
    let handed = browser
        .post(
            &format!("/console/cases/{}/reassign", open.id),
            &[("csrf", &page.csrf()), ("to", &colleague.to_string()), ("note", "原网格员休假，请孙丽华跟进。")],
        )
        .await;
    assert_eq!(handed.status, StatusCode::SEE_OTHER, "{}", handed.body);
    assert_eq!(server_case(&h, open.id).responsible(), (colleague, "孙丽华".to_string()));
    let listed = browser.get(&format!("/console/cases?worker={colleague}")).await;
    assert_eq!(total(&listed), 1, "the list follows the rows: 孙丽华 is responsible now");

    // Comment.
    let commented = browser
        .post(
            &format!("/console/cases/{}/comment", open.id),
            &[("csrf", &page.csrf()), ("note", "请本周五前反馈进展。")],
        )
        .await;
    assert_eq!(commented.status, StatusCode::SEE_OTHER, "{}", commented.body);
    let case = server_case(&h, open.id);
    let last = case.ordered_timeline().into_iter().next_back().unwrap().clone();
    assert_eq!((last.kind, last.note.as_str()), (ActionKind::Comment, "请本周五前反馈进展。"));
    let shown = browser.get(&format!("/console/cases/{}", open.id)).await;
    assert!(shown.body.contains("请本周五前反馈进展。") && shown.body.contains("转派给 孙丽华"));
    h.assert_store_loads("after console actions");
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_stores_nothing() {
    let h = Harness::new();
    let (_, community, mut browser) = supervisor(&h).await;
    let case = cases(&h, community).into_iter().find(|c| !is_done(c)).unwrap();
    let before = stored(&h);
    let answer = browser.post(&format!("/console/cases/{}/close", case.id), &[("satisfaction", "5")]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = browser
        .post(&format!("/console/cases/{}/comment", case.id), &[("csrf", "0".repeat(64).as_str()), ("note", "伪造")])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(stored(&h), before);
    assert_eq!(count(&h, "SELECT COUNT(*) FROM devices WHERE token_hash LIKE 'console:%'"), 0);
}

/// Another street and community with a grid worker, a building and 刘桂兰's household, as an
/// admin would import them; returns the worker, the building's placement and the household.
fn import_other_community(h: &Harness) -> (Staff, Placement, HouseholdId) {
    let csv = "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room
street,00000000-0000-4000-8000-000000000001,,澜湖街道,,,,,,,,
community,00000000-0000-4000-8000-000000000011,00000000-0000-4000-8000-000000000001,澜湖社区,,,,,,,,
grid,00000000-0000-4000-8000-000000000101,00000000-0000-4000-8000-000000000011,澜湖社区第1网格,,,,,,,,
building,00000000-0000-4000-8000-000000000201,00000000-0000-4000-8000-000000000101,澜湖印象3栋,,,,2,6,2,,
household,00000000-0000-4000-8000-000000000301,00000000-0000-4000-8000-000000000201,刘桂兰,13907149999,,,,,,2,302
staff,00000000-0000-4000-8000-000000000401,,蔡文斌,13907140003,grid-worker,grid:00000000-0000-4000-8000-000000000101,,,,,
";
    h.admin.import_csv_from(csv.as_bytes(), now_millis()).unwrap();
    let worker = Staff {
        id: "00000000-0000-4000-8000-000000000401".parse().unwrap(),
        name: "蔡文斌".into(),
        role: Role::GridWorker,
        phone: "13907140003".into(),
        scopes: vec![Scope::Grid("00000000-0000-4000-8000-000000000101".parse().unwrap())],
        pledge: String::new(),
    };
    let placement = Placement {
        street: "00000000-0000-4000-8000-000000000001".parse().unwrap(),
        community: "00000000-0000-4000-8000-000000000011".parse().unwrap(),
        grid: "00000000-0000-4000-8000-000000000101".parse().unwrap(),
        building: Some("00000000-0000-4000-8000-000000000201".parse().unwrap()),
    };
    (worker, placement, "00000000-0000-4000-8000-000000000301".parse().unwrap())
}

#[tokio::test]
async fn other_communities_are_404_and_hostile_input_stores_nothing() {
    let h = Harness::new();
    let (worker, placement, household) = import_other_community(&h);
    let mut phone = h.enroll(&worker).await;
    let far = CaseFile::new(
        CaseId::new(),
        CaseKind::Dispute,
        placement,
        Some(household),
        "楼上漏水引发邻里纠纷",
        "3栋302与402因漏水争执。",
        (worker.id, &worker.name),
        (worker.id, &worker.name),
        now_millis(),
    );
    let change = phone.create(&far);
    h.sync(&mut phone, vec![change]).await;
    assert!(h.server_doc(far.id.into()).is_some());

    let (_, community, mut browser) = supervisor(&h).await;
    let open = cases(&h, community).into_iter().find(|c| !is_done(c)).unwrap();
    let page = browser.get(&format!("/console/cases/{}", open.id)).await;
    let csrf = page.csrf();
    let before = stored(&h);
    let refusals = count(&h, "SELECT COUNT(*) FROM refusals");

    // Another community's case and household: the same 404 as a missing one.
    for path in [format!("/console/cases/{}", far.id), format!("/console/households/{household}")] {
        let answer = browser.get(&path).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!answer.body.contains("漏水") && !answer.body.contains("刘桂兰"), "{path}");
    }
    let answer =
        browser.post(&format!("/console/cases/{}/close", far.id), &[("csrf", &csrf), ("satisfaction", "5")]).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let listed = browser.get("/console/cases").await;
    assert!(!listed.body.contains(&far.id.to_string()));

    // Scores that are not 1 to 5.
    for score in ["0", "6", "abc", "", "4.5", "-1", "255", "256"] {
        let answer = browser
            .post(&format!("/console/cases/{}/close", open.id), &[("csrf", &csrf), ("satisfaction", score)])
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "score {score:?}");
        assert!(answer.form_error().unwrap().contains("1 到 5"), "{:?}", answer.form_error());
    }
    // A 5,000-character note is over the form limit: refused before it is read.
    let long = "啊".repeat(5000);
    let answer =
        browser.post(&format!("/console/cases/{}/comment", open.id), &[("csrf", &csrf), ("note", &long)]).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    // One over the note limit that fits in the form: refused by the console, in words.
    let long = "a".repeat(2001);
    let answer =
        browser.post(&format!("/console/cases/{}/comment", open.id), &[("csrf", &csrf), ("note", &long)]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.form_error().unwrap().contains("2001"), "{:?}", answer.form_error());
    // Unknown and malformed ids.
    for id in [CaseId::new().to_string(), "not-a-case".into(), "../../etc".into(), household.to_string()] {
        let answer = browser.get(&format!("/console/cases/{id}")).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{id}");
        let answer = browser.post(&format!("/console/cases/{id}/comment"), &[("csrf", &csrf), ("note", "测试")]).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{id}");
    }
    assert_eq!(browser.get("/console/households/not-a-household").await.status, StatusCode::NOT_FOUND);
    assert_eq!(browser.get(&format!("/console/households/{}", HouseholdId::new())).await.status, StatusCode::NOT_FOUND);
    assert_eq!(browser.get(&format!("/console/households/{}", open.id)).await.status, StatusCode::NOT_FOUND);

    assert_eq!(stored(&h), before, "nothing stored");
    assert_eq!(count(&h, "SELECT COUNT(*) FROM refusals"), refusals, "nothing even refused: never built");
}

#[tokio::test]
async fn households_are_found_by_pinyin_initials_and_phone_and_their_page_masks_id_numbers() {
    let h = Harness::new();
    let (_, community, mut browser) = supervisor(&h).await;
    let grid = h.demo.roster.grids.iter().find(|g| g.community == community).unwrap().id;
    let worker = worker_of(&h, grid);
    let building = h.demo.roster.buildings.iter().find(|b| b.grid == grid).unwrap();
    let placement = h.demo.roster.placement_of_building(building.id).unwrap();
    let now = now_millis();
    let mut file =
        HouseholdFile::new(HouseholdId::new(), placement, &building.name, "3", "1806", "张桂兰", now - 400 * DAY_MS);
    file.phone = "13907141234".into();
    let head = ResidentId::new();
    file.residents.insert(
        head,
        Resident {
            id: head,
            name: "张桂兰".into(),
            sex: Sex::Female,
            birth_year: 1955,
            relation: "户主".into(),
            phone: "13907141234".into(),
            id_number: "420704195503120026".into(),
            flags: Default::default(),
        },
    );
    file.tags.insert(
        MustVisitTag::EmptyNest,
        TagEntry { since: "2025-03-01".parse().unwrap(), added_by: worker.id, note: "独居，子女在武汉".into() },
    );
    for (days_ago, notes) in [(40, "第一次走访：血压偏高，提醒按时服药。"), (3, "第二次走访：身体好转，需要助医上门。")]
    {
        let visit = Visit {
            id: VisitId::new(),
            visitor: worker.id,
            visitor_name: worker.name.clone(),
            at: now - days_ago * DAY_MS,
            recorded_at: now - days_ago * DAY_MS,
            outcome: VisitOutcome::Met,
            notes: notes.into(),
            needs_found: vec![HelpNeed::Medical],
            follow_up: None,
            residents_present: vec![head],
        };
        file.visits.insert(visit.id, visit);
    }
    let mut phone = h.enroll(&worker).await;
    let change = phone.create(&file);
    let response = h.sync(&mut phone, vec![change]).await;
    assert!(matches!(response.acks[0].status, gridlink_shared::protocol::AckStatus::Accepted), "{:?}", response.acks);
    let address = file.address();

    let found = browser.get("/console/households?q=zgl").await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert!(found.body.contains(&address), "zgl finds 张桂兰");
    assert!(total(&found) >= 1);
    let by_phone = browser.get("/console/households?q=139-0714-1234").await;
    assert_eq!(total(&by_phone), 1);
    assert!(by_phone.body.contains(&address));
    let by_name = browser.get("/console/households?q=%E5%BC%A0%E6%A1%82%E5%85%B0").await;
    assert!(by_name.body.contains(&address));
    let nobody = browser.get("/console/households?q=qqqqqq").await;
    assert_eq!(total(&nobody), 0);
    let facts = h.admin.facts(&[Scope::Community(community)]).unwrap();
    let empty_nest = facts.households.iter().filter(|h| h.tags.contains_key(&MustVisitTag::EmptyNest)).count();
    assert_eq!(total(&browser.get("/console/households?tag=empty-nest").await), empty_nest);
    let in_grid = facts.households.iter().filter(|h| h.placement.grid == grid).count();
    assert_eq!(total(&browser.get(&format!("/console/households?grid={grid}")).await), in_grid);
    assert_eq!(total(&browser.get("/console/households").await), facts.households.len());
    let overdue = browser.get("/console/households?overdue=1").await;
    assert_eq!(overdue.status, StatusCode::OK);
    assert!(!overdue.body.contains(&address), "visited three days ago: not overdue");

    let page = browser.get(&format!("/console/households/{}", file.id)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("4207**********0026"), "masked");
    assert!(!page.body.contains("420704195503120026"), "never whole");
    assert!(page.body.contains("独居，子女在武汉") && page.body.contains("2025-03-01"));
    let newer = page.body.find("第二次走访").unwrap();
    let older = page.body.find("第一次走访").unwrap();
    assert!(newer < older, "visits newest first");
    assert_eq!(rows(&page, "visit-row"), 2);
    assert!(page.body.contains(&worker.name));
    let _: UserId = worker.id;
}
