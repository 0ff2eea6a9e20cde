//! Interop with the real thing: an unmodified `@automerge/automerge-repo` 2.x client in Node
//! (`tests/js/resident.mjs`, WebSocketClientAdapter, no storage) syncs with the server exactly as
//! a resident's app would, next to a Rust worker peer. A second unmodified peer, the Rust `samod`
//! repo (automerge-repo compatible, in-memory storage, dialing through [`RustlsDialer`]), does the
//! same exchange in-process.
//!
//! The JS test needs `node` and `npm` on PATH (it says so and passes vacuously without them);
//! it installs `tests/js/node_modules` with `npm install --no-audit --no-fund` when it is missing.
//! Set `DEBUG=automerge-repo:*` to see the JS repo's own logging in the failure output.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use automerge::{AutoCommit, ROOT, ReadDoc, transaction::Transactable};
use futures_util::StreamExt;
use regie_sync_protocol::DocumentId;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::js::{ensure_node_modules, js_dir, on_path};
use crate::support::*;

/// What the worker writes into the plan's `hulpvraag`; the JS client waits for it.
const MARKER: &str = "WORKER-MARKER-5c1e: samen de schulden aanpakken";
/// The title of the goal the JS client adds to the plan.
const GOAL_TITLE: &str = "Zelf de post bijhouden (uit de JS-client)";
/// The title of the goal the samod repo adds to the plan.
const SAMOD_GOAL_TITLE: &str = "Zelf de post bijhouden (uit samod)";
/// The id the samod repo gives its goal.
const SAMOD_GOAL_ID: &str = "g-resident-samod";
/// The id the JS client gives its goal (fixed in `resident.mjs`).
const GOAL_ID: &str = "g-resident-js";
/// The whole exchange, Node start-up included, must finish within this.
const OVERALL: Duration = Duration::from_secs(60);

/// The running Node client: its stdout lines as they come, its stderr collected to the end.
struct JsPeer {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every stdout line read so far.
    seen: Vec<String>,
    stderr: JoinHandle<String>,
}

impl JsPeer {
    fn spawn(dir: &Path, args: &[String]) -> JsPeer {
        let mut child = Command::new("node")
            .arg("resident.mjs")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let (tx, lines) = mpsc::unbounded_channel();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s).await;
            s
        });
        JsPeer {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// The next stdout line, which must be `want`.
    async fn expect(&mut self, want: &str, within: Duration) -> anyhow::Result<()> {
        let line = tokio::time::timeout(within, self.lines.recv())
            .await
            .map_err(|_| anyhow!("no {want} from the JS client within {within:?}"))?
            .ok_or_else(|| anyhow!("the JS client's stdout closed before {want}"))?;
        self.seen.push(line.clone());
        ensure!(
            line == want,
            "expected {want} from the JS client, got {line}"
        );
        Ok(())
    }

    /// Reads stdout to its end and waits for the process to exit successfully.
    async fn finish(&mut self) -> anyhow::Result<()> {
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        let status = self.child.wait().await.context("waiting for node")?;
        ensure!(status.success(), "the JS client exited with {status}");
        Ok(())
    }
}

/// The `(id, title)` of every goal in a plan; ids and titles may be Text or scalar strings.
fn goals(doc: &AutoCommit) -> Vec<(String, String)> {
    let Some((_, list)) = doc.get(ROOT, "goals").unwrap() else {
        return Vec::new();
    };
    (0..doc.length(&list))
        .filter_map(|i| {
            let (_, goal) = doc.get(&list, i).unwrap()?;
            Some((
                field_text(doc, &goal, "id").unwrap_or_default(),
                field_text(doc, &goal, "title").unwrap_or_default(),
            ))
        })
        .collect()
}

fn field_text(doc: &AutoCommit, obj: &automerge::ObjId, key: &str) -> Option<String> {
    let (v, id) = doc.get(obj, key).ok()??;
    match v {
        automerge::Value::Object(automerge::ObjType::Text) => doc.text(&id).ok(),
        automerge::Value::Scalar(s) => s.as_str().map(str::to_owned),
        _ => None,
    }
}

