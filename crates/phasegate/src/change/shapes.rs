//! The building blocks every operation is made of, each the shape an
//! expert writes for a live table: a sync trigger that leaves phasegate's
//! own backfills alone, a batched keyset backfill with its batched
//! rollback, NOT NULL through a validated CHECK, constraints added NOT
//! VALID and validated in a migration of their own, unique indexes built
//! CONCURRENTLY and attached, and a NOT NULL loosened so that the rollback
//! can put it back without a scan under an exclusive lock.

use super::checks;
use super::model::Table;
use super::sql::{comment, Checks, Moment};
use super::Ctx;

/// The transaction-local setting phasegate's generated backfills (and
/// their rollbacks) set, so the sync triggers of a change do not copy the
/// side they write on purpose back to the other side.
pub const QUIET: &str = "(SELECT set_config('phasegate.sync', 'off', true)) AS phasegate_quiet";

/// A sync trigger and its function.
pub struct Sync {
    pub function: String,
    pub trigger: String,
    /// `CREATE FUNCTION ...; CREATE TRIGGER ...;`
    pub create: String,
}

impl Sync {
    /// The function's signature for `to_regprocedure`.
    pub fn signature(&self) -> String {
        format!("{}()", self.function)
    }
    /// Drops both; `if_exists` in rollbacks.
    pub fn drop(&self, ctx: &Ctx, t: &Table, if_exists: bool) -> String {
        let ie = if if_exists { "IF EXISTS " } else { "" };
        format!("DROP TRIGGER {ie}{} ON {};\nDROP FUNCTION {ie}{}();\n", self.trigger, ctx.s.qname(&t.name), self.function)
    }
}

/// A BEFORE row trigger on `t` named after `column` (`accounts_full_name_sync`)
/// for `events` (`INSERT OR UPDATE OF a, b`), with an optional `WHEN`,
/// running `body` (PL/pgSQL statements on NEW and OLD) unless phasegate's
/// own backfill is writing.
pub fn sync(ctx: &mut Ctx, t: &Table, column: &str, events: &str, when: Option<&str>, declare: &str, body: &str) -> Sync {
    let title = ctx.b.title.clone();
    let function = super::sql::fresh_name(&["phasegate_sync", &ctx.b.slug], &mut ctx.taken);
    let trigger = super::sql::fresh_name(&[&t.name.name, column, "sync"], &mut ctx.taken);
    let declare = if declare.is_empty() { String::new() } else { format!("DECLARE\n{declare}") };
    let when = when.map(|w| format!("\n  WHEN ({w})")).unwrap_or_default();
    let create = format!(
        "CREATE FUNCTION {function}() RETURNS trigger\nLANGUAGE plpgsql AS $$\n-- phasegate sync: {title}\n{declare}BEGIN\n  \
         -- phasegate's own backfill and its rollback write one side on purpose\n  \
         -- (phasegate.sync = off in their transactions): leave their rows alone.\n  \
         IF current_setting('phasegate.sync', true) = 'off' THEN\n    RETURN NEW;\n  END IF;\n{body}  RETURN NEW;\nEND;\n$$;\n\n\
         CREATE TRIGGER {trigger}\n  BEFORE {events} ON {table}\n  FOR EACH ROW{when} EXECUTE FUNCTION {function}();\n",
        table = ctx.s.qname(&t.name),
    );
    Sync { function, trigger, create }
}

/// A batched keyset UPDATE of `t` (`-- phasegate: batch N`): `set`
/// (bare column names, or `t`-qualified with `from`) on the rows where
/// `pending` holds, walking the single-column primary key, with the sync
/// triggers quiet. `from` adds FROM items and `join` their conditions.
pub fn batched_update(ctx: &Ctx, t: &Table, header: &str, set: &str, from: Option<&str>, join: Option<&str>, pending: &str) -> String {
    let s = ctx.s;
    let table = s.qname(&t.name);
    let key = s.ident(&t.primary_key[0]);
    let from = from.map(|f| format!("{f}, ")).unwrap_or_default();
    let join = join.map(|j| format!("\n  AND {j}")).unwrap_or_default();
    format!(
        "-- phasegate: batch {batch}\n{header}UPDATE {table}\nSET {set}\nFROM {from}{QUIET}\nWHERE {table}.{key} = ANY (ARRAY(\n        SELECT {key} FROM {table}\n        WHERE (:last_key IS NULL OR {key} > :last_key)\n          AND ({pending})\n        ORDER BY {key}\n        LIMIT :batch_size)){join}\nRETURNING {table}.{key};\n",
        batch = ctx.batch,
        header = comment(header),
    )
}

