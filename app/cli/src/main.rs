//! `gridlink` (crate `gridlink-cli`): the command-line client over the client core
//! (`gridlink-client`), in its own crate so the phone build of the core compiles none of clap,
//! anyhow or tracing-subscriber. Every command works on one data
//! directory (`--data DIR`, before the subcommand); errors go to stderr with a non-zero exit;
//! `--json` prints stable JSON with lists sorted by id.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use gridlink_client::{
    CaseAction, CaseFilter, Client, HouseholdEdit, HouseholdFilter, NewCase, NewHousehold, NewVisit, SyncReport,
};
use gridlink_shared::time::now_millis;
use gridlink_shared::{
    ActionKind, BuildingId, CaseId, CaseKind, HouseholdId, Lang, MustVisitTag, UserId, VisitOutcome,
};

#[derive(Parser)]
#[command(name = "gridlink", version, about = "Gridlink (网格通) client: offline household files, visits and cases")]
struct Cli {
    /// Data directory holding the encrypted store (gridlink.db) and its key (db.key, unless
    /// GRIDLINK_DB_KEY is set). A store locked with a PIN opens with GRIDLINK_PIN.
    #[arg(long, value_name = "DIR", env = "GRIDLINK_DATA", global = true)]
    data: Option<PathBuf>,
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enrol this device with a one-time code from the administrator.
    Enroll {
        #[arg(long)]
        server: String,
        #[arg(long)]
        code: String,
        /// Device name shown to the administrator.
        #[arg(long, default_value = "gridlink-cli")]
        name: String,
        /// Trust only this CA (PEM file) for the server, from now on: a certificate from any
        /// other CA is refused. Without it the built-in web roots are trusted.
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
    },
    /// Lock the store with a PIN (4 to 12 digits, read from GRIDLINK_NEW_PIN or the first line
    /// of stdin): the database key is wrapped under it and db.key is deleted. Scripts keep
    /// working through GRIDLINK_DB_KEY.
    SetPin,
    /// For the administrator: open a store whose PIN key was destroyed (10 wrong PINs) with
    /// this device's recovery key and write its unsent and refused changes to a file.
    Recover {
        /// The device's recovery key (64 hex), from `gridlink-server device recovery-key`.
        #[arg(long, value_name = "HEX", env = "GRIDLINK_RECOVERY_KEY", hide_env_values = true)]
        recovery_key: String,
        /// Where to write the changes (JSON, mode 0600; it holds residents' data). Must not exist.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Also push the unsent changes to the server as this device (if it is neither revoked
        /// nor wiped) before writing the file; the file then lists what is still not sent.
        #[arg(long)]
        sync: bool,
    },
    /// Push unsent changes and pull what is new.
    Sync,
    /// Sync state: enrolled, online, last sync, unsent and rejected counts.
    Status,
    /// Whether this device's documents match the server's, per scope (by the digests of the
    /// last sync, recomputed from the documents here now). Exits with 1 on a mismatch; the
    /// next sync verifies and repairs it.
    Verify,
    /// The identity card (亮身份) of the enrolled user.
    Whoami,
    /// List households.
    Households {
        /// Only households with a visit overdue, due today or due soon.
        #[arg(long)]
        due: bool,
        /// Name, address, phone or pinyin initials ("zs" finds 张三).
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        tag: Option<MustVisitTag>,
        #[arg(long)]
        building: Option<BuildingId>,
    },
    /// Work on one household.
    Household {
        #[command(subcommand)]
        command: HouseholdCommand,
    },
    /// Record visits.
    Visit {
        #[command(subcommand)]
        command: VisitCommand,
    },
    /// Open and act on cases.
    Case {
        #[command(subcommand)]
        command: CaseCommand,
    },
    /// List cases with their timelines.
    Cases {
        /// mine, open, overdue, resolved (waiting for verification) or all.
        #[arg(long, default_value = "all")]
        filter: String,
    },
    /// Buildings of your grids.
    Buildings,
    /// The service outlets of the directory (便民服务), by category.
    Services,
    /// Party members and volunteers who may claim a micro-wish, with their claimant codes.
    Party,
    /// Changes the server refused, kept aside.
    Rejected,
    /// Everything held locally as deterministic JSON.
    Export,
    /// Forget the server session and delete local data (refuses while changes are unsent).
    Logout {
        /// Delete even unsent and refused changes.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum HouseholdCommand {
    /// File a new household.
    Add {
        #[arg(long)]
        building: BuildingId,
        #[arg(long)]
        room: String,
        #[arg(long)]
        head: String,
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long, default_value = "")]
        phone: String,
        /// A newly moved-in household (新迁入): tags it new-arrival, which starts the
        /// first-visit deadline, on --moved-in or today.
        #[arg(long)]
        new_arrival: bool,
        /// The day the household moved in (YYYY-MM-DD); implies --new-arrival.
        #[arg(long, value_name = "DATE")]
        moved_in: Option<chrono::NaiveDate>,
    },
    /// Change a household's head, phone or notes (only the fields given).
    Edit {
        #[arg(long)]
        id: HouseholdId,
        #[arg(long)]
        head: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long)]
        notes: Option<String>,
    },
    /// Add or remove a must-visit tag.
    Tag {
        #[arg(long)]
        id: HouseholdId,
        #[command(flatten)]
        change: TagChange,
    },
    /// Show one household file.
    Show {
        #[arg(long)]
        id: HouseholdId,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct TagChange {
    /// new-arrival, problem-family, poor-family or empty-nest.
    #[arg(long)]
    add: Option<MustVisitTag>,
    #[arg(long)]
    remove: Option<MustVisitTag>,
}

#[derive(Subcommand)]
enum VisitCommand {
    /// Record a visit made now.
    Add {
        #[arg(long)]
        household: HouseholdId,
        /// met, not-home or refused.
        #[arg(long)]
        outcome: VisitOutcome,
        #[arg(long, default_value = "")]
        note: String,
    },
}

#[derive(Subcommand)]
enum CaseCommand {
    /// Open a case. KIND: must-arrive:emergency|dispute|discontent|wedding-funeral,
    /// help:CATEGORY, report:sanitation|publicity|information|mediation, dispute, micro-wish,
    /// opinion.
    Open {
        #[arg(long)]
        kind: CaseKind,
        #[arg(long)]
        household: Option<HouseholdId>,
        #[arg(long)]
        building: Option<BuildingId>,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Add an action to a case timeline (claim and refer have their own commands).
    Act {
        #[arg(long)]
        id: CaseId,
        /// accept, arrive, progress, resolve, close, reopen, reassign, comment; on a
        /// micro-wish fulfil or thank.
        #[arg(long)]
        action: ActionKind,
        #[arg(long, default_value = "")]
        note: String,
        /// Resident satisfaction 1-5, with close.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
        satisfaction: Option<u8>,
        /// User id of the new responsible person, with reassign.
        #[arg(long)]
        to: Option<UserId>,
    },
    /// Claim a micro-wish (认领) for a party member, a volunteer or yourself.
    Claim {
        #[arg(long)]
        id: CaseId,
        /// party-member:UUID, volunteer:UUID (from the roster) or staff:UUID (yourself).
        #[arg(long)]
        claimant: gridlink_shared::ClaimantId,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Refer a help request (转介) to a service outlet of the directory.
    Refer {
        #[arg(long)]
        id: CaseId,
        /// The outlet's id (`gridlink services --json`).
        #[arg(long)]
        outlet: gridlink_shared::OutletId,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Show one case with its timeline.
    Show {
        #[arg(long)]
        id: CaseId,
    },
}

/// The case after an action: its detail as JSON, or one line.
fn print_case_status(client: &Client, id: CaseId, action: &str, json: bool, now: i64) -> anyhow::Result<()> {
    let detail = client.case(id, now)?;
    if json {
        print_json(&detail)?;
    } else {
        println!("{id} {action}: {}", detail.row.kind.status_label(detail.row.status, Lang::Zh));
    }
    Ok(())
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("GRIDLINK_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    if let Err(error) = run(Cli::parse()) {
        eprintln!("error: {error:#}");
        use gridlink_client::Error as E;
        if let Some(
            known @ (E::Quarantined { .. }
            | E::Wiped
            | E::PinRequired
            | E::WrongPin { .. }
            | E::PinWait { .. }
            | E::PinLockedOut
            | E::Tls(_)),
        ) = error.downcast_ref()
        {
            eprintln!("{}", known.plain().zh);
        }
        std::process::exit(1);
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    use std::io::Write;
    let text = serde_json::to_string_pretty(value)?;
    match writeln!(std::io::stdout().lock(), "{text}") {
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn human_bytes(n: usize) -> String {
    match n {
        n if n >= 1024 * 1024 => format!("{:.1} MiB", n as f64 / 1024.0 / 1024.0),
        n if n >= 1024 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn describe_sync(r: &SyncReport) -> String {
    let mut text = format!(
        "pushed {} change(s) ({} accepted, {} already stored, {} refused); pulled {} change(s) and {} document(s) in {} round(s)",
        r.pushed, r.accepted, r.duplicates, r.rejected, r.pulled_changes, r.pulled_snapshots, r.rounds
    );
    text.push_str(&format!("; {} sent, {} received", human_bytes(r.bytes_sent), human_bytes(r.bytes_received)));
    if r.repaired > 0 {
        text.push_str(&format!("; repaired {} document(s)", r.repaired));
    }
    if !r.scopes_added.is_empty() {
        text.push_str(&format!("; new scopes {}", r.scopes_added.join(" ")));
    }
    if !r.scopes_removed.is_empty() {
        text.push_str(&format!("; scopes removed {} ({} document(s) deleted)", r.scopes_removed.join(" "), r.purged));
    }
    if r.released > 0 {
        text.push_str(&format!("; {} damaged record(s) repaired and usable again", r.released));
    }
    if r.quarantined > 0 {
        text.push_str(&format!(
            "; {} record(s) damaged, set aside (quarantined) and a repair asked from the server \
             (有 {} 条记录数据异常，已隔离，正在向服务器请求修复)",
            r.quarantined, r.quarantined
        ));
    }
    if r.kept_aside > 0 {
        text.push_str(&format!("; {} document(s) kept until their changes are sent", r.kept_aside));
    }
    if !r.diverged.is_empty() {
        text.push_str(&format!(
            "; diverged from the server in {} and verified: {} document(s) replaced by the server's copy, \
             {} change(s) of this device sent again, {} document(s) the server does not hold removed \
             (与服务器数据不一致，已核对修复)",
            r.diverged.join(" "),
            r.reconciled,
            r.requeued,
            r.forgotten
        ));
    }
    if r.retries > 0 {
        text.push_str(&format!("; {} retr(ies) after network errors", r.retries));
    }
    text
}

/// Opens the store of `data`; a store locked with a PIN opens with `GRIDLINK_PIN`.
fn open(data: &Path) -> anyhow::Result<Client> {
    let opened = match Client::open(data) {
        Err(gridlink_client::Error::PinRequired) => match std::env::var("GRIDLINK_PIN") {
            Ok(pin) => Client::open_with_pin(data, pin.trim(), now_millis()),
            Err(_) => Err(gridlink_client::Error::PinRequired),
        },
        other => other,
    };
    opened.with_context(|| format!("opening {}", data.display()))
}

/// A new PIN from `GRIDLINK_NEW_PIN` or the first line of stdin.
fn new_pin() -> anyhow::Result<String> {
    if let Ok(pin) = std::env::var("GRIDLINK_NEW_PIN") {
        return Ok(pin.trim().to_string());
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the new PIN from stdin")?;
    Ok(line.trim().to_string())
}

/// Writes a file that must not exist yet, readable by its owner only.
fn write_new_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents).and_then(|_| file.sync_all()).with_context(|| format!("cannot write {}", path.display()))
}

fn recover(data: &Path, recovery_key: &str, out: &Path, sync: bool, json: bool) -> anyhow::Result<()> {
    if out.exists() {
        bail!("{} exists; give a new file for the recovered changes", out.display());
    }
    let client = Client::open_with_recovery(data, recovery_key)
        .with_context(|| format!("opening {} with the recovery key", data.display()))?;
    let pushed = if sync { Some(runtime()?.block_on(client.sync())?) } else { None };
    let changes = client.changes_not_on_server()?;
    let status = client.status()?;
    let export = serde_json::json!({
        "format": "gridlink-recovered-changes/1",
        "data": data.display().to_string(),
        "server_url": status.server_url,
        "device": status.device,
        "user": client.identity().ok(),
        "exported_at": now_millis(),
        "pushed": pushed.as_ref().map(|r| r.accepted),
        "changes": changes,
    });
    write_new_private(out, serde_json::to_string_pretty(&export)?.as_bytes())?;
    if json {
        print_json(&export)?;
    } else {
        if let Some(report) = &pushed {
            println!("{}", describe_sync(report));
        }
        println!("{} change(s) not on the server written to {}", changes.len(), out.display());
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let data = cli.data.clone().context("--data DIR (or GRIDLINK_DATA) is required")?;
    let json = cli.json;
    if let Command::Recover { recovery_key, out, sync } = &cli.command {
        return recover(&data, recovery_key, out, *sync, json);
    }
    let client = open(&data)?;
    let now = now_millis();
    match cli.command {
        Command::Recover { .. } => unreachable!("handled before opening"),
        Command::SetPin => {
            client.set_pin(&new_pin()?)?;
            println!("PIN set: the store now opens only with the PIN (GRIDLINK_PIN) or GRIDLINK_DB_KEY");
        }
        Command::Enroll { server, code, name, ca } => {
            let ca_pem = ca
                .map(|path| {
                    std::fs::read_to_string(&path).with_context(|| format!("reading the CA file {}", path.display()))
                })
                .transpose()?;
            let identity = runtime()?.block_on(client.enroll_with_ca(&server, &code, &name, ca_pem.as_deref()))?;
            if json {
                print_json(&identity)?;
            } else {
                println!("enrolled as {} ({}) on {server}", identity.name, identity.role.zh());
            }
        }
        Command::Sync => {
            let outcome = runtime()?.block_on(client.sync());
            match outcome {
                Ok(report) if json => print_json(&report)?,
                Ok(report) => println!("{}", describe_sync(&report)),
                Err(e @ gridlink_client::Error::Wiped) => return Err(e.into()),
                Err(e) => {
                    let status = client.status()?;
                    let plain = e.plain().zh;
                    return Err(anyhow::Error::new(e).context(format!(
                        "{plain}\n{} change(s) still unsent; they are kept and will be sent later",
                        status.unsent
                    )));
                }
            }
        }
        Command::Status => {
            let status = client.status()?;
            if json {
                print_json(&status)?;
            } else {
                println!(
                    "enrolled: {}; online: {}; last sync: {}; unsent: {}; refused: {}; damaged (quarantined): {}{}",
                    status.enrolled,
                    status.online.map(|o| o.to_string()).unwrap_or_else(|| "unknown".into()),
                    status.last_success_at.map(gridlink_shared::time::format_local).unwrap_or_else(|| "never".into()),
                    status.unsent,
                    status.rejected,
                    status.quarantined,
                    if status.revoked { "; THIS DEVICE WAS REVOKED" } else { "" }
                );
                if let Some(error) = status.last_error {
                    println!("last error: {} / {}", error.zh, error.en);
                }
            }
        }
        Command::Verify => {
            let scopes = gridlink_client::sync::digest_checks(&client)?;
            if json {
                print_json(&scopes)?;
            } else if scopes.is_empty() {
                println!("no scopes held yet: sync first");
            }
            if !json {
                for s in &scopes {
                    let compared =
                        s.compared_at.map(gridlink_shared::time::format_local).unwrap_or_else(|| "never".into());
                    println!(
                        "{}: {} ({}); here {} document(s), digest {}; server {} document(s), digest {}; compared {}; unsent {}",
                        s.scope,
                        s.state,
                        s.detail,
                        s.local_documents,
                        s.local_digest,
                        s.server_documents.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
                        s.server_digest.as_deref().unwrap_or("-"),
                        compared,
                        s.unsent
                    );
                }
            }
            let mismatched: Vec<&str> =
                scopes.iter().filter(|s| s.state == "mismatch").map(|s| s.scope.as_str()).collect();
            if !mismatched.is_empty() {
                bail!(
                    "this device's documents differ from the server's in {}; the next `gridlink sync` repairs them \
                     (本机数据与服务器不一致，下次同步时自动修复)",
                    mismatched.join(" ")
                );
            }
        }
        Command::Whoami => {
            let identity = client.identity()?;
            if json {
                print_json(&identity)?;
            } else {
                println!(
                    "{} {} {} {}",
                    identity.name,
                    identity.role.zh(),
                    identity.phone,
                    identity.grid_names.join(" ")
                );
            }
        }
        Command::Households { due, search, tag, building } => {
            let mut rows = client.households(&HouseholdFilter { search, due_only: due, tag, building }, now)?;
            if json {
                rows.sort_by_key(|r| r.id);
                print_json(&rows)?;
            } else {
                for r in rows {
                    let tags: Vec<&str> = r.tags.iter().map(|t| t.zh()).collect();
                    let due = r.next_due.map(|d| format!(" 下次走访 {d}")).unwrap_or_default();
                    println!("{} {} {} {}{}", r.id, r.address, r.head, tags.join("、"), due);
                }
            }
        }
        Command::Household { command } => match command {
            HouseholdCommand::Add { building, room, head, unit, phone, new_arrival, moved_in } => {
                let household = NewHousehold { building, unit, room, head, phone, notes: String::new() };
                // The phone's form checks the same fields; say every problem at once.
                let problems = client.new_household_problems(&household, &[])?;
                if !problems.is_empty() {
                    let lines: Vec<String> =
                        problems.iter().map(|(_, problem)| format!("{} ({})", problem.zh, problem.en)).collect();
                    bail!("the household cannot be filed:\n  {}", lines.join("\n  "));
                }
                let id = if new_arrival || moved_in.is_some() {
                    client.file_new_arrival(household, Vec::new(), moved_in, now)?
                } else {
                    client.add_household(household, now)?
                };
                if json {
                    print_json(&serde_json::json!({ "id": id }))?;
                } else {
                    println!("{id}");
                }
            }
            HouseholdCommand::Edit { id, head, phone, notes } => {
                if head.is_none() && phone.is_none() && notes.is_none() {
                    bail!("give at least one of --head, --phone, --notes");
                }
                let edit = HouseholdEdit { head, phone, notes, status: None, moved_out_on: None };
                client.edit_household(id, edit, now)?;
                if !json {
                    println!("edited {id}");
                }
            }
            HouseholdCommand::Tag { id, change } => {
                let (tag, on) = match (change.add, change.remove) {
                    (Some(tag), _) => (tag, true),
                    (None, Some(tag)) => (tag, false),
                    (None, None) => bail!("give --add TAG or --remove TAG"),
                };
                client.set_tag(id, tag, on, None, now)?;
                if !json {
                    println!("{} {tag} on {id}", if on { "added" } else { "removed" });
                }
            }
            HouseholdCommand::Show { id } => {
                let detail = client.household(id, now)?;
                if json {
                    print_json(&detail)?;
                } else {
                    let tags: Vec<&str> = detail.tags.iter().map(|t| t.tag.zh()).collect();
                    println!("{} {} {} {}", detail.address, detail.head, detail.phone, tags.join("、"));
                    if detail.visits.len() > 5 {
                        println!("  {} visits; the 5 newest:", detail.visits.len());
                    }
                    for v in detail.visits.iter().take(5) {
                        println!(
                            "  {} {} {} {}",
                            gridlink_shared::time::format_local(v.at),
                            v.visitor_name,
                            v.outcome.zh(),
                            v.notes
                        );
                    }
                }
            }
        },
        Command::Visit { command: VisitCommand::Add { household, outcome, note } } => {
            let id = client.record_visit(
                NewVisit {
                    household,
                    outcome,
                    notes: note,
                    needs_found: vec![],
                    follow_up: None,
                    residents_present: vec![],
                    at: now,
                },
                now,
            )?;
            if json {
                print_json(&serde_json::json!({ "id": id }))?;
            } else {
                println!("{id}");
            }
        }
        Command::Case { command } => match command {
            CaseCommand::Open { kind, household, building, title, note } => {
                let id = client.open_case(NewCase { kind, household, building, title, note, at: now }, now)?;
                if json {
                    print_json(&serde_json::json!({ "id": id }))?;
                } else {
                    println!("{id}");
                }
            }
            CaseCommand::Act { id, action, note, satisfaction, to } => {
                client.act_on_case(CaseAction { case: id, action, note, satisfaction, to }, now)?;
                let detail = client.case(id, now)?;
                if json {
                    print_json(&detail)?;
                } else {
                    println!("{} {}: {}", id, action, detail.row.kind.status_label(detail.row.status, Lang::Zh));
                }
            }
            CaseCommand::Claim { id, claimant, note } => {
                client.claim_wish(id, claimant, &note, now)?;
                print_case_status(&client, id, "claim", json, now)?;
            }
            CaseCommand::Refer { id, outlet, note } => {
                client.refer_to_outlet(id, outlet, &note, now)?;
                print_case_status(&client, id, "refer", json, now)?;
            }
            CaseCommand::Show { id } => print_json(&client.case(id, now)?)?,
        },
        Command::Cases { filter } => {
            let filter: CaseFilter =
                serde_json::from_value(serde_json::Value::String(filter.clone())).map_err(|_| {
                    anyhow::anyhow!("unknown filter '{filter}': expected mine, open, overdue, resolved or all")
                })?;
            let mut rows = client.cases(filter, now)?;
            rows.sort_by_key(|r| r.id);
            if json {
                let mut items = Vec::new();
                for row in rows {
                    let detail = client.case(row.id, now)?;
                    let mut item = serde_json::to_value(&row)?;
                    item["timeline"] = serde_json::to_value(&detail.timeline)?;
                    item["allowed_actions"] = serde_json::to_value(&detail.allowed_actions)?;
                    items.push(item);
                }
                print_json(&items)?;
            } else {
                for r in rows {
                    println!(
                        "{} {} {} {} {}",
                        r.id,
                        r.kind.zh(),
                        r.kind.status_label(r.status, Lang::Zh),
                        r.responsible_name,
                        r.title
                    );
                }
            }
        }
        Command::Buildings => {
            let rows = client.buildings()?;
            if json {
                print_json(&rows)?;
            } else {
                for b in rows {
                    println!("{} {} {} ({} households)", b.id, b.grid_name, b.name, b.households);
                }
            }
        }
        Command::Services => {
            let groups = client.services()?;
            if json {
                print_json(&groups)?;
            } else {
                for group in groups {
                    for o in group.outlets {
                        println!("{} {} {} {} {}", o.id, group.category.zh(), o.name, o.phone, o.address);
                    }
                }
            }
        }
        Command::Party => {
            let directory = client.party_directory()?;
            let mut people = Vec::new();
            for entry in &directory.branches {
                for (member, _) in &entry.members {
                    let claimant = gridlink_shared::ClaimantId::PartyMember(member.id);
                    people.push(serde_json::json!({
                        "claimant": claimant.to_string(), "name": member.name, "branch": entry.branch.name,
                    }));
                }
            }
            for volunteer in &directory.volunteers {
                let claimant = gridlink_shared::ClaimantId::Volunteer(volunteer.id);
                people.push(serde_json::json!({
                    "claimant": claimant.to_string(), "name": volunteer.name, "branch": null,
                }));
            }
            if json {
                print_json(&people)?;
            } else {
                for p in people {
                    println!(
                        "{} {} {}",
                        p["claimant"].as_str().unwrap_or(""),
                        p["name"].as_str().unwrap_or(""),
                        p["branch"].as_str().unwrap_or("志愿者")
                    );
                }
            }
        }
        Command::Rejected => {
            let rows = client.rejected_changes()?;
            if json {
                print_json(&rows)?;
            } else {
                for r in rows {
                    println!("{} {} {}: {}", r.doc, r.summary, r.code.zh(), r.message);
                }
            }
        }
        Command::Export => print_json(&client.export()?)?,
        Command::Logout { force } => {
            client.logout(force)?;
            println!("logged out; local data deleted");
        }
    }
    Ok(())
}
