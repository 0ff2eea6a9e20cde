//! Oversight end to end (R2, R3, R9, R10, I3): breaking the glass with a warning first and a
//! time-boxed, audited grant that ends in `revoked`; district isolation in the listing and the
//! sync; the monthly break-glass report in two tiers, the unusual-access report and the
//! resident's "who looked at my dossier" over scripted months of audit rows; the access review;
//! and a tampered row showing up in the verifier and in the privacy officer's report.

use std::time::Duration;

use automerge::sync;
use automerge::{AutoCommit, ROOT, ReadDoc, transaction::Transactable};
use regie_core::id::DossierId;
use regie_core::principal::{Claims, Role};
use regie_core::relationship::Grant;
use regie_server::audit::{AuditAction, AuditEvent};
use regie_server::config::OversightArgs;
use regie_server::storage::{RelationEdit, Unit};
use regie_sync_protocol::{DocumentId, Message};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::support::*;

// ---- helpers ------------------------------------------------------------------------------

fn claims(sub: &str, role: Role, district: Option<&str>, team: Option<&str>) -> Claims {
    Claims {
        sub: sub.into(),
        role,
        district: district.map(Into::into),
        team: team.map(Into::into),
        org: None,
        person: None,
        citywide: false,
    }
}

fn mint(server: &TestServer, c: &Claims) -> String {
    server
        .state
        .auth
        .mint(c, Duration::from_secs(3600))
        .unwrap()
}

/// A worker of the city-wide team, who crosses district lines (R3).
fn citywide(server: &TestServer) -> String {
    let mut c = claims("eva", Role::Worker, None, Some("team-stad"));
    c.citywide = true;
    mint(server, &c)
}

pub(crate) async fn break_glass(
    server: &TestServer,
    token: &str,
    dossier: &str,
    body: Value,
) -> (u16, Value) {
    server
        .api(
            token,
            "POST",
            &format!("/api/v1/dossiers/{dossier}/break-glass"),
            body,
        )
        .await
}

/// Asks to break the glass with a reason and returns the confirmation body the warning asks for.
async fn warned(server: &TestServer, token: &str, dossier: &str) -> Value {
    let (status, warned) = break_glass(
        server,
        token,
        dossier,
        json!({ "reason": "moeder belt in crisis", "category": "crisis" }),
    )
    .await;
    assert_eq!(status, 200, "{warned}");
    json!({ "confirmation": warned["confirmation"] })
}

/// Warns and confirms; returns the grant.
async fn break_the_glass(server: &TestServer, token: &str, dossier: &str) -> Value {
    let confirmation = warned(server, token, dossier).await;
    let (status, granted) = break_glass(server, token, dossier, confirmation).await;
    assert_eq!(status, 201, "{granted}");
    granted
}

async fn events(server: &TestServer, dossier: Option<&str>) -> Vec<AuditEvent> {
    server
        .state
        .hub
        .store()
        .audit_events(dossier.map(|d| d.parse().unwrap()))
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect()
}

