//! The rehearsal behind `verify` (SPEC 8): for each phase, snapshot, migrate,
//! check, snapshot; for a reversible phase, roll back, check, compare with
//! the state before the phase (schema and every pre-existing row), migrate
//! again and compare with the first forward state. Each difference is
//! classified so the report can say exactly what a rollback failed to undo.

use std::time::Instant;

use postgres::Client;
use serde::Serialize;

use crate::apply::{self, RunOutcome, Target};
use crate::ui::Ui;
use crate::check::Verdict;
use crate::error::{db_err, Result};
use crate::set::MigrationSet;
use crate::snapshot::{self, Snapshot, SnapshotOptions};

#[derive(Debug, Clone)]
pub struct Options {
    /// Rehearse only this phase (earlier phases are applied without rehearsal).
    pub phase: Option<u32>,
    /// Treat a column-order-only difference as a failure.
    pub strict: bool,
    /// `phasegate.seed_rows` for the seed files.
    pub seed_rows: Option<u64>,
    pub apply: apply::Options,
}

/// One timed step of a phase's rehearsal.
#[derive(Debug, Clone, Serialize)]
pub struct StepTiming {
    pub step: &'static str,
    pub ms: f64,
    pub ok: bool,
    pub verdict: Option<Verdict>,
}

/// A difference the rehearsal found, classified.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The schema after rollback (or re-apply) differs from the reference.
    SchemaDiffers { against: Against, objects: Vec<String>, diff: String },
    /// Only column positions differ: a warning unless `--strict`.
    ColumnOrderOnly { against: Against, diff: String },
    /// Rows of a table that existed before differ in these columns.
    RowsChanged { against: Against, table: String, columns: Vec<String>, rows_before: i64, rows_after: i64 },
    /// The rollback raised an error (file and line in the message).
    RollbackFailed { error: String },
    /// Applying the phase again after its rollback raised an error.
    ReapplyFailed { error: String },
    /// The forward migration raised an error or a check said ROLLBACK.
    MigrateFailed { error: String },
    /// The phase has no rollback (irreversible, or no down script): it is
    /// applied forward only and reported, never skipped silently.
    NoRollback { reason: String },
}

/// Which snapshot a comparison was against.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Against {
    /// The state before the phase (after its rollback).
    BeforePhase,
    /// The state after the first forward run (after re-applying).
    FirstForward,
}

impl Finding {
    /// Whether this finding means a rollback does not restore the prior state.
    pub fn is_mismatch(&self, strict: bool) -> bool {
        match self {
            Finding::ColumnOrderOnly { .. } => strict,
            // Rows that differ between the first run and the re-run of a
            // phase (now() defaults, sequences) are not a rollback failing
            // to restore anything: reported, and failing only with --strict.
            Finding::RowsChanged { against: Against::FirstForward, .. } => strict,
            Finding::NoRollback { .. } | Finding::MigrateFailed { .. } => false,
            _ => true,
        }
    }

    /// One line for the report.
    pub fn summary(&self) -> String {
        let against = |a: &Against| match a {
            Against::BeforePhase => "after rollback, compared with before the phase",
            Against::FirstForward => "after re-apply, compared with the first forward run",
        };
        match self {
            Finding::SchemaDiffers { against: a, objects, .. } => format!("schema differs ({}): {}", against(a), objects.join(", ")),
            Finding::ColumnOrderOnly { against: a, .. } => format!("column order only ({})", against(a)),
            Finding::RowsChanged { against: a, table, columns, rows_before, rows_after } => {
                let count = if rows_before != rows_after { format!("{rows_before} -> {rows_after} rows, ") } else { String::new() };
                format!("rows changed in {table} ({}): {count}columns {}", against(a), columns.join(", "))
            }
            Finding::RollbackFailed { error } => format!("rollback failed: {error}"),
            Finding::ReapplyFailed { error } => format!("re-apply failed: {error}"),
            Finding::MigrateFailed { error } => format!("migrate failed: {error}"),
            Finding::NoRollback { reason } => format!("no rollback: {reason}"),
        }
    }
}

/// The rehearsal of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseRehearsal {
    pub phase: u32,
    pub name: String,
    /// Another tool's migration this phase is (`verify --from`): its tool,
    /// label, file and line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<crate::foreign::Origin>,
    pub reversible: bool,
    pub steps: Vec<StepTiming>,
    pub findings: Vec<Finding>,
    /// The worst check verdict of the phase's runs.
    pub verdict: Verdict,
    /// restored, forward only, mismatch, failed.
    pub result: &'static str,
    pub ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    pub phases: Vec<PhaseRehearsal>,
    pub strict: bool,
    pub ms: f64,
}