/// The exchange itself; any error fails the test with the JS client's output attached.
async fn exchange(server: &TestServer, plan: DocumentId, js: &mut JsPeer) -> anyhow::Result<()> {
    js.expect("PLAN_OK", Duration::from_secs(30)).await?;

    let mut worker = Peer::connect(server, &server.token("worker"))
        .await
        .map_err(|s| anyhow!("worker refused with HTTP {s}"))?;
    worker.request(plan).await;
    ensure!(
        worker
            .wait_for(plan, |d| d.get(ROOT, "hulpvraag").unwrap().is_some())
            .await,
        "the worker never got the plan"
    );
    worker
        .edit(plan, |d| {
            let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
            d.splice_text(&h, 0, 0, MARKER).unwrap();
        })
        .await;

    // Answer the server until the edit has gone out; the worker need not listen meanwhile (what
    // the server sends it waits in the socket until `wait_for` below).
    worker.settle(Duration::from_millis(200)).await;

    js.expect("SAW_WORKER_EDIT", PATIENCE).await?;
    js.expect("RECORD_UNAVAILABLE", PATIENCE).await?;
    js.expect("RESIDENT_EDITED", PATIENCE).await?;
    js.finish().await?;

    worker_receives_goal(&mut worker, plan, (GOAL_ID, GOAL_TITLE), "the resident").await
}

#[tokio::test]
async fn an_unmodified_automerge_repo_client_syncs_the_plan_and_is_refused_the_record() {
    if !on_path("node") || !on_path("npm") {
        eprintln!("SKIPPED: `node` and `npm` must be on PATH for the automerge-repo interop test");
        return;
    }
    let dir = js_dir();
    ensure_node_modules(&dir).await;

    let store = tempfile::tempdir().unwrap();
    let server = TestServer::start(store.path()).await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let args = [
        format!(
            "ws://{}/sync?token={}",
            server.addr,
            server.token("resident")
        ),
        plan.to_url(),
        house.doc("record").to_url(),
        MARKER.to_owned(),
        GOAL_TITLE.to_owned(),
    ];

    let started = std::time::Instant::now();
    let mut js = JsPeer::spawn(&dir, &args);
    let outcome = tokio::time::timeout(OVERALL, exchange(&server, plan, &mut js))
        .await
        .unwrap_or_else(|_| Err(anyhow!("the exchange took more than {OVERALL:?}")));
    if outcome.is_err() {
        let _ = js.child.start_kill();
    }
    let _ = tokio::time::timeout(PATIENCE, js.child.wait()).await;
    let stderr = tokio::time::timeout(PATIENCE, &mut js.stderr)
        .await
        .map(|s| s.unwrap_or_default())
        .unwrap_or_else(|_| "(stderr did not close)".into());
    let seen = js.seen.clone();
    server.stop().await;

    if let Err(e) = outcome {
        panic!("{e:#}\nJS stdout lines: {seen:?}\n--- node stderr ---\n{stderr}");
    }
    assert!(
        !seen.iter().any(|l| l == "RECORD_LEAKED"),
        "the record reached the resident's client: {seen:?}\n{stderr}"
    );
    assert_eq!(
        seen,
        [
            "PLAN_OK",
            "SAW_WORKER_EDIT",
            "RECORD_UNAVAILABLE",
            "RESIDENT_EDITED"
        ],
        "\n--- node stderr ---\n{stderr}"
    );
    eprintln!(
        "interop exchange took {:?}\n--- node stderr ---\n{stderr}",
        started.elapsed()
    );
}

/// Regie's document id as samod's (the same 16 bytes).
fn samod_id(doc: DocumentId) -> samod::DocumentId {
    samod::DocumentId::try_from(doc.as_bytes().to_vec()).expect("16 bytes are a document id")
}

/// Waits until `pred` holds for the samod handle's document, woken by its change stream.
async fn samod_wait(
    handle: &samod::DocHandle,
    pred: impl Fn(&automerge::Automerge) -> bool,
) -> bool {
    let mut changes = Box::pin(handle.changes());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if handle.with_document(|d| pred(d)) {
            return true;
        }
        match tokio::time::timeout_at(deadline, changes.next()).await {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return handle.with_document(|d| pred(d)),
        }
    }
}

/// A WebSocket failure as samod's transport wants it: an error type of its own.
#[derive(Debug)]
struct WsError(String);

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WsError {}

