//! What the test binaries that drive external tools (npm, node, Chromium) share: whether a tool
//! is on PATH, and running a command within a time limit.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `tool --version` runs.
pub(crate) fn on_path(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` to completion within `limit`, killing it after that; returns success and output.
pub(crate) fn run(mut cmd: Command, limit: Duration) -> (bool, String) {
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out_file.reopen().unwrap())
        .stderr(out_file.reopen().unwrap())
        .spawn()
        .expect("the command starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(out_file.path()).unwrap_or_default();
    (status.is_some_and(|s| s.success()), output)
}
