//! `new NAME --phase N`: scaffold the forward, rollback and validation trio
//! and add the version to phases.toml.

use std::path::Path;

use super::{failed, Ctx, Report, Run};
use crate::cli::NewArgs;
use phasegate::error::{display_path, Error};
use phasegate::set;

pub fn run(a: NewArgs, ctx: &mut Ctx) -> i32 {
    let mut run = Run::new(ctx, "new", Some(a.phase), a.set.format, None);
    run.audit = false;
    let report = match scaffold(&a.set.dir, &a.name, a.phase) {
        Ok(files) => {
            let text = files.iter().map(|f| format!("created {f}\n")).collect::<String>();
            let mut json = serde_json::Map::new();
            json.insert("files".into(), files.into());
            Report { text, json, ..Default::default() }
        }
        Err(e) => failed(e),
    };
    run.finish(report)
}

/// Creates the trio in the last phase (versions stay contiguous) and returns
/// the paths created.
pub fn scaffold(dir: &Path, name: &str, phase_id: u32) -> phasegate::Result<Vec<String>> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(Error::Refused(format!("migration name `{name}` must be snake_case (a-z, 0-9, _)")));
    }
    let loaded = set::load(dir)?;
    let phase = loaded.phase(phase_id).ok_or_else(|| Error::Refused(format!("no phase {phase_id} in {}", display_path(&dir.join(set::MANIFEST)))))?;
    let last = loaded.phases.last().expect("a set has phases");
    if last.id != phase_id {
        return Err(Error::Refused(format!(
            "phase {phase_id} is followed by phase {}; versions are contiguous per phase, so new migrations go in the last phase (or renumber by hand)",
            last.id
        )));
    }
    let version = loaded.steps().map(|s| s.version).max().unwrap_or(0) + 1;
    let file = format!("V{version}__{name}.sql");
    let manifest_path = dir.join(set::MANIFEST);
    let manifest = std::fs::read_to_string(&manifest_path).map_err(|e| Error::Io { path: manifest_path.clone(), source: e })?;
    let updated = add_version(&manifest, phase_id, version).ok_or_else(|| Error::Refused("could not find the phase's `versions` in phases.toml".into()))?;
    let mut created = Vec::new();
    let mut write = |rel: String, text: String| -> phasegate::Result<()> {
        let p = dir.join(&rel);
        if p.exists() {
            return Err(Error::Refused(format!("{} already exists", display_path(&p))));
        }
        std::fs::create_dir_all(p.parent().expect("has a parent")).map_err(|e| Error::Io { path: p.clone(), source: e })?;
        std::fs::write(&p, text).map_err(|e| Error::Io { path: p.clone(), source: e })?;
        created.push(display_path(&p));
        Ok(())
    };
    write(format!("{}/{file}", set::MIGRATIONS), format!("-- {name}: what this changes and why it is safe under live traffic.\nSELECT 1;\n"))?;
    if phase.reversible {
        write(format!("{}/{file}", set::ROLLBACK), format!("-- Reverses {file}: restore exactly the schema and rows before it.\nSELECT 1;\n"))?;
    }
    write(
        format!("{}/{file}", set::VALIDATIONS),
        format!("-- check: {name}_applied\n-- description: returns the rows that prove {name} did NOT do its job\nSELECT 1 WHERE false;\n\n-- check: {name}_reversed\n-- when: after-rollback\nSELECT 1 WHERE false;\n"),
    )?;
    std::fs::write(&manifest_path, updated).map_err(|e| Error::Io { path: manifest_path, source: e })?;
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
