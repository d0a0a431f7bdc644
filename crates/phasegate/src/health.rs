//! The health of a live database (`health`, docs/commands.md): one round connects
//! afresh (connectivity), times a probe query against warn/fail thresholds,
//! looks for long-running transactions, lock waits and invalid indexes, and
//! runs the current phase's checks read-only. `commands::health` repeats
//! rounds in watch mode.

use std::time::{Duration, Instant};

use postgres::Client;
use serde::Serialize;

use crate::apply;
use crate::check::{self, CheckResult, Verdict};
use crate::db;
use crate::error::{pg_message, sqlstate, SqlState};
use crate::set::MigrationSet;

/// Thresholds and what to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The probe query (default `SELECT 1`).
    pub probe: String,
    /// Probe latency at or above this warns (default 500 ms).
    pub probe_warn: Duration,
    /// Probe latency at or above this fails (default 1000 ms); the probe is
    /// cancelled at twice this.
    pub probe_fail: Duration,
    /// A transaction open longer than this warns (default 5 min).
    pub long_transaction: Duration,
    /// A lock wait longer than this warns (default 5 s).
    pub lock_wait: Duration,
    /// Run the current phase's checks.
    pub checks: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            probe: "SELECT 1".into(),
            probe_warn: Duration::from_millis(500),
            probe_fail: Duration::from_millis(1000),
            long_transaction: Duration::from_secs(300),
            lock_wait: Duration::from_secs(5),
            checks: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
    /// The verdict a level stands for: a warning asks for a human (REVIEW),
    /// a failure for action (ROLLBACK).
    pub fn verdict(self) -> Verdict {
        match self {
            Level::Ok => Verdict::Proceed,
            Level::Warn => Verdict::Review,
            Level::Fail => Verdict::Rollback,
        }
    }
}

/// One measurement of a round.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// connectivity, probe, long_transactions, lock_waits, invalid_indexes, checks
    pub name: &'static str,
    pub level: Level,
    pub value: f64,
    pub unit: &'static str,
    pub threshold: String,
    pub detail: Option<String>,
}

/// One round of health checks.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub round: u32,
    pub at: String,
    pub connected: bool,
    pub findings: Vec<Finding>,
    pub checks: Vec<CheckResult>,
    pub verdict: Verdict,
}

impl Round {
    pub fn finding(&self, name: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.name == name)
    }
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

fn now_utc() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
        .unwrap_or_default()
}

/// Runs one round against `url`; returns the connection for reuse (audit)
/// when it could connect.
pub fn round(n: u32, url: &str, application_name: &str, set: Option<&MigrationSet>, opts: &Options) -> (Round, Option<Client>) {
    let at = now_utc();
    let mut findings = Vec::new();
    let started = Instant::now();
    let (mut client, transport) = match db::connect_reporting(url, application_name) {
        Ok(c) => c,
        Err(e) => {
            findings.push(Finding { name: "connectivity", level: Level::Fail, value: started.elapsed().as_secs_f64() * 1000.0, unit: "ms", threshold: "reachable".into(), detail: Some(e.to_string()) });
            return (Round { round: n, at, connected: false, findings, checks: Vec::new(), verdict: Verdict::Rollback }, None);
        }
    };
    // How it travels: a prefer that fell back to plaintext shows here.
    let detail = Some(transport.to_string());
    findings.push(Finding { name: "connectivity", level: Level::Ok, value: started.elapsed().as_secs_f64() * 1000.0, unit: "ms", threshold: "reachable".into(), detail });
    findings.push(probe(&mut client, opts));
    findings.push(long_transactions(&mut client, opts));
    findings.push(lock_waits(&mut client, opts));
    findings.push(invalid_indexes(&mut client));
    let mut checks = Vec::new();
    if let (true, Some(set)) = (opts.checks, set) {
        match apply::validate(&mut client, set, None, None) {
            Ok(results) => {
                let v = check::worst(&results);
                let level = match v {
                    Verdict::Proceed => Level::Ok,
                    Verdict::Review => Level::Warn,
                    Verdict::Rollback => Level::Fail,
                };
                let failing: Vec<&str> = results.iter().filter(|r| r.verdict > Verdict::Proceed).map(|r| r.check.as_str()).collect();
                findings.push(Finding {
                    name: "checks",
                    level,
                    value: results.len() as f64,
                    unit: "checks",
                    threshold: "every check PROCEED".into(),
                    detail: (!failing.is_empty()).then(|| format!("not PROCEED: {}", failing.join(", "))),
                });
                checks = results;
            }
            Err(e) => findings.push(Finding { name: "checks", level: Level::Fail, value: 0.0, unit: "checks", threshold: "every check PROCEED".into(), detail: Some(e.to_string()) }),
        }
    }
    let verdict = findings.iter().map(|f| f.level.verdict()).chain(checks.iter().map(|c| c.verdict)).max().unwrap_or(Verdict::Proceed);
    (Round { round: n, at, connected: true, findings, checks, verdict }, Some(client))
}