/// samod's dialer over the workspace's tokio-tungstenite (rustls with ring): samod's own
/// `tungstenite` feature would build native-tls, a second TLS stack (OpenSSL), into the tests.
/// Binary frames are samod's messages; a close ends the stream, as samod's dialer does.
struct RustlsDialer(samod::Url);

impl samod::Dialer for RustlsDialer {
    type Error = std::convert::Infallible;

    fn url(&self) -> samod::Url {
        self.0.clone()
    }

    fn connect(
        &self,
    ) -> futures_util::future::BoxFuture<
        'static,
        Result<samod::Transport, samod::DialError<Self::Error>>,
    > {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message as Ws;
        let url = self.0.clone();
        Box::pin(async move {
            let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .map_err(samod::DialError::transient)?;
            let (sink, stream) = ws.split();
            let stream = stream
                .take_while(|m| std::future::ready(!matches!(m, Ok(Ws::Close(_)))))
                .filter_map(|m| async move {
                    match m {
                        Ok(Ws::Binary(bytes)) => Some(Ok(bytes.to_vec())),
                        Ok(Ws::Text(_)) => Some(Err(WsError("a text frame".into()))),
                        Ok(_) => None,
                        Err(e) => Some(Err(WsError(e.to_string()))),
                    }
                })
                .boxed();
            let sink = sink
                .sink_map_err(|e| WsError(e.to_string()))
                .with(|bytes: Vec<u8>| {
                    std::future::ready(Ok::<_, WsError>(Ws::Binary(bytes.into())))
                });
            Ok(samod::Transport::new(stream, Box::pin(sink)))
        })
    }
}

/// Connects `repo` to the server with cast member `who`'s token, through [`RustlsDialer`].
async fn samod_dial(server: &TestServer, repo: &samod::Repo, who: &str) -> anyhow::Result<()> {
    let url = samod::Url::parse(&format!(
        "ws://{}/sync?token={}",
        server.addr,
        server.token(who)
    ))?;
    let backoff = samod::BackoffConfig {
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        max_retries: Some(3),
    };
    let dialer = repo
        .dial(backoff, std::sync::Arc::new(RustlsDialer(url)))
        .map_err(|_| anyhow!("the samod repo stopped"))?;
    let peer = tokio::time::timeout(PATIENCE, dialer.established())
        .await
        .map_err(|_| anyhow!("samod's dialer did not connect within {PATIENCE:?}"))?
        .map_err(|e| anyhow!("samod's dialer failed: {e:?}"))?;
    eprintln!("samod connected as {who}; the server introduced itself as {peer:?}");
    Ok(())
}

/// Waits until the worker's plan holds the goal `(id, title)` a resident's app added, and still
/// its own hulpvraag edit.
async fn worker_receives_goal(
    worker: &mut Peer,
    plan: DocumentId,
    (id, title): (&str, &str),
    from: &str,
) -> anyhow::Result<()> {
    let arrived = worker
        .wait_for(plan, |d| {
            goals(d).iter().any(|(i, t)| i == id && t == title)
        })
        .await;
    ensure!(
        arrived,
        "{from}'s goal never reached the worker; the worker's plan has goals {:?}",
        goals(worker.doc(plan))
    );
    ensure!(
        root_text(worker.doc(plan), "hulpvraag").is_some_and(|h| h.contains(MARKER)),
        "the worker's own hulpvraag edit is gone"
    );
    Ok(())
}