impl Rehearsal {
    pub fn mismatch(&self) -> bool {
        self.phases.iter().any(|p| p.findings.iter().any(|f| f.is_mismatch(self.strict)))
    }
    pub fn verdict(&self) -> Verdict {
        self.phases.iter().map(|p| p.verdict).max().unwrap_or(Verdict::Proceed)
    }
    /// Whether a forward migration failed (an error, or a check said ROLLBACK).
    pub fn migrate_failed(&self) -> bool {
        self.phases.iter().any(|p| p.findings.iter().any(|f| matches!(f, Finding::MigrateFailed { .. })))
    }
}

/// The origin of a phase that is another tool's migration.
fn origin_of(phase: &crate::set::Phase) -> Option<crate::foreign::Origin> {
    phase.steps.first().and_then(|s| s.origin.clone())
}

fn timed(steps: &mut Vec<StepTiming>, step: &'static str, t: Instant, ok: bool, verdict: Option<Verdict>) {
    steps.push(StepTiming { step, ms: t.elapsed().as_secs_f64() * 1000.0, ok, verdict });
}

fn snap(client: &mut Client, column_hashes: bool) -> Result<Snapshot> {
    let opts = SnapshotOptions { column_hashes, ..SnapshotOptions::default() };
    snapshot::take(client, &opts).map_err(db_err("taking a snapshot"))
}

/// Compares the database now with a reference snapshot (taken with column
/// hashes): schema text, then the rows of every reference table over the
/// reference's columns, naming the columns whose values changed. Returns the
/// findings and the snapshot taken now (with column hashes when `keep` asks
/// for it, to serve as the next reference).
fn compare(client: &mut Client, reference: &Snapshot, against: Against, keep: bool) -> Result<(Vec<Finding>, Snapshot)> {
    let now = snap(client, keep)?;
    let mut findings = Vec::new();
    if now.schema != reference.schema {
        let diff = snapshot::schema_diff(&reference.schema, &now.schema, "before", "after");
        if snapshot::column_order_only(&reference.schema, &now.schema) {
            findings.push(Finding::ColumnOrderOnly { against, diff });
        } else {
            findings.push(Finding::SchemaDiffers { against, objects: snapshot::changed_objects(&reference.schema, &now.schema), diff });
        }
    }
    for (t, f) in &reference.tables {
        let Some(cur) = now.tables.get(t) else {
            continue; // the table is gone: the schema difference names it
        };
        if cur.columns == f.columns && cur.rows == f.rows && cur.hash == f.hash {
            continue;
        }
        // Same table, other rows or other columns: hash the reference's
        // columns that still exist, one by one, to name what changed.
        let cols: Vec<String> = f.columns.iter().filter(|c| cur.columns.contains(c)).cloned().collect();
        let fp = snapshot::fingerprint_table(client, t, &cols).map_err(db_err(format!("fingerprinting {t}")))?;
        if cols.len() == f.columns.len() && fp.rows == f.rows && fp.hash == f.hash {
            continue; // only columns added since differ: the schema difference names them
        }
        let mut changed: Vec<String> = Vec::new();
        for (i, c) in f.columns.iter().enumerate() {
            match cols.iter().position(|x| x == c) {
                None => changed.push(format!("{c} (dropped)")),
                Some(j) if f.column_hashes.get(i) != fp.column_hashes.get(j) => changed.push(c.clone()),
                Some(_) => {}
            }
        }
        findings.push(Finding::RowsChanged { against, table: t.clone(), columns: changed, rows_before: f.rows, rows_after: fp.rows });
    }
    Ok((findings, now))
}


fn outcome_error(o: &RunOutcome) -> Option<String> {
    if let Some(e) = &o.error {
        return Some(e.clone());
    }
    if o.verdict() == Verdict::Rollback {
        let failing: Vec<String> = o.checks().filter(|c| c.verdict == Verdict::Rollback).map(|c| c.failure_line()).collect();
        return Some(format!("checks said ROLLBACK: {}", failing.join(", ")));
    }
    None
}

