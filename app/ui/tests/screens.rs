//! Every screen rendered with `VirtualDom` + `dioxus_ssr` over a REAL client store (an
//! encrypted SQLite file in a tempdir filled with the demo dataset by the core's fixtures),
//! routed through `MemoryHistory`. Assertions are on content: a `Link` outside a router would
//! vanish silently, so each test checks the data itself is in the HTML.

use dioxus::prelude::*;
use gridlink_client::{CaseFilter, Client, HouseholdFilter, fixtures};
use gridlink_shared::demo::DemoData;
use gridlink_shared::policy::DueState;
use gridlink_shared::{ActionKind, CaseKind, HouseholdId, Lang, Role, VisitOutcome, mask_id_number};
use gridlink_ui::views::actions::{self, CaseForm, VisitForm};
use gridlink_ui::{App, AppConfig, AppProps, Ctx, format};

const NOW: i64 = fixtures::DEMO_NOW;

struct Demo {
    _dir: tempfile::TempDir,
    client: Client,
    data: DemoData,
}

fn demo(role: Role) -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let (client, data) = fixtures::demo_client(dir.path(), role, NOW).unwrap();
    Demo { _dir: dir, client, data }
}

fn config(client: &Client, path: &str, lang: Lang) -> AppConfig {
    AppConfig {
        client: client.clone(),
        background: false,
        now: Some(NOW),
        lang: Some(lang),
        unlocked: true,
        initial_path: Some(path.to_string()),
    }
}

fn dom(config: AppConfig) -> VirtualDom {
    let mut vdom = VirtualDom::new_with_props(App, AppProps { config });
    vdom.rebuild_in_place();
    vdom
}

fn render(client: &Client, path: &str, lang: Lang) -> String {
    dioxus_ssr::render(&dom(config(client, path, lang)))
}

/// Text as SSR writes it (HTML-escaped), to compare against view-model strings.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn assert_has(html: &str, needle: &str) {
    assert!(html.contains(&esc(needle)), "expected {needle:?} in the rendered screen:\n{html}");
}

fn assert_lacks(html: &str, needle: &str) {
    assert!(!html.contains(needle), "did not expect {needle:?} in the rendered screen");
}

#[test]
fn today_shows_due_visits_with_their_reasons_must_arrive_countdowns_and_my_cases() {
    let demo = demo(Role::GridWorker);
    // The fixture guarantees an open must-arrive event: one reported ten minutes ago, so its
    // arrival countdown is still running.
    let household = demo.client.households(&HouseholdFilter::default(), NOW).unwrap()[0].id;
    let title = "老人在家摔倒，需到场";
    demo.client
        .open_case(
            gridlink_client::NewCase {
                kind: CaseKind::MustArrive(gridlink_shared::MustArriveKind::Emergency),
                household: Some(household),
                building: None,
                title: title.to_string(),
                note: String::new(),
                at: NOW - 10 * 60_000,
            },
            NOW,
        )
        .unwrap();
    let today = demo.client.today(NOW).unwrap();
    assert!(!today.due_visits.is_empty(), "the demo grid has due must-visits");
    assert!(today.must_arrive.iter().any(|row| row.title == title), "{:?}", today.must_arrive);
    let html = render(&demo.client, "/", Lang::Zh);

    assert_has(&html, "今日工作");
    assert_has(&html, "四必访 · 待走访");
    for row in &today.due_visits {
        assert_has(&html, &row.head);
        assert_has(&html, &row.address);
        // The reason: which tag, and how many days.
        assert_has(&html, &format!("{} · {}", row.tag.zh(), format::due_phrase(Lang::Zh, &row.state)));
    }
    if let Some(overdue) = today.due_visits.iter().find(|r| matches!(r.state, DueState::Overdue { .. })) {
        let DueState::Overdue { days } = overdue.state else { unreachable!() };
        assert_has(&html, &format!("逾期{days}天"));
    }
    for row in &today.must_arrive {
        assert_has(&html, &row.title);
    }
    // Reported ten minutes ago: its countdown shows the time left, not overdue.
    let fresh = today.must_arrive.iter().find(|row| row.title == title).unwrap();
    assert!(fresh.deadline > NOW, "the arrival deadline is ahead");
    assert_has(&html, &(gridlink_ui::i18n::tr(Lang::Zh).time_left)(&format::countdown(Lang::Zh, fresh.deadline - NOW)));
    for row in &today.my_cases {
        assert_has(&html, &row.title);
    }
    // The always-visible bar and the tab bar (links only render inside the router).
    assert_has(&html, "尚未同步");
    // The event opened above waits in the outbox.
    assert_has(&html, "1 条未上传");
    for tab in ["今日", "住户", "事件", "便民", "我的"] {
        assert_has(&html, tab);
    }
    // One tap to record a visit.
    let first = &today.due_visits[0];
    assert!(html.contains(&format!("/households/{}/visit", first.household)));
}

