//! Signals end to end (R11, R12, I3): a first contact is recorded without a name and listed for
//! its own team only; it is closed without a dossier, or becomes a dossier by name only on the
//! resident's agreement, which the new dossier's `record` holds as its `aanmelding` triage
//! record; a signal is settled once; and every step is in the audit log without the summary.

use automerge::{AutoSerde, ROOT, ReadDoc};
use regie_core::id::SignalId;
use regie_server::storage::signal::SignalStatus;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::support::*;

const SUMMARY: &str = "buurman meldt zorgen over het gezin op nr. 12";

/// Registers a signal as `who`; returns its id.
pub(crate) async fn register(server: &TestServer, who: &str, summary: &str) -> String {
    let (status, body) = server
        .api(
            &server.token(who),
            "POST",
            "/api/v1/signals",
            json!({ "summary": summary, "source": "neighbour" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The ids of the open signals `who` is shown.
async fn listed(server: &TestServer, who: &str) -> Vec<String> {
    let (status, body) = server
        .api(&server.token(who), "GET", "/api/v1/signals", Value::Null)
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

fn today() -> String {
    OffsetDateTime::now_utc()
        .date()
        .format(regie_core::document::DATE)
        .unwrap()
}

/// The body that registers Sanne by name, with or without her agreement.
fn by_name(agreed: bool) -> Value {
    json!({
        "resident_agreed": agreed,
        "agreed_on": today(),
        "persons": [{ "id": "p-sanne", "name": "Sanne Bakker", "birth_date": "1988-03-14" }],
        "assigned": ["anna", "bram"]
    })
}

async fn audit(server: &TestServer) -> Vec<regie_server::audit::AuditEvent> {
    server
        .state
        .hub
        .store()
        .audit_events(None)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect()
}

#[tokio::test]
async fn a_signal_without_a_name_is_listed_for_its_own_team_and_nobody_else() {
    let server = TestServer::new().await;
    let id = register(&server, "worker", SUMMARY).await;

    let (status, body) = server
        .api(
            &server.token("worker2"),
            "GET",
            "/api/v1/signals",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    let signal = &body[0];
    assert_eq!(signal["id"], id.as_str());
    assert_eq!(signal["summary"], SUMMARY);
    assert_eq!(signal["source"], "neighbour");
    assert_eq!(signal["registered_by"], "anna");
    assert_eq!(
        (signal["district"].as_str(), signal["team"].as_str()),
        (Some("noord"), Some("team-noord"))
    );
    assert_eq!(listed(&server, "colleague").await, vec![id.clone()]);
    assert!(
        listed(&server, "zuid_worker").await.is_empty(),
        "another district's team sees none of it (R3)"
    );
    for who in [
        "resident",
        "backoffice",
        "partner",
        "manager",
        "privacy_officer",
        "admin",
    ] {
        let (status, body) = server
            .api(&server.token(who), "GET", "/api/v1/signals", Value::Null)
            .await;
        assert_eq!(status, 403, "{who}: {body}");
        let code = body["error"]["code"].as_str().unwrap();
        assert!(
            ["not_team_member", "role_has_no_dossier_access"].contains(&code),
            "{who}: {code}"
        );
    }
    let (status, _) = server
        .api(
            &server.token("zuid_worker"),
            "POST",
            &format!("/api/v1/signals/{id}/close"),
            json!({ "reason": "not ours" }),
        )
        .await;
    assert_eq!(
        status, 404,
        "another team's signal answers like an unknown one"
    );
    assert!(server.state.hub.dossiers().is_empty(), "no dossier exists");
}

#[tokio::test]
async fn a_signal_is_closed_without_a_dossier_and_stays_closed() {
    let server = TestServer::new().await;
    let id = register(&server, "worker", SUMMARY).await;
    let w2 = server.token("worker2");

    let (status, body) = server
        .api(
            &w2,
            "POST",
            &format!("/api/v1/signals/{id}/close"),
            json!({ "reason": "gezin al in beeld bij de huisarts; geen vraag aan het wijkteam" }),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(listed(&server, "worker").await.is_empty());
    let row = server
        .state
        .hub
        .store()
        .signal(id.parse::<SignalId>().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, SignalStatus::Closed);
    assert_eq!(row.closed_by.as_ref().map(|u| u.as_str()), Some("bram"));
    assert!(row.dossier.is_none());

    for (path, body) in [
        ("close", json!({ "reason": "again" })),
        ("dossier", by_name(true)),
    ] {
        let (status, answer) = server
            .api(&w2, "POST", &format!("/api/v1/signals/{id}/{path}"), body)
            .await;
        assert_eq!(status, 409, "{path}: {answer}");
        assert_eq!(answer["error"]["code"], "signal_settled");
    }
    assert!(server.state.hub.dossiers().is_empty());
}

#[tokio::test]
async fn registering_by_name_without_the_residents_agreement_is_refused_and_creates_nothing() {
    let server = TestServer::new().await;
    let id = register(&server, "worker", SUMMARY).await;

    let (status, body) = server
        .api(
            &server.token("worker"),
            "POST",
            &format!("/api/v1/signals/{id}/dossier"),
            by_name(false),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "agreement_missing");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("agreement") && message.contains("resident_agreed"),
        "the message says what to do: {message}"
    );
    assert!(server.state.hub.dossiers().is_empty(), "no dossier exists");
    assert_eq!(
        listed(&server, "worker").await,
        vec![id],
        "the signal stays open"
    );
}

#[tokio::test]
async fn with_the_residents_agreement_the_signal_becomes_a_dossier_whose_record_says_so() {
    let server = TestServer::new().await;
    let id = register(&server, "worker", SUMMARY).await;

    let (status, created) = server
        .api(
            &server.token("worker"),
            "POST",
            &format!("/api/v1/signals/{id}/dossier"),
            by_name(true),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let dossier = created["id"].as_str().unwrap();
    let entry = server.state.hub.dossier(dossier.parse().unwrap()).unwrap();
    assert_eq!(
        (entry.rel.district.as_str(), entry.rel.team.as_str()),
        ("noord", "team-noord"),
        "the dossier belongs where the signal did"
    );
    let row = server
        .state
        .hub
        .store()
        .signal(id.parse::<SignalId>().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, SignalStatus::Dossier);
    assert_eq!(row.dossier.map(|d| d.to_string()).as_deref(), Some(dossier));
    assert_eq!(
        row.agreed_on
            .map(|d| d.format(regie_core::document::DATE).unwrap()),
        Some(today())
    );
    assert!(listed(&server, "worker").await.is_empty());

    // An assigned colleague's device receives the triage record through the sync.
    let record =
        regie_sync_protocol::DocumentId::from_url(created["documents"]["record"].as_str().unwrap())
            .unwrap();
    let mut bram = Peer::connect(&server, &server.token("worker2"))
        .await
        .unwrap();
    bram.request(record).await;
    assert!(
        bram.wait_for(record, |d| d
            .get(ROOT, "triage")
            .ok()
            .flatten()
            .is_some_and(|(_, l)| d.length(&l) == 1))
            .await
    );
    let doc = serde_json::to_value(AutoSerde::from(&*bram.doc(record))).unwrap();
    let triage = &doc["triage"][0];
    assert_eq!(triage["moment"], "aanmelding");
    assert_eq!(triage["discussed_with_resident"], true);
    assert_eq!(triage["author"], "anna");
    assert_eq!(triage["items"], json!([]));
    let agreed = format!("op {} ingestemd met registratie op naam", today());
    for field in [
        "doelbinding",
        "proportionaliteit",
        "subsidiariteit",
        "decision",
    ] {
        let text = triage[field].as_str().unwrap();
        assert!(text.contains(&agreed), "{field}: {text}");
    }
    assert!(
        !doc.to_string().contains(SUMMARY),
        "the signal's summary is not copied into the record"
    );

    let (status, again) = server
        .api(
            &server.token("worker2"),
            "POST",
            &format!("/api/v1/signals/{id}/dossier"),
            by_name(true),
        )
        .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "signal_settled");
    assert_eq!(server.state.hub.dossiers().len(), 1);
}

#[tokio::test]
async fn registering_signals_and_dossiers_from_them_is_on_record_without_the_summary() {
    let server = TestServer::new().await;
    let closed = register(&server, "worker", "SENTINEL-signal-summary").await;
    let kept = register(&server, "worker", SUMMARY).await;
    listed(&server, "worker2").await;
    let w = server.token("worker");
    let (status, _) = server
        .api(
            &w,
            "POST",
            &format!("/api/v1/signals/{closed}/close"),
            json!({ "reason": "SENTINEL-close-reason" }),
        )
        .await;
    assert_eq!(status, 204);
    let (status, created) = server
        .api(
            &w,
            "POST",
            &format!("/api/v1/signals/{kept}/dossier"),
            by_name(true),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let dossier = created["id"].as_str().unwrap();

    let events = audit(&server).await;
    let find = |action: &str, actor: &str, detail: &str| {
        events
            .iter()
            .find(|e| {
                e.action == action
                    && e.actor == actor
                    && e.detail.as_deref().is_some_and(|d| d.contains(detail))
            })
            .unwrap_or_else(|| panic!("no {action} by {actor} about {detail} in {events:#?}"))
    };
    let registered = find("signal", "anna", &format!("registered signal {closed}"));
    assert_eq!(registered.basis.as_deref(), Some("team_membership"));
    find("read", "bram", "listed 2 open signals");
    find("signal", "anna", &format!("closed signal {closed}"));
    let became = find(
        "signal",
        "anna",
        &format!("signal {kept} registered by name"),
    );
    assert_eq!(became.dossier.as_deref(), Some(dossier));
    assert!(became.detail.as_deref().unwrap().contains(&today()));
    let create = events
        .iter()
        .find(|e| e.action == "create" && e.dossier.as_deref() == Some(dossier))
        .expect("the dossier's creation is on record");
    assert_eq!(create.actor, "anna");
    let write = find("write", "anna", "aanmelding");
    assert_eq!(write.dossier.as_deref(), Some(dossier));
    assert_eq!(write.document.as_deref(), Some("record"));
    assert_eq!(write.persons.as_deref(), Some("p-sanne"));
    assert!(
        events
            .iter()
            .all(|e| !format!("{e:?}").contains("SENTINEL")),
        "summaries and reasons never enter the log"
    );
}

#[tokio::test]
async fn a_signal_needs_a_summary_a_known_source_and_agreement_on_a_real_day() {
    let server = TestServer::new().await;
    let w = server.token("worker");
    for body in [
        json!({ "summary": "   ", "source": "neighbour" }),
        json!({ "summary": "zorgen", "source": "Jan Jansen" }),
    ] {
        let (status, answer) = server.api(&w, "POST", "/api/v1/signals", body).await;
        assert_eq!(status, 400, "{answer}");
    }
    let id = register(&server, "worker", SUMMARY).await;
    let path = format!("/api/v1/signals/{id}/dossier");
    let mut future = by_name(true);
    future["agreed_on"] = json!("2999-01-01");
    let mut undated = by_name(true);
    undated["agreed_on"] = Value::Null;
    let mut nameless = by_name(true);
    nameless["persons"] = json!([]);
    for body in [future, undated, nameless] {
        let (status, answer) = server.api(&w, "POST", &path, body).await;
        assert_eq!(status, 400, "{answer}");
    }
    assert!(server.state.hub.dossiers().is_empty());
    assert_eq!(listed(&server, "worker").await, vec![id]);
}

#[tokio::test]
async fn every_signal_route_is_in_the_openapi_document() {
    let server = TestServer::new().await;
    let (status, doc) = server
        .api(
            &server.token("worker"),
            "GET",
            "/api/v1/openapi.json",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    for (path, method) in [
        ("/api/v1/signals", "get"),
        ("/api/v1/signals", "post"),
        ("/api/v1/signals/{id}/close", "post"),
        ("/api/v1/signals/{id}/dossier", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is documented"
        );
    }
}

#[tokio::test]
async fn registering_by_name_directly_also_needs_the_agreement_and_records_it() {
    let server = TestServer::new().await;
    let w = server.token("worker");
    let mut body = by_name(false);
    body["district"] = json!("noord");
    body["team"] = json!("team-noord");
    let (status, refused) = server
        .api(&w, "POST", "/api/v1/dossiers", body.clone())
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("agreement_missing"))
    );
    assert!(
        server.state.hub.dossiers().is_empty(),
        "nobody was registered"
    );

    body["resident_agreed"] = json!(true);
    let (status, created) = server.api(&w, "POST", "/api/v1/dossiers", body).await;
    assert_eq!(status, 201, "{created}");
    let record =
        regie_sync_protocol::DocumentId::from_url(created["documents"]["record"].as_str().unwrap())
            .unwrap();
    let doc = server.state.hub.snapshot(record).await.unwrap().unwrap();
    let json = serde_json::to_value(AutoSerde::from(&doc)).unwrap();
    assert_eq!(json["triage"][0]["moment"], "aanmelding");
    assert!(
        json["triage"][0]["decision"]
            .as_str()
            .unwrap()
            .contains(&today()),
        "the record says when the resident agreed: {}",
        json["triage"][0]
    );
}

#[tokio::test]
async fn a_signal_whose_audit_row_cannot_be_written_is_neither_registered_nor_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let kept = register(&server, "worker", SUMMARY).await;
    let rows_before = audit(&server).await.len();

    // Registering: the audit row fails, so the signal is not there either.
    let failing = fail_inserts_into(dir.path(), "audit").await;
    let (status, body) = server
        .api(
            &server.token("worker"),
            "POST",
            "/api/v1/signals",
            json!({ "summary": "een tweede melding", "source": "school" }),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    // Closing: the audit row fails, so the signal stays open.
    let (status, body) = server
        .api(
            &server.token("worker"),
            "POST",
            &format!("/api/v1/signals/{kept}/close"),
            json!({ "reason": "geen zorgen na huisbezoek" }),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    failing.lift().await;

    let open = server
        .state
        .hub
        .store()
        .open_signals(&"team-noord".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        open.iter().map(|s| s.id.to_string()).collect::<Vec<_>>(),
        std::slice::from_ref(&kept),
        "no second signal, and the first still open"
    );
    assert_eq!(
        audit(&server).await.len(),
        rows_before,
        "no audit row either"
    );
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
    // Once the disk works again, the same close goes through with its row.
    let (status, body) = server
        .api(
            &server.token("worker"),
            "POST",
            &format!("/api/v1/signals/{kept}/close"),
            json!({ "reason": "geen zorgen na huisbezoek" }),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(
        audit(&server)
            .await
            .iter()
            .any(|e| e.detail.as_deref() == Some(&format!("closed signal {kept}")))
    );
}
