//! Fleets (docs/fleet.md): one migration set rolled across many databases, group
//! by group (a canary first), each database through the ordinary
//! single-database engine with its own connection, migration lock, ledger,
//! checks, backups and audit row.
//!
//! `file` reads the fleet file; `discover` runs a discovery query on a
//! catalog database; [`Fleet::members`] turns both into [`Member`]s (the
//! caller looks the environment variables up: the engine reads none) and
//! [`Fleet::plan`] sorts them into groups; `schedule` runs a plan (a pool of
//! `parallel` workers per group, the halt policies, events funnelled to the
//! calling thread's `Ui`) and `work` is what a worker does to one database
//! (including the cheap skip of databases an earlier run finished, which is
//! how a re-run resumes).

mod discover;
mod file;
mod gauge;
mod schedule;
mod work;

use std::collections::HashSet;

use serde::Serialize;

use crate::apply::{Options as ApplyOptions, StepOutcome, Target};
use crate::check::{CheckResult, Verdict, When};
use crate::error::{Error, Location, Result};
use crate::ledger::{Drift, RunRecord};
use crate::tls::Transport;
use crate::ui::Ui;

pub use file::{load, parse, Discovery, Fleet, Group, Listed, OnError, Select};
pub use gauge::{server_of, ServerLoad, Timings};
pub use schedule::run;

/// One database of a fleet, its URL resolved.
#[derive(Clone)]
pub struct Member {
    pub name: String,
    /// The connection string (may carry a password: show it only through
    /// `db::redact`, as [`Member::target`] does).
    pub url: String,
    /// Where the URL came from: the variable a listed database names, or
    /// `None` for a database the discovery query found.
    pub url_env: Option<String>,
}

impl Member {
    /// The URL with its password masked.
    pub fn target(&self) -> String {
        crate::db::redact(&self.url)
    }
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member").field("name", &self.name).field("url", &self.target()).field("url_env", &self.url_env).finish()
    }
}

/// A group with its databases, ready to run.
#[derive(Debug, Clone)]
pub struct PlannedGroup {
    pub name: String,
    pub parallel: usize,
    pub on_error: OnError,
    pub members: Vec<Member>,
}

/// The fleet's groups in order, every database in exactly one.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The fleet file, as the operator named it.
    pub file: String,
    pub groups: Vec<PlannedGroup>,
}

impl Plan {
    pub fn databases(&self) -> usize {
        self.groups.iter().map(|g| g.members.len()).sum()
    }
}

impl Fleet {
    /// The fleet's databases with their URLs: each listed database's from
    /// the variable it names (`lookup` reads it), then the discovery query's
    /// rows, run on the catalog database whose URL `lookup` gives.
    pub fn members(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Member>> {
        let mut out = Vec::new();
        for d in &self.databases {
            let url = lookup(&d.url_env).filter(|u| !u.is_empty()).ok_or_else(|| Error::FleetUrlUnset {
                at: Location::line(&self.path, d.line),
                database: d.name.clone(),
                variable: d.url_env.clone(),
            })?;
            out.push(Member { name: d.name.clone(), url, url_env: Some(d.url_env.clone()) });
        }
        if let Some(disc) = &self.discovery {
            let catalog = lookup(&disc.catalog_env)
                .filter(|u| !u.is_empty())
                .ok_or_else(|| Error::CatalogUrlUnset { at: Location::line(&self.path, disc.line), variable: disc.catalog_env.clone() })?;
            let listed: HashSet<&str> = self.databases.iter().map(|d| d.name.as_str()).collect();
            let found = discover::run(&self.path, disc, &catalog)?;
            if let Some(m) = found.iter().find(|m| listed.contains(m.name.as_str())) {
                return Err(Error::Discovery {
                    at: Location::line(&self.path, disc.query_line),
                    message: format!("it returned database {}, which a [[database]] entry names too", m.name),
                });
            }
            out.extend(found);
        }
        Ok(out)
    }

    /// Sorts `members` into the groups. A group's databases keep the order
    /// of `members` (the file's order, then the discovery query's).
    pub fn plan(&self, members: Vec<Member>) -> Result<Plan> {
        let mut groups: Vec<PlannedGroup> =
            self.groups.iter().map(|g| PlannedGroup { name: g.name.clone(), parallel: g.parallel, on_error: g.on_error, members: Vec::new() }).collect();
        let into = members
            .iter()
            .map(|m| self.group_of(&m.name).ok_or_else(|| Error::FleetUngrouped { file: self.path.clone(), database: m.name.clone() }))
            .collect::<Result<Vec<usize>>>()?;
        let known: HashSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
        for g in &self.groups {
            if let Select::Names(names) = &g.select {
                if let Some((missing, line)) = names.iter().find(|(n, _)| !known.contains(n.as_str())) {
                    return Err(Error::FleetFile {
                        at: Location::line(&self.path, *line),
                        message: format!("group {} lists database {missing}, which neither a [[database]] entry nor the discovery query names", g.name),
                    });
                }
            }
        }
        drop(known);
        for (m, i) in members.into_iter().zip(into) {
            groups[i].members.push(m);
        }
        Ok(Plan { file: self.file(), groups })
    }
}

/// What a fleet run does on each database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Migrate(Target),
    /// Reverse this phase.
    Rollback(u32),
    Validate { phase: Option<u32>, when: Option<When> },
    Status,
}

