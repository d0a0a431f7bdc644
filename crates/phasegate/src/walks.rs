//! Batch walks that started and did not finish, as `phasegate_batches`
//! holds them: a backfill (or a batched rollback) killed or failed part
//! way leaves its committed batches, the rows done and the key to resume
//! after. `status` shows them, and a phase with one is partly applied
//! rather than pending (see `PhaseState::of`). The next `migrate` (or
//! `rollback`) resumes after the recorded key (`apply/batch.rs`).

use postgres::GenericClient;
use serde::Serialize;

use crate::error::{db_err, Result};
use crate::set::MigrationSet;

/// Which way an unfinished walk was going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WalkDirection {
    /// A migration's batched backfill: the migration is not recorded yet.
    Forward,
    /// A batched rollback file: the migration is still recorded.
    Rollback,
}

/// An unfinished batch walk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchWalk {
    pub version: i32,
    /// The phase of `version` in the set (`None` when the set no longer has it).
    pub phase: Option<u32>,
    pub direction: WalkDirection,
    /// Rows changed by the committed batches.
    pub rows_done: i64,
    /// The key the next batch starts after (`None`: no key recorded).
    pub last_key: Option<String>,
    /// When the last batch committed (UTC, `YYYY-MM-DD HH:MM:SS UTC`).
    pub updated_at: String,
    /// Seconds since then (by the server's clock).
    pub seconds_ago: i64,
}

impl BatchWalk {
    /// One line for people: what, how far, where it resumes, since when.
    pub fn describe(&self) -> String {
        let what = match self.direction {
            WalkDirection::Forward => format!("V{} backfill", self.version),
            WalkDirection::Rollback => format!("V{} batched rollback", self.version),
        };
        let resume = match &self.last_key {
            Some(k) => format!("the next batch starts after key {k}"),
            None => "the next batch starts from the beginning".to_string(),
        };
        format!("{what} part way: {} rows done, {resume}; last batch at {} ({}s ago)", self.rows_done, self.updated_at, self.seconds_ago)
    }
}

/// The unfinished walks of a database, oldest version first (none when
/// the ledger does not exist yet).
pub fn unfinished(client: &mut impl GenericClient, set: &MigrationSet) -> Result<Vec<BatchWalk>> {
    // In the ledger's schema, which need not be on the search_path.
    let t = crate::ledger::tables(client)?;
    unfinished_in(client, set, &t)
}

/// [`unfinished`] from the ledger at `t`, found earlier in the session:
/// one round trip, none when there is no progress table.
pub(crate) fn unfinished_in(client: &mut impl GenericClient, set: &MigrationSet, t: &crate::ledger::Tables) -> Result<Vec<BatchWalk>> {
    if !t.batches_exist {
        return Ok(Vec::new());
    }
    let rows = client
        .query_typed(
            &format!(
                "SELECT version, last_key, rows_done, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"'),
                        extract(epoch FROM now() - updated_at)::bigint
                 FROM {} ORDER BY abs(version), version DESC",
                t.batches
            ),
            &[],
        )
        .map_err(db_err("reading backfill progress"))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let key: i32 = r.get(0);
            // A rollback's walk is recorded under the version negated
            // (`ledger::rollback_batch_key`).
            let (version, direction) = if key < 0 { (-key, WalkDirection::Rollback) } else { (key, WalkDirection::Forward) };
            let phase = set.steps().find(|s| s.version == version).map(|s| s.phase);
            BatchWalk { version, phase, direction, last_key: r.get(1), rows_done: r.get(2), updated_at: r.get(3), seconds_ago: r.get(4) }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_says_how_far_it_got_and_where_it_resumes() {
        let w = BatchWalk {
            version: 3,
            phase: Some(2),
            direction: WalkDirection::Forward,
            rows_done: 5000,
            last_key: Some("5000".into()),
            updated_at: "2026-01-02 03:04:05 UTC".into(),
            seconds_ago: 7,
        };
        assert_eq!(w.describe(), "V3 backfill part way: 5000 rows done, the next batch starts after key 5000; last batch at 2026-01-02 03:04:05 UTC (7s ago)");
        let r = BatchWalk { direction: WalkDirection::Rollback, last_key: None, ..w };
        assert!(r.describe().starts_with("V3 batched rollback part way: 5000 rows done, the next batch starts from the beginning"));
    }
}
