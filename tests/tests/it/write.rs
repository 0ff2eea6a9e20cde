//! Validated writes at the server (I2): a batch is checked on a fork before it is merged; a
//! forbidden batch is rejected whole, quarantined, never relayed, and the sender is told why.

use std::time::Duration;

use automerge::{ObjType, ROOT, ReadDoc, transaction::Transactable};
use regie_sync_protocol::{Message, PeerId};
use serde_json::Value;

use crate::support::*;

fn rejection(others: &[Message]) -> Option<(String, Option<String>)> {
    others.iter().find_map(|m| match m {
        Message::Rejected { reason, detail, .. } => Some((reason.clone(), detail.clone())),
        _ => None,
    })
}

#[tokio::test]
async fn a_resident_setting_a_worker_field_is_rejected_quarantined_and_not_relayed() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let mut worker = Peer::connect(&server, &server.token("worker"))
        .await
        .unwrap();
    let mut sanne = Peer::connect(&server, &server.token("resident"))
        .await
        .unwrap();
    for p in [&mut worker, &mut sanne] {
        p.request(plan).await;
        assert!(
            p.wait_for(plan, |d| d.get(ROOT, "goals").unwrap().is_some())
                .await
        );
    }
    sanne
        .edit(plan, |d| {
            let goals = d.get(ROOT, "goals").unwrap().unwrap().1;
            let g = d.insert_object(&goals, 0, ObjType::Map).unwrap();
            d.put(&g, "id", "g1").unwrap();
            d.put(&g, "title", "Zelf een baan zoeken").unwrap();
            d.put(&g, "owner", "worker").unwrap();
        })
        .await;
    let others = sanne.settle(Duration::from_millis(300)).await;
    let (reason, detail) = rejection(&others).expect("the resident is told");
    assert_eq!(reason, "path_reserved");
    assert!(detail.unwrap().contains("goals/0/owner"));
    worker.settle(Duration::from_millis(200)).await;
    let d = worker.doc(plan);
    let goals = d.get(ROOT, "goals").unwrap().unwrap().1;
    assert_eq!(d.length(goals), 0, "nothing relayed");
    let (_, q) = server
        .api(
            &server.token("privacy_officer"),
            "GET",
            "/api/v1/quarantine",
            Value::Null,
        )
        .await;
    assert_eq!(q[0]["reason"], "path_reserved");
    assert_eq!(q[0]["user"], "sanne");
    assert!(
        !q.to_string().contains("Zelf een baan"),
        "the listing shows reasons, not content"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_resident_goal_without_an_owner_is_merged_and_relayed() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let mut worker = Peer::connect(&server, &server.token("worker"))
        .await
        .unwrap();
    let mut sanne = Peer::connect(&server, &server.token("resident"))
        .await
        .unwrap();
    for p in [&mut worker, &mut sanne] {
        p.request(plan).await;
        assert!(
            p.wait_for(plan, |d| d.get(ROOT, "goals").unwrap().is_some())
                .await
        );
    }
    sanne
        .edit(plan, |d| {
            let goals = d.get(ROOT, "goals").unwrap().unwrap().1;
            let g = d.insert_object(&goals, 0, ObjType::Map).unwrap();
            d.put(&g, "id", "g1").unwrap();
            d.put(&g, "title", "Zelf een baan zoeken").unwrap();
        })
        .await;
    assert!(
        worker
            .wait_for(plan, |d| d.length(d.get(ROOT, "goals").unwrap().unwrap().1)
                == 1)
            .await
    );
    assert_eq!(
        rejection(&sanne.settle(Duration::from_millis(100)).await),
        None
    );
    server.stop().await;
}

