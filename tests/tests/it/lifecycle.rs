//! A dossier's life after its first share: the partner document carries DAT-information only
//! (R5); the back office gets an extract of facts the applicant has seen (R6, R14); a withdrawn
//! consent ends the partner's access at once, whether a resident withdraws through the API or a
//! tablet syncs the withdrawal (R16, R28); a changed purpose needs a new triage before reuse
//! (R13); and closing needs its triage record, fixes the destroy-by date, ends every partner's
//! access and leaves a dossier nobody writes (R18, R23).

use std::time::Duration;

use automerge::{ROOT, ReadDoc, transaction::Transactable};
use regie_client::edit::{EntryKind, TriageMoment};
use regie_core::id::{DossierId, PersonId};
use regie_sync_protocol::{DocumentId, Message};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::client::{device, sync};
use crate::support::*;

/// Whether `peer` is told `revoked` for `doc` within the settle window.
async fn told_revoked(peer: &mut Peer, doc: DocumentId) -> bool {
    peer.settle(Duration::from_millis(400))
        .await
        .iter()
        .any(|m| matches!(m, Message::Revoked { document_id, .. } if *document_id == doc))
}

#[tokio::test]
async fn the_partner_document_holds_the_workers_contact_and_the_agreed_action_and_nothing_else() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let doc = house.doc("partner/ggd");
    let mut ggd = Peer::open(&server, "partner", doc, "assignment").await;
    let got = regie_client::json::to_json(ggd.doc(doc));
    assert_eq!(
        got["assignment"],
        json!({
            "contact": { "name": "Anna Visser, wijkteam Noord", "phone": "020 555 0101" },
            "actions": [{ "id": "a-ggd-1", "description": "Huisbezoek jeugdverpleegkundige" }]
        })
    );
    assert_eq!(got["status"], json!({}));
    assert!(
        !ggd.saw("Sanne Bakker"),
        "no person data in DAT-information"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_resident_withdrawing_consent_ends_the_partners_access_at_once() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let doc = house.doc("partner/ggd");
    let mut ggd = Peer::open(&server, "partner", doc, "assignment").await;
    let withdraw = format!("/api/v1/dossiers/{}/consents/c-ggd/withdraw", house.id);

    for outsider in ["partner", "backoffice", "zuid_worker"] {
        let (status, _) = server
            .api(&server.token(outsider), "POST", &withdraw, Value::Null)
            .await;
        assert_eq!(status, 404, "{outsider} learns nothing of the consent");
    }
    let (status, body) = server
        .api(&server.token("resident"), "POST", &withdraw, Value::Null)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["partners_ended"], json!(["ggd"]));
    assert!(
        told_revoked(&mut ggd, doc).await,
        "the partner's device purges"
    );
    ggd.request(doc).await;
    assert!(matches!(
        ggd.next().await,
        Some(Message::DocUnavailable { .. })
    ));
    let (status, body) = server
        .api(
            &server.token("worker"),
            "POST",
            &format!("/api/v1/dossiers/{}/partners", house.id),
            regie_server::demo::partner_share(),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("consent_missing")),
        "no future share on a withdrawn consent"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_withdrawal_recorded_offline_on_a_tablet_ends_the_share_when_it_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let doc = house.doc("partner/ggd");
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    sync(&anna).await;
    let mut ggd = Peer::open(&server, "partner", doc, "assignment").await;
    anna.withdraw_consent(dossier, "c-ggd", OffsetDateTime::now_utc().date())
        .await
        .unwrap();
    assert!(
        !told_revoked(&mut ggd, doc).await,
        "nothing happens while the tablet is offline"
    );
    sync(&anna).await;
    assert!(told_revoked(&mut ggd, doc).await);
    server.stop().await;
}