/// The comment every batched file carries: why it is safe.
pub fn batch_note(t: &Table, ctx: &Ctx) -> String {
    let rows = if t.rows_estimate > 0 { format!("about {} rows", t.rows_estimate) } else { "its rows".to_string() };
    format!(
        "Safe under live traffic: phasegate runs this UPDATE in batches of :batch_size rows ({} here), one short transaction each, walking the primary key (:last_key is the largest key the previous batch returned) over {rows}, so writers wait for at most one batch's row locks; a crash or Ctrl-C resumes after the last committed batch. The batch's keys go to the UPDATE as an array (= ANY (ARRAY(...))), so each batch finds its rows through the primary key.",
        ctx.batch
    )
}

/// A constraint to add NOT VALID and validate in a later migration.
pub struct Deferred {
    pub name: String,
    /// `CHECK (...)`, `FOREIGN KEY (...) REFERENCES ...`.
    pub definition: String,
    /// `false` for the copy of a constraint that is NOT VALID itself: rows
    /// that exist may break it, so it stays NOT VALID.
    pub validate: bool,
}

/// An index to build CONCURRENTLY; `unique_constraint` attaches it as a
/// UNIQUE constraint of the same name once built.
pub struct NewIndex {
    pub name: String,
    /// The `CREATE ... INDEX CONCURRENTLY IF NOT EXISTS ...` statement.
    pub create: String,
    pub unique_constraint: bool,
}

