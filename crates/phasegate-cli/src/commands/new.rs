//! `new NAME --phase N`: scaffold the forward, rollback and validation trio
//! and add the version to phases.toml.

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use serde::Serialize;

use super::{Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::NewArgs;
use phasegate::{display_path, MANIFEST, MIGRATIONS, ROLLBACK, VALIDATIONS};

/// `new --format json`: the files created.
#[derive(Serialize)]
struct NewJson<'a> {
    files: &'a [String],
}

pub fn run(a: NewArgs, ctx: &mut Ctx) -> Exit {
    let mut run = Run::new(ctx, NewArgs::NAME, Some(a.phase), a.set.format, None);
    run.audit = false;
    let report = match scaffold(&a.set.dir, &a.name, a.phase) {
        Ok(files) => {
            let text = files.iter().map(|f| format!("created {f}\n")).collect::<String>();
            Ok(Report { text, ..Default::default() }.with_body(&NewJson { files: &files }))
        }
        Err(e) => Err(e),
    };
    run.finish(report)
}

/// Creates the trio in the last phase (versions stay contiguous) and returns
/// the paths created.
pub fn scaffold(dir: &Path, name: &str, phase_id: u32) -> anyhow::Result<Vec<String>> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        bail!("migration name `{name}` must be snake_case (a-z, 0-9, _)");
    }
    let loaded = phasegate::load_set(dir)?;
    let phase = loaded.phase(phase_id)?;
    let last = loaded.phases.last().expect("a set has phases");
    if last.id != phase_id {
        bail!(
            "phase {phase_id} is followed by phase {}; versions are contiguous per phase, so new migrations go in the last phase (or renumber by hand)",
            last.id
        );
    }
    let version = loaded.steps().map(|s| s.version).max().unwrap_or(0) + 1;
    let file = format!("V{version}__{name}.sql");
    let manifest_path = dir.join(MANIFEST);
    let manifest = std::fs::read_to_string(&manifest_path).with_context(|| display_path(&manifest_path))?;
    let updated = add_version(&manifest, phase_id, version).ok_or_else(|| anyhow!("{}: could not find phase {phase_id}'s `versions`", display_path(&manifest_path)))?;
    let mut created = Vec::new();
    let mut write = |rel: String, text: String| -> anyhow::Result<()> {
        let p = dir.join(&rel);
        if p.exists() {
            bail!("{} already exists", display_path(&p));
        }
        std::fs::create_dir_all(p.parent().expect("has a parent")).with_context(|| display_path(&p))?;
        std::fs::write(&p, text).with_context(|| display_path(&p))?;
        created.push(display_path(&p));
        Ok(())
    };
    write(format!("{}/{file}", MIGRATIONS), format!("-- {name}: what this changes and why it is safe under live traffic.\nSELECT 1;\n"))?;
    if phase.is_reversible() {
        write(format!("{}/{file}", ROLLBACK), format!("-- Reverses {file}: restore exactly the schema and rows before it.\nSELECT 1;\n"))?;
    }
    write(
        format!("{}/{file}", VALIDATIONS),
        format!("-- check: {name}_applied\n-- description: returns the rows that prove {name} did NOT do its job\nSELECT 1 WHERE false;\n\n-- check: {name}_reversed\n-- when: after-rollback\nSELECT 1 WHERE false;\n"),
    )?;
    std::fs::write(&manifest_path, updated).with_context(|| display_path(&manifest_path))?;
    Ok(created)
}

/// Appends `version` to the `versions = [...]` of phase `phase_id`.
fn add_version(manifest: &str, phase_id: u32, version: i32) -> Option<String> {
    let mut in_phase = false;
    let mut out = String::with_capacity(manifest.len() + 8);
    let mut done = false;
    for line in manifest.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with("[[phase]]") || t.starts_with('[') {
            in_phase = false;
        }
        if let Some(rest) = t.strip_prefix("id") {
            if rest.trim_start().strip_prefix('=').map(|v| v.trim().split('#').next().unwrap_or("").trim()) == Some(&phase_id.to_string()) {
                in_phase = true;
            }
        }
        if in_phase && !done && t.starts_with("versions") {
            if let Some(close) = line.rfind(']') {
                let inner = line[..close].rsplit('[').next().unwrap_or("").trim();
                let sep = if inner.is_empty() { "" } else { ", " };
                out.push_str(line[..close].trim_end());
                out.push_str(&format!("{sep}{version}"));
                out.push_str(&line[close..]);
                done = true;
                continue;
            }
        }
        out.push_str(line);
    }
    done.then_some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn adds_a_version_to_the_right_phase() {
        let m = "[[phase]]\nid = 1\nname = \"a\"\nversions = [1, 2]\n\n[[phase]]\nid = 2\nname = \"b\"\nversions = [3]\n";
        let out = super::add_version(m, 2, 4).unwrap();
        assert!(out.contains("versions = [3, 4]\n"), "{out}");
        assert!(out.contains("versions = [1, 2]\n"));
    }
}