/// Creates a dossier as the functional admin.
async fn dossier(server: &TestServer, district: &str, team: &str, assigned: &[&str]) -> Value {
    let (status, created) = server
        .api(
            &server.token("admin"),
            "POST",
            "/api/v1/dossiers",
            json!({ "district": district, "team": team, "assigned": assigned,
                    "persons": [{ "id": "p-kees", "name": "Kees de Vries" }],
                    "resident_agreed": true, "agreed_on": "2026-11-01" }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

fn doc(created: &Value, key: &str) -> DocumentId {
    DocumentId::from_url(created["documents"][key].as_str().unwrap()).unwrap()
}

fn revoked(messages: &[Message]) -> Vec<(DocumentId, String)> {
    let mut out: Vec<_> = messages
        .iter()
        .filter_map(|m| match m {
            Message::Revoked {
                document_id,
                reason,
                ..
            } => Some((*document_id, reason.clone())),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

async fn unavailable(peer: &mut Peer, doc: DocumentId) -> bool {
    peer.request(doc).await;
    loop {
        match peer.next().await {
            Some(Message::DocUnavailable { document_id, .. }) if document_id == doc => {
                return true;
            }
            Some(Message::Sync { document_id, .. }) if document_id == doc => return false,
            Some(_) => continue,
            None => return false,
        }
    }
}

/// A scripted audit row, as the hub or the API would have written it at `at`.
fn row(
    at: OffsetDateTime,
    actor: &str,
    role: &str,
    action: AuditAction,
    dossier: &str,
) -> AuditEvent {
    let mut e = AuditEvent::new(at, actor, role, action);
    e.dossier = Some(dossier.into());
    e.persons = Some("p-daan,p-sanne".into());
    e
}

fn glass_row(at: OffsetDateTime, actor: &str, dossier: &str, category: &str) -> AuditEvent {
    let mut e = row(at, actor, "worker", AuditAction::BreakGlass, dossier);
    e.basis = Some("break_glass".into());
    e.detail = Some(category.into());
    e
}

fn open_row(
    at: OffsetDateTime,
    actor: &str,
    role: &str,
    dossier: &str,
    document: &str,
    basis: &str,
) -> AuditEvent {
    let mut e = row(at, actor, role, AuditAction::Open, dossier);
    e.document = Some(document.into());
    e.basis = Some(basis.into());
    e
}

async fn script(server: &TestServer, rows: &[AuditEvent]) {
    for r in rows {
        server.state.hub.store().append_audit(r).await.unwrap();
    }
}

/// A scripted use of the glass: the grant row and its audit row at the same instant.
async fn script_use(
    server: &TestServer,
    at: OffsetDateTime,
    user: &str,
    dossier: &str,
    category: &str,
    reason: &str,
) {
    let d: DossierId = dossier.parse().unwrap();
    server
        .state
        .hub
        .store()
        .commit_unit(&Unit {
            dossier: d,
            at,
            edits: &[RelationEdit::Grant(Grant {
                user: user.parse().unwrap(),
                reason: reason.into(),
                granted_at: at,
                expires_at: at + time::Duration::hours(8),
            })],
            new_document: None,
            changes: Vec::new(),
            audit: &[glass_row(at, user, dossier, category)],
        })
        .await
        .unwrap();
}

/// GETs a page; returns the status, the content type and the body.
async fn page(server: &TestServer, token: &str, path: &str) -> (u16, String, String) {
    let res = reqwest::Client::new()
        .get(format!("http://{}{path}", server.addr))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let kind = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, res.text().await.unwrap())
}

/// Checks that a page is an HTML5 document whose tags nest and close, and that no text or
/// attribute holds a raw `<` (everything from data is escaped).
fn assert_well_formed(html: &str) {
    const VOID: [&str; 4] = ["meta", "br", "hr", "link"];
    let rest = html
        .strip_prefix("<!DOCTYPE html>")
        .expect("starts with the HTML5 doctype");
    let mut open: Vec<&str> = Vec::new();
    let mut rest = rest;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>').expect("every tag ends");
        let tag = &after[..end];
        assert!(!tag.contains('<'), "a raw < inside a tag: {tag:?}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name), "closing tag {name} out of order");
        } else {
            let name = tag.split_whitespace().next().unwrap_or_default();
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric()),
                "odd tag {tag:?}"
            );
            if !VOID.contains(&name) {
                open.push(name);
            }
        }
        rest = &after[end + 1..];
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
    assert!(html.contains("<html lang=\"en\">"));
}

// ---- breaking the glass -------------------------------------------------------------------

#[tokio::test]
async fn breaking_the_glass_without_a_reason_or_a_category_is_refused_and_opens_nothing() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let carla = server.token("colleague");
    for body in [
        json!({ "category": "crisis" }),
        json!({ "reason": "   ", "category": "crisis" }),
        Value::Null,
    ] {
        let (status, v) = break_glass(&server, &carla, &house.id, body).await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["code"], "reason_required");
    }
    let (status, v) = break_glass(
        &server,
        &carla,
        &house.id,
        json!({ "reason": "moeder belt" }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "category_required");
    let (status, v) = break_glass(
        &server,
        &carla,
        &house.id,
        json!({ "reason": "moeder belt", "category": "nieuwsgierig" }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "category_required");
    let (status, v) = break_glass(&server, &carla, &house.id, json!("not an object")).await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "bad_request");

    let mut device = Peer::connect(&server, &carla).await.unwrap();
    assert!(unavailable(&mut device, house.doc("plan")).await);
    let refusals: Vec<AuditEvent> = events(&server, Some(&house.id))
        .await
        .into_iter()
        .filter(|e| {
            e.actor == "carla" && e.action == "deny" && e.detail.as_deref() == Some("break_glass")
        })
        .collect();
    assert_eq!(refusals.len(), 3, "each refusal is on record");
    assert!(refusals.iter().all(|e| e.outcome == "reason_required"));
    server.stop().await;
}

#[tokio::test]
async fn breaking_the_glass_warns_first_and_the_confirmation_grants_read_only_access_audited_as_an_emergency()
 {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let carla = server.token("colleague");
    let (status, warned) = break_glass(
        &server,
        &carla,
        &house.id,
        json!({ "reason": "Moeder belt in paniek; Anna en Bram zijn ziek", "category": "crisis" }),
    )
    .await;
    assert_eq!(status, 200, "{warned}");
    assert_eq!(warned["status"], "confirmation_required");
    assert!(
        warned["warning"]
            .as_str()
            .unwrap()
            .contains("emergency access"),
        "{warned}"
    );
    assert_eq!(warned["documents"], json!(["meta", "plan", "record"]));
    assert_eq!(warned["grant_seconds"], 8.0 * 3600.0);
    let token = warned["confirmation"].as_str().unwrap().to_owned();

    // The warning alone opens nothing.
    let mut device = Peer::connect(&server, &carla).await.unwrap();
    assert!(unavailable(&mut device, house.doc("plan")).await);

    // A made-up token, or carla's token in someone else's hands, confirms nothing.
    let (status, v) =
        break_glass(&server, &carla, &house.id, json!({ "confirmation": "00" })).await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("invalid_confirmation"))
    );
    let (status, v) = break_glass(
        &server,
        &citywide(&server),
        &house.id,
        json!({ "confirmation": token }),
    )
    .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("invalid_confirmation"))
    );

    let (status, granted) =
        break_glass(&server, &carla, &house.id, json!({ "confirmation": token })).await;
    assert_eq!(status, 201, "{granted}");
    assert_eq!(granted["status"], "granted");
    let keys: Vec<&String> = granted["documents"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["meta", "plan", "record"],
        "plan, record and meta only"
    );
    let from = OffsetDateTime::parse(
        granted["granted_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let to = OffsetDateTime::parse(
        granted["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        to - from,
        time::Duration::hours(8),
        "the default grant is 8 hours"
    );

    // The token is good once; a second breaking while the grant holds has nothing to break.
    let (status, v) =
        break_glass(&server, &carla, &house.id, json!({ "confirmation": token })).await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("invalid_confirmation"))
    );
    let (status, v) = break_glass(
        &server,
        &carla,
        &house.id,
        json!({ "reason": "nog eens", "category": "other" }),
    )
    .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (409, &json!("already_has_access"))
    );

    // The listing offers the three documents read-only, on the emergency basis.
    let (status, mine) = server
        .api(&carla, "GET", "/api/v1/me/documents", Value::Null)
        .await;
    assert_eq!(status, 200);
    let listed: Vec<(String, String, String)> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["key"].as_str().unwrap().to_owned(),
                d["access"].as_str().unwrap().to_owned(),
                d["basis"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = ["meta", "plan", "record"]
        .iter()
        .map(|k| ((*k).into(), "read".into(), "break_glass".into()))
        .collect();
    assert_eq!(listed, expected);

    // The device reads; a client that sends an edit anyway is refused whole.
    let plan = house.doc("plan");
    let mut device = Peer::connect(&server, &carla).await.unwrap();
    for key in ["plan", "record", "meta"] {
        device.request(house.doc(key)).await;
    }
    assert!(
        device
            .wait_for(plan, |d| d.get(ROOT, "goals").unwrap().is_some())
            .await
    );
    let d = device.doc(plan);
    let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
    d.splice_text(&h, 0, 0, "even meeschrijven").unwrap();
    d.commit();
    device.force_push(plan).await;
    let others = device.settle(Duration::from_millis(300)).await;
    assert!(
        others
            .iter()
            .any(|m| matches!(m, Message::Rejected { reason, .. } if reason == "read_only_access")),
        "{others:?}"
    );

    let log = events(&server, Some(&house.id)).await;
    let by_carla = |action: &str| -> Vec<&AuditEvent> {
        log.iter()
            .filter(|e| e.actor == "carla" && e.action == action)
            .collect()
    };
    let glass = by_carla("break_glass");
    assert_eq!(glass.len(), 2, "the warning and the grant: {glass:#?}");
    assert_eq!(glass[0].outcome, "warned");
    assert_eq!(glass[1].outcome, "allowed");
    assert_eq!(glass[1].basis.as_deref(), Some("break_glass"));
    assert_eq!(glass[1].detail.as_deref(), Some("crisis"));
    assert_eq!(glass[1].persons.as_deref(), Some("p-daan,p-sanne"));
    let mut opened: Vec<&str> = by_carla("open")
        .iter()
        .map(|e| {
            assert_eq!(e.basis.as_deref(), Some("break_glass"));
            e.document.as_deref().unwrap()
        })
        .collect();
    opened.sort();
    assert_eq!(opened, ["meta", "plan", "record"]);
    assert!(
        log.iter().all(|e| !format!("{e:?}").contains("paniek")),
        "the reason's words stay out of the log"
    );
    server.stop().await;
}

