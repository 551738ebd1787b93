//! The `gridlink-server` admin CLI, run as a separate process on the same data directory as
//! a running server: users, codes, scopes, devices, roster report and CSV import. The CSV
//! import and roster report stories run against both backends (`stories!`, the CLI given
//! `--data DIR` or `--database URL`); the one with `serve` running stays on SQLite (the
//! multi-process stories of PostgreSQL are in `store_postgres.rs` and `tests/tests/postgres.rs`).

#[path = "common/backends.rs"]
mod backends;

use std::path::Path;
use std::process::{Output, Stdio};

use backends::Backend;
use gridlink_shared::protocol::{EnrollRequest, EnrollResponse, ErrorEnvelope};
use gridlink_sync_server::store::MAX_IMPORT_BYTES;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_gridlink-server");

fn run(data: &Path, args: &[&str]) -> Output {
    std::process::Command::new(BIN).args(args).arg("--data").arg(data).output().unwrap()
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = run(data, args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn run_on<B: Backend>(place: &B::Place, args: &[&str]) -> Output {
    std::process::Command::new(BIN).args(args).args(B::cli_args(place)).output().unwrap()
}

fn ok_on<B: Backend>(place: &B::Place, args: &[&str]) -> String {
    let out = run_on::<B>(place, args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn last_line(text: &str) -> String {
    text.lines().last().unwrap().trim().to_string()
}

#[tokio::test]
async fn admin_commands_work_while_the_server_runs_and_take_effect_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let init = ok(data, &["init", "--demo", "small"]);
    assert!(init.contains("300 households"), "{init}");

    let roster: serde_json::Value = serde_json::from_str(&ok(data, &["roster", "--json"])).unwrap();
    let grids = roster["streets"][0]["communities"][0]["grids"].as_array().unwrap().clone();
    assert_eq!(grids.len(), 3);
    let total: u64 = grids.iter().map(|g| g["households"].as_u64().unwrap()).sum();
    assert_eq!(total, 300);
    let (grid_a, grid_b) = (grids[0]["id"].as_str().unwrap().to_string(), grids[1]["id"].as_str().unwrap().to_string());

    let mut server = tokio::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    let base = line.strip_prefix("listening on http://").map(|a| format!("http://{a}")).expect("listening line");

    // Added while serving; the code is alone on the last line.
    let added = ok(
        data,
        &[
            "user",
            "add",
            "--name",
            "陈晓燕",
            "--role",
            "grid-worker",
            "--scope",
            &format!("grid:{grid_a}"),
            "--phone",
            "13907140001",
        ],
    );
    let code = last_line(&added);
    assert_eq!(code.len(), 9, "XXXX-XXXX: {added}");
    let http = reqwest::Client::new();
    let enrolled: EnrollResponse = http
        .post(format!("{base}/v1/enroll"))
        .json(&EnrollRequest { code: code.clone(), device_name: "陈晓燕的手机".into() })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(enrolled.principal.name, "陈晓燕");
    let user = enrolled.principal.user.to_string();

    let users: serde_json::Value = serde_json::from_str(&ok(data, &["user", "list", "--json"])).unwrap();
    let me = users.as_array().unwrap().iter().find(|u| u["id"] == user.as_str()).unwrap();
    assert_eq!(me["active_devices"], 1);

    // Moved to another grid while serving: /v1/me says so at once.
    ok(data, &["user", "set-scopes", "--user", &user, "--scope", &format!("grid:{grid_b}")]);
    let me: serde_json::Value =
        http.get(format!("{base}/v1/me")).bearer_auth(&enrolled.token).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["principal"]["scopes"][0], format!("grid:{grid_b}"));

    let devices: serde_json::Value = serde_json::from_str(&ok(data, &["device", "list", "--json"])).unwrap();
    assert_eq!(devices.as_array().unwrap().len(), 1);
    assert_eq!(devices[0]["id"], enrolled.device.to_string());
    ok(data, &["device", "revoke", "--device", &enrolled.device.to_string()]);
    let response = http.get(format!("{base}/v1/me")).bearer_auth(&enrolled.token).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let envelope: ErrorEnvelope = response.json().await.unwrap();
    assert_eq!(envelope.error.code.code(), "device-revoked");

    // A new code for the same user enrols a replacement phone.
    let code = last_line(&ok(data, &["user", "code", "--user", &user]));
    let response = http
        .post(format!("{base}/v1/enroll"))
        .json(&EnrollRequest { code, device_name: "新手机".into() })
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Mistakes are reported on stderr with a non-zero exit.
    let out = run(data, &["user", "add", "--name", "赵六", "--role", "grid-worker", "--scope", "grid:not-a-uuid"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid scope"));
    let unknown = "grid:00000000-0000-0000-0000-00000000abcd";
    let out = run(data, &["user", "add", "--name", "赵六", "--role", "grid-worker", "--scope", unknown]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such grid"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&dir.path().join("nowhere"), &["user", "list"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("gridlink-server init"));

    // SIGTERM stops the server gracefully with a zero exit.
    let pid = server.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = server.wait().await.unwrap();
    assert!(status.success(), "serve exited with {status}");
    assert!(http.get(format!("{base}/healthz")).send().await.is_err());
}

const GOOD_CSV: &str = "record_type,id,parent_id,name,phone,role,scopes,units,floors,rooms_per_floor,unit,room
household,00000000-0000-4000-8000-000000000301,00000000-0000-4000-8000-000000000201,刘桂兰,13907149999,,,,,,2,302
building,00000000-0000-4000-8000-000000000201,00000000-0000-4000-8000-000000000101,澜湖印象3栋,,,,2,6,2,,
grid,00000000-0000-4000-8000-000000000101,00000000-0000-4000-8000-000000000011,澜湖社区第1网格,,,,,,,,
community,00000000-0000-4000-8000-000000000011,00000000-0000-4000-8000-000000000001,澜湖社区,,,,,,,,
street,00000000-0000-4000-8000-000000000001,,澜湖街道,,,,,,,,
staff,00000000-0000-4000-8000-000000000401,,孙丽华,13907140002,grid-worker,grid:00000000-0000-4000-8000-000000000101,,,,,
";

fn a_clean_csv_imports_and_a_file_with_any_bad_row_imports_nothing<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _store) = B::fresh();
    let run = run_on::<B>;
    let ok = ok_on::<B>;

    let bad = dir.path().join("bad.csv");
    let bad_csv = format!(
        "{GOOD_CSV}grid,nonsense,00000000-0000-4000-8000-000000000011,坏网格,,,,,,,,
building,00000000-0000-4000-8000-000000000202,00000000-0000-4000-8000-000000000999,无主楼,,,,2,x,2,,
staff,00000000-0000-4000-8000-000000000402,,周强,,mayor,grid:00000000-0000-4000-8000-000000000101,,,,,
planet,00000000-0000-4000-8000-000000000403,,火星,,,,,,,,
household,00000000-0000-4000-8000-000000000302,00000000-0000-4000-8000-000000000201,,,,,,,,1,101
"
    );
    std::fs::write(&bad, bad_csv).unwrap();
    let out = run(&data, &["import", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "row 8, column id: 'nonsense' is not a UUID",
        "row 9, column parent_id: no grid with id",
        "row 9, column floors: 'x' is not a number",
        "row 10, column role:",
        "row 11, column record_type: 'planet'",
        "row 12, column name:",
        "nothing was imported",
    ] {
        assert!(stderr.contains(expected), "missing '{expected}' in:\n{stderr}");
    }
    let roster: serde_json::Value = serde_json::from_str(&ok(&data, &["roster", "--json"])).unwrap();
    assert_eq!(roster["streets"].as_array().unwrap().len(), 0, "nothing imported");

    let good = dir.path().join("good.csv");
    std::fs::write(&good, GOOD_CSV).unwrap();
    let summary = ok(&data, &["import", good.to_str().unwrap()]);
    assert!(summary.contains("1 new households"), "{summary}");
    let roster: serde_json::Value = serde_json::from_str(&ok(&data, &["roster", "--json"])).unwrap();
    let grid = &roster["streets"][0]["communities"][0]["grids"][0];
    assert_eq!(grid["name"], "澜湖社区第1网格");
    assert_eq!(grid["households"], 1);
    assert_eq!(grid["buildings"][0]["name"], "澜湖印象3栋");
    // Importing the same file again changes nothing and says so.
    let again = ok(&data, &["import", good.to_str().unwrap()]);
    assert!(again.contains("0 new households (1 already present)"), "{again}");
    let code = last_line(&ok(&data, &["user", "code", "--user", "00000000-0000-4000-8000-000000000401"]));
    assert_eq!(code.len(), 9);
}

fn an_oversized_or_unreadable_file_is_refused_before_anything_is_read<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let (place, store) = B::fresh();
    // Sparse: as large as the cap plus one byte, without writing it.
    let huge = dir.path().join("huge.csv");
    std::fs::File::create(&huge).unwrap().set_len(MAX_IMPORT_BYTES + 1).unwrap();
    let out = run_on::<B>(&place, &["import", huge.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("larger than 64 MiB"), "{stderr}");

    let missing = dir.path().join("没有这个文件.csv");
    let out = run_on::<B>(&place, &["import", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"), "{}", String::from_utf8_lossy(&out.stderr));

    // Not UTF-8 (a GBK export from an old spreadsheet): refused, nothing written.
    let gbk = dir.path().join("gbk.csv");
    let mut bytes = GOOD_CSV.lines().next().unwrap().as_bytes().to_vec();
    bytes.extend_from_slice(b"\nstreet,00000000-0000-4000-8000-000000000001,,\xe4\xe4\xbd\xd6,,,,,,,,\n");
    std::fs::write(&gbk, bytes).unwrap();
    let out = run_on::<B>(&place, &["import", gbk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("row 2"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(store.roster().unwrap().streets.is_empty(), "nothing imported");
}

stories!(
    a_clean_csv_imports_and_a_file_with_any_bad_row_imports_nothing,
    an_oversized_or_unreadable_file_is_refused_before_anything_is_read,
);
