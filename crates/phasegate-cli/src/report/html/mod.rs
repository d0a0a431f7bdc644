//! `--format html` and `--html FILE`: one self-contained page per run of
//! verify, migrate, rollback, recover and bench (and the demo). Inline CSS
//! and inline SVG charts only: a Content-Security-Policy of `default-src
//! 'none'` keeps the browser from fetching anything (no script, font or
//! image), and every name and value from SQL or files goes through maud,
//! which escapes it. Each page builder takes the engine's result types and
//! the run's [`Meta`] and returns the page as a `String`.

#[cfg(feature = "bench")]
mod bench;
#[cfg(feature = "browser")]
pub mod browser;
mod chart;
mod diff;
mod run;
#[cfg(feature = "bench")]
mod traffic;
mod verify;

use maud::{html, Markup, PreEscaped, DOCTYPE};
use phasegate::{CheckResult, Verdict};

#[cfg(feature = "bench")]
pub use bench::bench;
pub use run::{demo, recover, recover_plan, run, Act, RunExtras};
#[cfg(feature = "bench")]
pub use traffic::{Sample as TrafficSample, Traffic};
pub use verify::verify;

use crate::report::truncate;
use chart::{Bar, Bars, Paint};

const CSS: &str = include_str!("page.css");

/// Nothing is fetched: inline styles and `data:` images only, no script.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// What every page shows under its decision: which command ran on what,
/// when, for how long, and by whom.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// `cargo xtask rollback --phase 3`
    pub command: String,
    /// The migration set's folder.
    pub set: String,
    /// `2026-12-06 10:42:07 UTC`
    pub started_at: String,
    pub duration_s: f64,
    /// `user@host`
    pub operator: String,
    /// The connection string without its password (none for verify and bench).
    pub database: Option<String>,
    pub run_id: String,
    /// `--max-lock-hold`, drawn as a line on the lock chart.
    pub lock_limit_ms: Option<f64>,
}

/// The answer at the top of a page.
#[derive(Debug, Clone)]
pub struct Decision {
    /// PROCEED, REVIEW, ROLLBACK, ERROR, MISMATCH
    pub label: String,
    /// Why, in one sentence.
    pub why: String,
}

impl Decision {
    pub fn verdict(v: Verdict, why: impl Into<String>) -> Decision {
        Decision { label: v.to_string(), why: why.into() }
    }
    pub fn error(why: impl Into<String>) -> Decision {
        Decision { label: "ERROR".into(), why: why.into() }
    }
    fn class(&self) -> String {
        self.label.to_lowercase()
    }
}

/// The page a run that failed before it produced anything shows.
pub fn failed(meta: &Meta, error: &str) -> String {
    page(meta, &Decision::error(error), &[], html! {})
}

/// The page of a run whose output is text only (a dry run's SQL).
pub fn text(meta: &Meta, text: &str) -> String {
    let decision = Decision { label: "DRY RUN".into(), why: "nothing was changed; what would run:".into() };
    page(meta, &decision, &[], html! { section { pre { (text) } } })
}

/// A whole page: the decision, the run's facts, a table of contents, the
/// sections.
fn page(meta: &Meta, decision: &Decision, toc: &[(&str, &str)], body: Markup) -> String {
    let title = format!("{} · phasegate {}", decision.label, meta.command);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="Content-Security-Policy" content=(CSP);
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header.decision.(decision.class()) {
                    div {
                        div.verdict { (decision.label) }
                        p.why { (decision.why) }
                        dl {
                            dt { "command" } dd { code { (meta.command) } }
                            dt { "set" } dd { (meta.set) }
                            @if let Some(db) = &meta.database { dt { "database" } dd { (db) } }
                            dt { "when" } dd { (meta.started_at) }
                            dt { "took" } dd { (fmt_s(meta.duration_s)) }
                            dt { "by" } dd { (meta.operator) }
                            @if !meta.run_id.is_empty() { dt { "run" } dd { code { (meta.run_id) } } }
                        }
                    }
                }
                @if !toc.is_empty() {
                    nav { @for (id, name) in toc { a href=(format!("#{id}")) { (name) } } }
                }
                main { (body) }
                footer { "phasegate " (env!("CARGO_PKG_VERSION")) " · one self-contained page: nothing was fetched to show it" }
            }
        }
    }
    .into_string()
}

/// `850 ms`, `12.3 s`.
fn fmt_s(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        format!("{s:.1} s")
    }
}

/// `0.4 ms`, `37 ms`, `1.24 s`.
fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        crate::fmt::held(ms)
    }
}

fn badge(v: Verdict) -> Markup {
    html! { span.badge.(v.to_string().to_lowercase()) { (v) } }
}

/// Every check with its value, threshold and verdict; the evidence rows of
/// those that did not pass.
fn checks_table<'a>(checks: impl IntoIterator<Item = (String, &'a CheckResult)>) -> Markup {
    let checks: Vec<(String, &CheckResult)> = checks.into_iter().collect();
    if checks.is_empty() {
        return html! { p.note { "No check ran." } };
    }
    html! {
        div.scroll { table {
            thead { tr { th { "step" } th { "migration" } th { "check" } th { "when" } th.num { "value" } th { "threshold" } th { "verdict" } th { "file" } } }
            tbody {
                @for (step, c) in &checks {
                    tr.bad[c.verdict == Verdict::Rollback].warn[c.verdict == Verdict::Review] {
                        td { (step) } td { "V" (c.version) } td { code { (c.check) } } td.nowrap { (c.when.as_str()) }
                        td.num { (crate::report::fmt_value(c.value, &c.unit)) } td { (c.threshold) } td { (badge(c.verdict)) }
                        td.at title=(c.file) { (short_file(std::path::Path::new(&c.file))) ":" (c.line) }
                    }
                    @if c.verdict > Verdict::Proceed && !c.evidence.is_empty() {
                        tr { td colspan="8" { (evidence(&c.evidence)) } }
                    }
                }
            }
        } }
    }
}

