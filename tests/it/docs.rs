//! The repository documents itself, and the documents stay true: the README
//! shows examples/adopt's files exactly as they are, docs/commands.md is
//! the help of every command as clap renders it (regenerated with
//! `PHASEGATE_BLESS=1 cargo test --test it docs::`), every relative link
//! in the README, ARCHITECTURE.md and docs/ reaches a file (and heading)
//! that exists, and no file cites a numbered section of the product spec,
//! which is not in the repository: comments point into docs/ instead. None
//! of these needs a database.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::harness::repo;

#[test]
fn the_readme_shows_the_adopt_files_as_they_are() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for file in ["xtask/src/main.rs", "tests/migrations.rs"] {
        let text = std::fs::read_to_string(repo().join("examples/adopt").join(file)).unwrap();
        assert!(readme.contains(text.trim_end()), "README.md does not show examples/adopt/{file} as it is");
    }
}

/// The markers around the part of docs/commands.md this file writes.
const BEGIN: &str = "<!-- BEGIN GENERATED: the help of every command, written by tests/it/docs.rs; do not edit by hand -->";
const END: &str = "<!-- END GENERATED -->";

/// The width help is rendered at (clap would otherwise ask the terminal):
/// wide enough for the examples of every command's help on one line each.
const WIDTH: usize = 110;

/// Every command's help as a user sees it with `--help`, under a fixed
/// width, with environment values hidden (a variable set on the machine
/// that renders it must not change the document).
fn help_tree() -> clap::Command {
    fn fix(cmd: clap::Command) -> clap::Command {
        let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
        let mut cmd = cmd.term_width(WIDTH).mut_args(|a| a.hide_env_values(true));
        for name in names {
            cmd = cmd.mut_subcommand(name, fix);
        }
        cmd
    }
    let mut cmd = fix(phasegate_cli::command("phasegate"));
    cmd.build();
    cmd
}

/// The generated section: an index of the commands, then each one's long help.
fn generated() -> String {
    let mut root = help_tree();
    let names: Vec<(String, String)> = root
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
        .map(|s| (s.get_name().to_string(), s.get_about().map(|a| a.to_string()).unwrap_or_default()))
        .collect();
    let mut out = String::from("| command | what it does |\n|---|---|\n");
    for (name, about) in &names {
        out.push_str(&format!("| [`{name}`](#phasegate-{name}) | {} |\n", about.replace('|', "\\|")));
    }
    let block = |title: &str, help: String| {
        let lines: Vec<&str> = help.trim_end().lines().map(str::trim_end).collect();
        format!("\n## `{title}`\n\n```text\n{}\n```\n", lines.join("\n"))
    };
    out.push_str(&block("phasegate", root.render_long_help().to_string()));
    for (name, _) in &names {
        let sub = root.find_subcommand_mut(name).expect("listed above");
        out.push_str(&block(&format!("phasegate {name}"), sub.render_long_help().to_string()));
    }
    out
}

#[test]
fn docs_commands_md_is_the_help_of_every_command() {
    let path = repo().join("docs/commands.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let (head, rest) = text.split_once(BEGIN).unwrap_or_else(|| panic!("docs/commands.md has no `{BEGIN}` line"));
    let (_, tail) = rest.split_once(END).unwrap_or_else(|| panic!("docs/commands.md has no `{END}` line"));
    let fresh = format!("{head}{BEGIN}\n{}{END}{tail}", generated());
    if fresh == text {
        return;
    }
    if std::env::var_os("PHASEGATE_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let diff = similar::TextDiff::from_lines(&text, &fresh).unified_diff().context_radius(2).header("docs/commands.md", "the CLI's help").to_string();
    panic!("docs/commands.md differs from the help the CLI prints; regenerate it with `PHASEGATE_BLESS=1 cargo test --test it docs::` and commit it:\n{diff}");
}

/// The Markdown files whose links are checked.
fn documents() -> Vec<PathBuf> {
    let mut out = vec![repo().join("README.md"), repo().join("ARCHITECTURE.md")];
    let mut docs: Vec<PathBuf> =
        std::fs::read_dir(repo().join("docs")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "md")).collect();
    docs.sort();
    out.extend(docs);
    out
}

/// GitHub's anchors of a Markdown file's headings: lowercase, punctuation
/// other than `-` and `_` dropped, spaces as `-`, repeats numbered.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let Some(title) = line.strip_prefix('#').filter(|_| !fenced).map(|t| t.trim_start_matches('#')) else { continue };
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut anchor = slug.clone();
        let mut n = 0;
        while !seen.insert(anchor.clone()) {
            n += 1;
            anchor = format!("{slug}-{n}");
        }
    }
    seen
}

