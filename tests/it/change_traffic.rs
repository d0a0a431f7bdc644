//! `change` under traffic (issue 19, item 5): for every operation, the
//! change is generated on the shop fixture (the clinic's baseline for
//! split-to-lookup) and walked on a copy seeded with 100k rows while each
//! application version runs its probe statements (the files `change` wrote
//! in probes/) in a writer of its own, deployed where phases.toml says the
//! probe must work (the old version until the cleanup, the new one from the
//! switch): every phase migrated, every reversible phase rolled back newest
//! first and migrated again, then the irreversible ones. 0 failed
//! statements; at the end of every phase where the change has two
//! representations of the data (old and new column, enum and lookup), they
//! agree for every row. A probe's UPDATE writes the values its row has, so
//! for those operations each version also updates a row of its own to a
//! new value every round (through its own representation): a sync trigger
//! that ignores UPDATEs fails the walk (without these writes it passed).
//! The per-stage table is printed (`--show-output`);
//! a worker that ran fewer than 10 statements fails the test.
//!
//! drop-not-null and drop-column: once the new version has written NULLs,
//! the first phase's rollback (NOT NULL back) is refused by its
//! before-rollback check, nothing changed; the test asserts the refusal,
//! fills the NULLs as the operator would, and rolls back again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::change::{change, generated, source};
use crate::harness::traffic::{app, with_traffic, Deployed, Worker};
use crate::harness::{exit, TestDb, Writer};
use phasegate::testing::Factory;

const ROWS: u64 = 100_000;

/// A probe file as an application version: its statements, one a request.
struct Version {
    name: String,
    statements: Vec<String>,
    from: u32,
    until: Option<u32>,
    deployed: Arc<AtomicBool>,
}

impl Version {
    fn works_after(&self, phase: u32) -> bool {
        phase >= self.from && self.until.is_none_or(|u| phase <= u)
    }
}

/// Whether a statement writes.
fn writes(sql: &str) -> bool {
    let first = sql.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("--")).unwrap_or_default().to_ascii_uppercase();
    ["INSERT", "UPDATE", "DELETE", "MERGE"].iter().any(|k| first.starts_with(k))
}

/// The writer of one application version: while deployed, each round sends
/// the probe's statements (autocommit, as an application does); the
/// placeholder values `change` writes for text columns (`'probe'`, and
/// `'probe-...'` where a unique key needs a distinct one) are made distinct
/// per round and writer in its writes, so its rows stay.
fn version_writer(url: &str, deployed: Arc<Deployed>, v: &Version, tag: usize) -> Writer {
    let (url, statements, flag) = (url.to_string(), v.statements.clone(), v.deployed.clone());
    let mut conn: Option<postgres::Client> = None;
    app(&v.name, move |r| {
        if !flag.load(Ordering::SeqCst) {
            conn = None; // undeployed: its processes are gone
            if !r.wait_for(&flag) {
                return false;
            }
        }
        let _round = deployed.round();
        if !flag.load(Ordering::SeqCst) {
            return true; // undeployed meanwhile: the next round waits
        }
        let c = conn.get_or_insert_with(|| phasegate::connect(&url, "app").unwrap());
        let n = r.n();
        for sql in &statements {
            if writes(sql) {
                let sql = sql.replace("'probe-", &format!("'probe-w{tag}r{n}-")).replace("'probe'", &format!("'probe-w{tag}r{n}'")).replace("{n}", &n.to_string());
                r.write(|| c.batch_execute(&sql));
            } else {
                r.read(|| c.batch_execute(sql));
            }
        }
        true
    })
}

/// Starts a worker (see [`Worker`]).
type Start<'a> = Box<dyn Fn(&str, Arc<Deployed>, u64) -> Writer + 'a>;

/// One operation under traffic.
struct Op<'a> {
    fixture: &'a str,
    /// The change (several: changes applied one after the other).
    changes: &'a [&'a [&'a str]],
    /// Rows where the old and the new representation disagree (a count),
    /// once both hold every row: from the backfill phase to the last one
    /// where the old version works.
    disagree: Option<&'a str>,
    /// A rollback its before-rollback check refuses once the new version
    /// has written (its NULLs in a column the rollback makes NOT NULL
    /// again): the phase, the check, and what the operator runs before
    /// rolling back again.
    refused: Option<(u32, &'a str, &'a str)>,
    /// Writes that change the value (the probes' UPDATEs write the values
    /// the row has): the old version's through the old representation, the
    /// new version's through the new one, `{n}` the round; the agreement
    /// checks then see the sync of both versions' updates.
    live: Option<(&'a str, &'a str)>,
}

