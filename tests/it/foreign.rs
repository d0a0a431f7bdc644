//! verify --from on other tools' histories, read where they lie: goose,
//! dbmate, Flyway, Sqitch, Liquibase formatted SQL and the generic up/down
//! pairs. Each fixture (`tests/fixtures/foreign/<layout>`, described in
//! `EXPECTED.md`) plants a down that fails, one that leaves an object and
//! one that loses rows beside sound migrations. Each migration's result
//! must equal a `pg_dump --schema-only` round trip the test runs itself
//! (row losses, which a schema-only dump cannot see, are checked apart),
//! every fixture must be detected by `--from DIR`, and each migration keeps
//! its tool's label in the JSON.

use phasegate::foreign;

use crate::harness::json::{Finding, Origin, Rehearsal};
use crate::harness::{cli, exit, fixture};
use crate::verify::{as_pg_dump_results, pg_dump_round_trip, rows_lost, verify};

/// Audits a fixture with `verify --from DIR` (the layout detected) and
/// checks: the layout chosen, every migration rehearsed with its origin,
/// the classification as expected and equal to the pg_dump round trip's,
/// and the migrations whose rollback lost rows.
#[track_caller]
fn audit(layout: foreign::Layout, rel: &str, placeholders: &[(&str, &str)], expected: &[(&str, &'static str)], rows_changed: &[&str]) -> Rehearsal {
    let dir = fixture(rel);
    assert_eq!(phasegate::foreign::detect(&dir).unwrap().layout, layout, "--from auto on {rel}");
    let opts = foreign::Options { placeholders: placeholders.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
    let set = phasegate::foreign::load_with(layout, &dir, &opts).unwrap();
    let values: Vec<String> = placeholders.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let junit = tempfile::NamedTempFile::new().unwrap();
    let mut args = vec!["--from", dir.to_str().unwrap(), "--junit", junit.path().to_str().unwrap()];
    for v in &values {
        args.extend(["--placeholder", v.as_str()]);
    }
    let out = verify(&args);
    assert_eq!(out.code, exit::MISMATCH, "defective downs exit 5: {}\n{}", out.stdout, out.stderr);
    let doc = out.report();
    let chosen = doc.part::<serde_json::Value>("layout");
    assert_eq!(chosen["layout"], layout.name(), "{chosen}");
    assert_eq!(chosen["detected"], true);
    let rehearsal = doc.rehearsal().clone();
    assert_eq!(rehearsal.phases.len(), set.phases.len(), "every migration is rehearsed, none skipped");
    for p in &rehearsal.phases {
        assert_eq!(p.origin.as_ref().map(|o| o.tool.as_str()), Some(layout.name()), "each migration keeps its tool: {p:#?}");
    }
    let ours = as_pg_dump_results(&rehearsal);
    let want: Vec<(String, &'static str)> = expected.iter().map(|(n, r)| (n.to_string(), *r)).collect();
    assert_eq!(ours, want, "phasegate's per-migration results on {rel}");
    assert_eq!(pg_dump_round_trip(&set), ours, "per-migration results, pg_dump round trip vs phasegate, on {rel}");
    assert_eq!(rows_lost(&rehearsal), rows_changed, "rollbacks that lost rows (invisible to a schema-only dump)");
    // JUnit: every test case names its tool, its migration and its file.
    let xml = std::fs::read_to_string(junit.path()).unwrap();
    let tool = format!("<property name=\"tool\" value=\"{}\"/>", layout.name());
    assert_eq!(xml.matches(&tool).count(), set.phases.len(), "{xml}");
    assert_eq!(xml.matches(" file=\"").count(), set.phases.len(), "{xml}");
    rehearsal
}

/// The error of the first finding of phase `name`.
#[track_caller]
fn error_of<'a>(rehearsal: &'a Rehearsal, name: &str) -> &'a str {
    let phase = rehearsal.phases.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no phase {name}"));
    phase.findings.first().and_then(Finding::error).unwrap_or_else(|| panic!("no error in {phase:#?}"))
}

/// The origin of the rehearsal's phase at `index`.
#[track_caller]
fn origin(rehearsal: &Rehearsal, index: usize) -> &Origin {
    rehearsal.phases[index].origin.as_ref().unwrap_or_else(|| panic!("no origin: {:#?}", rehearsal.phases[index]))
}

#[test]
fn goose_matches_a_pg_dump_round_trip() {
    let doc = audit(
        foreign::Layout::Goose,
        "foreign/goose/migrations",
        &[],
        &[
            ("00001_create_customers", "identical"),
            ("00002_create_orders_with_log_rule", "identical"),
            ("00003_add_customer_tier", "differs"),
            ("00004_create_order_items", "down failed"),
            ("00005_lowercase_customer_emails", "identical"),
            ("00006_index_orders_customer", "identical"),
            ("00007_add_orders_note", "no down"),
        ],
        &["00005_lowercase_customer_emails"],
    );
    // The failing statement is named at its line in the real file's Down section.
    let e = error_of(&doc, "00004_create_order_items");
    assert!(e.contains("00004_create_order_items.sql:13: ") && e.contains("order_items_sku_idx"), "{e}");
    assert_eq!(origin(&doc, 2).id, "00003");
}

#[test]
fn dbmate_matches_a_pg_dump_round_trip() {
    let doc = audit(
        foreign::Layout::Dbmate,
        "foreign/dbmate/db/migrations",
        &[],
        &[
            ("20240101090000_create_customers", "identical"),
            ("20240101091000_create_orders", "identical"),
            ("20240102090000_add_orders_total_function", "differs"),
            ("20240103090000_create_invoices", "down failed"),
            ("20240104090000_split_customer_first_name", "identical"),
            ("20240105090000_index_orders_customer", "identical"),
            ("20240106090000_add_orders_note", "no down"),
        ],
        &["20240104090000_split_customer_first_name"],
    );
    // A syntax error in the down section: line and column in the real file.
    let e = error_of(&doc, "20240103090000_create_invoices");
    assert!(e.contains("20240103090000_create_invoices.sql:10:6: syntax error"), "{e}");
}

#[test]
fn flyway_matches_a_pg_dump_round_trip() {
    let doc = audit(
        foreign::Layout::Flyway,
        "foreign/flyway/sql",
        &[("default_currency", "EUR")],
        &[
            ("V1__create_customers", "identical"),
            ("V1.1__create_orders", "identical"),
            ("V1.2.3__add_customer_tier", "differs"),
            ("V2__create_order_items", "down failed"),
            ("V10__lowercase_customer_emails", "identical"),
            ("V11__index_orders_customer", "identical"),
            ("V12__add_orders_note", "no down"),
            ("R__customer_order_totals", "no down"),
        ],
        &["V10__lowercase_customer_emails"],
    );
    let ids: Vec<&str> = (0..doc.phases.len()).map(|i| origin(&doc, i).id.as_str()).collect();
    assert_eq!(ids, ["1", "1.1", "1.2.3", "2", "10", "11", "12", "R__customer_order_totals"]);
    let e = error_of(&doc, "V2__create_order_items");
    assert!(e.contains("U2__create_order_items.sql:3: "), "the undo file is named: {e}");
}

#[test]
fn flyway_placeholders_need_a_value() {
    let dir = fixture("foreign/flyway/sql");
    let out = verify(&["--from", "flyway", dir.to_str().unwrap()]);
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    let error = out.report().error.unwrap();
    assert!(error.ends_with("V1.1__create_orders.sql:6: no value for placeholder `default_currency`; give it a value with --placeholder default_currency=VALUE"), "{error}");
}

#[test]
fn sqitch_matches_a_pg_dump_round_trip() {
    let doc = audit(
        foreign::Layout::Sqitch,
        "foreign/sqitch",
        &[],
        &[
            ("customers@v1.0", "identical"),
            ("orders", "identical"),
            ("customer_tier", "differs"),
            ("order_items", "down failed"),
            ("lowercase_emails", "identical"),
            ("orders_customer_idx", "identical"),
            ("customers", "identical"),
            ("order_notes", "migrate failed"),
        ],
        &["lowercase_emails"],
    );
    // A verify script that raises fails its change at the verify file's line.
    let e = error_of(&doc, "order_notes");
    assert!(e.contains("sqitch_verify") && e.contains("verify/order_notes.sql:6:12: column \"note\" does not exist"), "{e}");
    let e = error_of(&doc, "order_items");
    assert!(e.contains("revert/order_items.sql:7: "), "{e}");
}

#[test]
fn liquibase_matches_a_pg_dump_round_trip() {
    let doc = audit(
        foreign::Layout::Liquibase,
        "foreign/liquibase/changelog",
        &[],
        &[
            ("alice:1", "identical"),
            ("alice:2", "identical"),
            ("alice:3", "identical"),
            ("bob:tier", "differs"),
            ("bob:order-items", "down failed"),
            ("bob:lowercase-emails", "identical"),
            ("Carol Ops:orders-customer-idx", "identical"),
            ("bob:orders-note", "no down"),
            ("bob:orders-paid-at", "no down"),
        ],
        &["bob:lowercase-emails"],
    );
    let e = error_of(&doc, "bob:order-items");
    assert!(e.contains("002-changes.sql:23: ") && e.contains("order_items_sku_idx"), "the rollback line in the changelog: {e}");
    assert_eq!(origin(&doc, 3).line, 3);
}

#[test]
fn generic_up_down_pairs_match_a_pg_dump_round_trip() {
    let doc = audit(
        foreign::Layout::Files,
        "foreign/files/migrations",
        &[],
        &[
            ("V0001.Initial_Schema", "identical"),
            ("V0002.Create-Orders", "identical"),
            ("V2.1_Add_Customer_Tier", "differs"),
            ("V0003.Create_Order_Items", "down failed"),
            ("V9.Lowercase_Emails", "identical"),
            ("V10.Add_Orders_Note", "no down"),
        ],
        &["V9.Lowercase_Emails"],
    );
    assert_eq!(origin(&doc, 0).id, "V0001");
}

#[test]
fn auto_detects_the_older_layouts_too() {
    assert_eq!(phasegate::foreign::detect(&fixture("foreign/diesel/migrations")).unwrap().layout, foreign::Layout::Diesel);
    assert_eq!(phasegate::foreign::detect(&fixture("foreign/sqlx/migrations")).unwrap().layout, foreign::Layout::Sqlx);
}

#[test]
fn a_folder_no_layout_reads_is_one_error_naming_a_file() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("V0001.Initial_Schema.up.sql"), "CREATE TABLE t (x int);").unwrap();
    std::fs::write(d.path().join("schema.sql"), "CREATE TABLE t (x int);").unwrap();
    let logs = crate::harness::log_dir();
    let out = cli(&["verify", "--from", d.path().to_str().unwrap(), "--log-dir", logs.to_str().unwrap()], "");
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    let want = format!(
        "{}: no migration layout reads this (tried sqitch, diesel, liquibase, goose, dbmate, flyway, sqlx, golang-migrate, files); name the layout: cargo xtask verify --from LAYOUT DIR (",
        d.path().join("schema.sql").display()
    );
    assert!(out.error_line().starts_with(&want), "{}", out.error_line());
}

#[test]
fn from_takes_a_layout_and_a_folder_or_a_folder() {
    let logs = crate::harness::log_dir();
    let logs = logs.to_str().unwrap();
    let out = cli(&["verify", "--from", "goose", "--log-dir", logs], "");
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    assert!(out.stderr.contains("error: --from goose needs the migrations folder: --from goose DIR"), "{}", out.stderr);
    let out = cli(&["verify", "--from", "no/such/folder", "--log-dir", logs], "");
    assert_eq!(out.code, exit::USAGE, "a usage error: {out:?}");
    assert!(out.stderr.contains("`no/such/folder` is neither a layout (sqitch, diesel, liquibase, goose, dbmate, flyway, refinery, sqlx, golang-migrate, files, auto) nor a folder"), "{}", out.stderr);
    let dir = fixture("foreign/files/migrations");
    let out = cli(&["verify", "--from", dir.to_str().unwrap(), dir.to_str().unwrap(), "--log-dir", logs], "");
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    assert!(out.stderr.contains("a layout comes before the folder"), "{}", out.stderr);
}
