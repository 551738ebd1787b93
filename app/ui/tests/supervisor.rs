//! The supervisor's screens rendered with `VirtualDom` + `dioxus_ssr` over a real encrypted
//! store filled with the demo street (the street supervisor 周建平 sees every community): the
//! home shows the console's figures and the lists to act on, in Chinese and English, with no
//! visit or edit button; a resolved case offers 核实办结; a grid worker still gets 今日.

mod common;

use common::{NOW, demo, render};

use gridlink_client::Client;
use gridlink_client::figures::SupervisorHome;
use gridlink_shared::{ActionKind, CaseStatus, Lang, Role};
use gridlink_ui::views::actions;

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn assert_has(html: &str, needle: &str) {
    assert!(html.contains(&esc(needle)), "expected {needle:?} in the rendered screen:\n{html}");
}

/// For markup (attributes, tiles), compared as written.
fn assert_markup(html: &str, needle: &str) {
    assert!(html.contains(needle), "expected markup {needle:?} in the rendered screen:\n{html}");
}

fn assert_lacks(html: &str, needle: &str) {
    assert!(!html.contains(needle), "did not expect {needle:?} in the rendered screen");
}

/// A figure's tile as the home renders it: the number, then its label.
fn stat(value: &str, label: &str) -> String {
    format!(r#"<div class="n">{value}</div><div class="l">{label}</div>"#)
}

fn home(client: &Client) -> SupervisorHome {
    client.supervisor_home(None, NOW).unwrap()
}

#[test]
fn the_supervisor_home_shows_the_console_figures_and_the_lists_in_chinese() {
    let (_dir, client) = demo(Role::Supervisor);
    let home = home(&client);
    let html = render(&client, "/", Lang::Zh);
    let d = &home.dashboard;
    assert_has(&html, "督导工作台");
    assert_lacks(&html, "今日工作");
    let coverage = &d.coverage.total;
    assert_markup(&html, &stat(&coverage.households_tagged.to_string(), "在册户数"));
    assert_markup(&html, &stat(&coverage.households_overdue.to_string(), "逾期户数"));
    let cases = &d.cases.total.all;
    assert_markup(&html, &stat(&cases.opened.to_string(), "受理"));
    assert_markup(&html, &stat(&format!("{:.1}%", cases.completion_rate * 100.0), "办结率"));
    assert_markup(&html, &stat(&format!("{:.1}%", cases.on_time_rate * 100.0), "限时办结率"));
    assert_markup(&html, &stat(&cases.open_overdue.to_string(), "逾期未办结"));
    let arrival = &d.must_arrive.total.all;
    assert_markup(&html, &stat(&format!("{:.1}%", arrival.on_time_rate * 100.0), "到场及时率"));
    assert_markup(&html, &stat(&d.visits.total.visits.to_string(), "走访次数"));

    // The lists, each row tapping through to its case or household.
    let waiting = home.to_verify.first().expect("the demo street has resolved cases to verify");
    assert_has(&html, &waiting.title);
    assert_has(&html, &format!("/cases/{}", waiting.id));
    let overdue = home.overdue_households.first().expect("the demo street has overdue must-visits");
    assert_has(&html, &overdue.head);
    assert_has(&html, &format!("/households/{}", overdue.household));
    if let Some(case) = home.overdue_cases.first() {
        assert_has(&html, &format!("/cases/{}", case.id));
    }
    // Nothing a supervisor may not do: no visit button, no edit link.
    assert_lacks(&html, "/visit\"");
    assert_lacks(&html, "/edit\"");
    assert_lacks(&html, r#"class="visit-btn""#);
    // The home tab is the supervisor's desk.
    assert_has(&html, "首页");
}

#[test]
fn the_supervisor_home_speaks_english() {
    let (_dir, client) = demo(Role::Supervisor);
    let home = home(&client);
    let html = render(&client, "/", Lang::En);
    assert_has(&html, "Must-visit coverage");
    assert_markup(&html, &stat(&home.dashboard.coverage.total.households_tagged.to_string(), "Households listed"));
    let cases = &home.dashboard.cases.total.all;
    assert_markup(&html, &stat(&format!("{:.1}%", cases.completion_rate * 100.0), "Completion rate"));
    assert_has(&html, "Waiting to verify and close");
    assert_has(&html, "Overdue must-visit households");
    assert_lacks(&html, "督导工作台");
    assert_lacks(&html, "/visit\"");
}

#[test]
fn a_resolved_case_offers_the_supervisor_verify_and_close_then_reopen() {
    let (_dir, client) = demo(Role::Supervisor);
    let case = home(&client).to_verify[0].clone();
    let html = render(&client, &format!("/cases/{}", case.id), Lang::Zh);
    assert_has(&html, &case.title);
    assert_has(&html, "核实办结");
    assert_markup(&html, r#"id="act-close""#);
    assert_markup(&html, r#"id="act-reopen""#);
    // 核实办结 is the main button and comes before the field actions.
    let close = html.find(r#"id="act-close""#).unwrap();
    let comment = html.find(r#"id="act-comment""#).unwrap();
    assert!(close < comment, "close should come before comment");

    // Closing with the resident's satisfaction takes it off the list waiting for verification.
    actions::act_on_case(&client, case.id, ActionKind::Close, "电话回访，居民满意", Some(5), None, NOW).unwrap();
    let after = home(&client);
    assert!(after.to_verify.iter().all(|c| c.id != case.id));
    let html = render(&client, &format!("/cases/{}", case.id), Lang::Zh);
    assert_has(&html, "★★★★★");
    assert_markup(&html, r#"id="act-reopen""#);
    assert_lacks(&html, r#"id="act-close""#);
    let detail = client.case(case.id, NOW).unwrap();
    assert_eq!(detail.row.status, CaseStatus::Closed);
}

#[test]
fn the_supervisor_case_list_opens_on_the_cases_to_verify() {
    let (_dir, client) = demo(Role::Supervisor);
    let home = home(&client);
    let html = render(&client, "/cases", Lang::Zh);
    assert_has(&html, "待核实");
    for case in home.to_verify.iter().take(5) {
        assert_has(&html, &case.title);
    }
    // Only resolved cases are on it: an overdue (open) case is not.
    if let Some(open) = home.overdue_cases.iter().find(|c| home.to_verify.iter().all(|v| v.title != c.title)) {
        assert_lacks(&html, &format!("/cases/{}", open.id));
    }
}

#[test]
fn a_grid_worker_still_gets_today() {
    let (_dir, client) = demo(Role::GridWorker);
    let html = render(&client, "/", Lang::Zh);
    assert_has(&html, "今日工作");
    assert_has(&html, "今日");
    assert_lacks(&html, "督导工作台");
    assert_lacks(&html, "待核实办结");
    let cases = render(&client, "/cases", Lang::Zh);
    assert_has(&cases, "我的");
    assert_lacks(&cases, "待核实");
}
