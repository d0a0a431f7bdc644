//! Probes (docs/probes.md): `probes/NAME.sql`, the statements one
//! application version runs, and the `[[probe]]` tables of `phases.toml`
//! saying in which phases each must work. Read and checked when the set
//! loads, like every other part of a set.

use std::path::{Component, Path};

use serde::Deserialize;

use crate::error::{Error, LoadError, Location, Result};
use super::{Phase, SqlFile};

/// The folder of a set that holds its probe files.
pub const PROBES: &str = "probes";

/// A `[[probe]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProbeToml {
    file: toml::Spanned<String>,
    from: Option<toml::Spanned<u32>>,
    until: Option<toml::Spanned<u32>>,
}

/// A probe of a loaded set: its file and the phases after which it must work.
#[derive(Debug, Clone)]
pub struct Probe {
    /// As declared (`probes/x_old.sql`), relative to the set's folder.
    pub name: String,
    pub file: SqlFile,
    /// The first phase after which it must work.
    pub from: u32,
    /// The last one; `None`: every later phase.
    pub until: Option<u32>,
}

impl Probe {
    /// Whether the probe must work in the state after phase `phase` (every
    /// migration of the phases up to it applied, none after).
    pub fn works_after(&self, phase: u32) -> bool {
        phase >= self.from && self.until.is_none_or(|u| phase <= u)
    }
}

/// The probes of a set, checked against its phases. `line_at` maps a byte
/// offset of `phases.toml` to its line.
pub(crate) fn resolve(
    dir: &Path,
    manifest: &Path,
    declared: &[toml::Spanned<ProbeToml>],
    phases: &[Phase],
    line_at: impl Fn(usize) -> usize,
    load: impl Fn(&Path) -> Result<SqlFile>,
) -> Result<Vec<Probe>> {
    let err = |offset: usize, message: String| Error::Load { at: Location::line(manifest, line_at(offset)), kind: LoadError::Probe { message } };
    let known = |id: &toml::Spanned<u32>| -> Result<u32> {
        let v = *id.get_ref();
        if phases.iter().any(|p| p.id == v) {
            Ok(v)
        } else {
            Err(err(id.span().start, format!("probe names phase {v}, which phases.toml does not define")))
        }
    };
    let mut out: Vec<Probe> = Vec::new();
    for sp in declared {
        let p = sp.get_ref();
        let name = p.file.get_ref().trim().to_string();
        let at = p.file.span().start;
        let rel = Path::new(&name);
        let inside = rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !inside || rel.components().next().is_none_or(|c| c.as_os_str() != PROBES) || rel.components().count() < 2 {
            return Err(err(at, format!("probe file `{name}` must be a relative path inside {PROBES}/, e.g. {PROBES}/checkout_old.sql")));
        }
        if rel.extension().is_none_or(|e| e != "sql") {
            return Err(err(at, format!("probe file `{name}` must end in .sql")));
        }
        if out.iter().any(|o| o.name == name) {
            return Err(err(at, format!("probe file `{name}` is declared twice")));
        }
        let path = dir.join(rel);
        if !path.is_file() {
            return Err(err(at, format!("probe file `{name}` not found")));
        }
        let from = match &p.from {
            Some(f) => known(f)?,
            None => phases.first().map_or(0, |p| p.id),
        };
        let until = p.until.as_ref().map(known).transpose()?;
        if let Some(u) = until.filter(|u| *u < from) {
            return Err(err(sp.span().start, format!("probe `{name}`: from = {from} comes after until = {u}")));
        }
        let file = load(&path)?;
        refuse_transaction_control(&file)?;
        out.push(Probe { name, file, from, until });
    }
    Ok(out)
}

