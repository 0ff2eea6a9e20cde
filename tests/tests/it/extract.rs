//! Need to know (R5, R6, I1): the back office gets only its `maatwerk/<n>` extract and a chain
//! partner only its `partner/<org>` DAT-information. Sentinels planted in every part of the
//! professional record — entries, triage records, consents, a safety weighing, an eigen
//! verklaring — and in the plan and `meta` reach neither, whether they were connected while it
//! was written or connect afterwards, while what the worker writes for them does.

use std::time::Duration;

use automerge::{ObjType, ROOT, ReadDoc, transaction::Transactable};
use serde_json::json;

use crate::support::*;

const ENTRY_SANNE: &str = "SENTINEL-entry-sanne-0a4f";
const ENTRY_DAAN: &str = "SENTINEL-entry-daan-d2c7";
const TRIAGE: &str = "SENTINEL-triage-61be";
const CONSENT: &str = "SENTINEL-consent-b93a";
const SAFETY: &str = "SENTINEL-safety-4e08";
const STATEMENT: &str = "SENTINEL-statement-ac15";
const PLAN: &str = "SENTINEL-plan-7d92";
/// What `seed_household` put in `meta` and nowhere else: Daan's name and both birth dates.
const META: [&str; 3] = ["Daan Bakker", "2015-06-01", "1988-03-14"];

const FOR_BACKOFFICE: &str = "Schuldhulpverlening LEGIT-maatwerk-3c8e";
const FOR_GGD: &str = "Anna, wijkteam Noord LEGIT-ggd-6f1a";

fn record_sentinels() -> Vec<&'static str> {
    vec![ENTRY_SANNE, ENTRY_DAAN, TRIAGE, CONSENT, SAFETY, STATEMENT]
}

fn strings(d: &mut automerge::AutoCommit, obj: &automerge::ObjId, key: &str, values: &[&str]) {
    let l = d.put_object(obj, key, ObjType::List).unwrap();
    for (i, v) in values.iter().enumerate() {
        d.insert(&l, i, *v).unwrap();
    }
}

