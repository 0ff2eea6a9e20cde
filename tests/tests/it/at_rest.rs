//! Encryption at rest on the server (I6): what a device and the API write is found in no file of
//! the server's (data, write-ahead log, shared memory, key store) nor in a dump of its
//! PostgreSQL database; the store opens and syncs after a restart and after the key-encryption
//! key is rotated; a backup restored after a dossier's destruction yields nothing of it and
//! everything of the others; a stored block altered or moved is refused, not served. On the
//! device (R29): what it writes and receives is sealed with its device key, found in no file of
//! its store while the client reads it back; the key and the token stay in memory and go after
//! the idle time; a store from before encryption loses its token on opening and is sealed at
//! the first login; a purge leaves no byte, plain or sealed, in its files, write-ahead log
//! included; and its key is released per user and device, and destroyed and refused for good
//! once it is reported lost, while the user's other devices and colleagues sync on.

use std::path::Path;
use std::time::Duration;

use regie_client::edit::EntryKind;
use regie_client::{Client, ClientError, LockReason};
use regie_core::id::{DocumentKey, DossierId};
use regie_server::storage::{Kek, StorageError};
use regie_sync_protocol::DocumentId;
use serde_json::{Value, json};

use crate::client::{device, options, stored_texts, sync};
use crate::rights::{report_annas_device_lost, report_annas_tablet_lost};
use crate::support::*;

/// Whether `haystack` holds `needle` as is, or as PostgreSQL's text dump writes bytes (hex).
fn holds(haystack: &[u8], needle: &str) -> bool {
    let hex = hex::encode(needle.as_bytes());
    [needle.as_bytes(), hex.as_bytes()]
        .iter()
        .any(|n| haystack.windows(n.len()).any(|w| w == *n))
}

/// The files of the server's store in `dir` (every file there, the development key-encryption
/// key aside) — or, on PostgreSQL, a plain `pg_dump` of its whole database, key schema
/// included — with their bytes.
async fn stored_bytes(server: &TestServer, dir: &Path) -> Vec<(String, Vec<u8>)> {
    server.state.hub.store().checkpoint().await.unwrap();
    match test_database() {
        TestDatabase::Sqlite => std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && !p.ends_with("regie.kek"))
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect(),
        TestDatabase::Postgres => {
            let url = database_url(dir).await;
            let out = std::process::Command::new("pg_dump")
                .arg("--format=plain")
                .arg(&url)
                .output()
                .expect("pg_dump runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            vec![("pg_dump".into(), out.stdout)]
        }
    }
}

/// The PostgreSQL URL of the store in `dir`.
async fn database_url(dir: &Path) -> String {
    store_args(dir)
        .await
        .database_url
        .expect("a PostgreSQL store")
        .0
}

/// Writes an entry with `text` to the household's `record` as the worker's device, and waits
/// until the server holds it.
async fn write_entry(server: &TestServer, record: DocumentId, id: &str, text: &str) {
    let mut worker = Peer::open(server, "worker", record, "entries").await;
    worker
        .edit(record, |d| entry(d, id, &["p-sanne"], text))
        .await;
    assert!(
        worker.wait_in_sync(record).await,
        "the server holds the entry"
    );
    worker.settle(Duration::from_millis(50)).await;
}

/// Whether a fresh device of the worker receives `record` with `text` in it.
async fn reads(server: &TestServer, record: DocumentId, text: &str) -> bool {
    let mut peer = Peer::connect(server, &server.token("worker"))
        .await
        .unwrap();
    peer.request(record).await;
    peer.wait_for(record, |d| view_texts(d).iter().any(|t| t.contains(text)))
        .await
}

/// Whether the worker's device is refused `record` (answered `doc-unavailable`) and receives
/// nothing of `text`.
async fn refused(server: &TestServer, record: DocumentId, text: &str) -> bool {
    let mut peer = Peer::connect(server, &server.token("worker"))
        .await
        .unwrap();
    peer.request(record).await;
    peer.settle(Duration::from_millis(300)).await;
    peer.unavailable().contains(&record) && !peer.saw(text)
}

