//! The lock screens over REAL stores (encrypted SQLite files and the key files beside them in
//! a tempdir), rendered with `VirtualDom` + `dioxus_ssr`: fail closed when the PIN state or
//! the refused changes cannot be read, the PIN asked before the store opens, the growing
//! wait after wrong PINs, and the data locked for the administrator after ten.

use dioxus::prelude::*;
use gridlink_client::{Client, Error, HouseholdFilter, fixtures, keys, store};
use gridlink_shared::{Lang, Role};
use gridlink_ui::{App, AppConfig, AppProps, Ctx, Gate, Start, StartConfig, StartProps};

const NOW: i64 = fixtures::DEMO_NOW;

fn demo() -> (tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = fixtures::demo_client(dir.path(), Role::GridWorker, NOW).unwrap();
    (dir, client)
}

fn app(client: &Client, unlocked: bool, path: &str) -> VirtualDom {
    let config = AppConfig {
        client: client.clone(),
        background: false,
        now: Some(NOW),
        lang: Some(Lang::Zh),
        unlocked,
        initial_path: Some(path.to_string()),
    };
    let mut vdom = VirtualDom::new_with_props(App, AppProps { config });
    vdom.rebuild_in_place();
    vdom
}

fn start(dir: &std::path::Path, now: i64, lang: Lang) -> String {
    let config =
        StartConfig { dir: dir.to_path_buf(), background: false, now: Some(now), lang: Some(lang), open: None };
    let mut vdom = VirtualDom::new_with_props(Start, StartProps { config });
    vdom.rebuild_in_place();
    dioxus_ssr::render(&vdom)
}

/// The first household's address, HTML-escaped the way SSR writes it: must never show on a
/// locked screen.
fn some_data(client: &Client) -> String {
    client.households(&HouseholdFilter::default(), NOW).unwrap()[0].address.clone()
}

#[test]
fn a_pin_state_that_cannot_be_read_locks_the_app_instead_of_opening_it() {
    let (dir, client) = demo();
    let address = some_data(&client);
    // The wrapped-key file is there but damaged: whether a PIN is set cannot be told.
    std::fs::write(dir.path().join(keys::PIN_KEY_FILE), b"{ not a wrapped key").unwrap();
    assert!(matches!(client.has_pin(), Err(Error::Corrupt(_))));

    assert_eq!(gridlink_ui::state::initial_gate(&client), Gate::Locked);
    let html = dioxus_ssr::render(&app(&client, false, "/"));
    assert!(html.contains("输入PIN码解锁"), "{html}");
    assert!(html.contains("本机数据无法读取"), "the lock screen says why: {html}");
    assert!(!html.contains("设置解锁PIN码"), "no way in through setting a new PIN: {html}");
    assert!(!html.contains(&address) && !html.contains("今日工作"), "{html}");

    // An open app that is asked to lock locks too.
    let mut vdom = app(&client, true, "/");
    assert!(dioxus_ssr::render(&vdom).contains("今日工作"));
    vdom.in_scope(ScopeId::APP, || consume_context::<Ctx>().lock());
    vdom.render_immediate(&mut dioxus::dioxus_core::NoOpMutations);
    let html = dioxus_ssr::render(&vdom);
    assert!(html.contains("输入PIN码解锁") && !html.contains(&address), "{html}");
}

#[test]
fn a_failed_read_of_the_refused_changes_shows_an_error_not_an_empty_list() {
    let (dir, client) = demo();
    let household = client.households(&HouseholdFilter::default(), NOW).unwrap()[0].id;
    // A refused change whose stored reason code this app does not know.
    let key = store::resolve_key(dir.path()).unwrap();
    let raw = store::open_encrypted(&dir.path().join(store::DB_FILE), &key).unwrap();
    raw.execute_batch(&format!(
        "INSERT INTO rejected (hash, doc, bytes, summary, code, message, recorded_at, rejected_at)
         VALUES ('ab12', '{household}', x'00', '走访 张三', 'no-such-code', 'refused', {NOW}, {NOW})"
    ))
    .unwrap();
    assert!(client.rejected_changes().is_err());

    let html = dioxus_ssr::render(&app(&client, true, "/me"));
    assert!(html.contains("被服务器退回的修改"), "the section shows: {html}");
    assert!(html.contains("被退回的修改无法读取"), "{html}");
    assert!(html.contains("no-such-code"), "with the reason: {html}");
}

