//! The JS automerge-repo test peers in `tests/js`: where they are, whether node and npm are on
//! the PATH, and installing their dependencies once (`npm install`, never `npm ci`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// The directory of the JS peers.
pub(crate) fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Whether `tool --version` runs.
pub(crate) fn on_path(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs the JS peers' dependencies unless they are there already.
pub(crate) async fn ensure_node_modules(dir: &Path) {
    if dir.join("node_modules/@automerge/automerge-repo").is_dir()
        && dir
            .join("node_modules/@automerge/automerge-repo-network-websocket")
            .is_dir()
    {
        return;
    }
    // `npm ci` rejects the lock npm writes here (a skipped optional cbor-extract binary);
    // `npm install` with the same lock works and leaves it unchanged.
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("npm install took more than 5 minutes")
    .expect("npm install runs");
    assert!(
        out.status.success(),
        "npm install in {} failed ({}):\n{}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
