//! A pulled change that declares millions of operations in a few bytes (run-length encoding)
//! is refused by the bounded byte check before automerge parses it: the phone sets that one
//! document aside at once and applies the rest of the page.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gridlink_client::{fixtures, sync::apply_page};
use gridlink_shared::automerge::ActorId;
use gridlink_shared::protocol::{Cursor, PROTOCOL_VERSION, PullItem, SyncResponse};
use gridlink_shared::{DocId, DocType, HouseholdId, Role, Scope};
use sha2::{Digest, Sha256};

const NOW: i64 = fixtures::DEMO_NOW;

fn uleb(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A change chunk whose key, action and value columns each hold one run of `ops` rows.
fn op_bomb(ops: u64) -> Vec<u8> {
    let run = |value: &[u8]| {
        let mut col = Vec::new();
        uleb(&mut col, ops << 1); // a positive signed LEB128 run length (ops < 2^62)
        col.extend_from_slice(value);
        col
    };
    let columns = [((1 << 4) | 5, run(&[1, b'a'])), ((4 << 4) | 2, run(&[1])), ((5 << 4) | 6, run(&[0]))];
    let mut data = Vec::new();
    uleb(&mut data, 0); // no deps
    let actor = ActorId::random();
    uleb(&mut data, actor.to_bytes().len() as u64);
    data.extend_from_slice(actor.to_bytes());
    data.extend_from_slice(&[1, 1]); // seq 1, start op 1
    data.push(0); // time 0
    data.push(0); // no message
    data.push(0); // no other actors
    uleb(&mut data, columns.len() as u64);
    for (spec, bytes) in &columns {
        uleb(&mut data, *spec);
        uleb(&mut data, bytes.len() as u64);
    }
    for (_, bytes) in &columns {
        data.extend_from_slice(bytes);
    }
    let mut prefix = vec![1u8];
    uleb(&mut prefix, data.len() as u64);
    let hash = Sha256::new().chain_update(&prefix).chain_update(&data).finalize();
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83];
    chunk.extend_from_slice(&hash[..4]);
    chunk.extend_from_slice(&prefix);
    chunk.extend_from_slice(&data);
    chunk
}

#[test]
fn a_pulled_op_bomb_is_set_aside_before_automerge_parses_it() {
    let dir = tempfile::tempdir().unwrap();
    let (client, data) = fixtures::demo_client(dir.path(), Role::GridWorker, NOW).unwrap();
    let scope = data.staff_with_role(Role::GridWorker).next().unwrap().principal().scopes[0];
    let bomb_doc: DocId = HouseholdId::new().into();
    let page = SyncResponse {
        protocol: PROTOCOL_VERSION,
        server_time: NOW,
        acks: vec![],
        items: vec![PullItem::Change {
            scope,
            seq: 1,
            doc: bomb_doc,
            doc_type: DocType::Household,
            bytes: op_bomb(50_000_000),
        }],
        cursors: BTreeMap::from([(scope, Cursor::Seq { seq: 1 })]),
        more: false,
        scopes_added: vec![scope],
        scopes_removed: vec![],
        repairs: vec![],
        reference: None,
        integrity: Default::default(),
        compact_acks: None,
    };
    assert!(matches!(scope, Scope::Grid(_)));
    let started = Instant::now();
    let report = apply_page(&client, &page).expect("the bomb fails alone");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(report.quarantined, 1);
    let entries = client.quarantined().unwrap();
    assert!(entries.iter().any(|e| e.doc == bomb_doc && e.reason.contains("declares more than")), "{entries:?}");
}
