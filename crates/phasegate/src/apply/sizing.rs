//! How many rows the next batch of a walk asks for (docs/directives.md#batch).
//!
//! `batch N` asks for `N` every time. A time-sized walk (`batch`, `batch D`,
//! `batch D max N`) starts at [`START_ROWS`] and then, as GitLab's batched
//! background migrations do, follows the rate of its last batches: the next
//! batch asks for as many rows as the last [`WINDOW`] batches did in the
//! target duration, but at most twice and at least half the batch before
//! (one slow or fast batch does not swing the size), and never more than
//! the directive's `max` nor fewer than one row. A batch's time is how long
//! it held its row locks: from its UPDATE to its commit.

use std::collections::VecDeque;
use std::time::Duration;

use crate::set::BatchSize;

/// The first time-sized batch (before any batch was timed; also after a resume).
pub(crate) const START_ROWS: u64 = 1000;
/// How many of the last batches the rate is taken over.
const WINDOW: usize = 3;

/// The size of each batch of one walk.
#[derive(Debug)]
pub(crate) struct Sizer {
    how: BatchSize,
    next: u64,
    /// The last batches: rows asked for, how long each took.
    last: VecDeque<(u64, Duration)>,
}

impl Sizer {
    pub(crate) fn new(how: BatchSize) -> Sizer {
        let next = match how {
            BatchSize::Rows(n) => n,
            BatchSize::Time { max, .. } => START_ROWS.min(max),
        };
        Sizer { how, next, last: VecDeque::new() }
    }

    /// The rows the next batch asks for.
    pub(crate) fn size(&self) -> u64 {
        self.next
    }

    /// The batch that asked for [`Sizer::size`] rows took `took`; sizes the next.
    pub(crate) fn took(&mut self, took: Duration) {
        let BatchSize::Time { target, max } = self.how else { return };
        let asked = self.next;
        self.last.push_back((asked, took));
        if self.last.len() > WINDOW {
            self.last.pop_front();
        }
        let rows: u64 = self.last.iter().map(|(n, _)| n).sum();
        let secs: f64 = self.last.iter().map(|(_, d)| d.as_secs_f64()).sum::<f64>().max(1e-6);
        let ideal = (rows as f64 / secs * target.as_secs_f64()).round() as u64;
        self.next = ideal.clamp((asked / 2).max(1), asked.saturating_mul(2)).clamp(1, max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn time(max: u64) -> Sizer {
        Sizer::new(BatchSize::Time { target: ms(100), max })
    }

    #[test]
    fn a_fixed_count_never_changes() {
        let mut s = Sizer::new(BatchSize::Rows(5000));
        for t in [1, 10_000, 3] {
            s.took(ms(t));
            assert_eq!(s.size(), 5000);
        }
    }

    #[test]
    fn a_time_sized_walk_follows_its_rate_within_bounds() {
        let mut s = time(100_000);
        assert_eq!(s.size(), START_ROWS);
        // 1000 rows in 50 ms: 2000 would take the target; it may double.
        s.took(ms(50));
        assert_eq!(s.size(), 2000);
        // Very fast: at most twice the batch before.
        s.took(ms(1));
        assert_eq!(s.size(), 4000);
        // One very slow batch: at most half.
        s.took(ms(10_000));
        assert_eq!(s.size(), 2000);
        // Steady at the target: the size settles where the rate puts it.
        for _ in 0..10 {
            let asked = s.size();
            s.took(ms(asked / 20));
        }
        assert_eq!(s.size(), 2000);
    }

    #[test]
    fn never_over_the_max_nor_under_one_row() {
        let mut s = time(1500);
        assert_eq!(s.size(), 1000);
        s.took(ms(1));
        assert_eq!(s.size(), 1500);
        s.took(ms(1));
        assert_eq!(s.size(), 1500);
        let mut s = time(100);
        assert_eq!(s.size(), 100);
        for _ in 0..20 {
            s.took(ms(60_000));
        }
        assert_eq!(s.size(), 1);
    }
}