#[tokio::test]
async fn a_sentinel_written_through_the_api_and_through_a_device_is_in_no_file_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    const BY_API: &str = "Zwaluwstaart-Api-7731";
    const BY_DEVICE: &str = "Kwikstaart-Tablet-4410";
    let house = create_dossier(
        &server,
        json!([{ "id": "p-sanne", "name": BY_API, "birth_date": "1988-03-14" }]),
    )
    .await;
    let record = house.doc("record");
    write_entry(&server, record, "e-sentinel", BY_DEVICE).await;
    // What would lie on the disk without encryption: the sentinels in the plain blocks.
    let stored = server
        .state
        .hub
        .store()
        .load_document(record)
        .await
        .unwrap();
    let plain: Vec<u8> = stored
        .snapshot
        .iter()
        .chain(&stored.changes)
        .flatten()
        .copied()
        .collect();
    assert!(
        holds(&plain, BY_DEVICE),
        "the device's entry is stored as it is written"
    );
    assert!(reads(&server, record, BY_DEVICE).await);
    let meta = server
        .state
        .hub
        .store()
        .load_document(house.doc("meta"))
        .await
        .unwrap();
    assert!(
        meta.snapshot
            .iter()
            .chain(&meta.changes)
            .any(|b| holds(b, BY_API)),
        "the name given to the API is stored in meta"
    );

    let files = stored_bytes(&server, dir.path()).await;
    assert!(
        files
            .iter()
            .any(|(name, _)| name.ends_with("regie-keys.sqlite3"))
            || test_database() == TestDatabase::Postgres
    );
    for (name, bytes) in &files {
        for sentinel in [BY_API, BY_DEVICE] {
            assert!(!holds(bytes, sentinel), "{sentinel} found in {name}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn the_store_opens_and_syncs_after_a_restart_and_after_the_key_encryption_key_is_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let record = house.doc("record");
    write_entry(&server, record, "e-before", "voor de herstart").await;
    server.stop().await;

    let server = TestServer::start(dir.path()).await;
    assert!(
        reads(&server, record, "voor de herstart").await,
        "after a restart"
    );
    server.stop().await;

    // Rotation: the data keys are wrapped again with a new key-encryption key, which the
    // server is then configured with (here: the development key file in the directory).
    let keys = tempfile::tempdir().unwrap();
    let new = Kek::generate(&keys.path().join("new.kek")).unwrap();
    let old_text = std::fs::read_to_string(dir.path().join("regie.kek")).unwrap();
    let store = open_store(dir.path()).await;
    let old_id = store.kek_id().to_owned();
    let rewrapped = store.rotate_kek(&new).await.unwrap();
    assert!(rewrapped >= 1, "the dossier's key was re-wrapped");
    let rotation = store.audit_events(None).await.unwrap();
    let logged = rotation.last().unwrap().1.detail.clone().unwrap();
    assert!(
        logged.contains(&old_id) && logged.contains(new.id()),
        "{logged}"
    );
    store.close().await;

    // With the old key the store refuses to unwrap, naming key ids and no key.
    let store = open_store(dir.path()).await;
    let err = store
        .load_document(record)
        .await
        .err()
        .expect("the old key no longer opens it");
    let said = err.to_string();
    assert!(
        said.contains(new.id()) && !said.contains(old_text.trim()),
        "{said}"
    );
    store.close().await;

    std::fs::copy(keys.path().join("new.kek"), dir.path().join("regie.kek")).unwrap();
    let server = TestServer::start(dir.path()).await;
    assert!(
        reads(&server, record, "voor de herstart").await,
        "after the rotation"
    );
    write_entry(&server, record, "e-after", "na de rotatie").await;
    server.stop().await;
    let server = TestServer::start(dir.path()).await;
    assert!(reads(&server, record, "na de rotatie").await);
    server.stop().await;
}

#[tokio::test]
async fn a_backup_restored_beside_the_current_key_store_yields_nothing_of_a_destroyed_dossier() {
    if test_database() != TestDatabase::Sqlite {
        eprintln!("SQLite only: a PostgreSQL store is backed up with pg_dump (DEPLOYMENT.md)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (gone, kept) = (seed_household(&server).await, seed_household(&server).await);
    write_entry(&server, gone.doc("record"), "e-gone", "Vernietigd-Geheim").await;
    write_entry(&server, kept.doc("record"), "e-kept", "Bewaard-Verslag").await;
    // Free text of each, sealed with its dossier's key: a request's details, and on the
    // destroyed one a break-glass reason too (loaded with its relationships on every start).
    let mut requests = Vec::new();
    for (house, details) in [
        (&gone, "Vernietigd-Verzoek-5150"),
        (&kept, "Bewaard-Verzoek-5151"),
    ] {
        let (status, filed) = crate::rights::file_as(
            &server,
            "resident",
            &house.id,
            json!({ "kind": "erasure", "details": details }),
        )
        .await;
        assert_eq!(status, 201, "{filed}");
        requests.push(filed["id"].as_str().unwrap().to_owned());
    }
    let colleague = server.token("colleague");
    let (_, warned) = crate::oversight::break_glass(
        &server,
        &colleague,
        &gone.id,
        json!({ "reason": "Vernietigd-Glas-5152", "category": "crisis" }),
    )
    .await;
    let (status, _) = crate::oversight::break_glass(
        &server,
        &colleague,
        &gone.id,
        json!({ "confirmation": warned["confirmation"] }),
    )
    .await;
    assert_eq!(status, 201);
    // Online: the server keeps serving while the copy is made.
    let backup = dir.path().join("backup.sqlite3");
    server.state.hub.store().backup(&backup).await.unwrap();
    server.stop().await;
    let copy = std::fs::read(&backup).unwrap();
    for text in [
        "Vernietigd-Verzoek-5150",
        "Bewaard-Verzoek-5151",
        "Vernietigd-Glas-5152",
    ] {
        assert!(!holds(&copy, text), "{text} is in the backup");
    }

    let store = open_store(dir.path()).await;
    let dossier = gone.id.parse().unwrap();
    let key_id = {
        let made = store.audit_events(Some(dossier)).await.unwrap();
        let created = made
            .iter()
            .find(|(_, e)| e.action == "key")
            .expect("the key's creation is in the audit log");
        let detail = created.1.detail.clone().unwrap();
        detail.split_whitespace().nth(2).unwrap().to_owned()
    };
    let proof = store
        .destroy_dossier(dossier, "erasure", time::OffsetDateTime::now_utc(), |p| {
            let mut ev = regie_server::audit::AuditEvent::new(
                time::OffsetDateTime::now_utc(),
                "regie-server",
                "system",
                regie_server::audit::AuditAction::Destroy,
            );
            ev.dossier = Some(p.dossier.clone());
            ev
        })
        .await
        .unwrap();
    assert_eq!(
        proof.key_id.as_deref(),
        Some(key_id.as_str()),
        "the proof names the key"
    );
    store.close().await;

    // The backup comes back beside the current key store.
    for f in ["regie.sqlite3-wal", "regie.sqlite3-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    std::fs::rename(&backup, dir.path().join("regie.sqlite3")).unwrap();
    let server = TestServer::start(dir.path()).await;
    let store = server.state.hub.store();
    assert!(matches!(
        store.load_document(gone.doc("record")).await,
        Err(StorageError::KeyDestroyed(id)) if id == key_id
    ));
    assert!(refused(&server, gone.doc("record"), "Vernietigd-Geheim").await);
    assert!(
        reads(&server, kept.doc("record"), "Bewaard-Verslag").await,
        "the others decrypt"
    );
    // The register keeps both requests; the destroyed dossier's words are gone with its key.
    let details: Vec<String> = store
        .rights_requests(regie_server::storage::rights::RightsQuery::All)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| requests.contains(&r.id))
        .map(|r| r.details)
        .collect();
    assert_eq!(details.len(), 2, "{details:?}");
    assert!(details.contains(&regie_server::storage::keys::DESTROYED_TEXT.to_owned()));
    assert!(details.contains(&"Bewaard-Verzoek-5151".to_owned()));
    let now = time::OffsetDateTime::now_utc();
    let grants = store
        .grants_between(now - time::Duration::days(1), now + time::Duration::days(1))
        .await
        .unwrap();
    assert!(
        grants.iter().any(|(d, g)| d.to_string() == gone.id
            && g.reason == regie_server::storage::keys::DESTROYED_TEXT),
        "{grants:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_stored_block_altered_or_moved_is_detected_and_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (house, other) = (seed_household(&server).await, seed_household(&server).await);
    let (record, plan) = (house.doc("record"), house.doc("plan"));
    write_entry(&server, other.doc("record"), "e-other", "Ander-Dossier").await;
    write_entry(&server, record, "e-1", "Eerste-Notitie").await;
    write_entry(&server, record, "e-2", "Tweede-Notitie").await;
    let mut worker = Peer::open(&server, "worker", plan, "goals").await;
    for n in 0..2 {
        worker
            .edit(plan, |d| {
                use automerge::{ReadDoc, transaction::Transactable};
                let h = d.get(automerge::ROOT, "hulpvraag").unwrap().unwrap().1;
                d.splice_text(&h, n, 0, "x").unwrap();
            })
            .await;
    }
    assert!(worker.wait_in_sync(plan).await);
    drop(worker);
    server.stop().await;

    let pool = database_file(dir.path()).await;
    let (seq, mut bytes): (i64, Vec<u8>) = sqlx::query_as(
        "SELECT seq, bytes FROM changes WHERE document = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(record.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    sqlx::query("UPDATE changes SET bytes = $1 WHERE document = $2 AND seq = $3")
        .bind(&bytes)
        .bind(record.to_string())
        .bind(seq)
        .execute(&pool)
        .await
        .unwrap();
    // In `plan`, the first change's block copied over the second's: each opens alone, not moved.
    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, bytes FROM changes WHERE document = $1 ORDER BY seq")
            .bind(plan.to_string())
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(rows.len() >= 2, "two changes of plan stored");
    sqlx::query("UPDATE changes SET bytes = $1 WHERE document = $2 AND seq = $3")
        .bind(&rows[0].1)
        .bind(plan.to_string())
        .bind(rows[1].0)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let server = TestServer::start(dir.path()).await;
    let store = server.state.hub.store();
    for doc in [record, plan] {
        assert!(
            matches!(
                store.load_document(doc).await,
                Err(StorageError::Tampered {
                    table: "changes",
                    ..
                })
            ),
            "{doc} is reported as tampered with"
        );
    }
    assert!(
        refused(&server, record, "Eerste-Notitie").await,
        "not served"
    );
    assert!(refused(&server, plan, "Eerste-Notitie").await, "not served");
    assert!(
        reads(&server, other.doc("record"), "Ander-Dossier").await,
        "another dossier is served as before"
    );
    server.stop().await;
}

// ---- free text (I6): what people typed, sealed like the documents ---------------------------

/// A sentinel for each kind of free text, planted through the API by [`plant_free_texts`].
const GLASS_REASON: &str = "Glasbreuk-Reden-5521";
const SIGNAL_SUMMARY: &str = "Signaal-Samenvatting-8812";
const SIGNAL_CLOSED: &str = "Sluitreden-Signaal-3390";
const REQUEST_DETAILS: &str = "Verzoek-Details-4471";
const EXTENSION_REASON: &str = "Verlenging-Reden-6604";
const REFUSAL_REASONS: &str = "Weigering-Reden-2290";
const ESCALATION_GROUNDS: &str = "Bezwaar-Gronden-7715";
const ESCALATION_REASONS: &str = "Escalatie-Reden-9921";
const BREACH_WHAT: &str = "Lek-Omschrijving-3318";
const BREACH_MEASURES: &str = "Lek-Maatregel-1207";
const BREACH_REASON: &str = "Lek-Bewoners-5540";
const REVIEW_NOTE: &str = "Review-Notitie-6019";
/// The purpose of the seeded household's GGD share (it must match the resident's consent).
const SHARE_PURPOSE: &str = "dat-informatie";

const FREE_TEXTS: [&str; 13] = [
    GLASS_REASON,
    SIGNAL_SUMMARY,
    SIGNAL_CLOSED,
    REQUEST_DETAILS,
    EXTENSION_REASON,
    REFUSAL_REASONS,
    ESCALATION_GROUNDS,
    ESCALATION_REASONS,
    BREACH_WHAT,
    BREACH_MEASURES,
    BREACH_REASON,
    REVIEW_NOTE,
    SHARE_PURPOSE,
];

/// What [`plant_free_texts`] made: ids to read the texts back by.
struct Planted {
    signal: String,
    closed_signal: String,
    request: String,
    breach: String,
}

/// Types every kind of free text into the API about `house` (a seeded household): a break-glass
/// reason (warned and granted), a signal's summary and another's closing reason, a rights
/// request's details, extension reason, refusal reasons, escalation grounds and the manager's
/// reasons, a breach's description, measures and reason for informing residents, an access
/// review's note, and a partner share's purpose.
async fn plant_free_texts(server: &TestServer, house: &Household) -> Planted {
    let colleague = server.token("colleague");
    let (status, warned) = crate::oversight::break_glass(
        server,
        &colleague,
        &house.id,
        json!({ "reason": GLASS_REASON, "category": "crisis" }),
    )
    .await;
    assert_eq!(status, 200, "{warned}");
    let (status, granted) = crate::oversight::break_glass(
        server,
        &colleague,
        &house.id,
        json!({ "confirmation": warned["confirmation"] }),
    )
    .await;
    assert_eq!(status, 201, "{granted}");

    let signal = crate::signal::register(server, "worker", SIGNAL_SUMMARY).await;
    let closed_signal = crate::signal::register(server, "worker", "wordt gesloten").await;
    let (status, body) = server
        .api(
            &server.token("worker"),
            "POST",
            &format!("/api/v1/signals/{closed_signal}/close"),
            json!({ "reason": SIGNAL_CLOSED }),
        )
        .await;
    assert_eq!(status, 204, "{body}");

    let (status, filed) = crate::rights::file_as(
        server,
        "resident",
        &house.id,
        json!({ "kind": "erasure", "details": REQUEST_DETAILS }),
    )
    .await;
    assert_eq!(status, 201, "{filed}");
    let request = filed["id"].as_str().unwrap().to_owned();
    let today = regie_server::rights::local_day(time::OffsetDateTime::now_utc()).to_string();
    for (who, step, body) in [
        (
            "worker",
            "extension",
            json!({ "months": 1, "reason": EXTENSION_REASON, "told_on": today }),
        ),
        (
            "worker",
            "decision",
            json!({ "verdict": "refused", "reasons": REFUSAL_REASONS, "ground": "retention_duty" }),
        ),
        (
            "resident",
            "escalation",
            json!({ "grounds": ESCALATION_GROUNDS }),
        ),
        (
            "manager",
            "escalation/decision",
            json!({ "verdict": "refused", "reasons": ESCALATION_REASONS }),
        ),
    ] {
        let (status, answer) = crate::rights::act(server, who, &request, step, body).await;
        assert_eq!(status, 200, "{step}: {answer}");
    }

    let officer = server.token("privacy_officer");
    let (status, breach) = server
        .api(
            &officer,
            "POST",
            "/api/v1/breaches",
            json!({ "what": BREACH_WHAT, "source": { "kind": "other" }, "risk": "risk",
                    "measures": BREACH_MEASURES }),
        )
        .await;
    assert_eq!(status, 201, "{breach}");
    let breach = breach["id"].as_str().unwrap().to_owned();
    let (status, notified) = server
        .api(
            &officer,
            "POST",
            &format!("/api/v1/breaches/{breach}/notification"),
            json!({ "authority_notified": true, "inform_residents": false, "reason": BREACH_REASON }),
        )
        .await;
    assert_eq!(status, 200, "{notified}");

    let (status, review) = server
        .api(
            &server.token("manager"),
            "POST",
            "/api/v1/teams/team-noord/access-review",
            json!({ "note": REVIEW_NOTE }),
        )
        .await;
    assert_eq!(status, 201, "{review}");

    let (status, shared) = server
        .api(
            &server.token("worker"),
            "POST",
            &format!("/api/v1/dossiers/{}/partners", house.id),
            json!({ "org": "ggd", "triage": "t-ggd", "purpose": SHARE_PURPOSE,
                    "subjects": ["p-sanne"], "ground": "consent" }),
        )
        .await;
    assert_eq!(status, 201, "{shared}");
    Planted {
        signal,
        closed_signal,
        request,
        breach,
    }
}

/// Every free text `planted` holds, as the API and the store give it back to those allowed.
async fn read_back(server: &TestServer, house: &Household, planted: &Planted) -> String {
    let mut out = String::new();
    for (who, path, part) in [
        ("worker", "/api/v1/signals", ""),
        ("resident", "/api/v1/me/requests", ""),
        ("privacy_officer", "/api/v1/breaches", ""),
        (
            "manager",
            "/api/v1/teams/team-noord/access-review",
            "/last_review",
        ),
    ] {
        let (status, body) = server
            .api(&server.token(who), "GET", path, Value::Null)
            .await;
        assert_eq!(status, 200, "{path}");
        out.push_str(&body.pointer(part).unwrap_or(&Value::Null).to_string());
    }
    // What no route shows whole: through the store, which opens them on read.
    let store = server.state.hub.store();
    let closed = store
        .signal(planted.closed_signal.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    out.push_str(&format!("{:?}", closed.reason));
    let now = time::OffsetDateTime::now_utc();
    let grants = store
        .grants_between(now - time::Duration::days(1), now + time::Duration::days(1))
        .await
        .unwrap();
    out.push_str(&format!("{grants:?}"));
    let shares = store
        .partner_shares(house.id.parse().unwrap())
        .await
        .unwrap();
    out.push_str(&format!("{shares:?}"));
    let requests = store
        .rights_requests(regie_server::storage::rights::RightsQuery::Id(
            &planted.request,
        ))
        .await
        .unwrap();
    out.push_str(&format!("{requests:?}"));
    let breaches = store.breaches().await.unwrap();
    assert!(breaches.iter().any(|b| b.id == planted.breach));
    out.push_str(&format!("{breaches:?}"));
    let _ = &planted.signal;
    out
}

#[tokio::test]
async fn every_free_text_typed_through_the_api_is_in_no_file_of_the_server_yet_read_back_by_those_allowed()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let planted = plant_free_texts(&server, &house).await;
    let read = read_back(&server, &house, &planted).await;
    for text in FREE_TEXTS {
        assert!(read.contains(text), "{text} is read back");
    }
    let files = stored_bytes(&server, dir.path()).await;
    for (name, bytes) in &files {
        for text in FREE_TEXTS {
            assert!(!holds(bytes, text), "{text} found in {name}");
        }
    }
    server.stop().await;

    // After a restart too: the grant's reason is opened when relationships load.
    let server = TestServer::start(dir.path()).await;
    let read = read_back(&server, &house, &planted).await;
    for text in FREE_TEXTS {
        assert!(read.contains(text), "{text} is read back after a restart");
    }
    server.stop().await;
}

#[tokio::test]
async fn free_text_stored_in_plain_before_it_was_sealed_is_sealed_on_start_and_read_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let planted = plant_free_texts(&server, &house).await;
    server.stop().await;

    // A store from before: its free text in plain, and no record of having sealed it.
    let pool = database_file(dir.path()).await;
    for (sql, value, id) in [
        (
            "UPDATE signals SET summary = $1 WHERE id = $2",
            "Oud-Signaal-Plain-1",
            &planted.signal,
        ),
        (
            "UPDATE rights_requests SET details = $1 WHERE id = $2",
            "Oud-Verzoek-Plain-2",
            &planted.request,
        ),
        (
            "UPDATE breaches SET what = $1 WHERE id = $2",
            "Oud-Lek-Plain-3",
            &planted.breach,
        ),
        (
            "UPDATE grants SET reason = $1 WHERE dossier = $2",
            "Oud-Glas-Plain-4",
            &house.id,
        ),
        (
            "UPDATE partners SET purpose = $1 WHERE dossier = $2",
            "Oud-Doel-Plain-5",
            &house.id,
        ),
        (
            "UPDATE access_reviews SET note = $1 WHERE team = $2",
            "Oud-Notitie-Plain-6",
            &"team-noord".to_owned(),
        ),
    ] {
        let n = sqlx::query(sql)
            .bind(value)
            .bind(id)
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected();
        assert!(n >= 1, "{sql}");
    }
    sqlx::query("DELETE FROM server_info WHERE key = 'sealed_free_text'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let olds = [
        "Oud-Signaal-Plain-1",
        "Oud-Verzoek-Plain-2",
        "Oud-Lek-Plain-3",
        "Oud-Glas-Plain-4",
        "Oud-Doel-Plain-5",
        "Oud-Notitie-Plain-6",
    ];

    let server = TestServer::start(dir.path()).await;
    let read = read_back(&server, &house, &planted).await;
    for text in olds {
        assert!(read.contains(text), "{text} is read back once sealed");
    }
    for text in [SIGNAL_CLOSED, REFUSAL_REASONS, BREACH_MEASURES] {
        assert!(
            read.contains(text),
            "{text}, sealed already, is left as it was"
        );
    }
    for (name, bytes) in &stored_bytes(&server, dir.path()).await {
        for text in olds {
            assert!(!holds(bytes, text), "{text} found in {name}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_sealed_free_text_altered_moved_or_put_back_in_plain_is_reported_and_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let planted = plant_free_texts(&server, &house).await;
    let other = crate::signal::register(&server, "worker", "Ander-Signaal-1180").await;
    server.stop().await;

    let pool = database_file(dir.path()).await;
    // One character of a request's sealed details changed.
    let (mut details,): (String,) =
        sqlx::query_as("SELECT details FROM rights_requests WHERE id = $1")
            .bind(&planted.request)
            .fetch_one(&pool)
            .await
            .unwrap();
    let middle = details.len() / 2;
    let flipped = if &details[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    details.replace_range(middle..=middle, flipped);
    // A signal's sealed summary copied over another's: each opens alone, not moved.
    let (summary,): (String,) = sqlx::query_as("SELECT summary FROM signals WHERE id = $1")
        .bind(&planted.signal)
        .fetch_one(&pool)
        .await
        .unwrap();
    for (sql, value, id) in [
        (
            "UPDATE rights_requests SET details = $1 WHERE id = $2",
            details.as_str(),
            planted.request.as_str(),
        ),
        (
            "UPDATE signals SET summary = $1 WHERE id = $2",
            summary.as_str(),
            other.as_str(),
        ),
        (
            "UPDATE breaches SET what = $1 WHERE id = $2",
            "Ingevoegd-In-Plain-2231",
            planted.breach.as_str(),
        ),
    ] {
        sqlx::query(sql)
            .bind(value)
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    let server = TestServer::start(dir.path()).await;
    let store = server.state.hub.store();
    assert!(matches!(
        store
            .rights_requests(regie_server::storage::rights::RightsQuery::Id(
                &planted.request
            ))
            .await,
        Err(StorageError::Tampered {
            table: "rights_requests",
            ..
        })
    ));
    assert!(matches!(
        store.signal(other.parse().unwrap()).await,
        Err(StorageError::Tampered {
            table: "signals",
            ..
        })
    ));
    assert!(matches!(
        store.breaches().await,
        Err(StorageError::Tampered {
            table: "breaches",
            ..
        })
    ));
    // Not served: the API answers with an error and none of the texts.
    for (token, path) in [
        (server.token("resident"), "/api/v1/me/requests"),
        (server.token("privacy_officer"), "/api/v1/breaches"),
        (server.token("worker"), "/api/v1/signals"),
    ] {
        let (status, body) = server.api(&token, "GET", path, Value::Null).await;
        assert_eq!(status, 500, "{path}: {body}");
        for text in [REQUEST_DETAILS, "Ingevoegd-In-Plain-2231", SIGNAL_SUMMARY] {
            assert!(!body.to_string().contains(text), "{path}: {body}");
        }
    }
    // The rest is served as before.
    let (status, review) = server
        .api(
            &server.token("manager"),
            "GET",
            "/api/v1/teams/team-noord/access-review",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(review["last_review"]["note"], REVIEW_NOTE);
    server.stop().await;
}

// ---- the device store (I6, R28) -----------------------------------------------------------

/// The raw bytes of every file of a device's store, as they are: no checkpoint first, so what
/// the write-ahead log still holds is read too.
fn device_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[tokio::test]
async fn a_purge_after_unassignment_or_grant_expiry_leaves_no_byte_in_the_device_files_wal_included()
 {
    const PURGED: &str = "SENTINEL-PURGED-5b1e";
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::builder()
        .dir(&dir.path().join("server"))
        .oversight(regie_server::config::OversightArgs {
            break_glass: Duration::from_secs(3),
            ..Default::default()
        })
        .start()
        .await;
    let house = seed_household(&server).await;
    let dossier: regie_core::id::DossierId = house.id.parse().unwrap();
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    sync(&anna).await;
    anna.add_entry(
        dossier,
        &new_entry(EntryKind::Fact, "p-sanne", &format!("{PURGED} schulden")),
    )
    .await
    .unwrap();
    sync(&anna).await;

    // Bram is assigned; Carla, of the same team, breaks the glass for three seconds.
    let bram_dir = dir.path().join("bram");
    let bram = device(&server, &bram_dir, "worker2").await;
    let carla_token = server.token("colleague");
    let path = format!("/api/v1/dossiers/{}/break-glass", house.id);
    let (status, warned) = server
        .api(
            &carla_token,
            "POST",
            &path,
            json!({ "reason": "moeder belt in crisis", "category": "crisis" }),
        )
        .await;
    assert_eq!(status, 200, "{warned}");
    let (status, granted) = server
        .api(
            &carla_token,
            "POST",
            &path,
            json!({ "confirmation": warned["confirmation"] }),
        )
        .await;
    assert_eq!(status, 201, "{granted}");
    let carla_dir = dir.path().join("carla");
    let carla = device(&server, &carla_dir, "colleague").await;
    // What each device holds of the dossier: the entry (opened with its key) and every sealed
    // block of the dossier's documents, which a key obtained later could open if left behind.
    let mut sealed = Vec::new();
    for (c, d) in [(&bram, &bram_dir), (&carla, &carla_dir)] {
        sync(c).await;
        assert!(
            stored_texts(c, d).await.iter().any(|t| t.contains(PURGED)),
            "control: the device held the entry"
        );
        let blocks = sealed_blocks(d, dossier).await;
        assert!(
            blocks.len() >= 3,
            "control: sealed blocks of the dossier are in {}",
            d.display()
        );
        assert!(
            device_files(d)
                .iter()
                .any(|(_, b)| blocks.iter().any(|k| contains(b, k))),
            "control: the scan finds a sealed block in the files"
        );
        sealed.push((d.clone(), blocks));
    }

    unassign_bram(&server, &house).await;
    assert!(!sync(&bram).await.purged.is_empty(), "unassigned: purged");
    // The grant runs out; the sweep revokes it and the next sync purges.
    let ended = eventually(PATIENCE, || async {
        let (_, listed) = server
            .api(
                &carla_token,
                "GET",
                "/api/v1/me/documents",
                serde_json::Value::Null,
            )
            .await;
        listed
            .as_array()
            .is_some_and(|l| l.is_empty())
            .then_some(())
    })
    .await;
    assert!(ended.is_some(), "the grant ran out");
    assert!(
        !sync(&carla).await.purged.is_empty(),
        "grant expired: purged"
    );
    for (d, blocks) in &sealed {
        for (name, bytes) in device_files(d) {
            assert!(!holds(&bytes, PURGED), "{PURGED} left in {name}");
            assert!(
                !blocks.iter().any(|k| contains(&bytes, k)),
                "a sealed block of the purged dossier left in {name}"
            );
        }
    }
    server.stop().await;
}

/// Whether `haystack` holds the bytes `needle`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The first 32 bytes (format, nonce, start of the ciphertext: unique to each block) of every
/// sealed block of `dossier` in the device store in `dir`: snapshots, heads, saves, sync
/// states — read behind the client's back.
async fn sealed_blocks(dir: &Path, dossier: DossierId) -> Vec<Vec<u8>> {
    use sqlx::Row;
    let pool = sqlite_file(&dir.join(regie_client::store::STORE_FILE)).await;
    let rows = sqlx::query(
        "SELECT d.snapshot FROM documents d WHERE d.dossier = ?1          UNION ALL SELECT d.heads FROM documents d WHERE d.dossier = ?1          UNION ALL SELECT c.bytes FROM chunks c JOIN documents d ON d.id = c.document WHERE d.dossier = ?1          UNION ALL SELECT s.state FROM sync_states s JOIN documents d ON d.id = s.document WHERE d.dossier = ?1",
    )
    .bind(dossier.to_string())
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.iter()
        .filter_map(|r| r.get::<Option<Vec<u8>>, _>(0))
        .map(|b| b[..b.len().min(32)].to_vec())
        .collect()
}

#[tokio::test]
async fn a_sentinel_written_through_a_device_and_one_received_from_the_server_are_in_no_device_file_yet_read_back()
 {
    const BY_TABLET: &str = "Grutto-Tablet-2291";
    const FROM_SERVER: &str = "Tureluur-Server-6035";
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let anna_dir = dir.path().join("anna");
    let anna = device(&server, &anna_dir, "worker").await;
    // The token this session holds: a thief must find it nowhere either.
    let token = server.token("worker");
    anna.unlock(&token).await.unwrap();
    sync(&anna).await;
    anna.add_entry(
        dossier,
        &new_entry(
            EntryKind::Fact,
            "p-sanne",
            &format!("{BY_TABLET} huurachterstand"),
        ),
    )
    .await
    .unwrap();
    write_entry(&server, house.doc("record"), "e-server", FROM_SERVER).await;
    sync(&anna).await;
    let record = anna
        .open_document(dossier, &DocumentKey::Record)
        .await
        .unwrap()
        .content
        .to_string();
    assert!(
        record.contains(BY_TABLET) && record.contains(FROM_SERVER),
        "the client reads both back: {record}"
    );
    assert_eq!(anna.store().pending_reads().await.unwrap().len(), 1);
    let (_, key) = device_key(&server, "worker", &anna.device_id().await.unwrap()).await;
    let key = key.expect("Anna's device has a key");
    let raw_key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&key)
            .unwrap()
    };

    // As it is on the disk (the log holding the latest pages), and after a checkpoint.
    for checkpointed in [false, true] {
        if checkpointed {
            anna.store().checkpoint().await.unwrap();
        }
        let files = device_files(&anna_dir);
        assert!(
            files.iter().any(|(_, b)| holds(b, &house.id)),
            "control: the scan reads the store (the dossier id is kept in the clear)"
        );
        for (name, bytes) in &files {
            for secret in [BY_TABLET, FROM_SERVER, token.as_str(), key.as_str()] {
                assert!(!holds(bytes, secret), "{secret} in {name}");
            }
            assert!(!contains(bytes, &raw_key), "the device key in {name}");
        }
    }
    // The leak audit's view (every block opened with the key) holds both: the scan above
    // would have found them in the clear.
    let texts = stored_texts(&anna, &anna_dir).await;
    assert!(texts.iter().any(|t| t.contains(BY_TABLET)));
    assert!(texts.iter().any(|t| t.contains(FROM_SERVER)));
    server.stop().await;
}

#[tokio::test]
async fn an_idle_device_drops_its_key_and_reads_again_only_after_logging_in_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let anna = device(&server, &dir.path().join("anna"), "worker")
        .await
        .with_idle_lock(Duration::from_secs(1));
    sync(&anna).await;
    anna.set_hulpvraag(dossier, "voor de pauze").await.unwrap();
    // Used within the idle time, again and again: it stays unlocked past the idle time.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        anna.open_document(dossier, &DocumentKey::Plan)
            .await
            .expect("used within the idle time");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Locked by its timer, before anything asks.
    assert!(anna.is_locked());
    assert!(matches!(
        anna.open_document(dossier, &DocumentKey::Plan).await,
        Err(ClientError::Locked(LockReason::Idle(1)))
    ));
    assert!(matches!(
        anna.set_hulpvraag(dossier, "na de pauze").await,
        Err(ClientError::Locked(_))
    ));
    assert!(matches!(
        anna.sync(|_| {}).await,
        Err(ClientError::Locked(_))
    ));
    assert!(matches!(
        anna.store().stored_bytes().await,
        Err(ClientError::Locked(_))
    ));
    let said = anna.documents().await.unwrap_err().to_string();
    assert!(
        said.contains("locked") && said.contains("log in again"),
        "{said}"
    );

    // Logging in again unlocks it, with the work kept: the edit made before still goes up.
    anna.unlock(&server.token("worker")).await.unwrap();
    let plan = anna
        .open_document(dossier, &DocumentKey::Plan)
        .await
        .unwrap();
    assert_eq!(plan.content["hulpvraag"], "voor de pauze");
    assert_eq!(sync(&anna).await.changes_sent, 1);
    let on_server = server
        .state
        .hub
        .snapshot(house.doc("plan"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        regie_client::json::to_json(&on_server)["hulpvraag"],
        "voor de pauze"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_lost_tablets_store_stays_unreadable_while_annas_other_tablet_and_a_colleague_sync_on() {
    const ON_LOST: &str = "Scholekster-Verloren-3318";
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let url = format!("http://{}", server.addr);
    let lost_dir = dir.path().join("anna-lost");
    let lost = device(&server, &lost_dir, "worker").await;
    let other = device(&server, &dir.path().join("anna-other"), "worker").await;
    let bram = device(&server, &dir.path().join("bram"), "worker2").await;
    sync(&lost).await;
    lost.add_entry(
        dossier,
        &new_entry(EntryKind::Fact, "p-sanne", &format!("{ON_LOST} notitie")),
    )
    .await
    .unwrap();
    sync(&lost).await;
    for c in [&other, &bram] {
        sync(c).await;
    }
    let lost_id = lost.device_id().await.unwrap();
    report_annas_device_lost(&server, &lost_id).await;

    // The app still running on the lost tablet is refused at its next sync and drops its key.
    assert!(matches!(
        lost.sync(|_| {}).await,
        Err(ClientError::DeviceLost)
    ));
    assert!(lost.is_locked());
    drop(lost);
    // Whoever has the tablet, even with a valid token of Anna's, gets no key: the store stays
    // sealed, and says why.
    let thief = Client::open(&lost_dir)
        .await
        .unwrap()
        .with_options(options());
    let refused = thief.login(&url, &server.token("worker")).await;
    assert!(
        matches!(refused, Err(ClientError::DeviceLost)),
        "{refused:?}"
    );
    assert!(
        refused.unwrap_err().to_string().contains("reported lost"),
        "the error says why"
    );
    assert!(matches!(
        thief.open_document(dossier, &DocumentKey::Record).await,
        Err(ClientError::Locked(LockReason::DeviceLost))
    ));
    assert_eq!(
        device_key(&server, "worker", &lost_id).await,
        (403, None),
        "refused for good"
    );
    thief.store().checkpoint().await.unwrap();
    for (name, bytes) in device_files(&lost_dir) {
        assert!(!holds(&bytes, ON_LOST), "{ON_LOST} in {name}");
    }

    // Anna's other tablet and Bram work and sync on; what the lost one synced is not lost.
    other
        .add_entry(
            dossier,
            &new_entry(EntryKind::Fact, "p-sanne", "na het verlies genoteerd"),
        )
        .await
        .unwrap();
    assert_eq!(sync(&other).await.changes_sent, 1);
    sync(&bram).await;
    let record = bram
        .open_document(dossier, &DocumentKey::Record)
        .await
        .unwrap()
        .content
        .to_string();
    assert!(
        record.contains("na het verlies genoteerd") && record.contains(ON_LOST),
        "{record}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_store_from_before_encryption_loses_its_token_on_opening_and_is_sealed_at_the_first_login()
 {
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    const LEGACY: &str = "Kievit-Legacy-8127";
    const DETAIL: &str = "Legacy-Detail-5540";
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let plan = house.doc("plan");
    let url = format!("http://{}", server.addr);
    let anna_dir = dir.path().join("anna");
    let old_token = server.token("worker");

    // The store as the client before encryption left it (schema 0001–0002): the token, and the
    // plan with an offline edit, its sync state and heads, an offline read and a rejection
    // report, all in the clear.
    std::fs::create_dir_all(&anna_dir).unwrap();
    let file = anna_dir.join(regie_client::store::STORE_FILE);
    std::fs::File::create(&file).unwrap();
    let pool = sqlite_file(&file).await;
    sqlx::migrate::Migrator::new(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../clients/rust/migrations"
    )))
    .await
    .unwrap()
    .run_to(2, &pool)
    .await
    .unwrap();
    let on_server = server.state.hub.snapshot(plan).await.unwrap().unwrap();
    let mut am = automerge::AutoCommit::load(&on_server.save()).unwrap();
    let heads = am.get_heads();
    let hulpvraag = am.get(automerge::ROOT, "hulpvraag").unwrap().unwrap().1;
    am.splice_text(&hulpvraag, 0, 0, &format!("{LEGACY} "))
        .unwrap();
    am.commit();
    let chunk = am.save_after(&heads);
    let claims = regie_client::token_claims(&old_token).unwrap().0;
    for (sql, binds) in [
        (
            "INSERT INTO profile (id, storage_id, server_url, token, claims) VALUES (1, 'device-legacy', ?, ?, ?)",
            vec![
                url.clone(),
                old_token.clone(),
                serde_json::to_string(&claims).unwrap(),
            ],
        ),
        (
            "INSERT INTO documents (id, dossier, key, access, basis, district, team, server_heads) \
             VALUES (?, ?, 'plan', 'write', 'assignment', 'noord', 'team-noord', ?)",
            vec![
                plan.to_string(),
                house.id.clone(),
                heads
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ],
        ),
        (
            "INSERT INTO audit_outbox (id, at, user_id, dossier, key, document_id) \
             VALUES ('r-legacy', '2026-11-29T10:00:00Z', 'anna', ?, 'plan', ?)",
            vec![house.id.clone(), plan.to_string()],
        ),
        (
            "INSERT INTO rejections (at, document_id, dossier, key, reason, detail, changes, replayed, dropped) \
             VALUES ('2026-11-29T10:00:00Z', ?, ?, 'plan', 'path_reserved', ?, 'abc', 1, 'goals/0/owner: path_reserved')",
            vec![plan.to_string(), house.id.clone(), DETAIL.to_owned()],
        ),
    ] {
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(b);
        }
        q.execute(&pool).await.unwrap();
    }
    for (sql, bytes) in [
        (
            "UPDATE documents SET snapshot = ? WHERE id = ?",
            on_server.save(),
        ),
        (
            "INSERT INTO sync_states (state, document) VALUES (?, ?)",
            automerge::sync::State::new().encode(),
        ),
        (
            "INSERT INTO chunks (bytes, document, seq) VALUES (?, ?, 1)",
            chunk,
        ),
    ] {
        sqlx::query(sql)
            .bind(bytes)
            .bind(plan.to_string())
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    assert!(
        [LEGACY, old_token.as_str()]
            .iter()
            .all(|t| device_files(&anna_dir).iter().any(|(_, b)| holds(b, t))),
        "control: the legacy store holds the edit and the token in the clear"
    );

    // Opened by this client: the token is gone at once; the content waits, locked, for a key.
    let anna = Client::open(&anna_dir)
        .await
        .unwrap()
        .with_options(options());
    for (name, bytes) in device_files(&anna_dir) {
        assert!(
            !holds(&bytes, &old_token),
            "the legacy token left in {name}"
        );
    }
    assert!(matches!(
        anna.open_document(dossier, &DocumentKey::Plan).await,
        Err(ClientError::Locked(LockReason::NotUnlocked))
    ));

    // The first login seals every block and leaves no plaintext page behind.
    let report = anna.login(&url, &server.token("worker")).await.unwrap();
    assert!(report.purged.is_empty(), "the same user keeps the store");
    for (name, bytes) in device_files(&anna_dir) {
        for secret in [LEGACY, DETAIL, old_token.as_str()] {
            assert!(!holds(&bytes, secret), "{secret} in {name}");
        }
    }
    let opened = anna
        .open_document(dossier, &DocumentKey::Plan)
        .await
        .unwrap();
    assert!(
        opened.content["hulpvraag"]
            .as_str()
            .unwrap()
            .starts_with(LEGACY),
        "{}",
        opened.content
    );
    assert_eq!(opened.pending_changes, 1, "the heads were kept");
    let reads = anna.store().pending_reads().await.unwrap();
    assert_eq!(reads[0].id, "r-legacy");
    assert_eq!(reads.len(), 2);
    let rejections = anna.store().rejections().await.unwrap();
    assert_eq!(rejections[0].detail.as_deref(), Some(DETAIL));
    assert_eq!(rejections[0].dropped, ["goals/0/owner: path_reserved"]);
    // The offline edit made before the upgrade still reaches the server.
    let report = sync(&anna).await;
    assert_eq!(report.changes_sent, 1);
    assert_eq!(report.reads_uploaded, 2);
    let on_server = server.state.hub.snapshot(plan).await.unwrap().unwrap();
    assert!(
        regie_client::json::to_json(&on_server)["hulpvraag"]
            .as_str()
            .unwrap()
            .starts_with(LEGACY)
    );
    anna.store().checkpoint().await.unwrap();
    for (name, bytes) in device_files(&anna_dir) {
        assert!(!holds(&bytes, LEGACY), "{LEGACY} in {name} after the sync");
    }
    server.stop().await;
}

// ---- device keys (R29) --------------------------------------------------------------------

/// Asks for `who`'s key of `device`; the status and the key (base64) if released.
async fn device_key(server: &TestServer, who: &str, device: &str) -> (u16, Option<String>) {
    let (status, body) = server
        .api(
            &server.token(who),
            "POST",
            "/api/v1/me/device-key",
            json!({ "device": device }),
        )
        .await;
    (status, body["key"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn a_lost_devices_key_is_destroyed_and_refused_ever_after_and_other_devices_keep_theirs() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (status, lost) = device_key(&server, "worker", "storage-lost").await;
    assert_eq!(status, 200);
    let lost = lost.unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&lost)
            .unwrap()
            .len(),
        32
    );
    assert_eq!(
        device_key(&server, "worker", "storage-lost")
            .await
            .1
            .as_deref(),
        Some(lost.as_str()),
        "the same key each time: kept wrapped on the server"
    );
    let other = device_key(&server, "worker", "storage-other")
        .await
        .1
        .unwrap();
    let colleague = device_key(&server, "worker2", "storage-lost")
        .await
        .1
        .unwrap();
    assert!(
        other != lost && colleague != lost,
        "a key per user and device"
    );

    report_annas_tablet_lost(&server).await;
    assert_eq!(
        device_key(&server, "worker", "storage-lost").await,
        (403, None)
    );
    assert_eq!(
        device_key(&server, "worker", "storage-other")
            .await
            .1
            .as_deref(),
        Some(other.as_str()),
        "the user's other device is unaffected"
    );
    assert_eq!(
        device_key(&server, "worker2", "storage-lost")
            .await
            .1
            .as_deref(),
        Some(colleague.as_str()),
        "another user's device of that id is unaffected"
    );
    server.stop().await;

    // After a restart still refused; the releases, the destruction and the refusal are in the
    // audit log by key id, and no key is in it nor in any file of the server.
    let server = TestServer::start(dir.path()).await;
    assert_eq!(
        device_key(&server, "worker", "storage-lost").await,
        (403, None)
    );
    let log = server.state.hub.store().audit_events(None).await.unwrap();
    let key_rows: Vec<String> = log
        .iter()
        .filter(|(_, e)| e.action == "key")
        .filter_map(|(_, e)| e.detail.clone())
        .collect();
    for what in ["released", "destroyed: device reported lost", "refused"] {
        assert!(
            key_rows.iter().any(|d| d.contains(what)),
            "{what}: {key_rows:?}"
        );
    }
    let everything = format!("{log:?}");
    for key in [&lost, &other, &colleague] {
        assert!(!everything.contains(key.as_str()));
        for (name, bytes) in stored_bytes(&server, dir.path()).await {
            let k = base64::engine::general_purpose::STANDARD
                .decode(key)
                .unwrap();
            assert!(
                !bytes.windows(k.len()).any(|w| w == &k[..]) && !holds(&bytes, key),
                "a device key in {name}"
            );
        }
    }
    server.stop().await;
}
