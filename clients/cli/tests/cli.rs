//! The real `regie` binary against a real server on 127.0.0.1:0 (started in this process):
//! login, sync, ls, show, plan and record edits, status, and the errors and exit codes a user
//! or script sees when something is wrong.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use regie_core::principal::{Claims, Role};
use serde_json::json;

const SECRET: &str = "cli-test-secret-that-is-long-enough-for-hs256";

struct Server {
    url: String,
    state: regie_server::AppState,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(dir: &Path) -> Server {
        regie_server::install_crypto_provider();
        let cli = <regie_server::config::Cli as clap::Parser>::try_parse_from([
            "regie-server",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &dir.display().to_string(),
            "--jwt-secret",
            SECRET,
        ])
        .expect("serve arguments");
        let regie_server::config::Command::Serve(args) = cli.command else {
            unreachable!("parsed serve")
        };
        let state = regie_server::state(&args.serve)
            .await
            .expect("server state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(regie_server::run(
            listener,
            state.clone(),
            None,
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            url,
            state,
            stop,
            task,
        }
    }

    fn token(&self, sub: &str, role: Role, person: Option<&str>) -> String {
        let worker = role == Role::Worker;
        let claims = Claims {
            sub: sub.into(),
            role,
            district: worker.then(|| "noord".into()),
            team: worker.then(|| "team-noord".into()),
            org: None,
            person: person.map(Into::into),
            citywide: false,
        };
        self.state
            .auth
            .mint(&claims, Duration::from_secs(3600))
            .unwrap()
    }

    /// A household with Anna assigned and Sanne's resident account linked.
    async fn household(&self) -> String {
        self.household_of(&[("p-sanne", "Sanne Bakker")], true)
            .await
    }

