//! `change`: every operation generated on a seeded fixture set
//! (tests/fixtures/change_shop; the clinic's baseline and seed for its own
//! split-to-lookup), then: `lint` finds nothing; `verify` restores schema
//! and rows for every reversible phase; a walk through every phase runs
//! each probe where phases.toml says it must work (after each migrate,
//! rollback and re-apply) and checks what the change did to the data;
//! `recover` brings back what the cleanup dropped. And bad input: one
//! line, exit 1, nothing written.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::harness::{copy_set, fixture, log_dir, repo, run, server, Cmd, Output, TestDb};
use phasegate::testing::Factory;

const SEED_ROWS: &str = "2000";

/// The set a test starts from: `tests/fixtures/<name>`, or for
/// `change_clinic` the clinic's schema before its migration set (the
/// baseline and seed of the set at the repository root, in a set of their
/// own, built once per test binary in cargo's temporary folder).
pub(crate) fn source(name: &str) -> PathBuf {
    if name != "change_clinic" {
        return fixture(name);
    }
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Folders of earlier test processes that are gone.
        for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(pid) = name.strip_prefix("change_clinic_") {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tmp.join(format!("change_clinic_{}", std::process::id()));
        for (sub, file) in [("migrations", "V1__baseline.sql"), ("validations", "V1__baseline.sql"), ("seed", "01_reservations.sql")] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
            std::fs::copy(repo().join(sub).join(file), dir.join(sub).join(file)).unwrap();
        }
        let manifest = "[[phase]]\nid = 0\nname = \"baseline\"\nversions = [1]\nreversible = false\nreason = \"the clinic's schema before its migration set\"\nbaseline = true\n\n[seed]\nafter_phase = 0\n";
        std::fs::write(dir.join("phases.toml"), manifest).unwrap();
        dir
    })
    .clone()
}

/// `change ARGS` on the set in `dir`, learning the schema on the shared test server.
pub(crate) fn change(dir: &Path, args: &[&str]) -> Output {
    let logs = log_dir();
    let mut full = vec!["change"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--backend", "url", "--server-url", server().admin_url(), "--seed-rows", SEED_ROWS, "--log-dir", logs.to_str().unwrap()]);
    Cmd::new(&full).dir(dir).run()
}

/// A copy of the fixture with the change `args` written into it.
pub(crate) fn generated(name: &str, args: &[&str]) -> tempfile::TempDir {
    let dir = copy_set(&source(name));
    let out = change(dir.path(), args);
    out.expect_exit(0);
    assert!(out.stdout.contains("next:\n  cargo xtask lint --dir "), "{out:?}");
    dir
}

#[track_caller]
pub(crate) fn lint_finds_nothing(dir: &Path) {
    let out = Cmd::new(&["lint", "--format", "json"]).dir(dir).run();
    assert_eq!(out.json()["findings"], serde_json::json!([]), "lint of the generated change: {}", out.stdout);
    out.expect_exit(0);
}

/// verify: exit 0, every reversible phase restored.
#[track_caller]
pub(crate) fn verify_restores(dir: &Path) {
    let out = crate::verify::verify(&["--dir", dir.to_str().unwrap(), "--seed-rows", SEED_ROWS]);
    out.expect_exit(0);
    for p in out.json()["rehearsal"]["phases"].as_array().unwrap() {
        let expected = if p["reversible"] == true { "restored" } else { "forward only" };
        assert_eq!(p["result"], expected, "phase {}: {p:#}", p["name"]);
    }
}

/// One text a query returns.
fn text(db: &TestDb, sql: &str) -> String {
    db.client().query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}")).get::<_, Option<String>>(0).unwrap_or_default()
}

/// Runs every probe of `set` that must work after `phase`, each in a
/// transaction that is rolled back; a failing statement fails the test at
/// the probe's file and line.
#[track_caller]
fn probes_work(db: &TestDb, set: &phasegate::MigrationSet, phase: u32, after: &str) -> usize {
    let mut c = db.client();
    let mut ran = 0;
    for p in set.probes.iter().filter(|p| p.works_after(phase)) {
        let mut tx = c.transaction().unwrap();
        for st in phasegate::split_statements(&p.file.text) {
            tx.batch_execute(&p.file.text[st.start..st.end]).unwrap_or_else(|e| panic!("{}:{} fails after phase {phase} ({after}): {}", p.name, st.line, phasegate::pg_message(&e)));
        }
        tx.rollback().unwrap();
        ran += 1;
    }
    ran
}

