//! What the application's writers saw while phases and rollbacks ran
//! (`bench --only traffic`, or any test that times its statements): each
//! statement's wait bucketed over time, and per stage (a migrate or a
//! rollback) its p50 / p99 / max. `Traffic` is the JSON document both
//! write and the page reads.

use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::chart::{self, Line, Lines, Paint};
use super::fmt_ms;

/// One application statement.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it started, in ms since the traffic started.
    pub t_ms: f64,
    /// How long it took.
    pub wait_ms: f64,
    /// The stage it ran in (an index into the stages), none between stages.
    pub stage: Option<usize>,
    pub failed: bool,
}

/// A migrate or rollback the traffic ran through.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub start_ms: f64,
    pub end_ms: f64,
    pub statements: usize,
    pub failed: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The statements of one slice of time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bucket {
    /// The slice's start, in ms since the traffic started.
    pub t_ms: f64,
    pub statements: usize,
    pub failed: usize,
    pub p50_ms: f64,
    pub max_ms: f64,
}

/// A traffic run: its stages and its statements' waits over time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Traffic {
    /// `clinic set (2000 reservations)`
    pub label: String,
    /// The wait no statement should exceed (100 ms), drawn as a line.
    pub target_ms: Option<f64>,
    pub bucket_ms: f64,
    pub buckets: Vec<Bucket>,
    pub stages: Vec<Stage>,
}

/// Slices of time on the chart (at most; fewer for a short run).
const BUCKETS: f64 = 400.0;

impl Traffic {
    /// The document of `samples` taken while `stages` (name, start, end in
    /// ms since the traffic started) ran.
    pub fn new(label: &str, target_ms: Option<f64>, stages: &[(String, f64, f64)], samples: &[Sample]) -> Traffic {
        let end = samples.iter().map(|s| s.t_ms + s.wait_ms).chain(stages.iter().map(|s| s.2)).fold(0.0f64, f64::max);
        let bucket_ms = (end / BUCKETS).max(10.0);
        let mut slices: Vec<Vec<&Sample>> = vec![Vec::new(); (end / bucket_ms) as usize + 1];
        let last = slices.len() - 1;
        for s in samples {
            slices[((s.t_ms / bucket_ms) as usize).min(last)].push(s);
        }
        let buckets = slices
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(i, v)| {
                let waits: Vec<f64> = v.iter().map(|s| s.wait_ms).collect();
                Bucket { t_ms: i as f64 * bucket_ms, statements: v.len(), failed: v.iter().filter(|s| s.failed).count(), p50_ms: percentile(&waits, 0.5), max_ms: percentile(&waits, 1.0) }
            })
            .collect();
        let stages = stages
            .iter()
            .enumerate()
            .map(|(i, (name, start_ms, end_ms))| {
                let of: Vec<&Sample> = samples.iter().filter(|s| s.stage == Some(i)).collect();
                let waits: Vec<f64> = of.iter().map(|s| s.wait_ms).collect();
                Stage {
                    name: name.clone(),
                    start_ms: *start_ms,
                    end_ms: *end_ms,
                    statements: of.len(),
                    failed: of.iter().filter(|s| s.failed).count(),
                    p50_ms: percentile(&waits, 0.5),
                    p99_ms: percentile(&waits, 0.99),
                    max_ms: percentile(&waits, 1.0),
                }
            })
            .collect();
        Traffic { label: label.to_string(), target_ms, bucket_ms, buckets, stages }
    }
}

/// The `p` quantile (0..=1) of `v`, nearest rank; 0 for none.
fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// The writers' wait over time with the stages shaded and numbered, then
/// the table of stages.
pub(super) fn section(t: &Traffic) -> Markup {
    let max: Vec<(f64, f64)> = t.buckets.iter().map(|b| ((b.t_ms + t.bucket_ms / 2.0) / 1000.0, b.max_ms)).collect();
    let p50: Vec<(f64, f64)> = t.buckets.iter().map(|b| ((b.t_ms + t.bucket_ms / 2.0) / 1000.0, b.p50_ms)).collect();
    let bands = t
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.start_ms / 1000.0, s.end_ms / 1000.0, format!("{}. {}: {} statements, {} failed, p50 {}, p99 {}, max {}", i + 1, s.name, s.statements, s.failed, fmt_ms(s.p50_ms), fmt_ms(s.p99_ms), fmt_ms(s.max_ms))))
        .collect();
    let slice = fmt_ms(t.bucket_ms);
    let chart = chart::lines(&Lines {
        label: &format!("the writers' wait over time, {}", t.label),
        // The longest wait last: on top of the median it bounds.
        lines: vec![
            Line { paint: Paint::Median, tip: format!("the median wait per {slice}"), points: p50 },
            Line { paint: Paint::Latency, tip: format!("the longest wait per {slice}"), points: max },
        ],
        bands,
        target: t.target_ms.map(|ms| (ms, format!("target: every wait under {}", fmt_ms(ms)))),
        x_desc: "seconds since the traffic started",
        y_desc: "wait (ms, log scale)",
    });
    let over = |s: &Stage| t.target_ms.is_some_and(|ms| s.max_ms >= ms);
    html! {
        h3 { (t.label) }
        figure {
            (chart)
            figcaption { "Each point is one " (slice) " slice; shaded spans are the stages, numbered as in the table (hover for their figures)." }
            (chart::legend(&[(Paint::Latency, "longest wait"), (Paint::Median, "median wait"), (Paint::Band(0), "a stage (migrate or rollback)")]))
        }
        div.scroll { table {
            thead { tr { th.num { "#" } th { "stage" } th.num { "from" } th.num { "took" } th.num { "statements" } th.num { "failed" } th.num { "p50" } th.num { "p99" } th.num { "max" } } }
            tbody { @for (i, s) in t.stages.iter().enumerate() {
                tr.bad[s.failed > 0].warn[over(s)] {
                    td.num { (i + 1) } td { (s.name) } td.num { (format!("{:.1} s", s.start_ms / 1000.0)) } td.num { (fmt_ms(s.end_ms - s.start_ms)) }
                    td.num { (s.statements) } td.num { (s.failed) } td.num { (fmt_ms(s.p50_ms)) } td.num { (fmt_ms(s.p99_ms)) } td.num { (fmt_ms(s.max_ms)) }
                }
            } }
        } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_get_their_own_percentiles_and_buckets_cover_the_run() {
        let samples: Vec<Sample> = (0..100).map(|i| Sample { t_ms: i as f64 * 10.0, wait_ms: if i == 50 { 80.0 } else { 1.0 }, stage: (40..60).contains(&i).then_some(0), failed: i == 55 }).collect();
        let t = Traffic::new("t", Some(100.0), &[("migrate phase 1".into(), 400.0, 600.0)], &samples);
        assert_eq!((t.stages[0].statements, t.stages[0].failed, t.stages[0].max_ms, t.stages[0].p50_ms), (20, 1, 80.0, 1.0));
        assert_eq!(t.buckets.iter().map(|b| b.statements).sum::<usize>(), 100);
        let json = serde_json::to_string(&t).unwrap();
        let back: Traffic = serde_json::from_str(&json).unwrap();
        assert_eq!(back.stages[0].name, "migrate phase 1");
    }
}
