//! `bench --only verify-corpus`: `verify --from diesel` on the realistic
//! generated history (`history`) against `psql -1 -f` of every forward
//! file once, on the same server in the same run, with where verify's time
//! goes (per kind of step, summed over the phases) and the share of the
//! broken migrations it finds.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::corpus::{self, Layout};
use super::history::{self, History};
use super::verify::{on_fresh, psql_file};
use super::{figure, Figure, Silent};
use phasegate::{MigrationSet, Options, Server};

/// Migrations in the history.
const MIGRATIONS: usize = 250;

/// The history written in the diesel layout to a temporary folder, and its set.
pub fn history_set(n: usize) -> Result<(History, tempfile::TempDir, MigrationSet)> {
    let h = history::history(n);
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    corpus::write(&h.migrations, Layout::Diesel, dir.path()).context("writing the generated history")?;
    let set = phasegate::foreign::load(phasegate::foreign::Layout::Diesel, dir.path())?;
    Ok((h, dir, set))
}

/// What verify found on the history: broken migrations flagged, and clean
/// ones flagged (false alarms), by 0-based position.
#[derive(Debug, PartialEq, Eq)]
pub struct Found {
    pub broken_found: Vec<usize>,
    pub broken_missed: Vec<usize>,
    pub false_alarms: Vec<usize>,
}

pub fn found(h: &History, r: &phasegate::rehearse::Rehearsal) -> Found {
    let flagged = |i: usize| r.phases.get(i).is_some_and(|p| p.result == phasegate::rehearse::PhaseResult::Mismatch);
    let broken: Vec<usize> = h.broken.iter().map(|(i, _)| *i).collect();
    Found {
        broken_found: broken.iter().copied().filter(|i| flagged(*i)).collect(),
        broken_missed: broken.iter().copied().filter(|i| !flagged(*i)).collect(),
        false_alarms: (0..r.phases.len()).filter(|i| flagged(*i) && !broken.contains(i)).collect(),
    }
}

/// Milliseconds per kind of step (snapshot, migrate, rollback, compare,
/// re-apply, ...), summed over every phase, and the rest of the wall time.
fn per_step(r: &phasegate::rehearse::Rehearsal) -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    for s in r.phases.iter().flat_map(|p| &p.steps) {
        *out.entry(s.step).or_insert(0.0) += s.ms;
    }
    out
}

fn rehearse(server: &Server, set: &MigrationSet, full_compare: bool) -> Result<(phasegate::rehearse::Rehearsal, f64)> {
    // As `verify --from` runs: another tool's down scripts, without backups.
    let apply = Options { backup: false, ..Default::default() };
    let opts = phasegate::rehearse::Options { phase: None, strict: false, seed_rows: None, setup: Vec::new(), full_compare, apply };
    on_fresh(server, "vh_pg", |name, _| Ok(phasegate::rehearse(server, name, set, &opts, &mut Silent)?))
}

pub(super) fn run(server: &Server, say: &mut dyn FnMut(&str)) -> Result<Vec<Figure>> {
    say(&format!("verify-corpus: {MIGRATIONS} generated migrations shaped like a real history"));
    let (h, dir, set) = history_set(MIGRATIONS)?;
    say("verify-corpus: psql -1 -f of every forward file");
    let ((), psql_ms) = on_fresh(server, "vh_psql", |_, url| set.phases.iter().try_for_each(|p| psql_file(url, &p.steps[0].forward, dir.path()).map(|_| ())))?;
    say("verify-corpus: every forward file in one psql session, each in a transaction of its own");
    let ((), session_ms) = on_fresh(server, "vh_session", |_, url| one_session(url, &set, dir.path()))?;
    let mut figures = Vec::new();
    for full in [false, true] {
        say(&format!("verify-corpus: verify --from diesel{}", if full { " --full-compare" } else { "" }));
        let (r, ms_taken) = rehearse(server, &set, full)?;
        let f = found(&h, &r);
        let steps = per_step(&r);
        let accounted: f64 = steps.values().sum();
        let breakdown = steps.iter().map(|(k, v)| format!("{k} {:.1}s", v / 1000.0)).collect::<Vec<_>>().join(", ");
        let overhead = ms_taken / psql_ms;
        let over_session = ms_taken / session_ms;
        let outside = ms_taken - accounted;
        let all_found = f.broken_missed.is_empty() && f.false_alarms.is_empty();
        let values = serde_json::json!({
            "migrations": MIGRATIONS, "full_compare": full, "phasegate_ms": ms_taken, "psql_apply_ms": psql_ms, "overhead": overhead,
            "psql_one_session_ms": session_ms, "overhead_one_session": over_session,
            "per_step_ms": steps, "outside_steps_ms": outside,
            "broken": h.broken.len(), "broken_found": f.broken_found.len(), "broken_missed": f.broken_missed, "false_alarms": f.false_alarms,
        });
        figures.push(figure(
            &format!("verify --from{} on a realistic 250-migration history vs psql -1 -f of every forward file", if full { " --full-compare" } else { "" }),
            format!(
                "phasegate {:.1} s vs psql {:.1} s = {overhead:.2}x (vs one psql session {:.1} s = {over_session:.2}x); broken found {}/{} ({} false alarms); steps: {breakdown}, outside steps {:.1}s",
                ms_taken / 1000.0,
                psql_ms / 1000.0,
                session_ms / 1000.0,
                f.broken_found.len(),
                h.broken.len(),
                f.false_alarms.len(),
                outside / 1000.0
            ),
            "<= 3x, every broken migration found",
            Some(overhead <= 3.0 && all_found),
            values,
        ));
    }
    Ok(figures)
}

/// Every forward file through one psql process and connection, each in a
/// transaction of its own (`BEGIN` / `COMMIT` around `\i`, none around a
/// file that runs outside one): the SQL's own cost, without a process and a
/// connection per file.
fn one_session(url: &str, set: &MigrationSet, scratch: &std::path::Path) -> Result<()> {
    let mut script = String::from("\\set ON_ERROR_STOP 1\n");
    for (i, p) in set.phases.iter().enumerate() {
        let f = &p.steps[0].forward;
        let path = scratch.join(format!("session_{i}.sql"));
        std::fs::write(&path, &f.text).with_context(|| path.display().to_string())?;
        let (begin, commit) = if f.directives.no_transaction { ("", "") } else { ("BEGIN;\n", "COMMIT;\n") };
        script.push_str(&format!("{begin}\\i {}\n{commit}", path.display()));
    }
    let all = scratch.join("session.sql");
    std::fs::write(&all, script).with_context(|| all.display().to_string())?;
    let out = std::process::Command::new("psql").args(["-q", "-X"]).arg("-f").arg(&all).arg(url).output().context("running psql (install postgresql-client)")?;
    anyhow::ensure!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(())
}