#[tokio::test]
async fn at_the_end_of_the_grant_the_colleagues_device_is_told_to_purge_the_dossier() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::builder()
        .dir(dir.path())
        .oversight(OversightArgs {
            break_glass: Duration::from_secs(3),
            ..OversightArgs::default()
        })
        .start()
        .await;
    let house = seed_household(&server).await;
    let carla = server.token("colleague");
    let mut device = Peer::connect(&server, &carla).await.unwrap();
    let granted = break_the_glass(&server, &carla, &house.id).await;
    let docs = ["plan", "record", "meta"].map(|k| house.doc(k));
    for d in docs {
        device.request(d).await;
    }
    assert!(
        device
            .wait_for(docs[0], |d| d.get(ROOT, "goals").unwrap().is_some())
            .await,
        "the grant reads: {granted}"
    );
    // The sweep, not a timer of the break-glass handler, ends it: the policy says the grant no
    // longer holds.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while revoked(&seen).len() < 3 && tokio::time::Instant::now() < deadline {
        seen.extend(device.settle(Duration::from_millis(200)).await);
    }
    let mut expected: Vec<(DocumentId, String)> = docs
        .iter()
        .map(|d| (*d, "grant_expired".to_owned()))
        .collect();
    expected.sort();
    assert_eq!(revoked(&seen), expected);
    assert!(unavailable(&mut device, docs[1]).await);
    let revocations = events(&server, Some(&house.id))
        .await
        .into_iter()
        .filter(|e| e.actor == "carla" && e.action == "revoke")
        .count();
    assert_eq!(revocations, 3);
    server.stop().await;
}

#[tokio::test]
async fn other_teams_and_other_districts_cannot_break_the_glass_and_a_citywide_worker_can() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let body = json!({ "reason": "melding van school", "category": "safety" });
    let other_team = mint(
        &server,
        &claims("olga", Role::Worker, Some("noord"), Some("team-noord-2")),
    );
    for (token, user, reason) in [
        (other_team, "olga", "not_team_colleague"),
        (server.token("zuid_worker"), "dirk", "other_district"),
        (server.token("manager"), "mia", "role_has_no_dossier_access"),
    ] {
        let (status, v) = break_glass(&server, &token, &house.id, body.clone()).await;
        assert_eq!(status, 404, "{user}: {v}");
        assert_eq!(
            v["error"]["code"], "not_found",
            "as if there were no such dossier"
        );
        let log = events(&server, Some(&house.id)).await;
        assert!(
            log.iter()
                .any(|e| e.actor == user && e.action == "deny" && e.outcome == reason),
            "{user}'s attempt is on record as {reason}"
        );
    }
    let (status, v) = break_glass(&server, &server.token("worker"), &house.id, body.clone()).await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (409, &json!("already_has_access"))
    );
    let (status, v) = break_glass(
        &server,
        &server.token("worker"),
        "00000000-0000-0000-0000-000000000000",
        body,
    )
    .await;
    assert_eq!((status, &v["error"]["code"]), (404, &json!("not_found")));

    let eva = citywide(&server);
    break_the_glass(&server, &eva, &house.id).await;
    let mut device = Peer::connect(&server, &eva).await.unwrap();
    device.request(house.doc("record")).await;
    assert!(
        device
            .wait_for(house.doc("record"), |d| d
                .get(ROOT, "entries")
                .unwrap()
                .is_some())
            .await
    );
    server.stop().await;
}

// ---- district isolation -------------------------------------------------------------------

