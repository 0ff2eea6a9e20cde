//! A household of two parents and two children, each with their own resident account (R7, I1):
//! every member's `view/<person>` holds exactly the `record` entries whose subjects include them
//! — entries about one person, about both parents, about a parent and a child — follows the
//! worker's re-attribution of an entry within one sync, and nothing about another member, nor
//! another member's view, the `record` or `meta`, ever reaches a member's connection.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use automerge::{AutoCommit, ROOT, ReadDoc, transaction::Transactable};
use regie_sync_protocol::{DocumentId, Message};
use serde_json::json;

use crate::support::*;

/// The members: cast name, person id, name in `meta` (birth dates: [`birth_dates`]).
const MEMBERS: [(&str, &str, &str); 4] = [
    ("ouder1", "p-ouder1", "Olga Jansen"),
    ("ouder2", "p-ouder2", "Otto Jansen"),
    ("kind1", "p-kind1", "Kees Jansen"),
    ("kind2", "p-kind2", "Kim Jansen"),
];

/// What the worker records: entry id, subjects, and a text ending in its own sentinel.
const ENTRIES: [(&str, &[&str], &str); 6] = [
    (
        "e-ouder1",
        &["p-ouder1"],
        "Olga zoekt werk SENTINEL-e-ouder1-5d1c",
    ),
    (
        "e-ouder2",
        &["p-ouder2"],
        "Otto heeft schulden SENTINEL-e-ouder2-8a7f",
    ),
    (
        "e-kind1",
        &["p-kind1"],
        "Kees slaapt slecht SENTINEL-e-kind1-2b9e",
    ),
    (
        "e-kind2",
        &["p-kind2"],
        "Kim verzuimt op school SENTINEL-e-kind2-c40a",
    ),
    (
        "e-ouders",
        &["p-ouder1", "p-ouder2"],
        "De ouders maken ruzie over geld SENTINEL-e-ouders-71f3",
    ),
    (
        "e-ouder1-kind2",
        &["p-ouder1", "p-kind2"],
        "Olga en Kim botsen thuis SENTINEL-e-ouder1-kind2-93d0",
    ),
];

fn sentinel(text: &str) -> &str {
    text.rsplit(' ').next().unwrap()
}

/// The texts of the entries whose subjects include `person`.
fn about(person: &str) -> BTreeSet<String> {
    ENTRIES
        .iter()
        .filter(|(_, subjects, _)| subjects.contains(&person))
        .map(|(_, _, text)| (*text).to_owned())
        .collect()
}

fn view_set(d: &AutoCommit) -> BTreeSet<String> {
    view_texts(d).into_iter().collect()
}

/// Birth dates relative to today (UTC): the parents adults, the children about 8 and 14.
fn birth_dates() -> BTreeMap<&'static str, String> {
    let year = time::OffsetDateTime::now_utc().year();
    [
        ("p-ouder1", year - 41),
        ("p-ouder2", year - 43),
        ("p-kind1", year - 8),
        ("p-kind2", year - 14),
    ]
    .into_iter()
    .map(|(p, y)| (p, format!("{y}-01-15")))
    .collect()
}

/// Creates the household's dossier and links all four members to their resident accounts.
async fn family(server: &TestServer) -> Household {
    let w = server.token("worker");
    let born = birth_dates();
    let parents = json!(["p-ouder1", "p-ouder2"]);
    let persons: Vec<_> = MEMBERS
        .iter()
        .map(|(_, id, name)| {
            let mut p = json!({ "id": id, "name": name, "birth_date": born[id] });
            if id.starts_with("p-kind") {
                p["gezag"] = parents.clone();
            }
            p
        })
        .collect();
    let Household { id, mut docs } = create_dossier(server, json!(persons)).await;
    for (_, person, _) in MEMBERS {
        let (status, made) = server
            .api(
                &w,
                "POST",
                &format!("/api/v1/dossiers/{id}/residents"),
                json!({ "person": person }),
            )
            .await;
        assert_eq!(status, 201, "{made}");
        assert_eq!(made["key"], format!("view/{person}"));
        docs.insert(
            made["key"].as_str().unwrap().into(),
            DocumentId::from_url(made["url"].as_str().unwrap()).unwrap(),
        );
    }
    Household { id, docs }
}

/// The worker writes every entry of [`ENTRIES`], one acknowledged change each.
async fn record_entries(server: &TestServer, house: &Household) -> Peer {
    let record = house.doc("record");
    let mut worker = Peer::open(server, "worker", record, "entries").await;
    for (id, subjects, text) in ENTRIES {
        worker.edit(record, |d| entry(d, id, subjects, text)).await;
    }
    let others = worker.settle(Duration::from_millis(100)).await;
    assert!(
        others.is_empty() && !worker.closed,
        "the worker's entries were accepted: {others:?}"
    );
    worker
}

/// A member connected with their own view requested.
async fn member(server: &TestServer, house: &Household, who: &str, person: &str) -> Peer {
    let view = house.doc(&format!("view/{person}"));
    Peer::open(server, who, view, "person").await
}

