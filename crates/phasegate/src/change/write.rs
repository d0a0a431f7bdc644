//! Putting a change into the set: its files (migrations, rollbacks,
//! validations, probes) and its `[[phase]]` and `[[probe]]` tables
//! appended to `phases.toml` with `toml_edit`, which keeps the file's
//! comments and layout. All or nothing: an existing file refuses the
//! change before anything is written, and a set that would not load
//! afterwards is put back as it was.

use std::path::{Path, PathBuf};

use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

use super::error::ChangeError;
use super::plan::Change;
use crate::error::{display_path, Error, Location, Result};
use crate::set::{MANIFEST, MIGRATIONS, ROLLBACK, VALIDATIONS};

/// What `write` put into the set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    /// Every file created, in order (as the set's folder was named).
    pub files: Vec<String>,
    /// `phases.toml`, which gained the change's phases and probes.
    pub manifest: String,
}

/// The files of a change, relative to the set's folder, with their text.
pub fn files(change: &Change) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in &change.phases {
        for m in &p.migrations {
            let f = m.file_name();
            out.push((format!("{MIGRATIONS}/{f}"), m.forward.clone()));
            if let Some(rb) = &m.rollback {
                out.push((format!("{ROLLBACK}/{f}"), rb.clone()));
            }
            out.push((format!("{VALIDATIONS}/{f}"), m.validation.clone()));
        }
    }
    for pr in &change.probes {
        out.push((pr.file.clone(), pr.text.clone()));
    }
    out
}

/// The `[[phase]]` and `[[probe]]` tables of the change, appended to `doc`.
fn append(doc: &mut DocumentMut, change: &Change, command: &str) {
    let phases = doc.entry("phase").or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
    let Some(phases) = phases.as_array_of_tables_mut() else { return };
    for (i, p) in change.phases.iter().enumerate() {
        let mut t = Table::new();
        t["id"] = value(i64::from(p.id));
        t["name"] = value(&p.name);
        t["summary"] = value(&p.summary);
        t["versions"] = value(p.migrations.iter().map(|m| i64::from(m.version)).collect::<Array>());
        if let Some(reason) = &p.irreversible {
            t["reversible"] = value(false);
            t["reason"] = value(reason);
        }
        let prefix = if i == 0 { format!("\n# {}: written by `{command}` (docs/changes.md)\n", change.title) } else { "\n".to_string() };
        t.decor_mut().set_prefix(prefix);
        phases.push(t);
    }
    if let Some(existing) = doc.get_mut("probe").and_then(Item::as_array_of_tables_mut) {
        for t in existing.iter_mut() {
            let file = t.get("file").and_then(Item::as_str).map(str::to_string);
            let Some(&(_, end)) = change.closes.iter().find(|(f, _)| Some(f) == file.as_ref()) else { continue };
            if !t.contains_key("until") {
                let mut v = value(i64::from(end));
                if let Some(v) = v.as_value_mut() {
                    v.decor_mut().set_suffix(format!("  # set by `{command}`: its old application version is gone after phase {end}"));
                }
                t["until"] = v;
            }
        }
    }
    if change.probes.is_empty() {
        return;
    }
    let probes = doc.entry("probe").or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
    let Some(probes) = probes.as_array_of_tables_mut() else { return };
    for pr in &change.probes {
        let mut t = Table::new();
        t["file"] = value(&pr.file);
        t["from"] = value(i64::from(pr.from));
        if let Some(u) = pr.until {
            t["until"] = value(i64::from(u));
        }
        t.decor_mut().set_prefix("\n");
        probes.push(t);
    }
}

/// The lines `write` appends to `phases.toml`, for `--dry-run`.
pub fn render(change: &Change, command: &str) -> String {
    let mut doc = DocumentMut::new();
    append(&mut doc, change, command);
    doc.to_string().trim_start_matches('\n').to_string()
}

