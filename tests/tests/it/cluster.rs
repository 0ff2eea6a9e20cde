//! Several instances on one PostgreSQL database (issue 17): a device may connect to any
//! instance; a change accepted on one reaches devices on the others (change feed, LISTEN/NOTIFY,
//! catch-up after a reconnect); concurrent changes to one document on two instances both commit
//! and converge; a write is checked against the latest committed relationships, so a forbidden
//! write racing a revocation on another instance is rejected; a relationship change on one
//! instance revokes on all; the audit log stays one chain. Run with
//! `REGIE_TEST_DATABASE=postgres`; a SQLite run skips them (one file, one instance).

use std::time::Duration;

use automerge::{ObjType, ROOT, ReadDoc, transaction::Transactable};
use regie_sync_protocol::{DocumentId, Message};
use serde_json::json;

use crate::erasure::{decide, file};
use crate::rights::report_annas_tablet_lost;
use crate::support::*;

const SENTINEL: &str = "SENTINEL-c1u5-record-only";

/// Three instances on one database: the first owns it.
async fn three_instances() -> Option<(TestServer, TestServer, TestServer)> {
    if !cluster_database() {
        return None;
    }
    let a = TestServer::new().await;
    let b = TestServer::builder().database_of(&a).start().await;
    let c = TestServer::builder().database_of(&a).start().await;
    Some((a, b, c))
}

/// Waits until `server` has taken the dossier another instance made into memory.
async fn knows(server: &TestServer, house: &Household) {
    let id = house.id.parse().unwrap();
    assert!(
        eventually(PATIENCE, || std::future::ready(
            server.state.hub.dossier(id).map(|_| ())
        ))
        .await
        .is_some(),
        "the other instance never learned of the dossier"
    );
}

/// Connects `who` to `server` and syncs `doc` until its `hulpvraag` is there.
async fn open_plan(server: &TestServer, who: &str, plan: DocumentId) -> Peer {
    let mut peer = Peer::connect(server, &server.token(who)).await.unwrap();
    peer.request(plan).await;
    assert!(
        peer.wait_for(plan, |d| d.get(ROOT, "hulpvraag").unwrap().is_some())
            .await,
        "{who} never got the plan"
    );
    peer
}

fn hulpvraag(d: &automerge::AutoCommit) -> String {
    let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
    d.text(&h).unwrap()
}

async fn write_hulpvraag(peer: &mut Peer, plan: DocumentId, text: &str) {
    let text = text.to_owned();
    peer.edit(plan, move |d| {
        let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
        let end = d.length(&h);
        d.splice_text(&h, end, 0, &text).unwrap();
    })
    .await;
}

fn rejected(messages: &[Message]) -> bool {
    messages
        .iter()
        .any(|m| matches!(m, Message::Rejected { .. }))
}

#[tokio::test]
async fn edits_made_on_three_instances_reach_the_devices_on_the_others_and_converge() {
    let Some((a, b, c)) = three_instances().await else {
        return;
    };
    let house = seed_household(&a).await;
    knows(&b, &house).await;
    knows(&c, &house).await;
    let plan = house.doc("plan");
    let mut anna = open_plan(&a, "worker", plan).await;
    let mut bram = open_plan(&b, "worker2", plan).await;
    let mut sanne = open_plan(&c, "resident", plan).await;
    for round in 0..5 {
        write_hulpvraag(&mut anna, plan, &format!(" a{round}")).await;
        write_hulpvraag(&mut bram, plan, &format!(" b{round}")).await;
    }
    for peer in [&mut anna, &mut bram, &mut sanne] {
        assert!(
            peer.wait_for(plan, |d| {
                let t = hulpvraag(d);
                (0..5).all(|r| t.contains(&format!(" a{r}")) && t.contains(&format!(" b{r}")))
            })
            .await,
            "every edit reaches every instance's devices"
        );
    }
    let texts: Vec<String> = [&mut anna, &mut bram, &mut sanne]
        .into_iter()
        .map(|p| hulpvraag(p.doc(plan)))
        .collect();
    assert!(texts.windows(2).all(|w| w[0] == w[1]), "{texts:?}");
    assert!(
        a.state.hub.store().verify_audit().await.unwrap().intact(),
        "one audit chain from three instances"
    );
}

