//! Erasure and rectification decided (R20, R21; I6) end to end over the API and real devices: a
//! granted erasure of one person's items leaves every document that held them by replacement —
//! no byte of them in the store's files (WAL included), in any stored change decoded, or on any
//! device after its next sync; the old ids are refused, also after a restart —; a whole dossier
//! of one person is destroyed through the retention path with a proof that holds no content;
//! a rectified fact keeps only its corrected text; an objection is decided on a recorded
//! weighing; and a case-conference contribution goes on only with its contributor's agreement
//! (R15), which the policy reads.

use std::time::Duration;

use regie_core::id::DossierId;
use regie_sync_protocol::{DocumentId, Message};
use serde_json::{Value, json};

use crate::client::{device, stored_texts, sync};
use crate::rights::{act, file_as};
use crate::support::*;

/// `who` files a request of `kind`; its id.
pub(crate) async fn file(
    server: &TestServer,
    who: &str,
    dossier: &str,
    kind: &str,
    details: &str,
) -> String {
    let body = json!({ "kind": kind, "details": details });
    let (status, filed) = file_as(server, who, dossier, body).await;
    assert_eq!(status, 201, "{filed}");
    filed["id"].as_str().unwrap().to_owned()
}

/// The worker decides `request`.
pub(crate) async fn decide(server: &TestServer, request: &str, body: Value) -> (u16, Value) {
    act(server, "worker", request, "decision", body).await
}

/// Whether any of `texts` contains `needle`.
fn holds(texts: Vec<String>, needle: &str) -> bool {
    texts.iter().any(|t| t.contains(needle))
}

/// Every string the server stores of the dossier's documents now: each stored snapshot and
/// change decoded (operations, history included) — what a compressed column would hide from a
/// raw byte scan.
async fn stored_document_texts(server: &TestServer, dossier: &str) -> Vec<String> {
    let entry = server
        .state
        .hub
        .dossier(dossier.parse().unwrap())
        .expect("the dossier");
    let mut texts = Vec::new();
    for id in entry.documents.values() {
        let stored = server.state.hub.store().load_document(*id).await.unwrap();
        texts.extend(stored.snapshot.iter().flat_map(|s| chunk_texts(s)));
        texts.extend(stored.changes.iter().flat_map(|c| chunk_texts(c)));
    }
    texts
}

/// What a device of `who` hears when it asks for `old` now: the replacement's id, and whether
/// any of `old` itself was sent.
async fn ask_for(server: &TestServer, who: &str, old: DocumentId) -> (Option<DocumentId>, bool) {
    let mut peer = Peer::connect(server, &server.token(who)).await.unwrap();
    peer.request(old).await;
    let heard = peer.settle(Duration::from_millis(300)).await;
    let new = heard.iter().find_map(|m| match m {
        Message::Replaced {
            document_id,
            new_document_id,
            ..
        } if *document_id == old => Some(*new_document_id),
        _ => None,
    });
    let synced = heard
        .iter()
        .any(|m| matches!(m, Message::Sync { document_id, .. } if *document_id == old));
    (new, synced)
}