/// What a walk checks besides the probes.
pub(crate) struct Expect<'a> {
    /// A query (text) over what the cleanup drops: the same before the
    /// cleanup and after `recover`.
    pub kept: &'a str,
    /// Count queries that must give 0 once every phase is applied.
    pub after: &'a [&'a str],
}

/// Migrates phase by phase a seeded database of the fixture; after each
/// phase the probes that must work there; each reversible phase is rolled
/// back (the probes of the state before it) and migrated again (its probes
/// again); finally the cleanup is recovered.
pub(crate) fn walk(name: &str, dir: &Path, expect: Expect) {
    let set = phasegate::load_set(dir).unwrap();
    assert!(!set.probes.is_empty(), "a change writes its probes (an old and a new one; one for a table created or dropped)");
    let template = Factory::new(source(name)).phase(0).seed_rows(SEED_ROWS.parse().unwrap()).template();
    let db = TestDb::from_template(name, template);
    let mut probed = probes_work(&db, &set, 0, "before the change");
    let mut prev = 0;
    let mut kept_before = None;
    let phase_arg = |p: u32| p.to_string();
    for phase in set.phases.iter().filter(|p| p.id > 0) {
        let id = phase_arg(phase.id);
        if !phase.is_reversible() {
            kept_before = Some((text(&db, expect.kept), prev));
        }
        run(&db, dir, &["migrate", "--phase", &id, "--yes"], "").expect_exit(0);
        phase_checks_hold_together(&db, dir, &id);
        probed += probes_work(&db, &set, phase.id, "migrate");
        if phase.is_reversible() {
            run(&db, dir, &["rollback", "--phase", &id, "--yes"], "").expect_exit(0);
            probed += probes_work(&db, &set, prev, "rollback");
            run(&db, dir, &["migrate", "--phase", &id], "").expect_exit(0);
            phase_checks_hold_together(&db, dir, &id);
            probed += probes_work(&db, &set, phase.id, "re-apply");
        }
        prev = phase.id;
    }
    let expected = if set.probes.len() >= 2 { set.phases.len() } else { 1 };
    assert!(probed >= expected, "probes ran {probed} times");
    for q in expect.after {
        assert_eq!(db.count(q), 0, "after every phase: {q}");
    }
    if let Some((before, state)) = kept_before {
        let last = phase_arg(set.phases.last().unwrap().id);
        run(&db, dir, &["recover", "--phase", &last, "--yes"], "").expect_exit(0);
        assert_eq!(text(&db, expect.kept), before, "recover brings back what the cleanup dropped");
        probes_work(&db, &set, state, "recover");
    }
}

