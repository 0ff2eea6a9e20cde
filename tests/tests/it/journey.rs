//! The whole journey of one household, told as it happens (issue 6): a neighbour's signal is
//! recorded without a name; Sanne agrees to a dossier; Anna analyses on her tablet and Sanne
//! reads what concerns her; Sanne and Anna edit the plan offline and converge; the back office
//! decides a maatwerk request built from facts Sanne has seen; the GGD takes on the action the
//! case conference gave it; an evaluation; and the dossier is closed, its destroy-by date fixed
//! and the GGD's access ended. Every actor is a real device (regie-client with its own SQLite
//! store) or a real HTTP call against a real server.

use std::path::Path;

use regie_client::Client;
use regie_client::edit::{
    EntryKind, MaatwerkOutcome, NewConsent, NewGoal, Owner, PartnerState, TriageMoment,
};
use regie_core::id::{DocumentKey, DossierId, OrgId, PersonId};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::client::{device, sync};
use crate::support::*;

/// Tells the story in the test output (`--nocapture` shows it).
fn step(n: u32, what: &str) {
    println!("[{n}] {what}");
}

async fn read(c: &Client, dossier: DossierId, key: &DocumentKey) -> Value {
    c.open_document(dossier, key).await.unwrap().content
}

async fn api(server: &TestServer, who: &str, method: &str, path: &str, body: Value) -> Value {
    let (status, got) = server.api(&server.token(who), method, path, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path} as {who}: {status} {got}"
    );
    got
}

fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

