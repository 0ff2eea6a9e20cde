//! The `regie` CLI: a field worker's, tester's or script's view of one device profile. It logs
//! in, syncs the caseload with a progress bar and a summary, lists dossiers and documents,
//! shows a document (recorded as a read for the audit log), edits the plan and the record
//! through regie-client's policy-checked API, and reports status. The profile's store is
//! sealed with a device key the server releases per login (R29) and that lives in memory only,
//! so every process starts locked: each command unlocks with the token given by `--token` or
//! `REGIE_TOKEN` (which needs the server), and no token is kept on disk. `--idle-lock` drops
//! the key within a long-running command (a sync) that leaves the store unused that long.
//! Errors say what to do, and the exit code says what kind of failure it was (see `--help`).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use regie_client::edit::{
    EntryCategory, EntryKind, GoalChanges, GoalStatus, NewAction, NewEntry, NewGoal, Owner,
};
use regie_client::{Client, ClientError, DocumentInfo, Progress, SyncOptions, SyncReport};
use regie_core::id::{DocumentKey, DossierId, PersonId};
use serde_json::Value;
use time::Date;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  any other failure
  2  wrong usage (see --help)
  3  not logged in, or the server refused the token: run `regie login` again
  4  the server cannot be reached: your work is kept on this device; sync later
  5  refused: the policy or the document's rules do not allow this edit (nothing changed)
  6  not on this device: run `regie sync`, or check `regie ls`
  7  this device was reported lost: its store can never be opened again";

/// `regie`: work a caseload of Regie dossiers offline and sync it with a Regie server.
#[derive(Debug, Parser)]
#[command(name = "regie", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// The device profile directory (one SQLite store per profile).
    #[arg(long, global = true, env = "REGIE_PROFILE", value_name = "DIR")]
    profile: Option<PathBuf>,
    /// The bearer token (JWT): logs in, and unlocks the store for any other command (the
    /// store keeps no token); `-` reads it from standard input.
    #[arg(long, global = true, env = "REGIE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Seconds the unlocked store may stay unused before it drops its key from memory.
    #[arg(
        long,
        global = true,
        env = "REGIE_IDLE_LOCK",
        value_name = "SECONDS",
        default_value_t = regie_client::DEFAULT_IDLE_LOCK.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    idle_lock: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log in to a server with --token: the server checks it and releases this device's key,
    /// which unlocks the store (the server URL and your claims are kept; the token is not).
    Login {
        /// The server's base URL, e.g. https://regie.example.nl.
        #[arg(long, env = "REGIE_SERVER")]
        server: String,
    },
    /// Reconcile the caseload with the server: upload local changes and offline reads,
    /// download what changed, purge what you may no longer hold.
    Sync {
        /// Connection attempts before giving up (with growing, jittered waits in between).
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=50))]
        attempts: u32,
    },
    /// List your dossiers and documents with access mode and whether they are on this device.
    Ls,
    /// Show a document of a dossier (recorded as a read in the audit log).
    Show {
        /// The dossier id (or a unique prefix of it, as `regie ls` shows).
        dossier: String,
        /// The document: plan, record, meta, view/<person>, maatwerk/<n> or partner/<org>.
        #[arg(long, default_value = "plan")]
        doc: String,
        /// Print the document as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Edit the plan.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Add to the professional record.
    #[command(subcommand)]
    Record(RecordCommand),
    /// Pending local changes and reads, last sync, and whether the server is reachable.
    Status,
}