#[test]
fn households_are_grouped_by_building_and_unit_with_tag_badges() {
    let demo = demo(Role::GridWorker);
    let rows = demo.client.households(&HouseholdFilter::default(), NOW).unwrap();
    assert!(rows.len() > 10);
    let html = render(&demo.client, "/households", Lang::Zh);
    assert_has(&html, "姓名、地址、电话或拼音首字母");
    // The first page of the list (tests/paging.rs loads the rest).
    let rows = &rows[..rows.len().min(gridlink_client::PAGE_ROWS)];
    for row in rows {
        assert_has(&html, &row.head);
        assert_has(&html, &format!("{} {}单元", row.building_name, row.unit));
    }
    let tagged = rows.iter().find(|r| !r.tags.is_empty()).expect("some households carry must-visit tags");
    assert_has(&html, tagged.tags[0].zh());
    for tag in ["新迁入", "问题家庭", "贫困家庭", "空巢老人", "逾期未访"] {
        assert_has(&html, tag);
    }
}

#[test]
fn the_household_file_masks_id_numbers_and_shows_tags_needs_visits_and_cases() {
    let demo = demo(Role::GridWorker);
    let rows = demo.client.households(&HouseholdFilter::default(), NOW).unwrap();
    let file = demo
        .data
        .households
        .iter()
        .filter(|h| rows.iter().any(|r| r.id == h.id))
        .find(|h| h.residents.values().any(|r| r.id_number.len() == 18) && !h.visits.is_empty() && !h.tags.is_empty())
        .expect("a demo household with residents, visits and tags");
    let detail = demo.client.household(file.id, NOW).unwrap();
    let html = render(&demo.client, &format!("/households/{}", file.id), Lang::Zh);

    assert_has(&html, &detail.head);
    assert_has(&html, &detail.address);
    for resident in file.residents.values() {
        assert_has(&html, &resident.name);
        assert_has(&html, &mask_id_number(&resident.id_number));
        assert_lacks(&html, &resident.id_number);
    }
    for tag in &detail.tags {
        assert_has(&html, tag.tag.zh());
        assert_has(&html, &format!("自 {} 起", tag.since));
    }
    for need in &detail.needs {
        assert_has(&html, need.need.zh());
    }
    for visit in &detail.visits {
        assert_has(&html, &format::date_time(visit.at));
    }
    for case in &detail.open_cases {
        assert_has(&html, &case.title);
    }
    assert_has(&html, "记录走访");
    assert_has(&html, "新建事件");
}

