//! The validation language (docs/checks.md): parsing check headers, evaluating
//! thresholds, and running checks against a database to reach a verdict.
//!
//! `parse` reads a validation file into checks; `run` executes one and
//! reaches its verdict; this file holds the model.

mod batch;
mod parse;
mod run;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use batch::run_all;
pub use parse::{parse_duration, parse_file};
pub use run::{worst, CheckResult, Scope};
pub(crate) use run::in_transaction;

/// How long a check's query may run unless its `-- timeout:` header says
/// otherwise: a check runs inside the migration's transaction, holding the
/// migration's locks, so it must not run unbounded.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The answer at a gate. Ordered: the verdict of a run is the worst of its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Proceed,
    Review,
    Rollback,
}

impl Verdict {
    /// Parses the lowercase form used in check headers: `proceed`, `review`, `rollback`.
    pub fn parse(s: &str) -> Option<Verdict> {
        match s {
            "proceed" => Some(Verdict::Proceed),
            "review" => Some(Verdict::Review),
            "rollback" => Some(Verdict::Rollback),
            _ => None,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Proceed => "PROCEED",
            Verdict::Review => "REVIEW",
            Verdict::Rollback => "ROLLBACK",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
}

/// When a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum When {
    BeforeMigrate,
    AfterMigrate,
    /// Inside the rollback's transaction, before its script: what the
    /// rollback is about to change (e.g. the tenants it affects).
    BeforeRollback,
    AfterRollback,
}

impl When {
    pub fn parse(s: &str) -> Option<When> {
        match s {
            "before-migrate" => Some(When::BeforeMigrate),
            "after-migrate" => Some(When::AfterMigrate),
            "after-rollback" => Some(When::AfterRollback),
            "before-rollback" => Some(When::BeforeRollback),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            When::BeforeMigrate => "before-migrate",
            When::AfterMigrate => "after-migrate",
            When::AfterRollback => "after-rollback",
            When::BeforeRollback => "before-rollback",
        }
    }
}

/// A threshold condition on a metric value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Condition {
    Eq { value: f64 },
    Ne { value: f64 },
    Lt { value: f64 },
    Le { value: f64 },
    Gt { value: f64 },
    Ge { value: f64 },
    Between { low: f64, high: f64 },
}

impl Condition {
    /// Parses `= x`, `!= x`, `< x`, `<= x`, `> x`, `>= x`, `between x and y`.
    pub fn parse(s: &str) -> std::result::Result<Condition, String> {
        let s = s.trim();
        let num = |t: &str| -> std::result::Result<f64, String> {
            let t = t.trim();
            t.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("`{t}` is not a number"))
        };
        if let Some(rest) = s.strip_prefix("between ") {
            let (a, b) = rest
                .split_once(" and ")
                .ok_or_else(|| format!("`{s}`: expected `between x and y`"))?;
            let (low, high) = (num(a)?, num(b)?);
            if low > high {
                return Err(format!("`{s}`: the lower bound is above the upper bound"));
            }
            return Ok(Condition::Between { low, high });
        }
        for (op, make) in [
            ("!=", (|v| Condition::Ne { value: v }) as fn(f64) -> Condition),
            ("<=", |v| Condition::Le { value: v }),
            (">=", |v| Condition::Ge { value: v }),
            ("=", |v| Condition::Eq { value: v }),
            ("<", |v| Condition::Lt { value: v }),
            (">", |v| Condition::Gt { value: v }),
        ] {
            if let Some(rest) = s.strip_prefix(op) {
                return Ok(make(num(rest)?));
            }
        }
        Err(format!(
            "`{s}` is not a condition (use = x, != x, < x, <= x, > x, >= x or between x and y)"
        ))
    }

    pub fn holds(&self, v: f64) -> bool {
        const EPS: f64 = 1e-9;
        match *self {
            Condition::Eq { value } => (v - value).abs() <= EPS,
            Condition::Ne { value } => (v - value).abs() > EPS,
            Condition::Lt { value } => v < value,
            Condition::Le { value } => v <= value + EPS,
            Condition::Gt { value } => v > value,
            Condition::Ge { value } => v + EPS >= value,
            Condition::Between { low, high } => v + EPS >= low && v <= high + EPS,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Eq { value } => write!(f, "= {value}"),
            Condition::Ne { value } => write!(f, "!= {value}"),
            Condition::Lt { value } => write!(f, "< {value}"),
            Condition::Le { value } => write!(f, "<= {value}"),
            Condition::Gt { value } => write!(f, "> {value}"),
            Condition::Ge { value } => write!(f, ">= {value}"),
            Condition::Between { low, high } => write!(f, "between {low} and {high}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckKind {
    /// The query returns offending rows; none passes.
    Assertion,
    /// The query returns one number; thresholds decide. A NULL means there
    /// is nothing to measure (an empty population): `empty` is the verdict.
    Metric { unit: String, proceed: Condition, review: Option<Condition>, empty: Verdict },
    /// `sql` is a whole script (e.g. a Sqitch verify script) that passes when
    /// it runs without an error. It runs in a savepoint that is always
    /// rolled back, so it never changes anything; an error fails it and the
    /// result names the file and line. Built by `foreign`, never parsed from
    /// a validation file.
    Script,
}

/// One check of a validation file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: String,
    pub description: Option<String>,
    pub severity: Severity,
    pub kind: CheckKind,
    pub when: When,
    pub sql: String,
    pub file: PathBuf,
    /// Line of the `-- check:` header.
    pub line: usize,
    /// Line where the query starts.
    pub sql_line: usize,
    /// The query's `statement_timeout` (`-- timeout:`, else
    /// `DEFAULT_TIMEOUT`); zero means none.
    #[serde(rename = "timeout_ms", serialize_with = "serialize_ms")]
    pub timeout: Duration,
    /// `-- holds: until-next-migration`: the check describes the state right
    /// after its own migration, which a later migration of its phase moves
    /// past on purpose; `validate` and `status` skip it (shown as skipped)
    /// once such a later migration is applied. `migrate` and `verify` run it
    /// right after its own migration, as every after-migrate check.
    pub until_next_migration: bool,
}

fn serialize_ms<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl Check {
    /// The rule as text, for reports: `= 0 / review <= 1` or `0 rows`; an
    /// `empty:` verdict other than the default is appended (`/ empty REVIEW`).
    pub fn threshold(&self) -> String {
        match &self.kind {
            CheckKind::Assertion => "0 rows".into(),
            CheckKind::Script => "no error".into(),
            CheckKind::Metric { proceed, review, empty, .. } => {
                let mut s = proceed.to_string();
                if let Some(r) = review {
                    s.push_str(&format!(" / review {r}"));
                }
                if *empty != Verdict::Proceed {
                    s.push_str(&format!(" / empty {empty}"));
                }
                s
            }
        }
    }
}
