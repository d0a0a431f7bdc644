//! The exit codes of docs/exit-codes.md, as one type: every command ends
//! in one of these, and only `main` / `run` turn it into a process code.

use std::fmt;

use phasegate::Verdict;

/// How a command ended (docs/exit-codes.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// 0: success; every check PROCEED (or the command has none).
    Ok = 0,
    /// 1: an error: bad input, a SQL error, an unreachable database, a
    /// refused operation.
    Failed = 1,
    /// 2: a usage error.
    Usage = 2,
    /// 3: a check said REVIEW.
    Review = 3,
    /// 4: a check said ROLLBACK.
    Rollback = 4,
    /// 5: `verify` found a rollback that does not restore the prior state.
    Mismatch = 5,
}

impl Exit {
    /// The number the process exits with.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The exit of a run that ended with `verdict`.
    pub fn of(verdict: Verdict) -> Exit {
        match verdict {
            Verdict::Proceed => Exit::Ok,
            Verdict::Review => Exit::Review,
            Verdict::Rollback => Exit::Rollback,
        }
    }

    /// A run that failed, or was refused as a usage error.
    pub fn is_error(self) -> bool {
        matches!(self, Exit::Failed | Exit::Usage)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code() as u8)
    }
}
