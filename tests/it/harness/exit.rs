//! The exit codes of the phasegate command line, by name, for assertions
//! (`out.expect_exit(exit::REVIEW)`): one place, so they can become the
//! CLI's own `Exit` enum in one change.

/// Success: every check PROCEED.
pub const OK: i32 = 0;
/// An error: bad input, an SQL error, an unreachable database, a refused
/// operation.
pub const ERROR: i32 = 1;
/// A usage error (clap).
pub const USAGE: i32 = 2;
/// A check said REVIEW: a human must look before the next phase.
pub const REVIEW: i32 = 3;
/// A check said ROLLBACK: nothing of the failing transaction was kept.
pub const ROLLBACK: i32 = 4;
/// verify found a rollback that does not restore the state before it.
pub const MISMATCH: i32 = 5;
