//! `--fleet FILE` on migrate, rollback, validate and status: the fleet file
//! read, each database's URL looked up in the environment variable it
//! names (or found by the discovery query), the engine's fleet run driven
//! with a progress line per database and per group, and the result as a
//! table of databases by phase (text) or the `fleet` object (JSON). Every
//! database writes its own audit row carrying the fleet run's id.

use std::io::Write as _;
use std::path::Path;

use anyhow::anyhow;
use serde::Serialize;

use super::{json, log_dir, Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::{ConnectArgs, MigrateArgs, RollbackArgs, Shape, StatusArgs, TimeoutArgs, ValidateArgs};
use crate::report::{RunVerdict, Style};
use phasegate::{ledger, CheckResult, MigrationSet, Options, Target, Ui, Verdict};

/// Which command runs across the fleet.
pub enum Op<'a> {
    Migrate(&'a MigrateArgs),
    Rollback(&'a RollbackArgs),
    Validate(&'a ValidateArgs),
    Status(&'a StatusArgs),
}

impl Op<'_> {
    fn name(&self) -> &'static str {
        match self {
            Op::Migrate(_) => MigrateArgs::NAME,
            Op::Rollback(_) => RollbackArgs::NAME,
            Op::Validate(_) => ValidateArgs::NAME,
            Op::Status(_) => StatusArgs::NAME,
        }
    }
    fn connect(&self) -> &ConnectArgs {
        match self {
            Op::Migrate(a) => &a.connect,
            Op::Rollback(a) => &a.connect,
            Op::Validate(a) => &a.connect,
            Op::Status(a) => &a.connect,
        }
    }
    fn phase(&self) -> Option<u32> {
        match self {
            Op::Migrate(a) => a.phase,
            Op::Rollback(a) => Some(a.phase),
            Op::Validate(a) => a.phase,
            Op::Status(_) => None,
        }
    }
    fn changes(&self) -> bool {
        matches!(self, Op::Migrate(_) | Op::Rollback(_))
    }
    fn timeouts(&self) -> Option<&TimeoutArgs> {
        match self {
            Op::Migrate(a) => Some(&a.timeouts),
            Op::Rollback(a) => Some(&a.timeouts),
            Op::Validate(_) | Op::Status(_) => None,
        }
    }
}

/// `<command> --fleet FILE --format json`: the command's fields are the fleet run.
#[derive(Serialize)]
struct FleetJson<'a> {
    fleet: &'a phasegate::fleet::Outcome,
}

/// Runs `op` on every database of the fleet in `file`.
pub fn run(op: Op, file: &Path, ctx: &mut Ctx) -> Exit {
    let connect = op.connect();
    let mut run = Run::new(ctx, op.name(), op.phase(), connect.set.format, log_dir(connect));
    // No fleet-wide database to audit on: each database writes its own row.
    run.audit = false;
    run.yes = match &op {
        Op::Migrate(a) => a.confirm.yes,
        Op::Rollback(a) => a.confirm.yes,
        _ => false,
    };
    run.args = vec!["--fleet".into(), phasegate::display_path(file)];
    run.args.extend(match &op {
        Op::Migrate(a) => a.audit_args(),
        Op::Rollback(a) => a.audit_args(),
        Op::Validate(_) | Op::Status(_) => Vec::new(),
    });
    let report = body(&op, file, &mut run);
    run.finish(report)
}

fn body(op: &Op, file: &Path, run: &mut Run) -> anyhow::Result<Report> {
    let connect = op.connect();
    // DATABASE_URL exported in the shell is fine: a fleet names its own URLs.
    if connect.database_url.is_some() && connect.database_url != std::env::var("DATABASE_URL").ok() {
        return Ok(Report { exit: Some(Exit::Usage), error: Some(anyhow!("--fleet and --database-url cannot be used together: the fleet file names each database's URL")), ..Default::default() });
    }
    let set = phasegate::load_set(&connect.set.dir)?;
    let command = command(op, &set)?;
    let fleet = phasegate::fleet::load(file)?;
    // The engine reads no environment: the URLs are looked up here.
    let plan = fleet.members(&|var| std::env::var(var).ok()).and_then(|m| fleet.plan(m))?;
    // No watcher URL: each database's own run has its own connection.
    let apply = match op {
        Op::Migrate(a) => a.options(&run.run_id, ""),
        Op::Rollback(a) => a.options(&run.run_id, ""),
        Op::Validate(_) | Op::Status(_) => Options::default(),
    };
    let fleet_run = run.run_id.clone();
    let audit = audit_fn(op, run, &fleet_run);
    let opts = phasegate::fleet::Options {
        command,
        apply,
        lock_wait: op.timeouts().map(|t| t.lock_wait).unwrap_or_default(),
        application_name: format!("phasegate {} --fleet ({} pid {})", op.name(), run.operator(), std::process::id()),
        fleet_run,
        audit: Some(&audit),
    };
    run.say(&format!("fleet {}: {} databases in {} groups, fleet run {}", plan.file, plan.databases(), plan.groups.len(), opts.fleet_run));
    let style = run.style;
    let mut progress = Progress { run, style, plaintext: Default::default() };
    let outcome = phasegate::fleet::run(&plan, &set, &opts, &mut progress);
    progress.plaintext_summary();
    let mut text = String::new();
    table(&mut text, &set, &outcome, matches!(op, Op::Status(_)), style);
    summary(&mut text, &outcome, op.changes());
    let report = Report { verdict: Some(outcome.verdict()), exit: Some(exit(&outcome)), text, ..Default::default() };
    // Straight from the structs: a thousand databases' value tree would
    // cost the runner several times the document's size (docs/fleet.md).
    Ok(report.with_raw_body(&FleetJson { fleet: &outcome }))
}

/// The engine command, after the checks a single-database run makes
/// before connecting (the phase exists, it can be rolled back).
fn command(op: &Op, set: &MigrationSet) -> phasegate::Result<phasegate::fleet::Command> {
    Ok(match op {
        Op::Migrate(a) => {
            let target = match (a.phase, a.to_version) {
                (Some(p), _) => Target::Phase(p),
                (None, Some(v)) => Target::Version(v),
                (None, None) => Target::Latest,
            };
            if let Target::Phase(p) = target {
                set.phase(p)?;
            }
            phasegate::fleet::Command::Migrate(target)
        }
        Op::Rollback(a) => {
            let phase = set.phase(a.phase)?;
            phasegate::refuse_irreversible(phase)?;
            phasegate::fleet::Command::Rollback(a.phase)
        }
        Op::Validate(a) => phasegate::fleet::Command::Validate { phase: a.phase, when: a.when.map(Into::into) },
        Op::Status(_) => phasegate::fleet::Command::Status,
    })
}

/// A database's exit code, as a single-database run would have it.
fn db_exit(r: &phasegate::fleet::DbReport) -> Exit {
    match r.state {
        phasegate::fleet::DbState::Failed | phasegate::fleet::DbState::Unreachable => Exit::Failed,
        phasegate::fleet::DbState::Rollback => Exit::Rollback,
        _ if !r.drift.is_empty() => Exit::Failed,
        _ => super::exit_for(r.verdict.unwrap_or(Verdict::Proceed)),
    }
}

/// A database's verdict as a single-database run would state it: ERROR
/// when it failed or could not be reached.
fn db_verdict(r: &phasegate::fleet::DbReport) -> Option<RunVerdict> {
    match r.state {
        phasegate::fleet::DbState::Failed | phasegate::fleet::DbState::Unreachable => Some(RunVerdict::Error),
        _ => r.verdict.map(RunVerdict::from),
    }
}

/// The fleet's exit code: 4 when any gate said ROLLBACK, else 1 when any
/// database failed, could not be reached or (status) drifted, else 3 for
/// a REVIEW, else 0.
fn exit(o: &phasegate::fleet::Outcome) -> Exit {
    let codes: Vec<Exit> = o.databases.iter().filter(|d| d.state != phasegate::fleet::DbState::NotStarted).map(db_exit).collect();
    [Exit::Rollback, Exit::Failed, Exit::Review].into_iter().find(|c| codes.contains(c)).unwrap_or(Exit::Ok)
}

/// The audit row each database writes: its own run, with the fleet run's id.
fn audit_fn(op: &Op, run: &Run, fleet_run: &str) -> impl Fn(&phasegate::fleet::DbReport) -> ledger::RunRecord + Sync {
    let (command, args, phase) = (op.name().to_string(), run.args.clone(), op.phase().map(|p| p as i32));
    let (os_user, client_host) = (run.env().os_user.clone(), run.env().hostname.clone());
    let log_file = run.log_path().map(phasegate::display_path);
    let fleet_run = fleet_run.to_string();
    move |r| ledger::RunRecord {
        run_id: r.run_id.clone().unwrap_or_else(phasegate::ledger::new_run_id),
        command: command.clone(),
        args: args.clone(),
        phase,
        started_at: r.started_at.unwrap_or_else(time::OffsetDateTime::now_utc),
        duration_ms: r.duration_ms as i64,
        client_host: client_host.clone(),
        os_user: os_user.clone(),
        verdict: db_verdict(r).map(|v| v.to_string()),
        exit_code: db_exit(r).code(),
        error: r.error.clone(),
        steps: json(&r.steps),
        checks: json(&r.checks),
        log_file: log_file.clone(),
        fleet_run: Some(fleet_run.clone()),
        fleet_member: Some(r.database.clone()),
    }
}

/// The calling thread's `Ui` during a fleet run: a line per database as it
/// finishes (with its group's counts), a line per group, and every
/// database's own progress in the log file.
struct Progress<'r, 'c, 'a, 'b> {
    run: &'r mut Run<'c, 'a, 'b>,
    style: Style,
    /// Per server, the databases whose `prefer` fell back to plaintext:
    /// stderr warns at a server's first and sums up at the end (a thousand
    /// databases on four servers would otherwise print a thousand
    /// warnings); the log and the JSON name every one.
    plaintext: std::collections::BTreeMap<String, usize>,
}

impl Progress<'_, '_, '_, '_> {
    fn fell_back(&mut self, database: &str, target: &str, transport: phasegate::tls::Transport) {
        let server = phasegate::fleet::server_of(target);
        let line = format!("warning: {database} connected in {transport}");
        let seen = self.plaintext.entry(server.clone()).or_default();
        *seen += 1;
        if *seen == 1 {
            self.run.note(&format!("{line}; other databases of {server} that fall back are counted at the end and named in the log and the JSON"));
        } else {
            self.run.log_line(&line);
        }
    }

    fn plaintext_summary(&mut self) {
        if self.plaintext.is_empty() {
            return;
        }
        let total: usize = self.plaintext.values().sum();
        let servers: Vec<String> = self.plaintext.iter().map(|(s, n)| format!("{s} ({n})")).collect();
        self.run.note(&format!("warning: {total} database(s) connected in plaintext (sslmode=prefer fell back), per server: {}", servers.join(", ")));
    }
}

impl Ui for Progress<'_, '_, '_, '_> {
    fn confirm(&mut self, prompt: &str, expected: &str) -> bool {
        self.run.confirm(prompt, expected)
    }
    fn progress(&mut self, line: &str) {
        self.run.say(line);
    }
    fn check_done(&mut self, _result: &CheckResult) {}
}

impl phasegate::fleet::FleetUi for Progress<'_, '_, '_, '_> {
    fn fleet(&mut self, event: phasegate::fleet::Event<'_>) {
        match event {
            phasegate::fleet::Event::GroupStarted { group, index, groups } => self.run.say(&format!(
                "group {}/{groups} {}: {} database(s), parallel {}, on_error {}",
                index + 1,
                group.name,
                group.members.len(),
                group.parallel,
                group.on_error.as_str()
            )),
            phasegate::fleet::Event::DatabaseStarted { database, .. } => self.run.log_line(&format!("[{database}] started")),
            phasegate::fleet::Event::Line { database, line } => self.run.log_line(&format!("[{database}] {line}")),
            phasegate::fleet::Event::DatabaseFinished { report: r, counts: c } => {
                let verdict = db_verdict(r).map(|v| self.style.verdict(v)).unwrap_or_else(|| "-".into());
                self.run.say(&format!(
                    "  {:<20} {:<12} {verdict:<8} {:>7.2} s   [{}: {} done, {} running, {} failed of {}]",
                    r.database,
                    r.state.as_str(),
                    r.duration_ms / 1000.0,
                    r.group,
                    c.done,
                    c.running,
                    c.failed,
                    c.total
                ));
                if let Some(e) = &r.error {
                    self.run.say(&format!("    error: {e}"));
                }
                if let Some(t) = r.connection.filter(|t| t.fell_back()) {
                    self.fell_back(&r.database, &r.target, t);
                }
            }
            phasegate::fleet::Event::GroupFinished { group: g } => {
                self.run.say(&format!("group {}: {} done, {} failed of {}", g.name, g.counts.done, g.counts.failed, g.counts.total))
            }
            phasegate::fleet::Event::Halted { halt } => self.run.say(&format!("halted after group {}: {}", halt.group, halt_reason(halt.reason, &halt.databases))),
        }
    }
}

fn halt_reason(reason: phasegate::fleet::HaltReason, dbs: &[String]) -> String {
    let dbs = dbs.join(", ");
    match reason {
        phasegate::fleet::HaltReason::Rollback => format!("a check said ROLLBACK on {dbs} (its transaction was rolled back); later groups did not start"),
        phasegate::fleet::HaltReason::Error => format!("{dbs} failed and the group's on_error is halt; later groups did not start"),
        phasegate::fleet::HaltReason::Review => format!("a check said REVIEW on {dbs}; a human must look before the next group (or pass --accept-review)"),
        phasegate::fleet::HaltReason::NotConfirmed => "the operator did not confirm; nothing else started".to_string(),
    }
}

/// The table of databases by phase: each phase's state after the run, the
/// database's state, verdict and time.
fn table(out: &mut String, set: &MigrationSet, o: &phasegate::fleet::Outcome, drift: bool, style: Style) {
    let wd = o.databases.iter().map(|d| d.database.len()).max().unwrap_or(8).max(8);
    let wg = o.databases.iter().map(|d| d.group.len()).max().unwrap_or(5).max(5);
    let mut head = format!("{:<wd$}  {:<wg$}", "DATABASE", "GROUP");
    for p in &set.phases {
        head.push_str(&format!("  {:<8}", format!("PHASE {}", p.id)));
    }
    if drift {
        head.push_str("  DRIFT");
    }
    head.push_str(&format!("  {:<12}  {:<8}  {:>8}", "STATE", "VERDICT", "TIME"));
    out.push_str(head.trim_end());
    out.push('\n');
    for d in &o.databases {
        let mut line = format!("{:<wd$}  {:<wg$}", d.database, d.group);
        for p in &set.phases {
            let cell = d.phases.iter().find(|c| c.phase == p.id).map(|c| short(c.state)).unwrap_or("?");
            line.push_str(&format!("  {cell:<8}"));
        }
        if drift {
            let n = if d.state == phasegate::fleet::DbState::Done { d.drift.len().to_string() } else { "?".into() };
            line.push_str(&format!("  {n:<5}"));
        }
        // Pad before colouring: escape codes have no width.
        let verdict = match db_verdict(d) {
            Some(v) => format!("{}{}", style.verdict(v), " ".repeat(8usize.saturating_sub(v.to_string().len()))),
            None => format!("{:<8}", "-"),
        };
        let time = if d.state == phasegate::fleet::DbState::NotStarted { "-".to_string() } else { format!("{:.2} s", d.duration_ms / 1000.0) };
        line.push_str(&format!("  {:<12}  {verdict}  {time:>8}", d.state.as_str()));
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// A phase's state in a table cell.
fn short(s: phasegate::fleet::PhaseState) -> &'static str {
    match s {
        phasegate::fleet::PhaseState::PartlyApplied => "partly",
        other => other.as_str(),
    }
}

/// Counts, errors, the halt, and how to resume.
fn summary(out: &mut String, o: &phasegate::fleet::Outcome, changes: bool) {
    let mut w = Vec::new();
    for d in o.databases.iter().filter(|d| d.error.is_some()) {
        let _ = writeln!(w, "{}: {}", d.database, d.error.as_deref().unwrap_or_default());
    }
    let states = [
        phasegate::fleet::DbState::Done,
        phasegate::fleet::DbState::AlreadyDone,
        phasegate::fleet::DbState::Rollback,
        phasegate::fleet::DbState::Failed,
        phasegate::fleet::DbState::Unreachable,
        phasegate::fleet::DbState::NotStarted,
    ];
    let counts: Vec<String> = states.iter().map(|s| (s, o.count(*s))).filter(|(_, n)| *n > 0).map(|(s, n)| format!("{n} {}", s.as_str())).collect();
    let _ = writeln!(w, "fleet run {}: {} databases: {}", o.fleet_run, o.databases.len(), counts.join(", "));
    if let Some(h) = &o.halt {
        let _ = writeln!(w, "halted after group {}: {}", h.group, halt_reason(h.reason, &h.databases));
    }
    if changes && !o.complete() {
        let _ = writeln!(w, "run the same command again to resume: databases already done are skipped, the others go on");
    }
    out.push_str(&String::from_utf8_lossy(&w));
}