#[test]
fn a_store_locked_with_a_pin_asks_for_it_before_opening_and_shows_the_wait_after_wrong_ones() {
    let (dir, client) = demo();
    let address = some_data(&client);
    client.set_pin("2468").unwrap();
    drop(client);

    // At start the store cannot be opened without the PIN: the PIN pad, and nothing else.
    let html = start(dir.path(), NOW, Lang::Zh);
    assert!(html.contains("open-locked") && html.contains("输入PIN码解锁"), "{html}");
    assert!(!html.contains(&address) && !html.contains("今日工作"), "{html}");
    assert!(!html.contains("role=\"alert\""), "no message before a wrong PIN: {html}");

    // Three typos cost nothing; the fourth starts a one-second wait that a restart keeps.
    for _ in 0..3 {
        assert!(matches!(Client::open_with_pin(dir.path(), "1111", NOW), Err(Error::WrongPin { wait_ms: 0, .. })));
    }
    assert!(matches!(Client::open_with_pin(dir.path(), "1111", NOW), Err(Error::WrongPin { left: 6, wait_ms: 1000 })));
    let html = start(dir.path(), NOW + 200, Lang::Zh);
    assert!(html.contains("PIN 码输错次数过多，请 1 秒后再试。"), "{html}");
    let html = start(dir.path(), NOW + 200, Lang::En);
    assert!(html.contains("Too many wrong PINs. Try again in 1 s."), "{html}");
    let html = start(dir.path(), NOW + 1000, Lang::Zh);
    assert!(!html.contains("秒后再试"), "the wait is over: {html}");

    // The right PIN, once the wait is over, opens the store and resets the count.
    let opened = Client::open_with_pin(dir.path(), "2468", NOW + 1000).unwrap();
    assert_eq!(some_data(&opened), address);
    assert_eq!(keys::pin_tries(dir.path()).unwrap().failures, 0);
}

#[test]
fn the_tenth_wrong_pin_in_a_row_locks_the_data_for_the_administrator() {
    let (dir, client) = demo();
    client.set_pin("2468").unwrap();
    drop(client);
    let mut now = NOW;
    for n in 1..keys::MAX_PIN_FAILURES {
        assert!(matches!(Client::open_with_pin(dir.path(), "9999", now), Err(Error::WrongPin { .. })), "try {n}");
        now += keys::pin_delay_ms(n);
    }
    assert!(matches!(Client::open_with_pin(dir.path(), "9999", now), Err(Error::PinLockedOut)));
    assert!(!dir.path().join(keys::PIN_KEY_FILE).exists(), "the PIN-wrapped key is destroyed");

    let html = start(dir.path(), now + keys::MAX_PIN_DELAY_MS, Lang::Zh);
    assert!(html.contains("locked-out") && html.contains("本机数据已锁定"), "{html}");
    assert!(html.contains("只能由管理员恢复"), "{html}");
    assert!(!html.contains("class=\"keypad\""), "no PIN pad any more: {html}");
    let html = start(dir.path(), now + keys::MAX_PIN_DELAY_MS, Lang::En);
    assert!(html.contains("Data locked") && html.contains("only your administrator can recover it"), "{html}");
    // Even the right PIN does nothing now.
    assert!(matches!(
        Client::open_with_pin(dir.path(), "2468", now + keys::MAX_PIN_DELAY_MS),
        Err(Error::PinLockedOut)
    ));
}
