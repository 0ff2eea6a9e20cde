//! Criterion micro-benchmarks of the server's hot paths: the policy decision, batch validation
//! (per-operation policy plus whole-document schema check), the audit append (one hash-chained
//! SQLite insert), the resident-view projection update after one record change, the fork a
//! write makes of the document, and the wire codec. Documents grow with `history` (changes in
//! the record before the measured one), because several of these walk the whole document. Run
//! with `cargo bench -p regie-bench`; never part of the test suite.

use std::hint::black_box;

use automerge::{ActorId, Automerge};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use regie_bench::rng::Rng;
use regie_bench::workload::{DISTRICT, Layout, TEAM, dossier_bytes, edit};
use regie_core::id::{DocumentKey, DocumentKind};
use regie_core::path::Path;
use regie_core::policy::{Action, decide};
use regie_core::principal::{Claims, Principal, Role};
use regie_core::relationship::Relationships;
use regie_server::audit::{AuditAction, AuditEvent};
use regie_server::storage::Store;
use regie_sync_protocol::{DocumentId, Message, PeerId, decode, encode};

fn principal(sub: &str, role: Role, person: Option<&str>) -> Principal {
    Principal::from_claims(&Claims {
        sub: sub.into(),
        role,
        district: (role == Role::Worker).then(|| DISTRICT.into()),
        team: (role == Role::Worker).then(|| TEAM.into()),
        org: None,
        person: person.map(Into::into),
        citywide: false,
    })
    .expect("valid claims")
}

fn relationships(layout: &Layout) -> Relationships {
    let mut rel = Relationships::new(
        layout.dossiers[0].id,
        DISTRICT.parse().expect("valid"),
        TEAM.parse().expect("valid"),
    );
    rel.assigned = vec!["w0".parse().expect("valid"), "w1".parse().expect("valid")];
    rel.linked_persons = vec!["p1".parse().expect("valid")];
    rel
}

fn policy(c: &mut Criterion) {
    let layout = Layout::ring(1, 2, 1, 1);
    let rel = relationships(&layout);
    let now = time::OffsetDateTime::now_utc();
    let worker = principal("w1", Role::Worker, None);
    let resident = principal("r1", Role::Resident, Some("p1"));
    let path = Path::parse("goals/3/actions/2/owner");
    let mut g = c.benchmark_group("policy_decide");
    g.bench_function("worker_sync_record", |b| {
        b.iter(|| {
            decide(
                black_box(&worker),
                Action::Sync(&DocumentKey::Record),
                &rel,
                now,
            )
        })
    });
    g.bench_function("resident_write_plan_path", |b| {
        b.iter(|| {
            decide(
                black_box(&resident),
                Action::WritePath(&DocumentKey::Plan, &path),
                &rel,
                now,
            )
        })
    });
    g.finish();
}

/// A document with `history` changes and a fork with one more edit by an assigned worker.
fn fork_with_one_edit(kind: DocumentKind, history: usize) -> (Automerge, Automerge) {
    let layout = Layout::ring(5, 2, 1, 1);
    let bytes = dossier_bytes(&layout, 0, history);
    let saved = if kind == DocumentKind::Plan {
        bytes.plan
    } else {
        bytes.record
    };
    let base = Automerge::load(&saved).expect("loads");
    let mut fork = base.clone().with_actor(ActorId::from([7u8; 16].as_slice()));
    edit(&mut fork, kind, &mut Rng::new(11), "bench", 1).expect("an edit");
    (base, fork)
}

fn validation(c: &mut Criterion) {
    let layout = Layout::ring(5, 2, 1, 1);
    let rel = relationships(&layout);
    let now = time::OffsetDateTime::now_utc();
    let worker = principal("w1", Role::Worker, None);
    let mut g = c.benchmark_group("check_batch_one_change");
    for history in [10, 100, 1_000] {
        let (base, fork) = fork_with_one_edit(DocumentKind::Record, history);
        let new = base.get_changes_added(&fork);
        g.bench_with_input(
            BenchmarkId::new("record_with_changes", history),
            &history,
            |b, _| {
                b.iter(|| {
                    regie_core::validation::check_batch(
                        &worker,
                        &DocumentKey::Record,
                        &rel,
                        now,
                        black_box(&fork),
                        black_box(&new),
                    )
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("schema_validate_only", history),
            &history,
            |b, _| {
                b.iter(|| regie_core::document::validate(DocumentKind::Record, black_box(&fork)))
            },
        );
        g.bench_with_input(BenchmarkId::new("fork_clone", history), &history, |b, _| {
            b.iter(|| black_box(&base).clone())
        });
    }
    g.finish();
}

fn projection(c: &mut Criterion) {
    let person = regie_core::id::PersonId::new("p1").expect("valid id");
    let mut g = c.benchmark_group("projection_view_update_one_change");
    for history in [10, 100, 1_000] {
        let (base, fork) = fork_with_one_edit(DocumentKind::Record, history);
        let new = base.get_changes_added(&fork);
        g.bench_with_input(
            BenchmarkId::new("record_with_changes", history),
            &history,
            |b, _| {
                b.iter(|| {
                    // What the write path does per record batch: locate once, then project.
                    let touched = regie_core::validation::touched_paths(black_box(&fork), &new);
                    let entries = regie_core::projection::touched_entries(&fork, &touched);
                    regie_core::projection::view_update(&fork, &person, Some(&entries))
                })
            },
        );
    }
    g.finish();
}

fn audit(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = rt.block_on(Store::open(dir.path())).expect("store");
    let mut ev = AuditEvent::new(
        time::OffsetDateTime::now_utc(),
        "w1",
        "worker",
        AuditAction::Write,
    );
    ev.dossier = Some(uuid::Uuid::new_v4().to_string());
    ev.document = Some("record".into());
    ev.persons = Some("p1,p2".into());
    ev.device = Some("storage-1".into());
    ev.detail = Some("1 changes".into());
    c.bench_function("audit_append", |b| {
        b.iter(|| {
            rt.block_on(store.append_audit(black_box(&ev)))
                .expect("append")
        })
    });
}

fn codec(c: &mut Criterion) {
    let (base, fork) = fork_with_one_edit(DocumentKind::Record, 100);
    let change = base.get_changes_added(&fork)[0].raw_bytes().to_vec();
    let message = Message::Sync {
        sender_id: PeerId::new("regie-server-0123abcd"),
        target_id: PeerId::new("dev-17-1"),
        document_id: DocumentId::new_random(),
        data: change,
    };
    let frame = encode(&message);
    let mut g = c.benchmark_group("wire_codec");
    g.bench_function("encode_sync", |b| b.iter(|| encode(black_box(&message))));
    g.bench_function("decode_sync", |b| b.iter(|| decode(black_box(&frame))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = policy, validation, projection, audit, codec
}
criterion_main!(benches);
