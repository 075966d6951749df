//! The shape of `src/`, kept by reading the source: layers whose
//! dependencies point one way, no import cycle between modules, no file
//! over 600 lines and no type name defined twice (ARCHITECTURE.md).
//!
//! Each rule is a function over a source tree, so the tests below also run
//! it on a small tree with a planted violation and see it fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of the crate and its layer: a module may name
/// only modules of lower layers (and itself). Two modules of one layer are
/// siblings and may not name each other either.
const LAYERS: &[(&str, u8)] = &[
    ("protocol", 0),
    ("util", 0),
    ("config", 1),
    ("store", 2),
    ("metrics", 3),
    ("vault", 4),
    ("audit", 4),
    ("issuer", 5),
    ("validate", 5),
    ("domain", 6),
    ("web", 7),
    ("cli", 7),
    ("app", 8),
];

const MAX_LINES: usize = 600;

/// One source file: its module path (`store::writer`) and its code, with
/// comment lines and the trailing `#[cfg(test)] mod tests` left out.
struct Module {
    path: Vec<String>,
    file: PathBuf,
    code: String,
    lines: usize,
}

fn read_tree(root: &Path) -> Vec<Module> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            let relative = file.strip_prefix(root).unwrap().with_extension("");
            let mut path: Vec<String> = relative
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(
                path.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                path.pop();
            }
            Module {
                path,
                lines: text.lines().count(),
                code: production_code(&text),
                file,
            }
        })
        .collect()
}

/// The code the crate is built from: no comment lines, no test module.
fn production_code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths a piece of code names after `prefix` (`crate::` or
/// `super::`), with `a::{b, c::d}` groups spread out: `a::b`, `a::c::d`.
fn named_paths(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| is_ident(c) || c == ':') {
            continue;
        }
        let mut base = Vec::new();
        loop {
            let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
            if end == 0 {
                break;
            }
            base.push(rest[..end].to_owned());
            rest = &rest[end..];
            if let Some(next) = rest.strip_prefix("::") {
                rest = next;
            } else {
                break;
            }
        }
        if rest.starts_with('{') {
            let close = rest.find('}').unwrap_or(rest.len());
            for item in rest[1..close].split(',') {
                let item = item.split(" as ").next().unwrap().trim();
                let mut path = base.clone();
                path.extend(
                    item.split("::")
                        .filter(|p| !p.is_empty() && *p != "self" && *p != "*")
                        .map(str::to_owned),
                );
                found.push(path);
            }
        } else if !base.is_empty() {
            found.push(base);
        }
    }
    found
}

/// Every `crate::` reference that names a module of the same or a higher
/// layer, as `file: names crate::x (layer n from layer m)`.
fn upward_references(modules: &[Module]) -> Vec<String> {
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut found = Vec::new();
    for module in modules {
        let Some(own) = module.path.first() else {
            continue; // lib.rs and main.rs stand above every layer
        };
        let Some(&own_layer) = layer.get(own.as_str()) else {
            found.push(format!(
                "{}: module {own} has no layer in LAYERS",
                module.file.display()
            ));
            continue;
        };
        for path in named_paths(&module.code, "crate::") {
            let Some(top) = path.first() else { continue };
            if top == own {
                continue;
            }
            match layer.get(top.as_str()) {
                Some(&named) if named < own_layer => {}
                Some(&named) => found.push(format!(
                    "{}: {own} (layer {own_layer}) names crate::{} (layer {named})",
                    module.file.display(),
                    path.join("::")
                )),
                None => {}
            }
        }
    }
    found
}

/// The longest module of `known` that `path` starts with.
fn resolve(path: &[String], known: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|candidate| known.contains(candidate))
}

/// The modules each module names, through `crate::` and `super::`; a
/// module naming one of its own ancestors (the folder that declares it)
/// is not counted.
fn module_graph(modules: &[Module]) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let known: BTreeSet<Vec<String>> = modules.iter().map(|m| m.path.clone()).collect();
    let mut graph = BTreeMap::new();
    for module in modules {
        let parent = module.path[..module.path.len().saturating_sub(1)].to_vec();
        let named = named_paths(&module.code, "crate::").into_iter().chain(
            named_paths(&module.code, "super::")
                .into_iter()
                .map(|p| parent.iter().cloned().chain(p).collect()),
        );
        let targets: BTreeSet<Vec<String>> = named
            .filter_map(|p| resolve(&p, &known))
            .filter(|t| t != &module.path && !module.path.starts_with(t))
            .collect();
        graph.insert(module.path.clone(), targets);
    }
    graph
}