#[tokio::test]
async fn an_erasure_of_one_persons_items_leaves_no_byte_of_them_in_the_store_or_on_any_device() {
    const ERASED: &str = "SENTINEL-ERASE-4b1d";
    const KEPT: &str = "SENTINEL-KEEP-daan-77e0";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = TestServer::start(&data).await;
    let house = seed_household(&server).await;
    let record = house.doc("record");
    let mut bram = Peer::open(&server, "worker2", record, "entries").await;
    bram.edit(record, |d| {
        fact(
            d,
            "financien",
            &["p-sanne"],
            &format!("{ERASED} schuld bij de bank"),
        );
        entry(d, "e-daan", &["p-daan"], KEPT);
    })
    .await;
    // The fact also goes to the back office, copied into a maatwerk request.
    let (status, made) = server
        .api(
            &server.token("worker"),
            "POST",
            &format!("/api/v1/dossiers/{}/maatwerk", house.id),
            json!({ "triage": "t-backoffice", "applicant": "p-sanne", "facts": ["financien"],
                    "requested": "hulp bij schulden" }),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let maatwerk = DocumentId::from_url(made["url"].as_str().unwrap()).unwrap();
    let anna_dir = dir.path().join("anna");
    let anna = device(&server, &anna_dir, "worker").await;
    sync(&anna).await;
    let sanne_dir = dir.path().join("sanne");
    let sanne = device(&server, &sanne_dir, "resident").await;
    sync(&sanne).await;
    // Control: stored (decoded, so it holds whether or not the store seals its rows).
    assert!(holds(
        stored_document_texts(&server, &house.id).await,
        ERASED
    ));
    assert!(holds(stored_texts(&anna, &anna_dir).await, ERASED));
    assert!(
        holds(stored_texts(&sanne, &sanne_dir).await, ERASED),
        "control: in Sanne's view on her phone"
    );

    let request = file(
        &server,
        "resident",
        &house.id,
        "erasure",
        "alles over mijn schulden",
    )
    .await;
    // Daan's data is in the dossier too: it cannot go whole; and granting says how far.
    let (status, body) = decide(
        &server,
        &request,
        json!({ "verdict": "granted", "scope": "dossier" }),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("others_in_dossier"))
    );
    let (status, body) = decide(&server, &request, json!({ "verdict": "granted" })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("scope_required"))
    );
    let (status, decided) = decide(
        &server,
        &request,
        json!({ "verdict": "granted", "scope": "items", "reasons": "geen bewaarplicht voor deze notities" }),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "granted");
    assert_eq!(
        decided["decision"]["outcome"],
        "erased_items entries=1 documents=2"
    );
    assert!(
        bram.settle(Duration::from_millis(300))
            .await
            .iter()
            .any(|m| matches!(m, Message::Replaced { document_id, .. } if *document_id == record)),
        "a connected device is told the record was replaced"
    );

    assert!(
        !store_holds(&data, ERASED).await,
        "no byte of it in the store's files, WAL included"
    );
    let stored = stored_document_texts(&server, &house.id).await;
    assert!(!holds(stored.clone(), ERASED), "nor in any stored change");
    assert!(holds(stored, KEPT), "Daan's entry stays");
    for old in [record, maatwerk] {
        let (new, synced) = ask_for(&server, "worker2", old).await;
        assert!(new.is_some_and(|n| n != old), "the old id points on");
        assert!(!synced, "nothing of the old id is sent");
        let stored = server.state.hub.store().load_document(old).await.unwrap();
        assert!(stored.snapshot.is_none() && stored.changes.is_empty());
    }
    for _ in 0..2 {
        sync(&anna).await;
        sync(&sanne).await;
    }
    assert!(!holds(stored_texts(&anna, &anna_dir).await, ERASED));
    assert!(holds(stored_texts(&anna, &anna_dir).await, KEPT));
    assert!(!holds(stored_texts(&sanne, &sanne_dir).await, ERASED));
    // On record with ids, codes and counts only.
    let log = server
        .state
        .hub
        .store()
        .audit_events(Some(house.id.parse().unwrap()))
        .await
        .unwrap();
    assert!(log.iter().any(|(_, e)| {
        e.detail
            .as_deref()
            .is_some_and(|d| d.contains("outcome=erased_items"))
    }));
    assert!(!log.iter().any(|(_, e)| format!("{e:?}").contains(ERASED)));

    server.stop().await;
    let server = TestServer::start(&data).await;
    let (new, synced) = ask_for(&server, "worker2", record).await;
    assert!(
        new.is_some() && !synced,
        "refused forever, also after a restart"
    );
    let (new, synced) = ask_for(&server, "zuid_worker", record).await;
    assert!(new.is_none() && !synced, "an outsider learns nothing");
    assert!(
        server
            .state
            .hub
            .store()
            .verify_audit()
            .await
            .unwrap()
            .intact()
    );
    server.stop().await;
}

