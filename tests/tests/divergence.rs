//! Divergence between a phone and the server, end to end with the real binaries: a real
//! `gridlink-server` and the `gridlink` CLI over HTTP. A document on the device loses a change
//! (the client's test-only hook), then the server loses one (its `docs` row put back to an
//! older state and the change's row deleted, as a restored backup or a lost write would leave
//! it, and a `doc_scopes` row deleted). `gridlink verify` and the sync report show each
//! divergence, the next sync repairs it, and every visit recorded is on the server and on the
//! device afterwards.

use gridlink_shared::automerge::AutoCommit;
use gridlink_shared::{DocId, doc};
use gridlink_tests::{Backend, CliRun, Server, cli};

/// The visit notes of a household as the device shows them.
fn notes_of(data: &std::path::Path, household: &str) -> Vec<String> {
    let shown = cli(data, &["household", "show", "--id", household, "--json"]);
    assert!(shown.success, "{shown:?}");
    shown.json()["visits"].as_array().unwrap().iter().map(|v| v["notes"].as_str().unwrap().to_string()).collect()
}

fn household_ids(data: &std::path::Path) -> Vec<String> {
    let list = cli(data, &["households", "--json"]).json();
    list.as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap().to_string()).collect()
}

/// `verify --json`: every scope's state.
fn states(run: &CliRun) -> Vec<String> {
    run.json().as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap().to_string()).collect()
}

fn sync_json(data: &std::path::Path) -> serde_json::Value {
    let run = cli(data, &["sync", "--json"]);
    assert!(run.success, "{run:?}");
    run.json()
}

fn enrol(server: &Server, user: &str, data: &std::path::Path, name: &str) {
    let code = server.code_for(user).unwrap();
    let run = cli(data, &["enroll", "--server", &server.url(), "--code", &code, "--name", name]);
    assert!(run.success, "{run:?}");
    let run = cli(data, &["sync"]);
    assert!(run.success, "{run:?}");
}

