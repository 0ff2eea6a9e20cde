//! regie-client end to end (issue 4): real tablets with their own SQLite stores on disk syncing
//! with a real server. Concurrent offline edits converge in any reconnect order (no edit lost);
//! nothing planted in `record` reaches a resident's or back office's device (I1); unassignment
//! purges a tablet (R28); offline reads reach the server's audit log (I3); forbidden edits are
//! refused locally with the policy's reason (I5); a rejected batch is rebased (I2); a tablet
//! reconnects with backoff; and a 40-dossier caseload's sync is measured.

use std::path::Path;
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{Automerge, ReadDoc};
use regie_client::edit::{
    EntryCategory, EntryKind, GoalChanges, NewAction, NewConsent, NewEntry, NewGoal, NewTriage,
    Owner, TriageMoment,
};
use regie_client::{Client, ClientError, SyncOptions};
use regie_core::id::{DocumentKey, DossierId, PersonId};
use regie_core::policy::DenyReason;
use serde_json::{Value, json};
use time::macros::date;

use crate::support::*;

pub(crate) fn options() -> SyncOptions {
    SyncOptions {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
    }
}

/// A device profile in `dir`, logged in as cast member `who`.
pub(crate) async fn device(server: &TestServer, dir: &Path, who: &str) -> Client {
    let client = Client::open(dir).await.unwrap().with_options(options());
    client
        .login(&format!("http://{}", server.addr), &server.token(who))
        .await
        .unwrap();
    client
}

pub(crate) async fn sync(c: &Client) -> regie_client::SyncReport {
    c.sync(|_| {}).await.expect("sync")
}

async fn plan_json(c: &Client, dossier: DossierId) -> Value {
    c.open_document(dossier, &DocumentKey::Plan)
        .await
        .unwrap()
        .content
}

async fn server_heads(server: &TestServer, doc: regie_sync_protocol::DocumentId) -> Vec<String> {
    let d = server.state.hub.snapshot(doc).await.unwrap().unwrap();
    let mut h: Vec<String> = d.get_heads().iter().map(ToString::to_string).collect();
    h.sort();
    h
}

async fn heads(c: &Client, dossier: DossierId, key: &DocumentKey) -> Vec<String> {
    let mut h = c.heads(dossier, key).await.unwrap();
    h.sort();
    h
}

