//! The resident's view (R7, I1): the server projects `record` entries about the resident into
//! `view/<person>` as they are written, and nothing about other household members ever reaches
//! the resident's connection.

use std::time::Duration;

use automerge::{ROOT, ReadDoc};

use crate::support::*;

const SENTINEL: &str = "SENTINEL-daan-only-4b1e";

#[tokio::test]
async fn the_resident_sees_work_notes_about_herself_live_and_nothing_about_her_child() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let (record, view) = (house.doc("record"), house.doc("view/p-sanne"));
    let mut sanne = Peer::open(&server, "resident", view, "person").await;
    assert_eq!(
        root_text_at(sanne.doc(view), "person", "name").as_deref(),
        Some("Sanne Bakker")
    );

    let mut worker = Peer::open(&server, "worker", record, "entries").await;
    worker
        .edit(record, |d| {
            entry(d, "e1", &["p-sanne"], "Sanne maakt zich zorgen over geld")
        })
        .await;
    worker
        .edit(record, |d| {
            entry(d, "e2", &["p-daan"], &format!("Daan spijbelt {SENTINEL}"))
        })
        .await;
    worker.settle(Duration::from_millis(200)).await;

    assert!(
        sanne
            .wait_for(view, |d| view_texts(d)
                == ["Sanne maakt zich zorgen over geld"])
            .await
    );
    sanne.settle(Duration::from_millis(300)).await;
    assert!(
        !sanne.saw(SENTINEL),
        "the child's entry reached the resident"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_resident_linked_later_gets_a_view_of_what_was_already_recorded() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let mut worker = Peer::connect(&server, &server.token("worker"))
        .await
        .unwrap();
    let record = house.doc("record");
    worker.request(record).await;
    assert!(
        worker
            .wait_for(record, |d| d.get(ROOT, "entries").unwrap().is_some())
            .await
    );
    worker
        .edit(record, |d| {
            entry(d, "e1", &["p-daan"], "Daan gaat weer naar school")
        })
        .await;
    worker.settle(Duration::from_millis(200)).await;
    let (status, made) = server
        .api(
            &server.token("worker"),
            "POST",
            &format!("/api/v1/dossiers/{}/residents", house.id),
            serde_json::json!({ "person": "p-daan" }),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let view = regie_sync_protocol::DocumentId::from_url(made["url"].as_str().unwrap()).unwrap();
    let token = server.state.auth.mint(
        &regie_core::principal::Claims {
            person: Some("p-daan".into()),
            sub: "daan".into(),
            ..cast("resident")
        },
        Duration::from_secs(600),
    );
    let mut daan = Peer::connect(&server, &token.unwrap()).await.unwrap();
    daan.request(view).await;
    assert!(
        daan.wait_for(view, |d| view_texts(d) == ["Daan gaat weer naar school"])
            .await
    );
    server.stop().await;
}

fn root_text_at(d: &automerge::AutoCommit, obj: &str, key: &str) -> Option<String> {
    let (_, o) = d.get(ROOT, obj).ok()??;
    text_at(d, &o, key)
}

#[tokio::test]
async fn an_eigen_verklaring_is_kept_with_the_entry_and_shown_only_to_its_author() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let (record, view) = (house.doc("record"), house.doc("view/p-sanne"));
    let mut worker = Peer::open(&server, "worker", record, "entries").await;
    worker
        .edit(record, |d| {
            entry(d, "e1", &["p-sanne"], "Sanne houdt afspraken niet na")
        })
        .await;
    worker
        .edit(record, |d| entry(d, "e2", &["p-daan"], "Daan is vaak ziek"))
        .await;
    worker.settle(Duration::from_millis(200)).await;

    let sanne_token = server.token("resident");
    let path = format!("/api/v1/dossiers/{}/statements", house.id);
    let (status, _) = server
        .api(
            &sanne_token,
            "POST",
            &path,
            serde_json::json!({ "entry": "e1", "text": "Ik was ziek die week" }),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = server
        .api(
            &sanne_token,
            "POST",
            &path,
            serde_json::json!({ "entry": "e2", "text": "x" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("no_such_entry")),
        "not about her: not hers to dispute"
    );
    let (status, _) = server
        .api(
            &server.token("worker"),
            "POST",
            &path,
            serde_json::json!({ "entry": "e1", "text": "x" }),
        )
        .await;
    assert_eq!(status, 404, "only residents add eigen verklaringen");

    // The statement is in the record, linked to the entry, for the workers…
    assert!(
        worker
            .wait_for(record, |d| {
                let s = d.get(ROOT, "statements").unwrap().unwrap().1;
                d.length(&s) == 1
            })
            .await
    );
    // …and in Sanne's view with the entry it disputes.
    let mut sanne = Peer::connect(&server, &sanne_token).await.unwrap();
    sanne.request(view).await;
    assert!(
        sanne
            .wait_for(view, |d| {
                let Some((_, entries)) = d.get(ROOT, "entries").unwrap() else {
                    return false;
                };
                let Some((_, e)) = d.get(&entries, 0).unwrap() else {
                    return false;
                };
                let Some((_, s)) = d.get(&e, "statements").unwrap() else {
                    return false;
                };
                d.length(&s) == 1
            })
            .await
    );
    server.stop().await;
}

#[tokio::test]
async fn a_resident_keeps_at_most_a_hundred_statements_on_one_entry_and_the_record_keeps_syncing() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let record = house.doc("record");
    let mut worker = Peer::open(&server, "worker", record, "entries").await;
    worker
        .edit(record, |d| {
            entry(d, "e1", &["p-sanne"], "Sanne mist afspraken")
        })
        .await;
    let (sanne, path) = (
        server.token("resident"),
        format!("/api/v1/dossiers/{}/statements", house.id),
    );
    for i in 0..100 {
        let (status, body) = server
            .api(
                &sanne,
                "POST",
                &path,
                serde_json::json!({ "entry": "e1", "text": format!("nr {i}") }),
            )
            .await;
        assert_eq!(status, 201, "{i}: {body}");
    }
    let (status, body) = server
        .api(
            &sanne,
            "POST",
            &path,
            serde_json::json!({ "entry": "e1", "text": "nog een" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("too_many_statements"))
    );
    // The worker's next edit still merges: the view stays within its schema.
    worker
        .edit(record, |d| entry(d, "e2", &["p-sanne"], "Sanne belt terug"))
        .await;
    assert!(
        worker
            .settle(Duration::from_millis(200))
            .await
            .iter()
            .all(|m| !matches!(m, regie_sync_protocol::Message::Error { .. }))
    );
    server.stop().await;
}
