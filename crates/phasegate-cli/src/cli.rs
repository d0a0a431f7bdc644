//! Command-line arguments (clap derives), all in one place. Nothing here
//! touches a database; `commands` turns these into engine calls.

use std::path::PathBuf;

use clap::{Args as ClapArgs, CommandFactory, Parser, Subcommand, ValueEnum};


mod args;
mod change;
mod import;
mod init;
pub(crate) mod shape;
mod verify;
pub use args::*;
pub use import::ImportArgs;
pub use init::InitArgs;
pub use change::{ChangeArgs, ChangeCommon, ChangeOp};
pub use shape::{Info, Shape};
pub use verify::{BackendArg, FromArg, HtmlArgs, ServerArgs, VerifyArgs};

/// phasegate's arguments: the top-level parser of the `phasegate` binary,
/// and a clap `Args` another project mounts in its own CLI, flattened or as
/// a subcommand (`Db(phasegate_cli::Args)`), then hands to
/// [`crate::run`]. The examples in the help say `phasegate`; [`command`]
/// rewrites them to the caller's program name.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "phasegate: phased, reversible, validated PostgreSQL migrations",
    long_about = "phasegate applies versioned migrations in phases (additive, data, switchover, cleanup), \
runs each migration's validation checks inside its transaction, answers PROCEED, REVIEW or ROLLBACK at \
every gate, and reverses a phase with its paired rollback SQL.",
    after_help = "Examples:
  phasegate demo                                migrate the clinic set on a disposable PostgreSQL
  phasegate status --database-url postgres://app@db/clinic
  phasegate migrate --phase 2                   apply phases up to 2, validating each migration
  phasegate validate --format json              run the applied migrations' checks
  phasegate rollback --phase 2                  reverse phase 2 (you type `rollback phase 2`)
  phasegate restore --run 3f2a9c1e              put back the rows that rollback backed up
  phasegate recover --phase 4 --dry-run         the way back from irreversible phase 4
  phasegate health --watch --interval 30s --duration 1h

Exit codes: 0 PROCEED, 1 error or refused, 2 usage, 3 REVIEW, 4 ROLLBACK, 5 verify mismatch."
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations in order, each with its checks in one transaction
    #[command(mut_arg("dry_run", |a| a.help("Print the SQL that would run and change nothing")))]
    #[command(mut_arg("yes", |a| a.help("Enter irreversible phases without asking")))]
    #[command(after_help = "Examples:
  phasegate migrate                    apply every pending phase
  phasegate migrate --phase 1          apply up to and including phase 1
  phasegate migrate --dry-run          print the SQL that would run
  phasegate migrate --yes              also enter irreversible phases without a prompt
  phasegate migrate --max-backup-rows 50000000
                                       allow a bigger copy of what an irreversible phase drops
  phasegate migrate --no-backup        keep nothing before an irreversible phase (recover impossible)
  phasegate migrate --max-replica-lag 5s
                                       backfill batches wait while a replica lags over 5s
  phasegate migrate --max-lock-hold 100ms
                                       REVIEW: a lock blocking writers held longer
  phasegate migrate --fleet fleet.toml --phase 1
                                       every database of the fleet, group by group, canary first

Before each migration of an irreversible phase, what it drops is kept (its size is shown first);
`recover --phase N` brings it back.")]
    Migrate(MigrateArgs),
    /// Reverse one phase, newest migration first, with its after-rollback checks
    #[command(mut_arg("dry_run", |a| a.help("Print the rollback SQL that would run and change nothing")))]
    #[command(after_help = "Examples:
  phasegate rollback --phase 3         asks you to type `rollback phase 3`
  phasegate rollback --phase 2 --dry-run print the rollback SQL stored at apply time
  phasegate rollback --phase 2 --yes   for scripts
  phasegate rollback --phase 2 --no-backup
                                       skip the backup of changed rows (recorded in the audit row)
  phasegate rollback --phase 2 --max-replica-lag 5s
                                       batched rollbacks wait for replicas lagging over 5s
  phasegate rollback --phase 2 --max-lock-hold 100ms
                                       REVIEW: a lock blocking writers held longer
  phasegate rollback --phase 2 --fleet fleet.toml --yes
                                       every database of the fleet, group by group

