//! Storage behind the hub: appended changes are compacted into a snapshot without losing any,
//! cold documents are evicted from memory and load again intact, and a device's sync state
//! survives its disconnection.

use std::time::Duration;

use automerge::{ROOT, ReadDoc, transaction::Transactable};

use regie_sync_protocol::DocumentId;

use crate::support::*;

/// `n` edits of the plan, one change each: a character appended to the hulpvraag.
async fn type_hulpvraag(peer: &mut Peer, plan: regie_sync_protocol::DocumentId, n: usize) {
    for i in 0..n {
        peer.edit(plan, |d| {
            let h = d.get(ROOT, "hulpvraag").unwrap().unwrap().1;
            d.splice_text(&h, i, 0, "x").unwrap();
        })
        .await;
        peer.settle(Duration::from_millis(1)).await;
    }
    assert!(peer.wait_in_sync(plan).await, "the server holds every edit");
}

fn typed(d: &automerge::AutoCommit) -> usize {
    root_text(d, "hulpvraag").map_or(0, |t| t.len())
}

#[tokio::test]
async fn six_hundred_changes_are_compacted_and_all_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let mut worker = Peer::open(&server, "worker", plan, "goals").await;
    type_hulpvraag(&mut worker, plan, 600).await;
    let stored = server.state.hub.store().load_document(plan).await.unwrap();
    assert!(stored.snapshot.is_some(), "a snapshot was made");
    let left = stored.changes.len() as i64;
    // The changes after the snapshot are numbered up to the last; the snapshot folds the rest.
    let upto = stored.last_seq - left;
    assert!(
        upto >= 500,
        "a snapshot folded in the first changes (upto {upto}, {left} left)"
    );
    assert!(
        left < 500,
        "the folded changes are gone from the append log ({left} left)"
    );
    server.stop().await;

    let server = TestServer::start(dir.path()).await;
    let mut fresh = Peer::connect(&server, &server.token("worker2"))
        .await
        .unwrap();
    fresh.request(plan).await;
    assert!(fresh.wait_for(plan, |d| typed(d) == 600).await);
    server.stop().await;
}

#[tokio::test]
async fn cold_documents_are_evicted_and_load_again_intact() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::builder()
        .dir(dir.path())
        .hot_documents(2)
        .start()
        .await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    {
        let mut worker = Peer::open(&server, "worker", plan, "goals").await;
        type_hulpvraag(&mut worker, plan, 3).await;
    }
    // Another device opens the other documents one by one; the plan goes cold.
    let mut other = Peer::connect(&server, &server.token("worker2"))
        .await
        .unwrap();
    for key in ["record", "meta", "maatwerk/1", "partner/ggd"] {
        other.request(house.doc(key)).await;
        other.settle(Duration::from_millis(100)).await;
    }
    assert!(
        !server.state.hub.is_hot(plan),
        "the plan went cold and was evicted"
    );
    other.request(plan).await;
    assert!(other.wait_for(plan, |d| typed(d) == 3).await);
    server.stop().await;
}

/// The worker's tablet (peer `peer`, storage `storage`) with the plan synced.
async fn tablet_with(server: &TestServer, plan: DocumentId, peer: &str, storage: &str) -> Peer {
    let mut tablet = Peer::connect_as(server, &server.token("worker"), peer, Some(storage))
        .await
        .unwrap();
    tablet.request(plan).await;
    assert!(
        tablet
            .wait_for(plan, |d| d.get(ROOT, "goals").unwrap().is_some())
            .await
    );
    tablet
}

#[tokio::test]
async fn a_devices_sync_state_is_kept_when_it_disconnects() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    {
        tablet_with(&server, plan, "tablet-1", "storage-tablet-1").await;
    }
    let anna = &"anna".parse().unwrap();
    let store = server.state.hub.store();
    let saved = eventually(PATIENCE, || async move {
        store
            .sync_state(anna, "storage-tablet-1", plan)
            .await
            .unwrap()
    })
    .await;
    assert!(
        saved.is_some(),
        "the sync state is saved once it disconnects"
    );
    server.stop().await;
}