fn under_traffic(op: Op) {
    let dir = generated(op.fixture, op.changes[0]);
    for more in &op.changes[1..] {
        change(dir.path(), more).expect_exit(0);
    }
    let set = phasegate::load_set(dir.path()).unwrap();
    let versions: Vec<Version> = set
        .probes
        .iter()
        .map(|p| {
            let name = p.name.trim_start_matches("probes/").trim_end_matches(".sql").to_string();
            let mut statements: Vec<String> = phasegate::split_statements(&p.file.text).iter().map(|st| p.file.text[st.start..st.end].to_string()).collect();
            if let Some((old, new)) = op.live {
                statements.push(if name.ends_with("_old") { old } else { new }.to_string());
            }
            Version { name, statements, from: p.from, until: p.until, deployed: Arc::new(AtomicBool::new(p.works_after(0))) }
        })
        .collect();
    assert!(!versions.is_empty(), "{:?}: no probe files", op.changes);
    let template = Factory::new(source(op.fixture)).phase(0).seed_rows(ROWS).template();
    let db = TestDb::from_template(&format!("{}_traffic", op.fixture), template);
    let workers: Vec<Start> = versions.iter().enumerate().map(|(i, v)| Box::new(move |url: &str, d: Arc<Deployed>, _| version_writer(url, d, v, i)) as Start).collect();
    let workers: Vec<Worker> = workers.iter().map(|w| w.as_ref() as Worker).collect();
    let phases: Vec<&phasegate::Phase> = set.phases.iter().filter(|p| p.id > 0).collect();
    let backfill = phases.iter().find(|p| p.name.ends_with(": backfill")).map(|p| p.id);
    let old_until = versions.iter().filter(|v| v.name.ends_with("_old")).filter_map(|v| v.until).min().unwrap_or(u32::MAX);
    let agree = |db: &TestDb, phase: u32, stage: &str| {
        let (Some(q), Some(from)) = (op.disagree, backfill) else { return };
        if (from..=old_until).contains(&phase) {
            assert_eq!(db.count(q), 0, "{:?}: after {stage}, rows where the old and new representations disagree: {q}", op.changes);
        }
    };
    let split = phases.iter().position(|p| !p.is_reversible()).unwrap_or(phases.len());
    let (reversible, rest) = phases.split_at(split);
    let title = format!("{} ({ROWS} seeded rows)", op.changes.iter().map(|c| c.join(" ")).collect::<Vec<_>>().join(" + "));
    let per_worker = with_traffic(&title, &db, &workers, |s| {
        let dir = dir.path();
        // The versions that must work after `phase` are deployed, the rest
        // retired: before a stage, those that do not work on both sides of it go.
        let deploy = |phase: u32, next: u32| {
            for v in &versions {
                let on = v.works_after(phase) && v.works_after(next);
                if v.deployed.load(Ordering::SeqCst) != on {
                    s.switch(&v.deployed, on);
                }
            }
        };
        // Migrates phase `p` from the state after phase `at`.
        let forward = |at: &mut u32, p: &phasegate::Phase, again: &str| {
            deploy(*at, p.id);
            let id = p.id.to_string();
            let stage = format!("migrate phase {id}{again}");
            s.run(dir, &stage, &["migrate", "--phase", &id, "--yes"]);
            deploy(p.id, p.id);
            agree(s.db, p.id, &stage);
            *at = p.id;
        };
        let mut at = 0;
        for p in reversible {
            forward(&mut at, p, "");
        }
        for (i, p) in reversible.iter().enumerate().rev() {
            let before = if i == 0 { 0 } else { reversible[i - 1].id };
            deploy(p.id, before);
            let id = p.id.to_string();
            let args = ["rollback", "--phase", &id, "--yes"];
            if let Some((_, check, repair)) = op.refused.filter(|r| r.0 == p.id) {
                let out = s.attempt(dir, &format!("rollback phase {id}, refused"), &args, exit::ROLLBACK);
                assert!(out.stdout.contains(&format!("check {check}")) && out.stdout.contains("nothing was changed"), "{}", out.stdout);
                s.db.client().batch_execute(repair).unwrap();
            }
            s.run(dir, &format!("rollback phase {id}"), &args);
            deploy(before, before);
            at = before;
        }
        for p in reversible {
            forward(&mut at, p, " again");
        }
        for p in rest {
            forward(&mut at, p, "");
        }
    });
    assert_eq!(per_worker.len(), versions.len());
}