#[test]
fn a_visit_recorded_through_the_screen_action_shows_in_the_file_and_leaves_the_due_list() {
    let demo = demo(Role::GridWorker);
    let today = demo.client.today(NOW).unwrap();
    let due = today.due_visits.iter().find(|r| matches!(r.state, DueState::Overdue { .. })).unwrap().clone();
    let household = demo.client.household(due.household, NOW).unwrap();

    // The form screen renders the household and the residents to tick.
    let form_html = render(&demo.client, &format!("/households/{}/visit", due.household), Lang::Zh);
    assert_has(&form_html, &household.head);
    for resident in &household.residents {
        assert_has(&form_html, &resident.name);
    }
    for label in ["已见面", "不在家", "拒绝", "助医", "回访日期", "保存"] {
        assert_has(&form_html, label);
    }

    // Save through the very function the save button calls.
    let form = VisitForm {
        outcome: VisitOutcome::Met,
        notes: "老人身体不错，冬季取暖已落实".to_string(),
        needs_found: vec![gridlink_shared::HelpNeed::Medical],
        follow_up: "2026-12-05".to_string(),
        residents_present: household.residents.iter().take(1).map(|r| r.id).collect(),
    };
    actions::record_visit(&demo.client, due.household, &form, NOW).unwrap();

    let html = render(&demo.client, &format!("/households/{}", due.household), Lang::Zh);
    assert_has(&html, "老人身体不错，冬季取暖已落实");
    assert_has(&html, "回访日期 2026-12-05");
    if let Some(first) = household.residents.first() {
        assert_has(&html, &first.name);
    }
    // Saved locally, waiting for sync: the bar says so.
    assert_has(&html, "1 条未上传");

    let after = demo.client.today(NOW).unwrap();
    assert!(
        !after.due_visits.iter().any(|r| r.household == due.household && r.tag == due.tag),
        "a met visit takes the household off today's list for that tag"
    );
    let today_html = render(&demo.client, "/", Lang::Zh);
    assert_lacks(&today_html, &esc(&format!("{} · {}", due.tag.zh(), format::due_phrase(Lang::Zh, &due.state))));
}

#[test]
fn a_bad_follow_up_date_is_refused_in_plain_words_and_nothing_is_saved() {
    let demo = demo(Role::GridWorker);
    let id = demo.client.households(&HouseholdFilter::default(), NOW).unwrap()[0].id;
    let form = VisitForm { follow_up: "下周二".to_string(), ..VisitForm::default() };
    let error = actions::record_visit(&demo.client, id, &form, NOW).unwrap_err();
    assert!(error.plain().zh.contains("2026-12-01"), "{}", error.plain().zh);
    assert_eq!(demo.client.status().unwrap().unsent, 0);
}

#[test]
fn a_case_shows_its_timeline_and_the_allowed_actions_and_acting_moves_its_status() {
    let demo = demo(Role::GridWorker);
    let open = demo.client.cases(CaseFilter::Open, NOW).unwrap();
    let row = open.iter().find(|r| !demo.client.case(r.id, NOW).unwrap().allowed_actions.is_empty()).unwrap().clone();
    let detail = demo.client.case(row.id, NOW).unwrap();
    let html = render(&demo.client, &format!("/cases/{}", row.id), Lang::Zh);
    assert_has(&html, &row.title);
    assert_has(&html, row.kind.zh().as_str());
    assert_has(&html, row.status.zh());
    assert_has(&html, &detail.reporter_name);
    for entry in &detail.timeline {
        assert_has(&html, entry.kind.zh());
        assert_has(&html, &entry.by_name);
    }
    for action in &detail.allowed_actions {
        assert!(html.contains(&format!("act-{}", action.code())), "button for {action:?}");
    }

    // Act through the screen's function: progress, then resolve.
    let action = if detail.allowed_actions.contains(&ActionKind::Resolve) {
        ActionKind::Resolve
    } else {
        detail.allowed_actions[0]
    };
    actions::act_on_case(&demo.client, row.id, action, "已上门处理完毕", None, None, NOW).unwrap();
    let after = demo.client.case(row.id, NOW).unwrap();
    let html = render(&demo.client, &format!("/cases/{}", row.id), Lang::Zh);
    assert_has(&html, "已上门处理完毕");
    assert_has(&html, after.row.status.zh());
}

