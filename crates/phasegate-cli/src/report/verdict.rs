//! The verdict of a run, as every output states it: its checks' verdict
//! (the engine's `Verdict`: PROCEED, REVIEW, ROLLBACK) when it ran to its
//! end, and ERROR when it failed (exit 1: bad input, an SQL error, an
//! unreachable database, a refusal). The engine's `Verdict` stays the
//! checks' scale; ERROR is not a check's answer but the run's.

use serde::Serialize;

use phasegate::{CheckResult, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunVerdict {
    Proceed,
    Review,
    Rollback,
    /// The run failed: its checks did not decide it.
    Error,
}

impl RunVerdict {
    /// The verdict of a run whose checks are `checks`: ERROR when it failed.
    pub fn of<'a>(checks: impl IntoIterator<Item = &'a CheckResult>, failed: bool) -> RunVerdict {
        if failed {
            RunVerdict::Error
        } else {
            phasegate::worst_verdict(checks).into()
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunVerdict::Proceed => "PROCEED",
            RunVerdict::Review => "REVIEW",
            RunVerdict::Rollback => "ROLLBACK",
            RunVerdict::Error => "ERROR",
        }
    }
}

impl From<Verdict> for RunVerdict {
    fn from(v: Verdict) -> RunVerdict {
        match v {
            Verdict::Proceed => RunVerdict::Proceed,
            Verdict::Review => RunVerdict::Review,
            Verdict::Rollback => RunVerdict::Rollback,
        }
    }
}

impl std::fmt::Display for RunVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_is_error_whatever_its_checks_said() {
        assert_eq!(RunVerdict::of(&[], true), RunVerdict::Error);
        assert_eq!(RunVerdict::of(&[], false), RunVerdict::Proceed);
        assert_eq!(serde_json::to_value(RunVerdict::Error).unwrap(), "ERROR");
        assert_eq!(serde_json::to_value(RunVerdict::from(Verdict::Review)).unwrap(), serde_json::to_value(Verdict::Review).unwrap());
    }
}
