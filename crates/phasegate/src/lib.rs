//! phasegate's engine: phased, reversible, validated PostgreSQL migrations.
//!
//! **API boundary.** This crate knows no command line, no exit codes and no
//! terminal: it never prints, never reads the environment, and asks its
//! caller (through [`Ui`]) for confirmations and to show progress. The
//! `phasegate-cli` crate is one such caller; an adopter's own tool or test
//! suite can be another.
//!
//! The flow: [`load_set`] reads and validates a migration set; [`migrate`]
//! and [`rollback`] move a database forward or back a step at a time, each
//! step with its checks in one transaction; [`validate`] runs checks
//! read-only; [`rehearse`] is `verify` (every phase forward, back, compared
//! and forward again on a disposable server from [`Server`]); [`restore`]
//! puts back the rows a rollback backed up; [`recover`] brings back what an
//! irreversible phase destroyed, from what [`migrate`] kept before it ran;
//! [`lint_dir`], [`plan_phase`] and [`health_round`] read files or probe a
//! live database; [`load_fleet`] and [`run_fleet`] roll a set across many
//! databases, group by group. Migrate, rollback and rehearse trace every
//! statement's relation locks from a second session ([`LockHold`] on each
//! step).
//!
//! Modules are private; this list is the API.

mod apply;
mod backup;
mod change;
mod check;
mod db;
mod error;
mod fleet;
mod foreign;
mod health;
mod ledger;
mod lint;
mod locks;
mod pg;
mod rehearse;
mod risk;
mod schema_drift;
mod set;
mod snapshot;
mod sqltext;
mod tls;
mod walks;
mod ui;

#[cfg(test)]
mod proptests;
#[cfg(all(test, feature = "testing"))]
mod hostile;

#[cfg(feature = "testing")]
pub mod testing;

// Errors.
pub use error::{display_path, pg_message, Bypass, Confirmation, Error, Location, RestoreBlock, Result};
pub use error::{LoadError, SqlState};

// A migration set and the validation language.
pub use check::{worst as worst_verdict, Check, CheckKind, CheckResult, Condition, Severity, Verdict, When, DEFAULT_TIMEOUT as DEFAULT_CHECK_TIMEOUT};
pub use set::probe::{Probe, PROBES};
pub use set::{load as load_set, parse_duration, BatchSize, Directives, MigrationSet, Phase, Seed, SqlFile, Step, MANIFEST, MIGRATIONS, ROLLBACK, SEED, VALIDATIONS};
pub use set::Reversibility;

// Starting a set: init, with an existing database's schema as its baseline.
pub mod init;
mod import;
pub use import::{import, Imported};

// Moving a database: migrate, roll back, validate, seed.
pub use apply::{
    check_consistency, current_phase, migrate, pending, plan_rollback, refuse_irreversible, rollback, seed, validate, validate_applied, Action,
    Options as ApplyOptions, RunOutcome, StepOutcome, StepStatus, Target,
};
// Adopting another tool's ledger on a set `import` wrote (`migrate --adopt`).
pub use apply::{adopt, AdoptedStep, Adoption};

// The way back from an irreversible phase: what was kept, and recovering it.
pub use apply::{human_bytes, keeps_what_it_destroys, measure_phase, plan_recovery, recover, Recovery, RecoveryOutcome, DEFAULT_MAX_BACKUP_ROWS};
pub use backup::{
    destroys, recovery_plan, ColumnDef, Destroy, Destroys, Kept, KeptStep, Planned as PlannedRecoveryStatement, Recovered, RecoveryPlan, Size as KeptSize,
    Stage as RecoveryStage, TableRecovery, Unkept,
};
pub use ui::{BatchProgress, Confirming, Quiet, Ui};
// How far behind a replica is (a backfill waiting for it says so).
pub use ui::ReplicaLag;

// Lock tracing: what each statement locked, and for how long.
pub use locks::{fmt_held, longest_blocking as longest_blocking_lock, Blocks as LockBlocks, LockHold, LockMode, MAX_LOCK_HOLD_CHECK};

// The ledger and the audit log.
pub use ledger::{
    applied as applied_migrations, audit, drift, ensure as ensure_ledger, history, new_run_id, Applied, Drift, DriftKind, HistoryRow, RunRecord,
};
// Batch walks (backfills, batched rollbacks) stopped part way.
pub use walks::{unfinished as unfinished_walks, BatchWalk, WalkDirection};

// Backups of the rows rollbacks change, and restoring them.
pub use backup::{
    of_run as backups_of_run, of_runs as backups_of_runs, restore_in_tx as restore, targets as backup_targets, Backup, BackupKind, Change,
    Restored, Stored as StoredBackup, Target as BackupTarget, SCHEMA as BACKUP_SCHEMA,
};

// Connections and the migration lock.
pub use db::{acquire_lock, connect, connect_reporting, end_session, lock_holder, redact, release_lock, Blocker, LOCK_KEY};
pub use tls::{Channel as TlsChannel, SslMode, Transport, Verified as TlsVerified};

// Rehearsals (verify), snapshots and disposable servers.
pub use foreign::{detect as detect_layout, ledger as foreign_ledger, load as load_foreign, load_with as load_foreign_with, Detection, Evidence as LayoutEvidence, Layout, Options as ForeignOptions, Origin};
pub use pg::{first_that_starts, quote_ident, Backend, Chosen as ChosenBackend, Server, DEFAULT_IMAGE};
pub use pg::BackendKind;
pub use rehearse::{
    rehearse, roles_created_by, Against, Finding as RehearsalFinding, Isolation, Options as RehearseOptions, PhaseRehearsal, PhaseResult, Rehearsal, StepTiming,
    Summary as RehearsalSummary,
};
pub use schema_drift::{schema_drift, ObjectChange, ObjectDrift, SchemaDrift};
pub use snapshot::{column_order_only, schema_diff, take_snapshot, Snapshot, SnapshotOptions, TableFingerprint};

// Writing a zero-downtime change into a set (docs/changes.md).
pub use change::{
    files as change_files, generate as generate_change, raw as raw_change, render as render_change, write as write_change, Change as GeneratedChange, ChangeError, ColumnRef, ColumnsRef, NewMigration,
    NewPhase, NewProbe, Operation, Request as ChangeRequest, Source as ChangeSource, TableRef, Written as WrittenChange,
};

// Reading files: lint and plan.
pub use lint::{lint_dir, lint_phase, lint_set, summary as lint_summary, Finding as LintFinding, Severity as LintSeverity};
pub use risk::{plan_phase, Effect, KeepPreview, PhasePlan, Risk};

// Fleets: one set across many databases, group by group, canary first.
pub use fleet::{
    load as load_fleet, parse as parse_fleet, run as run_fleet, AuditFn as FleetAuditFn, Command as FleetCommand, DbReport as FleetDbReport,
    DbState as FleetDbState, Discovery as FleetDiscovery, Event as FleetEvent, Fleet, FleetUi, Group as FleetGroup, GroupCounts as FleetGroupCounts,
    GroupOutcome as FleetGroupOutcome, Halt as FleetHalt, HaltReason as FleetHaltReason, Listed as FleetListed, Member as FleetMember,
    OnError as FleetOnError, Options as FleetOptions, Outcome as FleetOutcome, PhaseCell as FleetPhaseCell, PhaseState,
    Plan as FleetPlan, PlannedGroup as FleetPlannedGroup, Select as FleetSelect,
};

// A live database's health.
pub use health::{round as health_round, Finding as HealthFinding, Level as HealthLevel, Options as HealthOptions, Round as HealthRound};

// SQL text.
pub use sqltext::{statements as split_statements, Statement};
