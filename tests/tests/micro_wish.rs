//! End to end: a micro-wish posted and claimed (认领) for a party member on a grid worker's phone
//! reaches the real gridlink-server on 127.0.0.1 at the next sync; the supervisors' console
//! then shows it 已认领 with the claimant in its timeline, and the dashboard's 微心愿 card counts
//! one more wish posted and claimed. A referral (转介) of a help request shows there too.

use std::process::{Command, Stdio};

use gridlink_client::{HouseholdFilter, NewCase};
use gridlink_shared::time::now_millis;
use gridlink_shared::{CaseKind, ClaimantId, ServiceCategory};
use gridlink_tests::{Server, enrolled, sync_until_ok};

type TestResult = anyhow::Result<()>;

const PASSWORD: &str = "wish-test-password-2026";

/// Sets a console password with the real CLI, the way an admin does (password on stdin).
fn set_password(server: &Server, user: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = Command::new(gridlink_tests::server_binary())
        .args(["user", "password"])
        .args(server.store_args())
        .args(["--user", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    writeln!(child.stdin.take().expect("stdin"), "{PASSWORD}")?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// Signs in to the console over plain HTTP (the login form's CSRF token and cookie).
async fn console(server: &Server, user: &str) -> anyhow::Result<reqwest::Client> {
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    let form = http.get(format!("{}/console/login", server.url())).send().await?.text().await?;
    let marker = r#"name="csrf" value=""#;
    let start = form.find(marker).map(|i| i + marker.len()).ok_or_else(|| anyhow::anyhow!("no CSRF field"))?;
    let token = &form[start..start + form[start..].find('"').unwrap_or(0)];
    let response = http
        .post(format!("{}/console/login", server.url()))
        .form(&[("csrf", token), ("login", user), ("password", PASSWORD), ("next", "/console")])
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "login: {}", response.status());
    Ok(http)
}

async fn page(http: &reqwest::Client, server: &Server, path: &str) -> anyhow::Result<String> {
    let response = http.get(format!("{}{path}", server.url())).send().await?;
    anyhow::ensure!(response.status().is_success(), "{path}: {}", response.status());
    Ok(response.text().await?)
}

/// A count of the dashboard's 微心愿 card, in the total row.
fn wish_count(dashboard: &str, figure: &str) -> usize {
    let marker = format!(r#"data-figure="wishes.{figure}" data-group="total">"#);
    let start = dashboard.find(&marker).unwrap_or_else(|| panic!("no {marker} on the dashboard")) + marker.len();
    dashboard[start..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_made_on_a_phone_reaches_the_console_timeline_and_figures() -> TestResult {
    let server = Server::start_with_demo("small")?;
    let (worker, _) = server.user_with_role("grid-worker", 0)?;
    let (supervisor, _) = server.user_with_role("supervisor", 0)?;
    set_password(&server, &supervisor)?;
    let http = console(&server, &supervisor).await?;
    let before = page(&http, &server, "/console").await?;
    let (posted, claimed) = (wish_count(&before, "posted"), wish_count(&before, "claimed"));

    let dir = tempfile::tempdir()?;
    let phone = enrolled(&server, &server.url(), dir.path(), &worker, "phone-wish").await?;
    let now = now_millis();
    let household = phone.households(&HouseholdFilter::default(), now)?[0].id;
    let new_case = |kind, title: &str| NewCase {
        kind,
        household: Some(household),
        building: None,
        title: title.into(),
        note: String::new(),
        at: now,
    };
    let wish = phone.open_case(new_case(CaseKind::MicroWish, "微心愿：一台助听器"), now)?;
    let member = phone.party_directory()?.branches[0].members[0].0.clone();
    phone.claim_wish(wish, ClaimantId::PartyMember(member.id), "周末送到家", now + 1)?;
    let help = phone.open_case(new_case(CaseKind::Help(ServiceCategory::ApplianceRepair), "空调不制冷"), now)?;
    let outlet = phone
        .services()?
        .into_iter()
        .find(|g| g.category == ServiceCategory::ApplianceRepair)
        .expect("appliance repair outlets on the phone")
        .outlets[0]
        .clone();
    phone.refer_to_outlet(help, outlet.id, "", now + 2)?;
    sync_until_ok(&phone, "the phone pushes the wish, its claim and the referral").await?;
    assert_eq!(phone.status()?.unsent, 0, "the server accepted every change");
    assert!(phone.rejected_changes()?.is_empty(), "{:?}", phone.rejected_changes()?);

    let case_page = page(&http, &server, &format!("/console/cases/{wish}")).await?;
    assert!(case_page.contains(r#"data-kind="claim""#), "the claim is in the console timeline");
    assert!(case_page.contains(&format!("认领人 {}", member.name)), "the claimant is named:\n{case_page}");
    assert!(case_page.contains(r#"data-status="accepted">已认领"#), "the wish is 已认领:\n{case_page}");
    let help_page = page(&http, &server, &format!("/console/cases/{help}")).await?;
    assert!(help_page.contains(&format!("转介至 {}", outlet.name)), "the referral names the outlet:\n{help_page}");

    let after = page(&http, &server, "/console").await?;
    assert_eq!(wish_count(&after, "posted"), posted + 1);
    assert_eq!(wish_count(&after, "claimed"), claimed + 1);
    Ok(())
}
