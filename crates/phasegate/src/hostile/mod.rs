//! Property tests of every SQL builder the engine has, against a real
//! PostgreSQL (`crate::testing`, feature `testing`): generated identifiers
//! and values (quotes, backslashes, `$$` and other dollar tags, comment
//! and statement breakers, unicode with CJK and emoji, names of exactly 63
//! bytes, control characters other than NUL) go through backups and
//! restore (`backups`), keep and recover (`keep`), batch keys (`batch`),
//! snapshots (`snapshot`) and the ledger (`ledger`), each on a session
//! with `standard_conforming_strings` on and on one where the test sets it
//! off itself, so the builders are proven and not only the connection's
//! default, and with an empty `search_path` (as a pg_dump-style file
//! leaves a session). Every case asserts that what went in comes back
//! exactly and that a canary table survives.
//!
//! Each builder gets a database of its own per setting (the two run side
//! by side); its cases run in batches, one transaction per batch, rolled
//! back at the end (so the database is reused). [`CASES`] cases per builder and setting; the time each took is
//! printed (`cargo test -- --nocapture` shows it).

mod backups;
mod batch;
mod keep;
mod ledger;
mod snapshot;

use std::cell::RefCell;
use std::time::Instant;

use postgres::Transaction;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::pg::{clip_bytes, MAX_IDENT_BYTES};
use crate::testing::TestDatabase;

/// Cases per builder and per setting of `standard_conforming_strings`.
pub(crate) const CASES: usize = 1000;

/// Every rolled-back batch leaves dead rows in the catalogs (and the
/// ledger) that later catalog lookups step over: vacuumed every
/// [`VACUUM_EVERY`] batches, a builder's run takes about a quarter less.
const VACUUM: &str = "VACUUM pg_catalog.pg_class, pg_catalog.pg_attribute, pg_catalog.pg_type, pg_catalog.pg_depend, pg_catalog.pg_index, \
     pg_catalog.pg_constraint, pg_catalog.pg_attrdef, pg_catalog.pg_trigger, pg_catalog.pg_proc, pg_catalog.pg_namespace, pg_catalog.pg_sequence, \
     pg_catalog.pg_enum, public.refinery_schema_history, public.phasegate_applied, public.phasegate_batches, public.phasegate_backups, \
     public.phasegate_kept, public.phasegate_runs";
const VACUUM_EVERY: usize = 10;

/// A character of a hostile name or value.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        1 => proptest::char::range('A', 'Z'),
        1 => proptest::char::range('0', '9'),
        4 => prop::sample::select(vec!['\'', '"', '\\', '$', ';', '-', '/', '*', ' ', '(', ')', ',', '.', ':', '%', '_', '`', '{', '}', '[', '&', '\u{a0}', '\u{200b}']),
        2 => prop::sample::select(vec!['表', '情', 'ラ', '한', 'é', 'ß', 'Ω', '😀', '🦀']),
        1 => (1u32..32).prop_map(|c| char::from_u32(c).expect("a control character")),
    ]
}

/// Pieces that break SQL built carelessly.
fn fragment() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "'", "''", "\\'", "\\\\", "$$", "$a$", "$phasegate$", "E'", "U&\"", "\"\"", "--", "/*", "*/", ";", "%L", "%s", "%I", "\n", "\r\n", "\t",
        "'); DROP TABLE canary; --", "\\'); DROP TABLE canary; --", "\"; DROP TABLE canary; --", "$$; DROP TABLE canary; $$",
    ])
    .prop_map(str::to_string)
}

/// Text of up to `parts` characters and fragments (possibly empty).
pub(crate) fn text(parts: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof![3 => hostile_char().prop_map(String::from), 1 => fragment()], 0..=parts).prop_map(|p| p.concat())
}

/// A non-empty name of at most 63 bytes (what PostgreSQL keeps whole),
/// one time in five exactly 63 bytes.
pub(crate) fn ident() -> impl Strategy<Value = String> {
    (text(16), prop::bool::weighted(0.2), prop::sample::select(vec!['表', 'x', '"', '\'', '\\'])).prop_map(|(t, full, pad)| {
        let mut s = clip_bytes(&t, MAX_IDENT_BYTES).to_string();
        if s.is_empty() {
            s.push('"');
        }
        if full {
            while s.len() + pad.len_utf8() <= MAX_IDENT_BYTES {
                s.push(pad);
            }
            while s.len() < MAX_IDENT_BYTES {
                s.push('x');
            }
        }
        s
    })
}