#[tokio::test]
async fn two_tablets_and_a_resident_edit_the_plan_offline_and_converge_in_any_reconnect_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    let bram = device(&server, &dir.path().join("bram"), "worker2").await;
    let sanne = device(&server, &dir.path().join("sanne"), "resident").await;
    sync(&anna).await;
    anna.set_hulpvraag(dossier, "Wij willen rust in huis")
        .await
        .unwrap();
    let shared = anna
        .add_goal(
            dossier,
            &NewGoal {
                title: "Schulden op orde".into(),
                owner: Some(Owner::Worker),
            },
        )
        .await
        .unwrap();
    for c in [&anna, &bram, &sanne] {
        sync(c).await;
    }

    let names = ["anna", "bram", "sanne"];
    let orders = [[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0]];
    for (round, order) in orders.iter().enumerate() {
        // Everyone offline: concurrent edits of the same texts and of the same goal.
        let text = |c: &'static str| format!("{c}{round}");
        let old = plan_json(&anna, dossier).await;
        let hv = old["hulpvraag"].as_str().unwrap().to_owned();
        anna.set_hulpvraag(dossier, &format!("{} {hv}", text("A")))
            .await
            .unwrap();
        let title = old["goals"][0]["title"].as_str().unwrap().to_owned();
        anna.edit_goal(
            dossier,
            &shared,
            &GoalChanges {
                title: Some(format!("{} {title}", text("anna"))),
                ..GoalChanges::default()
            },
        )
        .await
        .unwrap();
        anna.add_goal(
            dossier,
            &NewGoal {
                title: text("goal-anna-"),
                owner: None,
            },
        )
        .await
        .unwrap();

        let old = plan_json(&bram, dossier).await;
        let hv = old["hulpvraag"].as_str().unwrap().to_owned();
        bram.set_hulpvraag(dossier, &format!("{hv} {}", text("B")))
            .await
            .unwrap();
        let title = old["goals"][0]["title"].as_str().unwrap().to_owned();
        bram.edit_goal(
            dossier,
            &shared,
            &GoalChanges {
                title: Some(format!("{title} {}", text("bram"))),
                ..GoalChanges::default()
            },
        )
        .await
        .unwrap();
        bram.add_action(
            dossier,
            &shared,
            &NewAction {
                description: text("action-bram-"),
                owner: Some(Owner::Resident),
                due: Some(date!(2026 - 12 - 01)),
            },
        )
        .await
        .unwrap();

        let old = plan_json(&sanne, dossier).await;
        let hv = old["hulpvraag"].as_str().unwrap().to_owned();
        let mid = hv.find(" rust").unwrap_or(hv.len());
        sanne
            .set_hulpvraag(
                dossier,
                &format!("{} {} {}", &hv[..mid], text("S"), &hv[mid..]),
            )
            .await
            .unwrap();
        sanne
            .add_agreement(dossier, &text("agreement-sanne-"), date!(2026 - 11 - 22))
            .await
            .unwrap();

        // Reconnect in this round's order, then once more so the first hear of the last.
        let devices = [&anna, &bram, &sanne];
        for pass in 0..2 {
            for &i in order {
                let r = sync(devices[i]).await;
                if pass == 0 {
                    assert!(r.changes_sent > 0, "{} sent its edits", names[i]);
                }
            }
        }
        let want = server_heads(&server, house.doc("plan")).await;
        for (c, name) in devices.iter().zip(names) {
            assert_eq!(
                heads(c, dossier, &DocumentKey::Plan).await,
                want,
                "{name} round {round}"
            );
        }
        let plans = [
            plan_json(&anna, dossier).await,
            plan_json(&bram, dossier).await,
            plan_json(&sanne, dossier).await,
        ];
        assert_eq!(plans[0], plans[1]);
        assert_eq!(plans[1], plans[2]);
        let plan = &plans[0];
        let hv = plan["hulpvraag"].as_str().unwrap();
        let title = plan["goals"][0]["title"].as_str().unwrap();
        for r in 0..=round {
            for marker in ["A", "B", "S"] {
                assert!(
                    hv.contains(&format!("{marker}{r}")),
                    "{marker}{r} in {hv:?}"
                );
            }
            for marker in ["anna", "bram"] {
                assert!(
                    title.contains(&format!("{marker}{r}")),
                    "{marker}{r} in {title:?}"
                );
            }
            let flat = plan.to_string();
            for item in ["goal-anna-", "action-bram-", "agreement-sanne-"] {
                assert!(flat.contains(&format!("{item}{r}")), "{item}{r} lost");
            }
        }
    }
    // The server document matches too.
    let on_server = server
        .state
        .hub
        .snapshot(house.doc("plan"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        regie_client::json::to_json(&on_server),
        plan_json(&anna, dossier).await
    );
    server.stop().await;
}