/// A probe runs inside a savepoint verify rolls back: its own `COMMIT`,
/// `ROLLBACK` or `SAVEPOINT` would end or keep what it must not.
fn refuse_transaction_control(file: &SqlFile) -> Result<()> {
    match crate::sqltext::transaction_control(&crate::sqltext::Lexed::new(&file.text)).first() {
        Some(f) => Err(Error::Load {
            at: Location::line(&file.path, f.line),
            kind: LoadError::Probe {
                message: format!("`{}` in a probe file: verify runs each probe inside a savepoint it rolls back, and the file's own transaction control would end it (remove it)", f.kind),
            },
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    const SET: &str = "[[phase]]\nid = 0\nname = \"base\"\nversions = [1]\nreversible = false\nreason = \"exists\"\nbaseline = true\n\n[[phase]]\nid = 1\nname = \"add\"\nversions = [2]\n";

    /// Loads a two-phase set with `probes` appended to its manifest.
    fn load(probes: &str) -> crate::error::Result<crate::set::MigrationSet> {
        load_with(probes, "SELECT a FROM t;\n")
    }

    /// `load`, with `old` as the text of probes/old.sql.
    fn load_with(probes: &str, old: &str) -> crate::error::Result<crate::set::MigrationSet> {
        let d = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = d.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        w("phases.toml", &format!("{SET}\n{probes}"));
        w("migrations/V1__a.sql", "CREATE TABLE t (a int);\n");
        w("validations/V1__a.sql", "-- check: ok\nSELECT 1 WHERE false;\n");
        w("migrations/V2__b.sql", "ALTER TABLE t ADD COLUMN b int;\n");
        w("rollback/V2__b.sql", "ALTER TABLE t DROP COLUMN b;\n");
        w("validations/V2__b.sql", "-- check: ok\nSELECT 1 WHERE false;\n");
        w("probes/old.sql", old);
        w("probes/new.sql", "SELECT a, b FROM t;\n");
        crate::set::load(d.path())
    }

    #[test]
    fn probes_load_with_their_phase_ranges() {
        let set = load("[[probe]]\nfile = \"probes/old.sql\"\nuntil = 0\n\n[[probe]]\nfile = \"probes/new.sql\"\nfrom = 1\n").unwrap();
        let (old, new) = (&set.probes[0], &set.probes[1]);
        assert_eq!((old.from, old.until, new.from, new.until), (0, Some(0), 1, None));
        assert!(old.works_after(0) && !old.works_after(1));
        assert!(!new.works_after(0) && new.works_after(1) && new.works_after(7));
        assert!(load("").unwrap().probes.is_empty());
    }

    #[test]
    fn bad_probe_declarations_name_the_manifest_line() {
        let cases = [
            ("[[probe]]\nfile = \"probes/old.sql\"\nfrom = 4\n", 16, "probe names phase 4, which phases.toml does not define"),
            ("[[probe]]\nfile = \"../old.sql\"\n", 15, "must be a relative path inside probes/"),
            ("[[probe]]\nfile = \"probes/gone.sql\"\n", 15, "probe file `probes/gone.sql` not found"),
            ("[[probe]]\nfile = \"probes/old.sql\"\nfrom = 1\nuntil = 0\n", 14, "from = 1 comes after until = 0"),
            ("[[probe]]\nfile = \"probes/old.sql\"\n[[probe]]\nfile = \"probes/old.sql\"\n", 17, "declared twice"),
            ("[[probe]]\nfile = \"probes/old.sql\"\nphases = \"0..=1\"\n", 16, "unknown field `phases`"),
        ];
        for (probes, line, message) in cases {
            let e = load(probes).unwrap_err().to_string();
            assert!(e.contains(&format!("phases.toml:{line}: ")) && e.contains(message), "{probes}: {e}");
        }
    }

    #[test]
    fn transaction_control_in_a_probe_file_is_a_load_error_at_its_line() {
        let e = load_with("[[probe]]\nfile = \"probes/old.sql\"\n", "SELECT a FROM t;\nCOMMIT;\n").unwrap_err().to_string();
        assert!(e.contains("probes/old.sql:2: `COMMIT` in a probe file"), "{e}");
        // A BEGIN inside a DO block is no transaction control.
        assert!(load_with("[[probe]]\nfile = \"probes/old.sql\"\n", "DO $$ BEGIN PERFORM 1; END $$;\n").is_ok());
    }
}