#[test]
fn cases_list_mine_by_default_and_a_new_case_of_any_kind_opens_offline() {
    let demo = demo(Role::GridWorker);
    let mine = demo.client.cases(CaseFilter::Mine, NOW).unwrap();
    let html = render(&demo.client, "/cases", Lang::Zh);
    for label in ["我的", "未办结", "已超时", "新建事件"] {
        assert_has(&html, label);
    }
    for row in &mine {
        assert_has(&html, &row.title);
    }

    let new_form = render(&demo.client, "/cases/new", Lang::Zh);
    for kind in CaseKind::all() {
        assert_has(&new_form, &kind.zh());
    }

    let household = demo.client.households(&HouseholdFilter::default(), NOW).unwrap()[0].clone();
    let form = CaseForm {
        kind: CaseKind::MicroWish,
        household: Some(household.id),
        building: None,
        title: "孩子想要一套课外书".to_string(),
        note: "留守儿童，爷爷奶奶照看".to_string(),
    };
    let id = actions::open_case(&demo.client, &form, NOW).unwrap();
    let html = render(&demo.client, &format!("/cases/{id}"), Lang::Zh);
    assert_has(&html, "孩子想要一套课外书");
    assert_has(&html, "留守儿童，爷爷奶奶照看");
    assert_has(&html, "微心愿");
    let file = render(&demo.client, &format!("/households/{}", household.id), Lang::Zh);
    assert_has(&file, "孩子想要一套课外书");

    let empty_title = CaseForm { title: "  ".to_string(), ..form };
    assert!(actions::open_case(&demo.client, &empty_title, NOW).is_err());
}

#[test]
fn services_show_the_eight_categories_and_outlets_with_phone_and_address() {
    let demo = demo(Role::GridWorker);
    let groups = demo.client.services().unwrap();
    let html = render(&demo.client, "/services", Lang::Zh);
    for category in gridlink_shared::ServiceCategory::ALL {
        assert_has(&html, category.zh());
    }
    // The first category is selected at first.
    if let Some(group) = groups.iter().find(|g| g.category == gridlink_shared::ServiceCategory::Housekeeping) {
        for outlet in &group.outlets {
            assert_has(&html, &outlet.name);
            assert_has(&html, &outlet.phone);
            assert_has(&html, &outlet.address);
        }
    }
}

#[test]
fn me_shows_the_identity_card_and_the_language_switch() {
    let demo = demo(Role::GridWorker);
    let identity = demo.client.identity().unwrap();
    let html = render(&demo.client, "/me", Lang::Zh);
    assert_has(&html, &identity.name);
    assert_has(&html, "网格员");
    assert_has(&html, &identity.phone);
    for grid in &identity.grid_names {
        assert_has(&html, grid);
    }
    if !identity.pledge.is_empty() {
        assert_has(&html, &identity.pledge);
    }
    for label in ["语言", "立即同步", "锁定", "退出登录"] {
        assert_has(&html, label);
    }
}

#[test]
fn english_switch_changes_every_label_and_domain_words() {
    let demo = demo(Role::GridWorker);
    let today = demo.client.today(NOW).unwrap();

    // Started in English.
    let html = render(&demo.client, "/", Lang::En);
    for label in ["Today", "Households", "Cases", "Services", "Must-visit households due", "Never synced"] {
        assert_has(&html, label);
    }
    assert_lacks(&html, "今日工作");
    let row = &today.due_visits[0];
    assert_has(&html, &format!("{} · {}", row.tag.en(), format::due_phrase(Lang::En, &row.state)));

    // Switched at run time through the same call the language button makes.
    let mut vdom = dom(config(&demo.client, "/me", Lang::Zh));
    assert_has(&dioxus_ssr::render(&vdom), "语言");
    vdom.in_scope(ScopeId::APP, || consume_context::<Ctx>().set_lang(Lang::En));
    vdom.render_immediate(&mut dioxus::dioxus_core::NoOpMutations);
    let switched = dioxus_ssr::render(&vdom);
    assert_has(&switched, "Identity card");
    assert_has(&switched, "Language");
    assert_has(&switched, "Grid worker");
    assert_lacks(&switched, "退出登录");
    // The choice is remembered for the next start.
    assert_eq!(gridlink_ui::prefs::load_lang(demo.client.dir()), Lang::En);
}

