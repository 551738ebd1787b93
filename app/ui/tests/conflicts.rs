//! The review queue of concurrent edits (待确认的修改), rendered with `VirtualDom` +
//! `dioxus_ssr` over a real encrypted store holding a household file two devices edited
//! offline: the file shows both values with who and when and a 采用此值 button each; the
//! worker's today screen and the supervisor's home list the household; after a pick nothing
//! is left to confirm.

mod common;

use common::{NOW, render};

use gridlink_client::{Client, HouseholdEdit, fixtures, store};
use gridlink_shared::automerge::ActorId;
use gridlink_shared::policy::PolicyConfig;
use gridlink_shared::{HouseholdFile, HouseholdId, Lang, Role, doc};

/// A demo store for `role` whose first household's phone was set to 13900000001 on this
/// device (for a worker) or on a colleague's (for a supervisor), and to 13900000002 on another
/// device from the same file, merged as a pull would.
fn conflicted(role: Role) -> (tempfile::TempDir, Client, HouseholdId) {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = fixtures::demo_client(dir.path(), role, NOW).unwrap();
    let id = client.households(&Default::default(), NOW).unwrap()[0].id;
    let key = gridlink_client::keys::resolve_key(dir.path()).unwrap();
    let raw = || store::open_encrypted(&dir.path().join(store::DB_FILE), &key).unwrap();
    let base = store::load_doc(&raw(), id.into()).unwrap().unwrap().save();
    let mut edits = vec![("13900000002", 0x5a_u8, NOW - 60_000)];
    if role == Role::GridWorker {
        let edit = HouseholdEdit { phone: Some("13900000001".into()), ..Default::default() };
        client.edit_household(id, edit, NOW - 120_000).unwrap();
    } else {
        edits.push(("13900000001", 0x6b, NOW - 120_000));
    }
    drop(client);
    for (phone, actor, at) in edits {
        let mut other = doc::load(&base).unwrap().with_actor(ActorId::from(vec![actor; 16]));
        let mut file: HouseholdFile = doc::read(&other).unwrap();
        file.phone = phone.to_string();
        doc::update(&mut other, &file, "edit household", at).unwrap();
        let mut conn = raw();
        let tx = conn.transaction().unwrap();
        let mut held = store::load_doc(&tx, id.into()).unwrap().unwrap();
        held.merge(&mut other).unwrap();
        store::save_doc(&tx, id.into(), &mut held, &PolicyConfig::default()).unwrap();
        tx.commit().unwrap();
    }
    let client = Client::open(dir.path()).unwrap();
    (dir, client, id)
}

#[test]
fn the_household_file_shows_both_values_who_and_when_with_a_button_each_in_chinese() {
    let (_dir, client, id) = conflicted(Role::GridWorker);
    let html = render(&client, &format!("/households/{id}"), Lang::Zh);
    assert!(html.contains("待确认的修改"), "{html}");
    assert!(html.contains("户主电话"));
    assert!(html.contains("13900000001") && html.contains("13900000002"));
    assert!(html.contains("（本机）"), "this device's value names its user");
    assert!(html.contains("另一台设备（5a5a5a5a）"));
    assert!(html.contains("修改于 "));
    assert!(html.contains("当前显示"));
    assert_eq!(html.matches("采用此值").count(), 2);

    let english = render(&client, &format!("/households/{id}"), Lang::En);
    assert!(english.contains("Edits to confirm") && english.contains("Household phone"));
    assert_eq!(english.matches("Use this value").count(), 2);

    // The worker's today screen lists the household.
    let today = render(&client, "/", Lang::Zh);
    assert!(today.contains("conflict-households") && today.contains("1项待确认"), "{today}");

    // After a pick there is nothing left to confirm anywhere.
    let fields = client.household_conflicts(id, Lang::Zh).unwrap();
    let chosen = fields[0].values.iter().find(|v| !v.by_this_device).unwrap();
    client.resolve_conflict(id, &fields[0].path, &chosen.value, NOW).unwrap();
    assert!(!render(&client, &format!("/households/{id}"), Lang::Zh).contains("待确认的修改"));
    assert!(!render(&client, "/", Lang::Zh).contains("conflict-households"));
}

#[test]
fn a_supervisor_sees_the_household_on_the_home_and_may_pick_on_the_read_only_file() {
    let (_dir, client, id) = conflicted(Role::Supervisor);
    let home = render(&client, "/", Lang::Zh);
    assert!(home.contains("conflict-households") && home.contains("1项待确认"), "{home}");
    assert!(home.contains(&format!("/households/{id}")));
    let file = render(&client, &format!("/households/{id}"), Lang::Zh);
    assert!(file.contains("督导查看：此档案只读"), "the rest of the file stays read-only");
    assert_eq!(file.matches("采用此值").count(), 2, "{file}");
    assert!(!file.contains("（本机）"));
}