/// Rehearses the set on an empty database the caller connected to (and
/// holds the migration lock on).
pub fn rehearse(client: &mut Client, set: &MigrationSet, opts: &Options, ui: &mut dyn Ui) -> Result<Rehearsal> {
    let started = Instant::now();
    let mut ui = crate::ui::Confirming { inner: ui };
    let mut phases = Vec::new();
    let mut next_before: Option<Snapshot> = None;
    for phase in &set.phases {
        if opts.phase.is_some_and(|p| phase.id > p) {
            break;
        }
        let rehearse_this = opts.phase.is_none_or(|p| p == phase.id);
        let pstart = Instant::now();
        let mut steps = Vec::new();
        let mut findings = Vec::new();
        let mut verdict = Verdict::Proceed;
        ui.progress(&format!("rehearse phase {} {}", phase.id, phase.name));

        let t = Instant::now();
        // The state after the previous phase's re-apply is this phase's
        // "before": reuse that snapshot instead of taking it again.
        let before = match (rehearse_this, next_before.take()) {
            (true, Some(b)) => Some(b),
            (true, None) => Some(snap(client, true)?),
            (false, _) => None,
        };
        if rehearse_this {
            timed(&mut steps, "snapshot", t, true, None);
        }

        let t = Instant::now();
        let fwd = apply::migrate(client, set, Target::Phase(phase.id), &opts.apply, &mut ui)?;
        verdict = verdict.max(fwd.verdict());
        if let Some(e) = outcome_error(&fwd) {
            timed(&mut steps, "migrate", t, false, Some(fwd.verdict()));
            findings.push(Finding::MigrateFailed { error: e });
            phases.push(PhaseRehearsal { phase: phase.id, name: phase.name.clone(), origin: origin_of(phase), reversible: phase.reversible, steps, findings, verdict, result: "failed", ms: pstart.elapsed().as_secs_f64() * 1000.0 });
            break;
        }
        timed(&mut steps, "migrate", t, true, Some(fwd.verdict()));

        if rehearse_this {
            let before = before.expect("taken when rehearsing");
            let t = Instant::now();
            let forward = snap(client, true)?;
            timed(&mut steps, "snapshot", t, true, None);
            if !phase.reversible {
                if !phase.baseline {
                    findings.push(Finding::NoRollback { reason: phase.reason.clone().unwrap_or_else(|| "irreversible".into()) });
                }
            } else {
                let t = Instant::now();
                let back = apply::rollback(client, set, phase.id, &opts.apply, &mut ui);
                let back_err = match &back {
                    Ok(o) => outcome_error(o),
                    Err(e) => Some(e.to_string()),
                };
                if let Ok(o) = &back {
                    verdict = verdict.max(o.verdict());
                }
                timed(&mut steps, "rollback", t, back_err.is_none(), back.as_ref().ok().map(|o| o.verdict()));
                if let Some(e) = back_err {
                    // The rollback's transaction was undone: the phase stays
                    // applied, so later phases can still be rehearsed.
                    findings.push(Finding::RollbackFailed { error: e });
                    phases.push(PhaseRehearsal { phase: phase.id, name: phase.name.clone(), origin: origin_of(phase), reversible: true, steps, findings, verdict, result: "mismatch", ms: pstart.elapsed().as_secs_f64() * 1000.0 });
                    continue;
                }
                let t = Instant::now();
                let (f, _) = compare(client, &before, Against::BeforePhase, false)?;
                timed(&mut steps, "compare", t, f.iter().all(|x| !x.is_mismatch(opts.strict)), None);
                findings.extend(f);

                let t = Instant::now();
                let again = apply::migrate(client, set, Target::Phase(phase.id), &opts.apply, &mut ui)?;
                if let Some(e) = outcome_error(&again) {
                    timed(&mut steps, "re-apply", t, false, Some(again.verdict()));
                    findings.push(Finding::ReapplyFailed { error: e });
                    phases.push(PhaseRehearsal { phase: phase.id, name: phase.name.clone(), origin: origin_of(phase), reversible: true, steps, findings, verdict, result: "mismatch", ms: pstart.elapsed().as_secs_f64() * 1000.0 });
                    break;
                }
                timed(&mut steps, "re-apply", t, true, Some(again.verdict()));
                let t = Instant::now();
                let (f, now) = compare(client, &forward, Against::FirstForward, true)?;
                timed(&mut steps, "compare", t, f.iter().all(|x| !x.is_mismatch(opts.strict)), None);
                findings.extend(f);
                next_before = Some(now);
            }
        }

        if let Some(seed) = &set.seed {
            if seed.after_phase == phase.id && !seed.files.is_empty() {
                let t = Instant::now();
                apply::seed(client, set, opts.seed_rows)?;
                next_before = None; // the seed changed the state
                ui.progress(&format!("seed loaded after phase {} in {} ms", phase.id, t.elapsed().as_millis()));
                steps.push(StepTiming { step: "seed", ms: t.elapsed().as_secs_f64() * 1000.0, ok: true, verdict: None });
            }
        }
        if rehearse_this || !steps.is_empty() {
            let result = if findings.iter().any(|f| f.is_mismatch(opts.strict)) {
                "mismatch"
            } else if !phase.reversible {
                "forward only"
            } else if !rehearse_this {
                "applied"
            } else {
                "restored"
            };
            phases.push(PhaseRehearsal { phase: phase.id, name: phase.name.clone(), origin: origin_of(phase), reversible: phase.reversible, steps, findings, verdict, result, ms: pstart.elapsed().as_secs_f64() * 1000.0 });
        }
    }
    Ok(Rehearsal { phases, strict: opts.strict, ms: started.elapsed().as_secs_f64() * 1000.0 })
}