#[derive(Debug, Subcommand)]
enum PlanCommand {
    /// Add a goal; prints its id.
    AddGoal {
        /// The dossier id or a unique prefix.
        dossier: String,
        /// The goal in words.
        #[arg(long)]
        title: String,
        /// Who owns it: resident, network, worker or partner:<org> (workers only).
        #[arg(long)]
        owner: Option<Owner>,
    },
    /// Change a goal's title, status or owner.
    Edit {
        /// The dossier id or a unique prefix.
        dossier: String,
        /// The goal id, as `regie show` prints it.
        goal: String,
        #[command(flatten)]
        changes: GoalArgs,
    },
    /// Add an action under a goal; prints its id.
    AddAction {
        /// The dossier id or a unique prefix.
        dossier: String,
        /// The goal id.
        goal: String,
        /// What is to be done.
        #[arg(long)]
        description: String,
        /// Who does it: resident, network, worker or partner:<org> (workers only).
        #[arg(long)]
        owner: Option<Owner>,
        /// When it is due (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        due: Option<Date>,
    },
    /// Replace the hulpvraag (concurrent edits of it merge).
    Hulpvraag {
        /// The dossier id or a unique prefix.
        dossier: String,
        /// The new text.
        text: String,
    },
}

#[derive(Debug, Args)]
struct GoalArgs {
    /// A new title.
    #[arg(long)]
    title: Option<String>,
    /// A new status: open, achieved or dropped.
    #[arg(long)]
    status: Option<GoalStatus>,
    /// A new owner: resident, network, worker or partner:<org> (workers only).
    #[arg(long)]
    owner: Option<Owner>,
}

#[derive(Debug, Subcommand)]
enum RecordCommand {
    /// Add an entry (fact or opinion, about one or more persons); prints its id.
    Add {
        /// The dossier id or a unique prefix.
        dossier: String,
        /// fact or opinion (R14: they are kept apart).
        #[arg(long)]
        kind: EntryKind,
        /// A person the entry is about (repeat for several).
        #[arg(long = "subject", required = true)]
        subjects: Vec<PersonId>,
        /// The entry's text.
        #[arg(long)]
        text: String,
        /// analysis, conversation or work_note.
        #[arg(long, default_value = "analysis")]
        category: EntryCategory,
        /// The life domain of an analysis entry.
        #[arg(long)]
        life_domain: Option<String>,
    },
}

fn parse_date(s: &str) -> Result<Date, String> {
    Date::parse(s, regie_core::document::DATE).map_err(|_| "expected a date YYYY-MM-DD".into())
}

fn default_profile() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".regie").join("default")
}

/// The exit code for an error, and a hint.
fn classify(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<ClientError>() {
        Some(
            ClientError::NotLoggedIn | ClientError::Unauthorized { .. } | ClientError::BadToken(_),
        ) => 3,
        Some(ClientError::Unreachable { .. }) => 4,
        Some(ClientError::Denied { .. } | ClientError::Invalid { .. }) => 5,
        Some(ClientError::NotHeld(_) | ClientError::NoSuchItem(_)) => 6,
        Some(ClientError::Locked(_)) => 3,
        Some(ClientError::DeviceLost) => 7,
        _ => 1,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("regie: {e:#}");
            ExitCode::from(classify(&e))
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let profile = cli.profile.unwrap_or_else(default_profile);
    let client = Client::open(&profile)
        .await
        .with_context(|| format!("cannot open the device profile in {}", profile.display()))?
        .with_idle_lock(std::time::Duration::from_secs(cli.idle_lock));
    let token = cli.token.map(read_token).transpose()?;
    if let Command::Login { server } = &cli.command {
        let Some(token) = token else {
            bail!("give the token with --token TOKEN (or REGIE_TOKEN; `-` reads standard input)");
        };
        return login(&client, server, &token).await;
    }
    // Every process starts locked: unlock with the token, if given. `status` still reports
    // what it can when the unlock fails (e.g. the server is unreachable).
    let unlocked = match &token {
        Some(t) => client.unlock(t).await.map(drop),
        None => Ok(()),
    };
    if let Command::Status = cli.command {
        return status(&client, &profile, unlocked.err()).await;
    }
    unlocked?;
    match cli.command {
        Command::Login { .. } | Command::Status => unreachable!("handled above"),
        Command::Sync { attempts } => {
            let client = client.with_options(SyncOptions {
                max_attempts: attempts,
                ..SyncOptions::default()
            });
            sync(&client).await
        }
        Command::Ls => ls(&client).await,
        Command::Show { dossier, doc, json } => {
            let dossier = resolve(&client, &dossier).await?;
            let key: DocumentKey = doc
                .parse()
                .map_err(|e| anyhow::anyhow!("--doc {doc}: {e}"))?;
            let opened = client.open_document(dossier, &key).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&opened.content)?);
            } else {
                print_document(&opened.info, &opened.content, opened.pending_changes);
            }
            Ok(())
        }
        Command::Plan(cmd) => plan(&client, cmd).await,
        Command::Record(RecordCommand::Add {
            dossier,
            kind,
            subjects,
            text,
            category,
            life_domain,
        }) => {
            let dossier = resolve(&client, &dossier).await?;
            let id = client
                .add_entry(
                    dossier,
                    &NewEntry {
                        kind,
                        category,
                        subjects,
                        text,
                        life_domain,
                    },
                )
                .await?;
            println!("{id}");
            Ok(())
        }
    }
}