    /// A household of these persons with Anna assigned, the first one's account linked if asked.
    async fn household_of(&self, persons: &[(&str, &str)], link: bool) -> String {
        let http = reqwest::Client::new();
        let anna = self.token("anna", Role::Worker, None);
        let created: serde_json::Value = http
            .post(format!("{}/api/v1/dossiers", self.url))
            .bearer_auth(&anna)
            .json(&json!({
                "district": "noord", "team": "team-noord", "assigned": ["anna"],
                "persons": persons.iter().map(|(id, name)| json!({ "id": id, "name": name })).collect::<Vec<_>>(),
                "resident_agreed": true, "agreed_on": "2026-11-01"
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        if !link {
            return id;
        }
        let linked = http
            .post(format!("{}/api/v1/dossiers/{id}/residents", self.url))
            .bearer_auth(&anna)
            .json(&json!({ "person": "p-sanne" }))
            .send()
            .await
            .unwrap();
        assert_eq!(linked.status().as_u16(), 201);
        id
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Runs `regie` with the profile `profile` and `args`, no token given.
async fn regie(profile: &Path, args: &[&str]) -> Output {
    command(profile)
        .args(args)
        .output()
        .await
        .expect("regie runs")
}

/// Runs `regie` with the profile `profile`, unlocked with `token` (from `REGIE_TOKEN`, as a
/// script would give it), and `args`.
async fn regie_as(profile: &Path, token: &str, args: &[&str]) -> Output {
    command(profile)
        .env("REGIE_TOKEN", token)
        .args(args)
        .output()
        .await
        .expect("regie runs")
}

fn command(profile: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_regie"));
    c.env("REGIE_PROFILE", profile)
        .env_remove("REGIE_SERVER")
        .env_remove("REGIE_TOKEN")
        .env_remove("REGIE_IDLE_LOCK");
    c
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_logs_in_syncs_edits_the_plan_and_the_record_and_sees_it_all_with_the_real_binary()
{
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server")).await;
    let dossier = server.household().await;
    let anna = dir.path().join("anna");
    let anna_token = server.token("anna", Role::Worker, None);

    let out = ok(&regie(
        &anna,
        &["login", "--server", &server.url, "--token", &anna_token],
    )
    .await);
    assert!(out.contains("Logged in as anna (worker)"), "{out}");
    let out = ok(&regie_as(&anna, &anna_token, &["sync"]).await);
    assert!(out.contains("Synced 3 documents"), "{out}");
    let out = ok(&regie_as(&anna, &anna_token, &["ls"]).await);
    assert!(out.contains(&dossier) && out.contains("plan") && out.contains("record"));
    assert!(out.contains("write") && out.contains("assignment") && out.contains("yes"));

    let short = &dossier[..8];
    let goal = ok(&regie_as(
        &anna,
        &anna_token,
        &[
            "plan",
            "add-goal",
            short,
            "--title",
            "Schulden op orde",
            "--owner",
            "worker",
        ],
    )
    .await);
    let goal = goal.trim();
    assert!(goal.starts_with("g-"), "{goal}");
    ok(&regie_as(
        &anna,
        &anna_token,
        &["plan", "edit", short, goal, "--status", "achieved"],
    )
    .await);
    ok(&regie_as(
        &anna,
        &anna_token,
        &[
            "plan",
            "add-action",
            short,
            goal,
            "--description",
            "Budgetcoach bellen",
            "--due",
            "2026-12-01",
        ],
    )
    .await);
    let entry = ok(&regie_as(
        &anna,
        &anna_token,
        &[
            "record",
            "add",
            short,
            "--kind",
            "fact",
            "--subject",
            "p-sanne",
            "--text",
            "Huur twee maanden achter",
        ],
    )
    .await);
    assert!(entry.trim().starts_with("e-"));
    let status = ok(&regie_as(&anna, &anna_token, &["status"]).await);
    assert!(
        status.contains("4 local changes not yet on the server"),
        "{status}"
    );
    assert!(status.contains("reachable"), "{status}");
    let out = ok(&regie_as(&anna, &anna_token, &["sync"]).await);
    assert!(out.contains("sent 4 changes"), "{out}");
    let status = ok(&regie_as(&anna, &anna_token, &["status"]).await);
    assert!(status.contains("0 local changes"), "{status}");

    let plan = ok(&regie_as(&anna, &anna_token, &["show", short]).await);
    assert!(
        plan.contains("Schulden op orde (achieved, owner worker)"),
        "{plan}"
    );
    assert!(
        plan.contains("Budgetcoach bellen, due 2026-12-01"),
        "{plan}"
    );
    let record = ok(&regie_as(&anna, &anna_token, &["show", short, "--doc", "record"]).await);
    assert!(
        record.contains("fact / analysis about p-sanne by anna"),
        "{record}"
    );
    assert!(record.contains("Huur twee maanden achter"));
    let json: serde_json::Value = serde_json::from_str(&ok(&regie_as(
        &anna,
        &anna_token,
        &["show", &dossier, "--json"],
    )
    .await))
    .unwrap();
    assert_eq!(json["goals"][0]["title"], "Schulden op orde");
    // The three opens were recorded and go up with the next sync.
    let out = ok(&regie_as(&anna, &anna_token, &["sync"]).await);
    assert!(out.contains("Uploaded 3 offline reads"), "{out}");

    // The resident sees the plan, not the record.
    let sanne = dir.path().join("sanne");
    let sanne_token = server.token("sanne", Role::Resident, Some("p-sanne"));
    ok(&regie(
        &sanne,
        &["login", "--server", &server.url, "--token", &sanne_token],
    )
    .await);
    ok(&regie_as(&sanne, &sanne_token, &["sync"]).await);
    let plan = ok(&regie_as(&sanne, &sanne_token, &["show", short]).await);
    assert!(plan.contains("Schulden op orde"));
    let ls = ok(&regie_as(&sanne, &sanne_token, &["ls"]).await);
    assert!(!ls.contains("record"), "{ls}");

    // R29: no token in any file of the profile, no content in the clear; without a token a
    // command finds the store locked and says how to unlock it.
    for entry in std::fs::read_dir(&anna).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for secret in [
            anna_token.as_str(),
            "Huur twee maanden achter",
            "Budgetcoach",
        ] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in {}",
                path.display()
            );
        }
    }
    let locked = regie(&anna, &["ls"]).await;
    assert_eq!(locked.status.code(), Some(3), "{}", stderr(&locked));
    assert!(
        stderr(&locked).contains("locked") && stderr(&locked).contains("REGIE_TOKEN"),
        "{}",
        stderr(&locked)
    );
    let status = ok(&regie(&anna, &["status"]).await);
    assert!(status.contains("Store:      locked"), "{status}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_says_what_to_do_and_exits_with_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server")).await;
    let dossier = server.household().await;
    let sanne = dir.path().join("sanne");

    let help = regie(&sanne, &["--help"]).await;
    assert_eq!(help.status.code(), Some(0));
    for word in [
        "login",
        "sync",
        "ls",
        "show",
        "plan",
        "record",
        "status",
        "Exit codes",
    ] {
        assert!(stdout(&help).contains(word), "{word} in --help");
    }
    let usage = regie(&sanne, &["record", "add", "x", "--kind", "gossip"]).await;
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));

