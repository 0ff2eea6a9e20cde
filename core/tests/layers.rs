//! regie-core reads as layers: no module of the crate imports, directly or through others, a
//! module that imports it back. Read from the sources (`crate::<module>` mentions outside
//! comments), so a new cycle fails here before it tangles the policy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name → the crate modules its code (not its comments) names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("core/src") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" {
            continue;
        }
        let code = std::fs::read_to_string(&path).expect("readable");
        let mut uses = BTreeSet::new();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let module: String = line[i + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !module.is_empty() && module != name {
                    uses.insert(module);
                }
            }
        }
        graph.insert(name, uses);
    }
    graph
}

/// A cycle through `m`, if the search from it finds one.
fn cycle_from(
    m: &str,
    graph: &BTreeMap<String, BTreeSet<String>>,
    stack: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = stack.iter().position(|s| s == m) {
        let mut cycle = stack[at..].to_vec();
        cycle.push(m.to_owned());
        return Some(cycle);
    }
    if done.contains(m) {
        return None;
    }
    stack.push(m.to_owned());
    for next in graph.get(m).into_iter().flatten() {
        if let Some(c) = cycle_from(next, graph, stack, done) {
            return Some(c);
        }
    }
    stack.pop();
    done.insert(m.to_owned());
    None
}

#[test]
fn no_module_of_regie_core_depends_on_itself_through_others() {
    let graph = imports();
    assert!(graph.contains_key("policy") && graph.contains_key("validation"));
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(cycle) = cycle_from(m, &graph, &mut Vec::new(), &mut done) {
            panic!("regie-core has an import cycle: {}", cycle.join(" → "));
        }
    }
}