#[test]
fn a_change_lost_on_the_device_and_one_lost_on_the_server_are_found_and_repaired_with_nothing_lost() {
    let mut server = Server::start_on(Backend::Sqlite, "small", &[]).unwrap();
    let (worker, grid) = server.user_with_role("grid-worker", 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    enrol(&server, &worker, data, "divergence-phone");

    // After the first sync every held scope was compared and matches.
    let verified = cli(data, &["verify", "--json"]);
    assert!(verified.success, "{verified:?}");
    assert_eq!(states(&verified), vec!["match"], "{}", verified.stdout);
    assert_eq!(verified.json()[0]["scope"], grid.as_str());
    assert!(verified.json()[0]["local_documents"].as_u64().unwrap() > 100);
    assert_eq!(verified.json()[0]["local_digest"], verified.json()[0]["server_digest"]);

    let households = household_ids(data);
    let (first, second, third) = (&households[0], &households[1], &households[2]);

    // ----- the device loses a change -----
    let lost_here = "设备丢失的走访：老人血压偏高";
    assert!(cli(data, &["visit", "add", "--household", first, "--outcome", "met", "--note", lost_here]).success);
    assert_eq!(sync_json(data)["accepted"], 1);
    {
        let client = gridlink_client::Client::open(data).unwrap();
        let id: DocId = first.parse().unwrap();
        gridlink_client::sync::test_only_drop_last_change_of_stored_document(&client, id).unwrap();
    }
    assert!(!notes_of(data, first).contains(&lost_here.to_string()), "the hook dropped the visit here");
    let found = cli(data, &["verify", "--json"]);
    assert!(!found.success, "verify exits non-zero on a mismatch: {found:?}");
    assert_eq!(states(&found), vec!["mismatch"], "found offline, before any sync: {}", found.stdout);
    assert!(found.stderr.contains("differ"), "{}", found.stderr);

    let report = sync_json(data);
    assert_eq!(report["diverged"], serde_json::json!([grid]), "{report}");
    assert_eq!(report["reconciled"], 1, "only the differing document comes back: {report}");
    assert_eq!(report["requeued"], 0, "the server had the visit: {report}");
    assert!(notes_of(data, first).contains(&lost_here.to_string()), "the server's copy brought it back");
    let verified = cli(data, &["verify", "--json"]);
    assert!(verified.success && states(&verified) == ["match"], "{verified:?}");

    // ----- the server loses a change (and a delivery row) -----
    let lost_there = "服务器丢失的走访：独居老人，需每周回访";
    assert!(cli(data, &["visit", "add", "--household", second, "--outcome", "met", "--note", lost_there]).success);
    assert_eq!(sync_json(data)["accepted"], 1);
    server.kill();
    {
        let db = rusqlite::Connection::open(server.data.path().join("server.db")).unwrap();
        let bytes: Vec<u8> = db.query_row("SELECT bytes FROM docs WHERE id = ?1", [second], |r| r.get(0)).unwrap();
        let mut stored = doc::load(&bytes).unwrap();
        let mut changes = stored.get_changes(&[]);
        let visit = changes.pop().unwrap();
        let mut older = AutoCommit::new();
        older.apply_changes(changes).unwrap();
        db.execute("UPDATE docs SET bytes = ?1 WHERE id = ?2", rusqlite::params![older.save(), second]).unwrap();
        let gone = db.execute("DELETE FROM changes WHERE hash = ?1", [visit.hash().to_string()]).unwrap();
        assert_eq!(gone, 1, "the visit's own row goes too, as if never written");
        let gone = db
            .execute("DELETE FROM doc_scopes WHERE doc_id = ?1 AND scope = ?2", rusqlite::params![third, grid])
            .unwrap();
        assert_eq!(gone, 1);
    }
    // The server's index (delivery scopes, digests) is derived from its documents again.
    let checked: serde_json::Value =
        serde_json::from_str(&server.admin(&["check", "--repair", "--json"]).unwrap()).unwrap();
    let mismatched: Vec<&str> =
        checked["index_mismatches"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    assert_eq!(mismatched.len(), 2, "{checked}");
    assert!(mismatched.contains(&second.as_str()) && mismatched.contains(&third.as_str()), "{checked}");
    assert_eq!(checked["index_rebuilt"], true);
    let again: serde_json::Value = serde_json::from_str(&server.admin(&["check", "--json"]).unwrap()).unwrap();
    assert_eq!(again["index_mismatches"], serde_json::json!([]), "{again}");
    server.restart().unwrap();

    let report = sync_json(data);
    assert_eq!(report["diverged"], serde_json::json!([grid]), "{report}");
    assert_eq!(report["requeued"], 1, "the device sends its visit again: {report}");
    assert_eq!(report["accepted"], 1, "and the server takes it in the same sync: {report}");
    assert_eq!(report["reconciled"], 1, "{report}");
    let verified = cli(data, &["verify", "--json"]);
    assert!(verified.success && states(&verified) == ["match"], "{verified:?}");
    let text = cli(data, &["sync"]);
    assert!(text.success && !text.stdout.contains("diverged"), "nothing left to repair: {text:?}");
    for (household, note) in [(first, lost_here), (second, lost_there)] {
        assert!(notes_of(data, household).contains(&note.to_string()), "{note} kept on the device");
    }

    // A fresh phone gets every visit from the server, and the document whose delivery row was
    // lost.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = fresh_dir.path();
    enrol(&server, &worker, fresh, "fresh-phone");
    assert!(household_ids(fresh).contains(third), "delivered again after check --repair");
    assert_eq!(household_ids(fresh), household_ids(data));
    for (household, note) in [(first, lost_here), (second, lost_there)] {
        assert!(notes_of(fresh, household).contains(&note.to_string()), "{note} on the server");
    }
    let verified = cli(fresh, &["verify", "--json"]);
    assert!(verified.success && states(&verified) == ["match"], "{verified:?}");
}

mod server_side {
    //! The server's half in process, on the real store: digests only with complete pages,
    //! verify answers that send only what differs, the bounds and scope checks applied before
    //! any work, and the index backfilled at open for documents stored without it.

    use std::collections::{BTreeMap, BTreeSet};

    use gridlink_shared::demo::{self, DemoSize};
    use gridlink_shared::digest::{DocEntry, ScopeDigest, saved_heads};
    use gridlink_shared::protocol::{
        self, Cursor, EnrollRequest, Integrity, MAX_VERIFY_DOCS, MAX_VERIFY_SCOPES, PROTOCOL_VERSION, PullItem,
        SyncRequest, SyncResponse, VerifyDoc, VerifyScope,
    };
    use gridlink_shared::time::now_millis;
    use gridlink_shared::{DeviceId, DocId, Role, Scope};
    use gridlink_sync_server::{PushLimits, SqliteStore, Store};

    fn request(cursors: &BTreeMap<Scope, Cursor>, page_bytes: Option<u64>, verify: Vec<VerifyScope>) -> SyncRequest {
        SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursors: cursors.clone(),
            changes: vec![],
            page_bytes,
            repair: vec![],
            reference_version: None,
            device_time: now_millis(),
            health: None,
            verify,
            compact_acks: false,
        }
    }

    fn sync(store: &SqliteStore, device: DeviceId, request: &SyncRequest) -> SyncResponse {
        store.sync(device, request, &PushLimits::default(), now_millis()).unwrap()
    }

    fn entry_of(doc: DocId, bytes: &[u8]) -> DocEntry {
        DocEntry::of(doc, &saved_heads(bytes).unwrap())
    }

    #[test]
    fn digests_come_with_complete_pages_and_verify_answers_only_what_differs_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let now = now_millis();
        let data = demo::generate(DemoSize::Small, 7, now);
        let store = SqliteStore::create(dir.path()).unwrap();
        store.load_data(&data, now).unwrap();
        let mut workers = data.staff_with_role(Role::GridWorker);
        let worker = workers.next().unwrap().clone();
        let stranger = workers.find(|s| s.scopes != worker.scopes).unwrap().scopes[0];
        let grid = worker.scopes[0];
        let code = store.new_code(worker.id, now, 24).unwrap();
        let enrolled = store.enroll(&EnrollRequest { code, device_name: "验证手机".into() }, now).unwrap();
        let device = store.authenticate(&enrolled.token).unwrap().device;

        // Small pages: only the page that reaches the head of the log carries the digest.
        let mut cursors = BTreeMap::from([(grid, Cursor::Start)]);
        let mut held: BTreeMap<DocId, Vec<u8>> = BTreeMap::new();
        let mut pages = 0;
        let digest = loop {
            let page = sync(&store, device, &request(&cursors, Some(8 * 1024), vec![]));
            pages += 1;
            for item in &page.items {
                if let PullItem::Snapshot { doc, bytes, .. } = item {
                    held.insert(*doc, bytes.clone());
                }
            }
            cursors = page.cursors.clone();
            if page.more {
                assert!(page.integrity.digests.is_empty(), "page {pages} is not complete: no digest");
            } else {
                break page.integrity.digests[&grid];
            }
        };
        assert!(pages > 2, "the scope took several pages");
        // What the digest costs on the wire: one scope's digest in the CBOR response.
        let with = SyncResponse {
            integrity: Integrity { digests: BTreeMap::from([(grid, digest)]), verified: vec![] },
            ..sync(&store, device, &request(&cursors, None, vec![]))
        };
        let without = SyncResponse { integrity: Integrity::default(), ..with.clone() };
        let digest_bytes = protocol::encode(&with).len() - protocol::encode(&without).len();
        eprintln!("one scope's digest: {digest_bytes} bytes of CBOR per response");
        assert!(digest_bytes < 128, "{digest_bytes}");
        let entries: Vec<DocEntry> = held.iter().map(|(doc, bytes)| entry_of(*doc, bytes)).collect();
        assert_eq!(digest, ScopeDigest::of(&entries), "the device's own digest of what it received");
        assert_eq!(digest.count, held.len() as u64);

        // A verify list with one entry wrong, one document left out, one the server never had,
        // a duplicate, and a scope this worker does not hold.
        let ids: Vec<DocId> = held.keys().copied().collect();
        let (altered, missing, unknown) = (ids[0], ids[1], DocId::from_u128(42));
        let mut listed: Vec<VerifyDoc> = entries
            .iter()
            .zip(&ids)
            .filter(|(_, id)| **id != missing)
            .map(|(entry, id)| VerifyDoc { doc: *id, entry: if *id == altered { DocEntry([0; 32]) } else { *entry } })
            .collect();
        listed.push(VerifyDoc { doc: unknown, entry: DocEntry([1; 32]) });
        listed.push(listed[3]);
        let foreign = VerifyScope { scope: stranger, docs: vec![VerifyDoc { doc: ids[5], entry: DocEntry([2; 32]) }] };
        let verify = vec![VerifyScope { scope: grid, docs: listed.clone() }, foreign];
        let verify_bytes = protocol::encode(&verify[0]).len();
        eprintln!("verify list of {} documents: {verify_bytes} bytes of CBOR", listed.len());
        let answered = sync(&store, device, &request(&cursors, None, verify));
        assert_eq!(answered.integrity.verified.len(), 1, "a scope not held is not answered");
        let answer = &answered.integrity.verified[0];
        assert_eq!(answer.scope, grid);
        assert!(answer.complete);
        assert_eq!(answer.differing.iter().copied().collect::<BTreeSet<_>>(), BTreeSet::from([altered, missing]));
        assert_eq!(answer.absent, vec![unknown]);
        let repaired: BTreeSet<DocId> = answered.repairs.iter().map(|r| r.doc).collect();
        assert_eq!(repaired, BTreeSet::from([altered, missing]), "only what differs comes back");
        assert_eq!(answered.integrity.digests[&grid], digest, "nothing changed on the server");

        // Bounds, before any work: too many documents, or too many scopes, get no answer.
        let flood = VerifyScope { scope: grid, docs: vec![listed[0]; MAX_VERIFY_DOCS + 1] };
        let refused = sync(&store, device, &request(&cursors, None, vec![flood]));
        assert!(refused.integrity.verified.is_empty() && refused.repairs.is_empty());
        let many = vec![VerifyScope { scope: grid, docs: vec![listed[0]] }; MAX_VERIFY_SCOPES + 1];
        let refused = sync(&store, device, &request(&cursors, None, many));
        assert!(refused.integrity.verified.is_empty() && refused.repairs.is_empty());

        // Every entry wrong and a one-byte page: one copy goes, the answer says verify again.
        let all_wrong: Vec<VerifyDoc> = ids.iter().map(|id| VerifyDoc { doc: *id, entry: DocEntry([3; 32]) }).collect();
        let partial =
            sync(&store, device, &request(&cursors, Some(1), vec![VerifyScope { scope: grid, docs: all_wrong }]));
        assert_eq!(partial.repairs.len(), 1);
        assert!(!partial.integrity.verified[0].complete);

        // A store from before digests: entries and scope digests are computed at open.
        drop(store);
        {
            let db = rusqlite::Connection::open(dir.path().join("server.db")).unwrap();
            db.execute_batch("UPDATE docs SET digest_entry = NULL, digest_scopes = NULL; DELETE FROM scope_digests;")
                .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let again = sync(&store, device, &request(&cursors, None, vec![]));
        assert_eq!(again.integrity.digests[&grid], digest, "backfilled at open");
    }
}
