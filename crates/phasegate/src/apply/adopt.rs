//! `migrate --adopt TOOL`: on a database another tool migrated, the
//! migrations that tool's ledger holds applied are recorded as applied in
//! phasegate's ledger, without running, so nothing runs twice. The set is
//! the one `phasegate import` wrote from that tool's folder: its
//! `imported.toml` maps each version to the tool's label, file and checksum.
//!
//! Refused, recording nothing, with one line per problem: a ledger row no
//! imported migration comes from, a checksum that is not the file's (where
//! the tool keeps one: sqlx, Flyway, Sqitch, refinery), a migration the tool recorded
//! as failed or dirty, a migration missing from the ledger while a later
//! one is in it. Idempotent: versions phasegate's ledger already holds are
//! left as they are, so a second adoption records nothing. Each version
//! recorded carries `adopted_from` (the tool and its label), which `status`
//! shows; the run's audit row keeps `--adopt TOOL`, which `history` shows.
//! Migrations the tool never ran stay pending for the next `migrate`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use postgres::Client;
use serde::Serialize;

use crate::error::{db_err, display_path, Error, Result};
use crate::foreign::{self, Layout};
use crate::import::record::{Entry, Record, RECORD};
use crate::ledger;
use crate::set::MigrationSet;

/// What an adoption recorded (or, with `dry_run`, would record).
#[derive(Debug, Clone, Serialize)]
pub struct Adoption {
    pub tool: Layout,
    /// The tool's ledger table read.
    pub table: &'static str,
    pub dry_run: bool,
    /// Recorded as applied now.
    pub adopted: Vec<AdoptedStep>,
    /// In the tool's ledger and already in phasegate's.
    pub already: Vec<i32>,
    /// Not in the tool's ledger: the next `migrate` runs them.
    pub pending: Vec<i32>,
    /// Why checksums were not compared, for a tool that keeps them.
    pub checksums_not_compared: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdoptedStep {
    pub version: i32,
    pub name: String,
    pub phase: u32,
    /// The migration's label in the tool (`sqlx 20240105101500`).
    pub from: String,
    /// The tool's checksum was compared with the file's.
    pub checksum_compared: bool,
}

/// Adopts `tool`'s ledger on the database for `set` (see the module).
pub fn adopt(client: &mut Client, set: &MigrationSet, tool: Layout, dry_run: bool, run_id: &str) -> Result<Adoption> {
    let record = Record::read(&set.dir)?;
    let record_path = set.dir.join(RECORD);
    if record.layout() != Some(tool) {
        return Err(Error::Load { at: crate::error::Location::file(&record_path), kind: crate::error::LoadError::Import { message: format!("the set was imported from {} ({}), not from {tool}", record.tool, record.from) } });
    }
    if foreign::ledger_table(tool).is_none() {
        return Err(Error::Adopt { problems: vec![format!("{tool}: this layout belongs to no tool, so there is no ledger to adopt")] });
    }
    let theirs = foreign::read_ledger(client, tool)?;
    let mut applied = ledger::applied(client)?;
    if tool == Layout::Refinery {
        // refinery's rows share phasegate's history table: phasegate's have a phasegate_applied row.
        applied.retain(|_, a| a.phase.is_some());
    }
    super::check_consistency(set, &applied)?;
    let from = Path::new(&record.from);
    let (matched, claimed, mut problems) = match_rows(tool, &record, &theirs, from);
    // Every version adopted is a step of the set, and none is left behind one.
    for v in matched.keys() {
        if set.step(*v).is_none() {
            problems.push(format!("{}: version {v} is not in the set any more (its migration file is gone)", display_path(&record_path)));
        }
    }
    if let Some(&last) = matched.keys().max() {
        for s in set.steps().filter(|s| s.version < last && !claimed.contains(&s.version) && !applied.contains_key(&s.version)) {
            let origin = record.migrations.iter().find(|e| e.version == s.version);
            let what = origin.map(|e| format!("{} ({})", e.id, display_path(&from.join(&e.file)))).unwrap_or_else(|| display_path(&s.forward.path));
            problems.push(format!("{tool} {what}: not in {} while a later migration is: adopting would leave a gap; run it with {tool} first", theirs.table));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Adopt { problems });
    }
    let mut out = Adoption {
        tool,
        table: theirs.table,
        dry_run,
        adopted: Vec::new(),
        already: Vec::new(),
        pending: set.steps().filter(|s| !matched.contains_key(&s.version) && !applied.contains_key(&s.version)).map(|s| s.version).collect(),
        checksums_not_compared: foreign::checksum::not_compared(tool),
    };
    let mut todo = Vec::new();
    for (v, (entry, compared)) in &matched {
        if applied.contains_key(v) {
            out.already.push(*v);
            continue;
        }
        let step = set.step(*v).expect("checked above");
        out.adopted.push(AdoptedStep { version: *v, name: step.name.clone(), phase: step.phase, from: format!("{tool} {}", entry.id), checksum_compared: *compared });
        todo.push(step);
    }
    if dry_run || todo.is_empty() {
        return Ok(out);
    }
    let t = ledger::ensure_tables(client)?;
    let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
    if tool == Layout::Refinery {
        // Every refinery row matched a migration (else refused): phasegate's rows replace them.
        ledger::forget_foreign_history(&mut tx, &t)?;
    }
    for (step, a) in todo.iter().zip(&out.adopted) {
        ledger::record_apply_in(&mut tx, &t, step, run_id)?;
        ledger::mark_adopted(&mut tx, &t, step.version, &a.from)?;
    }
    tx.commit().map_err(db_err("committing the adoption"))?;
    Ok(out)
}

/// Each ledger row matched to the imported migration it ran (version ->
/// entry, checksum compared), every version a row names (matched or not:
/// a changed file is one problem, not also a gap), and the problems found.
type Matched<'a> = (BTreeMap<i32, (&'a Entry, bool)>, BTreeSet<i32>, Vec<String>);