#[test]
fn a_building_leader_gets_big_report_buttons_and_the_list_of_reports() {
    let demo = demo(Role::BuildingLeader);
    let html = render(&demo.client, "/", Lang::Zh);
    assert_has(&html, "楼栋长工作台");
    for role in gridlink_shared::LeaderRole::ALL {
        assert_has(&html, role.zh());
    }
    for kind in gridlink_shared::MustArriveKind::ALL {
        assert_has(&html, kind.zh());
    }
    assert_lacks(&html, "四必访 · 待走访");
    // No household tab for leaders (they do not hold household files).
    assert_lacks(&html, "href=\"/households\"");
    // Their own reports, with status; cases others reported in the building are not theirs.
    let me = demo.client.identity().unwrap().user;
    for row in demo.client.cases(CaseFilter::All, NOW).unwrap() {
        if demo.client.case(row.id, NOW).unwrap().reporter == me {
            assert_has(&html, &row.title);
        } else {
            assert_lacks(&html, &esc(&row.title));
        }
    }

    // A one-tap report: the kind is preset, the building is the leader's.
    let report = render(&demo.client, "/report/report.sanitation", Lang::Zh);
    assert_has(&report, "上报：楼栋长·卫生监督");
    let building = demo.client.buildings().unwrap()[0].id;
    let form = CaseForm {
        kind: CaseKind::Report(gridlink_shared::LeaderRole::Sanitation),
        household: None,
        building: Some(building),
        title: "3单元楼道堆放杂物".to_string(),
        note: "影响消防通道".to_string(),
    };
    actions::open_case(&demo.client, &form, NOW).unwrap();
    let html = render(&demo.client, "/", Lang::Zh);
    assert_has(&html, "3单元楼道堆放杂物");
    assert_has(&html, "待受理");
}

#[test]
fn empty_stores_and_missing_records_render_their_states() {
    let demo = demo(Role::GridWorker);
    // A record that is not on this phone.
    let html = render(&demo.client, &format!("/households/{}", HouseholdId::new()), Lang::Zh);
    assert_has(&html, "出错了");
    assert_has(&html, "本机没有此记录");

    // A grid worker whose grid has nothing yet.
    let dir = tempfile::tempdir().unwrap();
    let staff = demo.data.staff_with_role(Role::GridWorker).next().unwrap().clone();
    let empty = Client::open_with_documents(dir.path(), staff.principal(), demo.data.roster.clone(), vec![]).unwrap();
    let html = render(&empty, "/", Lang::Zh);
    assert_has(&html, "今天没有到期的走访");
    assert_has(&html, "没有待到场的四必到事件");
    assert_has(&html, "没有待办事件");
    let html = render(&empty, "/households", Lang::Zh);
    assert_has(&html, "本网格还没有住户档案");
    let html = render(&empty, "/cases", Lang::Zh);
    assert_has(&html, "这里没有事件");
}

#[test]
fn a_fresh_device_opens_on_the_enrolment_screen() {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::open(dir.path()).unwrap();
    let mut config = config(&client, "/", Lang::Zh);
    config.unlocked = false;
    let html = dioxus_ssr::render(&dom(config));
    for label in ["网格通", "注册此设备", "服务器地址", "注册码", "扫码注册（仅手机版）"] {
        assert_has(&html, label);
    }
    assert_lacks(&html, "今日工作");
}

#[test]
fn enrolling_against_an_unreachable_server_fails_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::open(dir.path()).unwrap();
    // Port 9 on loopback: nothing listens; connection refused at once.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let error = runtime.block_on(actions::enroll(&client, "127.0.0.1:9", "ABCD-1234")).unwrap_err();
    assert!(matches!(error, gridlink_client::Error::Connect(_)), "{error:?}");
    assert_eq!(error.plain().zh, "无法连接服务器，已离线保存，稍后自动重试。");
    assert_eq!(error.plain().en, "Cannot reach the server. Saved offline; will retry.");
    assert!(!client.status().unwrap().enrolled);
}

