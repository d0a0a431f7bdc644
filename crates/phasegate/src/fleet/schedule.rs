//! The group scheduler: groups run one after another; inside a group a pool
//! of `parallel` worker threads takes the databases in order. Workers never
//! touch the caller's `Ui`: what they say (progress lines, a confirmation
//! to ask, a finished database) travels over a channel to the calling
//! thread, which owns the `Ui`, the counts and the policies:
//!
//! - a failure (error, unreachable, ROLLBACK) in a group whose `on_error`
//!   is halt starts no more of its databases and no later group;
//! - a ROLLBACK verdict anywhere in a group halts the groups after it,
//!   whatever its `on_error`;
//! - a REVIEW verdict halts the fleet after the group unless REVIEW was
//!   accepted up front;
//! - a confirmation is asked once (the first database that needs it) and
//!   the answer holds for the whole fleet; a refusal halts it.
//!
//! `validate` and `status` change nothing, so nothing halts them.

use std::collections::HashMap;
use std::sync::mpsc::{self, Sender};
use std::sync::Mutex;

use super::gauge::Gauge;
use super::{work, DbReport, DbState, Event, FleetUi, GroupCounts, GroupOutcome, Halt, HaltReason, Options, Outcome, Plan, PlannedGroup};
use crate::check::Verdict;
use crate::set::MigrationSet;
use crate::ui::Ui;

use super::OnError;

/// What a worker tells the calling thread.
enum Msg {
    Started { index: usize },
    Line { index: usize, line: String },
    Confirm { prompt: String, expected: String, reply: Sender<bool> },
    Done { index: usize, report: Box<DbReport> },
    Exit,
}

/// A worker's `Ui`: everything goes to the calling thread.
struct Relay {
    index: usize,
    tx: Sender<Msg>,
}

impl Ui for Relay {
    fn confirm(&mut self, prompt: &str, expected: &str) -> bool {
        let (reply, answer) = mpsc::channel();
        if self.tx.send(Msg::Confirm { prompt: prompt.to_string(), expected: expected.to_string(), reply }).is_err() {
            return false;
        }
        answer.recv().unwrap_or(false)
    }
    fn progress(&mut self, line: &str) {
        let _ = self.tx.send(Msg::Line { index: self.index, line: line.to_string() });
    }
}

/// The shared queue of a group: the next database to start, and whether
/// to start any more.
struct Queue {
    next: usize,
    stop: bool,
}

/// Runs the plan: every database's report in plan order, the groups'
/// counts, and where the fleet halted.
pub fn run(plan: &Plan, set: &MigrationSet, opts: &Options, ui: &mut dyn FleetUi) -> Outcome {
    let mut out = Outcome {
        fleet_run: opts.fleet_run.clone(),
        file: plan.file.clone(),
        groups: Vec::new(),
        databases: Vec::with_capacity(plan.databases()),
        halt: None,
        servers: Vec::new(),
    };
    let gauge = Gauge::default();
    let mut answers: HashMap<String, bool> = HashMap::new();
    let last = plan.groups.len().saturating_sub(1);
    for (gi, group) in plan.groups.iter().enumerate() {
        let mut g = GroupOutcome {
            name: group.name.clone(),
            parallel: group.parallel,
            on_error: group.on_error,
            counts: GroupCounts { total: group.members.len(), ..Default::default() },
            started: false,
        };
        if out.halt.is_some() {
            out.databases.extend(group.members.iter().map(|m| DbReport::new(m, &group.name, DbState::NotStarted)));
            out.groups.push(g);
            continue;
        }
        g.started = true;
        ui.fleet(Event::GroupStarted { group, index: gi, groups: plan.groups.len() });
        let (reports, refused) = run_group(group, set, opts, &gauge, ui, &mut answers, &mut g.counts);
        ui.fleet(Event::GroupFinished { group: &g });
        let halt = decide(group, &reports, refused, opts);
        out.databases.extend(reports);
        out.groups.push(g);
        if let Some(h) = halt.filter(|_| gi < last) {
            ui.fleet(Event::Halted { halt: &h });
            out.halt = Some(h);
        }
    }
    out.servers = gauge.loads();
    out
}