/// The switch: constraints NOT VALID (`deferred`, with the NOT NULL helper
/// check of `not_null`), indexes CONCURRENTLY (one no-transaction migration
/// each), then one migration that validates them (and `added_before`,
/// constraints an earlier phase added NOT VALID), sets NOT NULL through the
/// validated check and attaches the unique indexes. Nothing when there is
/// nothing to do.
pub fn switch(ctx: &mut Ctx, t: &Table, deferred: Vec<Deferred>, added_before: Vec<Deferred>, indexes: Vec<NewIndex>, not_null: Option<&str>) {
    let s = ctx.s;
    let table = s.qname(&t.name);
    let helper = not_null.map(|col| Deferred { name: super::sql::fresh_name(&[&t.name.name, col, "not_null"], &mut ctx.taken), definition: format!("CHECK ({} IS NOT NULL)", s.ident(col)), validate: true });
    let added: Vec<&Deferred> = deferred.iter().chain(helper.iter()).collect();
    let all: Vec<&Deferred> = added.iter().copied().chain(added_before.iter()).filter(|d| d.validate).collect();
    if !added.is_empty() {
        let mut fwd = comment(&format!(
            "{}: add the constraints NOT VALID: catalog-only, they read no rows, and every write from now on must satisfy them; the next migration of this phase validates them in a transaction of its own.",
            ctx.b.title
        ));
        let mut rb = comment("Undo: drop the constraints (catalog-only).");
        let mut v = Checks::default();
        for d in &added {
            fwd.push_str(&format!("ALTER TABLE {table}\n  ADD CONSTRAINT {} {} NOT VALID;\n", s.ident(&d.name), d.definition));
            rb.push_str(&format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {};\n", s.ident(&d.name)));
            let added_name = format!("{}_added", super::sql::slug(&d.name));
            match (not_null, &helper) {
                (Some(col), Some(h)) if h.name == d.name => checks::not_null_helper_present(&mut v, s, t, &d.name, col, Moment::AfterMigrate, &added_name),
                _ => checks::constraint_present(&mut v, s, t, &d.name, false, Moment::AfterMigrate, &added_name),
            }
            checks::constraint_absent(&mut v, s, t, &d.name, Moment::AfterRollback, &format!("{}_dropped", super::sql::slug(&d.name)));
        }
        ctx.b.migration("add_constraints", fwd, Some(rb), v.finish());
    }
    for ix in &indexes {
        let fwd = format!(
            "-- phasegate: no-transaction\n{}{};\n",
            comment(&format!("{}: build {} without blocking writes (CONCURRENTLY, outside a transaction; IF NOT EXISTS so a re-run after a crash goes on, and phasegate drops an INVALID index a failed build left before building it again).", ctx.b.title, ix.name)),
            ix.create
        );
        let rb = format!("-- phasegate: no-transaction\n{}DROP INDEX CONCURRENTLY IF EXISTS {};\n", comment("Undo: drop the index without blocking writes."), s.ident(&ix.name));
        let mut v = Checks::default();
        checks::index_valid(&mut v, s, t, &ix.name, Moment::AfterMigrate, "index_valid");
        checks::index_absent(&mut v, s, t, &ix.name, Moment::AfterRollback, "index_dropped");
        let what = format!("index_{}", super::sql::slug(&ix.name));
        ctx.b.migration(&what, fwd, Some(rb), v.finish());
    }
    let attach: Vec<&NewIndex> = indexes.iter().filter(|i| i.unique_constraint).collect();
    if all.is_empty() && attach.is_empty() {
        return;
    }
    let mut fwd = comment(&format!(
        "{}: VALIDATE CONSTRAINT reads the table under SHARE UPDATE EXCLUSIVE (reads and writes go on); only then the statements that take ACCESS EXCLUSIVE, each catalog-only: SET NOT NULL uses the validated check as proof (PostgreSQL 12+) and skips its own scan, and a unique index becomes a constraint without a second build.",
        ctx.b.title
    ));
    let mut rb = comment("Undo: PostgreSQL cannot mark a constraint unvalidated, so each is dropped and added back NOT VALID, as the first migration of this phase left it (catalog-only); the NOT NULL goes, its helper check comes back NOT VALID; an attached unique constraint is dropped with its index, which the index's own rollback then finds gone.");
    let mut v = Checks::default();
    for d in &all {
        fwd.push_str(&format!("ALTER TABLE {table} VALIDATE CONSTRAINT {};\n", s.ident(&d.name)));
    }
    if let (Some(col), Some(h)) = (not_null, &helper) {
        fwd.push_str(&format!("\nALTER TABLE {table} ALTER COLUMN {} SET NOT NULL;\nALTER TABLE {table} DROP CONSTRAINT {};\n", s.ident(col), s.ident(&h.name)));
        rb.push_str(&format!("ALTER TABLE {table} ALTER COLUMN {} DROP NOT NULL;\n", s.ident(col)));
        checks::nullability(&mut v, s, t, col, true, Moment::AfterMigrate, "not_null_set");
        checks::nullability(&mut v, s, t, col, false, Moment::AfterRollback, "nullable_again");
        let rows_null = format!("{} IS NULL", s.ident(col));
        v.push(checks::rows_where(s, t, &[s.ident(col)], &rows_null, &format!("no row has {} NULL (VALIDATE would fail on it)", s.show(t, col)), "no_nulls_left").at(Moment::BeforeMigrate));
    }
    for ix in &attach {
        fwd.push_str(&format!("\nALTER TABLE {table} ADD CONSTRAINT {n} UNIQUE USING INDEX {n};\n", n = s.ident(&ix.name)));
        rb.push_str(&format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {};\n", s.ident(&ix.name)));
        checks::constraint_present(&mut v, s, t, &ix.name, true, Moment::AfterMigrate, &format!("{}_attached", super::sql::slug(&ix.name)));
    }
    for d in deferred.iter().chain(added_before.iter()).filter(|d| d.validate) {
        rb.push_str(&format!("ALTER TABLE {table} DROP CONSTRAINT {};\nALTER TABLE {table}\n  ADD CONSTRAINT {} {} NOT VALID;\n", s.ident(&d.name), s.ident(&d.name), d.definition));
        checks::constraint_present(&mut v, s, t, &d.name, true, Moment::AfterMigrate, &format!("{}_validated", super::sql::slug(&d.name)));
    }
    if let Some(h) = &helper {
        rb.push_str(&format!("ALTER TABLE {table}\n  ADD CONSTRAINT {} {} NOT VALID;\n", s.ident(&h.name), h.definition));
    }
    ctx.b.migration("validate", fwd, Some(rb), v.finish());
}

/// A NOT NULL loosened so that it can come back without a scan under an
/// exclusive lock: a NOT VALID check keeps refusing NULLs while NOT NULL
/// goes (one migration), then the check goes (a second one). Rolling back
/// the second puts the check back NOT VALID; rolling back the first
/// validates it (SHARE UPDATE EXCLUSIVE), sets NOT NULL with it as proof and
/// drops it.
pub fn drop_not_null(ctx: &mut Ctx, t: &Table, col: &str) {
    let s = ctx.s;
    let table = s.qname(&t.name);
    let c = s.ident(col);
    let chk = super::sql::fresh_name(&[&t.name.name, col, "not_null"], &mut ctx.taken);
    let chk_sql = s.ident(&chk);
    let fwd = format!(
        "{}ALTER TABLE {table}\n  ADD CONSTRAINT {chk_sql} CHECK ({c} IS NOT NULL) NOT VALID;\n\n-- squawk-ignore ban-drop-not-null -- loosens a constraint; the rollback restores it through {chk}\nALTER TABLE {table} ALTER COLUMN {c} DROP NOT NULL;\n",
        comment(&format!(
            "{}: drop the NOT NULL of {} and keep a NOT VALID check in its place (both catalog-only): NULLs are still refused until the next migration drops the check, and the rollback can put NOT NULL back through the check without scanning the table under an exclusive lock.",
            ctx.b.title,
            s.show(t, col)
        ))
    );
    let rb = format!(
        "{}ALTER TABLE {table} VALIDATE CONSTRAINT {chk_sql};\nALTER TABLE {table} ALTER COLUMN {c} SET NOT NULL;\nALTER TABLE {table} DROP CONSTRAINT {chk_sql};\n",
        comment("Undo: validate the check under SHARE UPDATE EXCLUSIVE (writes go on), then SET NOT NULL uses it as proof and skips its scan; the check goes again.")
    );
    let mut v = Checks::default();
    checks::nullability(&mut v, s, t, col, false, Moment::AfterMigrate, "nullable");
    v.push(checks::constraint_exists(s, t, &chk, false, "helper_check_added").until_next_migration());
    checks::nullability(&mut v, s, t, col, true, Moment::AfterRollback, "not_null_again");
    ctx.b.migration("drop_not_null", fwd, Some(rb), v.finish());

    let fwd = format!(
        "{}-- squawk-ignore ban-drop-constraint -- the helper check the previous migration added in NOT NULL's place\nALTER TABLE {table} DROP CONSTRAINT {chk_sql};\n",
        comment(&format!("{}: from now on {} accepts NULL (catalog-only).", ctx.b.title, s.show(t, col)))
    );
    let rb = format!("{}ALTER TABLE {table}\n  ADD CONSTRAINT {chk_sql} CHECK ({c} IS NOT NULL) NOT VALID;\n", comment("Undo: refuse NULLs again with the NOT VALID check (catalog-only)."));
    let mut v = Checks::default();
    checks::constraint_absent(&mut v, s, t, &chk, Moment::AfterMigrate, "helper_check_dropped");
    v.push(checks::rows_where(s, t, std::slice::from_ref(&c), &format!("{c} IS NULL"), &format!("rows with {} NULL: NOT NULL cannot come back while they exist (nothing is changed)", s.show(t, col)), "no_nulls_to_refuse").at(Moment::BeforeRollback));
    ctx.b.migration("accept_nulls", fwd, Some(rb), v.finish());
}