fn listed_dossiers(listing: &Value) -> Vec<(String, String)> {
    listing
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["dossier"].as_str().unwrap().to_owned(),
                d["district"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn my_documents_and_the_sync_never_offer_another_districts_dossier() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let zuid = dossier(&server, "zuid", "team-zuid", &["dirk"]).await;
    let zuid_id = zuid["id"].as_str().unwrap();

    let (_, anna) = server
        .api(
            &server.token("worker"),
            "GET",
            "/api/v1/me/documents",
            Value::Null,
        )
        .await;
    let anna = listed_dossiers(&anna);
    assert!(!anna.is_empty());
    assert!(
        anna.iter()
            .all(|(d, district)| d == &house.id && district == "noord")
    );
    let (_, dirk) = server
        .api(
            &server.token("zuid_worker"),
            "GET",
            "/api/v1/me/documents",
            Value::Null,
        )
        .await;
    let dirk = listed_dossiers(&dirk);
    assert!(!dirk.is_empty());
    assert!(
        dirk.iter()
            .all(|(d, district)| d == zuid_id && district == "zuid")
    );

    // Neither a request nor an unasked sync gets a byte of the other district's documents.
    let mut tablet = Peer::connect(&server, &server.token("worker"))
        .await
        .unwrap();
    assert!(unavailable(&mut tablet, doc(&zuid, "plan")).await);
    let record = doc(&zuid, "record");
    tablet
        .docs
        .insert(record, (AutoCommit::new(), sync::State::new()));
    tablet.push(record).await;
    assert!(matches!(
        tablet.next().await,
        Some(Message::DocUnavailable { document_id, .. }) if document_id == record
    ));
    assert!(
        tablet
            .received
            .iter()
            .all(|m| !matches!(m, Message::Sync { .. }))
    );
    let log = events(&server, Some(zuid_id)).await;
    assert_eq!(
        log.iter()
            .filter(|e| e.actor == "anna" && e.action == "deny" && e.outcome == "other_district")
            .count(),
        2
    );
    server.stop().await;
}

#[tokio::test]
async fn a_worker_moved_to_another_district_loses_the_old_caseload_at_the_next_connection() {
    let server = TestServer::new().await;
    let zuid = dossier(&server, "zuid", "team-zuid", &["dirk"]).await;
    let zuid_id = zuid["id"].as_str().unwrap();
    let plan = doc(&zuid, "plan");
    // Connected before the move, and kept open.
    let _before = Peer::open(&server, "zuid_worker", plan, "goals").await;

    // The identity provider now says Dirk works in noord; the assignment row still exists.
    let moved = mint(
        &server,
        &claims("dirk", Role::Worker, Some("noord"), Some("team-noord")),
    );
    let (_, listing) = server
        .api(&moved, "GET", "/api/v1/me/documents", Value::Null)
        .await;
    assert!(
        listed_dossiers(&listing).iter().all(|(d, _)| d != zuid_id),
        "{listing}"
    );
    for device in ["tablet", "phone"] {
        let mut p = Peer::connect(&server, &moved).await.unwrap();
        for key in ["plan", "record", "meta"] {
            assert!(unavailable(&mut p, doc(&zuid, key)).await, "{device} {key}");
        }
    }
    let refused = events(&server, Some(zuid_id))
        .await
        .into_iter()
        .filter(|e| e.actor == "dirk" && e.action == "deny" && e.outcome == "other_district")
        .count();
    assert_eq!(refused, 6);
    server.stop().await;
}

// ---- reports ------------------------------------------------------------------------------

#[tokio::test]
async fn the_monthly_break_glass_report_counts_a_scripted_month_exactly_and_the_manager_tier_names_no_one()
 {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let h1 = house.id.clone();
    let second = dossier(&server, "noord", "team-noord", &["anna"]).await;
    let h2 = second["id"].as_str().unwrap().to_owned();
    let zuid = dossier(&server, "zuid", "team-zuid", &["dirk"]).await;
    let z = zuid["id"].as_str().unwrap().to_owned();

    // March 2024 on the Amsterdam clock: 29 Feb 23:00 UTC up to 31 March 22:00 UTC (summer time).
    let uses = [
        // Friday 1 March 00:30 local: in March, off-hours, week 9.
        (
            datetime!(2024-02-29 23:30 UTC),
            "carla",
            &h1,
            "other",
            "nachtelijke melding buren",
        ),
        // Monday 10:00, week 10.
        (
            datetime!(2024-03-04 09:00 UTC),
            "carla",
            &h1,
            "crisis",
            "moeder belt in paniek",
        ),
        // Wednesday 19:30: off-hours.
        (
            datetime!(2024-03-06 18:30 UTC),
            "eva",
            &h2,
            "safety",
            "<b>school</b> belt & meldt zorgen",
        ),
        // Saturday noon: off-hours.
        (
            datetime!(2024-03-09 12:00 UTC),
            "carla",
            &h2,
            "continuity",
            "waarneming weekend",
        ),
        // Thursday 06:30, week 11: off-hours.
        (
            datetime!(2024-03-14 05:30 UTC),
            "eva",
            &h1,
            "crisis",
            "huisarts belt vroeg",
        ),
        // Friday 29 March 18:30, week 13: still working hours.
        (
            datetime!(2024-03-29 17:30 UTC),
            "carla",
            &h1,
            "other",
            "overdracht ziekte",
        ),
        // Not March: 1 April 00:30 CEST, and 29 February 23:30 CET.
        (
            datetime!(2024-03-31 22:30 UTC),
            "carla",
            &h1,
            "crisis",
            "april",
        ),
        (
            datetime!(2024-02-29 22:30 UTC),
            "carla",
            &h1,
            "crisis",
            "februari",
        ),
        // Another team's dossier.
        (
            datetime!(2024-03-12 10:00 UTC),
            "dirk",
            &z,
            "crisis",
            "zuid",
        ),
    ];
    for (at, user, dossier, category, reason) in uses {
        script_use(&server, at, user, dossier, category, reason).await;
    }
    let mut warned = glass_row(datetime!(2024-03-20 10:00 UTC), "carla", &h1, "safety");
    warned.outcome = "warned".into();
    script(
        &server,
        &[
            warned,
            open_row(
                datetime!(2024-03-04 09:05 UTC),
                "carla",
                "worker",
                &h1,
                "plan",
                "break_glass",
            ),
            open_row(
                datetime!(2024-03-04 09:06 UTC),
                "carla",
                "worker",
                &h1,
                "record",
                "break_glass",
            ),
            open_row(
                datetime!(2024-03-14 05:40 UTC),
                "eva",
                "worker",
                &h1,
                "record",
                "break_glass",
            ),
            open_row(
                datetime!(2024-03-04 09:30 UTC),
                "anna",
                "worker",
                &h1,
                "record",
                "assignment",
            ),
        ],
    )
    .await;

    let mia = server.token("manager");
    let path = "/api/v1/teams/team-noord/break-glass-report?month=2024-03";
    let (status, summary) = server.api(&mia, "GET", path, Value::Null).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["team"], "team-noord");
    assert_eq!(summary["month"], "2024-03");
    assert_eq!(summary["period"]["from"], "2024-02-29T23:00:00Z");
    assert_eq!(summary["period"]["to"], "2024-03-31T22:00:00Z");
    assert_eq!(summary["total"], 6);
    // R27: below five a count is only said to be below five, zero included, so that a small
    // team's summary cannot point at one colleague.
    let few = "< 5";
    assert_eq!(
        summary["by_category"],
        json!({ "crisis": few, "safety": few, "continuity": few, "other": few })
    );
    assert_eq!(
        summary["by_week"],
        json!([
            { "week": "2024-W09", "count": few },
            { "week": "2024-W10", "count": few },
            { "week": "2024-W11", "count": few },
            { "week": "2024-W12", "count": few },
            { "week": "2024-W13", "count": few }
        ])
    );
    assert_eq!(summary["off_hours"], few);
    assert_eq!(summary["reads_under_grant"], few);
    let (status, kind, html) = page(&server, &mia, &format!("{path}&format=html")).await;
    assert_eq!(status, 200);
    assert_eq!(kind, "text/html; charset=utf-8");
    assert_well_formed(&html);
    assert!(html.contains("<td>2024-W10</td><td>&lt; 5</td>"), "{html}");
    for small in 0..5 {
        assert!(
            !html.contains(&format!("<td>{small}</td>")),
            "no count below five in the manager's page: {html}"
        );
    }
    let manager_view = format!("{summary}{html}");
    for secret in [
        "carla", "eva", "anna", "dirk", &h1, &h2, &z, "paniek", "school", "melding", "p-sanne",
    ] {
        assert!(
            !manager_view.contains(secret),
            "{secret} in the manager's report"
        );
    }

    // Only the privacy officer gets names, and only managers of the team get the summary.
    let (status, v) = server
        .api(&mia, "GET", &format!("{path}&tier=detail"), Value::Null)
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (403, &json!("privacy_officer_only"))
    );
    let zuid_manager = mint(
        &server,
        &claims("zoe", Role::Manager, Some("zuid"), Some("team-zuid")),
    );
    let (status, v) = server.api(&zuid_manager, "GET", path, Value::Null).await;
    assert_eq!((status, &v["error"]["code"]), (403, &json!("other_team")));
    let (status, _) = server
        .api(&server.token("colleague"), "GET", path, Value::Null)
        .await;
    assert_eq!(status, 403);
    let (status, v) = server
        .api(
            &mia,
            "GET",
            "/api/v1/teams/team-noord/break-glass-report?month=2024-3",
            Value::Null,
        )
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("invalid_month"))
    );

    let fg = server.token("privacy_officer");
    let (status, detail) = server.api(&fg, "GET", path, Value::Null).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["total"], 6);
    let named: Vec<(&str, &str, &str, bool)> = detail["uses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["user"].as_str().unwrap(),
                u["category"].as_str().unwrap(),
                u["week"].as_str().unwrap(),
                u["off_hours"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            ("carla", "other", "2024-W09", true),
            ("carla", "crisis", "2024-W10", false),
            ("eva", "safety", "2024-W10", true),
            ("carla", "continuity", "2024-W10", true),
            ("eva", "crisis", "2024-W11", true),
            ("carla", "other", "2024-W13", false),
        ]
    );
    assert_eq!(detail["uses"][1]["dossier"], h1.as_str());
    assert_eq!(detail["uses"][1]["reason"], "moeder belt in paniek");
    assert_eq!(detail["uses"][1]["local_time"], "2024-03-04T10:00:00+01:00");
    assert_eq!(detail["uses"][1]["reads"].as_array().unwrap().len(), 2);
    assert_eq!(detail["log"]["first_broken_seq"], Value::Null);
    let (status, _, html) = page(&server, &fg, &format!("{path}&format=html")).await;
    assert_eq!(status, 200);
    assert_well_formed(&html);
    assert!(
        html.contains("&lt;b&gt;school&lt;/b&gt; belt &amp; meldt zorgen"),
        "{html}"
    );
    assert!(!html.contains("<b>school"));
    let (status, summary_for_fg) = server
        .api(&fg, "GET", &format!("{path}&tier=summary"), Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(summary_for_fg, summary);

    // Reading a report is itself on record.
    let reads: Vec<(String, String)> = events(&server, None)
        .await
        .into_iter()
        .filter(|e| e.action == "audit_read")
        .map(|e| (e.actor, e.detail.unwrap_or_default()))
        .collect();
    for (actor, tier) in [("mia", "summary"), ("fg", "detail"), ("fg", "summary")] {
        let expected = format!("break_glass_report team=team-noord month=2024-03 tier={tier}");
        assert!(
            reads.iter().any(|(a, d)| a == actor && d == &expected),
            "{actor} {tier}: {reads:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn the_unusual_access_report_lists_emergency_reads_refusals_bursts_and_off_hours_access() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let h = house.id.clone();
    let base = datetime!(2024-05-07 08:00 UTC); // Tuesday 10:00 CEST
    let mut rows = Vec::new();
    let many: Vec<String> = (0..12)
        .map(|_| DossierId::new_random().to_string())
        .collect();
    for (i, d) in many.iter().enumerate() {
        rows.push(open_row(
            base + time::Duration::minutes(3 * i as i64),
            "snoop",
            "worker",
            d,
            "record",
            "assignment",
        ));
    }
    rows.push(open_row(
        datetime!(2024-05-07 21:00 UTC),
        "anna",
        "worker",
        &h,
        "record",
        "assignment",
    ));
    rows.push(open_row(
        datetime!(2024-05-07 21:30 UTC),
        "sanne",
        "resident",
        &h,
        "plan",
        "resident_link",
    ));
    rows.push(open_row(
        datetime!(2024-05-08 09:00 UTC),
        "carla",
        "worker",
        &h,
        "record",
        "break_glass",
    ));
    let mut refused = row(
        datetime!(2024-05-08 10:00 UTC),
        "dirk",
        "worker",
        AuditAction::Deny,
        &h,
    );
    refused.document = Some("plan".into());
    refused.outcome = "other_district".into();
    rows.push(refused);
    // June is another month.
    rows.push(open_row(
        datetime!(2024-06-01 02:00 UTC),
        "anna",
        "worker",
        &h,
        "plan",
        "assignment",
    ));
    script(&server, &rows).await;

    let fg = server.token("privacy_officer");
    let path = "/api/v1/reports/unusual-access?month=2024-05";
    let (status, u) = server.api(&fg, "GET", path, Value::Null).await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(u["burst_threshold"], 10);
    assert_eq!(u["bursts"].as_array().unwrap().len(), 1, "{u}");
    assert_eq!(u["bursts"][0]["user"], "snoop");
    assert_eq!(u["bursts"][0]["dossiers"], 12);
    assert_eq!(u["bursts"][0]["from"], "2024-05-07T08:00:00Z");
    assert_eq!(u["bursts"][0]["to"], "2024-05-07T08:33:00Z");
    let late: Vec<&str> = u["off_hours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["user"].as_str().unwrap())
        .collect();
    assert_eq!(late, ["anna"], "professionals only, and only in May");
    assert_eq!(u["emergency_reads"].as_array().unwrap().len(), 1);
    assert_eq!(u["emergency_reads"][0]["user"], "carla");
    assert_eq!(u["emergency_reads"][0]["team"], "team-noord");
    let refusals = u["refused"].as_array().unwrap();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0]["outcome"], "other_district");
    assert_eq!(u["log"]["first_broken_seq"], Value::Null);

    let (status, _, html) = page(&server, &fg, &format!("{path}&format=html")).await;
    assert_eq!(status, 200);
    assert_well_formed(&html);
    assert!(html.contains("snoop"));
    let (status, u) = server
        .api(&fg, "GET", &format!("{path}&threshold=13"), Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(u["bursts"], json!([]));
    let (status, v) = server
        .api(&fg, "GET", &format!("{path}&threshold=1"), Value::Null)
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("invalid_threshold"))
    );
    for who in ["manager", "worker", "admin"] {
        let (status, _) = server
            .api(&server.token(who), "GET", path, Value::Null)
            .await;
        assert_eq!(status, 403, "{who}");
    }
    assert!(events(&server, None).await.iter().any(|e| e.actor == "fg"
        && e.action == "audit_read"
        && e.detail.as_deref() == Some("unusual_access month=2024-05 threshold=10")));
    server.stop().await;
}

