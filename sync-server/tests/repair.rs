//! A store poisoned the old way (a change re-sent under another seq, accepted and stored by a
//! release build before the change checks) is found by `gridlink-server check`, repaired by
//! `check --repair`, and every phone ends up with a copy it can load.

mod common;

use std::process::Command;

use common::{Device, Harness, craft};
use gridlink_shared::protocol::{AckStatus, PullItem};
use gridlink_shared::{DocId, HouseholdFile, RejectCode, Role, Scope, doc};
use gridlink_sync_server::store::check_document;

fn a_household(device: &Device) -> DocId {
    *device.docs.iter().find(|(_, d)| doc::read::<HouseholdFile>(*d).is_ok()).map(|(id, _)| id).unwrap()
}

/// Writes what the old server stored for an accepted poison change: the change row, its log
/// entries in every scope of the document, and the document with the change merged in.
fn store_poison(h: &Harness, id: DocId, poison: &[u8], actor: &str) {
    let hash = doc::parse_change(poison).unwrap().hash().to_string();
    h.admin
        .read(|conn| {
            let saved: Vec<u8> =
                conn.query_row("SELECT bytes FROM docs WHERE id = ?1", [id.to_string()], |r| r.get(0))?;
            conn.execute(
                "INSERT INTO changes (hash, doc_id, bytes, actor, accepted_at) VALUES (?1, ?2, ?3, ?4, 1)",
                rusqlite::params![hash, id.to_string(), poison, actor],
            )?;
            let scopes: Vec<String> = {
                let mut stmt = conn.prepare("SELECT scope FROM doc_scopes WHERE doc_id = ?1")?;
                stmt.query_map([id.to_string()], |r| r.get(0))?.collect::<Result<_, _>>()?
            };
            for scope in scopes {
                conn.execute(
                    "INSERT INTO scope_log (scope, seq, change_hash, doc_id)
                     SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3 FROM scope_log WHERE scope = ?1",
                    rusqlite::params![scope, hash, id.to_string()],
                )?;
            }
            // A saved document followed by a change chunk loads as the two merged.
            let poisoned = [saved, poison.to_vec()].concat();
            conn.execute("UPDATE docs SET bytes = ?1 WHERE id = ?2", rusqlite::params![poisoned, id.to_string()])?;
            Ok(())
        })
        .unwrap();
}

fn server_check(h: &Harness, repair: bool) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gridlink-server"));
    command.args(["check", "--data"]).arg(h.dir.path());
    if repair {
        command.arg("--repair");
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.code().unwrap_or(-1), stdout)
}

#[tokio::test]
async fn a_poisoned_store_is_found_repaired_and_every_phone_gets_a_loadable_copy() {
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let mut phone = h.enroll(&worker).await;
    h.sync_all(&mut phone).await;
    let mut colleague_phone = h.enroll(&worker).await;
    h.sync_all(&mut colleague_phone).await;

    let id = a_household(&phone);
    let edit = phone.edit::<HouseholdFile>(id, |f| f.notes = "空巢老人，每周探访".into());
    let accepted = doc::parse_change(&edit.bytes).unwrap();
    assert_eq!(h.sync(&mut phone, vec![edit]).await.acks[0].status, AckStatus::Accepted);
    let poison = craft::reencode(&accepted, |c| c.seq += 1);
    store_poison(&h, id, &poison, &phone.enrolled.actor);
    let stored: Vec<u8> = h
        .admin
        .read(|conn| Ok(conn.query_row("SELECT bytes FROM docs WHERE id = ?1", [id.to_string()], |r| r.get(0))?))
        .unwrap();
    assert!(check_document(&stored).is_err(), "the premise: a phone cannot load this document");

    // While poisoned, an honest push to it is refused cleanly and the server stays up.
    let honest = phone.edit::<HouseholdFile>(id, |f| f.phone = "13907110000".into());
    let response = h.sync(&mut phone, vec![honest]).await;
    match &response.acks[0].status {
        AckStatus::Rejected { code, message } => {
            assert_eq!(*code, RejectCode::InvalidDocument);
            assert!(message.contains("damaged"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    let (code, report) = server_check(&h, false);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains(&format!("bad document {id}")), "{report}");

    let (code, report) = server_check(&h, true);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains(&format!("repaired document {id}")), "{report}");
    let poison_hash = doc::parse_change(&poison).unwrap().hash().to_string();
    assert!(report.contains(&format!("quarantined change {poison_hash}")), "{report}");
    let kept: i64 = h
        .admin
        .read(|conn| {
            Ok(conn.query_row("SELECT COUNT(*) FROM quarantine WHERE hash = ?1", [&poison_hash], |r| r.get(0))?)
        })
        .unwrap();
    assert_eq!(kept, 1, "the offending change is kept, not deleted");
    let (code, report) = server_check(&h, false);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("all sound"), "{report}");

    // A freshly enrolled supervisor loads the whole community, the repaired household too.
    let mut fresh = h.enroll(&h.staff(Role::Supervisor)).await;
    h.sync_all(&mut fresh).await;
    let repaired: HouseholdFile = doc::read(&fresh.docs[&id]).unwrap();
    assert_eq!(repaired.notes, "空巢老人，每周探访", "the sound change survives the repair");

    // A phone that synced before the damage pulls placeholders for the quarantined change and
    // the repaired document whole; its log stays gapless.
    let responses = h.sync_all(&mut colleague_phone).await;
    let grid = worker.scopes[0];
    assert!(matches!(grid, Scope::Grid(_)));
    let items: Vec<&PullItem> = responses.iter().flat_map(|r| &r.items).collect();
    assert!(items.iter().any(|i| matches!(i, PullItem::Echo { doc, .. } if *doc == id)), "a placeholder");
    assert!(responses.iter().any(|r| r.repairs.iter().any(|s| s.doc == id)), "the repaired copy");
    let copy: HouseholdFile = doc::read(&colleague_phone.docs[&id]).unwrap();
    assert_eq!(copy.notes, "空巢老人，每周探访");

    // And the household takes honest edits again, on the repaired copy.
    phone.docs.insert(id, h.server_doc(id).unwrap());
    let again = phone.edit::<HouseholdFile>(id, |f| f.phone = "13907110000".into());
    assert_eq!(h.sync(&mut phone, vec![again]).await.acks[0].status, AckStatus::Accepted);
}
