//! Loading a migration set (docs/migration-set.md): phases.toml, the forward, rollback and
//! validation files paired by file name, file directives and checks. Every
//! broken rule is a load error naming the file and line.
//!
//! `read` reads the files (regular files inside the set's folder, within a
//! size cap); `refuse` holds the statements a migration or rollback file
//! may not run.

mod batch;
pub(crate) mod origin;
pub(crate) mod probe;
mod directives;
mod memo;
mod read;
pub(crate) mod refuse;
mod reversibility;

pub(crate) use read::read_regular;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use crate::check::parse_duration;
use crate::check::{self, Check};
use crate::error::{Error, LoadError, Location, Result};
use crate::sqltext;
use directives::parse_directives;
use read::Folder;
pub use batch::BatchSize;
pub use reversibility::Reversibility;

pub const MANIFEST: &str = "phases.toml";
pub const MIGRATIONS: &str = "migrations";
pub const ROLLBACK: &str = "rollback";
pub const VALIDATIONS: &str = "validations";
pub const SEED: &str = "seed";

/// A loaded, validated migration set.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    pub dir: PathBuf,
    pub phases: Vec<Phase>,
    /// Read through `seed()`; private so that a set outside the crate
    /// comes only from `load` (or a foreign layout's reader), which checks
    /// every rule of docs/migration-set.md.
    pub(crate) seed: Option<Seed>,
    /// What each application version runs, and where it must work (docs/probes.md).
    pub probes: Vec<probe::Probe>,
}

#[derive(Debug, Clone)]
pub struct Seed {
    /// Seed files run after this phase, in rehearsals only.
    pub after_phase: u32,
    pub files: Vec<SqlFile>,
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub id: u32,
    pub name: String,
    pub summary: String,
    /// Reversible, irreversible (and why) or the baseline; read through
    /// `is_reversible`, `is_baseline` and `reason` (set/reversibility.rs).
    /// Private: only loading a set makes a phase, so it agrees with its
    /// steps' rollback files.
    pub(crate) reversibility: Reversibility,
    pub steps: Vec<Step>,
}

/// One migration with its pairs.
#[derive(Debug, Clone)]
pub struct Step {
    pub version: i32,
    pub name: String,
    pub phase: u32,
    pub forward: SqlFile,
    pub rollback: Option<SqlFile>,
    pub validation: SqlFile,
    pub checks: Vec<Check>,
    /// Where another tool's migration came from (`verify --from`); `None`
    /// for a phasegate set. Read through `origin()`; private so that a
    /// step outside the crate comes only from loading a set, paired with
    /// its rollback as its phase's reversibility says.
    pub(crate) origin: Option<origin::Origin>,
}

impl Step {
    /// Where another tool's migration came from, for a set read from its layout.
    pub fn origin(&self) -> Option<&origin::Origin> {
        self.origin.as_ref()
    }
    /// `V3__add_columns`, the name refinery records.
    pub fn file_stem(&self) -> String {
        format!("V{}__{}", self.version, self.name)
    }
    /// refinery's checksum of the forward migration, as its ledger stores it.
    pub fn refinery_checksum(&self) -> u64 {
        let stem = self.file_stem();
        self.forward.memo.refinery(&stem, &self.forward.text, || refinery::Migration::unapplied(&stem, &self.forward.text).map(|m| m.checksum()).unwrap_or(0))
    }
    pub fn checks_when(&self, when: check::When) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(move |c| c.when == when)
    }
}

/// Per-file directives (docs/directives.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    pub no_transaction: bool,
    pub batch: Option<BatchSize>,
    pub lock_timeout: Option<Duration>,
    pub statement_timeout: Option<Duration>,
    /// Byte ranges of the text that run as one statement each, whatever
    /// semicolons they hold: another tool's explicit statement boundaries
    /// (goose `StatementBegin`/`StatementEnd`, a Liquibase changeset with
    /// `splitStatements:false`). Empty for phasegate's own files.
    pub blocks: Vec<std::ops::Range<usize>>,
}

/// A SQL file of the set.
#[derive(Debug, Clone)]
pub struct SqlFile {
    /// Path for messages: the set directory joined with the relative path.
    pub path: PathBuf,
    pub text: String,
    pub directives: Directives,
    /// Its statements and checksums, worked out once per text.
    memo: Box<memo::Memo>,
}

impl SqlFile {
    pub fn new(path: PathBuf, text: String, directives: Directives) -> SqlFile {
        SqlFile { path, text, directives, memo: Box::default() }
    }