/// June 2024 on the household: what Sanne should see, and what she should not.
fn scripted_june(h: &str) -> (Vec<AuditEvent>, usize) {
    let mut rows = vec![
        // Seen: 1 June 00:00 local is June.
        open_row(
            datetime!(2024-05-31 22:00 UTC),
            "anna",
            "worker",
            h,
            "record",
            "assignment",
        ),
        open_row(
            datetime!(2024-06-03 08:00 UTC),
            "bram",
            "worker",
            h,
            "plan",
            "assignment",
        ),
        glass_row(datetime!(2024-06-10 20:00 UTC), "carla", h, "crisis"),
        open_row(
            datetime!(2024-06-10 20:05 UTC),
            "carla",
            "worker",
            h,
            "record",
            "break_glass",
        ),
        open_row(
            datetime!(2024-06-12 09:00 UTC),
            "ggd-1",
            "partner",
            h,
            "partner/ggd",
            "partner_involvement",
        ),
        open_row(
            datetime!(2024-06-13 09:00 UTC),
            "bo",
            "backoffice",
            h,
            "maatwerk/1",
            "backoffice",
        ),
    ];
    let seen = rows.len();
    // Not seen: 31 May 23:59 local, July, Daan's own view, Sanne herself, a refusal, a warning.
    rows.push(open_row(
        datetime!(2024-05-31 21:59 UTC),
        "anna",
        "worker",
        h,
        "record",
        "assignment",
    ));
    rows.push(open_row(
        datetime!(2024-07-01 10:00 UTC),
        "anna",
        "worker",
        h,
        "plan",
        "assignment",
    ));
    let mut daan = open_row(
        datetime!(2024-06-14 09:00 UTC),
        "anna",
        "worker",
        h,
        "view/p-daan",
        "assignment",
    );
    daan.persons = Some("p-daan".into());
    rows.push(daan);
    rows.push(open_row(
        datetime!(2024-06-15 09:00 UTC),
        "sanne",
        "resident",
        h,
        "plan",
        "resident_link",
    ));
    let mut refused = row(
        datetime!(2024-06-16 09:00 UTC),
        "dirk",
        "worker",
        AuditAction::Deny,
        h,
    );
    refused.outcome = "other_district".into();
    rows.push(refused);
    let mut warned = glass_row(datetime!(2024-06-17 09:00 UTC), "olga", h, "other");
    warned.outcome = "warned".into();
    rows.push(warned);
    (rows, seen)
}

