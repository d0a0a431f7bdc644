//! `health [--watch]`: connectivity, probe latency, long transactions, lock
//! waits, invalid indexes and the current phase's checks; one line per round
//! in watch mode; the exit code says whether any round crossed a threshold.

use std::time::{Duration, Instant};

use super::{exit_for, failed, log_dir, Ctx, Report, Run};
use phasegate::check::Verdict;
use crate::cli::HealthArgs;
use phasegate::health::{self, Round};
use crate::report;
use phasegate::set;

pub fn run(a: HealthArgs, ctx: &mut Ctx) -> i32 {
    let mut run = Run::new(ctx, "health", None, a.connect.set.format, Some(log_dir(&a.connect)));
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &HealthArgs, run: &mut Run) -> Report {
    // The checks need the migration set; without one (no phases.toml in
    // --dir) health still probes the database.
    let set = if a.no_checks || !a.connect.set.dir.join(set::MANIFEST).exists() {
        None
    } else {
        match set::load(&a.connect.set.dir) {
            Ok(s) => Some(s),
            Err(e) => return failed(e),
        }
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
    let mut rounds: Vec<Round> = Vec::new();
    let mut n = 0;
    loop {
        n += 1;
        let round_start = Instant::now();
        let (r, client) = health::round(n, &a.connect.database_url, &app, set.as_ref(), &opts);
        if let Some(c) = client {
            run.client = Some(c);
        }
        if a.watch {
            run.say(&health::round_line(&r));
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
    summarise(a, run, rounds)
}

fn summarise(a: &HealthArgs, run: &mut Run, rounds: Vec<Round>) -> Report {
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
            let _ = report::decision_table(&mut table, &last.checks, run.style);
            text.push_str(&String::from_utf8_lossy(&table));
        }
    } else {
        for r in rounds.iter().filter(|r| r.verdict > Verdict::Proceed) {
            for f in r.findings.iter().filter(|f| f.level > health::Level::Ok) {
                text.push_str(&format!("round {} {}: {}\n", r.round, f.name, f.detail.clone().unwrap_or_else(|| f.level.as_str().into())));
            }
        }
    }
    text.push_str(&format!("health: {} round(s), {crossed} crossed a threshold; verdict {}\n", rounds.len(), run.style.verdict(verdict)));
    let exit = if unreachable > 0 { 1 } else { exit_for(verdict) };
    let checks = serde_json::to_value(&last.checks).unwrap_or_default();
    let mut json = serde_json::Map::new();
    json.insert("rounds".into(), serde_json::to_value(&rounds).unwrap_or_default());
    let error = (unreachable > 0).then(|| {
        let detail = rounds.iter().find(|r| !r.connected).and_then(|r| r.finding("connectivity")).and_then(|f| f.detail.clone()).unwrap_or_default();
        phasegate::Error::Refused(format!("{unreachable} of {} round(s) could not reach the database: {detail}", rounds.len()))
    });
    Report { verdict: Some(verdict), exit: Some(exit), error, checks, json, text, ..Default::default() }
}