/// One import cycle between modules, if there is any.
fn a_cycle(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<String>> {
    fn visit(
        node: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        done: &mut BTreeSet<Vec<String>>,
        trail: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(at) = trail.iter().position(|n| n == node) {
            return Some(trail[at..].iter().map(|n| n.join("::")).collect());
        }
        if !done.insert(node.clone()) {
            return None;
        }
        trail.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, trail) {
                return Some(cycle);
            }
        }
        trail.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

/// Type names (struct, enum, trait, type alias) defined in more than one
/// place, with where.
fn twice_defined_types(modules: &[Module]) -> BTreeMap<String, Vec<String>> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for module in modules {
        // Items at the top of a file; indented ones belong to an impl
        // (`type Rejection = …`) or a function.
        for line in module.code.lines() {
            if line.starts_with(char::is_whitespace) {
                continue;
            }
            let mut words = line.split_whitespace();
            let mut kind = words.next();
            if kind.is_some_and(|word| word.starts_with("pub")) {
                kind = words.next();
            }
            let (Some(kind), Some(name)) = (kind, words.next()) else {
                continue;
            };
            if matches!(kind, "struct" | "enum" | "trait" | "type") {
                let name: String = name.chars().take_while(|c| is_ident(*c)).collect();
                seen.entry(name)
                    .or_default()
                    .push(module.file.display().to_string());
            }
        }
    }
    seen.retain(|_, places| places.len() > 1);
    seen
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn lower_layers_never_name_higher_ones() {
    let found = upward_references(&read_tree(&src()));
    assert!(found.is_empty(), "upward references:\n{}", found.join("\n"));
}

#[test]
fn no_import_cycle_between_modules() {
    let graph = module_graph(&read_tree(&src()));
    assert!(graph.len() > 50, "only {} modules read", graph.len());
    if let Some(cycle) = a_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn no_source_file_is_over_600_lines() {
    let long: Vec<String> = read_tree(&src())
        .iter()
        .filter(|m| m.lines > MAX_LINES)
        .map(|m| format!("{}: {} lines", m.file.display(), m.lines))
        .collect();
    assert!(long.is_empty(), "{}", long.join("\n"));
}

#[test]
fn no_type_name_is_defined_twice() {
    let twice = twice_defined_types(&read_tree(&src()));
    assert!(twice.is_empty(), "{twice:#?}");
}

/// The rules on a tree made for the purpose: each planted violation is
/// found, so a rule that silently passes everything cannot go unnoticed.
#[test]
fn each_rule_finds_a_planted_violation() {
    let tree = tempfile::tempdir().unwrap();
    let write = |file: &str, code: &str| {
        let path = tree.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, code).unwrap();
    };
    write("lib.rs", "pub mod store;\npub mod web;\n");
    write(
        "store/mod.rs",
        "pub mod rows;\n// crate::web::Ignored in a comment\n",
    );
    write(
        "store/rows.rs",
        "use crate::web::{handler, Page};\npub struct Row;\n",
    );
    write(
        "web/mod.rs",
        "use crate::store::rows::Row;\npub struct Row;\npub fn handler() {}\n",
    );
    let modules = read_tree(tree.path());

    let upward = upward_references(&modules);
    assert_eq!(upward.len(), 2, "{upward:?}");
    assert!(upward[0].contains("store (layer 2) names crate::web::handler (layer 7)"));

    let cycle = a_cycle(&module_graph(&modules)).expect("the planted cycle");
    assert!(cycle.contains(&"store::rows".to_owned()) && cycle.contains(&"web".to_owned()));

    let twice = twice_defined_types(&modules);
    assert_eq!(twice.keys().collect::<Vec<_>>(), ["Row"]);

    write("store/long.rs", &"fn f() {}\n".repeat(MAX_LINES + 1));
    assert!(read_tree(tree.path()).iter().any(|m| m.lines > MAX_LINES));
}
