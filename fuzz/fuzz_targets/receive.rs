//! Fuzz target `receive`: see `regie_fuzz_harness::receive` for what it feeds where and what must
//! hold. Panics inside automerge (and its column codec, hexane) are contained here as the hub
//! contains them (`server/src/session.rs`: the connection ends, the fork is discarded): each
//! site is reported once on stderr and the run goes on; any other panic aborts as usual. Without
//! this, the known upstream panics (FUZZING.md) end a job every few hundred inputs and the run
//! needs `-fork=1 -ignore_crashes=1`. The stable replay (`fuzz/harness/tests`) is unaffected.
#![no_main]

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, Once};

use libfuzzer_sys::Corpus;

fn upstream(file: &str) -> bool {
    file.contains("/automerge-0.") || file.contains("/hexane-")
}

fn contain_upstream_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // libFuzzer's hook (set before the first input) aborts; it stays in charge of the rest.
        let abort = panic::take_hook();
        let seen = Mutex::new(HashSet::new());
        panic::set_hook(Box::new(move |info| match info.location() {
            Some(at) if upstream(at.file()) => {
                let site = format!("{}:{}", at.file(), at.line());
                if seen.lock().is_ok_and(|mut s| s.insert(site.clone())) {
                    eprintln!("contained upstream panic at {site}: {info}");
                    if let Ok(mut new) = NEW_SITE.lock() {
                        *new = Some(site);
                    }
                }
            }
            _ => abort(info),
        }));
    });
}

/// The site of a contained panic seen for the first time in this process, until its input is
/// kept as `upstream-panic-<file>-<line>` in the working directory (a reproducer, as libFuzzer
/// keeps `crash-*`).
static NEW_SITE: Mutex<Option<String>> = Mutex::new(None);

fn keep_reproducer(data: &[u8]) {
    let Some(site) = NEW_SITE.lock().ok().and_then(|mut s| s.take()) else {
        return;
    };
    let mut tail: Vec<&str> = site.rsplit('/').take(2).collect();
    tail.reverse();
    let name = format!("upstream-panic-{}", tail.join("-").replace(['.', ':'], "-"));
    match std::fs::write(&name, data) {
        Ok(()) => eprintln!("reproducer of {site} written to {name}"),
        Err(e) => eprintln!("reproducer of {site} not written: {e}"),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| -> Corpus {
    contain_upstream_panics();
    // An upstream panic unwinds to here (the hook above let it); nothing else does. Its input
    // stays out of the corpus, as a crash would, so the stable replay never meets it.
    match panic::catch_unwind(AssertUnwindSafe(|| regie_fuzz_harness::receive(data))) {
        Ok(()) => Corpus::Keep,
        Err(_) => {
            keep_reproducer(data);
            Corpus::Reject
        }
    }
});