impl Command {
    /// Whether the command changes databases (and so whether the gate can
    /// halt the fleet): validate and status visit every database.
    pub fn changes(&self) -> bool {
        matches!(self, Command::Migrate(_) | Command::Rollback(_))
    }
}

/// Writes a database's audit row: given its report, the caller builds the
/// record (the engine knows no exit code); the engine writes it on the
/// database's own connection before letting go of the lock.
pub type AuditFn = dyn Fn(&DbReport) -> RunRecord + Sync;

/// How a fleet run goes.
pub struct Options<'a> {
    pub command: Command,
    /// The single-database options every database runs with; `run_id` and
    /// `monitor_url` are set per database.
    pub apply: ApplyOptions,
    /// How long to wait for a database's migration lock.
    pub lock_wait: std::time::Duration,
    /// `application_name` of every connection.
    pub application_name: String,
    /// This fleet run's id, recorded in every database's audit row.
    pub fleet_run: String,
    pub audit: Option<&'a AuditFn>,
}

/// Where one database ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DbState {
    /// It did what was asked (its verdict says how it went).
    Done,
    /// Nothing to do: an earlier run got it there (this is how a re-run
    /// resumes); no lock taken, no audit row written.
    AlreadyDone,
    /// A check said ROLLBACK: the failing step's transaction was rolled back.
    Rollback,
    /// An error: SQL, drift, the lock held by another run, a refusal.
    Failed,
    /// The server could not be reached, or the connection was lost.
    Unreachable,
    /// Not started: its group or the fleet halted first.
    NotStarted,
}

impl DbState {
    pub fn as_str(self) -> &'static str {
        match self {
            DbState::Done => "done",
            DbState::AlreadyDone => "already done",
            DbState::Rollback => "rolled back",
            DbState::Failed => "failed",
            DbState::Unreachable => "unreachable",
            DbState::NotStarted => "not started",
        }
    }

    /// A failure in the sense of a group's `on_error`.
    pub fn failed(self) -> bool {
        matches!(self, DbState::Rollback | DbState::Failed | DbState::Unreachable)
    }

    /// Finished without a failure (done now or earlier).
    pub fn ok(self) -> bool {
        matches!(self, DbState::Done | DbState::AlreadyDone)
    }
}

/// Where a phase stands on a database (from its ledger); `status` shows
/// it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseState {
    Applied,
    #[serde(rename = "partly applied")]
    PartlyApplied,
    Pending,
}

impl PhaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseState::Applied => "applied",
            PhaseState::PartlyApplied => "partly applied",
            PhaseState::Pending => "pending",
        }
    }

    /// A phase's state from the ledger: applied when every migration is,
    /// pending when none is (a phase without migrations too), and partly
    /// applied in between, or while one of its batch walks (a backfill, a
    /// batched rollback) stopped part way (`walks`).
    pub fn of(phase: &crate::set::Phase, applied: &std::collections::BTreeMap<i32, crate::ledger::Applied>, walks: &[crate::walks::BatchWalk]) -> PhaseState {
        if walks.iter().any(|w| phase.steps.iter().any(|s| s.version == w.version)) {
            return PhaseState::PartlyApplied;
        }
        let done = phase.steps.iter().filter(|s| applied.contains_key(&s.version)).count();
        match done {
            0 => PhaseState::Pending,
            n if n == phase.steps.len() => PhaseState::Applied,
            _ => PhaseState::PartlyApplied,
        }
    }
}

/// One phase's state on one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PhaseCell {
    pub phase: u32,
    pub state: PhaseState,
}

