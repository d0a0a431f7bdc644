//! The clinic set's batched backfill (V10) on a million reservations
//! against the same work as one UPDATE, each on a clone of the same
//! database and each under the clinic writer (docs/targets.md). The
//! writer also runs alone for a moment first: its latency then is the
//! machine's floor, which the backfill's figure is read against.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use phasegate::{MigrationSet, Server, Target, Ui};

use super::{clone_of, figure, median, ms, seeded_template, writer, Figure, Options, WriterStats, Writes};

/// The clinic writer: it confirms existing reservations (rows the backfill
/// also updates) and books new ones.
const CLINIC_WRITES: Writes = Writes {
    update: "UPDATE reservations SET status = 'CONFIRMED' WHERE id = $1",
    insert: "INSERT INTO reservations (\"patientName\", phone, \"birthDate\", gender, \"treatmentType\", service, \"preferredDate\", \"preferredTime\")
                 VALUES ('벤치', '010-0000-0000', '1990-01-01', 'FEMALE', 'FIRST_VISIT', 'SKIN_CARE', current_date + 30, '10:00')",
};

/// What the clinic set's V10 does, as the one UPDATE a DBA would write
/// without batches (a hash join of the table with services). The batched
/// file's own text with `LIMIT ALL` would not do: its key walk hands the
/// UPDATE an array of every id, probed one by one through the index.
const SINGLE_UPDATE: &str = r#"UPDATE reservations r
SET "serviceId" = s.id, "serviceName" = s.name, "estimatedDuration" = s."durationMinutes" + s."bufferMinutes",
    period = phasegate_parse_period(r."preferredTime", r."createdAt")
FROM services s
WHERE r."serviceId" IS NULL AND s.code = r.service::text"#;

/// The walk of a batched backfill, from its start (the remaining rows
/// counted) to its last batch: what the single UPDATE is compared with. The
/// step's checks before and after are left out on both sides (the target
/// in docs/targets.md compares the backfill, not its validation). Also
/// each batch's size and how long it held its locks.
#[derive(Default)]
struct WalkClock {
    started: Option<Instant>,
    finished: Option<Instant>,
    batches: Vec<(u64, f64)>,
}

impl Ui for WalkClock {
    fn confirm(&mut self, _p: &str, _e: &str) -> bool {
        true
    }
    fn progress(&mut self, _line: &str) {}
    fn batch(&mut self, progress: phasegate::BatchProgress<'_>) {
        match progress {
            phasegate::BatchProgress::Started { .. } => self.started = Some(Instant::now()),
            phasegate::BatchProgress::Advanced { size, took, .. } => self.batches.push((size, ms(took))),
            phasegate::BatchProgress::Finished { .. } => self.finished = Some(Instant::now()),
            _ => {}
        }
    }
}

impl WalkClock {
    fn seconds(&self) -> Option<f64> {
        Some(self.finished?.duration_since(self.started?).as_secs_f64())
    }

    /// The batches: how many, their sizes (smallest, median, largest) and
    /// their median time, in ms.
    fn summary(&self) -> serde_json::Value {
        let sizes: Vec<f64> = self.batches.iter().map(|b| b.0 as f64).collect();
        let max = sizes.iter().copied().fold(0.0, f64::max);
        let min = sizes.iter().copied().fold(f64::INFINITY, f64::min);
        serde_json::json!({
            "count": self.batches.len(), "size_min": min, "size_median": median(sizes.clone()), "size_max": max,
            "ms_median": median(self.batches.iter().map(|b| b.1).collect()),
        })
    }
}

/// One side of the comparison: rows/s, rows, the writer during it (and alone
/// before it), the batches.
struct Side {
    rate: f64,
    rows: u64,
    alone: WriterStats,
    during: WriterStats,
    batches: serde_json::Value,
}

