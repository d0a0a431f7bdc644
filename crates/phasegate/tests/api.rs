//! The engine's API stays browsable (ARCHITECTURE.md, "The engine's public
//! API"): every public module of `lib.rs` is listed there, and no name at
//! the root is a module's name glued to an item's (`FleetOptions` where
//! `fleet::Options` is meant).

use std::path::Path;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `pub mod x` and `pub mod x {` in lib.rs.
fn public_modules(lib: &str) -> Vec<String> {
    lib.lines().filter_map(|l| l.trim().strip_prefix("pub mod ")).map(|rest| rest.trim_end_matches([';', '{', ' ']).to_string()).collect()
}

/// The names `lib.rs` renames an item to (`x as y`: `y`).
fn aliases(lib: &str) -> Vec<String> {
    lib.split(" as ").skip(1).map(|rest| rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()).collect()
}

/// Where a name is a module's name glued to another word: `FleetOptions`,
/// `lint_summary`, `backups_of_run` (a module's stem: `locks` -> `lock`).
fn prefixed_by(name: &str, module: &str) -> bool {
    let lower = name.to_lowercase();
    let stem = module.trim_end_matches('s');
    let stem = if stem.len() > 4 { stem.trim_end_matches('e') } else { stem };
    lower.starts_with(stem) && lower.len() > module.len()
}

fn problems(lib: &str, architecture: &str) -> Vec<String> {
    let modules = public_modules(lib);
    let mut out = Vec::new();
    for m in &modules {
        if !architecture.lines().any(|l| l.starts_with(&format!("- `{m}`")) || l.starts_with(&format!("- root, starting a set: `{m}`"))) {
            out.push(format!("the public module `{m}` is not listed in ARCHITECTURE.md's \"The engine's public API\""));
        }
    }
    for a in aliases(lib) {
        if let Some(m) = modules.iter().find(|m| prefixed_by(&a, m)) {
            out.push(format!("`{a}` spells the module `{m}` into a name: make it `{m}::...`"));
        }
    }
    out
}

#[test]
fn every_public_module_is_listed_and_no_name_stands_in_for_a_module() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = read(&crate_dir.join("src/lib.rs"));
    let architecture = read(&crate_dir.join("../../ARCHITECTURE.md"));
    let found = problems(&lib, &architecture);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn a_prefixed_alias_and_an_unlisted_module_are_found() {
    let lib = "pub mod fleet;\npub mod walks;\npub use fleet::{Options as FleetOptions};\npub use walks::{unfinished as unfinished_walks};\n";
    let found = problems(lib, "- `walks`: `unfinished`\n");
    assert!(found.iter().any(|p| p.contains("`fleet` is not listed")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("`FleetOptions`")), "{found:?}");
    assert!(!found.iter().any(|p| p.contains("unfinished_walks")), "a module's name at the end is no prefix: {found:?}");
}