#[tokio::test]
async fn an_erasure_of_a_one_person_dossier_destroys_it_with_a_proof_that_holds_no_content() {
    const ERASED: &str = "SENTINEL-ERASE-ALL-90aa";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = TestServer::start(&data).await;
    let house = create_dossier(
        &server,
        json!([{ "id": "p-sanne", "name": "Sanne Bakker", "birth_date": "1988-03-14" }]),
    )
    .await;
    let (status, body) = server
        .api(
            &server.token("worker"),
            "POST",
            &format!("/api/v1/dossiers/{}/residents", house.id),
            json!({ "person": "p-sanne" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let record = house.doc("record");
    let mut bram = Peer::open(&server, "worker2", record, "entries").await;
    bram.edit(record, |d| entry(d, "e-1", &["p-sanne"], ERASED))
        .await;
    let anna_dir = dir.path().join("anna");
    let anna = device(&server, &anna_dir, "worker").await;
    sync(&anna).await;
    assert!(
        holds(stored_document_texts(&server, &house.id).await, ERASED),
        "control: stored"
    );

    let request = file(
        &server,
        "resident",
        &house.id,
        "erasure",
        "mijn hele dossier",
    )
    .await;
    let (status, decided) = decide(
        &server,
        &request,
        json!({ "verdict": "granted", "scope": "dossier" }),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert!(
        decided["decision"]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("dossier_destroyed documents=")
    );
    assert!(
        bram.settle(Duration::from_millis(300)).await.iter().any(|m| matches!(
            m,
            Message::Revoked { document_id, reason, .. } if *document_id == record && reason == "destroyed"
        )),
        "a connected device is told to purge"
    );
    assert!(!store_holds(&data, ERASED).await, "no byte left on disk");
    let (new, synced) = ask_for(&server, "worker2", record).await;
    assert!(new.is_none() && !synced, "the old id is unknown now");
    sync(&anna).await;
    assert!(
        !holds(stored_texts(&anna, &anna_dir).await, ERASED),
        "nor on the worker's tablet after its next sync"
    );
    let (status, proofs) = server
        .api(
            &server.token("privacy_officer"),
            "GET",
            "/api/v1/destructions",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    let proof = proofs
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["dossier"] == json!(house.id))
        .expect("a proof of the destruction");
    assert_eq!(proof["reason"], "erasure_granted");
    assert!(!proof.to_string().contains(ERASED));
    assert!(!proof.to_string().contains("Sanne"));
    // The request stays in the register, answered, after its dossier is gone.
    let (status, mine) = server
        .api(
            &server.token("resident"),
            "GET",
            "/api/v1/me/requests",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["id"], json!(request));
    assert_eq!(mine[0]["status"], "granted");
    server.stop().await;
}

#[tokio::test]
async fn a_rectified_fact_keeps_only_its_corrected_text_and_an_opinion_is_not_rectified() {
    const OLD: &str = "SENTINEL-WRONG-Kerkstraat-3c";
    const NEW: &str = "woont sinds mei op de Dorpsstraat";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = TestServer::start(&data).await;
    let house = seed_household(&server).await;
    let record = house.doc("record");
    let mut bram = Peer::open(&server, "worker2", record, "entries").await;
    bram.edit(record, |d| {
        fact(d, "adres", &["p-sanne"], &format!("woont op de {OLD}"));
        entry(d, "indruk", &["p-sanne"], "lijkt het overzicht kwijt");
    })
    .await;
    assert!(
        holds(stored_document_texts(&server, &house.id).await, OLD),
        "control: stored"
    );
    let request = file(
        &server,
        "resident",
        &house.id,
        "rectification",
        "mijn adres klopt niet",
    )
    .await;
    // Refusing needs the legal ground, and only one that fits a rectification.
    let (status, body) = decide(
        &server,
        &request,
        json!({ "verdict": "refused", "reasons": "klopt" }),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("ground_required"))
    );
    let (status, body) = decide(
        &server,
        &request,
        json!({ "verdict": "refused", "reasons": "klopt", "ground": "retention_duty" }),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("ground_not_applicable"))
    );
    // An opinion is not rectified.
    let (status, body) = decide(
        &server,
        &request,
        json!({ "verdict": "granted", "corrections": [{ "entry": "indruk", "text": "x" }] }),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("opinion_not_rectified"))
    );
    let (status, decided) = decide(
        &server,
        &request,
        json!({ "verdict": "granted", "corrections": [{ "entry": "adres", "text": NEW }] }),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(
        decided["decision"]["outcome"],
        "rectified entries=1 documents=1"
    );
    assert!(
        !store_holds(&data, OLD).await,
        "nowhere in the SQLite files"
    );
    let stored = stored_document_texts(&server, &house.id).await;
    assert!(!holds(stored.clone(), OLD));
    assert!(holds(stored, NEW));
    // A fresh device receives the corrected text and no byte of the old one.
    let fresh_dir = dir.path().join("bram");
    let fresh = device(&server, &fresh_dir, "worker2").await;
    sync(&fresh).await;
    let texts = stored_texts(&fresh, &fresh_dir).await;
    assert!(holds(texts.clone(), NEW), "the corrected fact");
    assert!(!holds(texts, OLD));

    // The opinion: refused on its ground, and the resident's statement is kept with it.
    let second = file(
        &server,
        "resident",
        &house.id,
        "rectification",
        "ik ben niet chaotisch",
    )
    .await;
    let (status, refused) = decide(
        &server,
        &second,
        json!({ "verdict": "refused", "ground": "opinion", "reasons": "dit is de indruk van de wijkwerker" }),
    )
    .await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["decision"]["ground"], "opinion");
    assert!(
        refused["decision"]["ground_label"]
            .as_str()
            .unwrap()
            .contains("eigen verklaring")
    );
    let (status, body) = server
        .api(
            &server.token("resident"),
            "POST",
            &format!("/api/v1/dossiers/{}/statements", house.id),
            json!({ "entry": "indruk", "text": "Ik heb wel overzicht." }),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    server.stop().await;
}

#[tokio::test]
async fn an_objection_is_decided_on_a_recorded_weighing() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let request = file(
        &server,
        "resident",
        &house.id,
        "objection",
        "geen contact met de GGD",
    )
    .await;
    let (status, body) = decide(
        &server,
        &request,
        json!({ "verdict": "refused", "ground": "compelling_grounds", "reasons": "veiligheid" }),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("weighing_required"))
    );
    let (status, decided) = decide(
        &server,
        &request,
        json!({ "verdict": "refused", "ground": "compelling_grounds", "reasons": "veiligheid van Daan",
                "weighing": "de zorg om Daan weegt zwaarder dan de wens van Sanne" }),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(
        decided["decision"]["weighing"],
        "de zorg om Daan weegt zwaarder dan de wens van Sanne"
    );
    let (_, mine) = server
        .api(
            &server.token("resident"),
            "GET",
            "/api/v1/me/requests",
            Value::Null,
        )
        .await;
    assert_eq!(mine[0]["decision"]["ground"], "compelling_grounds");
    assert_eq!(mine[0]["can_escalate_to"], "manager");
    server.stop().await;
}

#[tokio::test]
async fn a_case_conference_contribution_goes_on_only_with_its_contributors_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = TestServer::start(&data).await;
    let house = seed_household(&server).await;
    let record = house.doc("record");
    let mut bram = Peer::open(&server, "worker2", record, "entries").await;
    bram.edit(record, |d| {
        fact(
            d,
            "financien",
            &["p-sanne"],
            "de GGD zag betalingsachterstanden",
        )
    })
    .await;
    let contributions = format!("/api/v1/dossiers/{}/contributions", house.id);
    let worker = server.token("worker");
    let today = regie_server::rights::local_day(time::OffsetDateTime::now_utc()).to_string();
    for (body, code) in [
        (
            json!({ "entry": "nope", "contributor": "partner:ggd", "conference_on": today }),
            "no_such_entry",
        ),
        (
            json!({ "entry": "financien", "contributor": "not an id!", "conference_on": today }),
            "invalid_contributor",
        ),
    ] {
        let (status, got) = server.api(&worker, "POST", &contributions, body).await;
        assert_eq!((status, got["error"]["code"].as_str()), (400, Some(code)));
    }
    let (status, made) = server
        .api(
            &server.token("zuid_worker"),
            "POST",
            &contributions,
            json!({ "entry": "financien", "contributor": "partner:ggd", "conference_on": today }),
        )
        .await;
    assert_eq!(status, 404, "an outsider: {made}");
    let (status, made) = server
        .api(
            &worker,
            "POST",
            &contributions,
            json!({ "entry": "financien", "contributor": "partner:ggd", "conference_on": today }),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["contributor"], "partner:ggd");

    let share = json!({ "triage": "t-backoffice", "applicant": "p-sanne", "facts": ["financien"],
                        "requested": "hulp bij schulden" });
    let maatwerk = format!("/api/v1/dossiers/{}/maatwerk", house.id);
    let (status, body) = server.api(&worker, "POST", &maatwerk, share.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("contributor_agreement_missing")),
        "{body}"
    );
    // The GGD agrees — to another recipient first, which does not count for the back office.
    let agreements = format!("{contributions}/financien/agreements");
    let ggd = server.token("partner");
    let (status, body) = server
        .api(
            &ggd,
            "POST",
            &agreements,
            json!({ "recipient": "partner:veiligthuis", "agreed_on": today }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.api(&worker, "POST", &maatwerk, share.clone()).await;
    assert_eq!(status, 403);
    let (status, body) = server
        .api(
            &server.token("zuid_worker"),
            "POST",
            &agreements,
            json!({ "recipient": "backoffice", "agreed_on": today }),
        )
        .await;
    assert_eq!(status, 404, "nobody else records the agreement: {body}");

    // Recorded in SQL, so it holds after a restart.
    server.stop().await;
    let server = TestServer::start(&data).await;
    let ggd = server.token("partner");
    let (status, body) = server
        .api(
            &ggd,
            "POST",
            &agreements,
            json!({ "recipient": "backoffice", "agreed_on": today }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["agreed"], json!(["partner:veiligthuis", "backoffice"]));
    let (status, body) = server
        .api(&server.token("worker"), "POST", &maatwerk, share)
        .await;
    assert_eq!(status, 201, "with the contributor's agreement: {body}");
    let dossier: DossierId = house.id.parse().unwrap();
    let rel = server.state.hub.dossier(dossier).unwrap().rel;
    assert_eq!(rel.contributions.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn an_erasure_granted_on_escalation_is_carried_out_once_by_the_worker() {
    const ERASED: &str = "SENTINEL-ESCALATED-ERASE-5f2";
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let record = house.doc("record");
    let mut bram = Peer::open(&server, "worker2", record, "entries").await;
    bram.edit(record, |d| entry(d, "e-1", &["p-sanne"], ERASED))
        .await;
    let request = file(&server, "resident", &house.id, "erasure", "mijn notities").await;
    let carry_out = |who| {
        act(
            &server,
            who,
            &request,
            "execution",
            json!({ "scope": "items" }),
        )
    };
    let (status, body) = carry_out("worker").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_to_carry_out")),
        "nothing to carry out before a decision"
    );
    let (status, _) = decide(
        &server,
        &request,
        json!({ "verdict": "refused", "ground": "others_interest", "reasons": "ook over Daan" }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = act(
        &server,
        "resident",
        &request,
        "escalation",
        json!({ "grounds": "het gaat alleen over mij" }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, overturned) = act(
        &server,
        "manager",
        &request,
        "escalation/decision",
        json!({ "verdict": "granted", "reasons": "de notitie gaat alleen over Sanne" }),
    )
    .await;
    assert_eq!(status, 200, "{overturned}");
    assert_eq!(overturned["status"], "granted_on_escalation");
    assert!(
        holds(stored_document_texts(&server, &house.id).await, ERASED),
        "control: not erased by the escalation decision itself"
    );
    let (status, body) = carry_out("colleague").await;
    assert_eq!(status, 404, "only an assigned worker: {body}");
    let (status, done) = carry_out("worker").await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["carried_out"], "erased_items entries=1 documents=1");
    assert!(!holds(
        stored_document_texts(&server, &house.id).await,
        ERASED
    ));
    let (status, body) = carry_out("worker").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_to_carry_out")),
        "once"
    );
    server.stop().await;
}
