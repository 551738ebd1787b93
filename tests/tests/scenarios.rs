//! End-to-end scenarios: a real gridlink-server process on 127.0.0.1, several clients with
//! their own encrypted data directories, real HTTP. Every loop is bounded in count and in
//! time (the time bound is a hang guard, never an assertion about speed).

use std::collections::BTreeMap;
use std::time::Duration;

use gridlink_client::{CaseAction, CaseFilter, Client, Error, HouseholdEdit, HouseholdFilter, NewCase, NewVisit};
use gridlink_shared::time::{DAY_MS, HOUR_MS, now_millis};
use gridlink_shared::{ActionKind, CaseKind, LeaderRole, MustVisitTag, VisitOutcome};
use gridlink_tests::{Bound, FaultProxy, Server, enrolled, export, quick_retries, sync_until_ok};

type TestResult = anyhow::Result<()>;

fn visit(household: gridlink_shared::HouseholdId, notes: &str, at: i64) -> NewVisit {
    NewVisit {
        household,
        outcome: VisitOutcome::Met,
        notes: notes.to_string(),
        needs_found: vec![],
        follow_up: None,
        residents_present: vec![],
        at,
    }
}

/// Visit notes starting with `prefix`, counted over every household of an export.
fn notes_with_prefix(client: &Client, prefix: &str) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for h in client.export().unwrap()["households"].as_array().unwrap() {
        for v in h["visits"].as_array().unwrap() {
            let notes = v["notes"].as_str().unwrap_or_default();
            if notes.starts_with(prefix) {
                *seen.entry(notes.to_string()).or_insert(0) += 1;
            }
        }
    }
    seen
}