#[tokio::test]
async fn devices_spread_over_three_instances_make_random_edits_across_shared_dossiers_and_converge()
{
    let Some((a, b, c)) = three_instances().await else {
        return;
    };
    let houses = [seed_household(&a).await, seed_household(&b).await];
    for server in [&a, &b, &c] {
        for house in &houses {
            knows(server, house).await;
        }
    }
    let plans: Vec<DocumentId> = houses.iter().map(|h| h.doc("plan")).collect();
    let mut devices = Vec::new();
    for (server, who) in [
        (&a, "worker"),
        (&b, "worker2"),
        (&c, "worker"),
        (&c, "worker2"),
        (&b, "worker"),
    ] {
        let mut peer = open_plan(server, who, plans[0]).await;
        peer.request(plans[1]).await;
        assert!(
            peer.wait_for(plans[1], |d| d.get(ROOT, "hulpvraag").unwrap().is_some())
                .await
        );
        devices.push(peer);
    }
    // A fixed xorshift sequence: which device edits which dossier, two at a time.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let mut tokens = vec![Vec::new(), Vec::new()];
    for i in 0..16 {
        let (d1, d2) = (next(devices.len()), next(devices.len() - 1));
        let d2 = if d2 >= d1 { d2 + 1 } else { d2 };
        let (p1, p2) = (next(2), next(2));
        let (t1, t2) = (format!(" e{i}x"), format!(" e{i}y"));
        tokens[p1].push(t1.clone());
        tokens[p2].push(t2.clone());
        let (lo, hi) = (d1.min(d2), d1.max(d2));
        let (left, right) = devices.split_at_mut(hi);
        let (first, second) = (&mut left[lo], &mut right[0]);
        let (first_plan, second_plan, first_text, second_text) = if d1 < d2 {
            (plans[p1], plans[p2], &t1, &t2)
        } else {
            (plans[p2], plans[p1], &t2, &t1)
        };
        tokio::join!(
            write_hulpvraag(first, first_plan, first_text),
            write_hulpvraag(second, second_plan, second_text),
        );
    }
    for device in &mut devices {
        assert!(!rejected(&device.settle(Duration::from_millis(50)).await));
        for (plan, tokens) in plans.iter().zip(&tokens) {
            assert!(
                device
                    .wait_for(*plan, |d| {
                        let t = hulpvraag(d);
                        tokens.iter().all(|k| t.contains(k.as_str()))
                    })
                    .await,
                "every device has every edit of both dossiers"
            );
        }
    }
    for plan in &plans {
        let texts: Vec<String> = devices
            .iter_mut()
            .map(|p| hulpvraag(p.doc(*plan)))
            .collect();
        assert!(texts.windows(2).all(|w| w[0] == w[1]), "{texts:?}");
    }
    assert!(a.state.hub.store().verify_audit().await.unwrap().intact());
}

#[tokio::test]
async fn a_record_sentinel_written_on_one_instance_reaches_no_outsider_on_another() {
    let Some((a, b, c)) = three_instances().await else {
        return;
    };
    let house = seed_household(&a).await;
    knows(&b, &house).await;
    knows(&c, &house).await;
    let mut outsiders = Vec::new();
    for (server, who) in [
        (&b, "resident"),
        (&c, "backoffice"),
        (&b, "partner"),
        (&c, "colleague"),
    ] {
        let (_, _, peer) = probe(server, &house, who).await;
        outsiders.push((who, peer));
    }
    let record = house.doc("record");
    let mut anna = Peer::connect(&a, &a.token("worker")).await.unwrap();
    anna.request(record).await;
    assert!(
        anna.wait_for(record, |d| d.get(ROOT, "entries").unwrap().is_some())
            .await
    );
    anna.edit(record, |d| {
        let entries = d.get(ROOT, "entries").unwrap().unwrap().1;
        let e = d.insert_object(&entries, 0, ObjType::Map).unwrap();
        d.put(&e, "id", "e-cluster").unwrap();
        d.put(&e, "kind", "opinion").unwrap();
        d.put(&e, "category", "work_note").unwrap();
        let subjects = d.put_object(&e, "subjects", ObjType::List).unwrap();
        d.insert(&subjects, 0, "p-daan").unwrap();
        let text = d.put_object(&e, "text", ObjType::Text).unwrap();
        d.splice_text(&text, 0, 0, &format!("Zorgen over Daan: {SENTINEL}"))
            .unwrap();
    })
    .await;
    assert!(!rejected(&anna.settle(Duration::from_millis(200)).await));
    // The assigned colleague on the third instance does get it: the scan can see it.
    let mut bram = Peer::connect(&c, &c.token("worker2")).await.unwrap();
    bram.request(record).await;
    assert!(
        bram.wait_for(record, |d| {
            let Some((_, entries)) = d.get(ROOT, "entries").unwrap() else {
                return false;
            };
            d.get(&entries, 0)
                .unwrap()
                .and_then(|(_, e)| d.get(&e, "id").unwrap())
                .is_some_and(|(v, _)| v.as_str() == Some("e-cluster"))
        })
        .await
    );
    assert!(
        bram.saw(SENTINEL),
        "the scan must find the sentinel where it is allowed"
    );
    for (_, peer) in &mut outsiders {
        for id in house.docs.values() {
            peer.request(*id).await;
        }
        peer.settle(Duration::from_millis(300)).await;
    }
    for (who, peer) in &mut outsiders {
        assert!(!peer.saw(SENTINEL), "{who} received the record's sentinel");
    }
}