/// The worker records everything a worker may record; Sanne adds an eigen verklaring.
async fn plant(server: &TestServer, house: &Household) {
    let record = house.doc("record");
    let mut anna = Peer::open(server, "worker", record, "entries").await;
    anna.edit(record, |d| {
        entry(
            d,
            "e-sanne",
            &["p-sanne"],
            &format!("Sanne is somber {ENTRY_SANNE}"),
        );
        entry(
            d,
            "e-daan",
            &["p-daan"],
            &format!("Daan wordt gepest {ENTRY_DAAN}"),
        );
        let triage = d.get(ROOT, "triage").unwrap().unwrap().1;
        let t = d.insert_object(&triage, 0, ObjType::Map).unwrap();
        d.put(&t, "id", "t-school").unwrap();
        d.put(&t, "moment", "share").unwrap();
        d.put(&t, "recipient", "partner:school").unwrap();
        strings(d, &t, "items", &["contact"]);
        d.put(&t, "purpose", format!("afstemming met school {TRIAGE}"))
            .unwrap();
        for k in [
            "doelbinding",
            "proportionaliteit",
            "subsidiariteit",
            "decision",
        ] {
            d.put(&t, k, "onderbouwd").unwrap();
        }
        d.put(&t, "discussed_with_resident", true).unwrap();
        let consents = d.get(ROOT, "consents").unwrap().unwrap().1;
        let c = d.insert_object(&consents, 0, ObjType::Map).unwrap();
        d.put(&c, "id", "c-school").unwrap();
        d.put(&c, "subject", "p-daan").unwrap();
        strings(d, &c, "given_by", &["p-sanne"]);
        d.put(&c, "recipient", "school").unwrap();
        d.put(&c, "purpose", format!("zorgoverleg {CONSENT}"))
            .unwrap();
        strings(d, &c, "items", &["contact"]);
        d.put(&c, "given_on", "2026-01-05").unwrap();
        let safety = d.get(ROOT, "safety").unwrap().unwrap().1;
        let s = d.insert_object(&safety, 0, ObjType::Map).unwrap();
        d.put(&s, "id", "w-vt").unwrap();
        d.put(&s, "ground", "veilig_thuis").unwrap();
        d.put(&s, "weighing", format!("Signalen van geweld {SAFETY}"))
            .unwrap();
        d.put(&s, "recipient", "veilig-thuis").unwrap();
        strings(d, &s, "items", &["contact"]);
        d.put(&s, "decided_by", "anna").unwrap();
    })
    .await;
    let others = anna.settle(Duration::from_millis(100)).await;
    assert!(
        others.is_empty(),
        "the record edit was accepted: {others:?}"
    );

    let plan = house.doc("plan");
    let mut anna = Peer::open(server, "worker", plan, "hulpvraag").await;
    anna.edit(plan, |d| {
        let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
        d.splice_text(&h, 0, 0, &format!("Rust in huis {PLAN}"))
            .unwrap();
    })
    .await;

    let (status, body) = server
        .api(
            &server.token("resident"),
            "POST",
            &format!("/api/v1/dossiers/{}/statements", house.id),
            json!({ "entry": "e-sanne", "text": format!("Ik ben niet somber {STATEMENT}") }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// The worker fills in the back office's extract and the GGD's assignment.
async fn write_extracts(server: &TestServer, house: &Household) {
    let maatwerk = house.doc("maatwerk/1");
    let mut anna = Peer::open(server, "worker", maatwerk, "request").await;
    anna.edit(maatwerk, |d| {
        let request = d.get(ROOT, "request").unwrap().unwrap().1;
        d.put(&request, "requested", FOR_BACKOFFICE).unwrap();
        d.put(&request, "triage", "t-backoffice").unwrap();
    })
    .await;
    let partner = house.doc("partner/ggd");
    anna.request(partner).await;
    assert!(
        anna.wait_for(partner, |d| d.get(ROOT, "assignment").unwrap().is_some())
            .await
    );
    anna.edit(partner, |d| {
        let assignment = d.get(ROOT, "assignment").unwrap().unwrap().1;
        let contact = d.put_object(&assignment, "contact", ObjType::Map).unwrap();
        d.put(&contact, "name", FOR_GGD).unwrap();
        d.put(&contact, "phone", "020-5551234").unwrap();
        let actions = d.put_object(&assignment, "actions", ObjType::List).unwrap();
        let a = d.insert_object(&actions, 0, ObjType::Map).unwrap();
        d.put(&a, "id", "a-1").unwrap();
        d.put(&a, "description", "Huisbezoek jeugdverpleegkundige")
            .unwrap();
    })
    .await;
    let others = anna.settle(Duration::from_millis(100)).await;
    assert!(others.is_empty(), "the extracts were accepted: {others:?}");
}

#[tokio::test]
async fn the_back_office_and_a_partner_get_their_extract_and_nothing_of_the_record_plan_or_meta() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let keys: Vec<String> = house.docs.keys().cloned().collect();
    let all_but =
        |key: &str| -> Vec<String> { keys.iter().filter(|k| k.as_str() != key).cloned().collect() };

    // Connected and asking for every document before anything is written.
    let (_, _, mut bo) = probe(&server, &house, "backoffice").await;
    let (_, _, mut ggd) = probe(&server, &house, "partner").await;

    plant(&server, &house).await;
    write_extracts(&server, &house).await;

    let (maatwerk, partner) = (house.doc("maatwerk/1"), house.doc("partner/ggd"));
    assert!(
        bo.wait_for(maatwerk, |d| {
            d.get(ROOT, "request")
                .unwrap()
                .and_then(|(_, r)| text_at(d, &r, "requested"))
                .as_deref()
                == Some(FOR_BACKOFFICE)
        })
        .await,
        "the back office receives the extract live"
    );
    assert!(
        ggd.wait_for(partner, |d| {
            d.get(ROOT, "assignment")
                .unwrap()
                .and_then(|(_, a)| d.get(&a, "contact").unwrap())
                .and_then(|(_, c)| text_at(d, &c, "name"))
                .as_deref()
                == Some(FOR_GGD)
        })
        .await,
        "the partner receives its assignment live"
    );
    // Asking again once there is content changes nothing.
    for peer in [&mut bo, &mut ggd] {
        for id in house.docs.values() {
            peer.request(*id).await;
        }
        peer.settle(Duration::from_millis(300)).await;
    }

    // And devices that connect afterwards get the same.
    let (bo_synced, mut bo_refused, bo_late) = probe(&server, &house, "backoffice").await;
    let (ggd_synced, mut ggd_refused, ggd_late) = probe(&server, &house, "partner").await;
    bo_refused.sort();
    ggd_refused.sort();
    assert_eq!(
        (bo_synced, bo_refused),
        (vec!["maatwerk/1".to_owned()], all_but("maatwerk/1"))
    );
    assert_eq!(
        (ggd_synced, ggd_refused),
        (vec!["partner/ggd".to_owned()], all_but("partner/ggd"))
    );

    // The scan finds each sentinel where it may be: the record's and plan's with an assigned
    // worker, the eigen verklaring and the entry about Sanne in her own view.
    let (_, _, mut bram) = probe(&server, &house, "worker2").await;
    for s in record_sentinels().into_iter().chain([PLAN]).chain(META) {
        assert!(bram.saw(s), "the assigned worker sees {s}");
    }
    let (_, _, mut sanne) = probe(&server, &house, "resident").await;
    assert!(sanne.saw(STATEMENT) && sanne.saw(ENTRY_SANNE) && sanne.saw(PLAN));

    let mut peers = [
        ("back office (early)", bo, FOR_BACKOFFICE, FOR_GGD),
        ("back office (late)", bo_late, FOR_BACKOFFICE, FOR_GGD),
        ("partner (early)", ggd, FOR_GGD, FOR_BACKOFFICE),
        ("partner (late)", ggd_late, FOR_GGD, FOR_BACKOFFICE),
    ];
    for (who, peer, theirs, not_theirs) in &mut peers {
        assert!(peer.saw(theirs), "{who} has its extract");
        assert!(!peer.saw(not_theirs), "{who} received the other extract");
        for s in record_sentinels().into_iter().chain([PLAN]).chain(META) {
            assert!(!peer.saw(s), "{who} received {s}");
        }
    }
    server.stop().await;
}