/// A supervisor device that reads the whole community, to check what the server holds.
async fn community_reader(server: &Server, dir: &std::path::Path) -> anyhow::Result<Client> {
    let users = server.users()?;
    let supervisor = users
        .iter()
        .find(|u| u["role"] == "supervisor" && u["scopes"][0].as_str().unwrap_or_default().starts_with("community:"))
        .and_then(|u| u["id"].as_str())
        .expect("the demo has a community supervisor")
        .to_string();
    enrolled(server, &server.url(), dir, &supervisor, "supervisor-pc").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_edit_one_household_offline_and_converge() -> TestResult {
    let server = Server::start_demo()?;
    let (worker, grid_scope) = server.user_with_role("grid-worker", 0)?;
    let (second, _) = server.add_user("王芳", "grid-worker", &grid_scope)?;
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = enrolled(&server, &server.url(), dir_a.path(), &worker, "phone-a").await?;
    let b = enrolled(&server, &server.url(), dir_b.path(), &second, "phone-b").await?;
    assert_eq!(export(&a), export(&b), "both start from the server's copy");

    let now = now_millis();
    let h = a.households(&HouseholdFilter::default(), now)?[3].id;
    // Offline on both phones: different fields, the same field, and a visit each.
    a.edit_household(h, HouseholdEdit { phone: Some("13907140001".into()), ..Default::default() }, now)?;
    b.edit_household(h, HouseholdEdit { notes: Some("独居老人，子女在外地工作".into()), ..Default::default() }, now)?;
    a.edit_household(h, HouseholdEdit { head: Some("张桂兰".into()), ..Default::default() }, now + 1)?;
    b.edit_household(h, HouseholdEdit { head: Some("张桂芬".into()), ..Default::default() }, now + 2)?;
    let visit_a = a.record_visit(visit(h, "上门走访，身体尚好", now), now)?;
    let visit_b = b.record_visit(visit(h, "电话回访后再次上门", now + HOUR_MS), now + HOUR_MS)?;
    a.set_tag(h, MustVisitTag::EmptyNest, true, None, now)?;

    a.sync().await?;
    b.sync().await?;
    a.sync().await?;
    assert_eq!(export(&a), export(&b), "converged exports are byte-identical");

    let detail = a.household(h, now)?;
    assert_eq!(detail.phone, "13907140001");
    assert_eq!(detail.notes, "独居老人，子女在外地工作");
    assert!(["张桂兰", "张桂芬"].contains(&detail.head.as_str()), "one of the two heads wins: {}", detail.head);
    assert_eq!(b.household(h, now)?.head, detail.head);
    let visit_ids: Vec<_> = detail.visits.iter().map(|v| v.id).collect();
    assert!(visit_ids.contains(&visit_a) && visit_ids.contains(&visit_b), "both visits kept");
    assert_eq!(a.status()?.unsent + b.status()?.unsent, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_accept_resolve_close_in_any_sync_order_agree() -> TestResult {
    let server = Server::start_demo()?;
    let (leader_id, _) = server.user_with_role("building-leader", 0)?;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir()).collect::<Result<_, _>>()?;
    let leader = enrolled(&server, &server.url(), dirs[0].path(), &leader_id, "leader-phone").await?;
    let building = leader.buildings()?.first().expect("the leader's building").clone();
    let worker_id = server
        .users()?
        .iter()
        .find(|u| u["role"] == "grid-worker" && u["scopes"][0] == format!("grid:{}", building.grid))
        .and_then(|u| u["id"].as_str().map(String::from))
        .expect("a worker for the leader's grid");
    let worker = enrolled(&server, &server.url(), dirs[1].path(), &worker_id, "worker-phone").await?;
    let supervisor = community_reader(&server, dirs[2].path()).await?;
    let clients = [&leader, &worker, &supervisor];

    let orders: [[usize; 3]; 3] = [[1, 2, 0], [2, 0, 1], [0, 1, 2]];
    for (round, order) in orders.iter().enumerate() {
        let now = now_millis() + round as i64 * DAY_MS;
        let case = leader.open_case(
            NewCase {
                kind: CaseKind::Report(LeaderRole::Sanitation),
                household: None,
                building: Some(building.id),
                title: format!("{}楼道堆放杂物 #{round}", building.name),
                note: "三楼楼道堆满纸箱，存在消防隐患".into(),
                at: now,
            },
            now,
        )?;
        leader.sync().await?;
        worker.sync().await?;
        supervisor.sync().await?;
        // Offline, concurrently: the worker accepts and resolves, the supervisor closes, the
        // leader comments.
        let act = |client: &Client, action, at, satisfaction| {
            client.act_on_case(CaseAction { case, action, note: format!("{action}"), satisfaction, to: None }, at)
        };
        act(&worker, ActionKind::Accept, now + HOUR_MS, None)?;
        act(&worker, ActionKind::Resolve, now + 2 * HOUR_MS, None)?;
        act(&supervisor, ActionKind::Close, now + 3 * HOUR_MS, Some(5))?;
        act(&leader, ActionKind::Comment, now + 4 * HOUR_MS, None)?;
        for pass in 0..2 {
            for i in order {
                clients[*i].sync().await.map_err(|e| anyhow::anyhow!("pass {pass}, client {i}: {e}"))?;
            }
        }
        let views: Vec<_> = clients.iter().map(|c| c.case(case, now)).collect::<Result<_, _>>()?;
        for view in &views[1..] {
            assert_eq!(view.row.status, views[0].row.status, "order {order:?}");
            assert_eq!(view.timeline, views[0].timeline, "order {order:?}");
        }
        assert_eq!(views[0].timeline.len(), 4);
        assert!(!views[0].row.status.code().is_empty());
    }
    let open_everywhere: Vec<usize> =
        clients.iter().map(|c| c.cases(CaseFilter::Open, now_millis()).unwrap().len()).collect();
    assert!(open_everywhere.iter().all(|n| *n < 1000));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_offline_then_one_sync() -> TestResult {
    let server = Server::start_demo()?;
    let (worker_id, _) = server.user_with_role("grid-worker", 1)?;
    let (dir, reader_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let worker = enrolled(&server, &server.url(), dir.path(), &worker_id, "phone").await?;
    let start = now_millis();
    let households = worker.households(&HouseholdFilter::default(), start)?;
    let mut writes = 0;
    for day in 0..30i64 {
        let now = start + day * DAY_MS;
        for k in 0..10usize {
            let h = households[(day as usize * 10 + k) % households.len()].id;
            worker.record_visit(visit(h, &format!("月度走访#{day}-{k}"), now), now)?;
            writes += 1;
        }
        if day % 3 == 0 {
            let h = households[day as usize % households.len()].id;
            worker.set_tag(h, MustVisitTag::ProblemFamily, day % 6 == 0, None, now)?;
            writes += 1;
        }
    }
    // A tag write that changes nothing (adding a tag already there) commits nothing.
    let queued = worker.status()?.unsent;
    assert!((300..=writes).contains(&queued), "{queued} of {writes} writes queued");
    let report = worker.sync().await?;
    assert_eq!(report.pushed, queued);
    assert_eq!(report.accepted, queued);
    assert_eq!(worker.status()?.unsent, 0);
    println!("month offline: {writes} writes pushed in {} round(s)", report.rounds);

    let reader = community_reader(&server, reader_dir.path()).await?;
    let seen = notes_with_prefix(&reader, "月度走访#");
    assert_eq!(seen.len(), 300);
    assert!(seen.values().all(|n| *n == 1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_lose_nothing_and_duplicate_nothing() -> TestResult {
    let server = Server::start_demo()?;
    let (worker_id, _) = server.user_with_role("grid-worker", 2)?;
    let proxy = FaultProxy::start(server.addr, 20261128, 0.3).await?;
    let (dir, reader_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let worker = enrolled(&server, &proxy.url(), dir.path(), &worker_id, "phone-on-a-bad-line").await?;
    worker.set_retry_policy(quick_retries(2));
    let households = worker.households(&HouseholdFilter::default(), now_millis())?;

    proxy.set_faults(true);
    let bound = Bound::new("fault injection", Duration::from_secs(240));
    let (mut written, mut failures) = (0usize, 0usize);
    for i in 0..5000usize {
        if proxy.cut_count() >= 200 {
            break;
        }
        bound.check();
        let now = now_millis();
        let h = households[i % households.len()].id;
        worker.record_visit(visit(h, &format!("断网测试#{i:04}"), now), now)?;
        written += 1;
        if let Err(e) = worker.sync().await {
            assert!(e.is_retryable(), "only transient errors expected, got {e}");
            failures += 1;
        }
    }
    assert!(proxy.cut_count() >= 200, "only {} cuts", proxy.cut_count());
    proxy.set_faults(false);
    sync_until_ok(&worker, "final sync").await?;
    println!("{} cuts, {written} visits, {failures} failed syncs", proxy.cut_count());

    let status = worker.status()?;
    assert_eq!((status.unsent, status.rejected), (0, 0));
    let local = notes_with_prefix(&worker, "断网测试#");
    assert_eq!(local.len(), written);
    let reader = community_reader(&server, reader_dir.path()).await?;
    let remote = notes_with_prefix(&reader, "断网测试#");
    assert_eq!(remote.len(), written, "every visit reached the server");
    assert!(remote.values().all(|n| *n == 1), "no visit duplicated");
    assert_eq!(export(&worker), {
        worker.sync().await?;
        export(&worker)
    });
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_sync_and_restarted() -> TestResult {
    let mut server = Server::start_demo()?;
    let (worker_id, _) = server.user_with_role("grid-worker", 0)?;
    let proxy = FaultProxy::start(server.addr, 1, 0.0).await?;
    let (dir, reader_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let worker = enrolled(&server, &proxy.url(), dir.path(), &worker_id, "phone").await?;
    worker.set_retry_policy(quick_retries(3));
    let households = worker.households(&HouseholdFilter::default(), now_millis())?;
    let now = now_millis();
    for i in 0..400usize {
        worker.record_visit(visit(households[i % households.len()].id, &format!("停机测试#{i:03}"), now), now)?;
    }
    let before = proxy.request_bytes.load(std::sync::atomic::Ordering::SeqCst);
    let syncing = {
        let worker = worker.clone();
        tokio::spawn(async move { worker.sync().await })
    };
    let bound = Bound::new("waiting for the push to start", Duration::from_secs(60));
    for _ in 0..60_000 {
        if proxy.request_bytes.load(std::sync::atomic::Ordering::SeqCst) > before {
            break;
        }
        bound.check();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.kill();
    let first = syncing.await?;
    println!("sync while the server died: {:?}", first.as_ref().map(|r| r.accepted));
    server.restart()?;
    sync_until_ok(&worker, "sync after restart").await?;
    assert_eq!(worker.status()?.unsent, 0);
    let reader = community_reader(&server, reader_dir.path()).await?;
    let remote = notes_with_prefix(&reader, "停机测试#");
    assert_eq!(remote.len(), 400);
    assert!(remote.values().all(|n| *n == 1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_moved_to_another_grid_pushes_then_drops_the_old_grid() -> TestResult {
    let server = Server::start_demo()?;
    let (worker_id, old_scope) = server.user_with_role("grid-worker", 0)?;
    let (_, new_scope) = server.user_with_role("grid-worker", 1)?;
    let (dir, reader_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let worker = enrolled(&server, &server.url(), dir.path(), &worker_id, "phone").await?;
    let now = now_millis();
    let old_households = worker.households(&HouseholdFilter::default(), now)?;
    let h = old_households[0].id;
    worker.record_visit(visit(h, "调岗前最后一次走访", now), now)?;
    assert_eq!(worker.status()?.unsent, 1);

    server.admin(&["user", "set-scopes", "--user", &worker_id, "--scope", &new_scope])?;
    let report = worker.sync().await?;
    assert_eq!(report.scopes_removed, vec![old_scope.clone()]);
    assert_eq!(report.scopes_added, vec![new_scope.clone()]);
    let report = sync_until_ok(&worker, "second sync").await?;
    let _ = report;

    let now_rows = worker.households(&HouseholdFilter::default(), now)?;
    assert!(!now_rows.is_empty(), "the new grid's households arrived");
    assert!(now_rows.iter().all(|r| format!("grid:{}", r.grid_id) == new_scope), "old grid's households are gone");
    assert!(matches!(worker.household(h, now), Err(Error::NotFound { .. })));
    assert_eq!(worker.status()?.unsent, 0);
    // The unsent visit was pushed and, made before the move, accepted within the grace period.
    let reader = community_reader(&server, reader_dir.path()).await?;
    let on_server = notes_with_prefix(&reader, "调岗前最后一次走访").len();
    let kept = worker.rejected_changes()?;
    assert_eq!((on_server, kept.len()), (1, 0), "server copy: {on_server}, kept aside: {kept:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_stops_syncing_and_keeps_its_data_encrypted() -> TestResult {
    let server = Server::start_demo()?;
    let (worker_id, _) = server.user_with_role("grid-worker", 1)?;
    let dir = tempfile::tempdir()?;
    let worker = enrolled(&server, &server.url(), dir.path(), &worker_id, "lost-phone").await?;
    let now = now_millis();
    let household = worker.households(&HouseholdFilter::default(), now)?[0].clone();
    worker.record_visit(visit(household.id, "设备停用前的走访记录", now), now)?;

    server.admin(&["device", "revoke", "--user", &worker_id])?;
    assert!(matches!(worker.sync().await, Err(Error::Revoked)));
    let status = worker.status()?;
    assert!(status.revoked);
    assert_eq!(status.unsent, 1, "unsynced data is kept");
    assert!(status.last_error.as_ref().is_some_and(|e| e.zh.contains("停用")));
    assert!(matches!(worker.sync().await, Err(Error::Revoked)), "no further attempts");
    drop(worker);

    let reopened = Client::open(dir.path())?;
    assert_eq!(reopened.household(household.id, now)?.visits[0].notes, "设备停用前的走访记录");
    let raw = std::fs::read(dir.path().join("gridlink.db"))?;
    let needle = household.head.as_bytes();
    assert!(!raw.windows(needle.len()).any(|w| w == needle), "the database file is encrypted");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_while_syncing_in_the_background_are_all_kept() -> TestResult {
    let server = Server::start_demo()?;
    let (worker_id, _) = server.user_with_role("grid-worker", 2)?;
    let (dir, reader_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);

    let bogus = Client::open(tempfile::tempdir()?.path())?;
    let refused = bogus.enroll(&server.url(), "XXXX-0000", "phone").await.unwrap_err();
    assert!(!refused.is_retryable(), "a bad code is not retried: {refused}");
    assert!(matches!(refused, Error::Server { code: Some(_), .. }), "{refused:?}");

    let worker = enrolled(&server, &server.url(), dir.path(), &worker_id, "phone").await?;
    let households = worker.households(&HouseholdFilter::default(), now_millis())?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The UI's background task: sync, sync, sync.
    let background = {
        let (worker, stop) = (worker.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rounds = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && rounds < 10_000 {
                worker.sync().await.expect("background sync");
                rounds += 1;
            }
            rounds
        })
    };
    // The UI's event handlers: writes on another thread at the same time.
    let writer = {
        let (worker, households) = (worker.clone(), households.clone());
        tokio::task::spawn_blocking(move || {
            for i in 0..150usize {
                let now = now_millis();
                worker
                    .record_visit(visit(households[i % households.len()].id, &format!("并发测试#{i:03}"), now), now)?;
            }
            Ok::<_, Error>(())
        })
    };
    writer.await??;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let rounds = background.await?;
    worker.sync().await?;
    println!("{rounds} background syncs ran during 150 writes");
    assert_eq!(worker.status()?.unsent, 0);
    let reader = community_reader(&server, reader_dir.path()).await?;
    let remote = notes_with_prefix(&reader, "并发测试#");
    assert_eq!(remote.len(), 150);
    assert!(remote.values().all(|n| *n == 1));
    Ok(())
}