#[test]
fn pin_shape_is_four_to_six_digits() {
    use gridlink_ui::views::lock::pin_shape_ok;
    assert!(pin_shape_ok("1234"));
    assert!(pin_shape_ok("123456"));
    assert!(!pin_shape_ok("123"));
    assert!(!pin_shape_ok("1234567"));
    assert!(!pin_shape_ok("12a4"));
}

#[test]
fn a_resident_added_on_the_edit_screen_shows_masked_and_needs_switch_on_and_off() {
    let demo = demo(Role::GridWorker);
    let id = demo.client.households(&HouseholdFilter::default(), NOW).unwrap()[0].id;
    let edit = render(&demo.client, &format!("/households/{id}/edit"), Lang::Zh);
    for label in ["编辑住户", "添加家庭成员", "出生年份", "与户主关系", "留守儿童"] {
        assert_has(&edit, label);
    }

    let form = actions::ResidentForm {
        name: "王小雨".to_string(),
        birth_year: "2016".to_string(),
        relation: "孙女".to_string(),
        id_number: "420704201603150044".to_string(),
        flags: vec![gridlink_shared::ResidentFlag::LeftBehindChild],
        ..actions::ResidentForm::default()
    };
    actions::add_resident(&demo.client, id, &form, NOW).unwrap();
    let html = render(&demo.client, &format!("/households/{id}"), Lang::Zh);
    assert_has(&html, "王小雨");
    assert_has(&html, "孙女");
    assert_has(&html, "4207**********0044");
    assert_lacks(&html, "420704201603150044");

    let bad_year = actions::ResidentForm { birth_year: "去年".to_string(), ..form };
    assert!(actions::add_resident(&demo.client, id, &bad_year, NOW).is_err());

    // The needs switches reach the store.
    let before = demo.client.household(id, NOW).unwrap().needs.len();
    demo.client.set_need(id, gridlink_shared::HelpNeed::Schooling, true, "", NOW).unwrap();
    let detail = demo.client.household(id, NOW).unwrap();
    assert_eq!(detail.needs.len(), before + 1);
    let html = render(&demo.client, &format!("/households/{id}"), Lang::Zh);
    assert!(html.contains("chip on\">助学"), "助学 shows as switched on");
}

#[test]
fn the_app_locks_after_inactivity_only_with_a_pin_and_the_lock_screen_hides_the_data() {
    use gridlink_ui::Gate;
    use gridlink_ui::state::{LOCK_AFTER_MS, should_lock};
    assert!(!should_lock(Gate::Open, NOW, NOW + LOCK_AFTER_MS));
    assert!(should_lock(Gate::Open, NOW, NOW + LOCK_AFTER_MS + 1));
    assert!(!should_lock(Gate::Enroll, NOW, NOW + 10 * LOCK_AFTER_MS));

    let demo = demo(Role::GridWorker);
    let today = demo.client.today(NOW).unwrap();
    let mut vdom = dom(config(&demo.client, "/", Lang::Zh));
    // Without a PIN there is nothing to unlock with, so locking does nothing.
    vdom.in_scope(ScopeId::APP, || consume_context::<Ctx>().lock());
    vdom.render_immediate(&mut dioxus::dioxus_core::NoOpMutations);
    assert_has(&dioxus_ssr::render(&vdom), "今日工作");

    demo.client.set_pin("8642").unwrap();
    vdom.in_scope(ScopeId::APP, || consume_context::<Ctx>().lock());
    vdom.render_immediate(&mut dioxus::dioxus_core::NoOpMutations);
    let locked = dioxus_ssr::render(&vdom);
    assert_has(&locked, "输入PIN码解锁");
    assert_lacks(&locked, &esc(&today.due_visits[0].address));
}
