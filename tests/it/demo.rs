//! `demo` tells the whole story in acts, on a disposable server it starts
//! itself: `auto` takes Docker, or the local binaries when Docker cannot
//! start a server.

use crate::harness::{exit, log_dir, repo, server, Cmd};

const ACTS: [&str; 7] = [
    "== The schema as it is, its data, and the additive phase ==",
    "== A gate says ROLLBACK ==",
    "== Forward to phase 3 ==",
    "== Roll back phase 3, then phase 2 ==",
    "== Re-apply ==",
    "== The irreversible cleanup ==",
    "== The way back: recover phase 4 ==",
];

/// Asserts the demo's output holds every act, in order, and what each shows.
#[track_caller]
fn assert_story(stdout: &str) {
    let mut at = 0;
    for act in ACTS {
        let found = stdout[at..].find(act).unwrap_or_else(|| panic!("no act `{act}` after byte {at}:\n{stdout}"));
        at += found + act.len();
    }
    let broken = &stdout[stdout.find(ACTS[1]).unwrap()..stdout.find(ACTS[2]).unwrap()];
    assert!(broken.contains("ABORTED (transaction rolled back)") && broken.contains("ROLLBACK"), "{broken}");
    assert!(broken.contains("evidence: {"), "the evidence rows are shown: {broken}");
    assert!(broken.contains("is not in the ledger") && broken.contains("exactly as before"), "{broken}");
    let back = &stdout[stdout.find(ACTS[3]).unwrap()..stdout.find(ACTS[4]).unwrap()];
    assert!(back.contains("rows backed up before the rollback changed them"), "{back}");
    assert!(stdout.contains("Type the phase name to continue\n> cleanup"), "the cleanup asks for its name: {stdout}");
    let recover = &stdout[stdout.find(ACTS[6]).unwrap()..];
    assert!(recover.contains("--dry-run: ") && recover.contains("nothing was changed"), "the plan comes first: {recover}");
    assert!(recover.contains("> recover phase 4") && recover.contains("reservations (V16): "), "the recovery and what came back: {recover}");
}

#[test]
fn demo_tells_the_story_in_acts() {
    // The shared test server (a database of its own is created and dropped).
    let out = Cmd::new(&["demo", "--seed-rows", "2000", "--server-url", server().admin_url()]).dir(&repo()).logs(log_dir()).run();
    out.expect_exit(exit::OK);
    assert_story(&out.stdout);
    let reports = out.stdout.lines().find(|l| l.contains("reports: ")).expect("the rollback act names its reports");
    for path in reports.split("reports: ").nth(1).unwrap().split(", ") {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(text.starts_with("# Rollback of phase "), "{path}: {text}");
    }
    // Every act on one page beside the log.
    let page = out.stdout.lines().find_map(|l| l.strip_prefix("page: ")).expect("the demo names its page");
    let html = std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{page}: {e}"));
    for act in ACTS {
        let title = act.trim_matches(|c| c == '=' || c == ' ');
        assert!(html.contains(title), "{page} lacks the act `{title}`");
    }
}

#[test]
fn demo_runs_on_the_local_binaries_when_docker_cannot_start_a_server() {
    // A Docker host nothing listens on: `auto` must fall back to initdb and pg_ctl.
    let out = Cmd::new(&["demo", "--seed-rows", "1000"])
        .dir(&repo())
        .logs(log_dir())
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .process();
    out.expect_exit(exit::OK);
    assert!(out.stdout.contains("disposable PostgreSQL (local) ready"), "{}", out.stdout);
    assert_story(&out.stdout);
}

#[test]
fn a_docker_backend_that_cannot_start_names_the_three_ways_to_a_server() {
    // `auto` falls back to the local binaries on this machine (the test
    // above), so the error is seen through `--backend docker`; the `auto`
    // error with both reasons is a unit test of `phasegate::first_that_starts`.
    let out = Cmd::new(&["verify", "--backend", "docker"]).dir(&crate::harness::fixture("accounts")).env("DOCKER_HOST", "tcp://127.0.0.1:1").process();
    let error = out.expect_exit(exit::ERROR).error_line().to_string();
    assert!(error.starts_with("docker backend: cannot start a PostgreSQL container"), "{error}");
    assert!(error.ends_with(phasegate_cli::testing::INSTALL_HINT), "{error}");
    for way in ["Docker engine", "apt-get install postgresql", "PHASEGATE_TEST_DATABASE_URL"] {
        assert!(error.contains(way), "the hint names {way}: {error}");
    }
}
