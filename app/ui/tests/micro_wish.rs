//! A micro-wish and a help request on the phone, rendered with `VirtualDom` + `dioxus_ssr` over
//! a real encrypted store with the demo grid: the wish offers 认领 with the grid's party
//! members and volunteers to choose from, then 已实现, then 致谢, its status in wish words and
//! the claimant in the timeline; a help request offers 转介 with the outlets, and the
//! referral shows in the timeline; the supervisor's home counts the wishes.

mod common;

use common::{NOW, demo, render};

use gridlink_client::{Client, HouseholdFilter};
use gridlink_shared::{ActionKind, CaseId, CaseKind, ClaimantId, Lang, Role, ServiceCategory};
use gridlink_ui::views::actions::{self, CaseForm};

fn assert_has(html: &str, needle: &str) {
    assert!(html.contains(needle), "expected {needle:?} in the rendered screen:\n{html}");
}

fn assert_lacks(html: &str, needle: &str) {
    assert!(!html.contains(needle), "did not expect {needle:?} in the rendered screen");
}

fn open(client: &Client, kind: CaseKind, title: &str) -> CaseId {
    let household = client.households(&HouseholdFilter::default(), NOW).unwrap()[0].id;
    let form = CaseForm { kind, household: Some(household), building: None, title: title.into(), note: String::new() };
    actions::open_case(client, &form, NOW - 60_000).unwrap()
}

fn act(client: &Client, case: CaseId, kind: ActionKind) {
    actions::act_on_case(client, case, kind, "", None, None, NOW - 30_000).unwrap();
}

#[test]
fn a_wish_offers_claim_then_fulfil_then_thanks_in_chinese() {
    let (_dir, client) = demo(Role::GridWorker);
    let wish = open(&client, CaseKind::MicroWish, "微心愿：一个新书包");
    let path = format!("/cases/{wish}");
    let html = render(&client, &path, Lang::Zh);
    assert_has(&html, "待认领");
    assert_has(&html, r#"id="act-claim""#);
    assert_has(&html, ">认领</button>");
    assert_lacks(&html, r#"id="act-accept""#);
    assert_lacks(&html, r#"id="act-refer""#);
    // The claimant is chosen from the grid's party members and volunteers.
    let directory = client.party_directory().unwrap();
    let member = &directory.branches[0].members[0].0;
    assert_has(&html, "请选择认领的党员或志愿者");
    assert_has(&html, &format!(r#"value="party-member:{}""#, member.id));
    assert_has(&html, &member.name);
    assert_has(&html, &format!(r#"value="volunteer:{}""#, directory.volunteers[0].id));

    actions::claim_wish(&client, wish, ClaimantId::PartyMember(member.id), "", NOW - 50_000).unwrap();
    let html = render(&client, &path, Lang::Zh);
    assert_has(&html, "已认领");
    assert_has(&html, &format!("认领人：{}", member.name));
    assert_has(&html, r#"id="act-fulfil""#);
    assert_has(&html, ">已实现</button>");
    assert_lacks(&html, r#"id="act-claim""#);

    act(&client, wish, ActionKind::Fulfil);
    act(&client, wish, ActionKind::Thank);
    let html = render(&client, &path, Lang::Zh);
    assert_has(&html, "已致谢");
    assert_has(&html, ">致谢<");
    assert_lacks(&html, r#"id="act-thank""#);

    let html = render(&client, &path, Lang::En);
    assert_has(&html, "Thanked");
    assert_has(&html, &format!("Claimed by {}", member.name));
}

#[test]
fn a_help_request_offers_referral_to_an_outlet_and_shows_it_in_the_timeline() {
    let (_dir, client) = demo(Role::GridWorker);
    let help = open(&client, CaseKind::Help(ServiceCategory::Locksmith), "钥匙锁在屋内");
    let path = format!("/cases/{help}");
    let html = render(&client, &path, Lang::Zh);
    assert_has(&html, r#"id="act-refer""#);
    assert_has(&html, ">转介</button>");
    assert_has(&html, "转介至服务网点");
    let outlet =
        client.services().unwrap().into_iter().find(|g| g.category == ServiceCategory::Locksmith).unwrap().outlets[0]
            .clone();
    assert_has(&html, &format!(r#"value="{}""#, outlet.id));
    actions::refer_to_outlet(&client, help, outlet.id, "", NOW - 30_000).unwrap();
    let html = render(&client, &path, Lang::Zh);
    assert_has(&html, &format!("转介至：{}", outlet.name));
}

#[test]
fn the_supervisor_home_counts_the_wishes() {
    let (_dir, client) = demo(Role::Supervisor);
    let wishes = client.supervisor_home(None, NOW).unwrap().dashboard.cases.total.micro_wishes;
    let html = render(&client, "/", Lang::Zh);
    assert_has(&html, "微心愿");
    for (n, label) in [
        (wishes.posted, "已发布"),
        (wishes.claimed, "已认领"),
        (wishes.fulfilled, "已实现"),
        (wishes.thanked, "已致谢"),
    ] {
        assert_has(&html, &format!(r#"<div class="n">{n}</div><div class="l">{label}</div>"#));
    }
}
