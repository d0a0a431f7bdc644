//! Where a run's log goes (`--log-dir`, else `logs/` in the set's folder),
//! and the check, before a command does anything, that the log can be
//! written there: a run without its log (and a rollback without its
//! report beside it) would lose the record an operator needs afterwards.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::cli::{Command, ConnectArgs};

/// The log folder of a run: `--log-dir`, or `logs/` in the set's folder,
/// but only where there is a set: a command run in the wrong folder leaves
/// nothing behind there.
pub fn log_dir(c: &ConnectArgs) -> Option<PathBuf> {
    logs_for(&c.set.dir, c.log_dir.as_ref())
}

/// [`log_dir`] for commands without a connection (verify, demo).
pub fn logs_for(set_dir: &Path, explicit: Option<&PathBuf>) -> Option<PathBuf> {
    match explicit {
        Some(d) => Some(d.clone()),
        None => set_dir.join(phasegate::MANIFEST).is_file().then(|| set_dir.join("logs")),
    }
}

/// The folder `command` will write its log in, if it writes one.
pub fn of(command: &Command) -> Option<PathBuf> {
    match command {
        Command::Migrate(a) => log_dir(&a.connect),
        Command::Rollback(a) => log_dir(&a.connect),
        Command::Restore(a) => log_dir(&a.connect),
        Command::Recover(a) => log_dir(&a.connect),
        Command::Health(a) => log_dir(&a.connect),
        Command::Validate(a) => log_dir(&a.connect),
        Command::Status(a) => log_dir(&a.connect),
        Command::Snapshot(a) => log_dir(&a.connect),
        Command::History(a) => log_dir(&a.connect),
        Command::Verify(a) => logs_for(&a.set.dir, a.log_dir.as_ref()),
        Command::Demo(a) => logs_for(&a.set.dir, a.log_dir.as_ref()),
        Command::Change(a) => logs_for(&a.op.common().set.dir, a.op.common().log_dir.as_ref()),
        Command::Plan(_) | Command::Lint(_) | Command::New(_) | Command::Init(_) | Command::Import(_) => None,
        #[cfg(feature = "bench")]
        Command::Bench(_) => None,
    }
}

/// Creates `dir` if needed and writes (and removes) a probe file in it;
/// the error names the folder and why it cannot be written.
pub fn writable(dir: &Path) -> anyhow::Result<()> {
    let fail = |e: std::io::Error| anyhow!("cannot write the run's log in {}: {e}; nothing was done (choose a folder with --log-dir)", phasegate::display_path(dir));
    std::fs::create_dir_all(dir).map_err(fail)?;
    tempfile::Builder::new().prefix(".phasegate-write-test-").tempfile_in(dir).map(drop).map_err(fail)
}
