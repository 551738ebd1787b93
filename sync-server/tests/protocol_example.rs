//! The worked example of `docs/protocol.md`, run for real: a grid worker's first sync,
//! an incremental sync with one visit, a rejected change with its repair, and a removed
//! scope. Prints the byte counts the document quotes (`cargo test -p gridlink-sync-server
//! --test protocol_example -- --nocapture`).

mod common;

use std::io::Write;

use common::Harness;
use gridlink_shared::protocol::{self, AckStatus, SyncRequest, SyncResponse};
use gridlink_shared::{HouseholdFile, RejectCode, Scope, Visit, VisitId, VisitOutcome};

fn gzip_len(bytes: &[u8]) -> usize {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap().len()
}

fn report(step: &str, request: &SyncRequest, response: &SyncResponse) {
    let req = protocol::encode(request);
    let resp = protocol::encode(response);
    let item_bytes: usize = response.items.iter().map(|i| i.bytes().len()).sum();
    println!(
        "| {step} | {} B ({} B gzip) | {} B ({} B gzip) | {} items, {} B of automerge data; acks {}; more={} |",
        req.len(),
        gzip_len(&req),
        resp.len(),
        gzip_len(&resp),
        response.items.len(),
        item_bytes,
        response.acks.len(),
        response.more
    );
}

#[tokio::test]
async fn worked_example_with_real_byte_counts() {
    let h = Harness::new();
    let workers = h.grid_workers();
    let worker = workers[0].clone();
    let Scope::Grid(grid) = worker.scopes[0] else { panic!() };
    let mut phone = h.enroll(&worker).await;
    println!("| step | request | response | content |");
    println!("|---|---|---|---|");

    // 1. First sync: snapshots of the grid, in pages of the default size.
    let mut page = 1;
    loop {
        let request = phone.request(Vec::new());
        let response = h.sync(&mut phone, Vec::new()).await;
        report(&format!("1. first sync, page {page}"), &request, &response);
        if page == 1 {
            println!(
                "|   | | | scopes_added {:?}; reference data {} B CBOR |",
                response.scopes_added.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                protocol::encode(&response.reference).len()
            );
        }
        if !response.more {
            break;
        }
        page += 1;
    }
    let docs = phone.docs.len();
    println!("|   | | | {docs} documents held; cursor {:?} |", phone.cursors[&Scope::Grid(grid)]);

    // 2. Incremental: one visit recorded offline, pushed and echoed back as the next seq.
    let household = h.demo.households.iter().find(|x| x.placement.grid == grid).unwrap().id;
    let visit = Visit {
        id: VisitId::new(),
        visitor: worker.id,
        visitor_name: worker.name.clone(),
        at: gridlink_shared::time::now_millis(),
        recorded_at: gridlink_shared::time::now_millis(),
        outcome: VisitOutcome::Met,
        notes: "老人独居，冰箱里食物充足，提醒冬季用电安全".into(),
        needs_found: Vec::new(),
        follow_up: None,
        residents_present: Vec::new(),
    };
    let push = phone.edit::<HouseholdFile>(household.into(), |x| {
        x.visits.insert(visit.id, visit.clone());
    });
    println!("|   | | | the visit change itself: {} B |", push.bytes.len());
    let request = phone.request(vec![push.clone()]);
    let response = h.sync(&mut phone, vec![push]).await;
    assert_eq!(response.acks[0].status, AckStatus::Accepted);
    report("2. incremental, one visit", &request, &response);
    let request = phone.request(Vec::new());
    let response = h.sync(&mut phone, Vec::new()).await;
    assert!(response.items.is_empty());
    report("2b. nothing new", &request, &response);

    // 3. A rejected change: the head of household erased.
    let push = phone.edit::<HouseholdFile>(household.into(), |x| x.head = String::new());
    let request = phone.request(vec![push.clone()]);
    let response = h.sync(&mut phone, vec![push]).await;
    assert!(matches!(response.acks[0].status, AckStatus::Rejected { code: RejectCode::InvalidDocument, .. }));
    assert_eq!(response.repairs.len(), 1);
    report("3. rejected change + repair", &request, &response);
    println!("|   | | | ack: {:?}; repair snapshot {} B |", response.acks[0].status, response.repairs[0].bytes.len());

    // 4. The worker moves to another grid.
    let Scope::Grid(new_grid) = workers[1].scopes[0] else { panic!() };
    h.admin.set_scopes(worker.id, &[Scope::Grid(new_grid)]).unwrap();
    let request = phone.request(Vec::new());
    let response = h.sync(&mut phone, Vec::new()).await;
    assert_eq!(response.scopes_removed, vec![Scope::Grid(grid)]);
    report("4. scope moved", &request, &response);
    println!(
        "|   | | | scopes_removed {:?}, scopes_added {:?} |",
        response.scopes_removed.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        response.scopes_added.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
}