/// The samod exchange: what `resident.mjs` does, in Rust, against the same server.
async fn samod_exchange(
    server: &TestServer,
    repo: &samod::Repo,
    plan: DocumentId,
    record: DocumentId,
) -> anyhow::Result<()> {
    samod_dial(server, repo, "resident").await?;

    let handle = tokio::time::timeout(PATIENCE, repo.find(samod_id(plan)))
        .await
        .map_err(|_| anyhow!("samod's find of the plan did not resolve within {PATIENCE:?}"))?
        .map_err(|_| anyhow!("the samod repo stopped"))?
        .ok_or_else(|| anyhow!("samod found the plan unavailable"))?;
    ensure!(
        handle.with_document(|d| d.get(ROOT, "hulpvraag").unwrap().is_some()),
        "samod's plan has no hulpvraag"
    );

    let mut worker = Peer::connect(server, &server.token("worker"))
        .await
        .map_err(|s| anyhow!("worker refused with HTTP {s}"))?;
    worker.request(plan).await;
    ensure!(
        worker
            .wait_for(plan, |d| d.get(ROOT, "hulpvraag").unwrap().is_some())
            .await,
        "the worker never got the plan"
    );
    worker
        .edit(plan, |d| {
            let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
            d.splice_text(&h, 0, 0, MARKER).unwrap();
        })
        .await;
    worker.settle(Duration::from_millis(200)).await;
    ensure!(
        samod_wait(&handle, |d| root_text(d, "hulpvraag")
            .is_some_and(|h| h.contains(MARKER)))
        .await,
        "the worker's edit never reached samod; its hulpvraag is {:?}",
        handle.with_document(|d| root_text(d, "hulpvraag"))
    );

    let found = tokio::time::timeout(PATIENCE, repo.find(samod_id(record)))
        .await
        .map_err(|_| anyhow!("samod's find of the record did not resolve within {PATIENCE:?}"))?
        .map_err(|_| anyhow!("the samod repo stopped"))?;
    if let Some(leaked) = found {
        let texts = leaked.with_document(|d| document_texts(d));
        return Err(anyhow!(
            "the record reached the resident's samod repo: {texts:?}"
        ));
    }

    // The resident's own permitted edit: a goal, as the JS client adds it (strings as text).
    handle.with_document(|d| {
        let mut tx = d.transaction();
        let list = tx
            .get(ROOT, "goals")
            .unwrap()
            .expect("the plan has goals")
            .1;
        let at = tx.length(&list);
        let goal = tx
            .insert_object(&list, at, automerge::ObjType::Map)
            .unwrap();
        for (key, value) in [("id", SAMOD_GOAL_ID), ("title", SAMOD_GOAL_TITLE)] {
            let text = tx.put_object(&goal, key, automerge::ObjType::Text).unwrap();
            tx.splice_text(&text, 0, 0, value).unwrap();
        }
        tx.commit();
    });
    worker_receives_goal(
        &mut worker,
        plan,
        (SAMOD_GOAL_ID, SAMOD_GOAL_TITLE),
        "samod",
    )
    .await
}

#[tokio::test]
async fn an_unmodified_samod_repo_syncs_the_plan_and_is_refused_the_record() {
    let store = tempfile::tempdir().unwrap();
    let server = TestServer::start(store.path()).await;
    let house = seed_household(&server).await;
    let repo = samod::Repo::build_tokio().load().await;

    let outcome = tokio::time::timeout(
        OVERALL,
        samod_exchange(&server, &repo, house.doc("plan"), house.doc("record")),
    )
    .await
    .unwrap_or_else(|_| Err(anyhow!("the samod exchange took more than {OVERALL:?}")));
    repo.stop().await;
    server.stop().await;
    if let Err(e) = outcome {
        panic!("{e:#}");
    }
}

/// Every role through samod sees exactly the documents it sees through the harness's peer:
/// `find` resolves the ones its audience includes and none of the others.
#[tokio::test]
async fn an_unmodified_samod_repo_gets_each_roles_documents_and_no_others() {
    let store = tempfile::tempdir().unwrap();
    let server = TestServer::start(store.path()).await;
    let house = seed_household(&server).await;
    for who in ["worker", "resident", "partner", "backoffice", "zuid_worker"] {
        let (mut expected, _, _) = probe(&server, &house, who).await;
        expected.sort();
        let repo = samod::Repo::build_tokio().load().await;
        samod_dial(&server, &repo, who).await.unwrap();
        let mut found = Vec::new();
        for (key, id) in &house.docs {
            let handle = tokio::time::timeout(PATIENCE, repo.find(samod_id(*id)))
                .await
                .unwrap_or_else(|_| panic!("{who}: find({key}) did not resolve"))
                .expect("the repo runs");
            if handle.is_some() {
                found.push(key.clone());
            }
        }
        found.sort();
        repo.stop().await;
        assert_eq!(found, expected, "{who}");
    }
    server.stop().await;
}