#[tokio::test]
async fn a_residents_who_looked_view_lists_exactly_the_scripted_accesses_without_names() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let (rows, _) = scripted_june(&house.id);
    script(&server, &rows).await;
    let sanne = server.token("resident");
    let (status, v) = server
        .api(
            &sanne,
            "GET",
            "/api/v1/me/access-log?from=2024-06-01&to=2024-06-30",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["worker_names"], false);
    assert_eq!(v["period"]["from"], "2024-05-31T22:00:00Z");
    assert_eq!(v["period"]["to"], "2024-06-30T22:00:00Z");
    let seen: Vec<(&str, &str, &str, &str, &str, bool)> = v["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["dossier"], house.id.as_str());
            (
                a["date"].as_str().unwrap(),
                a["organisation"].as_str().unwrap(),
                a["role"].as_str().unwrap(),
                a["action"].as_str().unwrap(),
                a["document"].as_str().unwrap_or(""),
                a["emergency"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("2024-06-01", "wijkteam", "worker", "open", "record", false),
            ("2024-06-03", "wijkteam", "worker", "open", "plan", false),
            ("2024-06-10", "wijkteam", "worker", "break_glass", "", true),
            ("2024-06-10", "wijkteam", "worker", "open", "record", true),
            ("2024-06-12", "ggd", "partner", "open", "partner/ggd", false),
            (
                "2024-06-13",
                "municipality",
                "backoffice",
                "open",
                "maatwerk/1",
                false
            ),
        ]
    );
    let text = v.to_string();
    for name in ["anna", "bram", "carla", "ggd-1", "\"bo\"", "worker\":"] {
        assert!(!text.contains(name), "{name} in {text}");
    }
    // Reading one's own access log is on record too.
    assert!(
        events(&server, Some(&house.id))
            .await
            .iter()
            .any(|e| e.actor == "sanne"
                && e.action == "audit_read"
                && e.persons.as_deref() == Some("p-sanne"))
    );

    // Someone without a linked dossier sees nothing; a worker has no access log of their own.
    let mut other = cast("resident");
    other.sub = "piet".into();
    other.person = Some("p-piet".into());
    let (status, v) = server
        .api(
            &mint(&server, &other),
            "GET",
            "/api/v1/me/access-log",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["accesses"], json!([]));
    let (status, v) = server
        .api(
            &server.token("worker"),
            "GET",
            "/api/v1/me/access-log",
            Value::Null,
        )
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (403, &json!("residents_only"))
    );
    let (status, v) = server
        .api(
            &sanne,
            "GET",
            "/api/v1/me/access-log?from=2024-06-31",
            Value::Null,
        )
        .await;
    assert_eq!((status, &v["error"]["code"]), (400, &json!("invalid_date")));
    server.stop().await;
}

