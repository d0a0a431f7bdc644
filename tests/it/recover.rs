//! The way back from the point of no return: the clinic set's phase 4
//! (drop the sync trigger, the old columns and the enum) applied on the
//! 100k-row seed while the new application books, then recovered from what
//! `migrate` kept before it ran, then applied again. Every pre-existing
//! reservation gets its old `service` and `"preferredTime"` back, the enum
//! its labels in order; the rows booked in between keep what they have and
//! get the old columns the sync trigger gives them. A copy above
//! `--max-backup-rows` is refused before anything changes; a phase applied
//! with `--no-backup` cannot be recovered and says so.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::harness::json::{PhaseState, Verdict};
use crate::harness::{assert_same_state, clinic_seeded_template, exit, repo, run, TestDb, Writer};

const LABELS: &str = "{WRINKLE_BOTOX,VOLUME_LIFTING,SKIN_CARE,REMOVAL_PROCEDURE,BODY_CARE,OTHER_CONSULTATION}";

/// Books one reservation the way the phase-3 application does: services and
/// period only, never the old columns. `day` spreads bookings over slots.
fn book_new_way(c: &mut postgres::Client, code: &str, period: &str, day: i32) -> Result<i64, postgres::Error> {
    c.query_one(
        "INSERT INTO reservations (\"patientName\", phone, \"birthDate\", gender, \"treatmentType\", \"serviceId\", \"serviceName\", \"estimatedDuration\", period, \"preferredDate\")
         SELECT '이 신규', '010-1111-1111', '1985-05-05', 'MALE', 'FOLLOW_UP', s.id, s.name, s.\"durationMinutes\" + s.\"bufferMinutes\", $2, current_date + $3::int
         FROM services s WHERE s.code = $1 RETURNING id",
        &[&code, &period, &day],
    )
    .map(|r| r.get(0))
}

