//! The argument of `-- phasegate: batch` (docs/directives.md#batch): a
//! fixed row count, or a target duration per batch from which the walk
//! sizes each batch by how long the last ones took (`apply/sizing.rs`).

use std::time::Duration;

/// The target duration of a time-sized batch when none is given.
pub const DEFAULT_BATCH_TARGET: Duration = Duration::from_millis(150);
/// The most rows a time-sized batch takes when no `max` is given.
pub const DEFAULT_BATCH_MAX: u64 = 100_000;

/// How a batched file sizes its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    /// `batch N`: every batch asks for `N` rows.
    Rows(u64),
    /// `batch`, `batch D`, `batch D max N`, `batch max N`: each batch is
    /// sized so that it takes about `target`, never more than `max` rows.
    Time { target: Duration, max: u64 },
}

impl BatchSize {
    /// The directive's argument, as its author would write it.
    pub fn describe(&self) -> String {
        match self {
            BatchSize::Rows(n) => format!("{n} rows"),
            BatchSize::Time { target, max } => format!("{} ms per batch, at most {max} rows", target.as_millis()),
        }
    }
}

/// Parses the text after `batch`: empty, `N`, `D`, `D max N` or `max N`
/// (a duration needs its unit: a bare number is a row count).
pub fn parse(arg: &str) -> Result<BatchSize, String> {
    let words: Vec<&str> = arg.split_whitespace().collect();
    let bad = || format!("`batch` needs a positive row count or a target duration per batch (e.g. 5000, 150ms, 200ms max 20000), got `{arg}`");
    let positive = |s: &str| s.parse::<u64>().ok().filter(|n| *n > 0);
    let (first, rest) = match words.split_first() {
        None => return Ok(BatchSize::Time { target: DEFAULT_BATCH_TARGET, max: DEFAULT_BATCH_MAX }),
        Some((f, r)) => (*f, r),
    };
    if let Some(n) = positive(first) {
        if !rest.is_empty() {
            return Err(format!("`batch {n}` is a fixed row count: `{}` goes with a target duration (e.g. batch 150ms max {n})", rest.join(" ")));
        }
        return Ok(BatchSize::Rows(n));
    }
    let (target, rest) = if first == "max" {
        (DEFAULT_BATCH_TARGET, words.as_slice())
    } else {
        if first.chars().all(|c| c.is_ascii_digit()) || !first.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(bad());
        }
        let d = crate::set::parse_duration(first).map_err(|_| bad())?;
        if d.is_zero() {
            return Err(bad());
        }
        (d, rest)
    };
    let max = match rest {
        [] => DEFAULT_BATCH_MAX,
        ["max", n] => positive(n).ok_or_else(|| format!("`max` needs a positive row count, got `{n}`"))?,
        _ => return Err(bad()),
    };
    Ok(BatchSize::Time { target, max })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_fixed_and_a_duration_is_a_target() {
        let ms = Duration::from_millis;
        assert_eq!(parse("5000"), Ok(BatchSize::Rows(5000)));
        assert_eq!(parse(""), Ok(BatchSize::Time { target: DEFAULT_BATCH_TARGET, max: DEFAULT_BATCH_MAX }));
        assert_eq!(parse("200ms"), Ok(BatchSize::Time { target: ms(200), max: DEFAULT_BATCH_MAX }));
        assert_eq!(parse("1s max 20000"), Ok(BatchSize::Time { target: ms(1000), max: 20_000 }));
        assert_eq!(parse("max 500"), Ok(BatchSize::Time { target: DEFAULT_BATCH_TARGET, max: 500 }));
        for bad in ["0", "many", "0ms", "5000 max 10", "150ms max 0", "150ms max", "150ms min 3", "-3"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("5000 max 10").unwrap_err().contains("fixed row count"));
    }
}
