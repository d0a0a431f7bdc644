//! Generated changes under write load, per operation that has a sync or
//! fill trigger and a backfill (add-column with a fill, rename-column,
//! change-type, set-not-null, split-to-lookup): a table of the shape an
//! application writes to, `phasegate change OPERATION` written into a set
//! in a temporary folder, the set migrated to the change's expand phase
//! (its trigger installed), then
//! - the old application version's single-row INSERTs, and one multi-row
//!   INSERT, timed with the change's triggers enabled and disabled on the
//!   same table, alternating, in rounds. The target: at most 2x the inserts
//!   without the trigger (pgroll publishes about 4.5x for its own);
//! - the change's batched backfill (of the rows inserted with the trigger
//!   disabled) under the old version's writer (an UPDATE through the old
//!   column, an INSERT): 0 errors, p99 under 10 ms.

use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Context, Result};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{figure, median, writer, Figure, Silent, WriterStats, Writes};
use phasegate::{change, Options, Server, Target};

/// Inserts per measurement, and rounds of both measurements.
const INSERTS: usize = 3000;
const ROUNDS: usize = 5;
/// Rows of the one multi-row INSERT per measurement.
const BULK: usize = 20000;

/// The old application version's INSERT (it knows none of the new columns).
const INSERT: &str = "INSERT INTO accounts (email, full_name, score, nickname, plan) VALUES ($1, $2, 7, NULL, 'pro')";
const BULK_INSERT: &str = "INSERT INTO accounts (email, full_name, score, nickname, plan) SELECT 'bulk' || g || '@example.com', 'Bulk ' || g, g, NULL, (ARRAY['basic', 'pro', 'team'])[1 + g % 3] FROM generate_series(1, $1::int) g";

/// One operation: its command line, the change, the old version's writes
/// during the backfill, and the rows the backfill must leave disagreeing
/// (none).
struct Case {
    command: &'static str,
    operation: fn() -> Result<change::Operation>,
    writes: Writes,
    disagree: &'static str,
}

const INSERT_ONE: &str = "INSERT INTO accounts (email, full_name, score, nickname, plan) VALUES ('writer@example.com', 'Writer', 1, NULL, 'basic')";

static CASES: [Case; 5] = [
    Case {
        command: "add-column accounts.email_domain text --fill \"split_part(email, '@', 2)\" --not-null",
        operation: || {
            Ok(change::Operation::AddColumn { column: change::ColumnRef::parse("accounts.email_domain")?, type_sql: "text".into(), default: None, not_null: true, fill: Some("split_part(email, '@', 2)".into()) })
        },
        writes: Writes { update: "UPDATE accounts SET full_name = full_name || '.' WHERE id = $1", insert: INSERT_ONE },
        disagree: "SELECT count(*) FROM accounts WHERE email_domain IS NULL",
    },
    Case {
        command: "rename-column accounts.full_name display_name",
        operation: || Ok(change::Operation::RenameColumn { column: change::ColumnRef::parse("accounts.full_name")?, new_name: "display_name".into() }),
        writes: Writes { update: "UPDATE accounts SET full_name = full_name || '.' WHERE id = $1", insert: INSERT_ONE },
        disagree: "SELECT count(*) FROM accounts WHERE display_name IS DISTINCT FROM full_name",
    },
    Case {
        command: "change-type accounts.score bigint --up score::bigint --down score::integer",
        operation: || {
            Ok(change::Operation::ChangeType { column: change::ColumnRef::parse("accounts.score")?, type_sql: "bigint".into(), up: "score::bigint".into(), down: "score::integer".into(), new_name: Some("score_big".into()) })
        },
        writes: Writes { update: "UPDATE accounts SET score = score + 1 WHERE id = $1", insert: INSERT_ONE },
        disagree: "SELECT count(*) FROM accounts WHERE score_big IS DISTINCT FROM score::bigint",
    },
    Case {
        command: "set-not-null accounts.nickname --fill \"'anon'\"",
        operation: || Ok(change::Operation::SetNotNull { column: change::ColumnRef::parse("accounts.nickname")?, fill: Some("'anon'".into()) }),
        writes: Writes { update: "UPDATE accounts SET nickname = NULL WHERE id = $1", insert: INSERT_ONE },
        disagree: "SELECT count(*) FROM accounts WHERE nickname IS NULL",
    },
    Case {
        command: "split-to-lookup accounts.plan plans",
        operation: || Ok(change::Operation::SplitToLookup { column: change::ColumnRef::parse("accounts.plan")?, lookup: "plans".into(), reference: Some("plan_id".into()) }),
        writes: Writes { update: "UPDATE accounts SET plan = 'team' WHERE id = $1", insert: INSERT_ONE },
        disagree: "SELECT count(*) FROM accounts a LEFT JOIN plans p ON p.id = a.plan_id WHERE p.code IS DISTINCT FROM a.plan",
    },
];

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
    score integer NOT NULL,
    nickname text,
    plan text NOT NULL DEFAULT 'basic',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_email_idx ON accounts (email);
INSERT INTO accounts (email, full_name, score, nickname, plan)
SELECT 'seed' || g || '@example.com', 'Seed ' || g, g, CASE WHEN g % 2 = 0 THEN 'nick' || g END, (ARRAY['basic', 'pro', 'team'])[1 + g % 3]
FROM generate_series(1, 1000) g;
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

/// The figures of every operation.
pub fn sync_trigger_cost(server: &Server, say: &mut dyn FnMut(&str)) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for case in CASES.iter() {
        figures.extend(one(server, case, say).with_context(|| format!("change {}", case.command))?);
    }
    Ok(figures)
}

