//! The `regie-server` binary as a process: the demo command, graceful shutdown on SIGTERM,
//! durable acknowledgement across SIGKILL (I4) — of one instance, and of one of three instances
//! on one PostgreSQL database (issue 17) — and the audit verifier on the command line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, transaction::Transactable};
use regie_sync_protocol::DocumentId;
use regie_testkit::Peer;
use serde_json::{Value, json};

const SECRET: &str = "process-test-secret-long-enough-for-hs256";
const BIN: &str = env!("CARGO_BIN_EXE_regie-server");

/// Kills the child when the test ends, however it ends.
struct Server(Child, SocketAddr);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `regie-server <args>` in `cwd` and waits for its "listening on" line.
fn spawn(cwd: &Path, args: &[&str]) -> Server {
    spawn_with(cwd, args, &[])
}

/// [`spawn`] with more environment variables.
fn spawn_with(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    regie_server::install_crypto_provider();
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .env("REGIE_JWT_SECRET", SECRET)
        .env("REGIE_JWT_ISSUER", "regie-test")
        .env("REGIE_JWT_AUDIENCE", "regie")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the server binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap()
                        .parse::<SocketAddr>()
                        .unwrap(),
                );
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server reports its address");
    Server(child, addr)
}

fn token(claims: Value) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut c = claims;
    c["exp"] = json!(now + 600);
    c["nbf"] = json!(now - 5);
    c["iss"] = json!("regie-test");
    c["aud"] = json!("regie");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &c,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn worker() -> String {
    token(json!({ "sub": "anna", "role": "worker", "district": "noord", "team": "t1" }))
}

