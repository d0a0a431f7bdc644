//! The engine's module graph has no circle and no arrow from a lower layer
//! to a higher one (ARCHITECTURE.md, "Layers"). Every `crate::` and
//! `super::` path in `src/` is read, so a new import that climbs a layer,
//! closes a circle between two top-level modules, or closes one between two
//! files of one folder fails here, naming the files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import from its own layer and
/// the ones below, never from one above; within a layer the imports must
/// not form a circle. `lib.rs` (the API) sits above them all.
const LAYERS: &[(&str, &[&str])] = &[
    ("text", &["sqltext"]),
    ("vocabulary", &["error", "check", "ui"]),
    ("connections", &["tls", "db", "pg", "locks", "snapshot"]),
    ("the set and its records", &["set", "walks", "ledger", "backup", "foreign", "lint", "init"]),
    ("operations", &["apply", "change", "fleet", "rehearse", "health", "schema_drift", "risk", "import"]),
    ("test support", &["testing", "hostile", "proptests"]),
];

/// A module path inside the crate, e.g. `["apply", "exec"]`.
type ModPath = Vec<String>;

struct Import {
    file: PathBuf,
    from: ModPath,
    to: ModPath,
}

#[test]
fn no_circle_and_no_upward_import() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = check(&src);
    assert!(problems.is_empty(), "the module graph breaks the layering (ARCHITECTURE.md, \"Layers\"):\n{}", problems.join("\n"));
}

