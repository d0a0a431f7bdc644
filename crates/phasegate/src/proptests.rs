//! Property tests for every parser of user input (the set loader, the check
//! header parser, the SQL tokenizer and splitter, `redact`): arbitrary input
//! never panics, an error always names the file and line, and `redact`
//! never lets a password through. Each property prints its case count, so
//! `cargo test -- --show-output` shows how much was tried.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::error::Error;

/// Runs `test` on `cases` values of `strategy` (PHASEGATE_PROPTEST_CASES
/// overrides the count, for a deeper search by hand); panics with the shrunk
/// counterexample on failure, prints the count on success.
fn property<S: Strategy>(name: &str, cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let cases = std::env::var("PHASEGATE_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    if let Err(e) = runner.run(&strategy, test) {
        panic!("property `{name}` failed: {e}");
    }
    println!("proptest {name}: {cases} cases passed");
}

/// SQL-ish text: keywords, identifiers, quotes of every kind, comments,
/// semicolons, newlines and arbitrary characters, in any order.
fn sqlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("SELECT ".to_string()),
        Just("UPDATE t SET a = 1".to_string()),
        Just("CREATE INDEX CONCURRENTLY i ON t (a)".to_string()),
        Just(";".to_string()),
        Just("\n".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("''".to_string()),
        Just("E'\\''".to_string()),
        Just("$$".to_string()),
        Just("$f$".to_string()),
        Just("--".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just("BEGIN ATOMIC".to_string()),
        Just("CREATE FUNCTION f() RETURNS int LANGUAGE sql ".to_string()),
        Just("CASE WHEN ".to_string()),
        Just(" END".to_string()),
        Just("COMMIT".to_string()),
        Just("DO ".to_string()),
        Just("ALTER TABLE t DISABLE TRIGGER USER".to_string()),
        Just("set_config('session_replication_role', 'replica', true)".to_string()),
        "[a-zA-Z_][a-zA-Z0-9_$]{0,8}",
        "[0-9.]{1,4}",
        any::<char>().prop_map(|c| c.to_string()),
        "\\PC{0,6}",
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

#[test]
fn splitter_and_tokenizer_never_panic_and_stay_in_bounds() {
    property("sql splitter and tokenizer", 2000, sqlish(), |text| {
        let mut prev_end = 0;
        for st in crate::sqltext::statements(&text) {
            prop_assert!(st.start >= prev_end && st.start < st.end && st.end <= text.len(), "{st:?} in {text:?}");
            prop_assert!(text.is_char_boundary(st.start) && text.is_char_boundary(st.end));
            prop_assert!(!text[st.start..st.end].bytes().all(crate::sqltext::is_space), "{st:?} in {text:?}");
            prop_assert_eq!(st.line, text[..st.start].matches('\n').count() + 1);
            prev_end = st.end;
        }
        for l in crate::sqltext::lex(&text) {
            prop_assert!(l.start < l.end && l.end <= text.len() && text.is_char_boundary(l.start) && text.is_char_boundary(l.end));
        }
        let lexed = crate::sqltext::Lexed::new(&text);
        let lines = text.matches('\n').count() + 1;
        for f in crate::sqltext::transaction_control(&lexed) {
            prop_assert!(f.start < text.len() && f.line == text[..f.start].matches('\n').count() + 1, "{f:?} in {text:?}");
        }
        for f in crate::sqltext::trigger_bypass(&lexed) {
            prop_assert!(f.start <= text.len() && f.line >= 1 && f.line <= lines, "{f:?} in {text:?}");
        }
        let _ = crate::sqltext::strip_comments(&text);
        let _ = crate::backup::targets(&text);
        let _ = crate::apply::concurrent_index_name(&text);
        Ok(())
    });
}

#[test]
fn statements_joined_by_semicolons_split_back() {
    let stmt = "[a-z]{1,6}( [a-z0-9]{1,6}){0,4}";
    property("sql splitter round trip", 1000, prop::collection::vec(stmt, 1..8), |stmts| {
        let text = stmts.join(";\n-- comment; with a semicolon\n");
        let got: Vec<&str> = crate::sqltext::statements(&text).iter().map(|s| &text[s.start..s.end]).collect();
        prop_assert_eq!(got, stmts.iter().map(String::as_str).collect::<Vec<_>>());
        Ok(())
    });
}

/// A validation file: check headers with valid and invalid keys and values,
/// and queries.
fn validation_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "-- check: [a-z_]{1,10}",
        Just("-- severity: warning".to_string()),
        Just("-- severity: critical".to_string()),
        "-- severity: [a-z]{0,6}",
        Just("-- metric: percent".to_string()),
        "-- (proceed|review): (=|!=|<|<=|>|>=|between) ?[0-9.]{0,4}( and [0-9]{1,3})?",
        "-- when: [a-z-]{0,16}",
        "-- empty: [a-z]{0,9}",
        "-- [a-z-]{1,10}: \\PC{0,10}",
        Just("SELECT 1 WHERE false;".to_string()),
        Just("SELECT count(*) FROM t".to_string()),
        Just("".to_string()),
        "\\PC{0,20}",
    ];
    prop::collection::vec(line, 0..16).prop_map(|v| v.join("\n"))
}