fn match_rows<'a>(tool: Layout, record: &'a Record, theirs: &foreign::ToolLedger, from: &Path) -> Matched<'a> {
    let key = |s: &str| foreign::ledger_key(tool, s);
    let mut matched = BTreeMap::new();
    let mut claimed = BTreeSet::new();
    let mut problems = Vec::new();
    let file = |e: &Entry| display_path(&from.join(&e.file));
    for row in &theirs.rows {
        let mut candidates: Vec<&Entry> = record.migrations.iter().filter(|e| key(&e.id) == key(&row.label) && !claimed.contains(&e.version)).collect();
        if let Some(f) = &row.file {
            // Liquibase: the changeset's file tells same-labelled changesets apart.
            let base = |p: &str| Path::new(p).file_name().map(|n| n.to_os_string());
            if candidates.iter().any(|e| base(&e.file) == base(f)) {
                candidates.retain(|e| base(&e.file) == base(f));
            }
        }
        if candidates.len() > 1 && row.checksum.is_some() {
            // A reworked Sqitch change: its deployments differ by script hash.
            if let Some(i) = candidates.iter().position(|e| e.checksum == row.checksum) {
                candidates = vec![candidates[i]];
            }
        }
        let Some(entry) = candidates.first().copied() else {
            let named = row.file.as_ref().map(|f| format!(" ({f})")).unwrap_or_default();
            problems.push(format!(
                "{}: {tool} {}{named}: in {} but no migration of the imported set comes from it (no file for it in {})",
                display_path(from),
                row.label,
                theirs.table,
                display_path(from)
            ));
            continue;
        };
        claimed.insert(entry.version);
        if row.failed {
            problems.push(format!("{}: {tool} {}: {} records it as failed: repair it with {tool} first, then adopt", file(entry), entry.id, theirs.table));
            continue;
        }
        let compared = match (&entry.checksum, &row.checksum) {
            (Some(want), Some(got)) if want != got => {
                problems.push(format!(
                    "{}: {tool} {}: its checksum in {} ({got}) is not the file's ({want}): the file changed after {tool} ran it",
                    file(entry),
                    entry.id,
                    theirs.table
                ));
                continue;
            }
            (Some(_), Some(_)) => true,
            _ => false,
        };
        matched.insert(entry.version, (entry, compared));
    }
    if let Some(up_to) = &theirs.up_to {
        let at_or_below = |e: &Entry| match (foreign::Version::parse(&e.id), foreign::Version::parse(up_to)) {
            (Some(a), Some(b)) => a <= b,
            _ => false,
        };
        let below: Vec<&Entry> = record.migrations.iter().filter(|e| at_or_below(e) && !claimed.contains(&e.version)).collect();
        for e in below {
            matched.insert(e.version, (e, false));
            claimed.insert(e.version);
        }
        if tool == Layout::GolangMigrate && !record.migrations.iter().any(|e| key(&e.id) == key(up_to)) {
            problems.push(format!("{}: {tool} {up_to}: the current version in {} but no migration of the imported set comes from it (no file for it in {})", display_path(from), theirs.table, display_path(from)));
        }
    }
    (matched, claimed, problems)
}