#[tokio::test]
async fn after_the_purpose_changes_earlier_triage_records_carry_no_share() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    sync(&anna).await;
    for (moment, purpose) in [
        (TriageMoment::Aanmelding, "ondersteuning bij schulden"),
        (TriageMoment::Plan, "veiligheid van Daan"),
    ] {
        anna.add_triage(dossier, &new_triage(moment, purpose, None, &[]))
            .await
            .unwrap();
    }
    sync(&anna).await;
    let partners = format!("/api/v1/dossiers/{}/partners", house.id);
    let w = server.token("worker");
    let (status, body) = server
        .api(&w, "POST", &partners, regie_server::demo::partner_share())
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("purpose_changed")),
        "{body}"
    );
    let again = anna
        .add_triage(
            dossier,
            &new_triage(
                TriageMoment::Share,
                "dat-informatie onder het nieuwe doel",
                Some("partner:ggd"),
                &["contact", "actie"],
            ),
        )
        .await
        .unwrap();
    sync(&anna).await;
    let mut share = regie_server::demo::partner_share();
    share["triage"] = json!(again);
    let (status, body) = server.api(&w, "POST", &partners, share).await;
    assert_eq!(status, 201, "re-assessed under the new purpose: {body}");
    server.stop().await;
}

#[tokio::test]
async fn the_back_office_gets_only_facts_about_the_applicant_that_are_in_her_view() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    sync(&anna).await;
    let fact = anna
        .add_entry(
            dossier,
            &new_entry(
                EntryKind::Fact,
                "p-sanne",
                "Drie schuldeisers, totaal 8.400 euro",
            ),
        )
        .await
        .unwrap();
    let opinion = anna
        .add_entry(
            dossier,
            &new_entry(
                EntryKind::Opinion,
                "p-sanne",
                "OPINION-SENTINEL lijkt overweldigd",
            ),
        )
        .await
        .unwrap();
    let about_daan = anna
        .add_entry(
            dossier,
            &new_entry(
                EntryKind::Fact,
                "p-daan",
                "DAAN-SENTINEL gaat niet naar school",
            ),
        )
        .await
        .unwrap();
    let t = anna
        .add_triage(
            dossier,
            &new_triage(
                TriageMoment::Share,
                "besluit schuldhulp",
                Some("backoffice"),
                &[&fact, &opinion, &about_daan],
            ),
        )
        .await
        .unwrap();
    sync(&anna).await;
    let maatwerk = format!("/api/v1/dossiers/{}/maatwerk", house.id);
    let w = server.token("worker");
    let compose = |facts: &[&str]| {
        json!({
            "triage": t, "applicant": "p-sanne", "requested": "schuldhulp",
            "assessed_need": "begeleiding", "proposed_voorziening": "schuldhulpverlening",
            "facts": facts,
        })
    };
    for (facts, code) in [
        (vec![about_daan.as_str()], "fact_not_seen_by_applicant"),
        (vec![opinion.as_str()], "not_a_fact"),
        (vec![fact.as_str(), "e-unknown"], "triage_missing"),
    ] {
        let (status, body) = server.api(&w, "POST", &maatwerk, compose(&facts)).await;
        assert_eq!(
            body["error"]["code"].as_str(),
            Some(code),
            "{facts:?}: {status} {body}"
        );
    }
    let (status, made) = server.api(&w, "POST", &maatwerk, compose(&[&fact])).await;
    assert_eq!(status, 201, "{made}");
    let doc = DocumentId::from_url(made["url"].as_str().unwrap()).unwrap();

    let mut bo = Peer::open(&server, "backoffice", doc, "request").await;
    let got = regie_client::json::to_json(bo.doc(doc));
    assert_eq!(
        got["request"]["supporting_facts"],
        json!([{ "entry": fact, "text": "Drie schuldeisers, totaal 8.400 euro" }])
    );
    assert_eq!(got["request"]["triage"], json!(t));
    assert!(!bo.saw("OPINION-SENTINEL") && !bo.saw("DAAN-SENTINEL"));
    // The back office decides; the applicant reads the extract, decision included.
    bo.edit(doc, |d| {
        let decision = d.get(ROOT, "decision").unwrap().unwrap().1;
        d.put(&decision, "outcome", "granted").unwrap();
    })
    .await;
    let mut sanne = Peer::connect(&server, &server.token("resident"))
        .await
        .unwrap();
    sanne.request(doc).await;
    assert!(
        sanne
            .wait_for(
                doc,
                |d| regie_client::json::to_json(d)["decision"]["outcome"] == "granted"
            )
            .await
    );
    server.stop().await;
}

