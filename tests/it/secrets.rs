//! A password never appears in any output, log file or audit row (docs/commands.md,
//! docs/ledger.md): every command and its error paths run as real processes connecting
//! as a role with a distinctive password, in each form a connection string
//! can carry it (URL, `?password=`, key=value, DATABASE_URL), with tracing on.

use std::path::Path;

use crate::harness::{copy_set, exit, fixture, on, server, Cmd, TestDb};

/// The role's password; `#` forces percent-encoding in a URL, so both the
/// raw and the encoded form are searched for through their common prefix.
const SECRET: &str = "Quartz-Zebra#9041";
const ENCODED: &str = "Quartz-Zebra%239041";
/// A wrong password is a secret too.
const WRONG: &str = "Ocelot-Mistyped-77";
const NEEDLES: &[&str] = &["Quartz-Zebra", "Ocelot-Mistyped"];

/// One command line to run, with the exit code it should have (so the test
/// knows each path really ran).
struct Case {
    name: &'static str,
    cmd: Cmd,
    exit: i32,
}

fn leaks(text: &str) -> Option<&'static str> {
    NEEDLES.iter().copied().find(|n| text.contains(n))
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn no_password_in_any_output_log_or_audit_row() {
    let db = TestDb::new("secrets");
    let role = format!("phasegate_secret_{}", std::process::id());
    let mut admin = phasegate::connect(server().admin_url(), "phasegate-test").unwrap();
    admin.batch_execute(&format!("CREATE ROLE {role} LOGIN CREATEDB PASSWORD '{SECRET}'; ALTER DATABASE {} OWNER TO {role};", db.name)).unwrap();
    let host_port = db.url.split('@').nth(1).and_then(|r| r.split('/').next()).unwrap().to_string();
    let (host, port) = host_port.split_once(':').unwrap();
    let url = format!("postgres://{role}:{ENCODED}@{host_port}/{}", db.name);
    let query_form = format!("postgres://{role}@{host_port}/{}?password={ENCODED}", db.name);
    let key_value = format!("host={host} port={port} user={role} password={SECRET} dbname={}", db.name);
    let wrong = format!("postgres://{role}:{WRONG}@{host_port}/{}", db.name);
    let server_url = format!("postgres://{role}:{ENCODED}@{host_port}/postgres");

    let logs = tempfile::tempdir().unwrap();
    let accounts = fixture("accounts");
    let scratch = copy_set(&accounts);
    let broken = copy_set(&accounts);
    std::fs::write(broken.path().join("migrations/V3__drop_legacy.sql"), "ALTER TABLE accounts DROP COLUMN no_such_column;\n").unwrap();
    let drifted = copy_set(&accounts);
    std::fs::write(drifted.path().join("migrations/V1__create_accounts.sql"), "SELECT 1;\n").unwrap();

    let log_dir = logs.path();
    let case = |name: &'static str, dir: &Path, conn: Option<&str>, args: &[&str], exit: i32| {
        let cmd = match conn {
            Some(c) => on(c, dir, args).logs(log_dir),
            None => Cmd::new(args).dir(dir),
        };
        Case { name, cmd, exit }
    };
    let acc = accounts.as_path();
    let mut cases = vec![
        case("migrate", acc, Some(&url), &["migrate", "--phase", "2"], exit::OK),
        case("migrate (json, nothing to do)", acc, Some(&url), &["migrate", "--phase", "2", "--format", "json"], exit::OK),
        case("migrate --dry-run", acc, Some(&url), &["migrate", "--dry-run"], exit::OK),
        case("validate", acc, Some(&url), &["validate"], exit::OK),
        case("validate (json)", acc, Some(&url), &["validate", "--format", "json"], exit::OK),
        case("status", acc, Some(&url), &["status"], exit::OK),
        case("status (?password= form, json)", acc, Some(&query_form), &["status", "--format", "json"], exit::OK),
        case("snapshot --rows", acc, Some(&url), &["snapshot", "--rows"], exit::OK),
        case("history", acc, Some(&url), &["history"], exit::OK),
        case("history (json)", acc, Some(&url), &["history", "--format", "json"], exit::OK),
        case("plan", acc, None, &["plan"], exit::OK),
        case("new", scratch.path(), None, &["new", "add_notes", "--phase", "3"], exit::OK),
        case("rollback --dry-run", acc, Some(&url), &["rollback", "--phase", "2", "--dry-run"], exit::OK),
        case("rollback", acc, Some(&url), &["rollback", "--phase", "2", "--yes"], exit::OK),
        case("rollback refused (not applied)", acc, Some(&url), &["rollback", "--phase", "2", "--yes"], exit::ERROR),
        case("error: wrong password", acc, Some(&wrong), &["migrate"], exit::ERROR),
        case("error: unreachable", acc, Some(&format!("postgres://{role}:{ENCODED}@127.0.0.1:1/{}", db.name)), &["status"], exit::ERROR),
        case("error: invalid connection string", acc, Some(&format!("postgres://{role}:{ENCODED}@{host}:notaport/{}", db.name)), &["status"], exit::ERROR),
        case("status (unencoded # in the password)", acc, Some(&format!("postgres://{role}:{SECRET}@{host_port}/{}", db.name)), &["status"], exit::OK),
        case("error: sql error", broken.path(), Some(&url), &["migrate", "--yes"], exit::ERROR),
        case("error: drift", drifted.path(), Some(&url), &["migrate"], exit::ERROR),
        case("error: usage", acc, Some(&url), &["migrate", "--phase", "two"], exit::USAGE),
    ];
    cases.push(Case {
        name: "migrate (key=value in DATABASE_URL, tracing on)",
        cmd: Cmd::new(&["migrate", "--phase", "1"]).dir(acc).logs(log_dir).env("DATABASE_URL", &key_value).env("PHASEGATE_LOG", "trace"),
        exit: exit::OK,
    });
    cases.push(Case { name: "error: wrong password, tracing on", cmd: on(&wrong, acc, &["status"]).logs(log_dir).env("PHASEGATE_LOG", "trace"), exit: exit::ERROR });
    for (name, url, exit) in [("verify --backend url", &server_url, exit::OK), ("error: verify with a wrong password", &server_url.replace(ENCODED, WRONG), exit::ERROR)] {
        cases.push(Case { name, cmd: Cmd::new(&["verify", "--backend", "url", "--server-url", url]).dir(acc).logs(log_dir), exit });
    }

    let mut leaked = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let out = c.cmd.process();
        assert_eq!(out.code, c.exit, "case {i} `{}` should exit {}: {out:?}", c.name, c.exit);
        if let Some(n) = leaks(&out.stdout).or_else(|| leaks(&out.stderr)) {
            leaked.push(format!("case `{}`: `{n}` in its output: {out:?}", c.name));
        }
    }

    // A held lock: the refusal names the holder, not the password.
    let mut holder = phasegate::connect(&url, "secret-holder").unwrap();
    phasegate::acquire_lock(&mut holder, std::time::Duration::ZERO).unwrap();
    let out = on(&url, acc, &["migrate"]).logs(log_dir).process();
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    assert!(out.stderr.contains("holds the migration lock"), "{out:?}");
    if let Some(n) = leaks(&out.stdout).or_else(|| leaks(&out.stderr)) {
        leaked.push(format!("case `error: lock held`: `{n}` in its output: {out:?}"));
    }
    drop(holder);
    let commands = cases.len() + 1;

    let mut files = Vec::new();
    files_under(logs.path(), &mut files);
    assert!(files.len() >= 20, "every database command writes a log file: {files:?}");
    for f in &files {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        if let Some(n) = leaks(&text) {
            leaked.push(format!("log file {}: `{n}`", f.display()));
        }
    }
    let rows: Vec<String> = db.client().query("SELECT r::text FROM phasegate_runs r", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    // history, snapshot and dry runs read without an audit row.
    assert!(rows.len() >= 12, "every database command is audited: {} rows: {rows:#?}", rows.len());
    for r in &rows {
        if let Some(n) = leaks(r) {
            leaked.push(format!("audit row: `{n}` in {r}"));
        }
    }
    eprintln!(
        "secrets: {commands} commands, {} log files, {} audit rows searched; leaks {}",
        files.len(),
        rows.len(),
        leaked.len()
    );
    assert!(leaked.is_empty(), "the password leaked:\n{}", leaked.join("\n"));
}