#[test]
fn check_parser_errors_name_the_file_and_a_line_of_it() {
    let file = Path::new("validations/V1__x.sql");
    property("check header parser", 2000, validation_text(), |text| {
        match crate::check::parse_file(file, &text) {
            Ok(_) => {}
            Err(Error::Load { at, kind }) => {
                let message = kind.to_string();
                prop_assert_eq!(&at.file, file);
                prop_assert!(at.line >= 1 && at.line <= text.lines().count().max(1), "line {} of {:?}: {}", at.line, text, message);
                prop_assert!(!message.contains('\n'));
            }
            Err(other) => prop_assert!(false, "not a load error: {other}"),
        }
        Ok(())
    });
}

/// A migration set on disk: a manifest mixing valid and broken lines, and
/// files with arbitrary names and contents.
fn set_on_disk() -> impl Strategy<Value = (String, Vec<(String, String)>)> {
    let manifest_line = prop_oneof![
        Just("[[phase]]".to_string()),
        "id = [0-9]{1,2}",
        "name = \"[a-z]{0,6}\"",
        "versions = \\[[0-9, ]{0,8}\\]",
        Just("reversible = false".to_string()),
        "reason = \"[a-z ]{0,8}\"",
        Just("baseline = true".to_string()),
        Just("[seed]".to_string()),
        "after_phase = [0-9]",
        "[a-z_]{1,8} = \\PC{0,6}",
        "\\PC{0,12}",
    ];
    let manifest = prop::collection::vec(manifest_line, 0..14).prop_map(|v| v.join("\n"));
    let folder = prop_oneof![Just("migrations"), Just("rollback"), Just("validations")];
    let name = prop_oneof!["V[0-9]{1,2}__[a-z_]{1,6}\\.sql", "[A-Za-z0-9_.-]{1,12}", "V[0-9]{1,2}_[a-z]{1,4}\\.sql"].prop_filter("a file name", |n| n != "." && n != "..");
    let content = prop_oneof![
        Just("SELECT 1;".to_string()),
        Just("-- check: ok\nSELECT 1 WHERE false;".to_string()),
        Just("-- phasegate: batch 10\nUPDATE t SET a = 1 WHERE id IN (SELECT id FROM t LIMIT :batch_size);".to_string()),
        "-- phasegate: [a-z -]{0,16}\n\\PC{0,10}",
        validation_text(),
        sqlish(),
    ];
    let file = (folder, name, content).prop_map(|(f, n, c)| (format!("{f}/{n}"), c));
    (manifest, prop::collection::vec(file, 0..8))
}

#[test]
fn set_loader_errors_name_a_file_of_the_set() {
    property("set loader", 400, set_on_disk(), |(manifest, files)| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(dir.path().join(crate::set::MANIFEST), &manifest).expect("write");
        for sub in ["migrations", "rollback", "validations"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        for (rel, text) in &files {
            std::fs::write(dir.path().join(rel), text).expect("write");
        }
        match crate::set::load(dir.path()) {
            Ok(_) => {}
            Err(Error::Load { at, kind }) => {
                let message = kind.to_string();
                prop_assert!(at.file.starts_with(dir.path()), "{} is outside the set: {message}", at.file.display());
                if at.file.ends_with(crate::set::MANIFEST) {
                    prop_assert!(at.line >= 1 && at.line <= manifest.lines().count().max(1), "manifest line {}: {message}\n{manifest}", at.line);
                } else if at.line > 0 {
                    let text = std::fs::read_to_string(&at.file).unwrap_or_default();
                    prop_assert!(at.line <= text.lines().count().max(1), "{} line {}: {message}", at.file.display(), at.line);
                }
                prop_assert!(!message.contains('\n'), "{message}");
            }
            Err(other) => prop_assert!(false, "not a load error: {other}"),
        }
        Ok(())
    });
}

#[test]
fn redact_never_lets_a_password_through() {
    // A distinctive prefix keeps the password from matching the user, host
    // or database name by chance; the rest is any printable text.
    let password = "Zq[A-Za-z0-9!#$%&()*+,./:;<=>?@\\[\\]^_{|}~ -]{2,16}";
    let forms = 0..7usize;
    property("redact", 3000, (password, forms, "[a-z]{1,6}", "[a-z]{1,6}"), |(pw, form, user, db)| {
        let enc: String = url::form_urlencoded::byte_serialize(pw.as_bytes()).collect::<String>().replace('+', "%20");
        let url = match form {
            0 => format!("postgres://{user}:{enc}@h:5432/{db}"),
            1 => format!("postgresql://{user}@h/{db}?sslmode=disable&password={enc}"),
            2 => format!("host=h user={user} password={} dbname={db}", pw.replace([' ', '\\', '\''], "x")),
            3 => format!("postgres://{user}:{pw}@h/{db}"),
            4 => format!("postgres://{user}:{enc}@h:notaport/{db}"),
            6 => format!("host=h user={user} password='{}' dbname={db}", pw.replace('\\', "\\\\").replace('\'', "\\'")),
            _ => format!("postgresql://{user}@h:x/{db}?password={enc}&a=b"),
        };
        let out = crate::db::redact(&url);
        let raw = match form {
            2 => pw.replace([' ', '\\', '\''], "x"),
            6 => pw.replace('\\', "\\\\").replace('\'', "\\'"),
            _ => pw.clone(),
        };
        prop_assert!(!out.contains(&raw) && !out.contains(&enc), "{url} -> {out}");
        prop_assert!(!out.contains("Zq"), "{url} -> {out}");
        Ok(())
    });
}
