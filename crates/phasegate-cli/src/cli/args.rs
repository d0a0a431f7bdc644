//! Each command's own arguments (the flag groups they share, `SetArgs`,
//! `ConnectArgs`, `TimeoutArgs`, are in `cli.rs`).

use std::path::PathBuf;

use clap::{Args as ClapArgs, ValueEnum};

use phasegate::When;

use super::{parse_duration, BackendArg, ConfirmArgs, ConnectArgs, HtmlArgs, LockHoldArgs, ReplicaArgs, ServerArgs, SetArgs, TimeoutArgs, FLEET_HELP};

/// A layout's name, for `migrate --adopt`.
fn parse_layout(s: &str) -> Result<phasegate::foreign::Layout, String> {
    phasegate::foreign::Layout::parse(s).ok_or_else(|| format!("unknown layout `{s}` (one of {})", phasegate::foreign::Layout::ALL.map(|l| l.name()).join(", ")))
}

#[derive(Debug, Clone, ClapArgs)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[arg(long, value_name = "FILE", help = FLEET_HELP, conflicts_with = "dry_run")]
    pub fleet: Option<PathBuf>,
    /// Apply up to and including this phase
    #[arg(long, conflicts_with = "to_version")]
    pub phase: Option<u32>,
    /// Apply up to and including this version
    #[arg(long)]
    pub to_version: Option<i32>,
    /// On a database another tool migrated, record the migrations its ledger holds as applied
    /// (the set is one `import` wrote from that tool's folder) and run nothing; with --dry-run, print
    /// what would be recorded. Layouts: as `import --from`
    #[arg(long, value_name = "LAYOUT", value_parser = parse_layout, conflicts_with_all = ["fleet", "phase", "to_version"])]
    pub adopt: Option<phasegate::foreign::Layout>,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
    /// Continue past a phase whose verdict is REVIEW
    #[arg(long)]
    pub accept_review: bool,
    #[command(flatten)]
    pub locks: LockHoldArgs,
    /// Do not keep what an irreversible phase destroys (recorded in the audit row; recover becomes impossible)
    #[arg(long)]
    pub no_backup: bool,
    /// Refuse an irreversible phase whose kept data would exceed this many rows
    #[arg(long, value_name = "N", default_value_t = phasegate::DEFAULT_MAX_BACKUP_ROWS)]
    pub max_backup_rows: u64,
    #[command(flatten)]
    pub replica: ReplicaArgs,
    #[command(flatten)]
    pub timeouts: TimeoutArgs,
    #[command(flatten)]
    pub html: HtmlArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The irreversible phase to recover
    #[arg(long)]
    pub phase: u32,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
    #[command(flatten)]
    pub timeouts: TimeoutArgs,
    #[command(flatten)]
    pub html: HtmlArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[arg(long, value_name = "FILE", help = FLEET_HELP, conflicts_with = "dry_run")]
    pub fleet: Option<PathBuf>,
    /// The phase to reverse
    #[arg(long)]
    pub phase: u32,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
    #[command(flatten)]
    pub locks: LockHoldArgs,
    /// Do not back up the rows the rollback changes
    #[arg(long)]
    pub no_backup: bool,
    #[command(flatten)]
    pub replica: ReplicaArgs,
    #[command(flatten)]
    pub timeouts: TimeoutArgs,
    #[command(flatten)]
    pub html: HtmlArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The rollback run whose backups to restore (its id, or at least the first 8 characters)
    #[arg(long, value_name = "ID")]
    pub run: String,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
    #[command(flatten)]
    pub timeouts: TimeoutArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct HealthArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Repeat rounds, one line each, until --duration or --rounds
    #[arg(long)]
    pub watch: bool,
    /// Time between the starts of two rounds
    #[arg(long, default_value = "30s", value_parser = parse_duration, requires = "watch")]
    pub interval: std::time::Duration,
    /// Stop watching after this long (default: until interrupted)
    #[arg(long, value_parser = parse_duration, requires = "watch")]
    pub duration: Option<std::time::Duration>,
    /// Stop watching after this many rounds
    #[arg(long, requires = "watch")]
    pub rounds: Option<u32>,
    /// The probe query whose latency is measured
    #[arg(long, default_value = "SELECT 1", value_name = "SQL")]
    pub probe: String,
    /// Probe latency that warns
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub warn: std::time::Duration,
    /// Probe latency that fails (the probe is cancelled at twice this)
    #[arg(long, default_value = "1000ms", value_parser = parse_duration)]
    pub fail: std::time::Duration,
    /// A transaction open longer than this warns
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub max_transaction: std::time::Duration,
    /// A lock wait longer than this warns
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub max_lock_wait: std::time::Duration,
    /// Skip the current phase's checks (they scan tables)
    #[arg(long)]
    pub no_checks: bool,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[arg(long, value_name = "FILE", help = FLEET_HELP)]
    pub fleet: Option<PathBuf>,
    /// Only this phase's checks
    #[arg(long)]
    pub phase: Option<u32>,
    /// Which checks: after-migrate (default) or before-rollback checks of
    /// applied migrations, or after-rollback / before-migrate checks of
    /// migrations not applied
    #[arg(long, value_enum)]
    pub when: Option<WhenArg>,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct StatusArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[arg(long, value_name = "FILE", help = FLEET_HELP)]
    pub fleet: Option<PathBuf>,
    /// Also compare the database's schema with the set's files applied to a disposable PostgreSQL up to
    /// the versions the ledger lists, and list every object that differs (an index created by hand, a
    /// column dropped outside a migration) with its diff; exit 3 when anything differs. Privileges are
    /// not compared: the database's roles are its environment's
    #[arg(long, conflicts_with = "fleet")]
    pub schema: bool,
    /// Where the disposable PostgreSQL of --schema comes from (as for verify)
    #[arg(long, value_enum, default_value_t = BackendArg::Auto, requires = "schema")]
    pub backend: BackendArg,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct PlanArgs {
    #[command(flatten)]
    pub set: SetArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct LintArgs {
    #[command(flatten)]
    pub set: SetArgs,
    /// Fail (exit 1) on warnings too
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct NewArgs {
    /// snake_case name of the migration
    pub name: String,
    /// The phase it belongs to (the last phase's versions are extended)
    #[arg(long)]
    pub phase: u32,
    #[command(flatten)]
    pub set: SetArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Also print a row fingerprint of every table
    #[arg(long)]
    pub rows: bool,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// How many recent runs to show
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
}

#[cfg(feature = "bench")]
#[derive(Debug, Clone, ClapArgs)]
pub struct BenchArgs {
    #[command(flatten)]
    pub set: SetArgs,
    /// Run only these (repeatable)
    #[arg(long, value_parser = ["fresh-db", "factory", "verify", "overhead", "snapshot", "backfill", "traffic", "verify-from", "verify-corpus", "html", "fleet", "fleet-scale", "load", "change"])]
    pub only: Vec<String>,
    /// Reservations for the backfill benchmark
    #[arg(long, default_value_t = 1_000_000)]
    pub backfill_rows: u64,
    /// Reservations for the verify, overhead, factory and traffic benchmarks
    #[arg(long, default_value_t = 100_000)]
    pub verify_rows: u64,
    /// Where the JSON results go
    #[arg(long, default_value = "target/bench.json", value_name = "FILE")]
    pub json: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub html: HtmlArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct DemoArgs {
    #[command(flatten)]
    pub set: SetArgs,
    /// Rows the seed generates (phasegate.seed_rows); default: the seed's own
    /// (100k reservations for the clinic set, 3000 tenants for examples/tenant-keys)
    #[arg(long)]
    pub seed_rows: Option<u64>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Where the run log and the rollback reports go (default: <dir>/logs)
    #[arg(long, value_name = "PATH")]
    pub log_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WhenArg {
    BeforeMigrate,
    AfterMigrate,
    BeforeRollback,
    AfterRollback,
}

impl From<WhenArg> for When {
    fn from(w: WhenArg) -> When {
        match w {
            WhenArg::BeforeMigrate => When::BeforeMigrate,
            WhenArg::AfterMigrate => When::AfterMigrate,
            WhenArg::BeforeRollback => When::BeforeRollback,
            WhenArg::AfterRollback => When::AfterRollback,
        }
    }
}