fn probe(client: &mut Client, opts: &Options) -> Finding {
    let threshold = format!("warn {} / fail {}", ms(opts.probe_warn), ms(opts.probe_fail));
    let cancel_at = opts.probe_fail * 2;
    if let Err(e) = client.batch_execute(&format!("SET statement_timeout = '{}'", ms(cancel_at))) {
        return Finding { name: "probe", level: Level::Fail, value: 0.0, unit: "ms", threshold, detail: Some(pg_message(&e)) };
    }
    let started = Instant::now();
    let res = client.simple_query(&opts.probe);
    let elapsed = started.elapsed();
    let _ = client.batch_execute("RESET statement_timeout");
    let value = elapsed.as_secs_f64() * 1000.0;
    let (level, detail) = match res {
        Err(e) if sqlstate(&e) == Some(&SqlState::QUERY_CANCELED) => (Level::Fail, Some(format!("cancelled after {}: `{}` did not finish", ms(cancel_at), opts.probe))),
        Err(e) => (Level::Fail, Some(format!("`{}` failed: {}", opts.probe, pg_message(&e)))),
        Ok(_) if elapsed >= opts.probe_fail => (Level::Fail, Some(format!("`{}` took {} (fail at {})", opts.probe, ms(elapsed), ms(opts.probe_fail)))),
        Ok(_) if elapsed >= opts.probe_warn => (Level::Warn, Some(format!("`{}` took {} (warn at {})", opts.probe, ms(elapsed), ms(opts.probe_warn)))),
        Ok(_) => (Level::Ok, None),
    };
    Finding { name: "probe", level, value, unit: "ms", threshold, detail }
}

fn long_transactions(client: &mut Client, opts: &Options) -> Finding {
    let threshold = format!("warn over {}s", opts.long_transaction.as_secs());
    let secs = opts.long_transaction.as_secs_f64();
    let res = client.query_one(
        "SELECT coalesce(max(extract(epoch FROM now() - xact_start)), 0)::float8,
                count(*) FILTER (WHERE extract(epoch FROM now() - xact_start)::float8 > $1::float8),
                (SELECT format('oldest: pid %s (%s, %s) open %ss: %s', a.pid, coalesce(nullif(a.application_name, ''), '?'), a.state,
                               extract(epoch FROM now() - a.xact_start)::bigint, left(regexp_replace(a.query, '\\s+', ' ', 'g'), 80))
                 FROM pg_stat_activity a
                 WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL
                 ORDER BY a.xact_start LIMIT 1)
         FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL",
        &[&secs],
    );
    match res {
        Ok(r) => {
            let oldest: f64 = r.get(0);
            let over: i64 = r.get(1);
            let level = if over > 0 { Level::Warn } else { Level::Ok };
            let detail = (over > 0).then(|| format!("{over} over the threshold; {}", r.get::<_, Option<String>>(2).unwrap_or_default()));
            Finding { name: "long_transactions", level, value: oldest, unit: "s", threshold, detail }
        }
        Err(e) => Finding { name: "long_transactions", level: Level::Fail, value: 0.0, unit: "s", threshold, detail: Some(pg_message(&e)) },
    }
}

fn lock_waits(client: &mut Client, opts: &Options) -> Finding {
    let threshold = format!("warn over {}", ms(opts.lock_wait));
    let secs = opts.lock_wait.as_secs_f64();
    let res = client.query_one(
        "WITH waiting AS (
           SELECT DISTINCT ON (a.pid) a.pid, coalesce(nullif(a.application_name, ''), '?') AS app,
                  extract(epoch FROM now() - coalesce(a.state_change, a.query_start))::float8 AS waited,
                  pg_blocking_pids(a.pid) AS blockers, left(regexp_replace(a.query, '\\s+', ' ', 'g'), 80) AS query
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE NOT l.granted AND a.datname = current_database() AND a.pid <> pg_backend_pid()
         )
         SELECT count(*), count(*) FILTER (WHERE waited > $1::float8), coalesce(max(waited), 0)::float8,
                (SELECT format('longest: pid %s (%s) waiting %ss on pid(s) %s: %s', pid, app, round(waited::numeric, 1), array_to_string(blockers, ','), query)
                 FROM waiting ORDER BY waited DESC LIMIT 1)
         FROM waiting",
        &[&secs],
    );
    match res {
        Ok(r) => {
            let count: i64 = r.get(0);
            let over: i64 = r.get(1);
            let level = if over > 0 { Level::Warn } else { Level::Ok };
            let detail = (count > 0).then(|| format!("{count} waiting, {over} over the threshold; {}", r.get::<_, Option<String>>(3).unwrap_or_default()));
            Finding { name: "lock_waits", level, value: count as f64, unit: "waiting", threshold, detail }
        }
        Err(e) => Finding { name: "lock_waits", level: Level::Fail, value: 0.0, unit: "waiting", threshold, detail: Some(pg_message(&e)) },
    }
}

fn invalid_indexes(client: &mut Client) -> Finding {
    let threshold = "none".to_string();
    let res = client.query_one(
        "SELECT count(*), string_agg(quote_ident(n.nspname) || '.' || quote_ident(c.relname), ', ' ORDER BY n.nspname, c.relname)
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
        &[],
    );
    match res {
        Ok(r) => {
            let count: i64 = r.get(0);
            let level = if count > 0 { Level::Warn } else { Level::Ok };
            let detail = r.get::<_, Option<String>>(1).map(|names| format!("{names} (a failed CREATE INDEX CONCURRENTLY, or a build in progress; drop and rebuild)"));
            Finding { name: "invalid_indexes", level, value: count as f64, unit: "indexes", threshold, detail }
        }
        Err(e) => Finding { name: "invalid_indexes", level: Level::Fail, value: 0.0, unit: "indexes", threshold, detail: Some(pg_message(&e)) },
    }
}
