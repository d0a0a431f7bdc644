//! The write cost of a generated change's sync trigger: a table of the
//! shape an application writes to, `phasegate change rename-column` written
//! into a set in a temporary folder, the set migrated to the change's
//! expand phase (the new column and the two-way sync trigger), then the old
//! application version's single-row INSERTs timed with the trigger enabled
//! and with it disabled on the same table, alternating, in rounds. The
//! target: at most 2x the inserts without the trigger (pgroll publishes
//! about 4.5x for its own).

use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Context, Result};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{figure, median, writer, Figure, Silent, WriterStats, Writes};
use phasegate::{ApplyOptions, ChangeRequest, ChangeSource, ColumnRef, Operation, Server, Target};

/// Inserts per measurement, and rounds of both measurements.
const INSERTS: usize = 4000;
const ROUNDS: usize = 5;
/// Rows of the one multi-row INSERT per measurement.
const BULK: usize = 20000;

/// The old application version during the backfill: it renames people
/// (through the old column, so the sync trigger fills the new one) and
/// signs new ones up.
const OLD_VERSION_WRITES: Writes = Writes {
    update: "UPDATE accounts SET full_name = full_name || '.' WHERE id = $1",
    insert: "INSERT INTO accounts (email, full_name) VALUES ('writer@example.com', 'Writer')",
};

const MANIFEST: &str = r#"[[phase]]
id = 0
name = "baseline"
summary = "accounts as production has them"
versions = [1]
reversible = false
reason = "the existing schema"
baseline = true
"#;

const BASELINE: &str = "CREATE TABLE accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL,
    full_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_email_idx ON accounts (email);
";

const BASELINE_CHECK: &str = "-- check: accounts_exists
SELECT 1 WHERE to_regclass('accounts') IS NULL;
";

fn write_set(dir: &Path) -> Result<()> {
    let w = |rel: &str, text: &str| -> Result<()> {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("a folder")).with_context(|| phasegate::display_path(&p))?;
        std::fs::write(&p, text).with_context(|| phasegate::display_path(&p))
    };
    w(phasegate::MANIFEST, MANIFEST)?;
    w("migrations/V1__accounts.sql", BASELINE)?;
    w("validations/V1__accounts.sql", BASELINE_CHECK)?;
    std::fs::create_dir_all(dir.join("rollback")).context("creating rollback/")?;
    Ok(())
}