/// The token as given, or read from standard input for `-`.
fn read_token(token: String) -> anyhow::Result<String> {
    if token != "-" {
        return Ok(token);
    }
    let mut t = String::new();
    std::io::stdin()
        .read_to_string(&mut t)
        .context("cannot read the token from standard input")?;
    Ok(t)
}

async fn login(client: &Client, server: &str, token: &str) -> anyhow::Result<()> {
    let report = client.login(server, token).await?;
    println!(
        "Logged in as {} ({}) on {server}: {} documents listed. Run `regie sync` to fetch them.",
        report.user,
        report.role.as_str(),
        report.documents
    );
    if !report.purged.is_empty() {
        println!(
            "Removed {} documents of the previous user from this device.",
            report.purged.len()
        );
    }
    Ok(())
}

fn kb(bytes: u64) -> String {
    if bytes < 10_000 {
        format!("{bytes} B")
    } else {
        format!("{:.1} kB", bytes as f64 / 1000.0)
    }
}

fn draw(p: &Progress) {
    const WIDTH: usize = 30;
    let filled = (p.documents_done * WIDTH)
        .checked_div(p.documents_total)
        .unwrap_or(WIDTH);
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\r[{}{}] {}/{} documents, {} sent, {} received ",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        p.documents_done,
        p.documents_total,
        kb(p.bytes_sent),
        kb(p.bytes_received)
    );
    let _ = err.flush();
}

async fn sync(client: &Client) -> anyhow::Result<()> {
    let tty = std::io::stderr().is_terminal();
    let result = client
        .sync(|p| {
            if tty {
                draw(p);
            }
        })
        .await;
    if tty {
        eprintln!();
    }
    let report: SyncReport = result?;
    println!(
        "Synced {} documents in {:.2} s: sent {} changes, received {} changes ({} sent, {} received).",
        report.documents,
        report.elapsed.as_secs_f64(),
        report.changes_sent,
        report.changes_received,
        kb(report.bytes_sent),
        kb(report.bytes_received)
    );
    if report.reads_uploaded > 0 || !report.reads_refused.is_empty() {
        println!(
            "Uploaded {} offline reads to the audit log ({} refused).",
            report.reads_uploaded,
            report.reads_refused.len()
        );
    }
    for p in &report.purged {
        println!(
            "Purged {} of dossier {} from this device ({}).",
            p.key, p.dossier, p.reason
        );
    }
    for r in &report.rejected {
        println!(
            "The server rejected changes to {} of dossier {} ({}); replayed {} edits.",
            r.key, r.dossier, r.reason, r.replayed
        );
        for d in &r.dropped {
            println!("  not replayed: {d}");
        }
    }
    if report.retries > 0 {
        println!(
            "The connection failed {} times on the way; retried.",
            report.retries
        );
    }
    Ok(())
}

async fn ls(client: &Client) -> anyhow::Result<()> {
    let docs = client.documents().await?;
    if docs.is_empty() {
        println!("No documents. Run `regie sync` (or `regie login` first).");
        return Ok(());
    }
    let held = client.store().held().await?;
    println!(
        "{:<36}  {:<10}  {:<12}  {:<16}  {:<6}  {:<20}  ON DEVICE",
        "DOSSIER", "DISTRICT", "TEAM", "DOCUMENT", "ACCESS", "BASIS"
    );
    for d in &docs {
        println!(
            "{:<36}  {:<10}  {:<12}  {:<16}  {:<6}  {:<20}  {}",
            d.dossier.to_string(),
            d.district.as_str(),
            d.team.as_str(),
            d.key.to_string(),
            code(&d.access),
            code(&d.basis),
            if held.contains(&d.id) { "yes" } else { "no" }
        );
    }
    Ok(())
}