/// Writes the change into the set in `dir`; `command` is the command line
/// that asked for it, recorded in a comment of `phases.toml`.
pub fn write(dir: &Path, change: &Change, command: &str) -> Result<Written> {
    let manifest_path = dir.join(MANIFEST);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| Error::Io { path, source: e }
    };
    let before = std::fs::read_to_string(&manifest_path).map_err(io(&manifest_path))?;
    let mut doc: DocumentMut = before
        .parse()
        .map_err(|e: toml_edit::TomlError| Error::Load { at: Location::line(&manifest_path, e.span().map_or(1, |s| crate::sqltext::LineIndex::new(&before).line(s.start))), kind: crate::error::LoadError::Toml { message: e.message().to_string() } })?;
    let files = files(change);
    for (rel, _) in &files {
        if dir.join(rel).exists() {
            return Err(ChangeError::FileExists(display_path(&dir.join(rel))).into());
        }
    }
    append(&mut doc, change, command);
    let mut created: Vec<PathBuf> = Vec::new();
    let undo = |created: &[PathBuf]| {
        for p in created.iter().rev() {
            let _ = std::fs::remove_file(p);
        }
        let _ = std::fs::write(&manifest_path, &before);
    };
    let result = (|| -> Result<()> {
        for (rel, text) in &files {
            let p = dir.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&p, text).map_err(io(&p))?;
            created.push(p);
        }
        std::fs::write(&manifest_path, doc.to_string()).map_err(io(&manifest_path))?;
        crate::set::load(dir).map(|_| ())
    })();
    if let Err(e) = result {
        undo(&created);
        return Err(e);
    }
    Ok(Written { files: created.iter().map(|p| display_path(p)).collect(), manifest: display_path(&manifest_path) })
}

#[cfg(test)]
mod tests {
    use super::super::plan::{Builder, Version};
    use super::*;

    fn change() -> Change {
        let mut b = Builder::new("add t.b".into(), "add_t_b".into(), 1, 2);
        b.phase("expand", "b on t");
        b.migration("add_column", "ALTER TABLE t ADD COLUMN b int;\n".into(), Some("ALTER TABLE t DROP COLUMN b;\n".into()), "-- check: ok\nSELECT 1 WHERE false;\n".into());
        b.probe(Version::New, "SELECT b FROM t;\n".into(), 2, None);
        b.finish()
    }

    #[test]
    fn appends_phases_and_probes_keeping_the_manifest_as_written() {
        let d = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        let manifest = "# the manifest\n\n[[phase]]\nid = 0\nname = \"base\"   # kept\nversions = [1]\nreversible = false\nreason = \"exists\"\nbaseline = true\n\n[[phase]]\nid = 1\nname = \"a\"\nversions = [2]\n\n[seed]\nafter_phase = 0\n";
        w("phases.toml", manifest);
        w("migrations/V1__a.sql", "CREATE TABLE t (a int);\n");
        w("validations/V1__a.sql", "-- check: ok\nSELECT 1 WHERE false;\n");
        w("migrations/V2__b.sql", "SELECT 1;\n");
        w("rollback/V2__b.sql", "SELECT 1;\n");
        w("validations/V2__b.sql", "-- check: ok\nSELECT 1 WHERE false;\n");
        let written = write(d.path(), &change(), "phasegate change add-column t.b int").unwrap();
        assert_eq!(written.files.len(), 4);
        let after = std::fs::read_to_string(d.path().join("phases.toml")).unwrap();
        assert!(after.starts_with("# the manifest\n\n[[phase]]\nid = 0\nname = \"base\"   # kept\n"), "{after}");
        assert!(after.contains("# add t.b: written by `phasegate change add-column t.b int`"), "{after}");
        let set = crate::set::load(d.path()).unwrap();
        assert_eq!(set.phases.last().map(|p| (p.id, p.name.as_str(), p.steps[0].version)), Some((2, "add t.b: expand", 3)));
        assert_eq!(set.probes.len(), 1);
        // The same change again: its files exist, nothing more is written.
        let e = write(d.path(), &change(), "x").unwrap_err();
        assert!(e.to_string().ends_with("V3__add_t_b_add_column.sql already exists; nothing was written"), "{e}");
        assert_eq!(std::fs::read_to_string(d.path().join("phases.toml")).unwrap(), after);
    }
}