/// Once a phase is applied, `validate` runs its after-migrate checks together
/// (as `status` does): each must hold after the later migrations of its
/// phase too, unless it says `holds: until-next-migration` (then skipped).
fn phase_checks_hold_together(db: &TestDb, dir: &Path, phase: &str) {
    let out = run(db, dir, &["validate", "--phase", phase, "--format", "json"], "");
    let doc = out.json();
    let failing: Vec<String> = doc["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("validate printed no checks: {out:?}"))
        .iter()
        .filter(|c| c["verdict"] != "PROCEED")
        .map(|c| c["check"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(failing.is_empty(), "phase {phase}'s after-migrate checks, run together once it is applied, say otherwise than PROCEED: {failing:?}\n{}", out.stdout);
}

/// Generates, lints, verifies and walks one operation.
pub(crate) fn proves(name: &str, args: &[&str], expect: Expect) -> tempfile::TempDir {
    let dir = generated(name, args);
    lint_finds_nothing(dir.path());
    verify_restores(dir.path());
    walk(name, dir.path(), expect);
    dir
}

const NAMES: &str = "SELECT string_agg(id || ':' || full_name, ',' ORDER BY id) FROM accounts";

#[test]
fn rename_column_writes_expand_backfill_switch_cleanup() {
    let dir = proves(
        "change_shop",
        &["rename-column", "accounts.full_name", "display_name"],
        Expect { kept: NAMES, after: &["SELECT count(*) FROM accounts WHERE display_name IS DISTINCT FROM 'User ' || id"] },
    );
    let set = phasegate::load_set(dir.path()).unwrap();
    let names: Vec<&str> = set.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names[1..], ["rename accounts.full_name: expand", "rename accounts.full_name: backfill", "rename accounts.full_name: switch", "rename accounts.full_name: cleanup"]);
    let (old, new) = (&set.probes[0], &set.probes[1]);
    assert_eq!((old.from, old.until, new.from, new.until), (0, Some(3), 3, None));
    let sql = |t: &str| t.lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join("\n");
    let (old_sql, new_sql) = (sql(&old.file.text), sql(&new.file.text));
    assert!(old_sql.contains("full_name") && !old_sql.contains("display_name"), "{old_sql}");
    assert!(new_sql.contains("display_name") && !new_sql.contains("full_name"), "{new_sql}");
    // The unique index and the check of full_name came with it, validated.
    let switch = set.phase(3).unwrap();
    let sql: String = switch.steps.iter().map(|s| s.forward.text.clone()).collect();
    assert!(sql.contains("CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_display_name_idx"), "{sql}");
    assert!(sql.contains("VALIDATE CONSTRAINT accounts_display_name_check"), "{sql}");
    assert!(sql.contains("SET NOT NULL"), "{sql}");
}

#[test]
fn add_column_with_a_constant_default_is_one_catalog_only_phase() {
    let dir = proves(
        "change_shop",
        &["add-column", "accounts.tier", "text", "--default", "'basic'", "--not-null"],
        Expect { kept: "SELECT ''", after: &["SELECT count(*) FROM accounts WHERE tier IS DISTINCT FROM 'basic'"] },
    );
    let set = phasegate::load_set(dir.path()).unwrap();
    assert_eq!(set.phases.len(), 2, "one phase: the default is stored once, not written to every row");
    assert!(set.phases[1].steps[0].forward.text.contains("ALTER TABLE accounts ADD COLUMN tier text NOT NULL DEFAULT 'basic';"));
}

#[test]
fn add_column_with_a_fill_backfills_and_drops_its_trigger() {
    proves(
        "change_shop",
        &["add-column", "accounts.email_domain", "text", "--fill", "split_part(email, '@', 2)", "--not-null"],
        Expect { kept: "SELECT string_agg(tgname, ',') FROM pg_trigger WHERE tgrelid = 'accounts'::regclass", after: &["SELECT count(*) FROM accounts WHERE email_domain IS DISTINCT FROM 'example.com'"] },
    );
}

#[test]
fn change_type_converts_with_up_and_back_with_down() {
    proves(
        "change_shop",
        &["change-type", "orders.amount", "numeric(12,2)", "--up", "amount::numeric(12,2)", "--down", "round(amount)::integer"],
        Expect { kept: "SELECT string_agg(id || ':' || amount, ',' ORDER BY id) FROM orders", after: &["SELECT count(*) FROM orders WHERE amount_numeric IS NULL OR amount_numeric < 0"] },
    );
}

#[test]
fn the_switch_carries_unique_constraints_and_foreign_keys_to_the_new_column() {
    let dir = proves(
        "change_shop",
        &["change-type", "accounts.email", "varchar(200)", "--up", "email::varchar(200)", "--down", "email::text"],
        Expect { kept: "SELECT string_agg(id || ':' || email, ',' ORDER BY id) FROM accounts", after: &["SELECT count(*) FROM pg_constraint WHERE conname = 'accounts_email_varchar_key' AND contype <> 'u'", "SELECT 1 - count(*) FROM pg_constraint WHERE conname = 'accounts_email_varchar_key'"] },
    );
    let attach = std::fs::read_to_string(dir.path().join("migrations/V6__retype_accounts_email_validate.sql")).unwrap();
    assert!(attach.contains("ADD CONSTRAINT accounts_email_varchar_key UNIQUE USING INDEX accounts_email_varchar_key;"), "{attach}");
    proves(
        "change_shop",
        &["rename-column", "orders.account_id", "customer_id"],
        Expect { kept: "SELECT string_agg(id || ':' || account_id, ',' ORDER BY id) FROM orders", after: &["SELECT 1 - count(*) FROM pg_constraint WHERE conname = 'orders_customer_id_fkey' AND convalidated", "SELECT 1 - count(*) FROM pg_class WHERE relname = 'orders_customer_id_idx'"] },
    );
}

#[test]
fn set_not_null_fills_the_nulls_and_can_undo_the_fill() {
    proves(
        "change_shop",
        &["set-not-null", "accounts.phone", "--fill", "'unknown'"],
        Expect { kept: "SELECT count(*)::text FROM pg_trigger WHERE tgrelid = 'accounts'::regclass", after: &["SELECT count(*) FROM accounts WHERE phone IS NULL", "SELECT count(*) FROM accounts WHERE phone = 'unknown' AND id % 7 <> 0"] },
    );
}

#[test]
fn drop_not_null_keeps_a_check_so_its_rollback_needs_no_scan() {
    let dir = proves("change_shop", &["drop-not-null", "accounts.full_name"], Expect { kept: "SELECT ''", after: &["SELECT count(*) FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attname = 'full_name' AND attnotnull"] });
    let rollback = std::fs::read_to_string(dir.path().join("rollback/V2__nullable_accounts_full_name_drop_not_null.sql")).unwrap();
    assert!(rollback.contains("VALIDATE CONSTRAINT") && rollback.contains("SET NOT NULL"), "{rollback}");
    // The helper check holds right after V2 only: once V3 drops the helper,
    // validate and status skip it and say so.
    let db = at_phase("change_shop", dir.path(), "1");
    let out = run(&db, dir.path(), &["validate", "--phase", "1", "--format", "json"], "");
    let helper = out.json()["checks"].as_array().unwrap().iter().find(|c| c["check"] == "helper_check_added").cloned().unwrap_or_else(|| panic!("{}", out.stdout));
    assert_eq!((helper["verdict"].as_str(), helper["skipped"].as_str()), (Some("PROCEED"), Some("holds until the next migration; V3 is applied")), "{helper:#}");
    let out = run(&db, dir.path(), &["status"], "");
    out.expect_exit(0);
    assert!(out.stdout.lines().any(|l| l.contains("helper_check_added") && l.ends_with("skipped (holds until the next migration; V3 is applied)")), "{}", out.stdout);
}

#[test]
fn set_and_drop_default_are_catalog_only() {
    proves("change_shop", &["set-default", "accounts.nickname", "'anon'"], Expect { kept: "SELECT ''", after: &[] });
    proves("change_shop", &["drop-default", "accounts.status"], Expect { kept: "SELECT ''", after: &[] });
}

#[test]
fn drop_column_is_kept_and_recovered() {
    proves("change_shop", &["drop-column", "accounts.legacy_flags"], Expect { kept: "SELECT string_agg(id || ':' || legacy_flags, ',' ORDER BY id) FROM accounts", after: &[] });
}

#[test]
fn split_to_lookup_turns_the_clinic_service_enum_into_a_services_table() {
    let dir = proves(
        "change_clinic",
        &["split-to-lookup", "reservations.service", "services"],
        Expect {
            kept: "SELECT string_agg(id || ':' || service, ',' ORDER BY id) FROM reservations",
            after: &["SELECT count(*) FROM reservations r LEFT JOIN services s ON s.id = r.\"serviceId\" WHERE s.id IS NULL", "SELECT count(*) FROM services WHERE code NOT IN ('WRINKLE_BOTOX', 'VOLUME_LIFTING', 'SKIN_CARE', 'REMOVAL_PROCEDURE', 'BODY_CARE', 'OTHER_CONSULTATION')"],
        },
    );
    let cleanup = std::fs::read_to_string(dir.path().join("migrations/V7__lookup_reservations_service_drop_old_column.sql")).unwrap();
    assert!(cleanup.contains("DROP TYPE \"ServiceType\";"), "{cleanup}");
}

#[test]
fn split_to_lookup_of_a_text_column_fills_the_lookup_from_the_data() {
    proves(
        "change_shop",
        &["split-to-lookup", "orders.channel", "channels"],
        Expect { kept: "SELECT string_agg(id || ':' || channel, ',' ORDER BY id) FROM orders", after: &["SELECT count(*) FROM orders WHERE channel_id IS NULL", "SELECT 4 - count(*) FROM channels"] },
    );
}

#[test]
fn raw_is_a_phase_of_its_own_with_placeholders() {
    let dir = generated("change_shop", &["raw", "backfill_totals"]);
    lint_finds_nothing(dir.path());
    verify_restores(dir.path());
    let set = phasegate::load_set(dir.path()).unwrap();
    assert_eq!(set.phases.last().map(|p| p.name.as_str()), Some("backfill_totals: raw"));
}

/// A table without rows (orders, where the seed holds accounts only, from
/// id 1001): the probes' values are placeholders of each column's type,
/// but a foreign key takes a row the referenced table has (a placeholder
/// `1` names no account: the first account when the probe runs), and the
/// new version's INSERT writes the added
/// column (the fill, with no row to compute it from, gives no value; the
/// column is NOT NULL once the fill trigger is gone). Either wrong, verify
/// calls a working application version broken.
#[test]
fn an_empty_tables_probes_reference_rows_that_exist_and_write_the_new_column() {
    let dir = copy_set(&source("change_shop"));
    let seed = "INSERT INTO accounts (id, email, full_name, legacy_flags)\nSELECT 1000 + g, 'user' || g || '@example.com', 'User ' || g, 0 FROM generate_series(1, 3) AS g;\n";
    std::fs::write(dir.path().join("seed/01_shop.sql"), seed).unwrap();
    change(dir.path(), &["add-column", "orders.amount_eur", "numeric", "--fill", "amount / 100.0", "--not-null"]).expect_exit(0);
    let set = phasegate::load_set(dir.path()).unwrap();
    let insert = |name: &str| {
        let p = set.probes.iter().find(|p| p.name.ends_with(name)).unwrap_or_else(|| panic!("no probe {name}"));
        p.file.text.lines().find(|l| l.starts_with("INSERT")).unwrap_or_else(|| panic!("{name} writes no row: {}", p.file.text)).to_string()
    };
    let (old, new) = (insert("_old.sql"), insert("_new.sql"));
    let account = "VALUES ((SELECT id FROM accounts ORDER BY id LIMIT 1), ";
    assert!(old.starts_with("INSERT INTO orders (account_id, ") && old.contains(account), "{old}");
    assert!(new.contains(&format!("amount_eur) {account}")) && new.ends_with(", 1);"), "{new}");
    lint_finds_nothing(dir.path());
    verify_restores(dir.path());
}

/// `status` and `plan` keep their columns aligned under the long phase
/// names a change writes ("rename accounts.full_name: backfill").
#[test]
fn status_and_plan_align_the_phase_names_a_change_writes() {
    let dir = generated("change_shop", &["rename-column", "accounts.full_name", "display_name"]);
    let db = TestDb::new("change_status");
    let aligned = |out: &Output, after_name: &str| {
        let lines: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("phase ")).collect();
        assert_eq!(lines.len(), 5, "{}", out.stdout);
        let column: Vec<Option<usize>> = lines.iter().map(|l| l.find(after_name)).collect();
        assert!(column.iter().all(|c| c.is_some() && *c == column[0]), "{}", out.stdout);
    };
    aligned(&run(&db, dir.path(), &["status"], ""), " pending ");
    let plan = Cmd::new(&["plan"]).dir(dir.path()).run();
    plan.expect_exit(0);
    aligned(&plan, " risk ");
}

/// A second change that drops a column the first change's new application
/// version still reads: that version is the second change's old one (or
/// older), so its probe ends where the old version does; declared without
/// an end, verify would call it broken after the drop.
#[test]
fn a_later_change_ends_the_probes_declared_before_it() {
    let dir = generated("change_shop", &["rename-column", "accounts.full_name", "display_name"]);
    let out = change(dir.path(), &["drop-column", "accounts.nickname"]);
    out.expect_exit(0);
    assert!(out.stdout.contains("probes/rename_accounts_full_name_new.sql: until = 4 in phases.toml"), "{}", out.stdout);
    let set = phasegate::load_set(dir.path()).unwrap();
    let until: Vec<(String, Option<u32>)> = set.probes.iter().map(|p| (p.name.clone(), p.until)).collect();
    assert_eq!(until[1], ("probes/rename_accounts_full_name_new.sql".to_string(), Some(4)), "{until:?}");
    assert_eq!(until[3].1, None, "the newest version stays open: {until:?}");
    lint_finds_nothing(dir.path());
    verify_restores(dir.path());
}

#[test]
fn several_changes_in_flight_append_their_own_phases() {
    let dir = generated("change_shop", &["rename-column", "accounts.full_name", "display_name"]);
    // The second is written against the schema after the first: display_name exists.
    change(dir.path(), &["drop-not-null", "accounts.display_name"]).expect_exit(0);
    let set = phasegate::load_set(dir.path()).unwrap();
    let names: Vec<&str> = set.phases.iter().skip(1).map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(names[4], "drop-not-null accounts.display_name: nullable");
    assert_eq!(set.probes.len(), 4);
    lint_finds_nothing(dir.path());
    verify_restores(dir.path());
}

#[test]
fn dry_run_prints_the_files_and_writes_nothing() {
    let dir = copy_set(&fixture("change_shop"));
    let before = listing(dir.path());
    let out = change(dir.path(), &["rename-column", "accounts.full_name", "display_name", "--dry-run"]);
    out.expect_exit(0);
    assert!(out.stdout.contains("migrations/V2__rename_accounts_full_name_add_column.sql <==\n"), "{}", out.stdout);
    assert!(out.stdout.contains("[[probe]]\nfile = \"probes/rename_accounts_full_name_new.sql\"\nfrom = 3\n"), "{}", out.stdout);
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn a_live_database_must_have_applied_the_whole_set() {
    let dir = copy_set(&fixture("change_shop"));
    let template = Factory::new(fixture("change_shop")).phase(0).seed_rows(200).template();
    let db = TestDb::from_template("change_live", template);
    let out = change(dir.path(), &["rename-column", "accounts.full_name", "display_name", "--database-url", &db.url]);
    out.expect_exit(0);
    // The set now has phases the database has not applied: the next change refuses it.
    let out = change(dir.path(), &["drop-column", "accounts.nickname", "--database-url", &db.url]);
    out.expect_exit(1);
    assert!(out.error_line().starts_with("the database has not applied migration 2 of the set (6 pending)"), "{}", out.error_line());
    // A set whose applied forward file differs from what the database ran
    // does not describe its schema: refused too, naming the migration.
    let edited = copy_set(&fixture("change_shop"));
    let baseline = edited.path().join("migrations/V1__baseline.sql");
    let text = std::fs::read_to_string(&baseline).unwrap();
    std::fs::write(&baseline, text.replace("CREATE TABLE accounts (", "CREATE TABLE accounts (\n  tier text,")).unwrap();
    let out = change(edited.path(), &["drop-column", "accounts.nickname", "--database-url", &db.url]);
    out.expect_exit(1);
    assert!(out.error_line().starts_with("the database's ledger disagrees with the set: migration 1 was applied but its file has changed since: "), "{}", out.error_line());
    assert!(!edited.path().join("probes").exists(), "nothing was written");
}

/// A backfill walks a single-column primary key: on a table keyed by two
/// columns, or by none, the change is refused in one line that says what
/// the table has and what is left (a hand-written phase), and writes nothing.
#[test]
fn a_backfill_without_a_single_column_key_says_what_the_table_has() {
    let dir = copy_set(&fixture("change_shop"));
    let baseline = dir.path().join("migrations/V1__baseline.sql");
    let text = std::fs::read_to_string(&baseline).unwrap();
    let tables = "\nCREATE TABLE order_lines (order_id bigint, line integer, qty integer NOT NULL, PRIMARY KEY (order_id, line));\nCREATE TABLE events (payload jsonb);\n";
    std::fs::write(&baseline, format!("{text}{tables}")).unwrap();
    let before = listing(dir.path());
    let cases: &[(&[&str], &str)] = &[
        (&["add-column", "order_lines.total", "integer", "--fill", "qty * 2"], "add-column with a volatile default or a fill expression on order_lines: the batched backfill walks a single-column primary key, and its primary key is (order_id, line); write this backfill by hand in a phase of its own (`change raw`)"),
        (&["add-column", "events.kind", "text", "--fill", "payload->>'kind'"], "add-column with a volatile default or a fill expression on events: the batched backfill walks a single-column primary key, and it has no primary key; write this backfill by hand in a phase of its own (`change raw`)"),
    ];
    for (args, message) in cases {
        let out = change(dir.path(), args);
        out.expect_exit(1);
        assert!(out.error_line().ends_with(message), "{args:?}: {}", out.error_line());
        assert_eq!(listing(dir.path()), before, "{args:?} wrote something");
    }
}

/// Every file of a folder with its contents.
pub(crate) fn listing(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in walk_dir(dir) {
        out.push((e.strip_prefix(dir).unwrap().display().to_string(), std::fs::read_to_string(&e).unwrap_or_default()));
    }
    out.sort();
    out
}

fn walk_dir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_dir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let cases: &[(&[&str], &str)] = &[
        (&["rename-column", "acounts.full_name", "x"], "no table `acounts` in the set (phases 0-0 applied to a disposable database); did you mean `accounts`?"),
        (&["rename-column", "accounts.full_nam", "x"], "table `accounts` has no column `full_nam`; did you mean `full_name`?"),
        (&["rename-column", "accounts.full_name", "email"], "column `email` already exists on accounts"),
        (&["set-not-null", "accounts.email"], "set-not-null accounts.email: the column is NOT NULL already"),
        (&["drop-default", "accounts.nickname"], "drop-default accounts.nickname: the column has no default"),
        (&["drop-not-null", "accounts.phone"], "drop-not-null accounts.phone: the column is nullable already"),
        (&["change-type", "accounts.nickname", "integer", "--up", "nickname::integer", "--down", "nickname::text"], "up expression `nickname::integer` fails on accounts row id = 3: invalid input syntax for type integer: \"nick3\""),
        (&["add-column", "accounts.score", "integer", "--fill", "length(nickname)", "--not-null"], "fill expression `length(nickname)` gives NULL on accounts row id = 1"),
        (&["add-column", "accounts.score", "integre"], "type `integre`: type \"integre\" does not exist"),
        (&["add-column", "accounts.score", "integer", "--not-null"], "a NOT NULL accounts.score needs a default or a fill expression: the rows that exist need a value, and so do the inserts of the application version that does not know the column (--default EXPR or --fill EXPR)"),
        (&["set-not-null", "accounts.nickname"], "rows of accounts have nickname NULL: they need a fill expression (and so do the NULLs the application writes until the cleanup) (--fill EXPR)"),
        (&["rename-column", "accounts.id", "account_id"], "rename-column accounts.id: foreign key orders_account_id_fkey of orders references it"),
        (&["split-to-lookup", "orders.kind", "accounts"], "relation `accounts` already exists"),
        (&["rename-column", "accounts", "x"], "`accounts` is not TABLE.COLUMN (or SCHEMA.TABLE.COLUMN)"),
    ];
    let dir = copy_set(&fixture("change_shop"));
    let before = listing(dir.path());
    for (args, message) in cases {
        let out = change(dir.path(), args);
        out.expect_exit(1);
        assert!(out.error_line().contains(message), "{args:?}: {}", out.error_line());
        assert_eq!(listing(dir.path()), before, "{args:?} wrote something");
    }
}

/// The set in `dir` (generated from fixture `name`) migrated up to `phase`
/// on a seeded database.
fn at_phase(name: &str, dir: &Path, phase: &str) -> TestDb {
    let template = Factory::new(source(name)).phase(0).seed_rows(SEED_ROWS.parse().unwrap()).template();
    let db = TestDb::from_template(name, template);
    run(&db, dir, &["migrate", "--phase", phase], "").expect_exit(0);
    db
}

/// Both application versions write during the window (after the expand
/// phase): through each name, inserts and updates; the sync trigger keeps
/// the two sides equal, the rest of the change applies (its agreement
/// checks pass) and the writes of both versions survive the cleanup.
pub(crate) fn both_versions_write(name: &str, args: &[&str], writes: &str, agree: &str, after: &[(&str, &str)]) {
    let dir = generated(name, args);
    let db = at_phase(name, dir.path(), "1");
    db.client().batch_execute(writes).unwrap_or_else(|e| panic!("the applications' writes: {e}"));
    assert_eq!(db.count(agree), 0, "old and new sides disagree after the writes: {agree}");
    let last = phasegate::load_set(dir.path()).unwrap().phases.last().unwrap().id.to_string();
    run(&db, dir.path(), &["migrate", "--phase", &last, "--yes"], "").expect_exit(0);
    for (q, want) in after {
        assert_eq!(text(&db, q), *want, "{q}");
    }
}

#[test]
fn both_versions_write_through_a_renamed_column_with_a_default() {
    let copy = |status: &str, col: &str, from: i32| {
        format!("INSERT INTO reservations (\"patientName\", phone, \"birthDate\", gender, \"treatmentType\", service, \"preferredDate\", \"preferredTime\"{col}) SELECT \"patientName\", phone, \"birthDate\", gender, \"treatmentType\", service, \"preferredDate\", 'probe {from}'{status} FROM reservations WHERE id = {from};")
    };
    let writes = [
        "UPDATE reservations SET status = 'CONFIRMED' WHERE id = 1;".to_string(),
        "UPDATE reservations SET \"reservationStatus\" = 'CANCELLED' WHERE id = 2;".to_string(),
        copy(", 'NO_SHOW'", ", status", 3),
        copy(", 'COMPLETED'", ", \"reservationStatus\"", 4),
        copy("", "", 5),
    ]
    .join("\n");
    both_versions_write(
        "change_clinic",
        &["rename-column", "reservations.status", "reservationStatus"],
        &writes,
        "SELECT count(*) FROM reservations WHERE \"reservationStatus\" IS DISTINCT FROM status AND \"reservationStatus\" IS NOT NULL",
        &[
            ("SELECT \"reservationStatus\" FROM reservations WHERE id = 1", "CONFIRMED"),
            ("SELECT \"reservationStatus\" FROM reservations WHERE id = 2", "CANCELLED"),
            ("SELECT string_agg(\"reservationStatus\", ',' ORDER BY \"preferredTime\") FROM reservations WHERE \"preferredTime\" LIKE 'probe %'", "NO_SHOW,COMPLETED,PENDING"),
        ],
    );
}

#[test]
fn both_versions_write_through_a_changed_type() {
    both_versions_write(
        "change_shop",
        &["change-type", "orders.amount", "numeric(12,2)", "--up", "amount::numeric(12,2)", "--down", "round(amount)::integer"],
        "UPDATE orders SET amount = 321 WHERE id = 1;
         UPDATE orders SET amount_numeric = 12.34 WHERE id = 2;
         INSERT INTO orders (account_id, amount, kind, channel) VALUES (1, 77, 'WEB', 'web');
         INSERT INTO orders (account_id, amount_numeric, kind, channel) VALUES (1, 8.6, 'WEB', 'new-app');",
        "SELECT count(*) FROM orders WHERE amount_numeric IS DISTINCT FROM amount::numeric(12,2) AND amount IS DISTINCT FROM round(amount_numeric)::integer AND amount_numeric IS NOT NULL",
        &[
            ("SELECT amount_numeric::text FROM orders WHERE id = 1", "321.00"),
            ("SELECT amount_numeric::text FROM orders WHERE id = 2", "12.34"),
            ("SELECT string_agg(amount_numeric::text, ',' ORDER BY id) FROM orders WHERE id > 4000", "77.00,8.60"),
        ],
    );
}

#[test]
fn a_lookup_split_names_a_missing_row_whatever_its_names_hold() {
    // A `%` in the lookup's name is not one of RAISE's placeholders, and a
    // backslash reads the same whatever standard_conforming_strings says
    // where the trigger is first called.
    let dir = generated("change_shop", &["split-to-lookup", "orders.kind", "order%kinds\\x"]);
    let db = at_phase("change_shop", dir.path(), "1");
    let mut c = db.client();
    c.batch_execute("SET standard_conforming_strings = off; SET escape_string_warning = off").unwrap();
    let e = c.batch_execute("UPDATE orders SET kind_id = 999999 WHERE id = 1").expect_err("a reference to no lookup row is refused");
    let e = e.as_db_error().unwrap_or_else(|| panic!("not a database error: {e}"));
    assert_eq!(e.message(), "orders: \"order%kinds\\x\" row 999999 does not exist");
    assert_eq!(e.code(), &postgres::error::SqlState::FOREIGN_KEY_VIOLATION);
}

#[test]
fn both_versions_write_through_a_lookup_split() {
    both_versions_write(
        "change_shop",
        &["split-to-lookup", "orders.kind", "order_kinds"],
        "UPDATE orders SET kind = 'PHONE' WHERE id = 1;
         UPDATE orders SET kind_id = (SELECT id FROM order_kinds WHERE code = 'STORE') WHERE id = 2;
         INSERT INTO orders (account_id, amount, kind, channel) VALUES (1, 5, 'WEB', 'old-app');
         INSERT INTO orders (account_id, amount, kind_id, channel) VALUES (1, 6, (SELECT id FROM order_kinds WHERE code = 'PHONE'), 'new-app');",
        "SELECT count(*) FROM orders o JOIN order_kinds k ON k.id = o.kind_id WHERE o.kind::text <> k.code",
        &[
            ("SELECT k.code FROM orders o JOIN order_kinds k ON k.id = o.kind_id WHERE o.id = 1", "PHONE"),
            ("SELECT k.code FROM orders o JOIN order_kinds k ON k.id = o.kind_id WHERE o.id = 2", "STORE"),
            ("SELECT string_agg(k.code, ',' ORDER BY o.id) FROM orders o JOIN order_kinds k ON k.id = o.kind_id WHERE o.channel LIKE '%-app'", "WEB,PHONE"),
        ],
    );
}