#[tokio::test]
async fn an_unassignment_on_one_instance_revokes_the_device_on_another() {
    let Some((a, b, c)) = three_instances().await else {
        return;
    };
    let house = seed_household(&a).await;
    knows(&c, &house).await;
    let plan = house.doc("plan");
    let mut bram = open_plan(&c, "worker2", plan).await;
    unassign_bram(&a, &house).await;
    let mut got = false;
    for _ in 0..50 {
        let others = bram.settle(Duration::from_millis(100)).await;
        if others
            .iter()
            .any(|m| matches!(m, Message::Revoked { document_id, .. } if *document_id == plan))
        {
            got = true;
            break;
        }
    }
    assert!(got, "the device on the third instance is told to purge");
    // And the instance in between, which never held the plan, answers as for an unknown one.
    let mut again = Peer::connect(&b, &b.token("worker2")).await.unwrap();
    again.request(plan).await;
    assert!(matches!(
        again.next().await,
        Some(Message::DocUnavailable { .. })
    ));
}

#[tokio::test]
async fn a_record_replaced_on_one_instance_is_announced_as_replaced_to_its_readers_on_another() {
    let Some((a, _b, c)) = three_instances().await else {
        return;
    };
    let house = seed_household(&a).await;
    knows(&c, &house).await;
    let record = house.doc("record");
    let mut bram = Peer::open(&c, "worker2", record, "entries").await;
    bram.edit(record, |d| {
        fact(d, "adres", &["p-sanne"], "woont op de Kerkstraat 3c");
    })
    .await;
    let request = file(
        &a,
        "resident",
        &house.id,
        "rectification",
        "mijn adres klopt niet",
    )
    .await;
    let (status, decided) = decide(
        &a,
        &request,
        json!({ "verdict": "granted", "corrections": [{ "entry": "adres", "text": "Dorpsstraat" }] }),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    let mut replaced_by = None;
    for _ in 0..50 {
        replaced_by = bram
            .settle(Duration::from_millis(100))
            .await
            .iter()
            .find_map(|m| match m {
                Message::Replaced {
                    document_id,
                    new_document_id,
                    ..
                } if *document_id == record => Some(*new_document_id),
                _ => None,
            });
        if replaced_by.is_some() {
            break;
        }
    }
    let new = replaced_by.expect("the device on the other instance is told the new id");
    assert_ne!(new, record);
    let entry = c.state.hub.dossier(house.id.parse().unwrap()).unwrap();
    assert!(
        entry.documents.values().any(|d| *d == new),
        "the instance serves the new record"
    );
}

#[tokio::test]
async fn concurrent_changes_to_one_document_on_two_instances_both_commit_and_converge() {
    let Some((a, b, c)) = three_instances().await else {
        return;
    };
    let house = seed_household(&a).await;
    knows(&b, &house).await;
    knows(&c, &house).await;
    let plan = house.doc("plan");
    let mut anna = open_plan(&a, "worker", plan).await;
    let mut bram = open_plan(&b, "worker2", plan).await;
    for round in 0..10 {
        let (x, y) = (format!(" A{round}"), format!(" B{round}"));
        tokio::join!(
            write_hulpvraag(&mut anna, plan, &x),
            write_hulpvraag(&mut bram, plan, &y),
        );
    }
    assert!(!rejected(&anna.settle(Duration::from_millis(100)).await));
    assert!(!rejected(&bram.settle(Duration::from_millis(100)).await));
    let all = |d: &automerge::AutoCommit| {
        let t = hulpvraag(d);
        (0..10).all(|r| t.contains(&format!(" A{r}")) && t.contains(&format!(" B{r}")))
    };
    assert!(anna.wait_for(plan, all).await);
    assert!(bram.wait_for(plan, all).await);
    // What committed is everything: a device on the third instance, loading from SQL, has it.
    let mut late = open_plan(&c, "worker", plan).await;
    assert!(late.wait_for(plan, all).await);
    assert!(anna.wait_in_sync(plan).await && bram.wait_in_sync(plan).await);
    assert_eq!(anna.doc(plan).get_heads(), bram.doc(plan).get_heads());
}

#[tokio::test]
async fn a_write_racing_a_revocation_on_another_instance_is_rejected() {
    let Some((a, b, _c)) = three_instances().await else {
        return;
    };
    let house = seed_household(&a).await;
    knows(&b, &house).await;
    let plan = house.doc("plan");
    let mut bram = open_plan(&b, "worker2", plan).await;
    // B has not heard of the unassignment yet when Bram's write arrives.
    let held = b.state.hub.hold_feed().await;
    unassign_bram(&a, &house).await;
    write_hulpvraag(&mut bram, plan, " na de overdracht").await;
    let others = bram.settle(Duration::from_millis(200)).await;
    assert!(rejected(&others), "{others:?}");
    drop(held);
    // Nothing of it was committed: a device on the first instance never sees it.
    let mut anna = open_plan(&a, "worker", plan).await;
    anna.settle(Duration::from_millis(200)).await;
    assert!(!hulpvraag(anna.doc(plan)).contains("na de overdracht"));
}

#[tokio::test]
async fn a_feed_listener_that_loses_its_connection_reconnects_and_catches_up() {
    let Some((a, b, _c)) = three_instances().await else {
        return;
    };
    let house = seed_household(&a).await;
    knows(&b, &house).await;
    let plan = house.doc("plan");
    let mut anna = open_plan(&a, "worker", plan).await;
    let mut bram = open_plan(&b, "worker2", plan).await;
    // Every instance's listener loses its connection, as when the database restarts.
    let pool = database_file(&a.dir).await;
    let listeners = || async {
        use sqlx::Row;
        sqlx::query("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()")
            .bind(regie_server::storage::feed::LISTENER_NAME)
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<i32, _>(0))
            .collect::<Vec<i32>>()
    };
    let before = listeners().await;
    assert_eq!(before.len(), 3, "one listener per instance");
    for pid in &before {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(*pid)
            .execute(&pool)
            .await
            .unwrap();
    }
    // Written while the listeners are away or coming back: caught up either way.
    write_hulpvraag(&mut anna, plan, " tijdens de onderbreking").await;
    assert!(
        bram.wait_for(plan, |d| hulpvraag(d).contains("tijdens de onderbreking"))
            .await,
        "the change written while the listener was away reaches the other instance"
    );
    let back = eventually(PATIENCE, || async {
        let now = listeners().await;
        (now.len() == 3 && now.iter().all(|p| !before.contains(p))).then_some(())
    })
    .await;
    assert!(back.is_some(), "every listener connected again");
    write_hulpvraag(&mut anna, plan, " daarna").await;
    assert!(
        bram.wait_for(plan, |d| hulpvraag(d).contains("daarna"))
            .await
    );
}