#[tokio::test]
async fn a_household_from_an_anonymous_signal_to_a_closed_dossier() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let at = |who: &str| dir.path().join(who);
    let device_of = |who: &'static str| {
        let path = at(who);
        let server = &server;
        async move { device(server, Path::new(&path), who).await }
    };

    step(
        1,
        "A neighbour worries about the family at nr. 12: a signal, without a name (R11)",
    );
    let signal = api(&server, "worker", "POST", "/api/v1/signals",
        json!({ "summary": "buurman maakt zich zorgen over het gezin op nr. 12", "source": "neighbour" })).await;
    let signal = signal["id"].as_str().unwrap().to_owned();

    step(
        2,
        "Sanne agrees to be registered: the signal becomes her dossier",
    );
    let created = api(&server, "worker", "POST", &format!("/api/v1/signals/{signal}/dossier"), json!({
        "resident_agreed": true,
        "agreed_on": today().format(regie_core::document::DATE).unwrap(),
        "persons": [
            { "id": "p-sanne", "name": "Sanne Bakker", "birth_date": "1988-03-14" },
            { "id": "p-daan", "name": "Daan Bakker", "birth_date": "2015-06-01", "gezag": ["p-sanne"] }
        ],
        "assigned": ["anna", "bram"]
    })).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let dossier: DossierId = id.parse().unwrap();
    let base = format!("/api/v1/dossiers/{id}");
    api(
        &server,
        "worker",
        "POST",
        &format!("{base}/residents"),
        json!({ "person": "p-sanne" }),
    )
    .await;
    let (anna, sanne) = (device_of("worker").await, device_of("resident").await);
    sync(&anna).await;
    let record = read(&anna, dossier, &DocumentKey::Record).await;
    assert_eq!(
        record["triage"][0]["moment"], "aanmelding",
        "the agreement is on record"
    );

    step(
        3,
        "Vraagverheldering at the kitchen table: Anna records on her tablet, offline",
    );
    anna.add_triage(
        dossier,
        &new_triage(
            TriageMoment::Vraagverheldering,
            "ondersteuning bij schulden",
            None,
            &[],
        ),
    )
    .await
    .unwrap();
    let debts = anna
        .add_entry(
            dossier,
            &new_entry(
                EntryKind::Fact,
                "p-sanne",
                "Drie schuldeisers, samen 8.400 euro",
            ),
        )
        .await
        .unwrap();
    anna.add_entry(
        dossier,
        &new_entry(
            EntryKind::Opinion,
            "p-sanne",
            "Sanne lijkt overweldigd door de post",
        ),
    )
    .await
    .unwrap();
    anna.add_entry(
        dossier,
        &new_entry(
            EntryKind::Fact,
            "p-daan",
            "JOURNEY-DAAN school meldt verzuim",
        ),
    )
    .await
    .unwrap();
    anna.add_consent(
        dossier,
        &NewConsent {
            subject: PersonId::new("p-sanne").unwrap(),
            given_by: vec![PersonId::new("p-sanne").unwrap()],
            recipient: "ggd".into(),
            purpose: "dat-informatie".into(),
            items: vec!["contact".into(), "actie".into()],
            given_on: today(),
            expires_on: None,
        },
    )
    .await
    .unwrap();
    sync(&anna).await;

    step(
        4,
        "Sanne reads what is recorded about her — and nothing about Daan (R7)",
    );
    sync(&sanne).await;
    let view = read(
        &sanne,
        dossier,
        &DocumentKey::View(PersonId::new("p-sanne").unwrap()),
    )
    .await;
    let mut texts: Vec<&str> = view["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    texts.sort_unstable();
    assert_eq!(
        texts,
        [
            "Drie schuldeisers, samen 8.400 euro",
            "Sanne lijkt overweldigd door de post"
        ]
    );
    assert!(!view.to_string().contains("JOURNEY-DAAN"));

    step(
        5,
        "The plan: Sanne on her phone and Anna on her tablet, both offline, then both sync",
    );
    sanne
        .set_hulpvraag(dossier, "Ik wil weer overzicht over mijn geld")
        .await
        .unwrap();
    sanne
        .add_goal(
            dossier,
            &NewGoal {
                title: "Post elke week openen".into(),
                owner: None,
            },
        )
        .await
        .unwrap();
    let goal = anna
        .add_goal(
            dossier,
            &NewGoal {
                title: "Schuldhulp aanvragen".into(),
                owner: Some(Owner::Worker),
            },
        )
        .await
        .unwrap();
    anna.add_goal(
        dossier,
        &NewGoal {
            title: "Huisbezoek GGD".into(),
            owner: Some(Owner::Partner(OrgId::new("ggd").unwrap())),
        },
    )
    .await
    .unwrap();
    for c in [&sanne, &anna, &sanne] {
        sync(c).await;
    }
    let plan = read(&anna, dossier, &DocumentKey::Plan).await;
    assert_eq!(
        plan,
        read(&sanne, dossier, &DocumentKey::Plan).await,
        "converged"
    );
    assert_eq!(plan["hulpvraag"], "Ik wil weer overzicht over mijn geld");
    assert_eq!(plan["goals"].as_array().unwrap().len(), 3);
    assert!(plan.to_string().contains(&goal));

    step(
        6,
        "Maatwerk: Anna decides to share the debt fact with the back office (R6, R12)",
    );
    let to_bo = anna
        .add_triage(
            dossier,
            &new_triage(
                TriageMoment::Share,
                "besluit schuldhulpverlening",
                Some("backoffice"),
                &[&debts],
            ),
        )
        .await
        .unwrap();
    sync(&anna).await;
    let made = api(&server, "worker", "POST", &format!("{base}/maatwerk"), json!({
        "triage": to_bo, "applicant": "p-sanne", "requested": "Hulp bij mijn schulden",
        "assessed_need": "Schuldregeling met begeleiding", "proposed_voorziening": "Schuldhulpverlening",
        "facts": [debts],
    })).await;
    assert_eq!(made["key"], "maatwerk/1");
    let backoffice = device_of("backoffice").await;
    sync(&backoffice).await;
    let extract = read(&backoffice, dossier, &DocumentKey::Maatwerk(1)).await;
    assert_eq!(
        extract["request"]["supporting_facts"][0]["text"],
        "Drie schuldeisers, samen 8.400 euro"
    );
    assert!(
        !extract.to_string().contains("overweldigd"),
        "no opinions, nothing Sanne has not seen"
    );
    backoffice
        .decide_maatwerk(
            dossier,
            1,
            MaatwerkOutcome::Granted,
            "Voldoet aan de voorwaarden",
            today(),
        )
        .await
        .unwrap();
    sync(&backoffice).await;
    sync(&sanne).await;
    assert_eq!(
        read(&sanne, dossier, &DocumentKey::Maatwerk(1)).await["decision"]["outcome"],
        "granted"
    );

    step(
        7,
        "Case conference: the GGD does a home visit, on Sanne's consent (R5, R16)",
    );
    let to_ggd = anna
        .add_triage(
            dossier,
            &new_triage(
                TriageMoment::Share,
                "afstemming met de GGD",
                Some("partner:ggd"),
                &["contact", "actie"],
            ),
        )
        .await
        .unwrap();
    sync(&anna).await;
    api(&server, "worker", "POST", &format!("{base}/partners"), json!({
        "org": "ggd", "triage": to_ggd, "purpose": "dat-informatie", "subjects": ["p-sanne"], "ground": "consent",
        "contact": { "name": "Anna, wijkteam Noord", "phone": "020 555 0101" },
        "actions": [{ "id": "a-ggd-1", "description": "Huisbezoek jeugdverpleegkundige" }],
    })).await;
    let ggd = device_of("partner").await;
    sync(&ggd).await;
    let org = OrgId::new("ggd").unwrap();
    let dat = read(&ggd, dossier, &DocumentKey::Partner(org.clone())).await;
    assert_eq!(dat["assignment"]["actions"][0]["id"], "a-ggd-1");
    for secret in ["schuldeisers", "JOURNEY-DAAN", "Sanne Bakker"] {
        assert!(!dat.to_string().contains(secret), "DAT-information only");
    }
    ggd.update_partner_status(
        dossier,
        &org,
        "a-ggd-1",
        PartnerState::Done,
        Some("bezoek gedaan"),
    )
    .await
    .unwrap();
    sync(&ggd).await;
    sync(&anna).await;
    let status = read(&anna, dossier, &DocumentKey::Partner(org.clone())).await;
    assert_eq!(status["status"]["updates"][0]["state"], "done");

    step(8, "Evaluation: goals reviewed together with Sanne");
    anna.add_evaluation(
        dossier,
        today(),
        Some("Schulden in regeling, post wordt geopend"),
    )
    .await
    .unwrap();
    anna.add_triage(
        dossier,
        &new_triage(
            TriageMoment::Evaluatie,
            "ondersteuning bij schulden",
            None,
            &[],
        ),
    )
    .await
    .unwrap();
    let closing = anna
        .add_triage(
            dossier,
            &new_triage(
                TriageMoment::Afsluiting,
                "ondersteuning bij schulden",
                None,
                &[],
            ),
        )
        .await
        .unwrap();
    sync(&anna).await;

    step(
        9,
        "Closing: destroy-by date fixed, the GGD's access ends, nobody writes any more (R18, R23)",
    );
    let closed = api(
        &server,
        "worker",
        "POST",
        &format!("{base}/close"),
        json!({ "triage": closing, "regimes": [{ "regime": "wmo2015" }] }),
    )
    .await;
    let destroy_by = regie_core::retention::add_years(today(), 15)
        .format(regie_core::document::DATE)
        .unwrap();
    assert_eq!(closed["destroy_by"], json!(destroy_by));
    let report = sync(&ggd).await;
    assert!(
        report
            .purged
            .iter()
            .any(|p| p.key == DocumentKey::Partner(org.clone())),
        "the GGD's device purged the partner document: {:?}",
        report.purged
    );
    sync(&anna).await;
    let meta = read(&anna, dossier, &DocumentKey::Meta).await;
    assert_eq!(
        (meta["status"].as_str(), meta["destroy_by"].as_str()),
        (Some("closed"), Some(destroy_by.as_str()))
    );
    sync(&sanne).await;
    let refused = sanne.set_hulpvraag(dossier, "nog iets").await;
    assert!(
        matches!(
            refused,
            Err(regie_client::ClientError::Denied {
                reason: regie_core::policy::DenyReason::DossierClosed,
                ..
            })
        ),
        "a closed dossier is read, not written: {refused:?}"
    );
    assert_eq!(
        read(&sanne, dossier, &DocumentKey::Plan).await["hulpvraag"],
        "Ik wil weer overzicht over mijn geld"
    );
    server.stop().await;
}