/// What happened on one database.
#[derive(Debug, Clone, Serialize)]
pub struct DbReport {
    pub database: String,
    pub group: String,
    /// The URL, password masked.
    pub target: String,
    pub state: DbState,
    /// Its checks' verdict; `None` when it was not reached, skipped, or
    /// failed (the CLI shows ERROR for a failed or unreachable database).
    pub verdict: Option<Verdict>,
    /// The run id of the database's audit row (and of its backups), when it
    /// ran; `None` when it was skipped or never reached.
    pub run_id: Option<String>,
    /// The phase after which a REVIEW stopped this database.
    pub stopped_for_review: Option<u32>,
    pub duration_ms: f64,
    /// Where `duration_ms` went (docs/fleet.md, "Timings and connections").
    pub timings: Timings,
    /// Each phase's state after the run (empty when the ledger could not be read).
    pub phases: Vec<PhaseCell>,
    pub steps: Vec<StepOutcome>,
    pub checks: Vec<CheckResult>,
    /// `status`: where the ledger and the files disagree.
    pub drift: Vec<Drift>,
    pub error: Option<String>,
    /// How its connection travelled (TLS, or a `prefer` that fell back to
    /// plaintext), when it connected.
    pub connection: Option<Transport>,
    #[serde(skip)]
    pub started_at: Option<time::OffsetDateTime>,
}

impl DbReport {
    fn new(member: &Member, group: &str, state: DbState) -> DbReport {
        DbReport {
            database: member.name.clone(),
            group: group.to_string(),
            target: member.target(),
            state,
            verdict: None,
            run_id: None,
            stopped_for_review: None,
            duration_ms: 0.0,
            timings: Timings::default(),
            phases: Vec::new(),
            steps: Vec::new(),
            checks: Vec::new(),
            drift: Vec::new(),
            error: None,
            connection: None,
            started_at: None,
        }
    }
}

/// Why a fleet stopped before its last group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HaltReason {
    /// A check said ROLLBACK on a database of the group.
    Rollback,
    /// A database of the group failed and the group's `on_error` is halt.
    Error,
    /// A check said REVIEW and REVIEW was not accepted up front.
    Review,
    /// The operator did not confirm.
    NotConfirmed,
}

/// The group after which the fleet halted, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Halt {
    pub group: String,
    pub reason: HaltReason,
    /// The databases that caused it.
    pub databases: Vec<String>,
}

/// One group's counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupCounts {
    pub total: usize,
    pub done: usize,
    pub running: usize,
    pub failed: usize,
}

/// What happened to one group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupOutcome {
    pub name: String,
    pub parallel: usize,
    pub on_error: OnError,
    pub counts: GroupCounts,
    /// Whether the group ran at all (false after a halt).
    pub started: bool,
}

/// A fleet run: every database's report in plan order, and where it halted.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub fleet_run: String,
    pub file: String,
    pub groups: Vec<GroupOutcome>,
    pub databases: Vec<DbReport>,
    pub halt: Option<Halt>,
    /// Each server the run connected to, with the most connections it held
    /// there at once.
    pub servers: Vec<ServerLoad>,
}

impl Outcome {
    /// The worst verdict of any database.
    pub fn verdict(&self) -> Verdict {
        self.databases.iter().filter_map(|d| d.verdict).max().unwrap_or(Verdict::Proceed)
    }

    /// Every database finished without a failure.
    pub fn complete(&self) -> bool {
        self.databases.iter().all(|d| d.state.ok())
    }

    pub fn count(&self, state: DbState) -> usize {
        self.databases.iter().filter(|d| d.state == state).count()
    }
}

/// The `Ui` of a fleet run: a `Ui` that is also told how the run moves.
/// (The events are fleet's own, so the trait is here and `ui` knows
/// nothing of fleets.)
pub trait FleetUi: Ui {
    /// A fleet run moved (a group or a database started or finished, a
    /// database said a line); always on the thread that called the fleet
    /// run. By default nothing is shown.
    fn fleet(&mut self, event: Event<'_>) {
        let _ = event;
    }
}

/// What a fleet run reports as it goes, on the calling thread.
#[derive(Debug)]
pub enum Event<'a> {
    GroupStarted { group: &'a PlannedGroup, index: usize, groups: usize },
    DatabaseStarted { group: &'a str, database: &'a str },
    /// A line a database's run said (a phase starting, a retry).
    Line { database: &'a str, line: &'a str },
    DatabaseFinished { report: &'a DbReport, counts: &'a GroupCounts },
    GroupFinished { group: &'a GroupOutcome },
    Halted { halt: &'a Halt },
}