Before a rollback script changes rows (UPDATE, DELETE, TRUNCATE, DROP TABLE, DROP COLUMN), the
rows it touches are copied to phasegate_backup.<table>_<run> in the same transaction; `restore --run
ID` puts them back. Every rollback writes a Markdown report beside its log.")]
    Rollback(RollbackArgs),
    /// Bring back what an irreversible phase dropped, from what migrate kept before it ran
    #[command(mut_arg("dry_run", |a| a.help("Print the recovery plan and change nothing")))]
    #[command(after_help = "Examples:
  phasegate recover --phase 4 --dry-run  print the recovery plan (DDL, restores) and change nothing
  phasegate recover --phase 4          asks you to type `recover phase 4`
  phasegate recover --phase 4 --yes    for scripts

Before each migration of an irreversible phase, migrate keeps what it destroys: definitions (column
types, enum labels in order, functions, triggers, constraints, indexes) in phasegate_kept, data in
phasegate_backup tables (key and values of dropped columns, whole tables for DROP TABLE / TRUNCATE).
recover re-creates what was dropped, restores the kept values by key, fills rows written since through
the dropped sync triggers (or leaves them NULL and counts them), runs the phase's before-migrate checks
and removes the phase from the ledger, all in one transaction under the migration lock; then `migrate`
re-applies the phase.")]
    Recover(RecoverArgs),
    /// Put back the rows a rollback backed up
    #[command(mut_arg("dry_run", |a| a.help("List the backups and change nothing")))]
    #[command(after_help = "Examples:
  phasegate restore --run 3f2a9c1e     the id `rollback` printed (or its first 8 characters)
  phasegate restore --run 3f2a9c1e --dry-run
                                       list the backups and change nothing

Updated rows are set back by primary key, deleted rows inserted again, dropped columns filled back in,
all in one transaction under the migration lock. Refuses when a table or column the backup needs no
longer exists: re-apply the phase that creates it first.")]
    Restore(RestoreArgs),
    /// Connectivity, probe latency, long transactions, lock waits, invalid indexes and the current checks
    #[command(after_help = "Examples:
  phasegate health                                        one round, details and the decision table
  phasegate health --watch --interval 30s --duration 1h  a line per round for an hour after a rollback
  phasegate health --probe 'SELECT count(*) FROM api_keys' --warn 200ms --fail 500ms

Exit codes: 0 healthy; 3 a warning threshold was crossed or a check said REVIEW (in any round);
4 the probe crossed its failure threshold or a check said ROLLBACK; 1 the database could not be reached.")]
    Health(HealthArgs),
    /// Run checks against the current database and print the decision table
    #[command(after_help = "Examples:
  phasegate validate                   after-migrate checks of the current phase (the latest applied)
  phasegate validate --phase 2 --format json
  phasegate validate --phase 3 --when after-rollback
  phasegate validate --fleet fleet.toml   every database of the fleet: a table of databases by verdict")]
    Validate(ValidateArgs),
    /// Per phase: applied, partly applied or pending; drift and pairing gaps
    #[command(after_help = "Examples:\n  phasegate status --format json\n  phasegate status --fleet fleet.toml   every database of the fleet by phase")]
    Status(StatusArgs),
    /// The phases with their risk, lock levels and whether data can be lost
    #[command(after_help = "Example:\n  phasegate plan --dir examples/tenant-keys")]
    Plan(PlanArgs),
    /// Lint the set: its structure and the lock safety of every SQL file, phase-aware
    #[command(after_help = "Examples:
  phasegate lint                           the set in the current folder
  phasegate lint --dir examples/tenant-keys  another set
  phasegate lint --format json             findings as JSON, for CI annotations
  phasegate lint --strict                  warnings fail too (exit 1)

