//! The app against a real `gridlink-server` process on 127.0.0.1 (demo data): the first-run
//! gate, enrolment through the screen's action, the PIN gates, and the always-visible sync bar
//! while syncing, after a local write, and with the server gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dioxus::dioxus_core::NoOpMutations;
use dioxus::prelude::*;
use gridlink_client::{Client, HouseholdFilter};
use gridlink_shared::Lang;
use gridlink_shared::time::now_millis;
use gridlink_tests::{Server, quick_retries};
use gridlink_ui::state::sync_once;
use gridlink_ui::views::actions::{self, VisitForm};
use gridlink_ui::{App, AppConfig, AppProps, Ctx};

fn start(client: &Client, unlocked: bool) -> VirtualDom {
    let config = AppConfig {
        client: client.clone(),
        background: false,
        now: None,
        lang: Some(Lang::Zh),
        unlocked,
        initial_path: Some("/".to_string()),
    };
    let mut vdom = VirtualDom::new_with_props(App, AppProps { config });
    vdom.rebuild_in_place();
    vdom
}

/// Runs one sync the way the sync button does (on the app's own task, the HTTP work on the
/// tokio runtime) and returns the screen once it finished.
fn sync_in_app(runtime: &tokio::runtime::Runtime, vdom: &mut VirtualDom) -> String {
    let ctx = vdom.in_scope(ScopeId::APP, consume_context::<Ctx>);
    let done = Arc::new(AtomicBool::new(false));
    let finished = done.clone();
    vdom.in_scope(ScopeId::APP, || {
        spawn(async move {
            sync_once(&ctx).await;
            finished.store(true, Ordering::SeqCst);
        })
    });
    runtime.block_on(async {
        // A safety net against a hung test, not a speed assertion.
        tokio::time::timeout(Duration::from_secs(120), async {
            while !done.load(Ordering::SeqCst) {
                vdom.wait_for_work().await;
                vdom.render_immediate(&mut NoOpMutations);
            }
        })
        .await
        .expect("sync finished");
    });
    vdom.render_immediate(&mut NoOpMutations);
    dioxus_ssr::render(vdom)
}

#[test]
fn enrol_then_the_sync_bar_tells_online_unsent_and_offline_in_plain_words() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _guard = runtime.enter();
    let mut server = Server::start_demo().unwrap();
    let (worker, _) = server.user_with_role("grid-worker", 0).unwrap();
    let code = server.code_for(&worker).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = Client::open(dir.path()).unwrap();
    client.set_retry_policy(quick_retries(2));

    // First run: the enrolment screen, nothing else.
    let html = dioxus_ssr::render(&start(&client, false));
    assert!(html.contains("注册此设备") && !html.contains("今日工作"));

    // A wrong code is refused in plain words and the device stays unenrolled.
    let refused = runtime.block_on(actions::enroll(&client, &server.url(), "WRONG-CODE")).unwrap_err();
    assert!(!refused.plain().zh.is_empty());
    assert!(!client.status().unwrap().enrolled);

    // Enrol through the screen's action; the app then asks for a PIN, then locks with it.
    runtime.block_on(actions::enroll(&client, &server.url(), &code)).unwrap();
    let html = dioxus_ssr::render(&start(&client, false));
    assert!(html.contains("设置解锁PIN码"), "{html}");
    client.set_pin("2468").unwrap();
    let html = dioxus_ssr::render(&start(&client, false));
    assert!(html.contains("输入PIN码解锁"), "{html}");
    assert!(matches!(client.verify_pin("1357", now_millis()), Err(gridlink_client::Error::WrongPin { left: 9, .. })));
    client.verify_pin("2468", now_millis()).unwrap();

    // The first sync from the app fills today's list and the bar says online.
    let mut app = start(&client, true);
    assert!(dioxus_ssr::render(&app).contains("尚未同步"));
    let html = sync_in_app(&runtime, &mut app);
    assert!(html.contains("在线"), "{html}");
    assert!(html.contains("上次同步 刚刚"), "{html}");
    assert!(html.contains("已全部上传"), "{html}");
    let now = now_millis();
    let today = client.today(now).unwrap();
    assert!(!today.due_visits.is_empty(), "the demo grid has due visits after the first sync");
    assert!(html.contains(&today.due_visits[0].head), "{html}");

    // A visit saved offline shows as unsent until the next sync carries it.
    let household = client.households(&HouseholdFilter::default(), now).unwrap()[0].id;
    let form = VisitForm { notes: "楼道里碰到，聊了几句".to_string(), ..VisitForm::default() };
    actions::record_visit(&client, household, &form, now).unwrap();
    let mut app = start(&client, true);
    assert!(dioxus_ssr::render(&app).contains("1 条未上传"));
    let html = sync_in_app(&runtime, &mut app);
    assert!(html.contains("已全部上传"), "{html}");
    assert_eq!(client.status().unwrap().unsent, 0);

    // The server goes away: the visit is kept, the bar says offline and why, in plain words.
    server.kill();
    actions::record_visit(&client, household, &form, now_millis()).unwrap();
    let mut app = start(&client, true);
    let html = sync_in_app(&runtime, &mut app);
    assert!(html.contains("离线"), "{html}");
    assert!(html.contains("无法连接服务器"), "{html}");
    assert!(html.contains("1 条未上传"), "{html}");
    assert_eq!(client.status().unwrap().unsent, 1);

    // Back online, the kept visit goes out.
    server.restart().unwrap();
    let html = sync_in_app(&runtime, &mut app);
    assert!(html.contains("在线") && html.contains("已全部上传"), "{html}");

    // The administrator wipes the phone: at its next sync the store and its keys are erased
    // and the app says so in plain words, with nothing of the data left on screen.
    let device = client.status().unwrap().device.expect("enrolled device").to_string();
    server.admin(&["device", "wipe", "--device", &device]).unwrap();
    let html = sync_in_app(&runtime, &mut app);
    assert!(html.contains("此设备已被清除") && html.contains("本机数据和密钥已删除"), "{html}");
    assert!(!html.contains(&today.due_visits[0].head), "{html}");
    for gone in ["gridlink.db", "db.key", "db.key.pin", "db.key.recovery"] {
        assert!(!dir.path().join(gone).exists(), "{gone} is still in the data directory");
    }
}