#[tokio::test]
async fn worker_names_appear_in_the_who_looked_view_only_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::builder()
        .dir(dir.path())
        .oversight(OversightArgs {
            show_worker_names: true,
            ..OversightArgs::default()
        })
        .start()
        .await;
    let house = seed_household(&server).await;
    let (rows, seen) = scripted_june(&house.id);
    script(&server, &rows).await;
    let (_, v) = server
        .api(
            &server.token("resident"),
            "GET",
            "/api/v1/me/access-log?from=2024-06-01&to=2024-06-30",
            Value::Null,
        )
        .await;
    assert_eq!(v["worker_names"], true);
    let names: Vec<&str> = v["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["worker"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), seen);
    assert_eq!(names, ["anna", "bram", "carla", "carla", "ggd-1", "bo"]);
    server.stop().await;
}

// ---- access review ------------------------------------------------------------------------

#[tokio::test]
async fn a_team_manager_reviews_who_can_reach_which_dossier_and_why_and_records_the_review() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    dossier(&server, "zuid", "team-zuid", &["dirk"]).await;
    break_the_glass(&server, &server.token("colleague"), &house.id).await;
    let mia = server.token("manager");
    let path = "/api/v1/teams/team-noord/access-review";
    let (status, v) = server.api(&mia, "GET", path, Value::Null).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["last_review"], Value::Null);
    let dossiers = v["dossiers"].as_array().unwrap();
    assert_eq!(dossiers.len(), 1, "only the team's own dossiers");
    assert_eq!(dossiers[0]["dossier"], house.id.as_str());
    let lines: Vec<(&str, &str)> = dossiers[0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["who"].as_str().unwrap(), l["basis"].as_str().unwrap()))
        .collect();
    assert_eq!(
        lines,
        [
            ("worker:anna", "assignment"),
            ("worker:bram", "assignment"),
            ("worker:carla", "break_glass"),
            ("person:p-sanne", "resident_link"),
            ("backoffice:noord", "backoffice"),
            ("org:ggd", "partner_involvement"),
        ]
    );
    assert_eq!(
        dossiers[0]["lines"][2]["documents"],
        json!(["plan", "record", "meta"])
    );

    let (status, review) = server
        .api(
            &mia,
            "POST",
            path,
            json!({ "note": "maandelijkse controle, in orde" }),
        )
        .await;
    assert_eq!(status, 201, "{review}");
    assert_eq!(review["reviewer"], "mia");
    assert_eq!(review["team"], "team-noord");
    assert_eq!(review["dossiers"], 1);
    assert_eq!(review["lines"], 6);
    assert_eq!(review["digest"].as_str().unwrap().len(), 64);
    let (_, v) = server.api(&mia, "GET", path, Value::Null).await;
    assert_eq!(v["last_review"], review);
    let (status, second) = server.api(&mia, "POST", path, Value::Null).await;
    assert_eq!(status, 201);
    assert_eq!(second["note"], Value::Null);
    assert_eq!(
        second["digest"], review["digest"],
        "same listing, same digest"
    );

    let (status, v) = server
        .api(&server.token("privacy_officer"), "GET", path, Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["last_review"]["id"], second["id"]);
    let zuid_manager = mint(
        &server,
        &claims("zoe", Role::Manager, Some("zuid"), Some("team-zuid")),
    );
    for (token, method, code) in [
        (zuid_manager.clone(), "GET", "other_team"),
        (zuid_manager, "POST", "other_team"),
        (server.token("worker"), "GET", "team_manager_only"),
        (server.token("privacy_officer"), "POST", "team_manager_only"),
    ] {
        let (status, v) = server.api(&token, method, path, Value::Null).await;
        assert_eq!((status, &v["error"]["code"]), (403, &json!(code)));
    }
    let log = events(&server, None).await;
    assert!(log.iter().any(|e| e.actor == "mia"
        && e.action == "read"
        && e.detail.as_deref() == Some("access_review team=team-noord")));
    assert_eq!(
        log.iter()
            .filter(|e| e.actor == "mia" && e.action == "review")
            .count(),
        2
    );
    server.stop().await;
}

