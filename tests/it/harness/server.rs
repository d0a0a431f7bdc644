//! The tests' server and databases, through `phasegate::testing` (the API an
//! adopter's tests use): one disposable PostgreSQL per test binary, a
//! database per test (`TestDb`, a guard that drops it unless the test
//! failed), and the seeded templates of both shipped sets.

use std::path::{Path, PathBuf};

use phasegate::testing::{Factory, TestDatabase};
use phasegate::Server;

use super::repo;

/// The shared server of this test binary (`phasegate::testing::server`:
/// PHASEGATE_TEST_DATABASE_URL, else Docker with PHASEGATE_PG_IMAGE, else
/// the local initdb and pg_ctl; the tests fail saying what to install when
/// none works).
pub fn server() -> &'static Server {
    phasegate::testing::server()
}

/// A database for one test (`phasegate::testing::TestDatabase`); dropped
/// with the guard unless the test failed, when it is kept and its name
/// printed.
pub struct TestDb {
    pub name: String,
    pub url: String,
    _db: TestDatabase,
}

impl TestDb {
    pub fn new(label: &str) -> TestDb {
        Self::wrap(TestDatabase::empty(label).keep_failed())
    }

    pub fn from_template(label: &str, template: &str) -> TestDb {
        Self::wrap(TestDatabase::from_template(label, template).keep_failed())
    }

    fn wrap(db: TestDatabase) -> TestDb {
        TestDb { name: db.name().to_string(), url: db.url().to_string(), _db: db }
    }

    pub fn client(&self) -> postgres::Client {
        phasegate::connect(&self.url, "phasegate-test").expect("connect to the test database")
    }

    /// The one bigint a query returns (a count).
    pub fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
    }

    /// The whole-state snapshot: schema, and every table's rows (ledger excluded).
    pub fn snapshot(&self) -> phasegate::Snapshot {
        phasegate::take_snapshot(&mut self.client(), &Default::default()).expect("snapshot")
    }

    /// The ledger tables' contents (refinery history and phasegate_applied).
    pub fn ledger(&self) -> Vec<String> {
        let mut c = self.client();
        let mut out = Vec::new();
        for q in [
            "SELECT coalesce(string_agg(version || ' ' || name || ' ' || checksum, ',' ORDER BY version), '') FROM refinery_schema_history",
            "SELECT coalesce(string_agg(version || ' ' || forward_sha256, ',' ORDER BY version), '') FROM phasegate_applied",
        ] {
            match c.query_one(q, &[]) {
                Ok(r) => out.push(r.get(0)),
                Err(_) => out.push("<no ledger>".into()),
            }
        }
        out
    }
}

/// A template database with the clinic set's phase 0 applied and its seed
/// loaded (100k reservations); tests clone it instead of seeding again.
pub fn clinic_seeded_template() -> &'static str {
    seeded_template(&repo())
}

/// The tenant API keys set (docs/migration-set.md).
pub fn tenant_keys() -> PathBuf {
    repo().join("examples/tenant-keys")
}

/// A template database with the tenant keys set's phase 0 applied and its
/// seed loaded (3000 tenants).
pub fn tenant_keys_seeded_template() -> &'static str {
    seeded_template(&tenant_keys())
}

/// The set in `dir` up to its seed phase, with the seed loaded, as a
/// template (`phasegate::testing::Factory`, built once per test binary).
fn seeded_template(dir: &Path) -> &'static str {
    let set = phasegate::load_set(dir).expect("the set loads");
    let after = set.seed().map(|s| s.after_phase).unwrap_or(0);
    Factory::new(dir).phase(after).seeded().template()
}