Exit codes: 0 no errors (warnings allowed unless --strict), 1 errors found or the set does not load.")]
    Lint(LintArgs),
    /// Write a zero-downtime change into the set: its phases, migrations, rollbacks, validations and probes
    #[command(after_help = "Examples, one per operation:
  phasegate change add-column accounts.nickname text
  phasegate change add-column accounts.email_lower text --fill 'lower(email)' --not-null
  phasegate change rename-column accounts.full_name display_name
  phasegate change change-type orders.amount bigint --up 'amount::bigint' --down 'amount::integer'
  phasegate change set-not-null accounts.email --fill \"'unknown@example.com'\"
  phasegate change drop-not-null accounts.phone
  phasegate change set-default accounts.status \"'active'\"
  phasegate change drop-default accounts.status
  phasegate change drop-column accounts.legacy_flags
  phasegate change split-to-lookup reservations.service services
  phasegate change add-check orders orders_amount_small 'amount < 100000'
  phasegate change add-unique accounts.phone
  phasegate change add-foreign-key orders.account_id accounts.id --on-delete cascade
  phasegate change create-index orders '(channel, kind)' --where 'note IS NOT NULL'
  phasegate change drop-index accounts_full_name_idx
  phasegate change create-table coupons '(id bigint PRIMARY KEY, code text NOT NULL UNIQUE)'
  phasegate change rename-table orders purchases
  phasegate change drop-table legacy_sessions
  phasegate change drop-constraint accounts accounts_full_name_check
  phasegate change rename-constraint orders orders_amount_check orders_amount_not_negative
  phasegate change raw backfill_invoice_totals
  phasegate change rename-column accounts.full_name display_name --dry-run   print the files only

The schema (and the rows expressions are tried on) comes from the set applied to a disposable PostgreSQL \
(--backend, as for verify) or from --database-url. Each change appends its own phases after the set's last \
one (expand / backfill / switch / cleanup, as the operation needs), and probes/<change>_old.sql and _new.sql \
with the phases each application version must work in. Then: lint, verify. docs/changes.md tells what each \
operation writes.")]
    Change(ChangeArgs),
    /// Start a migration set: phases.toml, the four folders and a first phase that lints and verifies clean
    #[command(after_help = "Examples:
  phasegate init --dir db                              a new set in db/ (created when missing)
  phasegate init --dir db --baseline-from postgres://app@db/app
                                                       the live schema as phase 0, the baseline

Refuses, writing nothing, when the folder already holds a phases.toml, a file init would write, or
SQL files in migrations/, rollback/, validations/ or seed/. The first phase holds one migration, a
set_updated_at() trigger function with its rollback and checks, since a set cannot be empty. With
--baseline-from, `migrate` on a database that already holds the schema checks the baseline's tables
exist and records it as applied without running it; on an empty database it builds it.")]
    Init(InitArgs),
    /// Convert another tool's migration history into a phasegate set on disk
    #[command(after_help = "Examples:
  phasegate import --from goose db/migrations --dir db     goose's history as the set in db/
  phasegate import --from ../api/migrations --dir db       the layout detected, as verify --from does