#[tokio::test]
async fn stopping_the_server_closes_every_sync_session_and_keeps_its_sync_state() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let house = seed_household(&server).await;
    let plan = house.doc("plan");
    let mut tablet = tablet_with(&server, plan, "tablet-2", "storage-tablet-2").await;
    // The tablet stays connected while the server stops (SIGTERM does the same).
    server.stop().await;
    let mut said = None;
    while let Some(m) = tablet.next().await {
        if let regie_sync_protocol::Message::Error { message } = m {
            said = Some(message);
        }
    }
    assert!(tablet.closed);
    assert!(said.is_some_and(|m| m.contains("shutting down")));
    let store = open_store(dir.path()).await;
    let saved = store
        .sync_state(&"anna".parse().unwrap(), "storage-tablet-2", plan)
        .await
        .unwrap();
    assert!(
        saved.is_some(),
        "the sync state was saved before the server stopped"
    );
}

// ---- bounded reads and stores (I7) --------------------------------------------------------

mod bounded {
    use regie_core::id::{DocumentKey, DossierId};
    use regie_core::relationship::Relationships;
    use regie_server::audit::{AuditAction, AuditEvent};
    use regie_server::storage::keys::SEALED_OVERHEAD;
    use regie_server::storage::{AUDIT_PAGE_MAX, AuditQuery, QuarantineCap, Store};

    const SEALED: i64 = SEALED_OVERHEAD as i64;
    use regie_sync_protocol::DocumentId;
    use time::OffsetDateTime;

    use crate::support::{database_file, fail_inserts_into, open_store};
    use time::macros::datetime;

    /// A dossier with one document, stored directly; returns both ids.
    async fn dossier(store: &Store, team: &str) -> (DossierId, DocumentId) {
        let id = DossierId::new_random();
        let doc = DocumentId::new_random();
        let rel = Relationships::new(id, "noord".parse().unwrap(), team.parse().unwrap());
        store
            .create_dossier(
                &rel,
                &[],
                &[(doc, DocumentKey::Plan, vec![0])],
                OffsetDateTime::now_utc(),
                &[],
            )
            .await
            .unwrap();
        (id, doc)
    }

    fn open(at: OffsetDateTime, actor: &str, dossier: DossierId, persons: &str) -> AuditEvent {
        let mut e = AuditEvent::new(at, actor, "worker", AuditAction::Open);
        e.dossier = Some(dossier.to_string());
        e.persons = Some(persons.into());
        e
    }

    #[tokio::test]
    async fn the_audit_cursor_reads_what_sql_selects_in_time_order_in_pages_of_at_most_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        let (noord, _) = dossier(&store, "team-noord").await;
        let (zuid, _) = dossier(&store, "team-zuid").await;
        // Each dossier's creation logged its data key's (I6).
        let earlier = store.audit_events(None).await.unwrap().len();
        assert_eq!(earlier, 2);
        let base = datetime!(2024-05-01 00:00 UTC);
        // Appended out of time order, with whole and fractional seconds side by side (as text
        // "…:00Z" sorts after "…:00.5Z", which a text order would get wrong).
        let mut rows = Vec::new();
        for i in (0..500_i64).rev() {
            let at = base + time::Duration::milliseconds(500 * i);
            rows.push(open(at, "anna", noord, "p-sanne,p-daan"));
            rows.push(open(at, "dirk", zuid, "p-sannes"));
            rows.push(open(at, "server", noord, "p-sanne"));
        }
        // Outside the period.
        rows.push(open(
            base - time::Duration::seconds(1),
            "anna",
            noord,
            "p-sanne",
        ));
        rows.push(open(
            base + time::Duration::hours(1),
            "anna",
            noord,
            "p-sanne",
        ));
        store.append_audit_all(&rows).await.unwrap();

