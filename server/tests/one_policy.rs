//! I5 as an architecture test: outside `regie-core`, no code compares roles to grant or refuse
//! anything. Every such question is an `Action` that `regie_core::policy::decide` answers; code
//! here may only build principals (`role: Role::Worker`) and pass them on. And the storage
//! boundary: in the server, only `storage` speaks SQL or holds a pool.

use std::path::{Path, PathBuf};

/// The crates that must ask the policy instead of deciding by role.
const SOURCES: [&str; 4] = [
    "server/src",
    "clients/rust/src",
    "clients/cli/src",
    "bench/src",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether a line decides something by role: a comparison with, a match arm on, or a
/// `matches!` over a `Role`.
fn decides_by_role(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or_default();
    let Some(at) = code.find("Role::") else {
        return false;
    };
    let before = code[..at].trim_end();
    let after = &code[at + "Role::".len()..];
    let variant_end = after
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(after.len());
    let rest = after[variant_end..].trim_start();
    before.ends_with("==")
        || before.ends_with("!=")
        || before.contains("matches!(")
        || rest.contains("=>")
        || rest.starts_with("if ")
        || rest.starts_with('|')
        || before.ends_with('|')
}

#[test]
fn no_code_outside_the_core_compares_roles_to_grant_or_refuse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in SOURCES {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 20, "the scan found the sources");
    let mut found = Vec::new();
    for file in files {
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("a readable source");
        // Unit tests at the end of a file build whatever principals they need.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            if decides_by_role(line) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "decide these through regie_core::policy::decide instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_recognises_decisions_by_role_and_lets_construction_pass() {
    for decision in [
        "if who.role == Role::Worker && x {",
        "if who.role != Role::PrivacyOfficer {",
        "Role::Manager if who.team.as_ref() == Some(&team) => Ok(()),",
        "Role::Admin => true,",
        "matches!(who.role, Role::Manager | Role::Admin)",
        "(Role::Resident, Some(p)) => p.clone(),",
    ] {
        assert!(decides_by_role(decision), "{decision}");
    }
    for construction in [
        "role: Role::Worker,",
        "claims(\"ggd.smit\", Role::Partner, None, None, Some(\"ggd\"), None),",
        "// Role::Admin => true, in a comment",
    ] {
        assert!(!decides_by_role(construction), "{construction}");
    }
}

#[test]
fn only_the_storage_module_of_the_server_speaks_sql() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let storage = root.join("src/storage");
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let found: Vec<String> = files
        .iter()
        .filter(|f| **f != root.join("src/storage.rs") && !f.starts_with(&storage))
        // Tests of the audit chain open an old store file as it was written.
        .filter(|f| !f.ends_with("audit/tests.rs"))
        .filter(|f| {
            std::fs::read_to_string(f)
                .expect("a readable source")
                .contains("sqlx")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        found.is_empty(),
        "move this SQL behind a storage method: {found:?}"
    );
}
