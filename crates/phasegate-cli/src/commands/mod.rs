//! The commands, one file each. Every command is `run(args, ctx) -> Exit`
//! (the exit code of docs/exit-codes.md) around a body that returns
//! `anyhow::Result<Report>`: an error stops the body with `?` and becomes the
//! report `Run::finish` prints. The shared `Run` gives each one its log file,
//! its audit row, its confirmations and its output format.
//!
//! `dispatch` picks the command (after the checks every command shares),
//! `session` is a run's log, connection and audit row, `terminal` what it
//! shows while it works, `render` its `Report` printed in the format asked.

#[cfg(feature = "bench")]
pub mod bench;
pub mod change;
mod flags;
mod logs;
pub mod demo;
pub mod fleet;
pub mod health;
pub mod import;
pub mod init;
pub mod history;
pub mod lint;
pub mod migrate;
pub mod new;
pub mod plan;
pub mod recover;
pub mod restore;
pub mod rollback;
pub mod snapshot;
pub mod status;
pub mod validate;
pub mod verify;

mod dispatch;
mod render;
mod session;
mod terminal;

use std::io::{BufRead, Write};

use serde::Serialize;

use crate::cli::TimeoutArgs;
use phasegate::RunOutcome;

pub use dispatch::{run_argv, run_process};
pub use logs::{log_dir, logs_for};
pub use render::{exit_for, verify_exit, Report};
pub use session::Run;

/// Where a command reads and writes.
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub input: &'a mut dyn BufRead,
}

/// Facts about the caller the binary gathers (the engine reads no
/// environment), and the program name help, usage and hints show.
#[derive(Debug, Clone)]
pub struct Env {
    pub os_user: String,
    pub hostname: String,
    /// Colour human output (a terminal, and NO_COLOR unset).
    pub color: bool,
    /// `phasegate`, `cargo xtask`, `cargo xtask db`: how the user runs us.
    pub bin: String,
}

impl Env {
    /// The real process's user, host and terminal.
    pub fn of_process(bin: &str) -> Env {
        use std::io::IsTerminal;
        Env {
            os_user: std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into()),
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            bin: bin.to_string(),
        }
    }
}

pub struct Ctx<'a, 'b> {
    pub io: &'a mut Io<'b>,
    pub env: &'a Env,
}

/// A value of a derived `Serialize` type as JSON (it cannot fail: no maps
/// with non-string keys, no failing custom serialisers).
pub fn json(v: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).expect("a derived Serialize value serialises")
}

/// The engine options from the timeout flags; the lock monitor connects to
/// the same database.
pub fn apply_options(t: &TimeoutArgs, accept_review: bool, run_id: &str, url: &str) -> phasegate::Options {
    phasegate::Options {
        lock_timeout: t.lock_timeout,
        statement_timeout: t.statement_timeout,
        lock_retries: t.lock_retries,
        accept_review,
        run_id: run_id.to_string(),
        monitor_url: Some(url.to_string()),
        backup: true,
        max_backup_rows: phasegate::DEFAULT_MAX_BACKUP_ROWS,
        max_replica_lag: None,
        max_lock_hold: None,
    }
}

/// The JSON body of a migrate or rollback run.
#[derive(Serialize)]
struct RunJson {
    stopped_for_review: Option<u32>,
}

/// The report of a migrate or rollback run; `title` heads its Markdown.
pub fn outcome_report(outcome: RunOutcome, run: &Run, title: &str) -> Report {
    let mut text = Vec::new();
    let _ = crate::report::run_summary(&mut text, &outcome, run.style);
    Report {
        verdict: Some(outcome.verdict()),
        exit: None,
        steps: json(&outcome.steps),
        checks: json(&outcome.checks().collect::<Vec<_>>()),
        text: String::from_utf8_lossy(&text).into_owned(),
        ci: run.ci(|| crate::report::github::run(&outcome), || crate::report::markdown::run(title, &outcome)),
        error: outcome.failure.map(anyhow::Error::from),
        ..Default::default()
    }
    .with_body(&RunJson { stopped_for_review: outcome.stopped_for_review })
}