#[tokio::test]
async fn closing_needs_its_triage_then_fixes_the_destroy_by_date_ends_partners_and_stops_writes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let close = format!("/api/v1/dossiers/{}/close", house.id);
    let w = server.token("worker");
    let body = |t: &str| json!({ "triage": t, "regimes": [{ "regime": "wmo2015" }, { "regime": "jeugdwet" }] });

    let (status, got) = server.api(&w, "POST", &close, body("t-none")).await;
    assert_eq!(
        (status, got["error"]["code"].as_str()),
        (403, Some("triage_missing"))
    );
    let (status, _) = server
        .api(&server.token("colleague"), "POST", &close, body("t-none"))
        .await;
    assert_eq!(status, 404, "an unassigned colleague learns nothing");

    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    sync(&anna).await;
    let t = anna
        .add_triage(
            dossier,
            &new_triage(
                TriageMoment::Afsluiting,
                "afsluiten: doelen bereikt",
                None,
                &[],
            ),
        )
        .await
        .unwrap();
    sync(&anna).await;
    let (status, got) = server.api(&w, "POST", &close, json!({ "triage": t })).await;
    assert_eq!(
        (status, got["error"]["code"].as_str()),
        (409, Some("regimes_missing")),
        "without regimes no destroy-by date: {got}"
    );

    let partner_doc = house.doc("partner/ggd");
    let mut ggd = Peer::open(&server, "partner", partner_doc, "assignment").await;
    let (plan, meta) = (house.doc("plan"), house.doc("meta"));
    let mut bram = Peer::open(&server, "worker2", plan, "goals").await;

    let (status, got) = server.api(&w, "POST", &close, body(&t)).await;
    assert_eq!(status, 200, "{got}");
    let today = OffsetDateTime::now_utc().date();
    let in_20_years = regie_core::retention::add_years(today, 20)
        .format(regie_core::document::DATE)
        .unwrap();
    assert_eq!(
        got["destroy_by"],
        json!(in_20_years),
        "Jeugdwet's 20 years outlast Wmo's 15"
    );
    assert_eq!(got["partners_ended"], json!(["ggd"]));
    assert!(told_revoked(&mut ggd, partner_doc).await);

    bram.request(meta).await;
    assert!(
        bram.wait_for(meta, |d| regie_client::json::to_json(d)["status"]
            == "closed")
            .await
    );
    assert_eq!(
        regie_client::json::to_json(bram.doc(meta))["destroy_by"],
        json!(in_20_years)
    );
    // Nobody writes a closed dossier: the edit is refused and never merged.
    bram.edit(plan, |d| {
        let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
        d.splice_text(&h, 0, 0, "NA-SLUITING").unwrap();
    })
    .await;
    assert!(
        bram.settle(Duration::from_millis(300))
            .await
            .iter()
            .any(|m| matches!(m, Message::Rejected { reason, .. } if reason == "dossier_closed"))
            || bram.received.iter().any(
                |m| matches!(m, Message::Rejected { reason, .. } if reason == "dossier_closed")
            )
    );
    let on_server = server.state.hub.snapshot(plan).await.unwrap().unwrap();
    assert!(
        !regie_client::json::to_json(&on_server)
            .to_string()
            .contains("NA-SLUITING")
    );
    let (status, got) = server.api(&w, "POST", &close, body(&t)).await;
    assert_eq!(
        (status, got["error"]["code"].as_str()),
        (403, Some("dossier_closed"))
    );
    // Rights outlive the help: an erasure refused on the retention duty names its regimes.
    let (status, filed) = server
        .api(
            &server.token("resident"),
            "POST",
            "/api/v1/me/requests",
            json!({ "dossier": house.id, "kind": "erasure" }),
        )
        .await;
    assert_eq!(status, 201, "{filed}");
    let (status, refused) = server
        .api(
            &w,
            "POST",
            &format!(
                "/api/v1/requests/{}/decision",
                filed["id"].as_str().unwrap()
            ),
            json!({ "verdict": "refused", "ground": "retention_duty", "reasons": "bewaartermijn" }),
        )
        .await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(
        refused["decision"]["outcome"],
        format!("retention regimes=wmo2015:15y,jeugdwet:20y destroy_by={in_20_years}")
    );

    // After a restart the dossier is still closed.
    let data = dir.path().join("server");
    server.stop().await;
    let server = TestServer::start(&data).await;
    let rel = server.state.hub.dossier(dossier).unwrap().rel;
    assert!(rel.closed && rel.partners.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_dossier_with_an_open_task_to_inform_the_resident_does_not_close() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    server
        .state
        .hub
        .store()
        .commit_unit(&regie_server::storage::Unit {
            dossier,
            at: OffsetDateTime::now_utc(),
            edits: &[regie_server::storage::RelationEdit::Task {
                kind: "inform_resident",
                about: "test".into(),
            }],
            new_document: None,
            changes: Vec::new(),
            audit: &[],
        })
        .await
        .unwrap();
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    sync(&anna).await;
    let t = anna
        .add_triage(
            dossier,
            &new_triage(
                TriageMoment::Overdracht,
                "overdracht",
                Some("team-zuid"),
                &["hulpvraag"],
            ),
        )
        .await
        .unwrap();
    sync(&anna).await;
    let close = format!("/api/v1/dossiers/{}/close", house.id);
    let body = json!({ "triage": t, "regimes": [{ "regime": "wmo2015" }] });
    let w = server.token("worker");
    let (status, got) = server.api(&w, "POST", &close, body.clone()).await;
    assert_eq!(
        (status, got["error"]["code"].as_str()),
        (409, Some("open_tasks"))
    );
    let (_, tasks) = server
        .api(
            &w,
            "GET",
            &format!("/api/v1/dossiers/{}/tasks", house.id),
            Value::Null,
        )
        .await;
    let task = tasks[0]["id"].as_i64().unwrap();
    server
        .api(
            &w,
            "POST",
            &format!("/api/v1/dossiers/{}/tasks/{task}/done", house.id),
            Value::Null,
        )
        .await;
    let (status, got) = server.api(&w, "POST", &close, body).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        got["handover"],
        json!({ "recipient": "team-zuid", "items": ["hulpvraag"] })
    );
    server.stop().await;
}