/// A violation is found: an upward import, and a circle (a copy of the
/// sources with one import added each time).
#[test]
fn an_upward_import_and_a_circle_are_found() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (file, line, expect) in [
        ("error.rs", "use crate::apply::Options;\n", "upward"),
        ("apply/exec.rs", "use super::forward::apply_step;\n", "circle"),
        ("set.rs", "use crate::foreign::Origin;\n", "circle"),
    ] {
        let copy = std::env::temp_dir().join(format!("phasegate-layering-{}-{}", std::process::id(), file.replace('/', "_")));
        let _ = std::fs::remove_dir_all(&copy);
        copy_dir(&src, &copy);
        let target = copy.join(file);
        let text = std::fs::read_to_string(&target).unwrap();
        std::fs::write(&target, format!("{line}{text}")).unwrap();
        let problems = check(&copy);
        let _ = std::fs::remove_dir_all(&copy);
        assert!(problems.iter().any(|p| p.contains(expect)), "{file} + {line:?}: expected a {expect} problem, got {problems:?}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Every problem of the tree at `src`, one line each.
fn check(src: &Path) -> Vec<String> {
    let files = rust_files(src);
    let modules: BTreeSet<ModPath> = files.keys().cloned().collect();
    let reexports = crate_root_reexports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut imports = Vec::new();
    for (module, file) in &files {
        if module.is_empty() {
            continue; // lib.rs: the API, above every layer
        }
        let text = strip(&std::fs::read_to_string(file).unwrap());
        for path in paths(&text) {
            if let Some(to) = resolve(module, &path, &modules, &reexports) {
                imports.push(Import { file: file.strip_prefix(src).unwrap().to_path_buf(), from: module.clone(), to });
            }
        }
    }
    let mut problems = Vec::new();
    let layer_of = |m: &str| LAYERS.iter().position(|(_, ms)| ms.contains(&m));
    for top in modules.iter().filter(|m| m.len() == 1) {
        if layer_of(&top[0]).is_none() {
            problems.push(format!("module `{}` is in no layer: add it to LAYERS in tests/layering.rs and to ARCHITECTURE.md", top[0]));
        }
    }
    // Top-level modules: no upward arrow, no circle.
    let mut top_edges: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for i in &imports {
        let (a, b) = (&i.from[0], &i.to[0]);
        if a == b {
            continue;
        }
        if let (Some(la), Some(lb)) = (layer_of(a), layer_of(b)) {
            if lb > la {
                problems.push(format!(
                    "{}: upward import: `{a}` (layer \"{}\") uses `{}` (layer \"{}\")",
                    i.file.display(),
                    LAYERS[la].0,
                    i.to.join("::"),
                    LAYERS[lb].0
                ));
            }
        }
        top_edges.entry(a.clone()).or_default().entry(b.clone()).or_insert_with(|| i.file.clone());
    }
    problems.extend(circles(&top_edges).into_iter().map(|c| format!("circle between modules: {c}")));
    // Files of one folder: no circle among siblings (the folder's own
    // mod.rs, which declares and re-exports them, is not a sibling).
    let mut sibling_edges: BTreeMap<ModPath, BTreeMap<String, BTreeMap<String, PathBuf>>> = BTreeMap::new();
    for i in &imports {
        let depth = i.from.len();
        if depth < 2 || i.to.len() < depth || i.to[..depth - 1] != i.from[..depth - 1] || i.to[depth - 1] == i.from[depth - 1] {
            continue;
        }
        let parent = i.from[..depth - 1].to_vec();
        sibling_edges.entry(parent).or_default().entry(i.from[depth - 1].clone()).or_default().entry(i.to[depth - 1].clone()).or_insert_with(|| i.file.clone());
    }
    for (parent, edges) in &sibling_edges {
        problems.extend(circles(edges).into_iter().map(|c| format!("circle between the files of {}/: {c}", parent.join("/"))));
    }
    problems
}

/// Every `.rs` file under `src` by its module path (`lib.rs` is `[]`,
/// `a.rs` and `a/mod.rs` are `["a"]`, `a/b.rs` is `["a", "b"]`).
fn rust_files(src: &Path) -> BTreeMap<ModPath, PathBuf> {
    fn walk(dir: &Path, prefix: &ModPath, out: &mut BTreeMap<ModPath, PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let mut path = prefix.clone();
            if e.file_type().unwrap().is_dir() {
                path.push(name);
                walk(&e.path(), &path, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                if !(stem == "mod" || (prefix.is_empty() && stem == "lib")) {
                    path.push(stem.to_string());
                }
                out.insert(path, e.path());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &Vec::new(), &mut out);
    out
}

/// The names `lib.rs` re-exports, by the top-level module they come from
/// (`crate::Result` is `error`'s).
fn crate_root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let text = strip(lib);
    let mut rest = text.as_str();
    while let Some(i) = rest.find("pub use ") {
        rest = &rest[i + 8..];
        let end = rest.find(';').unwrap_or(rest.len());
        let item = &rest[..end];
        if let Some((module, names)) = item.split_once("::") {
            let module = module.trim().to_string();
            for name in names.split([',', '{', '}']) {
                let name = name.trim();
                let exported = name.rsplit(" as ").next().unwrap_or(name).rsplit("::").next().unwrap_or(name).trim();
                if !exported.is_empty() && exported != "self" && exported != "*" {
                    out.insert(exported.to_string(), module.clone());
                }
            }
        }
        rest = &rest[end..];
    }
    out
}

/// The text without comments, string and char literals (so a path in a
/// doc comment or a message is not an import).
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            '/' if b.get(i + 1) == Some(&'/') => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            '/' if b.get(i + 1) == Some(&'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            'r' if matches!(b.get(i + 1), Some('"') | Some('#')) && (i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_')) => {
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&'"') {
                    out.push(b[i]);
                    i += 1;
                    continue;
                }
                j += 1;
                while j < b.len() && !(b[j] == '"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&'#'))) {
                    j += 1;
                }
                i = j + 1 + hashes;
                out.push_str("\"\"");
            }
            '"' => {
                i += 1;
                while i < b.len() && b[i] != '"' {
                    if b[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push_str("\"\"");
            }
            '\'' if b.get(i + 2) == Some(&'\'') || (b.get(i + 1) == Some(&'\\')) => {
                // a char literal ('a', '\n', '\''); a lifetime has no closing quote
                i += 1;
                while i < b.len() && b[i] != '\'' {
                    if b[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Every path that starts with `crate::` or `super::`, group imports
/// expanded (`crate::{a, b::{c, d}}` gives `crate::a`, `crate::b::c`,
/// `crate::b::d`).
fn paths(text: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let at_word_start = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == ':');
        if at_word_start && (starts(&chars, i, "crate::") || starts(&chars, i, "super::")) {
            let mut j = i;
            tree(&chars, &mut j, Vec::new(), &mut out);
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

fn starts(chars: &[char], i: usize, s: &str) -> bool {
    s.chars().enumerate().all(|(k, c)| chars.get(i + k) == Some(&c))
}

fn skip_ws(chars: &[char], i: &mut usize) {
    while *i < chars.len() && chars[*i].is_whitespace() {
        *i += 1;
    }
}

/// One use-tree at `i`: segments joined by `::`, ending in a name, `*`,
/// `self` or a `{...}` group.
fn tree(chars: &[char], i: &mut usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    loop {
        skip_ws(chars, i);
        if chars.get(*i) == Some(&'{') {
            *i += 1;
            loop {
                skip_ws(chars, i);
                match chars.get(*i) {
                    Some('}') => {
                        *i += 1;
                        return;
                    }
                    Some(',') => *i += 1,
                    None => return,
                    _ => {
                        let before = *i;
                        tree(chars, i, prefix.clone(), out);
                        if *i == before {
                            *i += 1;
                        }
                    }
                }
            }
        }
        let start = *i;
        while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_' || chars[*i] == '*') {
            *i += 1;
        }
        if *i == start {
            out.push(prefix);
            return;
        }
        prefix.push(chars[start..*i].iter().collect());
        if starts(chars, *i, "::") {
            *i += 2;
        } else {
            // `name as alias`: the alias is not part of the path
            out.push(prefix);
            return;
        }
    }
}

/// The module a path used in `module` points into: the longest prefix of
/// its absolute path that is a module (an item's module), or the module a
/// crate-root re-export comes from. `None` for a path into `module` itself
/// or its own children.
fn resolve(module: &ModPath, path: &[String], modules: &BTreeSet<ModPath>, reexports: &BTreeMap<String, String>) -> Option<ModPath> {
    let mut abs: ModPath = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("super") => module.clone(),
        _ => return None,
    };
    let mut rest = &path[1..];
    if path[0] == "super" {
        abs.pop();
        while rest.first().map(String::as_str) == Some("super") {
            abs.pop();
            rest = &rest[1..];
        }
    }
    for seg in rest {
        if seg == "self" || seg == "*" {
            break;
        }
        let mut next = abs.clone();
        next.push(seg.clone());
        if modules.contains(&next) {
            abs = next;
        } else {
            if abs.is_empty() {
                abs = vec![reexports.get(seg)?.clone()];
            }
            break;
        }
    }
    if abs.is_empty() || abs.starts_with(module) {
        return None;
    }
    Some(abs)
}

/// Every circle of a directed graph, as `a -> b (file) -> a`.
fn circles(edges: &BTreeMap<String, BTreeMap<String, PathBuf>>) -> Vec<String> {
    let nodes: BTreeSet<&String> = edges.keys().chain(edges.values().flat_map(|t| t.keys())).collect();
    let mut found = Vec::new();
    let mut seen_cycles = BTreeSet::new();
    for start in &nodes {
        // a shortest path back to `start`, breadth first
        let mut prev: BTreeMap<&String, &String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([*start]);
        let mut closed = None;
        while let Some(n) = queue.pop_front() {
            for next in edges.get(n).into_iter().flat_map(|t| t.keys()) {
                if next == *start {
                    closed = Some(n);
                    break;
                }
                if !prev.contains_key(next) {
                    prev.insert(next, n);
                    queue.push_back(next);
                }
            }
            if closed.is_some() {
                break;
            }
        }
        let Some(mut last) = closed else { continue };
        let mut cycle = vec![*start];
        let mut back = vec![last];
        while last != *start {
            last = prev[last];
            if last != *start {
                back.push(last);
            }
        }
        cycle.extend(back.into_iter().rev());
        let key: BTreeSet<&String> = cycle.iter().copied().collect();
        if !seen_cycles.insert(key) {
            continue;
        }
        let mut text = String::new();
        for (k, n) in cycle.iter().enumerate() {
            let to = cycle.get(k + 1).unwrap_or(&cycle[0]);
            text.push_str(&format!("{n} -> ({}) ", edges[*n][*to].display()));
        }
        text.push_str(cycle[0]);
        found.push(text);
    }
    found
}
