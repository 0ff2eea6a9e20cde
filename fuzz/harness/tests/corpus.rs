//! Replays every file of the checked-in fuzz corpus (`fuzz/corpus/<target>/`) and every seed
//! through the same entry points the cargo-fuzz targets call, on stable, so CI keeps what the
//! fuzzer found covered: no file may panic in Regie's code.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, Once};

use regie_fuzz_harness::{Target, corpus};

/// Where the last panic of this process happened (each test runs in its own process under
/// nextest; under `cargo test` the hook is shared, which is harmless for the check below).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Panics tolerated: those inside automerge or its column codec hexane, which the hub contains
/// (`server/src/session.rs` catches the panic, ends that connection and discards the fork) and
/// the `receive` fuzz binary contains alike (FUZZING.md, Findings). Some corpus inputs reach one
/// only in some runs (automerge orders operations by their random actor ids), so they cannot all
/// be weeded out of the corpus; a panic in Regie's own code still fails.
fn contained_upstream_panic(location: Option<&str>) -> bool {
    location.is_some_and(|l| l.contains("/automerge-0.") || l.contains("/hexane-"))
}

/// Runs `inputs` through `target`, naming every input that panics.
fn replay(target: Target, inputs: &[(String, Vec<u8>)]) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) =
                info.location().map(|l| l.file().to_owned());
            default(info);
        }));
    });
    let failures: Vec<&str> = inputs
        .iter()
        .filter(|(_, bytes)| {
            catch_unwind(AssertUnwindSafe(|| target.run(bytes))).is_err()
                && !contained_upstream_panic(
                    LAST_PANIC
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .as_deref(),
                )
        })
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        failures.is_empty(),
        "{} panics on {failures:?}",
        target.name()
    );
}

fn replay_corpus(target: Target) {
    let files = corpus(target);
    assert!(
        !files.is_empty(),
        "the corpus of {} is empty: {}",
        target.name(),
        target.corpus_dir().display()
    );
    replay(target, &files);
}

#[test]
fn every_frame_in_the_corpus_is_decoded_or_refused_without_a_panic() {
    replay_corpus(Target::Frame);
}

#[test]
fn every_sync_message_in_the_corpus_is_checked_and_what_passes_is_applied_without_a_panic() {
    replay_corpus(Target::SyncMessage);
}

#[test]
fn every_message_in_the_receive_corpus_goes_through_the_write_path_without_a_panic() {
    replay_corpus(Target::Receive);
}

#[test]
fn every_policy_question_in_the_corpus_is_answered_consistently() {
    replay_corpus(Target::Policy);
}

#[test]
fn every_edited_document_in_the_schema_corpus_is_validated_without_a_panic() {
    replay_corpus(Target::Schema);
}

#[test]
fn every_token_in_the_corpus_is_authenticated_or_refused_without_a_panic() {
    replay_corpus(Target::Token);
}

#[test]
fn every_seed_of_every_target_runs_cleanly() {
    for target in Target::ALL {
        let seeds: Vec<(String, Vec<u8>)> = target
            .seeds()
            .into_iter()
            .enumerate()
            .map(|(i, s)| (format!("seed {i}"), s))
            .collect();
        assert!(!seeds.is_empty(), "{} has no seeds", target.name());
        replay(target, &seeds);
    }
}

/// Found by the `receive` target (FUZZING.md): a device's edit script on the plan — a real
/// sync message, not mutated — makes `check_batch` ask `Automerge::parents` for an object that
/// was inserted into a list and deleted, where automerge 0.12's `seek_list_opid` checks its fast
/// lookup against its slow one with a `debug_assert_eq!` and they disagree. Release builds (the
/// server) skip the assertion and the write path answers; debug builds panic inside automerge.
/// An upstream issue, kept here as a reproducer and run where debug assertions are off.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "automerge 0.12 debug assertion in seek_list_opid (FUZZING.md)"
)]
fn a_device_edit_that_trips_automerge_s_parents_debug_check_is_answered_in_release_builds() {
    Target::Receive.run(include_bytes!(
        "../../regressions/receive-automerge-seek-list-opid-debug-assert"
    ));
}

/// Found by the `schema` target (FUZZING.md): an edit script whose increments overflow an
/// automerge counter. automerge 0.12 adds a counter's increments with `+` (`op_set2/op.rs`,
/// `fix_counter`), so debug builds panic with an overflow when the document is read — here in
/// `validate_paths` — and release builds (the server) wrap. Upstream; run where overflow checks
/// are off. (Such inputs are kept out of the checked-in corpus, which the debug-build replay
/// runs.)
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "automerge 0.12 counter overflow in debug builds (FUZZING.md)"
)]
fn an_edit_that_overflows_an_automerge_counter_is_validated_in_release_builds() {
    Target::Schema.run(include_bytes!(
        "../../regressions/schema-automerge-counter-overflow-debug"
    ));
}

/// Found by the `receive` target (FUZZING.md): messages that pass `check_sync_message` and make
/// automerge 0.12 panic on the server's fork — in release builds too — one reproducer per panic
/// site in `fuzz/regressions/receive-automerge-panic-*`: `op_set2/change/collector.rs:753` and
/// `:788` (in `get_changes_added`); `op_set2/op_set.rs:363` (in `Automerge::parents`, asked by
/// `check_batch` about a batch automerge accepted); and in `receive_sync_message`,
/// `op_set2/change/batch.rs:136`, `:146`, `:147`, `:859`, `:920` and `:1121`,
/// `op_set2/change.rs:282` and `:306`, `op_set2/change/collector.rs:214` and `:299`,
/// `change_graph.rs:993`, `:1007`, `:1010` and `:1673`, and `hexane` `raw.rs:620` and `:622`
/// and `lib.rs:364`. Mutated change or document chunks with recomputed checksums; the pre-check
/// cannot refuse them without re-implementing Automerge's change application. The hub contains
/// them (issue 12, item 2: the connection ends, the fork is discarded). Upstream; ignored until
/// automerge answers with errors.
#[test]
#[ignore = "automerge 0.12 panics on these messages (FUZZING.md)"]
fn messages_that_make_automerge_panic_on_the_fork_are_answered_without_a_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../regressions");
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fuzz/regressions")
        .map(|e| e.expect("an entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("receive-automerge-panic-"))
        })
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            (
                name.unwrap_or_default(),
                std::fs::read(&p).expect("readable"),
            )
        })
        .collect();
    inputs.sort();
    assert_eq!(inputs.len(), 20, "one reproducer per panic site");
    replay(Target::Receive, &inputs);
}