macro_rules! ops_under_traffic {
    ($($name:ident: $fixture:expr, [$($change:expr),+], $disagree:expr $(, refused $refused:expr)? $(, live $live:expr)?;)+) => {$(
        #[test]
        fn $name() {
            under_traffic(Op { fixture: $fixture, changes: &[$($change),+], disagree: $disagree, refused: None $(.or(Some($refused)))?, live: None $(.or(Some($live)))? });
        }
    )+};
}

const SHOP: &str = "change_shop";

ops_under_traffic! {
    add_column_with_a_default: SHOP, [&["add-column", "accounts.tier", "text", "--default", "'basic'", "--not-null"]], None;
    add_column_with_a_fill: SHOP, [&["add-column", "accounts.email_domain", "text", "--fill", "split_part(email, '@', 2)", "--not-null"]],
        Some("SELECT count(*) FROM accounts WHERE email_domain IS DISTINCT FROM split_part(email, '@', 2)");
    rename_column: SHOP, [&["rename-column", "accounts.full_name", "display_name"]], Some("SELECT count(*) FROM accounts WHERE display_name IS DISTINCT FROM full_name"),
        live ("UPDATE accounts SET full_name = 'Live old {n}' WHERE id = 2", "UPDATE accounts SET display_name = 'Live new {n}' WHERE id = 3");
    change_type: SHOP, [&["change-type", "orders.amount", "numeric(12,2)", "--up", "amount::numeric(12,2)", "--down", "round(amount)::integer"]],
        Some("SELECT count(*) FROM orders WHERE amount_numeric IS DISTINCT FROM amount::numeric(12,2)"),
        live ("UPDATE orders SET amount = {n} % 500 WHERE id = 2", "UPDATE orders SET amount_numeric = {n} % 500 WHERE id = 3");
    set_not_null: SHOP, [&["set-not-null", "accounts.phone", "--fill", "'unknown'"]], Some("SELECT count(*) FROM accounts WHERE phone IS NULL"),
        live ("UPDATE accounts SET phone = NULL WHERE id = 2", "UPDATE accounts SET phone = '+1-555-live-{n}' WHERE id = 3");
    drop_not_null: SHOP, [&["drop-not-null", "accounts.full_name"]], None,
        refused (1, "no_nulls_to_refuse", "UPDATE accounts SET full_name = 'unknown' WHERE full_name IS NULL");
    set_default: SHOP, [&["set-default", "accounts.nickname", "'anon'"]], None;
    drop_default: SHOP, [&["drop-default", "accounts.status"]], None;
    add_check: SHOP, [&["add-check", "orders", "orders_amount_small", "amount < 100000"]], None;
    add_unique: SHOP, [&["add-unique", "accounts.phone"]], None;
    drop_constraint_then_add_foreign_key: SHOP, [&["drop-constraint", "orders", "orders_account_id_fkey"], &["add-foreign-key", "orders.account_id", "accounts.id", "--on-delete", "cascade"]], None;
    drop_constraint: SHOP, [&["drop-constraint", "accounts", "accounts_full_name_check"]], None;
    rename_constraint: SHOP, [&["rename-constraint", "orders", "orders_amount_check", "orders_amount_not_negative"]], None;
    create_index: SHOP, [&["create-index", "accounts", "lower(nickname)", "--unique", "--where", "status = 'active'", "--name", "accounts_active_nickname_key"]], None;
    drop_index: SHOP, [&["drop-index", "accounts_full_name_idx"]], None;
    create_table: SHOP, [&["create-table", "coupons", "(id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, code text NOT NULL UNIQUE, account_id bigint REFERENCES accounts (id), percent integer NOT NULL DEFAULT 10)"]], None;
    rename_table: SHOP, [&["rename-table", "orders", "purchases"]], None;
    drop_table: SHOP, [&["drop-table", "orders"]], None;
    drop_column: SHOP, [&["drop-column", "accounts.legacy_flags"]], None,
        refused (1, "no_nulls_to_refuse", "UPDATE accounts SET legacy_flags = 0 WHERE legacy_flags IS NULL");
    split_to_lookup: "change_clinic", [&["split-to-lookup", "reservations.service", "services"]],
        Some("SELECT count(*) FROM reservations r LEFT JOIN services s ON s.id = r.\"serviceId\" WHERE s.code IS DISTINCT FROM r.service::text"),
        live (
            "UPDATE reservations SET service = (ARRAY['SKIN_CARE', 'BODY_CARE'])[1 + {n} % 2]::\"ServiceType\" WHERE id = 2",
            "UPDATE reservations SET \"serviceId\" = (SELECT id FROM services WHERE code = (ARRAY['SKIN_CARE', 'BODY_CARE'])[1 + {n} % 2]) WHERE id = 3"
        );
}