/// `names` made distinct (a repeat gets `#<i>` at the end, cut to fit).
pub(crate) fn distinct(names: &mut [String]) {
    for i in 1..names.len() {
        if names[..i].contains(&names[i]) {
            names[i] = crate::pg::fit_name(&names[i], &format!("#{i}"), MAX_IDENT_BYTES);
        }
    }
}

/// Whether sessions run the case with `standard_conforming_strings` on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strings {
    On,
    Off,
}

impl Strings {
    fn set(self) -> &'static str {
        match self {
            Strings::On => "SET standard_conforming_strings = on",
            Strings::Off => "SET standard_conforming_strings = off; SET escape_string_warning = off",
        }
    }
}

/// What one builder's property test runs: its cases (`strategy`, `per_tx`
/// to a transaction) and the three steps of a transaction: every case's
/// `setup(i, value)` SQL in one round trip, each case through `case(tx, i,
/// value)` (`i`: its index in the transaction), then `after(tx, batch)`.
pub(crate) struct Bench<S: Strategy, Setup, Case, After> {
    pub what: &'static str,
    pub strategy: S,
    pub per_tx: usize,
    pub setup: Setup,
    pub case: Case,
    pub after: After,
}

impl<S, Setup, Case, After> Bench<S, Setup, Case, After>
where
    S: Strategy + Sync,
    S::Value: std::fmt::Debug,
    Setup: Fn(usize, &S::Value) -> String + Sync,
    Case: Fn(&mut Transaction, usize, &S::Value) -> Result<(), String> + Sync,
    After: Fn(&mut Transaction, &[S::Value]) -> Result<(), String> + Sync,
{
    /// [`CASES`] cases on each setting, the two settings side by side,
    /// each on a database of its own with its canary; every transaction
    /// is rolled back after the canary is checked. Panics with the
    /// smallest failing batch.
    pub fn run(&self) {
        let failures: Vec<String> = std::thread::scope(|scope| {
            let runs: Vec<_> = [Strings::On, Strings::Off].map(|strings| scope.spawn(move || self.on(strings))).into_iter().collect();
            runs.into_iter().filter_map(|r| r.join().unwrap_or_else(|_| Err("the run panicked".into())).err()).collect()
        });
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    fn on(&self, strings: Strings) -> Result<(), String> {
        let db = TestDatabase::empty(&format!("hostile_{}", self.what.replace(' ', "_")));
        let mut client = db.client();
        crate::ledger::ensure(&mut client).map_err(err)?;
        client.batch_execute("CREATE TABLE canary (id int PRIMARY KEY); INSERT INTO canary VALUES (1)").map_err(err)?;
        client.batch_execute(strings.set()).map_err(err)?;
        let client = RefCell::new(client);
        let batches = std::cell::Cell::new(0usize);
        let started = Instant::now();
        let config = Config { cases: CASES.div_ceil(self.per_tx) as u32, failure_persistence: None, max_shrink_iters: 100, ..Config::default() };
        let result = TestRunner::new(config).run(&prop::collection::vec(&self.strategy, self.per_tx), |batch| {
            let mut client = client.borrow_mut();
            let mut tx = client.transaction().map_err(|e| TestCaseError::fail(err(e)))?;
            let on: String = tx.query_one("SHOW standard_conforming_strings", &[]).map_err(|e| TestCaseError::fail(err(e)))?.get(0);
            prop_assert_eq!(on.as_str(), if strings == Strings::On { "on" } else { "off" });
            // As a pg_dump-style file leaves a session: the engine's own
            // statements name what they use in full.
            tx.batch_execute("SET LOCAL search_path = ''").map_err(|e| TestCaseError::fail(err(e)))?;
            let ddl: Vec<String> = batch.iter().enumerate().map(|(i, v)| (self.setup)(i, v)).collect();
            tx.batch_execute(&ddl.join(";\n")).map_err(|e| TestCaseError::fail(format!("setting up: {}", err(e))))?;
            for (i, value) in batch.iter().enumerate() {
                (self.case)(&mut tx, i, value).map_err(|e| TestCaseError::fail(format!("case {i}: {e}\n{value:?}")))?;
            }
            (self.after)(&mut tx, &batch).map_err(|e| TestCaseError::fail(format!("after the batch: {e}")))?;
            let canary: i64 = tx.query_one("SELECT count(*) FROM public.canary", &[]).map_err(|e| TestCaseError::fail(format!("the canary: {}", err(e))))?.get(0);
            prop_assert_eq!(canary, 1);
            tx.rollback().map_err(|e| TestCaseError::fail(err(e)))?;
            batches.set(batches.get() + 1);
            if batches.get().is_multiple_of(VACUUM_EVERY) {
                client.batch_execute(VACUUM).map_err(|e| TestCaseError::fail(format!("vacuuming the catalogs: {}", err(e))))?;
            }
            Ok(())
        });
        let cases = CASES.div_ceil(self.per_tx) * self.per_tx;
        eprintln!("hostile {}: {cases} cases with standard_conforming_strings {strings:?} in {:.1}s", self.what, started.elapsed().as_secs_f64());
        result.map_err(|e| format!("{} with standard_conforming_strings {strings:?}: {e}", self.what))
    }
}

/// No check after a batch.
pub(crate) fn nothing_after<V>(_: &mut Transaction, _: &[V]) -> Result<(), String> {
    Ok(())
}

/// A case's schema: its generated name with `_<i>` (cut to fit), unique
/// in its transaction, quoted. A schema name starting `pg_`, which
/// PostgreSQL keeps for its own schemas ("unacceptable schema name"), gets
/// an `s` in front: the generator makes one (`pg_...`, or `pg` itself,
/// which the suffix turns into `pg_<i>`) about once in a thousand runs.
pub(crate) fn case_schema(name: &str, i: usize) -> String {
    let name = if format!("{name}_").starts_with("pg_") { format!("s{name}") } else { name.to_string() };
    crate::pg::quote_ident(&crate::pg::fit_name(&name, &format!("_{i}"), MAX_IDENT_BYTES))
}

/// An error as text, for a case's failure: a database error with the
/// server's message and SQLSTATE (its `Display` says only "db error").
pub(crate) fn err(e: impl Explain) -> String {
    e.explain()
}

/// What [`err`] says of an error.
pub(crate) trait Explain {
    fn explain(&self) -> String;
}

impl Explain for postgres::Error {
    fn explain(&self) -> String {
        crate::error::pg_message(self)
    }
}

impl Explain for crate::error::Error {
    fn explain(&self) -> String {
        self.to_string()
    }
}

/// The server's `quote_ident` of each name (it quotes only where it must,
/// as the engine's messages and ledger rows do).
pub(crate) fn server_ident(tx: &mut Transaction, name: &str) -> Result<String, String> {
    Ok(tx.query_one("SELECT pg_catalog.quote_ident($1)", &[&name]).map_err(err)?.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest! {
        #[test]
        fn names_fit_and_are_never_empty(name in ident()) {
            prop_assert!(!name.is_empty() && name.len() <= MAX_IDENT_BYTES, "{:?}", name);
            prop_assert!(!name.contains('\0'));
        }
    }

    #[test]
    fn a_case_schema_is_never_a_name_postgresql_keeps_for_itself() {
        assert_eq!(case_schema("pg_catalog", 3), "\"spg_catalog_3\"");
        assert_eq!(case_schema("pg", 3), "\"spg_3\"", "the suffix makes `pg` a reserved name");
        assert_eq!(case_schema("pgx", 3), "\"pgx_3\"");
        assert_eq!(case_schema("PG_x", 0), "\"PG_x_0\"");
        let long = format!("pg_{}", "x".repeat(70));
        let schema = case_schema(&long, 12);
        assert!(schema.starts_with("\"spg_") && schema.ends_with("_12\"") && schema.len() <= MAX_IDENT_BYTES + 2, "{schema}");
    }
}
