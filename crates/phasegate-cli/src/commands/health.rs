//! `health [--watch]`: connectivity, probe latency, long transactions, lock
//! waits, invalid indexes and the current phase's checks; one line per round
//! in watch mode; the exit code says whether any round crossed a threshold.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde::Serialize;

use super::{exit_for, json, log_dir, Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::HealthArgs;
use crate::report;
use phasegate::{health, Verdict};

/// `health --format json`.
#[derive(Serialize)]
struct HealthJson<'a> {
    rounds: &'a [health::Round],
}

pub fn run(a: HealthArgs, ctx: &mut Ctx) -> Exit {
    let mut run = Run::new(ctx, HealthArgs::NAME, None, a.connect.set.format, log_dir(&a.connect));
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &HealthArgs, run: &mut Run) -> anyhow::Result<Report> {
    // The checks need the migration set; without one (no phases.toml in
    // --dir) health still probes the database.
    let set = if a.no_checks || !a.connect.set.dir.join(phasegate::MANIFEST).exists() {
        None
    } else {
        Some(phasegate::load_set(&a.connect.set.dir)?)
    };
    let opts = health::Options {
        probe: a.probe.clone(),
        probe_warn: a.warn,
        probe_fail: a.fail,
        long_transaction: a.max_transaction,
        lock_wait: a.max_lock_wait,
        checks: !a.no_checks,
    };
    let app = format!("phasegate health ({} pid {})", run.operator(), std::process::id());
    let started = Instant::now();
    let mut rounds: Vec<health::Round> = Vec::new();
    let mut n = 0;
    loop {
        n += 1;
        let round_start = Instant::now();
        let (r, client) = phasegate::health::round(n, a.connect.url(), &app, set.as_ref(), &opts);
        if let Some(c) = client {
            run.client = Some(c);
        }
        if a.watch {
            run.say(&round_line(&r));
        }
        rounds.push(r);
        if !a.watch || a.rounds.is_some_and(|max| n >= max) {
            break;
        }
        let next = round_start + a.interval;
        if a.duration.is_some_and(|d| next.duration_since(started) >= d) {
            break;
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()).max(Duration::from_millis(0)));
    }
    Ok(summarise(a, run, rounds))
}

fn summarise(a: &HealthArgs, run: &mut Run, rounds: Vec<health::Round>) -> Report {
    let verdict = rounds.iter().map(|r| r.verdict).max().unwrap_or(Verdict::Proceed);
    let unreachable = rounds.iter().filter(|r| !r.connected).count();
    let crossed = rounds.iter().filter(|r| r.verdict > Verdict::Proceed).count();
    let mut text = String::new();
    let last = rounds.last().expect("at least one round");
    if !a.watch {
        for f in &last.findings {
            let value = match f.unit {
                "ms" => format!("{:.0} ms", f.value),
                "s" => format!("{:.0} s", f.value),
                u => format!("{} {u}", f.value as i64),
            };
            text.push_str(&format!("{:<18} {:<5} {:>12}  {:<26} {}\n", f.name, f.level.as_str(), value, f.threshold, f.detail.clone().unwrap_or_default()));
        }
        if !last.checks.is_empty() {
            let mut table = Vec::new();
            let _ = report::decision_table(&mut table, &last.checks, phasegate::worst_verdict(&last.checks).into(), run.style);
            text.push_str(&String::from_utf8_lossy(&table));
        }
    } else {
        for r in rounds.iter().filter(|r| r.verdict > Verdict::Proceed) {
            for f in r.findings.iter().filter(|f| f.level > health::Level::Ok) {
                text.push_str(&format!("round {} {}: {}\n", r.round, f.name, f.detail.clone().unwrap_or_else(|| f.level.as_str().into())));
            }
        }
    }
    // A round that could not connect makes the run an error (exit 1), as the JSON says.
    let stated = if unreachable > 0 { report::RunVerdict::Error } else { verdict.into() };
    text.push_str(&format!("health: {} round(s), {crossed} crossed a threshold; verdict {}\n", rounds.len(), run.style.verdict(stated)));
    let exit = if unreachable > 0 { Exit::Failed } else { exit_for(verdict) };
    let checks = json(&last.checks);
    let error = (unreachable > 0).then(|| {
        let detail = rounds.iter().find(|r| !r.connected).and_then(|r| r.finding("connectivity")).and_then(|f| f.detail.clone()).unwrap_or_default();
        anyhow!("{unreachable} of {} round(s) could not reach the database: {detail}", rounds.len())
    });
    Report { verdict: Some(verdict), exit: Some(exit), error, checks, text, ..Default::default() }.with_body(&HealthJson { rounds: &rounds })
}

/// One line for a round, for watch mode.
fn round_line(r: &health::Round) -> String {
    let mut parts = vec![format!("{} round {:<3}", r.at, r.round)];
    for f in &r.findings {
        let short = match f.name {
            "connectivity" => "connect",
            "probe" => "probe",
            "long_transactions" => "oldest-tx",
            "lock_waits" => "lock-waits",
            "invalid_indexes" => "invalid-indexes",
            "checks" => "checks",
            other => other,
        };
        let value = match f.unit {
            "ms" => format!("{:.0}ms", f.value),
            "s" => format!("{:.0}s", f.value),
            _ => format!("{}", f.value as i64),
        };
        parts.push(format!("{short} {} {value}", f.level.as_str()));
    }
    parts.push(format!("=> {}", r.verdict));
    parts.join("  ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use phasegate::{health, Verdict};

    #[test]
    fn a_round_line_names_every_finding_and_the_verdict() {
        let f = |name, level, value, unit| health::Finding { name, level, value, unit, threshold: String::new(), detail: None };
        let r = health::Round {
            round: 2,
            at: "2026-01-22T10:00:00Z".into(),
            connected: true,
            findings: vec![f("connectivity", health::Level::Ok, 3.2, "ms"), f("probe", health::Level::Fail, 1204.0, "ms"), f("lock_waits", health::Level::Ok, 0.0, "waiting")],
            checks: Vec::new(),
            verdict: Verdict::Rollback,
        };
        assert_eq!(round_line(&r), "2026-01-22T10:00:00Z round 2    connect ok 3ms  probe FAIL 1204ms  lock-waits ok 0  => ROLLBACK");
    }
}
