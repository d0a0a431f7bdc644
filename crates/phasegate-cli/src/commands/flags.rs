//! What `migrate` and `rollback` flags mean to the engine and to the audit
//! row, in one place for a single database and for a fleet alike.

use super::apply_options;
use crate::cli::{LockHoldArgs, MigrateArgs, RollbackArgs};
use phasegate::Options;

fn lock_hold_args(l: &LockHoldArgs) -> Vec<String> {
    l.max_lock_hold.map(|d| vec!["--max-lock-hold".into(), format!("{}ms", d.as_millis())]).unwrap_or_default()
}

impl MigrateArgs {
    /// The engine's options for this run (`url`: the lock watcher's).
    pub fn options(&self, run_id: &str, url: &str) -> Options {
        let mut o = apply_options(&self.timeouts, self.accept_review, run_id, url);
        o.backup = !self.no_backup;
        o.max_backup_rows = self.max_backup_rows;
        o.max_replica_lag = self.replica.max_replica_lag;
        o.max_lock_hold = self.locks.max_lock_hold;
        o
    }

    /// The flags the audit row records beside the command.
    pub fn audit_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.no_backup {
            v.push("--no-backup".into());
        }
        v.extend(lock_hold_args(&self.locks));
        if self.max_backup_rows != phasegate::DEFAULT_MAX_BACKUP_ROWS {
            v.extend(["--max-backup-rows".into(), self.max_backup_rows.to_string()]);
        }
        v.extend(self.replica.audit_args());
        v
    }
}

impl RollbackArgs {
    /// The engine's options for this run (`url`: the lock watcher's).
    pub fn options(&self, run_id: &str, url: &str) -> Options {
        let mut o = apply_options(&self.timeouts, false, run_id, url);
        o.backup = !self.no_backup;
        o.max_replica_lag = self.replica.max_replica_lag;
        o.max_lock_hold = self.locks.max_lock_hold;
        o
    }

    /// The flags the audit row records beside the command.
    pub fn audit_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.no_backup {
            v.push("--no-backup".into());
        }
        v.extend(self.replica.audit_args());
        v.extend(lock_hold_args(&self.locks));
        v
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Args, Command};

    fn parse(argv: &[&str]) -> Command {
        Args::try_parse_from(argv).expect("the flags parse").command
    }

    #[test]
    fn a_fleet_run_gets_the_same_options_as_a_single_database() {
        // `--fleet` used to drop migrate's --no-backup and --max-backup-rows.
        let Command::Migrate(m) = parse(&["phasegate", "migrate", "--fleet", "f.toml", "--no-backup", "--max-backup-rows", "5", "--max-lock-hold", "100ms"]) else { panic!("migrate") };
        let o = m.options("run", "");
        assert!(!o.backup);
        assert_eq!(o.max_backup_rows, 5);
        assert_eq!(o.max_lock_hold, Some(std::time::Duration::from_millis(100)));
        assert_eq!(m.audit_args(), ["--no-backup", "--max-lock-hold", "100ms", "--max-backup-rows", "5"]);
        let Command::Rollback(r) = parse(&["phasegate", "rollback", "--phase", "2", "--fleet", "f.toml", "--no-backup", "--max-replica-lag", "2s"]) else { panic!("rollback") };
        let o = r.options("run", "");
        assert!(!o.backup);
        assert_eq!(o.max_replica_lag, Some(std::time::Duration::from_secs(2)));
        assert_eq!(r.audit_args(), ["--no-backup", "--max-replica-lag", "2000ms"]);
    }
}