    let not_logged_in = regie(&sanne, &["sync"]).await;
    assert_eq!(not_logged_in.status.code(), Some(3));
    assert!(
        stderr(&not_logged_in).contains("regie login"),
        "{}",
        stderr(&not_logged_in)
    );
    let bad = regie(
        &sanne,
        &["login", "--server", &server.url, "--token", "not-a-jwt"],
    )
    .await;
    assert_eq!(bad.status.code(), Some(3), "{}", stderr(&bad));

    let sanne_token = server.token("sanne", Role::Resident, Some("p-sanne"));
    ok(&regie(
        &sanne,
        &["login", "--server", &server.url, "--token", &sanne_token],
    )
    .await);
    ok(&regie_as(&sanne, &sanne_token, &["sync"]).await);
    let goal = ok(&regie_as(
        &sanne,
        &sanne_token,
        &["plan", "add-goal", &dossier, "--title", "Rust"],
    )
    .await);
    // R8: a resident may add a goal, but not say who owns it.
    let refused = regie_as(
        &sanne,
        &sanne_token,
        &["plan", "edit", &dossier, goal.trim(), "--owner", "worker"],
    )
    .await;
    assert_eq!(refused.status.code(), Some(5), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("path_reserved"),
        "{}",
        stderr(&refused)
    );
    let missing = regie_as(&sanne, &sanne_token, &["show", &dossier, "--doc", "record"]).await;
    assert_eq!(missing.status.code(), Some(6), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("regie sync"));
    let unknown = regie_as(&sanne, &sanne_token, &["show", "ffff"]).await;
    assert_eq!(unknown.status.code(), Some(6));

    server.stop().await;
    let offline = regie_as(&sanne, &sanne_token, &["sync", "--attempts", "2"]).await;
    assert_eq!(offline.status.code(), Some(4), "{}", stderr(&offline));
    assert!(
        stderr(&offline).contains("kept on this device"),
        "{}",
        stderr(&offline)
    );
    // Offline the store cannot be unlocked (the server releases the key): status says so and
    // shows what is kept in the clear.
    let status = ok(&regie_as(&sanne, &sanne_token, &["status"]).await);
    assert!(status.contains("User:       sanne (resident)"), "{status}");
    assert!(
        status.contains("locked") && status.contains("cannot be reached"),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_at_any_moment_leaves_a_store_the_next_sync_completes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server")).await;
    let mut dossiers = Vec::new();
    for i in 0..25 {
        let person = format!("p-{i}");
        dossiers.push(server.household_of(&[(&person, "Iemand")], false).await);
    }
    let anna = dir.path().join("anna");
    let anna_token = server.token("anna", Role::Worker, None);
    ok(&regie(
        &anna,
        &["login", "--server", &server.url, "--token", &anna_token],
    )
    .await);
    for wait in [5, 40, 120] {
        let mut child = command(&anna)
            .env("REGIE_TOKEN", &anna_token)
            .args(["sync"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(wait)).await;
        // SIGKILL: no destructor, no rollback handler, nothing but SQLite's own transactions.
        child.start_kill().unwrap();
        let _ = child.wait().await;
        let goal = regie_as(
            &anna,
            &anna_token,
            &["plan", "add-goal", &dossiers[0], "--title", "na de kill"],
        )
        .await;
        // Either the plan had arrived before the kill (the edit works) or it had not (exit 6).
        assert!(
            matches!(goal.status.code(), Some(0 | 6)),
            "{}",
            stderr(&goal)
        );
    }
    let out = ok(&regie_as(&anna, &anna_token, &["sync"]).await);
    assert!(out.contains("Synced 75 documents"), "{out}");
    let status = ok(&regie_as(&anna, &anna_token, &["status"]).await);
    assert!(status.contains("75 listed, 75 on this device"), "{status}");
    assert!(status.contains("0 local changes"), "{status}");
    for d in &dossiers {
        ok(&regie_as(&anna, &anna_token, &["show", d]).await);
    }
    server.stop().await;
}