/// The figures: single-row inserts per second, and the rows per second of
/// one multi-row INSERT, with and without the sync trigger.
pub fn sync_trigger_cost(server: &Server, say: &mut dyn FnMut(&str)) -> Result<Vec<Figure>> {
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    write_set(dir.path())?;
    let set = phasegate::load_set(dir.path())?;
    let request = ChangeRequest { operation: Operation::RenameColumn { column: ColumnRef::parse("accounts.full_name")?, new_name: "display_name".into() }, batch: 5000 };
    let change = phasegate::generate_change(&set, ChangeSource::Disposable { server, seed_rows: None }, &request)?;
    phasegate::write_change(dir.path(), &change, "phasegate change rename-column accounts.full_name display_name")?;
    let set = phasegate::load_set(dir.path())?;

    let name = format!("bench_change_{}", std::process::id());
    let url = server.create_database(&name, None)?;
    let result = (|| -> Result<((f64, f64), (f64, f64), usize, (i64, WriterStats))> {
        let mut c = phasegate::connect(&url, "phasegate bench")?;
        let opts = ApplyOptions { accept_review: true, ..Default::default() };
        let o = phasegate::migrate(&mut c, &set, Target::Phase(1), &opts, &mut Silent)?;
        if let Some(e) = o.failure {
            return Err(e.into());
        }
        let triggers: Vec<String> = c
            .query("SELECT tgname::text FROM pg_catalog.pg_trigger WHERE tgrelid = 'accounts'::regclass AND NOT tgisinternal", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        ensure!(!triggers.is_empty(), "the change's expand phase installed no trigger on accounts");
        let insert = c.prepare("INSERT INTO accounts (email, full_name) VALUES ($1, $2)")?;
        let bulk = c.prepare("INSERT INTO accounts (email, full_name) SELECT 'bulk' || g || '@example.com', 'Bulk ' || g FROM generate_series(1, $1::int) g")?;
        let (mut with, mut without, mut bulk_with, mut bulk_without) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            for enabled in [true, false] {
                c.batch_execute(if enabled { "ALTER TABLE accounts ENABLE TRIGGER USER" } else { "ALTER TABLE accounts DISABLE TRIGGER USER" })?;
                let t = Instant::now();
                for i in 0..INSERTS {
                    c.execute(&insert, &[&format!("user{round}_{i}@example.com"), &format!("User {round} {i}")])?;
                }
                let rate = INSERTS as f64 / t.elapsed().as_secs_f64();
                if enabled { &mut with } else { &mut without }.push(rate);
                let t = Instant::now();
                c.execute(&bulk, &[&(BULK as i32)])?;
                let rate = BULK as f64 / t.elapsed().as_secs_f64();
                if enabled { &mut bulk_with } else { &mut bulk_without }.push(rate);
            }
        }
        c.batch_execute("ALTER TABLE accounts ENABLE TRIGGER USER")?;
        // What was timed is the trigger doing its work: an old-version write fills the new column.
        let filled: Option<String> = c.query_one("INSERT INTO accounts (email, full_name) VALUES ('probe@example.com', 'Probe') RETURNING display_name", &[])?.get(0);
        ensure!(filled.as_deref() == Some("Probe"), "the sync trigger did not fill display_name (got {filled:?})");
        // The backfill phase (the rows inserted with the trigger disabled
        // are its work) under the old version's writer.
        let backfill = set
            .phases
            .iter()
            .find(|p| p.steps.iter().any(|s| s.forward.directives.batch.is_some()))
            .ok_or_else(|| anyhow::anyhow!("the change wrote no batched backfill"))?
            .id;
        let todo: i64 = c.query_one("SELECT count(*) FROM accounts WHERE display_name IS NULL", &[])?.get(0);
        let max_id: i64 = c.query_one("SELECT max(id) FROM accounts", &[])?.get(0);
        let stop = Arc::new(AtomicBool::new(false));
        let w = writer(url.clone(), stop.clone(), max_id, &OLD_VERSION_WRITES);
        let o = phasegate::migrate(&mut c, &set, Target::Phase(backfill), &opts, &mut Silent);
        stop.store(true, Ordering::Relaxed);
        let stats = w.join().unwrap_or_default();
        if let Some(e) = o?.failure {
            return Err(e.into());
        }
        let left: i64 = c.query_one("SELECT count(*) FROM accounts WHERE display_name IS DISTINCT FROM full_name", &[])?.get(0);
        ensure!(left == 0, "{left} rows where display_name differs from full_name after the backfill");
        phasegate::end_session(c);
        Ok(((median(with), median(without)), (median(bulk_with), median(bulk_without)), triggers.len(), (todo, stats)))
    })();
    let _ = server.drop_database(&name);
    let ((with, without), (bulk_with, bulk_without), triggers, (backfilled, w)) = result?;
    let (cost, bulk_cost) = (without / with, bulk_without / bulk_with);
    say(&format!("change: backfill of {backfilled} rows under the old version's writer: {} errors, p99 {:.1} ms", w.errors, w.p99_ms));
    say(&format!("change: single-row {with:.0} inserts/s with the sync trigger, {without:.0} without ({cost:.2}x); one {BULK}-row INSERT {bulk_with:.0} rows/s with, {bulk_without:.0} without ({bulk_cost:.2}x)"));
    Ok(vec![
        figure(
            "generated change (rename-column): the old version's single-row INSERTs with the sync trigger vs the same table without it",
            format!("{with:.0} vs {without:.0} inserts/s = {cost:.2}x the cost ({triggers} trigger(s), median of {ROUNDS} rounds of {INSERTS})"),
            "<= 2x",
            Some(cost <= 2.0),
            serde_json::json!({"with_trigger_per_s": with, "without_trigger_per_s": without, "cost": cost, "inserts": INSERTS, "rounds": ROUNDS}),
        ),
        figure(
            "generated change (rename-column): one multi-row INSERT with the sync trigger vs without it (the trigger's own CPU cost, no commit per row)",
            format!("{bulk_with:.0} vs {bulk_without:.0} rows/s = {bulk_cost:.2}x the cost (median of {ROUNDS} rounds of {BULK} rows)"),
            "<= 2x",
            Some(bulk_cost <= 2.0),
            serde_json::json!({"with_trigger_rows_per_s": bulk_with, "without_trigger_rows_per_s": bulk_without, "cost": bulk_cost, "rows": BULK, "rounds": ROUNDS}),
        ),
        figure(
            "generated change (rename-column): the old version's writer during the generated backfill",
            format!(
                "{backfilled} rows backfilled; writer {} statements, {} errors, p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms",
                w.statements, w.errors, w.p50_ms, w.p99_ms, w.max_ms
            ),
            "0 errors, p99 < 10 ms",
            Some(w.errors == 0 && w.p99_ms < 10.0),
            serde_json::json!({"rows": backfilled, "writer": w}),
        ),
    ])
}