// ---- log integrity ------------------------------------------------------------------------

#[tokio::test]
async fn a_tampered_break_glass_row_is_reported_with_its_position_by_the_verifier_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    script_use(
        &server,
        datetime!(2024-03-04 09:00 UTC),
        "carla",
        &house.id,
        "crisis",
        "moeder belt",
    )
    .await;
    let pool = &database_file(dir.path()).await;
    let (seq,): (i64,) =
        sqlx::query_as("SELECT seq FROM audit WHERE action = 'break_glass' AND actor = 'carla'")
            .fetch_one(pool)
            .await
            .unwrap();
    // Someone hides the emergency access by changing its category behind the server's back.
    drop_audit_update_trigger(pool).await;
    sqlx::query("UPDATE audit SET detail = 'continuity' WHERE seq = $1")
        .bind(seq)
        .execute(pool)
        .await
        .unwrap();
    let fg = server.token("privacy_officer");
    let (_, v) = server
        .api(&fg, "GET", "/api/v1/audit/verify", Value::Null)
        .await;
    assert_eq!(v["intact"], false);
    assert_eq!(v["first_broken_seq"], seq);
    let path = "/api/v1/teams/team-noord/break-glass-report?month=2024-03";
    let (_, detail) = server.api(&fg, "GET", path, Value::Null).await;
    assert_eq!(detail["log"]["first_broken_seq"], seq);
    let (_, _, html) = page(&server, &fg, &format!("{path}&format=html")).await;
    assert_well_formed(&html);
    assert!(html.contains(&format!("broken at row {seq}")), "{html}");
    server.stop().await;
}

#[tokio::test]
async fn every_oversight_route_is_in_the_openapi_document() {
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
        ("/api/v1/dossiers/{id}/break-glass", "post"),
        ("/api/v1/teams/{team}/break-glass-report", "get"),
        ("/api/v1/reports/unusual-access", "get"),
        ("/api/v1/me/access-log", "get"),
        ("/api/v1/teams/{team}/access-review", "get"),
        ("/api/v1/teams/{team}/access-review", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_break_glass_warning_or_access_review_whose_audit_row_cannot_be_written_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let carla = server.token("colleague");
    let rows_before = events(&server, None).await.len();
    let requests_before = rows_in(dir.path(), "break_glass_requests").await;

    let failing = fail_inserts_into(dir.path(), "audit").await;
    let (status, v) = break_glass(
        &server,
        &carla,
        &house.id,
        json!({ "reason": "moeder belt in crisis", "category": "crisis" }),
    )
    .await;
    assert_eq!(status, 500, "{v}");
    let (status, v) = server
        .api(
            &server.token("manager"),
            "POST",
            "/api/v1/teams/team-noord/access-review",
            json!({ "note": "maandelijkse controle" }),
        )
        .await;
    assert_eq!(status, 500, "{v}");
    failing.lift().await;

    assert_eq!(
        rows_in(dir.path(), "break_glass_requests").await,
        requests_before,
        "no request waits for a confirmation"
    );
    let team = "team-noord".parse().unwrap();
    assert_eq!(
        server
            .state
            .hub
            .store()
            .last_access_review(&team)
            .await
            .unwrap(),
        None,
        "no review recorded"
    );
    assert_eq!(
        events(&server, None).await.len(),
        rows_before,
        "no audit row"
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
    // With the disk working again, both go through.
    break_the_glass(&server, &carla, &house.id).await;
}

#[tokio::test]
async fn a_confirmation_token_grants_once_even_when_sent_many_times_at_once() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let carla = server.token("colleague");
    let body = warned(&server, &carla, &house.id).await;
    let answers = futures_util::future::join_all(
        (0..8).map(|_| break_glass(&server, &carla, &house.id, body.clone())),
    )
    .await;
    // One grants; the others find the token used (400) or the glass already broken (409).
    let grants = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(grants, 1, "{answers:?}");
    assert!(
        answers.iter().all(|(s, _)| [201, 400, 409].contains(s)),
        "{answers:?}"
    );
    let granted = events(&server, Some(&house.id))
        .await
        .into_iter()
        .filter(|e| e.action == AuditAction::BreakGlass.as_str() && e.outcome != "warned")
        .count();
    assert_eq!(
        granted, 1,
        "one emergency access on record, besides the warning"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_confirmation_whose_grant_cannot_be_stored_keeps_its_token_for_another_try() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let carla = server.token("colleague");
    let body = warned(&server, &carla, &house.id).await;

    let failing = fail_inserts_into(dir.path(), "grants").await;
    let (status, v) = break_glass(&server, &carla, &house.id, body.clone()).await;
    assert_eq!(status, 500, "{v}");
    failing.lift().await;

    // Token use and grant are one transaction: the failed one used nothing up.
    let (status, granted) = break_glass(&server, &carla, &house.id, body).await;
    assert_eq!(status, 201, "{granted}");
    server.stop().await;
}