#[tokio::test]
async fn a_device_reported_lost_on_one_instance_is_closed_and_refused_on_another() {
    let Some((a, b, _c)) = three_instances().await else {
        return;
    };
    let house = seed_household(&a).await;
    knows(&b, &house).await;
    let mut lost = Peer::connect_as(&b, &b.token("worker"), "tablet-lost", Some("storage-lost"))
        .await
        .unwrap();
    lost.request(house.doc("plan")).await;
    report_annas_tablet_lost(&a).await;
    let mut told = None;
    while let Some(m) = lost.next().await {
        if let Message::Error { message } = m {
            told = Some(message);
        }
    }
    assert!(
        told.is_some_and(|m| m.contains("reported lost")),
        "closed on the other instance"
    );
    assert!(
        join_refusal(&b, "worker", "storage-lost")
            .await
            .is_some_and(|m| m.contains("reported lost"))
    );
}

#[tokio::test]
async fn when_an_instance_stops_its_devices_continue_on_another_with_every_acknowledged_change() {
    let Some((a, b, c)) = three_instances().await else {
        return;
    };
    let house = seed_household(&a).await;
    knows(&b, &house).await;
    knows(&c, &house).await;
    let plan = house.doc("plan");
    let mut anna = open_plan(&a, "worker", plan).await;
    let mut bram = open_plan(&b, "worker2", plan).await;
    for round in 0..10 {
        write_hulpvraag(&mut bram, plan, &format!(" b{round}")).await;
    }
    assert!(bram.wait_in_sync(plan).await, "every edit acknowledged");
    b.stop().await;
    // Bram's tablet reconnects to another instance and carries on.
    let mut again = open_plan(&c, "worker2", plan).await;
    let all = |d: &automerge::AutoCommit| {
        let t = hulpvraag(d);
        (0..10).all(|r| t.contains(&format!(" b{r}")))
    };
    assert!(
        again.wait_for(plan, all).await,
        "nothing acknowledged was lost"
    );
    write_hulpvraag(&mut again, plan, " verder op C").await;
    assert!(
        anna.wait_for(plan, |d| all(d) && hulpvraag(d).contains("verder op C"))
            .await
    );
}