#[tokio::test]
async fn a_consent_that_expires_ends_the_partners_access_at_the_next_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let house = seed_household(&server).await;
    let dossier: DossierId = house.id.parse().unwrap();
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    sync(&anna).await;
    // Sanne's consent to the GGD runs until today only.
    let today = OffsetDateTime::now_utc().date();
    anna.withdraw_consent(dossier, "c-ggd", today)
        .await
        .unwrap();
    let c = anna
        .add_consent(
            dossier,
            &regie_client::edit::NewConsent {
                subject: PersonId::new("p-sanne").unwrap(),
                given_by: vec![PersonId::new("p-sanne").unwrap()],
                recipient: "ggd".into(),
                purpose: "dat-informatie".into(),
                items: vec!["contact".into(), "actie".into()],
                given_on: today,
                expires_on: Some(today),
            },
        )
        .await
        .unwrap();
    sync(&anna).await;
    let (status, body) = server
        .api(
            &server.token("worker"),
            "POST",
            &format!("/api/v1/dossiers/{}/partners", house.id),
            regie_server::demo::partner_share(),
        )
        .await;
    assert_eq!(status, 201, "shared on consent {c}: {body}");
    let doc = house.doc("partner/ggd");
    let mut ggd = Peer::open(&server, "partner", doc, "assignment").await;
    let hub = &server.state.hub;
    assert_eq!(
        hub.sweep_consent_shares(today).await.unwrap(),
        0,
        "in force today"
    );
    assert!(!told_revoked(&mut ggd, doc).await);
    let tomorrow = today.next_day().unwrap();
    assert_eq!(hub.sweep_consent_shares(tomorrow).await.unwrap(), 1);
    assert!(told_revoked(&mut ggd, doc).await, "lapsed tomorrow");
    server.stop().await;
}