#[tokio::test]
async fn read_only_audiences_and_other_roles_paths_are_rejected() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let maatwerk = house.doc("maatwerk/1");
    let mut sanne = Peer::connect(&server, &server.token("resident"))
        .await
        .unwrap();
    let mut bo = Peer::connect(&server, &server.token("backoffice"))
        .await
        .unwrap();
    let mut worker = Peer::connect(&server, &server.token("worker"))
        .await
        .unwrap();
    for p in [&mut sanne, &mut bo, &mut worker] {
        p.request(maatwerk).await;
        assert!(
            p.wait_for(maatwerk, |d| d.get(ROOT, "decision").unwrap().is_some())
                .await
        );
    }
    let put = |key: &'static str, field: &'static str, value: &'static str| {
        move |d: &mut automerge::AutoCommit| {
            let obj = d.get(ROOT, key).unwrap().unwrap().1;
            d.put(&obj, field, value).unwrap();
        }
    };
    // A read-only sync state tells well-behaved clients not to send changes at all; a client
    // that ignores the flag is rejected.
    put("decision", "outcome", "granted")(sanne.doc(maatwerk));
    sanne.doc(maatwerk).commit();
    sanne.force_push(maatwerk).await;
    assert_eq!(
        rejection(&sanne.settle(Duration::from_millis(300)).await)
            .unwrap()
            .0,
        "read_only_access"
    );
    bo.edit(maatwerk, put("request", "assessed_need", "minder"))
        .await;
    assert_eq!(
        rejection(&bo.settle(Duration::from_millis(300)).await)
            .unwrap()
            .0,
        "path_reserved"
    );
    // The back office's own field is accepted and reaches the worker.
    let mut bo2 = Peer::open(&server, "backoffice", maatwerk, "decision").await;
    bo2.edit(maatwerk, put("decision", "outcome", "granted"))
        .await;
    assert!(
        worker
            .wait_for(maatwerk, |d| {
                let dec = d.get(ROOT, "decision").unwrap().unwrap().1;
                d.get(&dec, "outcome").unwrap().is_some()
            })
            .await
    );
    server.stop().await;
}

#[tokio::test]
async fn changes_built_on_a_rejected_change_stay_rejected_until_the_device_resets() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let mut worker = Peer::connect(&server, &server.token("worker"))
        .await
        .unwrap();
    let mut sanne = Peer::connect(&server, &server.token("resident"))
        .await
        .unwrap();
    for p in [&mut worker, &mut sanne] {
        p.request(plan).await;
        assert!(
            p.wait_for(plan, |d| d.get(ROOT, "goals").unwrap().is_some())
                .await
        );
    }
    let write_hulpvraag = |text: &'static str| {
        move |d: &mut automerge::AutoCommit| {
            let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
            let len = d.length(&h);
            d.splice_text(&h, len, 0, text).unwrap();
        }
    };
    // Offline: an allowed edit, then a forbidden one, then sync.
    write_hulpvraag("Ik wil werk. ")(sanne.doc(plan));
    sanne.doc(plan).commit();
    let goals = sanne.doc(plan).get(ROOT, "goals").unwrap().unwrap().1;
    let g = sanne
        .doc(plan)
        .insert_object(&goals, 0, ObjType::Map)
        .unwrap();
    sanne.doc(plan).put(&g, "id", "g1").unwrap();
    sanne.doc(plan).put(&g, "title", "Werk").unwrap();
    sanne.doc(plan).put(&g, "owner", "worker").unwrap();
    sanne.doc(plan).commit();
    sanne.push(plan).await;
    assert_eq!(
        rejection(&sanne.settle(Duration::from_millis(300)).await)
            .unwrap()
            .0,
        "path_reserved"
    );

    // A later edit depends on the rejected one: rejected for the same reason.
    sanne.edit(plan, write_hulpvraag("En een opleiding.")).await;
    let (reason, detail) =
        rejection(&sanne.settle(Duration::from_millis(300)).await).expect("rejected again");
    assert_eq!(reason, "path_reserved");
    assert!(
        detail
            .unwrap()
            .contains("depends on a change rejected earlier")
    );
    worker.settle(Duration::from_millis(200)).await;
    assert_eq!(
        root_text(worker.doc(plan), "hulpvraag").as_deref(),
        Some(""),
        "nothing of the batch merged"
    );

    // The device resets to the server's version and replays its permitted edits as new changes.
    sanne.reset(plan).await;
    assert!(
        sanne
            .wait_for(plan, |d| d.get(ROOT, "goals").unwrap().is_some())
            .await
    );
    sanne
        .edit(plan, write_hulpvraag("Ik wil werk. En een opleiding."))
        .await;
    assert!(
        worker
            .wait_for(plan, |d| root_text(d, "hulpvraag").as_deref()
                == Some("Ik wil werk. En een opleiding."))
            .await
    );
    assert_eq!(
        rejection(&sanne.settle(Duration::from_millis(100)).await),
        None
    );
    let (_, q) = server
        .api(
            &server.token("privacy_officer"),
            "GET",
            "/api/v1/quarantine",
            Value::Null,
        )
        .await;
    assert_eq!(
        q.as_array().unwrap().len(),
        2,
        "both refused batches are kept for review"
    );
    server.stop().await;
}