        let query = AuditQuery {
            from: Some(base),
            to: Some(base + time::Duration::minutes(10)),
            team: Some("team-noord".parse().unwrap()),
            not_actors: vec!["server".into()],
            person: Some("p-sanne".into()),
            ..AuditQuery::default()
        };
        let mut after = None;
        let mut read = Vec::new();
        loop {
            let page = store.audit_page(&query, after, 7).await.unwrap();
            assert!(page.len() <= 7, "a page holds at most the limit");
            read.extend(page.iter().map(|(seq, e)| (*seq, e.clone())));
            match page.last() {
                Some((seq, _)) if page.len() == 7 => after = Some(*seq),
                _ => break,
            }
        }
        assert_eq!(read.len(), 500, "only anna's rows in the period");
        assert!(read.iter().all(|(_, e)| e.actor == "anna"));
        assert!(
            read.windows(2).all(|w| w[0].1.at < w[1].1.at),
            "in time order, not log order"
        );
        assert_eq!(store.audit_count(&query).await.unwrap(), 500);
        // The page limit is capped, and a scan reads the same rows page by page.
        let everything = AuditQuery::default();
        assert_eq!(
            store
                .audit_page(&everything, None, usize::MAX)
                .await
                .unwrap()
                .len(),
            AUDIT_PAGE_MAX + 1,
            "a page and the row that says another follows"
        );
        let mut scanned = Vec::new();
        let counted = store
            .scan_audit(&everything, |seq, _| scanned.push(seq))
            .await
            .unwrap();
        assert_eq!(counted.rows as usize, earlier + rows.len());
        assert_eq!(
            counted.pages as usize,
            (earlier + rows.len()).div_ceil(AUDIT_PAGE_MAX)
        );
        scanned.sort_unstable();
        scanned.dedup();
        assert_eq!(scanned.len(), earlier + rows.len(), "each row once");
        // A cursor that names no row gives nothing, and the chain verifies in pages too.
        assert!(
            store
                .audit_page(&query, Some(999_999), 7)
                .await
                .unwrap()
                .is_empty()
        );
        let v = store.verify_audit().await.unwrap();
        assert_eq!(
            (v.rows as usize, v.first_broken_seq),
            (earlier + rows.len(), None)
        );
    }

    #[tokio::test]
    async fn a_batch_that_cannot_commit_fails_alone_and_the_batches_grouped_with_it_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        let (dossier, doc) = dossier(&store, "team-noord").await;
        let (_, other) = dossier_of(&store, dossier, DocumentKey::Record).await;
        let at = OffsetDateTime::now_utc();
        let write = |d: DocumentId| {
            let mut e = AuditEvent::new(at, "anna", "worker", AuditAction::Write);
            e.dossier = Some(dossier.to_string());
            e.document = Some(d.to_string());
            e
        };
        assert_eq!(
            store
                .append_changes_audited(doc, 0, &[b"one"], &write(doc))
                .await
                .unwrap(),
            1
        );
        // Sent together, so the committer takes them into one group: the first claims a
        // sequence number that is taken; the others are fine.
        let (w1, w2, w3) = (write(doc), write(other), write(doc));
        let (stale, fine, also) = tokio::join!(
            store.append_changes_audited(doc, 0, &[b"stale"], &w1),
            store.append_changes_audited(other, 0, &[b"a", b"b"], &w2),
            store.append_changes_audited(doc, 1, &[b"two"], &w3),
        );
        assert!(
            stale.is_err(),
            "a batch on a taken sequence number is refused"
        );
        assert_eq!((fine.unwrap(), also.unwrap()), (2, 2));
        let stored = store.load_document(doc).await.unwrap();
        assert_eq!(stored.changes, vec![b"one".to_vec(), b"two".to_vec()]);
        // The refused batch left no audit row, and the chain is whole (the first row is the
        // creation of the dossier's data key).
        let rows = store.audit_events(Some(dossier)).await.unwrap();
        assert_eq!(rows.len(), 4);
        assert!(store.verify_audit().await.unwrap().intact());
    }

    #[tokio::test]
    async fn a_rejection_or_a_destruction_whose_audit_row_cannot_be_written_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        let (dossier, doc) = dossier(&store, "team-noord").await;
        let rows = store.audit_events(None).await.unwrap().len();
        let at = OffsetDateTime::now_utc();
        let ev = AuditEvent::new(at, "sanne", "resident", AuditAction::Reject);
        let failing = fail_inserts_into(dir.path(), "audit").await;
        let rejected = store
            .quarantine(
                at,
                &"sanne".parse().unwrap(),
                Some("phone"),
                doc,
                "forbidden_path",
                Some("/goals"),
                "a test rejection",
                "abcd",
                &[7; 10],
                &ev,
            )
            .await;
        assert!(rejected.is_err());
        let destroyed = store
            .destroy_dossier(dossier, "retention_ended", at, |_| ev.clone())
            .await;
        assert!(destroyed.is_err());
        failing.lift().await;
        assert!(
            store.quarantined().await.unwrap().is_empty(),
            "no batch kept"
        );
        assert!(store.destructions().await.unwrap().is_empty(), "no proof");
        assert!(store.load_document(doc).await.is_ok(), "nothing destroyed");
        assert_eq!(store.audit_events(None).await.unwrap().len(), rows);
    }

    /// A second document of `dossier`, stored directly.
    async fn dossier_of(
        store: &Store,
        dossier: DossierId,
        key: DocumentKey,
    ) -> (DossierId, DocumentId) {
        let doc = DocumentId::new_random();
        store
            .commit_unit(&regie_server::storage::Unit {
                dossier,
                at: OffsetDateTime::now_utc(),
                edits: &[],
                new_document: Some((doc, &key, &[0])),
                changes: Vec::new(),
                audit: &[],
            })
            .await
            .unwrap();
        (dossier, doc)
    }

    /// Bytes kept, and bytes stored, of every quarantined row, oldest first: read from the file,
    /// because what matters is that the bytes are not on the disk, not only not listed.
    async fn kept(dir: &std::path::Path) -> Vec<(bool, i64, i64)> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT kept, size, CAST(length(changes) AS BIGINT) FROM quarantine ORDER BY id",
        )
        .fetch_all(&database_file(dir).await)
        .await
        .unwrap();
        rows.into_iter().map(|(k, s, l)| (k != 0, s, l)).collect()
    }

    async fn reject(store: &Store, user: &str, device: &str, doc: DocumentId, bytes: usize) {
        store
            .quarantine(
                OffsetDateTime::now_utc(),
                &user.parse().unwrap(),
                Some(device),
                doc,
                "forbidden_path",
                Some("/goals"),
                "a test rejection",
                "abcd",
                &vec![7; bytes],
                &AuditEvent::new(
                    OffsetDateTime::now_utc(),
                    user,
                    "resident",
                    AuditAction::Reject,
                ),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn quarantine_beyond_the_cap_per_device_and_per_dossier_keeps_the_record_without_its_bytes()
     {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path())
            .await
            .with_quarantine_cap(QuarantineCap {
                batches: 3,
                bytes: 1000,
            });
        let (_, doc) = dossier(&store, "team-noord").await;
        let (_, other_doc) = dossier(&store, "team-noord").await;
        for _ in 0..5 {
            reject(&store, "sanne", "phone", doc, 100).await;
        }
        // Another device of the same dossier: the dossier is full too.
        reject(&store, "olga", "laptop", doc, 100).await;
        // A fresh device and dossier keep bytes, but not a batch beyond the byte cap.
        reject(&store, "olga", "laptop", other_doc, 600).await;
        reject(&store, "olga", "laptop", other_doc, 600).await;
        reject(&store, "olga", "laptop", other_doc, 1001).await;
        assert_eq!(
            kept(dir.path()).await,
            // Kept bytes are sealed (I6): each block a little longer than the batch.
            [
                (true, 100, 100 + SEALED),
                (true, 100, 100 + SEALED),
                (true, 100, 100 + SEALED),
                (false, 100, 0),
                (false, 100, 0),
                (false, 100, 0),
                (true, 600, 600 + SEALED),
                (false, 600, 0),
                (false, 1001, 0),
            ]
        );
        // Every rejection is still listed for review, with its reason and hashes.
        let listed = store.quarantined().await.unwrap();
        assert_eq!(listed.len(), 9);
        assert!(
            listed
                .iter()
                .all(|r| r.reason == "forbidden_path" && r.hashes == "abcd")
        );
        assert_eq!(listed.iter().filter(|r| r.bytes_kept).count(), 4);
        let page = store.quarantined_page(Some(listed[2].id), 3).await.unwrap();
        assert_eq!(
            page.iter().map(|r| r.id).collect::<Vec<_>>(),
            listed[3..6].iter().map(|r| r.id).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn by_default_quarantine_keeps_sixty_four_batches_of_one_device_with_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        let (_, doc) = dossier(&store, "team-noord").await;
        for _ in 0..66 {
            reject(&store, "sanne", "phone", doc, 10).await;
        }
        let rows = kept(dir.path()).await;
        assert_eq!(rows.len(), 66);
        assert_eq!(rows.iter().filter(|(k, _, _)| *k).count(), 64);
        assert!(rows[64..].iter().all(|r| *r == (false, 10, 0)));
    }
}

// ---- one behaviour on either backend (issue 17) -------------------------------------------

mod backends {
    use regie_core::id::{DocumentKey, DossierId};
    use regie_core::relationship::{Grant, Relationships};
    use regie_server::audit::{AuditAction, AuditEvent};
    use regie_server::storage::{RelationEdit, Unit};
    use regie_sync_protocol::DocumentId;
    use time::OffsetDateTime;

    use crate::support::{TestDatabase, database_file, open_store, test_database};

    fn event(actor: &str, dossier: DossierId) -> AuditEvent {
        let mut e = AuditEvent::new(
            OffsetDateTime::now_utc(),
            actor,
            "worker",
            AuditAction::Open,
        );
        e.dossier = Some(dossier.to_string());
        e
    }

    #[tokio::test]
    async fn a_postgresql_url_asking_for_tls_gets_only_encrypted_connections() {
        if test_database() != TestDatabase::Postgres {
            eprintln!("skipped: TLS to the database needs REGIE_TEST_DATABASE=postgres");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut args = crate::support::store_args(dir.path()).await;
        let url = args.database_url.take().expect("a PostgreSQL URL").0;
        let name = url.rsplit('/').next().unwrap().to_owned();
        args.database_url = Some(regie_server::config::DatabaseUrl(format!(
            "{url}?sslmode=require"
        )));
        let store = regie_server::storage::Store::open_backend(
            &args.backend().unwrap(),
            args.kek().unwrap(),
        )
        .await
        .expect("the store opens over TLS");
        store.audit_events(None).await.unwrap();

        // Seen from the server's side: every connection to the store's database is encrypted.
        let mut admin = crate::support::admin_connection().await;
        let (connections, encrypted): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE s.ssl)
             FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid
             WHERE a.datname = $1",
        )
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        assert!(connections > 0, "the store is connected");
        assert_eq!(encrypted, connections, "every connection speaks TLS");
    }

    #[tokio::test]
    async fn a_destroyed_dossier_leaves_no_row_behind_only_the_proof() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        let now = OffsetDateTime::now_utc();
        let (gone, kept) = (DossierId::new_random(), DossierId::new_random());
        let mut docs = Vec::new();
        for dossier in [gone, kept] {
            let rel = Relationships::new(
                dossier,
                "noord".parse().unwrap(),
                "team-noord".parse().unwrap(),
            );
            let (plan, record) = (DocumentId::new_random(), DocumentId::new_random());
            store
                .create_dossier(
                    &rel,
                    &["p-sanne".parse().unwrap()],
                    &[
                        (plan, DocumentKey::Plan, vec![1, 2, 3]),
                        (record, DocumentKey::Record, vec![4]),
                    ],
                    now,
                    &[event("anna", dossier)],
                )
                .await
                .unwrap();
            let edits = [
                RelationEdit::Assign("anna".parse().unwrap()),
                RelationEdit::Link("p-sanne".parse().unwrap()),
                RelationEdit::Grant(Grant {
                    user: "carla".parse().unwrap(),
                    reason: "crisis".into(),
                    granted_at: now,
                    expires_at: now + time::Duration::hours(1),
                }),
                RelationEdit::Task {
                    kind: "inform_resident",
                    about: "test".into(),
                },
                RelationEdit::Close {
                    destroy_by: Some(now.date()),
                },
            ];
            let changes: Vec<&[u8]> = vec![b"SENTINEL-CHANGE"];
            store
                .commit_unit(&Unit {
                    dossier,
                    at: now,
                    edits: &edits,
                    new_document: None,
                    changes: vec![(plan, 0, changes)],
                    audit: &[event("anna", dossier)],
                })
                .await
                .unwrap();
            store
                .put_sync_state(&"anna".parse().unwrap(), "tablet", plan, b"state")
                .await
                .unwrap();
            store
                .quarantine(
                    now,
                    &"anna".parse().unwrap(),
                    Some("tablet"),
                    plan,
                    "forbidden_path",
                    None,
                    "x",
                    "ab",
                    b"SENTINEL-REJECTED",
                    &event("anna", dossier),
                )
                .await
                .unwrap();
            docs.push((plan, record));
        }
        let mut due = store.due_for_destruction(now.date()).await.unwrap();
        due.sort_by_key(ToString::to_string);
        let mut both = vec![gone, kept];
        both.sort_by_key(ToString::to_string);
        assert_eq!(due, both, "both closed dossiers are due today");
        let proof = store
            .destroy_dossier(gone, "retention_ended", now, |_| event("regie", gone))
            .await
            .unwrap();
        assert_eq!((proof.documents, proof.changes), (2, 1));

        let pool = database_file(dir.path()).await;
        let (plan, record) = docs[0];
        let count = |sql: &'static str, id: String| {
            let pool = pool.clone();
            async move {
                let (n,): (i64,) = sqlx::query_as(sql).bind(id).fetch_one(&pool).await.unwrap();
                n
            }
        };
        for (table, column) in [
            ("dossiers", "id"),
            ("dossier_persons", "dossier"),
            ("assignments", "dossier"),
            ("resident_links", "dossier"),
            ("grants", "dossier"),
            ("tasks", "dossier"),
            ("documents", "dossier"),
        ] {
            let sql: &'static str = Box::leak(
                format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1").into_boxed_str(),
            );
            assert_eq!(
                count(sql, gone.to_string()).await,
                0,
                "{table} keeps no row of it"
            );
            assert!(
                count(sql, kept.to_string()).await > 0,
                "{table} keeps the other dossier's"
            );
        }
        for doc in [plan, record] {
            for table in ["changes", "snapshots", "sync_states", "quarantine"] {
                let sql: &'static str = Box::leak(
                    format!("SELECT COUNT(*) FROM {table} WHERE document = $1").into_boxed_str(),
                );
                assert_eq!(
                    count(sql, doc.to_string()).await,
                    0,
                    "{table} keeps nothing of {doc}"
                );
            }
        }
        // Through the store too: the document is empty, and the proof holds ids and counts.
        assert!(store.load_document(plan).await.unwrap().changes.is_empty());
        assert_eq!(store.destructions().await.unwrap(), vec![proof]);
        assert!(
            store
                .quarantined()
                .await
                .unwrap()
                .iter()
                .all(|r| r.document != plan.to_string())
        );
        // The audit log is kept (it is the proof of who saw what) and still one chain.
        assert!(store.verify_audit().await.unwrap().intact());
    }

    /// Several instances on one PostgreSQL database append to one audit log: each append reads
    /// the tail under a lock inside its transaction, so the chain stays one. (SQLite is one
    /// process's file: a second store on it is not a supported deployment.)
    #[tokio::test]
    async fn two_stores_on_one_postgres_database_append_to_one_audit_chain() {
        if test_database() != TestDatabase::Postgres {
            eprintln!(
                "PostgreSQL only (REGIE_TEST_DATABASE=postgres): several instances share one database there"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (open_store(dir.path()).await, open_store(dir.path()).await);
        let dossier = DossierId::new_random();
        async fn append(store: &regie_server::storage::Store, actor: &str, dossier: DossierId) {
            for i in 0..40 {
                if i % 2 == 0 {
                    store.append_audit(&event(actor, dossier)).await.unwrap();
                } else {
                    store
                        .append_audit_all(&[event(actor, dossier), event(actor, dossier)])
                        .await
                        .unwrap();
                }
            }
        }
        tokio::join!(
            append(&a, "anna", dossier),
            append(&b, "bram", dossier),
            append(&a, "carla", dossier),
            append(&b, "dirk", dossier)
        );
        for store in [&a, &b] {
            let v = store.verify_audit().await.unwrap();
            assert_eq!(
                (v.rows, v.first_broken_seq),
                (4 * 60, None),
                "one chain, every row in it"
            );
        }
    }
}

/// What the hub knows of every dossier (relationships, persons, documents), in a stable order.
fn known_dossiers(server: &TestServer) -> Vec<String> {
    let mut known: Vec<String> = server
        .state
        .hub
        .dossiers()
        .iter()
        .map(|entry| format!("{entry:?}"))
        .collect();
    known.sort();
    known
}

#[tokio::test]
async fn a_restarted_server_knows_every_dossier_its_persons_and_documents_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    for _ in 0..3 {
        seed_household(&server).await;
    }
    let before = known_dossiers(&server);
    let entries = server.state.hub.dossiers();
    assert_eq!(entries.len(), 3);
    assert!(
        entries.iter().all(|e| e.persons.len() == 2
            && e.documents.len() >= 5
            && !e.rel.assigned.is_empty()
            && !e.rel.partners.is_empty()),
        "every dossier has persons, documents, assignments and partners to reload: {entries:?}"
    );
    server.stop().await;
    let server = TestServer::start(dir.path()).await;
    assert_eq!(known_dossiers(&server), before);
    server.stop().await;
}