#[tokio::test]
async fn at_its_destroy_by_date_a_closed_dossier_is_destroyed_leaving_only_proof() {
    const PLANTED: &str = "SENTINEL-DESTROY-5e0b";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = TestServer::start(&data).await;
    let old = seed_household(&server).await;
    let young = seed_household(&server).await;
    let mut bram = Peer::connect(&server, &server.token("worker2"))
        .await
        .unwrap();
    let record = old.doc("record");
    bram.request(record).await;
    assert!(
        bram.wait_for(record, |d| d.get(ROOT, "entries").unwrap().is_some())
            .await
    );
    bram.edit(record, |d| entry(d, "e-old", &["p-sanne"], PLANTED))
        .await;
    let anna = device(&server, &dir.path().join("anna"), "worker").await;
    sync(&anna).await;
    for (house, regimes) in [
        // Refused five years after 2019: due since 2024.
        (
            &old,
            json!([{ "regime": "refused_or_not_adopted", "trigger": "2019-01-01" }]),
        ),
        (&young, json!([{ "regime": "wmo2015" }])),
    ] {
        let dossier: DossierId = house.id.parse().unwrap();
        let t = anna
            .add_triage(
                dossier,
                &new_triage(TriageMoment::Afsluiting, "afsluiten", None, &[]),
            )
            .await
            .unwrap();
        sync(&anna).await;
        let (status, body) = server
            .api(
                &server.token("worker"),
                "POST",
                &format!("/api/v1/dossiers/{}/close", house.id),
                json!({ "triage": t, "regimes": regimes }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // Control: the entry is stored (sealed with the dossier's key, so not as text on disk).
    let stored = server
        .state
        .hub
        .store()
        .load_document(record)
        .await
        .unwrap();
    assert!(
        stored
            .snapshot
            .iter()
            .chain(&stored.changes)
            .any(|b| String::from_utf8_lossy(b).contains(PLANTED)),
        "control: the entry is stored"
    );

    let proofs = server
        .state
        .hub
        .destroy_due(OffsetDateTime::now_utc().date())
        .await
        .unwrap();
    assert_eq!(proofs.len(), 1, "only the dossier whose date has come");
    assert_eq!(proofs[0].dossier, old.id);
    assert_eq!(proofs[0].documents as usize, old.docs.len());
    assert!(
        proofs[0].key_id.is_some(),
        "its data key is destroyed with it"
    );
    assert!(
        bram.settle(Duration::from_millis(300)).await.iter().any(|m| matches!(
            m,
            Message::Revoked { document_id, reason, .. } if *document_id == record && reason == "destroyed"
        )),
        "a connected device is told to purge"
    );
    bram.request(record).await;
    assert!(matches!(
        bram.next().await,
        Some(Message::DocUnavailable { .. })
    ));
    assert!(
        !store_holds(&data, PLANTED).await,
        "no byte of it is left on disk"
    );

    let (status, listed) = server
        .api(
            &server.token("privacy_officer"),
            "GET",
            "/api/v1/destructions",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["dossier"], json!(old.id));
    assert_eq!(listed[0]["reason"], "retention_ended");
    let (status, _) = server
        .api(
            &server.token("worker"),
            "GET",
            "/api/v1/destructions",
            Value::Null,
        )
        .await;
    assert_eq!(status, 403);
    let audit = server
        .state
        .hub
        .store()
        .audit_events(Some(old.id.parse().unwrap()))
        .await
        .unwrap();
    assert!(audit.iter().any(|(_, e)| e.action == "destroy"));
    assert_eq!(
        server
            .state
            .hub
            .store()
            .verify_audit()
            .await
            .unwrap()
            .first_broken_seq,
        None
    );

    server.stop().await;
    let server = TestServer::start(&data).await;
    assert!(server.state.hub.dossier(old.id.parse().unwrap()).is_none());
    assert!(
        server
            .state
            .hub
            .dossier(young.id.parse().unwrap())
            .is_some()
    );
    server.stop().await;
}
