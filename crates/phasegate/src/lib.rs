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
//! and forward again on a disposable server from [`Server`]); [`backup::restore`]
//! puts back the rows a rollback backed up; [`recover::run`] brings back what an
//! irreversible phase destroyed, from what [`migrate`] kept before it ran;
//! [`lint::dir`], [`plan_phase`] and [`health::round`] read files or probe a
//! live database; [`fleet::load`] and [`fleet::run`] roll a set across many
//! databases, group by group. Migrate, rollback and rehearse trace every
//! statement's relation locks from a second session ([`locks::LockHold`] on
//! each step).
//!
//! The core flow (loading a set, moving a database, its checks, connections
//! and the errors) is at the crate root; each concern beside it is a module
//! with short names inside (`fleet::Options`, `lint::Finding`,
//! `health::Finding`). ARCHITECTURE.md lists the whole API.

mod apply;
pub mod backup;
pub mod change;
mod check;
mod db;
mod error;
pub mod fleet;
pub mod foreign;
pub mod health;
pub mod ledger;
pub mod lint;
pub mod locks;
mod pg;
pub mod rehearse;
mod risk;
mod schema_drift;
mod set;
mod snapshot;
mod sqltext;
pub mod tls;
pub mod walks;
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
    check_consistency, current_phase, migrate, pending, plan_rollback, refuse_irreversible, rollback, seed, validate, validate_applied, Action, Options,
    RunOutcome, StepOutcome, StepStatus, Target, DEFAULT_MAX_BACKUP_ROWS,
};
// Adopting another tool's ledger on a set `import` wrote (`migrate --adopt`).
pub use apply::{adopt, AdoptedStep, Adoption};
pub use ui::{BatchProgress, Confirming, Quiet, Ui};
// How far behind a replica is (a backfill waiting for it says so).
pub use ui::ReplicaLag;

/// The way back from an irreversible phase: what `migrate` keeps before
/// such a phase, planning a recovery and running it (docs/safety.md). What
/// was kept and the recovery's statements are in [`backup`].
pub mod recover {
    pub use crate::apply::{
        keeps_what_it_destroys, measure_phase, plan_recovery as plan, recover as run, Recovery, RecoveryOutcome as Outcome,
    };
}

// Connections and the migration lock.
pub use db::{acquire_lock, connect, connect_reporting, end_session, lock_holder, redact, release_lock, Blocker, LOCK_KEY};

// Rehearsals (verify: the types are in `rehearse`), snapshots and disposable servers.
pub use pg::{first_that_starts, quote_ident, Backend, Chosen as ChosenBackend, Server, DEFAULT_IMAGE};
pub use pg::BackendKind;
pub use rehearse::rehearse;
pub use schema_drift::{schema_drift, ObjectChange, ObjectDrift, SchemaDrift};
pub use snapshot::{column_order_only, schema_diff, take_snapshot, Snapshot, SnapshotOptions, TableFingerprint};

// Reading files: plan (lint is in `lint`).
pub use risk::{plan_phase, Effect, KeepPreview, PhasePlan, Risk};

// SQL text.
pub use sqltext::{statements as split_statements, Statement};
