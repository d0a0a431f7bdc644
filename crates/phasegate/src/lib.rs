//! phasegate: phased, reversible, validated PostgreSQL migrations.
//!
//! The engine is the library: `set` loads a migration set, `check` is the
//! validation language, `ledger` the forward ledger and audit, `apply`
//! migrates and rolls back, `backup` saves and restores the rows a rollback
//! changes, `health` probes a live database, `snapshot` describes a schema,
//! `pg` provides disposable servers, `risk` plans, `lint` checks files for
//! lock safety, `report` renders. `cli` and `commands` are the command-line
//! front end on top; the engine never depends on them.

pub mod apply;
pub mod ui;
pub mod backup;
pub mod check;
pub mod db;
pub mod error;
pub mod foreign;
pub mod health;
pub mod ledger;
pub mod lint;
pub mod pg;
pub mod rehearse;
pub mod risk;
pub mod set;
pub mod snapshot;
pub mod sqltext;

pub use check::Verdict;
pub use error::{Error, Result};