Every migration becomes a phase of one step: its up file the forward migration, its down file the
rollback (no down: an irreversible phase with a reason), and a validation asserting that the tables,
indexes, views, sequences, functions and types it creates exist. A file its tool runs outside a
transaction gets `-- phasegate: no-transaction`; a file's own outer BEGIN; ... COMMIT; is removed.
Each phase's summary names the tool, the migration and its original file. `verify` on the imported
set then finds what `verify --from` finds on the original (when a migration names the tool's ledger
table, pass the setup/<tool>_ledger.sql it writes to verify --setup). Refuses, writing nothing, when the
folder already holds a set, SQL files in its folders or a file import would write, or when a migration
cannot be written as a phasegate file (several statements outside a transaction, one of which cannot
run in a transaction).")]
    Import(ImportArgs),
    /// Scaffold a forward, rollback and validation trio in a phase
    #[command(after_help = "Example:\n  phasegate new add_reminders --phase 1")]
    New(NewArgs),
    /// Print the normalised schema of a database
    #[command(after_help = "Example:\n  phasegate snapshot > schema.txt")]
    Snapshot(SnapshotArgs),
    /// The audit log: who ran what, when, with which verdict, and the backups each run took
    #[command(after_help = "Example:\n  phasegate history --limit 20")]
    History(HistoryArgs),
    /// Rehearse every phase in a disposable PostgreSQL: migrate, check, roll back, compare, re-apply
    #[command(after_help = "Examples:
  phasegate verify                               the clinic set, phase by phase, on Docker
  phasegate verify --phase 2 --backend local     one phase, on initdb/pg_ctl in a temp folder
  phasegate verify --from sqlx ../billing/migrations  audit another project's down migrations
  phasegate verify --from ../api/db/migrations   the layout detected (goose, dbmate, flyway, sqitch, ...)
  phasegate verify --from flyway sql --placeholder schema=app  Flyway ${schema} placeholders
  phasegate verify --from files migrations       pairs like V0001.Initial_Schema.up.sql / .down.sql
  phasegate verify --junit target/verify.xml     a JUnit report for CI
  phasegate verify --max-lock-hold 100ms         REVIEW: a lock blocking writers held longer

Exit 5 when a rollback does not restore the prior state (schema or rows).")]
    Verify(VerifyArgs),
    /// Measure the performance targets (docs/targets.md) in one run; print a table and write JSON (this repository's `cargo xtask bench`: built with the `bench` feature only)
    #[cfg(feature = "bench")]
    #[command(after_help = "Examples:
  cargo xtask bench                       every benchmark (several minutes; needs Docker, psql, pg_dump)
  cargo xtask bench --only backfill --backfill-rows 1000000
  cargo xtask bench --only fresh-db --only snapshot
  cargo xtask bench --only traffic        writers' max wait through every phase and rollback of both sets
  cargo xtask bench --only load           load a 10 MB migration (no server needed)
  cargo xtask bench --only change         a generated change's sync-trigger write cost")]
    Bench(BenchArgs),
    /// Start a disposable PostgreSQL, migrate the set with its seed data, print the decision table
    #[command(after_help = "Example:\n  phasegate demo                          needs Docker (PHASEGATE_PG_IMAGE names the image)")]
    Demo(DemoArgs),
}

/// The clap command with `bin` as the program name help and usage show, and
/// the examples of every help page rewritten from `phasegate` to `bin`.
pub fn command(bin: &str) -> clap::Command {
    rename_examples(Args::command().name(bin.to_string()).bin_name(bin.to_string()), bin)
}

fn rename_examples(mut cmd: clap::Command, bin: &str) -> clap::Command {
    if bin == "phasegate" {
        return cmd;
    }
    if let Some(help) = cmd.get_after_help() {
        let text: Vec<String> = help.to_string().lines().map(|l| rename_example(l, bin)).collect();
        cmd = cmd.after_help(text.join("\n"));
    }
    let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, |sc| rename_examples(sc, bin));
    }
    cmd
}

