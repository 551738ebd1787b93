//! End to end: two phones of a grid change the same household's phone number offline; after
//! both sync through the real gridlink-server on 127.0.0.1 the file holds both values, and the
//! review queue (待确认的修改) shows them on both phones and on the street supervisor's phone.
//! The supervisor picks one (a change the server accepts from a supervisor only because it
//! picks); after the next syncs no conflict is left anywhere and every phone shows the pick.

use gridlink_client::HouseholdEdit;
use gridlink_shared::Lang;
use gridlink_shared::time::now_millis;
use gridlink_tests::{Server, enrolled, export, sync_until_ok};

type TestResult = anyhow::Result<()>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_offline_edits_of_one_phone_show_everywhere_until_the_supervisor_picks_one() -> TestResult {
    let server = Server::start_demo()?;
    let (worker, grid_scope) = server.user_with_role("grid-worker", 0)?;
    let (second, _) = server.add_user("潘雪梅", "grid-worker", &grid_scope)?;
    let street_supervisor = server
        .users()?
        .into_iter()
        .find(|u| u["role"] == "supervisor" && u["scopes"][0].as_str().is_some_and(|s| s.starts_with("street")))
        .and_then(|u| u["id"].as_str().map(str::to_string))
        .expect("the demo street's supervisor");
    let dirs = (tempfile::tempdir()?, tempfile::tempdir()?, tempfile::tempdir()?);
    let a = enrolled(&server, &server.url(), dirs.0.path(), &worker, "phone-a").await?;
    let b = enrolled(&server, &server.url(), dirs.1.path(), &second, "phone-b").await?;
    let s = enrolled(&server, &server.url(), dirs.2.path(), &street_supervisor, "supervisor-phone").await?;

    let now = now_millis();
    let id = a.households(&Default::default(), now)?.iter().find(|h| !h.moved_out).expect("a household").id;
    // Both phones offline: each changes the household's phone number.
    a.edit_household(id, HouseholdEdit { phone: Some("13900000001".into()), ..Default::default() }, now)?;
    b.edit_household(id, HouseholdEdit { phone: Some("13900000002".into()), ..Default::default() }, now + 1_000)?;
    for (phone, what) in [(&a, "phone A pushes"), (&b, "phone B pushes and pulls A's"), (&a, "phone A pulls B's")] {
        sync_until_ok(phone, what).await?;
        assert!(phone.rejected_changes()?.is_empty(), "{what}: nothing refused");
    }
    sync_until_ok(&s, "the supervisor's phone pulls").await?;

    for (phone, who) in [(&a, "phone A"), (&b, "phone B"), (&s, "the supervisor")] {
        let listed = phone.conflicts_in_scope()?;
        assert_eq!(listed.iter().map(|h| (h.household, h.fields)).collect::<Vec<_>>(), vec![(id, 1)], "{who}");
        let fields = phone.household_conflicts(id, Lang::Zh)?;
        assert_eq!(fields.len(), 1, "{who}");
        assert_eq!(fields[0].field, "户主电话");
        let mut shown: Vec<&str> = fields[0].values.iter().map(|v| v.shown.as_str()).collect();
        shown.sort();
        assert_eq!(shown, vec!["13900000001", "13900000002"], "{who}");
        assert!(fields[0].values.iter().all(|v| v.at.is_some()), "{who}: every value has its time");
    }
    let on_a = a.household_conflicts(id, Lang::Zh)?;
    let mine = on_a[0].values.iter().find(|v| v.by_this_device).expect("phone A knows its own value");
    assert_eq!(mine.shown, "13900000001");
    let on_s = s.household_conflicts(id, Lang::Zh)?;
    assert!(on_s[0].values.iter().all(|v| !v.by_this_device));

    // The supervisor picks phone A's number; the server accepts the pick.
    let pick = on_s[0].values.iter().find(|v| v.shown == "13900000001").unwrap();
    s.resolve_conflict(id, &on_s[0].path, &pick.value, now_millis())?;
    assert!(s.conflicts_in_scope()?.is_empty());
    sync_until_ok(&s, "the supervisor pushes the pick").await?;
    assert!(s.rejected_changes()?.is_empty(), "the server took the supervisor's pick");
    assert_eq!(s.status()?.unsent, 0);
    // Any other edit of a household file by a supervisor stays refused on the phone.
    let edit = HouseholdEdit { phone: Some("13900000003".into()), ..Default::default() };
    assert!(s.edit_household(id, edit, now_millis()).is_err());

    for (phone, what) in [(&a, "phone A pulls the pick"), (&b, "phone B pulls the pick")] {
        sync_until_ok(phone, what).await?;
    }
    for (phone, who) in [(&a, "phone A"), (&b, "phone B"), (&s, "the supervisor")] {
        assert!(phone.conflicts_in_scope()?.is_empty(), "{who}");
        assert!(phone.household_conflicts(id, Lang::Zh)?.is_empty(), "{who}");
        assert_eq!(phone.household(id, now_millis())?.phone, "13900000001", "{who}");
    }
    assert_eq!(export(&a), export(&b), "both workers' phones hold the same file");
    Ok(())
}