/// The old columns of every reservation, by id.
fn old_columns(db: &TestDb) -> BTreeMap<i64, (String, String)> {
    db.client()
        .query("SELECT id, service::text, \"preferredTime\" FROM reservations", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

/// A writer of the new application, booking until told to stop.
fn new_application(url: &str) -> Writer {
    let codes = ["WRINKLE_BOTOX", "SKIN_CARE", "BODY_CARE"];
    Writer::new("app-v2-writer")
        .pause(Duration::from_millis(3))
        .execute(url, move |c, n| book_new_way(c, codes[(n % 3) as usize], if n % 2 == 0 { "MORNING" } else { "AFTERNOON" }, 2000 + n as i32))
}

#[test]
fn phase_4_applied_under_traffic_is_recovered_without_losing_a_row_and_applied_again() {
    let db = TestDb::from_template("recover", clinic_seeded_template());
    let dir = repo();
    run(&db, &dir, &["migrate", "--phase", "3"], "").expect_exit(exit::OK);
    let mut c = db.client();
    // Booked the new way before phase 4: the dual-write trigger fills the old columns.
    for day in 0..5 {
        book_new_way(&mut c, "VOLUME_LIFTING", "AFTERNOON", 1000 + day).unwrap();
    }
    let before = old_columns(&db);
    assert!(before.len() > 100_000);

    // `plan` reads the files only and says what phase 4 keeps.
    let plan = crate::harness::cli(&["plan", "--format", "json", "--dir", dir.to_str().unwrap()], "").report().plan();
    let keeps: Vec<String> = plan[4].keeps.iter().map(|k| k["kept"].as_str().unwrap().to_string()).collect();
    assert!(keeps.iter().any(|k| k.contains("columns service, preferredTime")), "{keeps:?}");
    assert!(keeps.iter().any(|k| k.starts_with("type \"ServiceType\"")), "{keeps:?}");

    // Phase 4 under traffic of the new application.
    let writer = new_application(&db.url);
    writer.until_written(1);
    let t = Instant::now();
    let out = run(&db, &dir, &["migrate", "--phase", "4", "--yes", "--format", "json"], "");
    out.expect_exit(exit::OK);
    eprintln!("migrate --phase 4 (keep + V16) on the 100k seed: {} ms", t.elapsed().as_millis());
    let kept = &out.report().kept()[0];
    assert_eq!(kept.version, 16);
    assert!(kept.size.rows > 100_000, "every row's key and old values are kept: {kept:#?}");
    eprintln!("kept before V16: {} rows, {} bytes", kept.size.rows, kept.size.bytes);
    let kinds: Vec<&str> = kept.kept.iter().map(|k| k["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["step", "trigger", "function", "function", "function", "columns", "enum"], "{kept:#?}");
    assert_eq!(kept.kept[6]["labels"].as_array().unwrap().len(), 6);
    writer.until_written(writer.written() + 1);

    // After the drop: more bookings, a status change (the row changed since it
    // was kept) and a change of service (the new column wins over the kept one).
    let new_ids: Vec<i64> = (0..20).map(|d| book_new_way(&mut c, "SKIN_CARE", if d % 2 == 0 { "MORNING" } else { "AFTERNOON" }, 3000 + d).unwrap()).collect();
    let some_old: Vec<i64> = before.keys().copied().take(10).collect();
    c.execute("UPDATE reservations SET status = 'CONFIRMED' WHERE id = ANY($1)", &[&some_old[..5].to_vec()]).unwrap();
    let moved = some_old[9];
    c.execute("UPDATE reservations SET \"serviceId\" = (SELECT id FROM services WHERE code = 'BODY_CARE') WHERE id = $1", &[&moved]).unwrap();

    // The way back is named by the refusal, shown by --dry-run, and needs typing.
    let refused = run(&db, &dir, &["rollback", "--phase", "4", "--yes"], "");
    assert!(refused.expect_exit(exit::ERROR).error_line().contains("recover --phase 4 --dry-run"), "{refused:?}");
    let dry = run(&db, &dir, &["recover", "--phase", "4", "--dry-run"], "");
    dry.expect_exit(exit::OK);
    assert!(dry.stdout.contains("CREATE TYPE public.\"ServiceType\" AS ENUM ('WRINKLE_BOTOX', 'VOLUME_LIFTING'"), "{}", dry.stdout);
    assert!(dry.stdout.contains("ALTER TABLE public.reservations ADD COLUMN \"service\" \"ServiceType\", ADD COLUMN \"preferredTime\" text"), "{}", dry.stdout);
    run(&db, &dir, &["recover", "--phase", "4"], "no\n").expect_exit(exit::ERROR);
    assert!(db.client().query_one("SELECT to_regtype('\"ServiceType\"') IS NULL", &[]).unwrap().get::<_, bool>(0), "a refused recovery changes nothing");

    let t = Instant::now();
    let out = run(&db, &dir, &["recover", "--phase", "4", "--format", "json"], "recover phase 4\n");
    out.expect_exit(exit::OK);
    eprintln!("recover --phase 4 on the 100k seed (writer running): {} ms", t.elapsed().as_millis());
    let doc = out.report();
    assert!(doc.part::<bool>("committed"), "{doc:#?}");
    let checks: Vec<&str> = doc.checks.iter().map(|c| c.check.as_str()).collect();
    assert_eq!(checks, ["new_columns_complete_before_cleanup", "service_mapping_before_cleanup"], "the phase's before-migrate checks judge the recovery");
    let recovered = doc.recovered();
    let t = &recovered.tables[0];
    eprintln!("recovered: {t:?}");
    assert!(t.restored >= 100_000 - 6, "{t:?}");
    assert!(t.written_since >= 20 + 6, "{t:?}");
    assert_eq!(t.replay_refused, 0, "{t:?}");
    assert!(recovered.not_null_skipped.is_empty(), "{doc:#?}");

    // Every pre-existing reservation has its old columns back (the one whose
    // service changed since follows its new serviceId), the enum its labels.
    let after = old_columns(&db);
    for (id, old) in &before {
        if *id == moved {
            assert_eq!(after[id].0, "BODY_CARE", "changed since: the sync trigger derives service from the new serviceId");
            assert_eq!(after[id].1, old.1);
            continue;
        }
        assert_eq!(&after[id], old, "reservation {id}");
    }
    let labels: String = db.client().query_one("SELECT enum_range(NULL::\"ServiceType\")::text", &[]).unwrap().get(0);
    assert_eq!(labels, LABELS);
    // Rows booked between the two applies keep what they had and carry the
    // old columns the phase-3 sync trigger gives them.
    let wrong: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM reservations r JOIN services s ON s.id = r.\"serviceId\"
             WHERE r.id = ANY($1) AND (r.service::text <> s.code OR r.\"preferredTime\" <> CASE r.period WHEN 'MORNING' THEN '09:00' ELSE '14:00' END
                                       OR s.code <> 'SKIN_CARE')",
            &[&new_ids],
        )
        .unwrap()
        .get(0);
    assert_eq!(wrong, 0);
    let nulls: i64 = db.client().query_one("SELECT count(*) FROM reservations WHERE service IS NULL OR \"preferredTime\" IS NULL", &[]).unwrap().get(0);
    assert_eq!(nulls, 0);
    // The phase is pending again: the ledger says so, and migrate re-applies it.
    let status = run(&db, &dir, &["status", "--format", "json"], "").report().phases();
    assert_eq!(status[4].state, PhaseState::Pending, "{status:#?}");
    let n_before_reapply: i64 = db.client().query_one("SELECT count(*) FROM reservations", &[]).unwrap().get(0);
    let out = run(&db, &dir, &["migrate", "--phase", "4", "--yes", "--format", "json"], "");
    out.expect_exit(exit::OK);
    let bookings = writer.stop();
    let (booked, errors) = (bookings.written, bookings.errors());
    eprintln!("the new application booked {booked} reservations through migrate, recover and migrate again");
    assert!(booked > 10);
    assert!(errors.is_empty(), "failed bookings: {errors:?}");
    let n: i64 = db.client().query_one("SELECT count(*) FROM reservations", &[]).unwrap().get(0);
    assert!(n >= n_before_reapply);
    let recovered: i64 = db.client().query_one("SELECT count(*) FROM phasegate_kept WHERE recovered_at IS NOT NULL", &[]).unwrap().get(0);
    assert!(recovered > 0, "the kept entries record their recovery");
}

/// An empty clinic database through phase 3, with a couple of bookings.
fn clinic_at_phase_3(label: &str) -> TestDb {
    let db = TestDb::new(label);
    run(&db, &repo(), &["migrate", "--phase", "3"], "").expect_exit(exit::OK);
    let mut c = db.client();
    for d in 0..3 {
        book_new_way(&mut c, "SKIN_CARE", "MORNING", 100 + d).unwrap();
    }
    db
}

#[test]
fn a_copy_over_max_backup_rows_is_refused_before_anything_changes() {
    let db = clinic_at_phase_3("recover_limit");
    let dir = repo();
    let before = db.snapshot();
    let ledger = db.ledger();
    let out = run(&db, &dir, &["migrate", "--yes", "--max-backup-rows", "2"], "");
    let err = out.expect_exit(exit::ERROR).error_line();
    assert!(err.starts_with("phase 4 (cleanup) would keep 3 rows of what it destroys before running, more than the limit of 2; nothing was changed"), "{err}");
    assert!(err.contains("--max-backup-rows"), "the CLI names the flag: {err}");
    assert_same_state(&before, &db.snapshot(), "after a refused phase 4");
    assert_eq!(db.ledger(), ledger);
    let backups: i64 = db.client().query_one("SELECT count(*) FROM phasegate_backups", &[]).unwrap().get(0);
    assert_eq!(backups, 0);

    // --no-backup: applied, recorded in the audit row, and not recoverable.
    run(&db, &dir, &["migrate", "--yes", "--no-backup"], "").expect_exit(exit::OK);
    let args: String = db.client().query_one("SELECT args::text FROM phasegate_runs WHERE command = 'migrate' ORDER BY id DESC LIMIT 1", &[]).unwrap().get(0);
    assert!(args.contains("--no-backup"), "{args}");
    let out = run(&db, &dir, &["recover", "--phase", "4", "--dry-run"], "");
    assert!(out.expect_exit(exit::ERROR).error_line().contains("was applied without keeping what it destroys"), "{out:?}");
}

#[test]
fn rows_the_sync_trigger_cannot_fill_are_left_null_counted_and_reviewed() {
    let db = clinic_at_phase_3("recover_gaps");
    let dir = repo();
    run(&db, &dir, &["migrate", "--yes"], "").expect_exit(exit::OK);
    // After phase 4 the clinic adds a service the enum never had.
    let mut c = db.client();
    c.batch_execute("INSERT INTO services (code, name, \"durationMinutes\") VALUES ('LASER_TONING', '레이저 토닝', 30)").unwrap();
    book_new_way(&mut c, "LASER_TONING", "AFTERNOON", 200).unwrap();
    let ok = book_new_way(&mut c, "BODY_CARE", "MORNING", 201).unwrap();
    let out = run(&db, &dir, &["recover", "--phase", "4", "--yes", "--format", "json"], "");
    out.expect_exit(exit::REVIEW);
    let doc = out.report();
    assert_eq!(doc.verdict, Some(Verdict::Review));
    let recovered = doc.recovered();
    let t = &recovered.tables[0];
    assert_eq!((t.restored, t.written_since, t.replay_refused), (3, 2, 1), "{t:?}");
    assert_eq!(t.left_null, [("service".to_string(), 1), ("preferredTime".to_string(), 1)], "{t:?}");
    assert!(t.first_refusal.as_deref().unwrap().contains("has no \"ServiceType\" value"), "{t:?}");
    assert_eq!(recovered.not_null_skipped.len(), 2, "{doc:#?}");
    let (service, time): (Option<String>, Option<String>) =
        c.query_one("SELECT service::text, \"preferredTime\" FROM reservations WHERE id = $1", &[&ok]).map(|r| (r.get(0), r.get(1))).unwrap();
    assert_eq!((service.as_deref(), time.as_deref()), (Some("BODY_CARE"), Some("09:00")));
    // The phase applies again over the gaps.
    run(&db, &dir, &["migrate", "--yes"], "").expect_exit(exit::OK);
}

#[test]
fn a_dropped_table_a_truncated_one_an_index_and_a_check_come_back() {
    let db = TestDb::new("recover_tables");
    let dir = crate::harness::fixture("recover_tables");
    run(&db, &dir, &["migrate", "--phase", "1"], "").expect_exit(exit::OK);
    let before = db.snapshot();
    run(&db, &dir, &["migrate", "--yes"], "").expect_exit(exit::OK);
    db.client().batch_execute("INSERT INTO audit VALUES (3, 'written since')").unwrap();
    let out = run(&db, &dir, &["recover", "--phase", "2", "--yes", "--format", "json"], "");
    out.expect_exit(exit::OK);
    let after = db.snapshot();
    if before.schema != after.schema {
        panic!("schema differs after recovery\n{}", phasegate::schema_diff(&before.schema, &after.schema, "before", "after"));
    }
    for t in ["public.plans", "public.notes"] {
        assert_eq!(before.tables.get(t).unwrap_or_else(|| panic!("fingerprint of {t}")), after.tables.get(t).unwrap_or_else(|| panic!("fingerprint of {t} after")), "rows of {t}");
    }
    let audit: Vec<String> = db.client().query("SELECT what FROM audit ORDER BY id", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(audit, ["one", "two", "written since"], "truncated rows are back, the row written since keeps its place");
    // The serial sequence and the foreign key came back with the table.
    let id: i32 = db.client().query_one("INSERT INTO notes (plan_id) VALUES (1) RETURNING id", &[]).unwrap().get(0);
    assert_eq!(id, 4);
    assert!(db.client().execute("INSERT INTO notes (plan_id) VALUES (99)", &[]).is_err(), "the foreign key is back");
    assert!(db.client().execute("INSERT INTO plans (code, price) VALUES ('c', -1)", &[]).is_err(), "the check is back");
    run(&db, &dir, &["migrate", "--yes"], "").expect_exit(exit::OK);
}