    /// A plain SQL file, no directives, read as a set's files are
    /// (`verify --setup FILE`).
    pub fn read(path: &std::path::Path) -> Result<SqlFile> {
        Ok(SqlFile::new(path.to_path_buf(), read_regular(path)?, Directives::default()))
    }

    pub fn sha256(&self) -> String {
        self.memo.sha256(&self.text, || sha256_hex(&self.text))
    }

    /// The statements to send one at a time: each of the file's `blocks`
    /// whole, the text between them split by `sqltext::statements`.
    pub fn statements(&self) -> Vec<sqltext::Statement> {
        self.memo.statements(&self.text, &self.directives.blocks, || sqltext::statements_with_blocks(&self.text, &self.directives.blocks))
    }

    /// Whether the text holds its own transaction control (a set refuses
    /// it at load; a rollback's text or another tool's file may still).
    pub fn has_transaction_control(&self) -> bool {
        self.memo.tx_control(&self.text, || !sqltext::transaction_control(&sqltext::Lexed::new(&self.text)).is_empty())
    }
}

pub fn sha256_hex(text: &str) -> String {
    let d = Sha256::digest(text.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    phase: Vec<toml::Spanned<PhaseToml>>,
    seed: Option<toml::Spanned<SeedToml>>,
    #[serde(default)]
    probe: Vec<toml::Spanned<probe::ProbeToml>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseToml {
    id: toml::Spanned<u32>,
    name: String,
    #[serde(default)]
    summary: String,
    versions: toml::Spanned<Vec<toml::Spanned<i32>>>,
    #[serde(default = "yes")]
    reversible: bool,
    reason: Option<String>,
    #[serde(default)]
    baseline: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedToml {
    after_phase: toml::Spanned<u32>,
}

/// What a forward or rollback file is, for the rules that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Forward,
    Rollback,
    /// Validation and seed files: no directives, no refusals.
    Other,
}

/// Loads and validates the migration set in `dir`.
pub fn load(dir: &Path) -> Result<MigrationSet> {
    load_with(dir, true)
}

/// `load` without refusing the statements `refuse` names, so `lint` can
/// report every one of them as a finding of its own.
pub(crate) fn load_for_lint(dir: &Path) -> Result<MigrationSet> {
    load_with(dir, false)
}

fn load_with(dir: &Path, refuse_statements: bool) -> Result<MigrationSet> {
    let manifest_path = dir.join(MANIFEST);
    if manifest_path.symlink_metadata().is_err() {
        return Err(Error::NoMigrationSet { dir: dir.to_path_buf() });
    }
    let folder = Folder::new(dir)?;
    let text = folder.read(&manifest_path)?;
    let lines = sqltext::LineIndex::new(&text);
    let line_at = |offset: usize| lines.line(offset);
    let load_file = |path: &Path, role: Role| load_sql(&folder, path, role, refuse_statements);
    let merr = |line: usize, kind: LoadError| Error::Load { at: Location::line(&manifest_path, line), kind };
    let manifest: Manifest = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| line_at(s.start)).unwrap_or(1);
        merr(line, LoadError::Toml { message: e.message().trim().replace('\n', " ") })
    })?;
    if manifest.phase.is_empty() {
        return Err(merr(1, LoadError::NoPhases));
    }

    let migrations = list_sql(dir, MIGRATIONS, true)?;
    let rollbacks = list_sql(dir, ROLLBACK, false)?;
    let validations = list_sql(dir, VALIDATIONS, false)?;

    // Every rollback and validation pairs with a forward migration of the same name.
    for (kind, files) in [(ROLLBACK, &rollbacks), (VALIDATIONS, &validations)] {
        for (v, (name, path)) in files {
            match migrations.get(v) {
                Some((fname, _)) if fname == name => {}
                _ => {
                    return Err(Error::Load {
                        at: Location::file(path),
                        kind: LoadError::NoForward { kind, forward: dir.join(MIGRATIONS).join(format!("V{v}__{name}.sql")) },
                    })
                }
            }
        }
    }

    let mut phases: Vec<Phase> = Vec::new();
    let mut owner: BTreeMap<i32, u32> = BTreeMap::new();
    let all_versions: Vec<i32> = migrations.keys().copied().collect();
    let mut next_index = 0usize;
    for sp in &manifest.phase {
        let p = sp.get_ref();
        let pline = line_at(sp.span().start);
        let id = *p.id.get_ref();
        let id_line = line_at(p.id.span().start);
        if let Some(prev) = phases.last() {
            if id <= prev.id {
                return Err(merr(id_line, LoadError::PhaseIdsDescend { id, previous: prev.id }));
            }
        }
        if p.name.trim().is_empty() {
            return Err(merr(pline, LoadError::EmptyPhaseName { phase: id }));
        }
        if !p.reversible && p.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(merr(pline, LoadError::NoReason { phase: id }));
        }
        if p.baseline && p.reversible {
            return Err(merr(pline, LoadError::ReversibleBaseline { phase: id }));
        }
        let versions = p.versions.get_ref();
        if versions.is_empty() {
            return Err(merr(line_at(p.versions.span().start), LoadError::NoVersions { phase: id }));
        }
        let mut steps = Vec::new();
        for sv in versions {
            let v = *sv.get_ref();
            let vline = line_at(sv.span().start);
            if let Some(other) = owner.insert(v, id) {
                return Err(merr(vline, LoadError::VersionInTwoPhases { version: v, other, phase: id }));
            }
            let Some((name, fpath)) = migrations.get(&v) else {
                return Err(merr(vline, LoadError::VersionWithoutFile { phase: id, version: v, folder: dir.join(MIGRATIONS) }));
            };
            // Versions ascend and are contiguous: the next migration file in order.
            if all_versions.get(next_index) != Some(&v) {
                return Err(merr(vline, LoadError::VersionOutOfOrder { phase: id, version: v, expected: all_versions.get(next_index).copied() }));
            }
            next_index += 1;
            let forward = load_file(fpath, Role::Forward)?;
            let rollback = match (rollbacks.get(&v), p.reversible) {
                (Some((_, rpath)), true) => Some(load_file(rpath, Role::Rollback)?),
                (None, true) => {
                    return Err(Error::Load {
                        at: Location::file(dir.join(ROLLBACK).join(format!("V{v}__{name}.sql"))),
                        kind: LoadError::MissingRollback { version: v, phase: id },
                    })
                }
                (Some((_, rpath)), false) => {
                    return Err(Error::Load {
                        at: Location::file(rpath),
                        kind: LoadError::RollbackInIrreversible { version: v, phase: id },
                    })
                }
                (None, false) => None,
            };
            let Some((_, vpath)) = validations.get(&v) else {
                return Err(Error::Load {
                    at: Location::file(dir.join(VALIDATIONS).join(format!("V{v}__{name}.sql"))),
                    kind: LoadError::MissingValidation { version: v },
                });
            };
            let validation = load_file(vpath, Role::Other)?;
            let checks = check::parse_file(&validation.path, &validation.text)?;
            steps.push(Step { version: v, name: name.clone(), phase: id, forward, rollback, validation, checks, origin: None });
        }
        phases.push(Phase {
            id,
            name: p.name.clone(),
            summary: p.summary.clone(),
            reversibility: Reversibility::new(p.reversible, p.reason.clone(), p.baseline),
            steps,
        });
    }
    if let Some(v) = all_versions.get(next_index) {
        let (_, path) = &migrations[v];
        return Err(Error::Load { at: Location::file(path), kind: LoadError::NotInPhase { version: *v } });
    }

    let seed = match &manifest.seed {
        None => None,
        Some(s) => {
            let after = *s.get_ref().after_phase.get_ref();
            if !phases.iter().any(|p| p.id == after) {
                return Err(merr(line_at(s.get_ref().after_phase.span().start), LoadError::SeedUnknownPhase { after }));
            }
            let seed_dir = dir.join(SEED);
            let mut files = Vec::new();
            if seed_dir.is_dir() {
                let mut paths: Vec<PathBuf> = read::entries(&seed_dir)?
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "sql"))
                    .collect();
                paths.sort();
                for p in paths {
                    files.push(load_file(&p, Role::Other)?);
                }
            }
            Some(Seed { after_phase: after, files })
        }
    };

    let probes = probe::resolve(dir, &manifest_path, &manifest.probe, &phases, line_at, |p| load_sql(&folder, p, Role::Other, false))?;
    Ok(MigrationSet { dir: dir.to_path_buf(), phases, seed, probes })
}

