//! `@regie/client` (clients/js) against the real `regie-server` binary: runs `npm install` at the
//! repository root (the npm workspace) and then the package's own test suite (`npm test`, Node's
//! test runner), which starts `regie-server demo` on 127.0.0.1:0 per test file with the binary
//! cargo built for this test (`REGIE_SERVER_BIN`). It lives here, not in `tests/`, because it
//! needs that binary.
//!
//! Needs `node`, `npm` and the `sqlite3` CLI on PATH; without node or npm the test says so and
//! passes vacuously, as the interop test does. Set `REGIE_CLIENT_LOG=1` for the client's log.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;
use support::{on_path, run};

#[test]
fn the_typescript_client_keeps_regies_promises_against_the_real_server() {
    if !on_path("node") || !on_path("npm") {
        eprintln!("SKIPPED: `node` and `npm` must be on PATH for the @regie/client tests");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if !root
        .join("node_modules/@automerge/automerge-repo-storage-nodefs")
        .is_dir()
    {
        let mut install = Command::new("npm");
        install
            .args(["install", "--no-audit", "--no-fund"])
            .current_dir(&root);
        let (ok, out) = run(install, Duration::from_secs(300));
        assert!(ok, "npm install at the repository root failed:\n{out}");
    }
    let mut test = Command::new("npm");
    test.args(["test", "-w", "@regie/client"])
        .current_dir(&root)
        .env("REGIE_SERVER_BIN", env!("CARGO_BIN_EXE_regie-server"));
    let (ok, out) = run(test, Duration::from_secs(480));
    assert!(ok, "the @regie/client tests failed:\n{out}");
    eprintln!("{out}");
}