/// What one operation measured.
struct Measured {
    /// Single-row inserts/s with and without the triggers; rows/s of the multi-row INSERT.
    single: (f64, f64),
    bulk: (f64, f64),
    triggers: usize,
    backfilled: i64,
    writer: WriterStats,
}

fn measure(case: &'static Case, dir: &Path, url: &str) -> Result<Measured> {
    let set = phasegate::load_set(dir)?;
    let mut c = phasegate::connect(url, "phasegate bench")?;
    let opts = Options { accept_review: true, ..Default::default() };
    let backfill = set
        .phases
        .iter()
        .find(|p| p.steps.iter().any(|s| s.forward.directives.batch.is_some()))
        .ok_or_else(|| anyhow::anyhow!("the change wrote no batched backfill"))?
        .id;
    let o = phasegate::migrate(&mut c, &set, Target::Phase(backfill - 1), &opts, &mut Silent)?;
    if let Some(e) = o.failure {
        return Err(e.into());
    }
    let triggers: Vec<String> =
        c.query("SELECT tgname::text FROM pg_catalog.pg_trigger WHERE tgrelid = 'accounts'::regclass AND NOT tgisinternal", &[])?.iter().map(|r| r.get(0)).collect();
    ensure!(!triggers.is_empty(), "the change's expand phase installed no trigger on accounts");
    let insert = c.prepare(INSERT)?;
    let bulk = c.prepare(BULK_INSERT)?;
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
    // The backfill phase (the rows inserted with the triggers disabled are
    // its work) under the old version's writer.
    let max_id: i64 = c.query_one("SELECT max(id) FROM accounts", &[])?.get(0);
    let rows: i64 = c.query_one("SELECT count(*) FROM accounts", &[])?.get(0);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(url.to_string(), stop.clone(), max_id, &case.writes);
    let o = phasegate::migrate(&mut c, &set, Target::Phase(backfill), &opts, &mut Silent);
    stop.store(true, Ordering::Relaxed);
    let stats = w.join().unwrap_or_default();
    if let Some(e) = o?.failure {
        return Err(e.into());
    }
    let left: i64 = c.query_one(case.disagree, &[])?.get(0);
    ensure!(left == 0, "{left} rows left disagreeing after the backfill ({})", case.disagree);
    phasegate::end_session(c);
    Ok(Measured { single: (median(with), median(without)), bulk: (median(bulk_with), median(bulk_without)), triggers: triggers.len(), backfilled: rows, writer: stats })
}

/// One operation's figures.
fn one(server: &Server, case: &'static Case, say: &mut dyn FnMut(&str)) -> Result<Vec<Figure>> {
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    write_set(dir.path())?;
    let set = phasegate::load_set(dir.path())?;
    let request = change::Request { operation: (case.operation)()?, batch: 5000 };
    let change = phasegate::change::generate(&set, change::Source::Disposable { server, seed_rows: None }, &request)?;
    phasegate::change::write(dir.path(), &change, &format!("phasegate change {}", case.command))?;
    let op = case.command.split(' ').next().unwrap_or_default();
    let name = format!("bench_change_{}_{}", op.replace('-', "_"), std::process::id());
    let url = server.create_database(&name, None)?;
    let result = measure(case, dir.path(), &url);
    let _ = server.drop_database(&name);
    let Measured { single: (with, without), bulk: (bulk_with, bulk_without), triggers, backfilled, writer: w } = result?;
    let (cost, bulk_cost) = (without / with, bulk_without / bulk_with);
    say(&format!("change {op}: backfill of a {backfilled}-row table under the old version's writer: {} errors, p50 {:.1} ms, p99 {:.1} ms", w.errors, w.p50_ms, w.p99_ms));
    say(&format!("change {op}: single-row {with:.0} inserts/s with the trigger, {without:.0} without ({cost:.2}x); one {BULK}-row INSERT {bulk_with:.0} rows/s with, {bulk_without:.0} without ({bulk_cost:.2}x)"));
    Ok(vec![
        figure(
            &format!("generated change ({op}): the old version's single-row INSERTs with the change's trigger vs the same table without it"),
            format!("{with:.0} vs {without:.0} inserts/s = {cost:.2}x the cost ({triggers} trigger(s), median of {ROUNDS} rounds of {INSERTS})"),
            "<= 2x",
            Some(cost <= 2.0),
            serde_json::json!({"operation": op, "with_trigger_per_s": with, "without_trigger_per_s": without, "cost": cost, "inserts": INSERTS, "rounds": ROUNDS}),
        ),
        figure(
            &format!("generated change ({op}): one multi-row INSERT with the change's trigger vs without it (the trigger's own CPU cost, no commit per row)"),
            format!("{bulk_with:.0} vs {bulk_without:.0} rows/s = {bulk_cost:.2}x the cost (median of {ROUNDS} rounds of {BULK} rows)"),
            "<= 2x",
            Some(bulk_cost <= 2.0),
            serde_json::json!({"operation": op, "with_trigger_rows_per_s": bulk_with, "without_trigger_rows_per_s": bulk_without, "cost": bulk_cost, "rows": BULK, "rounds": ROUNDS}),
        ),
        figure(
            &format!("generated change ({op}): the old version's writer during the generated backfill"),
            format!("{backfilled}-row table backfilled; writer {} statements, {} errors, p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms", w.statements, w.errors, w.p50_ms, w.p99_ms, w.max_ms),
            "0 errors, p99 < 10 ms",
            Some(w.errors == 0 && w.p99_ms < 10.0),
            serde_json::json!({"operation": op, "rows": backfilled, "writer": w}),
        ),
    ])
}