/// Runs the backfill on a clone of `tpl`: the writer alone for 2 s, then
/// with the backfill (batched by phasegate, or as one UPDATE).
fn run_one(server: &Server, set: &MigrationSet, tpl: &str, version: i32, label: &str, batched: bool) -> Result<Side> {
    let (name, url) = clone_of(server, tpl, label)?;
    let mut c = phasegate::connect(&url, "phasegate bench")?;
    let max_id: i64 = c.query_one("SELECT max(id) FROM reservations", &[]).context("max id")?.get(0);
    let stop = Arc::new(AtomicBool::new(false));
    let alone = writer(url.clone(), stop.clone(), max_id, &CLINIC_WRITES);
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let alone = alone.join().unwrap_or_default();
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(url.clone(), stop.clone(), max_id, &CLINIC_WRITES);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let mut clock = WalkClock::default();
    let run = if batched {
        (|| -> Result<(u64, f64)> {
            phasegate::acquire_lock(&mut c, Duration::ZERO)?;
            let out = phasegate::migrate(&mut c, set, Target::Version(version), &phasegate::Options { accept_review: true, ..Default::default() }, &mut clock)?;
            if let Some(e) = out.failure {
                return Err(e.into());
            }
            let rows = out.steps.iter().find(|s| s.version == version).and_then(|s| s.rows).unwrap_or(0);
            Ok((rows, clock.seconds().ok_or_else(|| anyhow!("the backfill reported no walk"))?))
        })()
    } else {
        c.execute(SINGLE_UPDATE, &[]).context("single UPDATE").map(|n| (n, t.elapsed().as_secs_f64()))
    };
    stop.store(true, Ordering::Relaxed);
    let during = w.join().unwrap_or_default();
    let (rows, secs) = run?;
    drop(c);
    server.drop_database(&name)?;
    Ok(Side { rate: rows as f64 / secs, rows, alone, during, batches: clock.summary() })
}

/// The clinic set's batched backfill on `rows` reservations: batched
/// (phasegate) and as one UPDATE, each on a clone of the same database, each
/// with a writer.
pub(super) fn clinic(server: &Server, set: &MigrationSet, o: &Options, say: &mut dyn FnMut(&str)) -> Result<Vec<Figure>> {
    let step = set.steps().find(|s| s.forward.directives.batch.is_some()).ok_or_else(|| anyhow!("the set has no batched backfill"))?;
    let batch = step.forward.directives.batch.map(|b| b.describe()).unwrap_or_default();
    say(&format!("backfill: seeding {} reservations (applied up to V{})", o.backfill_rows, step.version - 1));
    let tpl = seeded_template(server, set, Some(o.backfill_rows), Some(step.version - 1), "backfill")?;
    say(&format!("backfill: batched ({batch})"));
    let b = run_one(server, set, &tpl, step.version, "bf_batched", true)?;
    say("backfill: single UPDATE");
    let s = run_one(server, set, &tpl, step.version, "bf_single", false)?;
    server.drop_database(&tpl)?;
    let ratio = b.rate / s.rate.max(1e-9);
    let values = serde_json::json!({
        "rows": o.backfill_rows, "batch": batch,
        "batched": {"rows": b.rows, "rows_per_s": b.rate, "writer": b.during, "writer_alone": b.alone, "batches": b.batches},
        "single_update": {"rows": s.rows, "rows_per_s": s.rate, "writer": s.during, "writer_alone": s.alone},
        "ratio": ratio,
    });
    let w = &b.during;
    Ok(vec![
        figure(
            "batched backfill rows/s vs a single UPDATE",
            format!(
                "batched {:.0} rows/s ({} batches of {}-{} rows, median {:.0} ms), single UPDATE {:.0} rows/s = {:.0}%",
                b.rate, b.batches["count"], b.batches["size_min"], b.batches["size_max"], b.batches["ms_median"].as_f64().unwrap_or(0.0), s.rate, ratio * 100.0
            ),
            ">= 90%",
            Some(ratio >= 0.9),
            values.clone(),
        ),
        figure(
            "concurrent writer during the batched backfill",
            format!(
                "{} errors, p50 {:.1} ms, p99 {:.1} ms; the writer alone before it: p99 {:.1} ms (single UPDATE: {} errors, p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms)",
                w.errors, w.p50_ms, w.p99_ms, b.alone.p99_ms, s.during.errors, s.during.p50_ms, s.during.p99_ms, s.during.max_ms
            ),
            "0 errors, p99 < 10 ms",
            Some(w.errors == 0 && w.p99_ms < 10.0 && w.statements > 0),
            values,
        ),
    ])
}
