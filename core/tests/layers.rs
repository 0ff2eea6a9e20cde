//! regie-core reads as layers: ids and paths at the bottom, then what they describe (principal,
//! consent, document), then relationships, shares and projection, then the policy, then what
//! puts documents to the policy (validation, writable). A module may name only modules of lower
//! layers. Read from the sources (`crate::<module>` mentions outside comments, in every file of
//! a module, its tests apart), so a new cycle — or a module placed nowhere — fails here before
//! it tangles the policy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The declared order, bottom first.
const LAYERS: &[&[&str]] = &[
    &["id", "path", "retention", "rights"],
    &["principal", "consent", "document"],
    &["relationship", "share", "projection"],
    &["policy"],
    &["validation", "writable"],
];

/// Module name → the crate modules its code (not its comments) names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    collect(&src, &mut files);
    for path in files {
        let relative = path.strip_prefix(&src).expect("under src");
        // A file belongs to the top-level module it lies in: `document/compose.rs` to `document`.
        let first = relative.components().next().expect("a component");
        let name = Path::new(first.as_os_str())
            .file_stem()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        if name == "lib" || path.file_name().is_some_and(|f| f == "tests.rs") {
            continue;
        }
        let code = std::fs::read_to_string(&path).expect("readable");
        graph
            .entry(name.clone())
            .or_default()
            .extend(named_modules(&code, &name));
    }
    graph
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate modules `code` names outside comments, `own` apart; `crate::{a, b::c}` names both.
fn named_modules(code: &str, own: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut uses = BTreeSet::new();
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let names: Vec<String> = match rest.strip_prefix('{') {
            Some(group) => {
                let mut depth = 1;
                let end = group
                    .char_indices()
                    .find(|&(_, c)| {
                        depth += match c {
                            '{' => 1,
                            '}' => -1,
                            _ => 0,
                        };
                        depth == 0
                    })
                    .map_or(group.len(), |(at, _)| at);
                let mut top = Vec::new();
                let mut level = 0;
                let mut start = 0;
                for (at, c) in group[..end].char_indices() {
                    match c {
                        '{' => level += 1,
                        '}' => level -= 1,
                        ',' if level == 0 => {
                            top.push(ident(&group[start..at]));
                            start = at + 1;
                        }
                        _ => {}
                    }
                }
                top.push(ident(&group[start..end]));
                top
            }
            None => vec![ident(rest)],
        };
        uses.extend(names.into_iter().filter(|m| !m.is_empty() && m != own));
    }
    uses
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every import that does not go strictly down the declared layers, and every module that has
/// no layer.
fn violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for (module, uses) in graph {
        let Some(here) = layer_of(module) else {
            out.push(format!("`{module}` is in no layer: add it to LAYERS"));
            continue;
        };
        for used in uses {
            match layer_of(used) {
                Some(there) if there < here => {}
                Some(_) => out.push(format!(
                    "`{module}` (layer {here}) names `{used}`, which is not below it"
                )),
                None => out.push(format!("`{module}` names `{used}`, which is in no layer")),
            }
        }
    }
    out
}

#[test]
fn every_module_of_regie_core_names_only_modules_of_lower_layers() {
    let graph = imports();
    assert!(graph.contains_key("policy") && graph.contains_key("validation"));
    assert!(
        graph["policy"].contains("relationship"),
        "the scan reads imports"
    );
    let found = violations(&graph);
    assert!(
        found.is_empty(),
        "regie-core is not layered:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_layer_check_finds_a_cycle_a_grouped_import_and_an_unplaced_module() {
    let mut graph = imports();
    // relationship naming the policy back: the circle this test exists to keep out.
    graph.get_mut("relationship").unwrap().extend(named_modules(
        "use crate::{id::UserId, policy::Action};",
        "relationship",
    ));
    graph.insert("gossip".into(), BTreeSet::new());
    let found = violations(&graph);
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("`relationship` (layer 2) names `policy`")),
        "{found:?}"
    );
    assert!(found.iter().any(|v| v.contains("`gossip` is in no layer")));
    // Comments do not count.
    assert!(named_modules("/// see [`crate::policy::decide`]\nfn f() {}", "share").is_empty());
}
