//! phasegate's integration tests: one binary (it links once), every test
//! against a real PostgreSQL started by the harness (testcontainers, or the
//! server PHASEGATE_TEST_DATABASE_URL names). No test passes without one.
//! Only `lint` and `docs` need none: they read files.

mod adopt;
mod backups;
mod batched_rollback;
mod batched_sizing;
mod bad_input;
mod change;
mod change_ops;
mod change_traffic;
mod check_batch;
mod ci_formats;
mod clinic;
mod concurrency;
mod corpus;
mod crash;
mod demo;
mod docs;
mod failed_runs;
mod foreign;
mod foreign_quirks;
mod fleet;
mod gates;
mod harness;
mod health;
mod html;
mod hostile;
mod import;
mod incremental;
mod init;
mod ledger_setup;
mod lint;
mod loading;
mod locks;
mod probes;
mod recover;
mod replica;
mod safety;
mod secrets;
mod status_schema;
mod status_walk;
mod tenant_keys;
mod tls;
mod traffic;
mod vacuum;
mod verify;