impl MigrationSet {
    /// Whether seed rows load right after phase `id` (in rehearsals).
    pub fn seeded_after(&self, id: u32) -> bool {
        self.seed.as_ref().is_some_and(|s| s.after_phase == id && !s.files.is_empty())
    }

    /// The rows loaded after a phase, in rehearsals only.
    pub fn seed(&self) -> Option<&Seed> {
        self.seed.as_ref()
    }
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.phases.iter().flat_map(|p| p.steps.iter())
    }
    /// The phase `id`, or the error that names the manifest without it.
    pub fn phase(&self, id: u32) -> Result<&Phase> {
        self.phases.iter().find(|p| p.id == id).ok_or_else(|| {
            let ids: Vec<u32> = self.phases.iter().map(|p| p.id).collect();
            let contiguous = ids.windows(2).all(|w| w[1] == w[0] + 1);
            let known = match ids.as_slice() {
                [] => "it has no phases".to_string(),
                [one] => format!("its one phase is {one}"),
                [first, .., last] if contiguous => format!("its phases are {first} to {last}"),
                many => format!("its phases are {}", many.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")),
            };
            Error::NoSuchPhase { phase: id, manifest: self.dir.join(MANIFEST), known }
        })
    }
    pub fn step(&self, version: i32) -> Option<&Step> {
        self.steps().find(|s| s.version == version)
    }
    pub fn phase_of(&self, version: i32) -> Option<&Phase> {
        self.phases.iter().find(|p| p.steps.iter().any(|s| s.version == version))
    }
}