fn code<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A dossier id from a full id or a unique prefix of one on this device.
async fn resolve(client: &Client, given: &str) -> anyhow::Result<DossierId> {
    if let Ok(id) = given.parse() {
        return Ok(id);
    }
    let mut found: Vec<DossierId> = client
        .documents()
        .await?
        .iter()
        .map(|d| d.dossier)
        .filter(|d| d.to_string().starts_with(given))
        .collect();
    found.dedup();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(ClientError::NotHeld(format!("dossier {given}")).into()),
        _ => bail!(
            "{given} matches {} dossiers; give more of the id",
            found.len()
        ),
    }
}

async fn plan(client: &Client, cmd: PlanCommand) -> anyhow::Result<()> {
    match cmd {
        PlanCommand::AddGoal {
            dossier,
            title,
            owner,
        } => {
            let dossier = resolve(client, &dossier).await?;
            println!(
                "{}",
                client.add_goal(dossier, &NewGoal { title, owner }).await?
            );
        }
        PlanCommand::Edit {
            dossier,
            goal,
            changes,
        } => {
            let dossier = resolve(client, &dossier).await?;
            if changes.title.is_none() && changes.status.is_none() && changes.owner.is_none() {
                bail!("nothing to change: give --title, --status or --owner");
            }
            client
                .edit_goal(
                    dossier,
                    &goal,
                    &GoalChanges {
                        title: changes.title,
                        status: changes.status,
                        owner: changes.owner,
                    },
                )
                .await?;
        }
        PlanCommand::AddAction {
            dossier,
            goal,
            description,
            owner,
            due,
        } => {
            let dossier = resolve(client, &dossier).await?;
            let action = NewAction {
                description,
                owner,
                due,
            };
            println!("{}", client.add_action(dossier, &goal, &action).await?);
        }
        PlanCommand::Hulpvraag { dossier, text } => {
            let dossier = resolve(client, &dossier).await?;
            client.set_hulpvraag(dossier, &text).await?;
        }
    }
    Ok(())
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn print_document(info: &DocumentInfo, content: &Value, pending: usize) {
    println!(
        "{} of dossier {} ({} access, {})",
        info.key,
        info.dossier,
        code(&info.access),
        code(&info.basis)
    );
    if pending > 0 {
        println!("{pending} local changes not yet synced.");
    }
    match info.key {
        DocumentKey::Plan => {
            println!("\nHulpvraag: {}", s(&content["hulpvraag"]));
            println!("\nGoals:");
            for g in items(&content["goals"]) {
                println!(
                    "  [{}] {} ({}{})",
                    s(&g["id"]),
                    s(&g["title"]),
                    g["status"].as_str().unwrap_or("open"),
                    g["owner"]
                        .as_str()
                        .map(|o| format!(", owner {o}"))
                        .unwrap_or_default()
                );
                for a in items(&g["actions"]) {
                    println!(
                        "      - [{}] {}{}{}{}",
                        s(&a["id"]),
                        s(&a["description"]),
                        a["owner"]
                            .as_str()
                            .map(|o| format!(", owner {o}"))
                            .unwrap_or_default(),
                        a["due"]
                            .as_str()
                            .map(|d| format!(", due {d}"))
                            .unwrap_or_default(),
                        if a["done"].as_bool() == Some(true) {
                            ", done"
                        } else {
                            ""
                        }
                    );
                }
            }
            println!("\nAgreements:");
            for a in items(&content["agreements"]) {
                println!(
                    "  [{}] {} ({})",
                    s(&a["id"]),
                    s(&a["text"]),
                    s(&a["made_on"])
                );
            }
            println!("\nEvaluations:");
            for e in items(&content["evaluations"]) {
                println!("  [{}] {} {}", s(&e["id"]), s(&e["date"]), s(&e["summary"]));
            }
        }
        DocumentKey::Record => {
            println!("\nEntries:");
            for e in items(&content["entries"]) {
                let subjects: Vec<&str> = items(&e["subjects"]).iter().map(s).collect();
                println!(
                    "  [{}] {} / {} about {} by {} at {}:\n      {}",
                    s(&e["id"]),
                    s(&e["kind"]),
                    s(&e["category"]),
                    subjects.join(", "),
                    s(&e["author"]),
                    s(&e["at"]),
                    s(&e["text"])
                );
            }
            println!("\nTriage decisions:");
            for t in items(&content["triage"]) {
                println!(
                    "  [{}] {}: {} (discussed with resident: {})",
                    s(&t["id"]),
                    s(&t["moment"]),
                    s(&t["decision"]),
                    if t["discussed_with_resident"].as_bool() == Some(true) {
                        "yes"
                    } else {
                        "no"
                    }
                );
            }
            println!("\nConsents:");
            for c in items(&content["consents"]) {
                println!(
                    "  [{}] {} to {} for {} (given {}{})",
                    s(&c["id"]),
                    s(&c["subject"]),
                    s(&c["recipient"]),
                    s(&c["purpose"]),
                    s(&c["given_on"]),
                    c["withdrawn_on"]
                        .as_str()
                        .map(|d| format!(", withdrawn {d}"))
                        .unwrap_or_default()
                );
            }
        }
        _ => {
            println!(
                "{}",
                serde_json::to_string_pretty(content).unwrap_or_default()
            );
        }
    }
}

/// Prints the profile's state; while locked (no token given, or the unlock failed, e.g.
/// offline) only what the store keeps in the clear, and why it is locked.
async fn status(
    client: &Client,
    dir: &std::path::Path,
    unlock_failed: Option<ClientError>,
) -> anyhow::Result<()> {
    if let Some(lost @ ClientError::DeviceLost) = unlock_failed {
        return Err(lost.into());
    }
    let st = match client.status().await {
        Ok(st) => st,
        Err(locked @ ClientError::Locked(_)) => {
            let p = client.store().profile().await?;
            println!("Profile:    {} (device {})", dir.display(), p.storage_id);
            if let Some(c) = &p.claims {
                println!("User:       {} ({})", c.sub, c.role.as_str());
            }
            println!(
                "Last sync:  {}",
                p.last_sync_at
                    .map_or_else(|| "never".to_owned(), regie_client_ts)
            );
            println!(
                "Store:      locked; pending work is sealed until it is unlocked ({})",
                unlock_failed.map_or_else(|| locked.to_string(), |e| e.to_string())
            );
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let p = &st.profile;
    println!("Profile:    {} (device {})", dir.display(), p.storage_id);
    match (&p.claims, &p.server_url) {
        (Some(c), Some(url)) => println!("User:       {} ({}) on {url}", c.sub, c.role.as_str()),
        _ => println!("User:       not logged in (run `regie login --server URL --token TOKEN`)"),
    }
    if let Some(exp) = p.token_expires_at {
        let expired = exp <= time::OffsetDateTime::now_utc();
        println!(
            "Token:      expires {}{}",
            regie_client_ts(exp),
            if expired {
                " (expired: log in again)"
            } else {
                ""
            }
        );
    }
    println!(
        "Last sync:  {}",
        p.last_sync_at
            .map_or_else(|| "never".to_owned(), regie_client_ts)
    );
    println!(
        "Documents:  {} listed, {} on this device",
        st.documents, st.held
    );
    println!(
        "Pending:    {} local changes not yet on the server, {} offline reads to upload",
        st.pending_changes, st.pending_reads
    );
    println!(
        "Server:     {}",
        match st.server_reachable {
            Some(true) => "reachable",
            Some(false) => "not reachable (work offline; sync later)",
            None => "unknown (not logged in)",
        }
    );
    Ok(())
}

fn regie_client_ts(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