/// `  phasegate migrate --phase 1     why` as `  cargo xtask migrate --phase 1   why`:
/// the program name swapped, the explanation kept in its column.
fn rename_example(line: &str, bin: &str) -> String {
    let longer = bin.len() as isize - "phasegate".len() as isize;
    let Some(rest) = line.strip_prefix("  phasegate ") else { return line.to_string() };
    let renamed = match rest.find("   ") {
        Some(gap) if longer != 0 => {
            let (command, after) = rest.split_at(gap);
            let spaces = after.len() - after.trim_start().len();
            let keep = (spaces as isize - longer).max(2) as usize;
            format!("{command}{}{}", " ".repeat(keep), after.trim_start())
        }
        _ => rest.to_string(),
    };
    format!("  {bin} {renamed}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Aligned tables for people (coloured on a terminal)
    #[default]
    Text,
    /// One JSON document (documented in docs/json.md)
    Json,
    /// GitHub Actions workflow commands: findings on the pull request's lines
    /// (lint, verify, migrate, rollback, validate)
    Github,
    /// Markdown tables for $GITHUB_STEP_SUMMARY or a comment (lint, verify,
    /// migrate, rollback, validate)
    Markdown,
    /// One self-contained HTML page with charts (verify, migrate, rollback,
    /// recover, bench); --html FILE writes it beside another format
    Html,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct SetArgs {
    /// The migration set: a folder with phases.toml, migrations/, rollback/, validations/
    #[arg(long, default_value = ".", value_name = "PATH")]
    pub dir: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `--dry-run` and `--yes`, for the commands that change a database and
/// ask first; each command words their help for itself (`mut_arg` on its
/// subcommand).
#[derive(Debug, Clone, ClapArgs)]
pub struct ConfirmArgs {
    /// Print what would run and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct ConnectArgs {
    /// PostgreSQL connection string (the password is never printed); migrate, rollback, validate and
    /// status take --fleet FILE instead
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    #[command(flatten)]
    pub set: SetArgs,
    /// Where run logs go (default: <dir>/logs)
    #[arg(long, value_name = "PATH")]
    pub log_dir: Option<PathBuf>,
}

impl ConnectArgs {
    /// The connection string; every command checks before it runs that one
    /// was given (`commands::missing_target`), so this is "" only for a
    /// fleet run, which never reads it.
    pub fn url(&self) -> &str {
        self.database_url.as_deref().unwrap_or_default()
    }
}

/// `--fleet FILE`: run on every database of a fleet file, group by group.
pub(crate) const FLEET_HELP: &str = "A fleet file (TOML): run on each of its databases, group by group, canary first, instead of --database-url";

#[derive(Debug, Clone, ClapArgs)]
pub struct TimeoutArgs {
    /// lock_timeout for every migration and rollback statement
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// statement_timeout (a file's directive overrides it)
    #[arg(long, value_parser = parse_duration)]
    pub statement_timeout: Option<std::time::Duration>,
    /// Retries after a lock timeout, with exponential backoff and jitter
    #[arg(long, default_value_t = 5)]
    pub lock_retries: u32,
    /// Wait this long for another migrator's lock instead of failing at once
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub lock_wait: std::time::Duration,
}

/// `--max-replica-lag`: replica awareness for batched backfills (migrate, rollback).
#[derive(Debug, Clone, ClapArgs)]
pub struct ReplicaArgs {
    /// Before each batch of a batched backfill, wait while a streaming replica of this server lags more
    /// than this (read on the primary from pg_stat_replication; needs pg_monitor), e.g. 5s; off by default
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_replica_lag: Option<std::time::Duration>,
}

impl ReplicaArgs {
    /// The flag as the audit row records it (nothing when off).
    pub fn audit_args(&self) -> Vec<String> {
        self.max_replica_lag.map(|d| vec!["--max-replica-lag".into(), format!("{}ms", d.as_millis())]).unwrap_or_default()
    }
}

pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    phasegate::parse_duration(s)
}

/// `--max-lock-hold` (migrate, rollback, verify).
#[derive(Debug, Clone, ClapArgs)]
pub struct LockHoldArgs {
    /// REVIEW when a statement holds a lock that blocks writers (SHARE or stronger) longer than this,
    /// naming its file and line (every statement's locks are recorded either way)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_lock_hold: Option<std::time::Duration>,
}