/// `V{n}__{name}.sql` files of a folder, by version: (name, path).
fn list_sql(dir: &Path, sub: &'static str, required: bool) -> Result<BTreeMap<i32, (String, PathBuf)>> {
    let folder = dir.join(sub);
    let mut out: BTreeMap<i32, (String, PathBuf)> = BTreeMap::new();
    if !folder.is_dir() {
        if required {
            return Err(Error::Load { at: Location::file(&folder), kind: LoadError::FolderNotFound { migrations: true } });
        }
        return Ok(out);
    }
    let mut paths = read::entries(&folder)?;
    paths.sort();
    for path in paths {
        let fname = path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
        if path.is_dir() {
            return Err(Error::Load { at: Location::file(&path), kind: LoadError::SubFolder { sub } });
        }
        if fname.starts_with('.') || !fname.ends_with(".sql") {
            continue;
        }
        let (version, name) = parse_file_name(&fname).ok_or_else(|| Error::Load {
            at: Location::file(&path),
            kind: LoadError::BadFileName,
        })?;
        if let Some((_, other)) = out.get(&version) {
            return Err(Error::Load {
                at: Location::file(&path),
                kind: LoadError::DuplicateVersion { what: "version", version: version.to_string(), other: other.clone() },
            });
        }
        out.insert(version, (name, path));
    }
    Ok(out)
}

/// Parses `V{n}__{name}.sql`.
pub fn parse_file_name(fname: &str) -> Option<(i32, String)> {
    let stem = fname.strip_suffix(".sql")?;
    let rest = stem.strip_prefix('V')?;
    let (num, name) = rest.split_once("__")?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let version = num.parse::<i32>().ok().filter(|v| *v > 0)?;
    Some((version, name.to_string()))
}

/// Reads a SQL file and its directives. Migration files (forward and
/// rollback) may carry directives, and with `refuse_statements` are refused
/// when they hold what `refuse` names; other files must carry none.
fn load_sql(folder: &Folder, path: &Path, role: Role, refuse_statements: bool) -> Result<SqlFile> {
    let text = folder.read(path)?;
    let directives = parse_directives(path, &text, role != Role::Other)?;
    let lexed = sqltext::Lexed::new(&text);
    let statements = &lexed.statements;
    if statements.is_empty() {
        return Err(Error::Load { at: Location::line(path, 1), kind: LoadError::NoStatement });
    }
    if directives.no_transaction && statements.len() > 1 {
        return Err(Error::Load {
            at: Location::line(path, statements[1].0.line),
            kind: LoadError::NoTransactionStatements,
        });
    }
    if directives.batch.is_some() {
        if statements.len() != 1 {
            return Err(Error::Load { at: Location::line(path, statements[1].0.line), kind: LoadError::BatchStatements });
        }
        if !text.contains(":batch_size") {
            return Err(Error::Load { at: Location::line(path, statements[0].0.line), kind: LoadError::BatchWithoutLimit });
        }
    }
    if refuse_statements && role != Role::Other {
        refuse::check(path, &lexed, role == Role::Rollback)?;
    }
    drop(lexed);
    Ok(SqlFile::new(path.to_path_buf(), text, directives))
}

#[cfg(test)]
mod tests;
