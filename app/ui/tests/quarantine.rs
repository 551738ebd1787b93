//! A household whose pulled data automerge panics on is set aside, and the app says so in
//! plain words: the sync bar (Chinese and English), the household screen (still showing its
//! previous content), and a refused visit. The pages are applied through the core's own
//! apply path (`gridlink_client::sync::apply_page`) to a real encrypted store; the poison is a
//! real change re-sent with only its `seq` changed (duplicate op ids).

mod common;

use common::{NOW, render};

use std::collections::BTreeMap;

use gridlink_client::{Error, fixtures, sync::apply_page};
use gridlink_shared::automerge::{self, AutoCommit, Change};
use gridlink_shared::protocol::{Cursor, DocSnapshot, PROTOCOL_VERSION, PullItem, SyncResponse};
use gridlink_shared::{DocType, HouseholdFile, HouseholdId, Lang, Role, Scope, doc};
use gridlink_ui::views::actions::{self, VisitForm};

fn page(scope: Scope, items: Vec<PullItem>, seq: u64) -> SyncResponse {
    SyncResponse {
        protocol: PROTOCOL_VERSION,
        server_time: NOW,
        acks: vec![],
        items,
        cursors: BTreeMap::from([(scope, Cursor::Seq { seq })]),
        more: false,
        scopes_added: vec![scope],
        scopes_removed: vec![],
        repairs: vec![],
        reference: None,
        integrity: Default::default(),
        compact_acks: None,
    }
}

#[test]
fn a_damaged_household_is_set_aside_and_the_app_says_so_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let (client, data) = fixtures::demo_client(dir.path(), Role::GridWorker, NOW).unwrap();
    let scope = data.staff_with_role(Role::GridWorker).next().unwrap().principal().scopes[0];
    let Scope::Grid(grid) = scope else { panic!("a grid worker's first scope is a grid") };

    // A household new to this phone arrives from the server, then its last change comes
    // again under another seq.
    let mut household: HouseholdFile = data.households.iter().find(|h| h.placement.grid == grid).unwrap().clone();
    household.id = HouseholdId::new();
    household.room = "909".into();
    household.head = "隔离测试户".into();
    let mut server: AutoCommit = doc::create(&household, automerge::ActorId::random(), NOW).unwrap();
    let mut encoded = server.get_last_local_change().unwrap().decode();
    encoded.seq += 1;
    let poison = Change::from(encoded);
    let snapshot =
        PullItem::Snapshot { scope, doc: household.id.into(), doc_type: DocType::Household, bytes: server.save() };
    apply_page(&client, &page(scope, vec![snapshot], 1)).unwrap();
    let poisoned = PullItem::Change {
        scope,
        seq: 2,
        doc: household.id.into(),
        doc_type: DocType::Household,
        bytes: poison.raw_bytes().to_vec(),
    };
    let report = apply_page(&client, &page(scope, vec![poisoned], 2)).expect("no panic escapes");
    assert_eq!(report.quarantined, 1);
    assert_eq!(client.status().unwrap().quarantined, 1);

    // The bar says it, in both languages.
    let html = render(&client, "/", Lang::Zh);
    assert!(html.contains("有 1 条记录数据异常，已隔离，正在向服务器请求修复"), "{html}");
    let html = render(&client, "/", Lang::En);
    assert!(html.contains("1 record is damaged; set aside and asking the server for a repair"), "{html}");

    // The household screen still shows what the phone had; a visit is refused in plain words.
    let html = render(&client, &format!("/households/{}", household.id), Lang::Zh);
    assert!(html.contains("隔离测试户"), "{html}");
    let refused = actions::record_visit(&client, household.id, &VisitForm::default(), NOW).unwrap_err();
    assert!(matches!(refused, Error::Quarantined { .. }), "{refused:?}");
    assert!(refused.plain().zh.contains("数据异常，已隔离"), "{}", refused.plain().zh);

    // A clean repair: the bar is quiet again and the visit goes in.
    let mut repaired = page(scope, vec![], 2);
    repaired.repairs.push(DocSnapshot { doc: household.id.into(), doc_type: DocType::Household, bytes: server.save() });
    let report = apply_page(&client, &repaired).unwrap();
    assert_eq!((report.released, report.quarantined), (1, 0));
    let html = render(&client, "/", Lang::Zh);
    assert!(!html.contains("数据异常"), "{html}");
    actions::record_visit(&client, household.id, &VisitForm::default(), NOW).unwrap();
}