/// Whether the fleet halts after this group, and why.
fn decide(group: &PlannedGroup, reports: &[DbReport], refused: bool, opts: &Options) -> Option<Halt> {
    if !opts.command.changes() {
        return None;
    }
    let of = |pick: &dyn Fn(&DbReport) -> bool| reports.iter().filter(|r| pick(r)).map(|r| r.database.clone()).collect::<Vec<_>>();
    let halt = |reason, databases| Some(Halt { group: group.name.clone(), reason, databases });
    if refused {
        return halt(HaltReason::NotConfirmed, of(&|r| r.state == DbState::Failed));
    }
    let rolled_back = of(&|r| r.state == DbState::Rollback);
    if !rolled_back.is_empty() {
        return halt(HaltReason::Rollback, rolled_back);
    }
    let failed = of(&|r| r.state.failed());
    if !failed.is_empty() && group.on_error == OnError::Halt {
        return halt(HaltReason::Error, failed);
    }
    // A REVIEW stands also when the database failed after it (its verdict
    // is then None): the review happened and committed.
    let review = of(&|r| crate::check::worst(&r.checks) == Verdict::Review);
    if !review.is_empty() && !opts.apply.accept_review {
        return halt(HaltReason::Review, review);
    }
    None
}

/// One group: `parallel` workers take its databases in order until they
/// run out or the policy stops them.
#[allow(clippy::too_many_arguments)]
fn run_group(
    group: &PlannedGroup,
    set: &MigrationSet,
    opts: &Options,
    gauge: &Gauge,
    ui: &mut dyn FleetUi,
    answers: &mut HashMap<String, bool>,
    counts: &mut GroupCounts,
) -> (Vec<DbReport>, bool) {
    let n = group.members.len();
    let queue = Mutex::new(Queue { next: 0, stop: false });
    let stop = |q: &Mutex<Queue>| q.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
    let mut slots: Vec<Option<DbReport>> = vec![None; n];
    let mut refused = false;
    let workers = group.parallel.clamp(1, n.max(1));
    let (tx, rx) = mpsc::channel::<Msg>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let tx = tx.clone();
            let queue = &queue;
            s.spawn(move || {
                loop {
                    let index = {
                        let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                        if q.stop || q.next >= n {
                            break;
                        }
                        q.next += 1;
                        q.next - 1
                    };
                    let _ = tx.send(Msg::Started { index });
                    let mut relay = Relay { index, tx: tx.clone() };
                    let report = work::one(&group.members[index], &group.name, set, opts, gauge, &mut relay);
                    let _ = tx.send(Msg::Done { index, report: Box::new(report) });
                }
                let _ = tx.send(Msg::Exit);
            });
        }
        drop(tx);
        let mut exited = 0;
        while exited < workers {
            let Ok(msg) = rx.recv() else { break };
            match msg {
                Msg::Started { index } => {
                    counts.running += 1;
                    ui.fleet(Event::DatabaseStarted { group: &group.name, database: &group.members[index].name });
                }
                Msg::Line { index, line } => ui.fleet(Event::Line { database: &group.members[index].name, line: &line }),
                Msg::Confirm { prompt, expected, reply } => {
                    let ok = *answers
                        .entry(expected.clone())
                        .or_insert_with(|| ui.confirm(&format!("{prompt} (asked once: the answer holds for every database of the fleet)"), &expected));
                    if !ok {
                        refused = true;
                        stop(&queue);
                    }
                    let _ = reply.send(ok);
                }
                Msg::Done { index, report } => {
                    counts.running -= 1;
                    if report.state.failed() {
                        counts.failed += 1;
                        if group.on_error == OnError::Halt && opts.command.changes() {
                            stop(&queue);
                        }
                    } else {
                        counts.done += 1;
                    }
                    ui.fleet(Event::DatabaseFinished { report: &report, counts });
                    slots[index] = Some(*report);
                }
                Msg::Exit => exited += 1,
            }
        }
    });
    let reports = slots
        .into_iter()
        .zip(&group.members)
        .map(|(r, m)| r.unwrap_or_else(|| DbReport::new(m, &group.name, DbState::NotStarted)))
        .collect();
    (reports, refused)
}