#[tokio::test]
async fn an_instance_that_finds_entries_it_never_read_pruned_loads_everything_again() {
    let Some((a, b, _c)) = three_instances().await else {
        return;
    };
    let house = seed_household(&a).await;
    knows(&b, &house).await;
    let plan = house.doc("plan");
    let mut anna = open_plan(&a, "worker", plan).await;
    let mut bram = open_plan(&b, "worker2", plan).await;
    // B's listener is away while the unassignment commits, and the feed is pruned past it.
    let held = b.state.hub.hold_feed().await;
    let pool = database_file(&a.dir).await;
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()")
        .bind(regie_server::storage::feed::LISTENER_NAME)
        .execute(&pool)
        .await
        .unwrap();
    unassign_bram(&a, &house).await;
    write_hulpvraag(&mut anna, plan, " na het snoeien").await;
    let pruned = a
        .state
        .hub
        .store()
        .prune_feed(Duration::ZERO)
        .await
        .unwrap();
    assert!(pruned > 0);
    drop(held);
    let mut got = false;
    for _ in 0..50 {
        let others = bram.settle(Duration::from_millis(100)).await;
        if others
            .iter()
            .any(|m| matches!(m, Message::Revoked { document_id, .. } if *document_id == plan))
        {
            got = true;
            break;
        }
    }
    assert!(
        got,
        "the unassignment whose entry was pruned still revokes on B"
    );
}

#[tokio::test]
async fn a_sweep_runs_on_one_instance_at_a_time() {
    let Some((a, b, _c)) = three_instances().await else {
        return;
    };
    // Each instance sweeps once on start: A takes the lock as soon as it is free.
    let held = std::sync::Arc::new(tokio::sync::Notify::new());
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let first = async {
        loop {
            let (h, r) = (held.clone(), release.clone());
            let ran = a
                .state
                .hub
                .sweep_alone(async move {
                    h.notify_one();
                    r.notified().await;
                    Ok(1)
                })
                .await
                .unwrap();
            if ran.is_some() {
                return ran;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let second = async {
        held.notified().await;
        let skipped = b.state.hub.sweep_alone(async { Ok(2) }).await.unwrap();
        release.notify_one();
        skipped
    };
    let (first, skipped) = tokio::join!(first, second);
    assert_eq!(first, Some(1));
    assert_eq!(skipped, None, "the other instance skips while one sweeps");
    // Once it is done, the next may.
    let next = eventually(PATIENCE, || async {
        b.state.hub.sweep_alone(async { Ok(3) }).await.unwrap()
    })
    .await;
    assert_eq!(next, Some(3));
}

#[tokio::test]
async fn an_http_request_on_another_instance_is_judged_on_what_was_committed_a_moment_ago() {
    let Some((a, b, _c)) = three_instances().await else {
        return;
    };
    // B does not take in the feed while held: what it knows of the dossier it must read itself.
    let held = b.state.hub.hold_feed().await;
    let house = seed_household(&a).await;
    unassign_bram(&b, &house).await;
    let (status, body) = a
        .api(
            &a.token("admin"),
            "POST",
            &format!("/api/v1/dossiers/{}/assignments", house.id),
            json!({ "user": "bram" }),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    // B judges by the assignment A committed a moment ago, not by its own last unassignment.
    unassign_bram(&b, &house).await;
    drop(held);
}

#[tokio::test]
async fn a_document_made_a_moment_ago_on_another_instance_is_served_not_answered_unknown() {
    let Some((a, b, _c)) = three_instances().await else {
        return;
    };
    // B has not yet taken in the feed entry of the dossier A is about to make.
    let held = b.state.hub.hold_feed().await;
    let house = seed_household(&a).await;
    let plan = house.doc("plan");
    let mut anna = Peer::connect(&b, &b.token("worker")).await.unwrap();
    anna.request(plan).await;
    let early = anna.settle(Duration::from_millis(300)).await;
    assert!(
        !early
            .iter()
            .any(|m| matches!(m, Message::DocUnavailable { .. })),
        "answered unknown before B looked at the feed: {early:?}"
    );
    drop(held);
    assert!(
        anna.wait_for(plan, |d| d.get(ROOT, "hulpvraag").unwrap().is_some())
            .await,
        "the plan arrives once B has taken in the feed"
    );
}
