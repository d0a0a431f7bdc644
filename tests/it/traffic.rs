//! Zero downtime under live traffic (docs/targets.md, issue 13): writers and
//! readers of the old and the new application versions run against each
//! shipped set while it goes through every phase and every rollback. Every
//! application statement is tagged with the stage (the migrate or rollback
//! running, or `between` when none is) it ran in; per stage the test prints
//! the statements run, the failed ones and the writers' p50 / p99 / max
//! wait. Any failed statement fails the test; the waits are printed, not
//! asserted (tests do not time things; `cargo xtask bench --only traffic`
//! records them against the 100 ms target).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::harness::traffic::{app, with_traffic, Deployed, Gen, Worker};
use crate::harness::{clinic_seeded_template, repo, tenant_keys, tenant_keys_seeded_template, TestDb, Writer};

// ---- the clinic set -------------------------------------------------------

const SERVICES: [&str; 6] = ["WRINKLE_BOTOX", "VOLUME_LIFTING", "SKIN_CARE", "REMOVAL_PROCEDURE", "BODY_CARE", "OTHER_CONSULTATION"];
const TIMES: [&str; 6] = ["10:00", "2:30 PM", "오후 3시", "morning", "13:00~14:00", "10am"];

/// The old application: writes only the old columns (service enum, free-text
/// preferredTime) and confirms its own bookings; prepared statements with
/// explicit columns, as a real application caches them. It is retired
/// before the cleanup phase drops the old columns.
fn clinic_old_writer(url: &str, deployed: Arc<Deployed>, seed: u64) -> Writer {
    let mut c = phasegate::connect(url, "app-v1-writer").unwrap();
    let insert = c
        .prepare(
            "INSERT INTO reservations (\"patientName\", phone, \"birthDate\", gender, \"treatmentType\", service, \"preferredDate\", \"preferredTime\")
             VALUES ($1, $2, '1990-01-01', 'FEMALE', 'FIRST_VISIT', $3::text::\"ServiceType\", current_date + $4::int, $5) RETURNING id",
        )
        .unwrap();
    let confirm = c.prepare("UPDATE reservations SET status = 'CONFIRMED' WHERE id = $1").unwrap();
    let mut g = Gen(seed);
    app("app-v1-writer", move |r| {
        let _round = deployed.round();
        if !deployed.old_app.load(Ordering::SeqCst) {
            return false;
        }
        let day = (g.next() % 365 + 1) as i32;
        let (service, time) = (*g.pick(&SERVICES), *g.pick(&TIMES));
        if let Some(row) = r.write(|| c.query_one(&insert, &[&"김 라이브", &"010-0000-0000", &service, &day, &time])) {
            let id: i64 = row.get(0);
            r.write(|| c.execute(&confirm, &[&id]));
        }
        true
    })
}

/// The new application: while deployed, books through services and period
/// (the dual-write trigger fills the old columns) and reads the new columns.
fn clinic_new_writer(url: &str, deployed: Arc<Deployed>, seed: u64) -> Writer {
    let url = url.to_string();
    let mut g = Gen(seed);
    let mut conn: Option<(postgres::Client, postgres::Statement, postgres::Statement)> = None;
    app("app-v2-writer", move |r| {
        if !deployed.new_app.load(Ordering::SeqCst) {
            conn = None; // undeployed: its processes are gone
            if !r.wait_for(&deployed.new_app) {
                return false;
            }
        }
        let _round = deployed.round();
        if !deployed.new_app.load(Ordering::SeqCst) {
            return true; // undeployed meanwhile: the next round waits
        }
        let (c, insert, read) = conn.get_or_insert_with(|| {
            let mut c = phasegate::connect(&url, "app-v2-writer").unwrap();
            let insert = c
                .prepare(
                    "INSERT INTO reservations (\"patientName\", phone, \"birthDate\", gender, \"treatmentType\", \"serviceId\", \"serviceName\", \"estimatedDuration\", period, \"preferredDate\")
                     SELECT $1, $2, '1985-05-05', 'MALE', 'FOLLOW_UP', s.id, s.name, s.\"durationMinutes\" + s.\"bufferMinutes\", $3, current_date + $4::int
                     FROM services s WHERE s.code = $5 RETURNING id",
                )
                .unwrap();
            let read = c.prepare("SELECT \"serviceName\", period FROM reservations WHERE id = $1").unwrap();
            (c, insert, read)
        });
        let day = (g.next() % 365 + 1) as i32;
        let period = if g.next().is_multiple_of(2) { "MORNING" } else { "AFTERNOON" };
        let service = *g.pick(&SERVICES);
        if let Some(row) = r.write(|| c.query_one(&*insert, &[&"이 신규", &"010-1111-1111", &period, &day, &service])) {
            let id: i64 = row.get(0);
            r.read(|| c.query_one(&*read, &[&id]));
        }
        true
    })
}

/// A reader of the old version: a day's bookings, as the front desk sees them.
fn clinic_reader(url: &str, deployed: Arc<Deployed>, seed: u64) -> Writer {
    let mut c = phasegate::connect(url, "app-v1-reader").unwrap();
    let q = c
        .prepare("SELECT id, \"patientName\", service::text, \"preferredTime\", status FROM reservations WHERE \"preferredDate\" = current_date + $1::int ORDER BY id LIMIT 50")
        .unwrap();
    let mut g = Gen(seed);
    app("app-v1-reader", move |r| {
        let _round = deployed.round();
        if !deployed.old_app.load(Ordering::SeqCst) {
            return false;
        }
        let day = (g.next() % 365) as i32 - 200;
        r.read(|| c.query(&q, &[&day]));
        true
    })
}

#[test]
fn clinic_every_phase_and_rollback_under_traffic() {
    let db = TestDb::from_template("traffic", clinic_seeded_template());
    let dir = repo();
    let workers: [Worker; 4] = [&clinic_old_writer, &clinic_old_writer, &clinic_new_writer, &clinic_reader];
    with_traffic("clinic set (100k reservations)", &db, &workers, |s| {
        s.walk_there_and_back(&dir, 3);
        s.retire_old(); // only the new version runs once the old columns go
        s.run(&dir, "migrate phase 4", &["migrate", "--phase", "4", "--yes"]);
    });
    // Every booking carries the new columns (the old ones are gone).
    let incomplete: i64 = db
        .client()
        .query_one("SELECT count(*) FROM reservations WHERE \"serviceId\" IS NULL OR period IS NULL", &[])
        .unwrap()
        .get(0);
    assert_eq!(incomplete, 0);
}

// ---- the tenant keys set --------------------------------------------------

/// Tenants and their keys, read once from the seeded database.
fn tenants_and_keys(c: &mut postgres::Client) -> (Vec<String>, Vec<String>) {
    let tenants = c.query("SELECT id::text FROM tenants ORDER BY id LIMIT 500", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    let keys = c.query("SELECT id::text FROM api_keys ORDER BY id LIMIT 500", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    (tenants, keys)
}

/// The old API: each request authenticates a key (stamping last_used_at,
/// a write on the table the set alters) and records a lead.
fn keys_old_writer(url: &str, _: Arc<Deployed>, seed: u64) -> Writer {
    let mut c = phasegate::connect(url, "api-v1-writer").unwrap();
    let (tenants, keys) = tenants_and_keys(&mut c);
    let touch = c.prepare("UPDATE api_keys SET last_used_at = now() WHERE id = $1::text::uuid").unwrap();
    let lead = c.prepare("INSERT INTO leads (tenant_id, full_name, phone, source) VALUES ($1::text::uuid, $2, $3, 'api') RETURNING id").unwrap();
    let mut g = Gen(seed);
    app("api-v1-writer", move |r| {
        let (key, tenant) = (g.pick(&keys).clone(), g.pick(&tenants).clone());
        r.write(|| c.execute(&touch, &[&key]));
        r.write(|| c.query_one(&lead, &[&tenant, &"Ana Live", &"555-0100"]));
        true
    })
}

/// A key created through the old dashboard (tenant-wide, no scope columns
/// named), and a tenant's keys listed.
fn keys_old_dashboard(url: &str, _: Arc<Deployed>, seed: u64) -> Writer {
    let mut c = phasegate::connect(url, "dashboard-v1").unwrap();
    let (tenants, _) = tenants_and_keys(&mut c);
    let create = c
        .prepare("INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash) VALUES (gen_random_uuid(), $1::text::uuid, 'live key', 'pk_live', md5(random()::text || clock_timestamp()::text))")
        .unwrap();
    let list = c.prepare("SELECT id, name, metadata FROM api_keys WHERE tenant_id = $1::text::uuid AND revoked_at IS NULL").unwrap();
    let mut g = Gen(seed);
    app("dashboard-v1", move |r| {
        let tenant = g.pick(&tenants).clone();
        if r.n().is_multiple_of(10) {
            r.write(|| c.execute(&create, &[&tenant]));
        }
        r.read(|| c.query(&list, &[&tenant]));
        true
    })
}

/// The new API, once phase 2 is in: a key sees its own branch's leads only
/// when it is branch-scoped.
fn keys_new_reader(url: &str, deployed: Arc<Deployed>, seed: u64) -> Writer {
    let url = url.to_string();
    let mut g = Gen(seed);
    let mut conn: Option<(postgres::Client, postgres::Statement, Vec<String>)> = None;
    app("api-v2-reader", move |r| {
        if !deployed.new_app.load(Ordering::SeqCst) {
            conn = None;
            if !r.wait_for(&deployed.new_app) {
                return false;
            }
        }
        let _round = deployed.round();
        if !deployed.new_app.load(Ordering::SeqCst) {
            return true; // undeployed meanwhile: the next round waits
        }
        let (c, q, keys) = conn.get_or_insert_with(|| {
            let mut c = phasegate::connect(&url, "api-v2-reader").unwrap();
            let (_, keys) = tenants_and_keys(&mut c);
            let q = c
                .prepare(
                    "SELECT l.id FROM api_keys k JOIN leads l ON l.tenant_id = k.tenant_id
                     WHERE k.id = $1::text::uuid AND (k.scope = 'tenant' OR l.branch_id = k.branch_id) ORDER BY l.created_at DESC LIMIT 20",
                )
                .unwrap();
            (c, q, keys)
        });
        let key = g.pick(keys).clone();
        r.read(|| c.query(&*q, &[&key]));
        true
    })
}

#[test]
fn tenant_keys_every_phase_and_rollback_under_traffic() {
    let db = TestDb::from_template("traffic_tk", tenant_keys_seeded_template());
    let dir = tenant_keys();
    let workers: [Worker; 4] = [&keys_old_writer, &keys_old_writer, &keys_old_dashboard, &keys_new_reader];
    with_traffic("tenant keys set (3000 tenants)", &db, &workers, |s| s.walk_there_and_back(&dir, 3));
}