#[tokio::test]
async fn each_member_of_a_two_parent_household_sees_exactly_the_entries_about_them() {
    let server = TestServer::new().await;
    let house = family(&server).await;

    // Each member connects before anything is recorded and asks for their own view and for
    // everything of the others: their views, the record and meta.
    let mut members = Vec::new();
    for (who, person, name) in MEMBERS {
        let mut peer = member(&server, &house, who, person).await;
        let own = house.doc(&format!("view/{person}"));
        let view = peer.doc(own);
        let me = view.get(ROOT, "person").unwrap().unwrap().1;
        assert_eq!(
            text_at(view, &me, "name").as_deref(),
            Some(name),
            "{who}'s view carries their own person data"
        );
        let foreign: Vec<DocumentId> = house
            .docs
            .iter()
            .filter(|(k, _)| {
                k.as_str() == "record"
                    || k.as_str() == "meta"
                    || (k.starts_with("view/") && **k != format!("view/{person}"))
            })
            .map(|(_, d)| *d)
            .collect();
        assert_eq!(foreign.len(), 5);
        for d in &foreign {
            peer.request(*d).await;
        }
        members.push((who, person, peer, own, foreign));
    }

    let _worker = record_entries(&server, &house).await;

    for (who, person, peer, own, foreign) in &mut members {
        assert!(
            peer.wait_for(*own, |d| view_set(d) == about(person)).await,
            "{who}'s view holds exactly the entries about {person}: {:?}",
            view_texts(peer.doc(*own))
        );
        // Ask again now that there is content, then let everything arrive.
        for d in foreign.iter() {
            peer.request(*d).await;
        }
        peer.settle(Duration::from_millis(300)).await;
        let refused: BTreeSet<DocumentId> = peer.unavailable().into_iter().collect();
        assert_eq!(
            refused,
            foreign.iter().copied().collect::<BTreeSet<_>>(),
            "{who} is refused every other member's view, the record and meta"
        );
        for d in foreign.iter() {
            assert!(!peer.synced(*d), "{who} received a sync for {d:?}");
        }
        for (id, subjects, text) in ENTRIES {
            assert_eq!(
                peer.saw(sentinel(text)),
                subjects.contains(person),
                "{who} and entry {id} (about {subjects:?})"
            );
        }
        for (other, _, name) in MEMBERS.iter().filter(|(_, p, _)| p != person) {
            assert!(!peer.saw(name), "{who} learned the name of {other}");
            let born = &birth_dates()[MEMBERS.iter().find(|m| m.0 == *other).unwrap().1];
            assert!(!peer.saw(born), "{who} learned the birth date of {other}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn moving_an_entry_from_one_child_to_the_other_updates_both_views_in_one_sync() {
    let server = TestServer::new().await;
    let house = family(&server).await;
    let mut worker = record_entries(&server, &house).await;
    let (v1, v2) = (house.doc("view/p-kind1"), house.doc("view/p-kind2"));
    let mut kees = member(&server, &house, "kind1", "p-kind1").await;
    let mut kim = member(&server, &house, "kind2", "p-kind2").await;
    assert!(kees.wait_for(v1, |d| view_set(d) == about("p-kind1")).await);
    assert!(kim.wait_for(v2, |d| view_set(d) == about("p-kind2")).await);

    // The worker corrects the note about Kees: it is about Kim.
    let moved = ENTRIES.iter().find(|e| e.0 == "e-kind1").unwrap().2;
    let record = house.doc("record");
    worker
        .edit(record, |d| {
            let entries = d.get(ROOT, "entries").unwrap().unwrap().1;
            let e = (0..d.length(&entries))
                .map(|i| d.get(&entries, i).unwrap().unwrap().1)
                .find(|e| text_at(d, e, "id").as_deref() == Some("e-kind1"))
                .unwrap();
            let subjects = d.get(&e, "subjects").unwrap().unwrap().1;
            d.delete(&subjects, 0).unwrap();
            d.insert(&subjects, 0, "p-kind2").unwrap();
        })
        .await;

    let mut kim_now = about("p-kind2");
    kim_now.insert(moved.to_owned());
    assert!(
        kim.wait_for(v2, |d| view_set(d) == kim_now).await,
        "Kim's view gains the note: {:?}",
        view_texts(kim.doc(v2))
    );
    // Kees's view loses the note. An edit would keep the text in the view's history, so the
    // server rebuilds the view without it and replaces it under a new id (I1).
    let replaced = kees
        .settle(Duration::from_millis(400))
        .await
        .into_iter()
        .find_map(|m| match m {
            Message::Replaced {
                document_id,
                new_document_id,
                ..
            } if document_id == v1 => Some(new_document_id),
            _ => None,
        });
    let v1b = replaced.expect("Kees is told the view was replaced");
    let mut fresh = Peer::connect(&server, &server.token("kind1"))
        .await
        .unwrap();
    fresh.request(v1).await;
    assert!(
        matches!(fresh.next().await, Some(Message::Replaced { new_document_id, .. }) if new_document_id == v1b),
        "the old id is refused and points to the new view"
    );
    fresh.request(v1b).await;
    assert!(
        fresh
            .wait_for(v1b, |d| d.get(ROOT, "person").unwrap().is_some())
            .await
    );
    fresh.settle(Duration::from_millis(200)).await;
    assert!(view_texts(fresh.doc(v1b)).is_empty());
    assert!(
        !fresh.saw(moved),
        "the moved note is in no byte of the new view"
    );
    let mut stranger = Peer::connect(&server, &server.token("kind2"))
        .await
        .unwrap();
    stranger.request(v1).await;
    assert!(
        matches!(stranger.next().await, Some(Message::DocUnavailable { .. })),
        "who may not read the new view learns nothing from the old id"
    );
    // The parents' views did not change.
    for (who, person, _) in &MEMBERS[..2] {
        let mut parent = member(&server, &house, who, person).await;
        let view = house.doc(&format!("view/{person}"));
        assert!(
            parent
                .wait_for(view, |d| view_set(d) == about(person))
                .await
        );
    }
    server.stop().await;
}