async fn create_dossier(addr: SocketAddr) -> DocumentId {
    let res: Value = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/dossiers"))
        .bearer_auth(worker())
        .json(&json!({ "district": "noord", "team": "t1" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    DocumentId::from_url(res["documents"]["plan"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn every_acknowledged_change_survives_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let server = spawn(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", data_arg],
    );
    let plan = create_dossier(server.1).await;
    let mut peer = open(server.1, plan, &worker(), "goals").await;
    let goals = peer.doc(plan).get(ROOT, "goals").unwrap().unwrap().1;

    // Stream edits; an edit is acknowledged once the server announces heads that include it.
    let mut hashes = Vec::new();
    let mut acked = 0;
    let mut server = Some(server);
    for i in 0..400 {
        let d = peer.doc(plan);
        let g = d.insert_object(&goals, i, ObjType::Map).unwrap();
        d.put(&g, "id", format!("g{i}")).unwrap();
        d.put(&g, "title", format!("doel {i}")).unwrap();
        hashes.push(d.commit().unwrap());
        peer.push(plan).await;
        peer.settle(Duration::from_millis(2)).await;
        if peer.closed {
            break;
        }
        let announced = peer.server_heads(plan);
        if let Some(last) = hashes.iter().rposition(|h| announced.contains(h)) {
            acked = acked.max(last + 1);
        }
        // Pull the plug in the middle of the stream, without warning.
        if i == 150 {
            drop(server.take());
        }
    }
    assert!(
        acked > 10,
        "the server acknowledged too little to prove anything ({acked})"
    );

    let server = spawn(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", data_arg],
    );
    let mut fresh = Peer::connect(&server.1, &worker()).await.unwrap();
    fresh.request(plan).await;
    let acknowledged = &hashes[..acked];
    fresh
        .wait_for(plan, |d| {
            acknowledged
                .iter()
                .all(|h| ReadDoc::get_change_by_hash(d, h).is_some())
        })
        .await;
    let lost: Vec<usize> = (0..acked)
        .filter(|i| ReadDoc::get_change_by_hash(fresh.doc(plan), &hashes[*i]).is_none())
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged edits lost after SIGKILL: {lost:?} of {acked}"
    );
}

/// Connects with `token`, requests `doc` and waits until its root has `key`.
async fn open(addr: SocketAddr, doc: DocumentId, token: &str, key: &str) -> Peer {
    let mut peer = Peer::connect(&addr, token).await.unwrap();
    peer.request(doc).await;
    assert!(
        peer.wait_for(doc, |d| d.get(ROOT, key).unwrap().is_some())
            .await,
        "{key} of {doc:?} did not arrive"
    );
    peer
}

/// The ids of the entries in a `record` or `view/<person>` (of those about `person` for a record).
fn entry_ids(doc: &AutoCommit, person: Option<&str>) -> std::collections::BTreeSet<String> {
    let Some((_, entries)) = doc.get(ROOT, "entries").unwrap() else {
        return Default::default();
    };
    let text = |obj: &automerge::ObjId, key: &str| match doc.get(obj, key).unwrap() {
        Some((automerge::Value::Scalar(s), _)) => s.as_str().map(str::to_owned),
        Some((automerge::Value::Object(_), id)) => doc.text(&id).ok(),
        None => None,
    };
    (0..doc.length(&entries))
        .filter_map(|i| {
            let e = doc.get(&entries, i).unwrap().unwrap().1;
            let about = match (person, doc.get(&e, "subjects").unwrap()) {
                (None, _) => true,
                (Some(p), Some((_, subjects))) => (0..doc.length(&subjects)).any(|j| {
                    doc.get(&subjects, j)
                        .unwrap()
                        .is_some_and(|(v, _)| v.as_str() == Some(p))
                }),
                (Some(_), None) => false,
            };
            about.then(|| text(&e, "id")).flatten()
        })
        .collect()
}

#[tokio::test]
async fn a_resident_view_holds_every_record_entry_about_her_after_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let args = ["serve", "--listen", "127.0.0.1:0", "--data-dir", data_arg];
    let server = spawn(dir.path(), &args);
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("http://{}/api/v1/dossiers", server.1))
        .bearer_auth(worker())
        .json(&json!({
            "district": "noord", "team": "t1",
            "persons": [{ "id": "p-sanne", "name": "Sanne", "birth_date": "1988-03-14" },
                        { "id": "p-daan", "name": "Daan", "birth_date": "2015-06-01" }],
            "resident_agreed": true, "agreed_on": "2026-11-01",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dossier = created["id"].as_str().unwrap();
    let record = DocumentId::from_url(created["documents"]["record"].as_str().unwrap()).unwrap();
    let linked: Value = client
        .post(format!(
            "http://{}/api/v1/dossiers/{dossier}/residents",
            server.1
        ))
        .bearer_auth(worker())
        .json(&json!({ "person": "p-sanne" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let view = DocumentId::from_url(linked["url"].as_str().unwrap()).unwrap();

    let mut peer = open(server.1, record, &worker(), "entries").await;
    let entries = peer.doc(record).get(ROOT, "entries").unwrap().unwrap().1;
    let mut server = Some(server);
    for i in 0..300 {
        let d = peer.doc(record);
        let at = d.length(&entries);
        let e = d.insert_object(&entries, at, ObjType::Map).unwrap();
        d.put(&e, "id", format!("e{i}")).unwrap();
        d.put(&e, "kind", "opinion").unwrap();
        d.put(&e, "category", "work_note").unwrap();
        let s = d.put_object(&e, "subjects", ObjType::List).unwrap();
        // Most entries are about her; some about her child, which her view must not hold.
        d.insert(&s, 0, if i % 5 == 4 { "p-daan" } else { "p-sanne" })
            .unwrap();
        let t = d.put_object(&e, "text", ObjType::Text).unwrap();
        d.splice_text(&t, 0, 0, &format!("notitie {i}")).unwrap();
        d.commit();
        peer.push(record).await;
        peer.settle(Duration::from_millis(2)).await;
        if peer.closed {
            break;
        }
        if i == 120 {
            drop(server.take());
        }
    }

    let server = spawn(dir.path(), &args);
    let mut worker_peer = open(server.1, record, &worker(), "entries").await;
    assert!(
        worker_peer.wait_in_sync(record).await,
        "the record arrives whole"
    );
    let about_her = entry_ids(worker_peer.doc(record), Some("p-sanne"));
    assert!(
        about_her.len() > 10,
        "too few entries committed to prove anything"
    );
    let resident = token(json!({ "sub": "sanne", "role": "resident", "person": "p-sanne" }));
    let mut sanne = Peer::connect(&server.1, &resident).await.unwrap();
    sanne.request(view).await;
    let caught_up = sanne
        .wait_for(view, |d| entry_ids(d, None) == about_her)
        .await;
    assert!(
        caught_up,
        "her view holds exactly the entries the record holds about her: {:?} vs {about_her:?}",
        entry_ids(sanne.doc(view), None)
    );
}

#[tokio::test]
async fn the_demo_command_prints_and_writes_a_token_and_documents_per_role() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(dir.path(), &["demo", "--listen", "127.0.0.1:0"]);
    let demo: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("regie-demo.json")).unwrap())
            .unwrap();
    let cast = regie_server::demo::cast();
    assert_eq!(
        demo["roles"].as_object().unwrap().len(),
        cast.len(),
        "one entry per member of the demo cast"
    );
    for (role, claims) in &cast {
        assert_eq!(demo["roles"][role]["user"], claims.sub.as_str(), "{role}");
        assert!(
            demo["roles"][role]["token"]
                .as_str()
                .is_some_and(|t| t.len() > 20),
            "{role}"
        );
    }
    let keys = |role: &str| -> Vec<String> {
        demo["roles"][role]["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        keys("worker"),
        ["maatwerk/1", "meta", "partner/ggd", "plan", "record"]
    );
    assert_eq!(keys("resident"), ["maatwerk/1", "plan", "view/p-sanne"]);
    assert_eq!(keys("backoffice"), ["maatwerk/1"]);
    assert_eq!(keys("partner"), ["partner/ggd"]);
    assert!(keys("manager").is_empty());
    // The token works against the running server.
    let token = demo["roles"]["resident"]["token"].as_str().unwrap();
    let res = reqwest::Client::new()
        .get(format!("http://{}/api/v1/me/documents", server.1))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // SIGTERM shuts it down cleanly.
    let mut server = server;
    Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    let status = server.0.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

#[tokio::test]
async fn verify_audit_on_the_command_line_finds_a_tampered_row() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    {
        let server = spawn(
            dir.path(),
            &["serve", "--listen", "127.0.0.1:0", "--data-dir", data_arg],
        );
        create_dossier(server.1).await;
        create_dossier(server.1).await;
    }
    let verify = || {
        Command::new(BIN)
            .args(["verify-audit", "--data-dir", data_arg])
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Two dossiers: each its creation and its data key's creation.
    assert!(String::from_utf8_lossy(&ok.stdout).contains("intact: 4 rows"));

    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        data.join("regie.sqlite3").display()
    ))
    .await
    .unwrap();
    sqlx::query("DROP TRIGGER audit_is_append_only_update")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit SET actor = 'someone-else' WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let broken = verify();
    assert!(!broken.status.success());
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("broken at row 2"),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
}

/// A device of the cluster test: its connection, the instance it is on, and its own changes in
/// order with how many of them the server acknowledged.
struct Device {
    peer: Peer,
    instance: usize,
    goal: Option<automerge::ObjId>,
    hashes: Vec<automerge::ChangeHash>,
    acked: usize,
}

impl Device {
    /// Counts the changes the server's announced heads now include.
    fn note_acks(&mut self, plan: DocumentId) {
        let announced = self.peer.server_heads(plan);
        if let Some(last) = self.hashes.iter().rposition(|h| announced.contains(h)) {
            self.acked = self.acked.max(last + 1);
        }
    }
}

#[tokio::test]
async fn three_instances_on_one_postgres_lose_no_acknowledged_change_when_one_is_killed() {
    use regie_testkit::postgres::{FreshDatabase, TestDatabase, test_database};
    if test_database() != TestDatabase::Postgres {
        eprintln!("skipped: several instances need REGIE_TEST_DATABASE=postgres");
        return;
    }
    let database = FreshDatabase::new().await;
    // Instances on one database share the key-encryption key (DEPLOYMENT.md).
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let env = [("REGIE_KEY", key.as_str())];
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &database.url,
    ];
    let mut servers: Vec<Option<Server>> = dirs
        .iter()
        .map(|d| Some(spawn_with(d.path(), &args, &env)))
        .collect();
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.as_ref().unwrap().1).collect();
    let plan = create_dossier(addrs[0]).await;

    // Two devices on each instance, all editing the one plan.
    let mut devices = Vec::new();
    for n in 0..6 {
        devices.push(Device {
            peer: open(addrs[n % 3], plan, &worker(), "goals").await,
            instance: n % 3,
            goal: None,
            hashes: Vec::new(),
            acked: 0,
        });
    }
    const KILLED: usize = 1;
    let mut acked_before_kill = [0; 6];
    let mut dropped_by_live = 0;
    for round in 0..100 {
        for (n, dev) in devices.iter_mut().enumerate() {
            // Each device adds one goal (the plan holds at most 200) and rewords it from then on.
            let d = dev.peer.doc(plan);
            let goal = match &dev.goal {
                Some(g) => g.clone(),
                None => {
                    let goals = d.get(ROOT, "goals").unwrap().unwrap().1;
                    let g = d.insert_object(&goals, 0, ObjType::Map).unwrap();
                    d.put(&g, "id", format!("d{n}")).unwrap();
                    dev.goal = Some(g.clone());
                    g
                }
            };
            d.put(
                &goal,
                "title",
                format!("doel van apparaat {n}, versie {round}"),
            )
            .unwrap();
            dev.hashes.push(d.commit().unwrap());
            dev.peer.push(plan).await;
        }
        for (n, dev) in devices.iter_mut().enumerate() {
            dev.peer.settle(Duration::from_millis(2)).await;
            dev.note_acks(plan);
            // A device whose instance is gone carries on with another one, with everything it
            // holds (acknowledged or not), as a tablet's automerge-repo does.
            // (A live instance may close a connection too: a batch that loses the race for
            // its document more often than the server retries ends the session. The device
            // then reconnects to the same instance.)
            if dev.peer.closed {
                let to = if servers[dev.instance].is_some() {
                    dropped_by_live += 1;
                    dev.instance
                } else {
                    acked_before_kill[n] = dev.acked;
                    (KILLED + 1) % 3
                };
                let held = dev.peer.docs.remove(&plan).unwrap().0;
                let mut peer = Peer::connect(&addrs[to], &worker()).await.unwrap();
                peer.docs
                    .insert(plan, (held, automerge::sync::State::new()));
                peer.request(plan).await;
                dev.peer = peer;
                dev.instance = to;
            }
        }
        // Pull the plug of one instance in the middle of the stream, without warning.
        if round == 40 {
            drop(servers[KILLED].take());
        }
    }
    eprintln!("connections closed by live instances: {dropped_by_live}");
    for dev in &mut devices {
        // In sync: the instance announced heads that cover everything the device holds.
        assert!(dev.peer.wait_in_sync(plan).await, "every device catches up");
        dev.acked = dev.hashes.len();
    }
    for (n, dev) in devices.iter().enumerate() {
        if n % 3 == KILLED {
            assert_ne!(dev.instance, KILLED, "device {n} moved to another instance");
            assert!(
                acked_before_kill[n] > 0 && dev.acked > acked_before_kill[n],
                "device {n} continued on another instance: {} acknowledged before the kill, {} of {} after",
                acked_before_kill[n],
                dev.acked,
                dev.hashes.len()
            );
        }
    }

    // Read back through the instance no device moved to.
    let reader = (KILLED + 2) % 3;
    let mut fresh = Peer::connect(&addrs[reader], &worker()).await.unwrap();
    fresh.request(plan).await;
    let acknowledged: Vec<_> = devices
        .iter()
        .flat_map(|dev| dev.hashes[..dev.acked].iter().copied())
        .collect();
    fresh
        .wait_for(plan, |d| {
            acknowledged
                .iter()
                .all(|h| ReadDoc::get_change_by_hash(d, h).is_some())
        })
        .await;
    let lost: Vec<_> = devices
        .iter()
        .enumerate()
        .flat_map(|(n, dev)| {
            let doc = fresh.docs.get(&plan).map(|(d, _)| d);
            (0..dev.acked)
                .filter(move |i| {
                    doc.is_none_or(|d| ReadDoc::get_change_by_hash(d, &dev.hashes[*i]).is_none())
                })
                .map(move |i| (n, i))
        })
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged changes (device, index) lost after a SIGKILL of one of three instances: {lost:?}"
    );

    drop(servers);
    let verify = Command::new(BIN)
        .args(["verify-audit", "--database-url", &database.url])
        .env("REGIE_KEY", &key)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "the audit chain of the shared database is intact: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