/// Every text a device stored: the decoded operations of each stored change and snapshot, the
/// materialized documents, and the raw bytes of the store files.
pub(crate) async fn stored_texts(c: &Client, dir: &Path) -> Vec<String> {
    let mut texts = Vec::new();
    c.store().checkpoint().await.unwrap();
    for stored in c.store().stored_bytes().await.unwrap() {
        let mut doc = match &stored.snapshot {
            Some(s) => {
                texts.extend(chunk_texts(s));
                Automerge::load(s).unwrap()
            }
            None => Automerge::new(),
        };
        for chunk in &stored.chunks {
            doc.load_incremental(chunk).unwrap();
        }
        texts.extend(document_texts(&doc));
        if let Some(state) = &stored.sync_state {
            texts.push(String::from_utf8_lossy(state).into_owned());
        }
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        texts.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    texts
}

const SENTINEL: &str = "SENTINEL-RECORD-7f3a";

async fn plant_in_record(anna: &Client, dossier: DossierId) {
    let daan = PersonId::new("p-daan").unwrap();
    let entry = anna
        .add_entry(
            dossier,
            &NewEntry {
                kind: EntryKind::Opinion,
                category: EntryCategory::WorkNote,
                subjects: vec![daan.clone()],
                text: format!("{SENTINEL} zorgen over Daan"),
                life_domain: Some(format!("{SENTINEL}-domain")),
            },
        )
        .await
        .unwrap();
    anna.add_triage(
        dossier,
        &NewTriage {
            moment: TriageMoment::Vraagverheldering,
            purpose: format!("{SENTINEL} purpose"),
            items: vec![entry.clone()],
            doelbinding: format!("{SENTINEL} doelbinding"),
            proportionaliteit: "alleen wat nodig is".into(),
            subsidiariteit: "geen lichter middel".into(),
            decision: "niet delen".into(),
            discussed_with_resident: true,
            not_discussed_reason: None,
            recipient: None,
        },
    )
    .await
    .unwrap();
    anna.add_consent(
        dossier,
        &NewConsent {
            subject: daan.clone(),
            given_by: vec![PersonId::new("p-sanne").unwrap()],
            recipient: "ggd".into(),
            purpose: format!("{SENTINEL} consent"),
            items: vec![entry],
            given_on: date!(2026 - 11 - 01),
            expires_on: Some(date!(2027 - 11 - 01)),
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn nothing_planted_in_the_record_is_stored_on_a_residents_or_back_office_device() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let anna_dir = dir.path().join("anna");
    let anna = device(&server, &anna_dir, "worker").await;
    sync(&anna).await;
    plant_in_record(&anna, dossier).await;
    anna.set_hulpvraag(dossier, "wat de bewoner mag zien")
        .await
        .unwrap();
    anna.set_maatwerk_request(
        dossier,
        1,
        "huishoudelijke hulp",
        Some("4 uur per week"),
        None,
    )
    .await
    .unwrap();
    sync(&anna).await;

    let sanne_dir = dir.path().join("sanne");
    let bo_dir = dir.path().join("bo");
    let sanne = device(&server, &sanne_dir, "resident").await;
    let bo = device(&server, &bo_dir, "backoffice").await;
    for c in [&sanne, &bo] {
        sync(c).await;
        // Opening everything it holds, and syncing again, stores nothing more of the record.
        for d in c.documents().await.unwrap() {
            c.open_document(d.dossier, &d.key).await.unwrap();
        }
        sync(c).await;
    }
    let keys = |c: &Client| {
        let c = c.store().clone();
        async move {
            let held = c.held().await.unwrap();
            let mut k: Vec<String> = c
                .documents()
                .await
                .unwrap()
                .into_iter()
                .filter(|d| held.contains(&d.id))
                .map(|d| d.key.to_string())
                .collect();
            k.sort();
            k
        }
    };
    assert_eq!(keys(&sanne).await, ["maatwerk/1", "plan", "view/p-sanne"]);
    assert_eq!(keys(&bo).await, ["maatwerk/1"]);
    assert!(
        plan_json(&sanne, dossier).await["hulpvraag"] == "wat de bewoner mag zien",
        "the resident's device did sync real content"
    );

    // The scan finds the sentinel where it belongs, so it would find it anywhere.
    let anna_texts = stored_texts(&anna, &anna_dir).await;
    assert!(anna_texts.iter().any(|t| t.contains(SENTINEL)));
    for (name, c, d) in [
        ("resident", &sanne, &sanne_dir),
        ("back office", &bo, &bo_dir),
    ] {
        let texts = stored_texts(c, d).await;
        assert!(!texts.is_empty());
        assert!(
            !texts.iter().any(|t| t.contains(SENTINEL)),
            "the {name}'s device stored something from the record"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn an_unassigned_workers_tablet_purges_the_dossier_at_its_next_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    let bram_dir = dir.path().join("bram");
    let bram = device(&server, &bram_dir, "worker2").await;
    sync(&anna).await;
    plant_in_record(&anna, dossier).await;
    sync(&anna).await;
    sync(&bram).await;
    let held_before = bram.store().held().await.unwrap().len();
    assert_eq!(
        held_before, 5,
        "plan, record, meta, maatwerk/1, partner/ggd"
    );
    assert!(
        stored_texts(&bram, &bram_dir)
            .await
            .iter()
            .any(|t| t.contains(SENTINEL))
    );

    // Bram is offline when his assignment ends; he even keeps working.
    unassign_bram(&server, &house).await;
    bram.set_hulpvraag(dossier, "nog even offline gewerkt")
        .await
        .unwrap();

    let report = sync(&bram).await;
    let mut purged: Vec<String> = report.purged.iter().map(|p| p.key.to_string()).collect();
    purged.sort();
    assert_eq!(
        purged,
        ["maatwerk/1", "meta", "partner/ggd", "plan", "record"]
    );
    assert!(report.purged.iter().all(|p| p.dossier == dossier));
    assert!(bram.documents().await.unwrap().is_empty());
    assert!(bram.store().stored_bytes().await.unwrap().is_empty());
    assert!(matches!(
        bram.open_document(dossier, &DocumentKey::Record).await,
        Err(ClientError::NotHeld(_))
    ));
    // The purge is on record on the device, without content.
    let records = bram.store().purges().await.unwrap();
    assert_eq!(records.len(), 5);
    let recorded = serde_json::to_string(&records).unwrap();
    assert!(!recorded.contains(SENTINEL) && !recorded.contains("offline gewerkt"));
    // Not a byte of it is left in the store files.
    let texts = stored_texts(&bram, &bram_dir).await;
    assert!(
        !texts
            .iter()
            .any(|t| t.contains(SENTINEL) || t.contains("offline gewerkt"))
    );
    // The server never got the edit made after the unassignment.
    let plan = server
        .state
        .hub
        .snapshot(house.doc("plan"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !regie_client::json::to_json(&plan)
            .to_string()
            .contains("offline gewerkt")
    );
    // Anna's tablet is untouched.
    assert!(sync(&anna).await.purged.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn offline_reads_appear_in_the_server_audit_log_after_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    sync(&anna).await;
    let device_id = anna.device_id().await.unwrap();

    // Offline: three opens.
    let before = time::OffsetDateTime::now_utc();
    anna.open_document(dossier, &DocumentKey::Plan)
        .await
        .unwrap();
    anna.open_document(dossier, &DocumentKey::Record)
        .await
        .unwrap();
    anna.open_document(dossier, &DocumentKey::Plan)
        .await
        .unwrap();
    assert_eq!(anna.store().pending_reads().await.unwrap().len(), 3);
    let offline: Vec<_> = server
        .state
        .hub
        .store()
        .audit_events(Some(dossier))
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, e)| e.action == "offline_read")
        .collect();
    assert!(
        offline.is_empty(),
        "nothing reaches the server while offline"
    );

    let report = sync(&anna).await;
    assert_eq!(report.reads_uploaded, 3);
    assert!(report.reads_refused.is_empty());
    assert!(anna.store().pending_reads().await.unwrap().is_empty());
    let events: Vec<_> = server
        .state
        .hub
        .store()
        .audit_events(Some(dossier))
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| e.action == "offline_read")
        .collect();
    let mut docs: Vec<&str> = events
        .iter()
        .map(|e| e.document.as_deref().unwrap())
        .collect();
    docs.sort();
    assert_eq!(docs, ["plan", "plan", "record"]);
    for e in &events {
        assert_eq!(e.actor, "anna");
        assert_eq!(e.role, "worker");
        assert_eq!(e.outcome, "allowed");
        assert_eq!(e.basis.as_deref(), Some("assignment"));
        assert_eq!(e.device.as_deref(), Some(device_id.as_str()));
        assert_eq!(e.persons.as_deref(), Some("p-daan,p-sanne"));
        let detail = e.detail.as_deref().unwrap();
        assert!(
            detail.contains("device clock") && detail.contains("offset"),
            "{detail}"
        );
        // Same machine, same clock: the corrected time is when the open happened.
        assert!(e.at >= before - time::Duration::seconds(2));
        assert!(e.at <= time::OffsetDateTime::now_utc() + time::Duration::seconds(2));
    }
    // A second sync uploads nothing twice.
    assert_eq!(sync(&anna).await.reads_uploaded, 0);
    let (_, verified) = server
        .api(
            &server.token("privacy_officer"),
            "GET",
            "/api/v1/audit/verify",
            Value::Null,
        )
        .await;
    assert_eq!(verified["intact"], true);
    server.stop().await;
}

#[tokio::test]
async fn a_device_cannot_report_reads_of_documents_its_user_may_not_read() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let body = |document: &str| {
        json!({
            "device": "device-forged",
            "sent_at": "2026-11-22T10:00:00Z",
            "events": [
                { "id": "1", "dossier": house.id, "document": document, "opened_at": "2026-11-22T09:00:00Z" },
                { "id": "2", "dossier": uuid::Uuid::new_v4().to_string(), "document": "plan", "opened_at": "2026-11-22T09:00:00Z" }
            ]
        })
    };
    let (status, answer) = server
        .api(
            &server.token("resident"),
            "POST",
            "/api/v1/audit/offline-reads",
            body("record"),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], json!([]));
    assert_eq!(
        answer["refused"],
        json!([{ "id": "1", "reason": "not_found" }, { "id": "2", "reason": "not_found" }]),
        "a document the resident may not read is refused like an unknown one"
    );
    let (_, answer) = server
        .api(
            &server.token("zuid_worker"),
            "POST",
            "/api/v1/audit/offline-reads",
            body("plan"),
        )
        .await;
    assert_eq!(answer["refused"][0]["reason"], "not_found");
    // The claims are on record as refused, never as reads.
    let events = server
        .state
        .hub
        .store()
        .audit_events(Some(house.id.parse().unwrap()))
        .await
        .unwrap();
    let claimed: Vec<_> = events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e.action == "offline_read")
        .collect();
    assert_eq!(claimed.len(), 2);
    assert!(
        claimed
            .iter()
            .all(|e| e.outcome != "allowed" && e.basis.is_none())
    );
    let (status, _) = server
        .api(
            "not-a-token",
            "POST",
            "/api/v1/audit/offline-reads",
            body("plan"),
        )
        .await;
    assert_eq!(status, 401);
    server.stop().await;
}

#[tokio::test]
async fn a_forbidden_local_edit_is_refused_with_the_policys_reason_before_any_change_exists() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    sync(&anna).await;
    let goal = anna
        .add_goal(
            dossier,
            &NewGoal {
                title: "Werk vinden".into(),
                owner: None,
            },
        )
        .await
        .unwrap();
    sync(&anna).await;
    let sanne = device(&server, &dir.path().join("sanne"), "resident").await;
    sync(&sanne).await;
    let heads_before = heads(&sanne, dossier, &DocumentKey::Plan).await;

    // R8: owners and evaluations are the worker's.
    let refused = sanne
        .edit_goal(
            dossier,
            &goal,
            &GoalChanges {
                title: Some("Werk vinden dat bij me past".into()),
                owner: Some(Owner::Resident),
                ..GoalChanges::default()
            },
        )
        .await;
    match refused {
        Err(ClientError::Denied { what, reason }) => {
            assert_eq!(reason, DenyReason::PathReserved);
            assert_eq!(what, "plan:goals/0/owner");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    let refused = sanne
        .add_evaluation(dossier, date!(2027 - 01 - 10), None)
        .await;
    assert!(matches!(
        refused,
        Err(ClientError::Denied {
            reason: DenyReason::PathReserved,
            ..
        })
    ));
    // The resident holds no record; the back office may not write the request of maatwerk.
    assert!(matches!(
        sanne
            .add_entry(
                dossier,
                &NewEntry {
                    kind: EntryKind::Fact,
                    category: EntryCategory::Analysis,
                    subjects: vec![PersonId::new("p-sanne").unwrap()],
                    text: "x".into(),
                    life_domain: None,
                }
            )
            .await,
        Err(ClientError::NotHeld(_))
    ));
    let bo = device(&server, &dir.path().join("bo"), "backoffice").await;
    sync(&bo).await;
    let refused = bo
        .set_maatwerk_request(dossier, 1, "meer uren", None, None)
        .await;
    assert!(
        matches!(
            refused,
            Err(ClientError::Denied {
                reason: DenyReason::PathReserved,
                ..
            })
        ),
        "{refused:?}"
    );

    // Nothing changed: no new heads, nothing pending, nothing to send.
    assert_eq!(
        heads(&sanne, dossier, &DocumentKey::Plan).await,
        heads_before
    );
    assert_eq!(sanne.status().await.unwrap().pending_changes, 0);
    assert_eq!(bo.status().await.unwrap().pending_changes, 0);
    assert_eq!(sync(&sanne).await.changes_sent, 0);
    // What the resident may do still works, and arrives.
    sanne
        .edit_goal(
            dossier,
            &goal,
            &GoalChanges {
                title: Some("Werk vinden dat bij me past".into()),
                ..GoalChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(sanne.status().await.unwrap().pending_changes, 1);
    assert_eq!(sync(&sanne).await.changes_sent, 1);
    sync(&anna).await;
    assert_eq!(
        plan_json(&anna, dossier).await["goals"][0]["title"],
        "Werk vinden dat bij me past"
    );
    assert!(
        server
            .state
            .hub
            .store()
            .quarantined()
            .await
            .unwrap()
            .is_empty()
    );
    server.stop().await;
}

/// Writes a change into a device's store behind the policy's back, as a buggy or hostile app
/// holding the unlocked store could: the client's local policy check never sees it.
async fn craft_behind_the_clients_back(
    client: &Client,
    doc: regie_sync_protocol::DocumentId,
    f: impl FnOnce(&mut automerge::AutoCommit),
) {
    let stored = client
        .store()
        .stored_bytes()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.document_id == doc)
        .expect("the document is held");
    let mut am = match &stored.snapshot {
        Some(s) => automerge::AutoCommit::load(s).unwrap(),
        None => automerge::AutoCommit::new(),
    };
    for chunk in &stored.chunks {
        am.load_incremental(chunk).unwrap();
    }
    let before = am.get_heads();
    f(&mut am);
    am.commit();
    let save = am.save_after(&before);
    client.store().append_unchecked(doc, save).await.unwrap();
}

#[tokio::test]
async fn a_rejected_batch_is_rebased_so_the_permitted_offline_edits_arrive_and_the_forbidden_one_is_reported()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    sync(&anna).await;
    anna.add_goal(
        dossier,
        &NewGoal {
            title: "Werk vinden".into(),
            owner: Some(Owner::Worker),
        },
    )
    .await
    .unwrap();
    sync(&anna).await;
    let sanne_dir = dir.path().join("sanne");
    let sanne = device(&server, &sanne_dir, "resident").await;
    sync(&sanne).await;

    // Offline: an allowed edit, a forbidden one crafted past the client, another allowed one.
    sanne
        .set_hulpvraag(dossier, "Ik wil weer werken")
        .await
        .unwrap();
    craft_behind_the_clients_back(&sanne, house.doc("plan"), |d| {
        let goals = d.get(automerge::ROOT, "goals").unwrap().unwrap().1;
        let goal = d.get(&goals, 0).unwrap().unwrap().1;
        d.put(&goal, "owner", "resident").unwrap();
    })
    .await;
    sanne
        .add_agreement(dossier, "Elke maandag bellen", date!(2026 - 11 - 23))
        .await
        .unwrap();

    let report = sync(&sanne).await;
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert_eq!(report.retries, 0, "the rebase needs no reconnect");
    let rejection = &report.rejected[0];
    assert_eq!(rejection.reason, "path_reserved");
    assert_eq!(rejection.dropped, ["goals/0/owner: path_reserved"]);
    assert!(rejection.replayed >= 2);
    assert_eq!(rejection.changes.len(), 3, "the whole batch was refused");
    assert_eq!(sanne.store().rejections().await.unwrap(), report.rejected);

    // The first and third edits are on the server, the second is not; the device converged.
    let on_server = regie_client::json::to_json(
        &server
            .state
            .hub
            .snapshot(house.doc("plan"))
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(on_server["hulpvraag"], "Ik wil weer werken");
    assert_eq!(on_server["agreements"][0]["text"], "Elke maandag bellen");
    assert_eq!(on_server["goals"][0]["owner"], "worker");
    assert_eq!(
        heads(&sanne, dossier, &DocumentKey::Plan).await,
        server_heads(&server, house.doc("plan")).await
    );
    assert_eq!(plan_json(&sanne, dossier).await, on_server);
    assert_eq!(sanne.status().await.unwrap().pending_changes, 0);
    let quarantined = server.state.hub.store().quarantined().await.unwrap();
    assert_eq!(quarantined.len(), 1);
    // Syncing again is quiet.
    let again = sync(&sanne).await;
    assert!(again.rejected.is_empty() && again.changes_sent == 0);
    server.stop().await;
}

#[tokio::test]
async fn a_tablet_that_syncs_while_the_server_is_down_reconnects_with_backoff_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("server");
    let server = TestServer::start(&store).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    sync(&anna).await;
    let addr = server.addr;
    server.stop().await;

    anna.set_hulpvraag(dossier, "geschreven zonder verbinding")
        .await
        .unwrap();
    let down = anna.sync(|_| {}).await;
    assert!(
        matches!(down, Err(ClientError::Unreachable { .. })),
        "{down:?}"
    );
    let status = anna.status().await.unwrap();
    assert_eq!(status.server_reachable, Some(false));
    assert_eq!(status.pending_changes, 1);

    // The server comes back on the same address while the tablet is retrying.
    let comeback = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        Restarted::on(&store, addr).await
    });
    let anna = anna.with_options(SyncOptions {
        max_attempts: 30,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(300),
        ..options()
    });
    let report = sync(&anna).await;
    assert!(report.retries > 0, "{report:?}");
    assert_eq!(report.changes_sent, 1);
    let server = comeback.await.unwrap();
    let plan = server
        .state
        .hub
        .snapshot(house.doc("plan"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        regie_client::json::to_json(&plan)["hulpvraag"],
        "geschreven zonder verbinding"
    );
    server.stop().await;
}

/// A server started again over an existing store on a chosen address (a restart).
struct Restarted {
    state: regie_server::AppState,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Restarted {
    async fn on(dir: &Path, addr: std::net::SocketAddr) -> Restarted {
        // Parsed like the command line, so settings added later keep their defaults.
        let cli = <regie_server::config::Cli as clap::Parser>::try_parse_from([
            "regie-server",
            "serve",
            "--listen",
            &addr.to_string(),
            "--data-dir",
            &dir.display().to_string(),
            "--jwt-secret",
            SECRET,
            "--jwt-issuer",
            ISSUER,
            "--jwt-audience",
            AUDIENCE,
        ])
        .expect("serve arguments");
        let regie_server::config::Command::Serve(mut args) = cli.command else {
            unreachable!("parsed serve")
        };
        args.serve.store = store_args(dir).await;
        let state = regie_server::state(&args.serve)
            .await
            .expect("server state");
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("the address is free again");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(regie_server::run(
            listener,
            state.clone(),
            None,
            async move {
                let _ = stopped.await;
            },
        ));
        Restarted { state, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(PATIENCE, self.task).await;
    }
}

#[tokio::test]
async fn a_forty_dossier_caseload_syncs_from_empty_and_reconciles_twenty_offline_edits_per_dossier()
{
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let w = server.token("worker");
    let mut dossiers = Vec::new();
    for i in 0..40 {
        let (status, created) = server
            .api(
                &w,
                "POST",
                "/api/v1/dossiers",
                json!({
                    "district": "noord", "team": "team-noord", "assigned": ["anna", "bram"],
                    "persons": [{ "id": format!("p-{i}"), "name": format!("Persoon {i}") }],
                    "resident_agreed": true, "agreed_on": "2026-11-01"
                }),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        dossiers.push(
            created["id"]
                .as_str()
                .unwrap()
                .parse::<DossierId>()
                .unwrap(),
        );
    }
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    let mut updates = Vec::new();
    let t = Instant::now();
    let first = anna.sync(|p| updates.push(*p)).await.unwrap();
    let from_empty = t.elapsed();
    assert_eq!(first.documents, 120, "plan, record and meta of 40 dossiers");
    assert!(updates.len() > 120);
    assert!(
        updates
            .windows(2)
            .all(|w| w[0].documents_done <= w[1].documents_done
                && w[0].bytes_received <= w[1].bytes_received)
    );
    let last = updates.last().unwrap();
    assert_eq!((last.documents_done, last.documents_total), (120, 120));
    assert_eq!(last.bytes_received, first.bytes_received);

    // A day offline: 20 edits in each dossier.
    let t = Instant::now();
    for &d in &dossiers {
        for j in 0..10 {
            anna.add_goal(
                d,
                &NewGoal {
                    title: format!("doel {j}"),
                    owner: Some(Owner::Worker),
                },
            )
            .await
            .unwrap();
            anna.add_entry(
                d,
                &NewEntry {
                    kind: if j % 2 == 0 {
                        EntryKind::Fact
                    } else {
                        EntryKind::Opinion
                    },
                    category: EntryCategory::Conversation,
                    subjects: vec![],
                    text: format!("gesprek {j}: afspraken gemaakt over de week"),
                    life_domain: None,
                },
            )
            .await
            .unwrap();
        }
    }
    let editing = t.elapsed();
    assert_eq!(anna.status().await.unwrap().pending_changes, 800);
    let reconnect = sync(&anna).await;
    assert_eq!(reconnect.changes_sent, 800);
    assert_eq!(anna.status().await.unwrap().pending_changes, 0);
    // A reconnect with nothing new moves only heads.
    let quiet = sync(&anna).await;
    assert_eq!(quiet.changes_sent + quiet.changes_received, 0);

    println!(
        "caseload of 40 dossiers (120 documents): from empty {:.0} ms, {} B sent, {} B received; \
         800 offline edits made in {:.0} ms; reconnect {:.0} ms, {} B sent for {} B of raw changes \
         ({:.2}x), {} B received; quiet reconnect {:.0} ms, {} B sent, {} B received",
        from_empty.as_secs_f64() * 1000.0,
        first.bytes_sent,
        first.bytes_received,
        editing.as_secs_f64() * 1000.0,
        reconnect.elapsed.as_secs_f64() * 1000.0,
        reconnect.bytes_sent,
        reconnect.change_bytes_sent,
        reconnect.bytes_sent as f64 / reconnect.change_bytes_sent as f64,
        reconnect.bytes_received,
        quiet.elapsed.as_secs_f64() * 1000.0,
        quiet.bytes_sent,
        quiet.bytes_received,
    );
    // Everything arrived.
    let bram = device(&server, &dir.path().join("bram"), "worker2").await;
    sync(&bram).await;
    for &d in &dossiers {
        assert_eq!(
            heads(&bram, d, &DocumentKey::Plan).await,
            heads(&anna, d, &DocumentKey::Plan).await
        );
        let record = bram
            .open_document(d, &DocumentKey::Record)
            .await
            .unwrap()
            .content;
        assert_eq!(record["entries"].as_array().unwrap().len(), 10);
    }
    server.stop().await;
}

#[tokio::test]
async fn an_entry_moved_to_another_person_leaves_no_byte_on_the_former_subjects_device() {
    const MOVED: &str = "SENTINEL-MOVED-91c2";
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    let sanne_dir = dir.path().join("sanne");
    let sanne = device(&server, &sanne_dir, "resident").await;
    sync(&anna).await;
    let id = anna
        .add_entry(
            dossier,
            &new_entry(
                EntryKind::Fact,
                "p-sanne",
                &format!("{MOVED} gaat niet naar school"),
            ),
        )
        .await
        .unwrap();
    sync(&anna).await;
    sync(&sanne).await;
    assert!(
        stored_texts(&sanne, &sanne_dir)
            .await
            .iter()
            .any(|t| t.contains(MOVED)),
        "control: Sanne's device held the entry while it was about her"
    );

    // The worker sees the note is about Daan, not Sanne.
    anna.edit(dossier, &DocumentKey::Record, |e| {
        let entries = regie_core::path::Path::parse("entries");
        let i = e.find(&entries, &id)?;
        e.set_list(
            &regie_core::path::Path::parse(&format!("entries/{i}")),
            "subjects",
            &["p-daan".to_owned()],
        )
    })
    .await
    .unwrap();
    sync(&anna).await;
    let report = sync(&sanne).await;
    assert!(
        report.purged.iter().any(|p| p.reason == "replaced"),
        "the old view is purged: {:?}",
        report.purged
    );
    sync(&sanne).await;
    let view = sanne
        .open_document(
            dossier,
            &DocumentKey::View(PersonId::new("p-sanne").unwrap()),
        )
        .await
        .unwrap()
        .content;
    assert_eq!(
        view["person"]["name"], "Sanne Bakker",
        "the new view is held: {view}"
    );
    assert!(
        !stored_texts(&sanne, &sanne_dir)
            .await
            .iter()
            .any(|t| t.contains(MOVED)),
        "no trace of the moved entry in Sanne's device store"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_upload_repeated_after_a_lost_answer_logs_each_offline_read_once() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let upload = json!({
        "device": "tablet-anna",
        "sent_at": "2026-11-22T10:00:00Z",
        "events": [
            { "id": "r1", "dossier": house.id, "document": "record", "opened_at": "2026-11-22T09:00:00Z" },
            { "id": "r2", "dossier": house.id, "document": "plan", "opened_at": "2026-11-22T09:05:00Z" }
        ]
    });
    for _ in 0..2 {
        let (status, answer) = server
            .api(
                &server.token("worker"),
                "POST",
                "/api/v1/audit/offline-reads",
                upload.clone(),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["accepted"],
            json!(["r1", "r2"]),
            "both times acknowledged"
        );
    }
    let logged = server
        .state
        .hub
        .store()
        .audit_events(Some(house.id.parse().unwrap()))
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, e)| e.action == "offline_read")
        .count();
    assert_eq!(logged, 2, "each read once, not once per upload");
    server.stop().await;
}
