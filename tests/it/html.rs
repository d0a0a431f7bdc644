//! The HTML report in a real browser (issue 21): the pages of a clinic
//! verify, a clinic rollback, a bench traffic run and a rehearsal of names
//! built to break a page (`tests/fixtures/html_injection`) are opened in
//! headless Chromium. For each: a screenshot under `target/html-report/`
//! for a person to look at, every chart laid out with a size and at least
//! one mark, no request but the page itself, no script, and no sideways
//! scrolling. With no browser the tests fail saying what to install.

use std::path::{Path, PathBuf};

use phasegate::testing::Factory;
use phasegate_cli::testing::browser::{Browser, Opened};

use crate::harness::{fixture, log_dir, on, repo, server, Cmd, TestDb};

/// Where the pages and their screenshots go.
fn out_dir() -> PathBuf {
    let d = repo().join("target/html-report");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A browser with a desktop window (`phone`: a phone's).
fn browser(phone: bool) -> Browser {
    let (w, h) = if phone { (390, 844) } else { (1280, 900) };
    Browser::launch(w, h).unwrap_or_else(|e| panic!("the HTML report test needs a browser: {e}"))
}

/// Opens `page`, saves its screenshot as `<name>.png`, and checks what
/// every page must hold: charts with a size and marks, no request, no
/// script, nothing wider than the window.
#[track_caller]
fn check_page(b: &Browser, page: &Path, name: &str) -> Opened {
    let o = b.open(page).unwrap_or_else(|e| panic!("{name}: {e}"));
    let shot = out_dir().join(format!("{name}.png"));
    std::fs::write(&shot, &o.screenshot).unwrap();
    eprintln!("{name}: {} charts, opened in {:.0} ms; screenshot {}", o.dom.charts.len(), o.open_ms, shot.display());
    assert!(o.fetches().is_empty(), "{name}: the page requested {:?}", o.fetches());
    assert_eq!(o.dom.scripts, 0, "{name}: a script element is in the page");
    assert!(!o.dom.charts.is_empty(), "{name}: no chart");
    for c in &o.dom.charts {
        assert!(c.width > 100.0 && c.height > 50.0 && c.marks >= 1, "{name}: chart `{}` is {}x{} with {} marks", c.label, c.width, c.height, c.marks);
    }
    assert!(!o.dom.overflows, "{name}: the page is wider than the window");
    o
}

/// Writes `html` as `<name>.html` and returns its path.
fn save(name: &str, html: &str) -> PathBuf {
    assert!(html.starts_with("<!DOCTYPE html>"), "{name}: not a page: {}", &html[..html.len().min(300)]);
    let p = out_dir().join(format!("{name}.html"));
    std::fs::write(&p, html).unwrap();
    p
}

/// `verify --format html` of the set in `dir` on the shared server.
fn verify_page(dir: &Path, extra: &[&str]) -> crate::harness::Output {
    let url = server().admin_url().to_string();
    Cmd::new(&["verify", "--backend", "url", "--server-url", &url]).args(extra).dir(dir).logs(log_dir()).run()
}

#[test]
fn a_clinic_verify_page_reads_in_a_browser_on_a_desk_and_a_phone() {
    let page = out_dir().join("clinic-verify.html");
    // --html beside JSON on the console, as CI would run it.
    let out = verify_page(&repo(), &["--seed-rows", "2000", "--format", "json", "--html", page.to_str().unwrap()]);
    out.expect_exit(0);
    assert_eq!(out.json()["verdict"], "PROCEED", "{}", out.stdout);
    assert!(out.stderr.contains("report: "), "{}", out.stderr);
    let o = check_page(&browser(false), &page, "clinic-verify");
    let text = &o.dom.text;
    assert!(text.starts_with("PROCEED"), "the decision comes first: {}", &text[..200.min(text.len())]);
    for part in ["Phases", "Timeline", "Checks", "Locks", "restored", "forward only", "phase 2 data: "] {
        assert!(text.contains(part), "no `{part}` on the page");
    }
    // Checks that all passed are folded: in the page, not on the screen.
    let html = std::fs::read_to_string(&page).unwrap();
    for check in ["unmigrated_percent", "service_mapping_matches", "period_distribution"] {
        assert!(html.contains(check), "no check `{check}` in the page");
    }
    let labels: Vec<&str> = o.dom.charts.iter().map(|c| c.label.as_str()).collect();
    assert!(labels.iter().any(|l| l.contains("time axis")) && labels.iter().any(|l| l.contains("lock")), "{labels:?}");
    check_page(&browser(true), &page, "clinic-verify-phone");
}

#[test]
fn a_clinic_rollback_page_shows_the_rows_backed_up_and_the_restore_command() {
    let template = Factory::new(repo()).phase(2).seed_rows(2000).template();
    let db = TestDb::from_template("html_rollback", template);
    // The data phase's rollback empties the columns its backfill filled: backed up first.
    let out = on(&db, &repo(), &["rollback", "--phase", "2", "--yes", "--format", "html"]).run();
    out.expect_exit(0);
    let page = save("clinic-rollback", &out.stdout);
    let o = check_page(&browser(false), &page, "clinic-rollback");
    let text = &o.dom.text;
    assert!(text.starts_with("PROCEED"), "{}", &text[..200.min(text.len())]);
    assert!(text.contains("rows were backed up") && text.contains("phasegate_backup."), "no backups on the page");
    let restore = text.lines().find(|l| l.starts_with("cargo xtask restore --run ")).unwrap_or_else(|| panic!("no restore command on the page"));
    assert!(restore.len() > "cargo xtask restore --run ".len() + 8, "{restore}");
}

#[test]
fn a_bench_traffic_page_charts_the_writers_wait_through_every_phase_and_rollback() {
    let (json, page) = (out_dir().join("bench-traffic.json"), out_dir().join("bench-traffic.html"));
    let args = ["bench", "--only", "traffic", "--verify-rows", "2000", "--server-url", server().admin_url(), "--json", json.to_str().unwrap(), "--html", page.to_str().unwrap()];
    let out = Cmd::new(&args).dir(&repo()).run();
    assert!(out.code == 0, "{out:?}");
    let o = check_page(&browser(false), &page, "bench-traffic");
    let traffic: Vec<_> = o.dom.charts.iter().filter(|c| c.label.contains("wait over time")).collect();
    assert_eq!(traffic.len(), 2, "a chart per shipped set: {:?}", o.dom.charts);
    // Bands per stage, the target line and two series at least.
    assert!(traffic.iter().all(|c| c.marks >= 10), "{traffic:?}");
    for stage in ["migrate phase 1", "rollback phase 3", "migrate phase 4 (new version only)"] {
        assert!(o.dom.text.contains(stage), "no stage `{stage}` on the page");
    }
}

#[test]
fn names_from_sql_and_files_render_as_text() {
    let out = verify_page(&fixture("html_injection"), &["--format", "html", "--max-lock-hold", "1ms"]);
    // The rollback forgets the index and the names: a mismatch (whatever the locks' REVIEW).
    out.expect_exit(5);
    let page = save("injection-verify", &out.stdout);
    assert!(!out.stdout.contains("<script>alert") && !out.stdout.contains("<img src"), "unescaped names in the page");
    assert!(out.stdout.contains("<title>--max-lock-hold 1.0 ms</title>"), "no limit line on the lock chart");
    let o = check_page(&browser(false), &page, "injection-verify");
    let text = &o.dom.text;
    assert!(text.starts_with("MISMATCH"), "{}", &text[..200.min(text.len())]);
    for name in ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>", "<img src=x onerror=alert(3)>", "<i>payload</i>"] {
        assert!(text.contains(name), "`{name}` is not shown as text");
    }
    assert!(text.contains("Findings") && text.contains("before") && text.contains("after"), "the diff is not on the page");
}