/// Evidence rows (JSON objects) as a table with a column per key.
fn evidence(rows: &[serde_json::Value]) -> Markup {
    let mut keys: Vec<&str> = Vec::new();
    for r in rows {
        if let Some(o) = r.as_object() {
            for k in o.keys() {
                if !keys.contains(&k.as_str()) {
                    keys.push(k);
                }
            }
        }
    }
    let cell = |v: Option<&serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    html! {
        div.scroll { table {
            caption { "evidence: the first rows the check returned" }
            thead { tr { @for k in &keys { th { (k) } } } }
            tbody { @for r in rows { tr { @for k in &keys { td { (cell(r.get(k))) } } } } }
        } }
    }
}

/// How many statements the lock chart draws (the table lists them all).
const LOCK_BARS: usize = 40;

/// The locks section: per statement its longest hold as a bar, coloured by
/// whom it blocks, the `--max-lock-hold` limit as a line, and every
/// statement in a table below. `holds` pairs each hold with where it was
/// taken (`phase 2 migrate`, `V5 rollback`).
fn locks(holds: &[(String, &phasegate::locks::LockHold)], limit_ms: Option<f64>) -> Markup {
    // A statement's longest blocking hold (on a tie the strongest mode), or
    // its longest hold when none blocks anyone; in statement order.
    let mut per: Vec<(String, &phasegate::locks::LockHold)> = Vec::new();
    for (ctx, h) in holds {
        match per.iter_mut().find(|(c, o)| c == ctx && o.file == h.file && o.line == h.line) {
            Some(slot) if (h.is_blocking(), h.held_ms, h.mode) > (slot.1.is_blocking(), slot.1.held_ms, slot.1.mode) => slot.1 = h,
            Some(_) => {}
            None => per.push((ctx.clone(), h)),
        }
    }
    if per.is_empty() {
        return html! { p.note { "No lock was recorded (no statement touched an existing relation, or lock tracing was off)." } };
    }
    let mut ranked: Vec<&(String, &phasegate::locks::LockHold)> = per.iter().collect();
    ranked.sort_by(|a, b| (b.1.is_blocking(), b.1.held_ms).partial_cmp(&(a.1.is_blocking(), a.1.held_ms)).unwrap_or(std::cmp::Ordering::Equal));
    ranked.truncate(LOCK_BARS);
    let paint = |h: &phasegate::locks::LockHold| match h.blocks {
        phasegate::locks::Blocks::Readers => Paint::Readers,
        phasegate::locks::Blocks::Writers => Paint::Writers,
        phasegate::locks::Blocks::None => Paint::Nobody,
    };
    let rows: Vec<String> = ranked.iter().map(|(ctx, h)| format!("{ctx} {}:{}", short_file(&h.file), h.line)).collect();
    let bars = ranked
        .iter()
        .enumerate()
        .map(|(i, (ctx, h))| Bar { row: i, from: 0.0, to: h.held_ms, paint: paint(h), tip: format!("{ctx}: {} {} held {} by `{}` at {}", h.relation, h.mode, fmt_ms(h.held_ms), h.statement, h.at()) })
        .collect();
    let limit = limit_ms.map(|l| (l, format!("--max-lock-hold {}", fmt_ms(l))));
    let chart = chart::bars(&Bars { label: "the longest lock each statement held", rows, bars, x_desc: "held (ms)", limit });
    html! {
        figure {
            (chart)
            figcaption {
                @if per.len() > LOCK_BARS { "The " (LOCK_BARS) " longest of " (per.len()) " statements' holds (all are in the table). " }
                "A lock counts from its statement's start to the end of its transaction; hover a bar for the statement."
            }
            (chart::legend(&[(Paint::Readers, "blocks readers and writers (ACCESS EXCLUSIVE)"), (Paint::Writers, "blocks writers (SHARE and stronger)"), (Paint::Nobody, "blocks nobody")]))
        }
        details {
            summary { "every statement and its longest lock, blocking ones first (" (per.len()) ")" }
            div.scroll { table {
                thead { tr { th { "where" } th { "file" } th { "relation" } th { "mode" } th { "blocks" } th.num { "held" } th { "statement" } } }
                tbody {
                    @for (ctx, h) in &per {
                        tr.bad[limit_ms.is_some_and(|l| h.is_blocking() && h.held_ms > l)] {
                            td { (ctx) } td.at { (h.at()) } td { (h.relation) } td { (h.mode) }
                            td { (crate::report::blocks(h)) } td.num { (fmt_ms(h.held_ms)) } td { code { (h.statement) } }
                        }
                    }
                }
            } }
        }
    }
}

/// A file's name without its folders (the table shows the whole path).
fn short_file(p: &std::path::Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| phasegate::display_path(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_fetches_nothing_and_escapes_its_facts() {
        let meta = Meta { command: "phasegate verify".into(), set: "<script>alert(1)</script>".into(), ..Default::default() };
        let html = failed(&meta, "no such file: a<b>.sql");
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.contains(CSP), "{html}");
        assert!(!html.contains("<script") && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(html.contains("a&lt;b&gt;.sql"), "{html}");
        for fetch in ["src=", "href=\"http", "@import", "url("] {
            assert!(!html.contains(fetch), "{fetch} in {html}");
        }
    }
}