/// The relative link targets (`[text](target)`) of a Markdown text, outside code.
fn links(markdown: &str) -> Vec<(usize, String)> {
    let re = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in markdown.lines().enumerate() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for c in re.captures_iter(line) {
            let target = c[1].to_string();
            if !target.contains("://") && !target.starts_with("mailto:") {
                out.push((i + 1, target));
            }
        }
    }
    out
}

#[test]
fn every_link_in_the_docs_reaches_a_file_and_heading_that_exist() {
    let mut broken = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let shown = doc.strip_prefix(repo()).unwrap().display().to_string();
        for (line, target) in links(&text) {
            let (file, anchor) = target.split_once('#').map_or((target.as_str(), None), |(f, a)| (f, Some(a)));
            let path: PathBuf = if file.is_empty() { doc.clone() } else { doc.parent().unwrap().join(file) };
            if !path.exists() {
                broken.push(format!("{shown}:{line}: {target}: no such file"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if path.extension().is_some_and(|e| e == "md") && !anchors(&std::fs::read_to_string(&path).unwrap()).contains(anchor) {
                broken.push(format!("{shown}:{line}: {target}: no heading with that anchor in {}", display(&path)));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

fn display(p: &Path) -> String {
    p.strip_prefix(repo()).unwrap_or(p).display().to_string()
}

#[test]
fn the_readme_links_the_reference_and_the_index_every_document() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(links(&readme).iter().any(|(_, t)| t == "docs/README.md"), "README.md does not link the reference (docs/README.md)");
    let index = std::fs::read_to_string(repo().join("docs/README.md")).unwrap();
    let indexed: BTreeSet<String> = links(&index).into_iter().map(|(_, t)| t.split('#').next().unwrap_or_default().to_string()).collect();
    for doc in documents().iter().filter(|d| d.parent() == Some(repo().join("docs").as_path())) {
        let name = doc.file_name().unwrap().to_string_lossy().to_string();
        assert!(name == "README.md" || indexed.contains(&name), "docs/README.md (the index of the reference) does not link {name}");
    }
}

/// A citation of a numbered section of the spec document (`SPEC` then an
/// optional `.md` and `section`, then a number), across a line break and
/// the comment marker (`//!`, `///`, `#`) that starts the next line too.
const SPEC_CITATION: &str = r"\bSPEC(\.md)?([\s/!#*]+section)?[\s/!#*]+\d";

/// The repository's own files a reader may open: the sources, tests, sets
/// and documents (not `target/`, not hidden folders).
fn repository_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap().to_string_lossy();
            if p.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    walk(&p, out);
                }
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for dir in ["crates", "tests", "xtask", "examples", "docs", "migrations", "rollback", "validations", "seed", "probes", "demo", "ci"] {
        if repo().join(dir).is_dir() {
            walk(&repo().join(dir), &mut out);
        }
    }
    out.extend(["README.md", "ARCHITECTURE.md", "phases.toml"].map(|f| repo().join(f)));
    out
}

#[test]
fn no_file_cites_a_section_of_the_spec_which_is_not_in_the_repository() {
    let citation = regex::Regex::new(SPEC_CITATION).unwrap();
    let mut citations = Vec::new();
    for file in repository_files() {
        // Binary and deliberately broken (non-UTF-8) fixtures hold no prose.
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        for m in citation.find_iter(&text) {
            let line = text[..m.start()].matches('\n').count() + 1;
            citations.push(format!("{}:{line}: {}", display(&file), m.as_str().replace('\n', " ")));
        }
    }
    assert!(
        citations.is_empty(),
        "cite the reference in docs/ (e.g. docs/migration-set.md), not the spec, which is not in the repository:\n{}",
        citations.join("\n")
    );
}