// Issue 14, "what may I write?": the server answers per document and principal which schema
// paths the caller may write, from the policy; a document outside the caller's audience is
// answered like an unknown one.
#[tokio::test]
async fn write_rules_are_the_policys_answers_per_schema_path() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let rules = |role: &'static str, key: &'static str| {
        let server = &server;
        let url = house.doc(key).to_url();
        async move {
            server
                .api(
                    &server.token(role),
                    "GET",
                    &format!("/api/v1/me/documents/{url}/write-rules"),
                    Value::Null,
                )
                .await
        }
    };
    let allowed = |body: &Value, path: &str| {
        body["paths"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["path"] == path)
            .map(|r| (r["allowed"].as_bool().unwrap(), r["reason"].clone()))
    };

    let (status, sanne) = rules("resident", "plan").await;
    assert_eq!(status, 200, "{sanne}");
    assert_eq!(sanne["writable"], true);
    assert_eq!(allowed(&sanne, "goals/*/title"), Some((true, Value::Null)));
    assert_eq!(
        allowed(&sanne, "goals/*/owner"),
        Some((false, Value::from("path_reserved")))
    );
    assert_eq!(
        allowed(&sanne, "evaluations"),
        Some((false, Value::from("path_reserved")))
    );

    let (_, anna) = rules("worker", "plan").await;
    assert_eq!(allowed(&anna, "goals/*/owner"), Some((true, Value::Null)));
    let (_, meta) = rules("worker", "meta").await;
    assert_eq!(
        (meta["writable"].clone(), meta["reason"].clone()),
        (Value::from(false), Value::from("server_written_document"))
    );

    // The record is not the resident's to see: the same answer as for an unknown document.
    let (status, body) = rules("resident", "record").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let unknown = regie_sync_protocol::DocumentId::new_random().to_url();
    let (status, _) = server
        .api(
            &server.token("resident"),
            "GET",
            &format!("/api/v1/me/documents/{unknown}/write-rules"),
            Value::Null,
        )
        .await;
    assert_eq!(status, 404);
    server.stop().await;
}

/// A device's Bloom filter can wrongly say the server has a change, so the device sends only
/// its child. The server keeps the child for that device, asks for the parent, and merges both
/// once it arrives (before, the child was dropped with the fork and the two sides asked each
/// other for it without end).
#[tokio::test]
async fn a_change_sent_before_its_parent_waits_for_it_and_the_server_asks_for_the_parent() {
    use automerge::sync;
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let mut worker = Peer::open(&server, "worker", plan, "hulpvraag").await;
    let (parent, child) = {
        let d = worker.doc(plan);
        d.put(ROOT, "hulpvraag", "eerst dit").unwrap();
        d.commit();
        let parent = d.get_last_local_change().unwrap().clone();
        d.put(ROOT, "hulpvraag", "en dan dit").unwrap();
        d.commit();
        (parent, d.get_last_local_change().unwrap().clone())
    };
    let send = |changes: Vec<automerge::Change>| sync::Message {
        heads: vec![child.hash()],
        need: Vec::new(),
        have: Vec::new(),
        changes: changes
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect::<Vec<_>>()
            .into(),
        flags: None,
        version: sync::MessageVersion::V1,
    };
    let orphan = Message::Sync {
        sender_id: worker.id.clone(),
        target_id: PeerId::new("server"),
        document_id: plan,
        data: send(vec![child.clone()]).encode(),
    };
    worker.send(&orphan).await;
    let mut asked = Vec::new();
    while let Some(m) = worker.next_within(Duration::from_millis(300)).await {
        asked.push(m);
    }
    let needs: Vec<_> = asked
        .iter()
        .filter_map(|m| match m {
            Message::Sync { data, .. } => Some(sync::Message::decode(data).unwrap().need),
            _ => None,
        })
        .collect();
    assert!(
        needs.iter().any(|n| n.contains(&parent.hash())),
        "the server asks for the parent: {needs:?}"
    );
    let parent_msg = Message::Sync {
        sender_id: worker.id.clone(),
        target_id: PeerId::new("server"),
        document_id: plan,
        data: send(vec![parent]).encode(),
    };
    worker.send(&parent_msg).await;
    worker.settle(Duration::from_millis(300)).await;
    let mut reader = Peer::open(&server, "worker2", plan, "hulpvraag").await;
    assert!(
        reader
            .wait_for(plan, |d| root_text(d, "hulpvraag").as_deref()
                == Some("en dan dit"))
            .await,
        "both changes were merged"
    );
}
