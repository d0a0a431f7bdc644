//! `rename-column` and `change-type`: the column's replacement is added
//! beside it and kept in sync both ways by a trigger while both application
//! versions run (expand), the rows that exist are copied over in batches
//! (backfill), the replacement gets the column's NOT NULL, checks, foreign
//! keys and indexes (switch), and the old column goes (cleanup).

use super::super::checks;
use super::super::learn::{self, Fit};
use super::super::model::{Column, ConstraintKind, Schema, Table};
use super::super::probes::{self, Version};
use super::super::shapes::{self, batch_note, batched_update, Deferred, NewIndex};
use super::super::sql::{comment, fresh_name, lit, map_columns, replace_column, slug, Checks, Moment};
use super::super::error::Input;
use super::super::{ChangeError, ColumnRef, Ctx};
use super::{movable, walk_key};
use crate::error::Result;
use crate::sqltext::{self, Token};

/// `expr` over the table's columns (bare names) as PL/pgSQL over `NEW`.
pub(super) fn on_new(t: &Table, expr: &str, s: &Schema) -> String {
    map_columns(expr, |name| t.find_column(name).map(|c| format!("NEW.{}", s.ident(&c.name))))
}

/// A column and its replacement.
struct Copy<'a> {
    t: &'a Table,
    old: &'a Column,
    new: String,
    new_type: String,
    /// `--up` over the old column's bare name; `None`: the same value.
    up: Option<String>,
    /// `--down` in terms of the column's name, meaning the new value.
    down: Option<String>,
}

impl Copy<'_> {
    /// The new value from the old column written as `old` (SQL).
    fn up(&self, old: &str) -> String {
        match &self.up {
            Some(u) => format!("({})", replace_column(u, &self.old.name, old)),
            None => old.to_string(),
        }
    }
    /// The old value from the new column written as `new` (SQL).
    fn down(&self, new: &str) -> String {
        match &self.down {
            Some(d) => format!("({})", replace_column(d, &self.old.name, new)),
            None => new.to_string(),
        }
    }
}

pub fn rename(ctx: &mut Ctx, r: &ColumnRef, new_name: &str) -> Result<()> {
    let (t, c) = ctx.column(r)?;
    ctx.free_column(t, new_name)?;
    copy(ctx, Copy { t, old: c, new: new_name.to_string(), new_type: c.type_sql.clone(), up: None, down: None }, "rename-column")
}

pub fn change_type(ctx: &mut Ctx, r: &ColumnRef, ty: &str, up: &str, down: &str, new_name: Option<&str>) -> Result<()> {
    let (t, c) = ctx.column(r)?;
    let s = ctx.s;
    let canonical = learn::check_type(ctx.client, ty)?;
    if canonical == c.type_sql {
        return Err(ChangeError::Pointless { what: format!("change-type {}", s.show(t, &c.name)), why: format!("the column is {} already", c.type_sql) }.into());
    }
    let word: String = ty.split(|ch: char| ch == '(' || ch.is_whitespace()).next().unwrap_or("new").to_string();
    let new = new_name.map(str::to_string).unwrap_or_else(|| format!("{}_{}", c.name, slug(&word)));
    ctx.free_column(t, &new)?;
    let col = s.ident(&c.name);
    learn::check_fits(ctx.client, s, t, &Fit { input: Input::Up, shown: up, expr: up, ty, not_null_when: Some(format!("{col} IS NOT NULL")) })?;
    let round = replace_column(down, &c.name, &format!("({up})::{ty}"));
    learn::check_fits(ctx.client, s, t, &Fit { input: Input::Down, shown: down, expr: &round, ty: &c.type_sql, not_null_when: Some(format!("{col} IS NOT NULL")) })?;
    let lossy = learn::count(ctx.client, &format!("SELECT count(*) FROM {} WHERE {col} IS DISTINCT FROM ({round})::{}", s.qname(&t.name), c.type_sql))?;
    if lossy > 0 {
        ctx.b.note(format!("{lossy} rows of {} do not come back unchanged through the up then the down expression: the old application version reads the converted value of rows the new version writes", s.qname(&t.name)));
    }
    copy(ctx, Copy { t, old: c, new, new_type: canonical, up: Some(up.to_string()), down: Some(down.to_string()) }, "change-type")
}

/// `definition` (of an index or a foreign key) with the old column renamed
/// from its first parenthesis after the word `after` (the key list) on: to
/// the end for an index (its predicate too), within that parenthesis for a
/// foreign key (not the referenced table's columns).
fn swap_in_keys(definition: &str, after: &str, old: &str, new: &str) -> String {
    let lx = sqltext::lex(definition);
    let Some(start) = lx.iter().position(|l| l.token.is_word(after)) else { return definition.to_string() };
    let Some(open) = lx[start..].iter().position(|l| l.token == Token::Punct('(')).map(|p| p + start) else { return definition.to_string() };
    let end = if after == "foreign" {
        let mut depth = 0;
        let close = lx[open..].iter().position(|l| {
            match l.token {
                Token::Punct('(') => depth += 1,
                Token::Punct(')') => depth -= 1,
                _ => {}
            }
            depth == 0
        });
        close.map_or(definition.len(), |c| lx[open + c].end)
    } else {
        definition.len()
    };
    let (from, to) = (lx[open].start, end);
    format!("{}{}{}", &definition[..from], replace_column(&definition[from..to], old, new), &definition[to..])
}

/// The name of a copy of `name` for the new column: the old column's name
/// replaced inside it, else `_new` appended.
fn copy_name(ctx: &mut Ctx, name: &str, old: &str, new: &str) -> String {
    let (o, n) = (slug(old), slug(new));
    let base = if name.contains(&o) { name.replacen(&o, &n, 1) } else { format!("{name}_{n}") };
    fresh_name(&[&base], &mut ctx.taken)
}

fn copy(ctx: &mut Ctx, cp: Copy, verb: &str) -> Result<()> {
    let s = ctx.s;
    let (t, old) = (cp.t, cp.old);
    movable(ctx, t, old, verb)?;
    let unsupported = |why: &str| -> crate::error::Error { ChangeError::Unsupported { what: format!("{verb} {}", s.show(t, &old.name)), why: why.to_string() }.into() };
    if old.sequence_backed() || old.generated {
        return Err(unsupported("its values come from a sequence or an expression, which a sync trigger cannot share between two columns"));
    }
    if t.constraints_on(&old.name).any(|k| k.kind == ConstraintKind::Exclusion) {
        return Err(unsupported("an exclusion constraint uses it; change cannot copy one yet"));
    }
    walk_key(ctx, t, verb)?;
    let (table, o, n) = (s.qname(&t.name), s.ident(&old.name), s.ident(&cp.new));
    let before = ctx.b.before;
    let rws_sample = probes::sample(ctx.client, s, t)?;
    let insert = probes::insert_values(ctx.client, &mut ctx.b, s, t, rws_sample.as_ref())?;
    let skey = rws_sample.as_ref().map(|x| x.key.clone()).unwrap_or_default();

    // The new column's default: the old one's, converted.
    let new_default = old.default.as_ref().map(|d| cp.up(&format!("({d})")));
    ctx.b.phase("expand", format!("{} beside {}, kept in sync both ways by a trigger", s.show(t, &cp.new), old.name));
    let mut fwd = comment(&format!(
        "{}: add {} ({}, nullable) beside {} and keep the two in sync whichever application version writes: a write through {} fills {} and the reverse. Catalog-only: ADD COLUMN without a default rewrites nothing, CREATE FUNCTION touches no table, CREATE TRIGGER takes SHARE ROW EXCLUSIVE for an instant.",
        ctx.b.title, cp.new, cp.new_type, old.name, old.name, cp.new
    ));
    fwd.push_str(&format!("ALTER TABLE {table} ADD COLUMN {n} {};\n", cp.new_type));
    if let Some(d) = &new_default {
        fwd.push_str(&format!("ALTER TABLE {table} ALTER COLUMN {n} SET DEFAULT {d};\n"));
    }
    let defaulted = new_default.as_ref().map(|d| format!(" OR NEW.{n} IS NOT DISTINCT FROM {d}")).unwrap_or_default();
    let body = format!(
        "  -- A BEFORE trigger only changes the row being written (NEW) and runs no\n  \
         -- statement, so it cannot fire itself: no recursion, whoever writes.\n  \
         IF TG_OP = 'INSERT' THEN\n    IF NEW.{n} IS NULL{defaulted} THEN\n      \
         NEW.{n} := {up};  -- written by the version that knows {on}\n    ELSE\n      \
         NEW.{o} := {down};  -- written by the version that knows {nn}\n    END IF;\n  \
         ELSIF NEW.{n} IS DISTINCT FROM OLD.{n} THEN\n    NEW.{o} := {down};  -- {nn} changed (it wins when both did)\n  \
         ELSIF NEW.{o} IS DISTINCT FROM OLD.{o} THEN\n    NEW.{n} := {up};\n  END IF;\n",
        up = cp.up(&format!("NEW.{o}")),
        down = cp.down(&format!("NEW.{n}")),
        on = old.name,
        nn = cp.new,
    );
    let sync = shapes::sync(ctx, t, &old.name, &format!("INSERT OR UPDATE OF {o}, {n}"), None, "", &body);
    fwd.push('\n');
    fwd.push_str(&sync.create);
    let rb = format!("{}{}ALTER TABLE {table} DROP COLUMN IF EXISTS {n};\n", comment("Undo: the trigger, its function and the new column go (catalog-only)."), sync.drop(ctx, t, true));
    let mut v = Checks::default();
    checks::column_present(&mut v, s, t, &cp.new, Some(&cp.new_type), Some(false), "new_column_added");
    checks::trigger_enabled(&mut v, s, t, &sync.trigger, Moment::AfterMigrate, "sync_trigger_enabled");
    checks::column_absent(&mut v, s, t, &cp.new, Moment::AfterRollback, "new_column_dropped");
    checks::trigger_absent(&mut v, s, t, &sync.trigger, &sync.signature(), Moment::AfterRollback, "sync_trigger_dropped");
    ctx.b.migration("add_column", fwd, Some(rb), v.finish());

    ctx.b.phase("backfill", format!("{} copied from {} on every existing row, in batches", s.show(t, &cp.new), old.name));
    let pending = format!("{n} IS NULL AND {o} IS NOT NULL");
    let mismatch = match (&cp.up, &cp.down) {
        (None, _) => format!("{n} IS DISTINCT FROM {o}"),
        _ => format!("{n} IS DISTINCT FROM {} AND {o} IS DISTINCT FROM {}", cp.up(&o), cp.down(&n)),
    };
    let disagree = format!("NOT ({pending}) AND {mismatch}");
    let fwd = batched_update(ctx, t, &format!("{}: copy {} into {} on the rows that exist{}. The sync trigger is quiet for this UPDATE (it writes the new column on purpose; rows the applications write meanwhile are synced by the trigger). {}", ctx.b.title, old.name, cp.new, if cp.up.is_some() { " through the up expression" } else { "" }, batch_note(t, ctx)), &format!("{n} = {}", cp.up(&o)), None, None, &pending);
    let rb = batched_update(ctx, t, &format!("Undo: {} back to NULL, in batches like the backfill (each batch's rows are backed up first); {} is not touched, and the sync trigger is quiet so it stays so.", cp.new, old.name), &format!("{n} = NULL"), None, None, &format!("{n} IS NOT NULL"));
    let mut v = Checks::default();
    checks::trigger_enabled(&mut v, s, t, &sync.trigger, Moment::BeforeMigrate, "sync_trigger_in_place");
    checks::pending_percent(&mut v, s, t, &pending, &format!("not copied yet ({} NULL, {} set)", cp.new, old.name), "unmigrated_percent");
    let shown = vec![o.clone(), n.clone()];
    v.push(checks::rows_where(s, t, &shown, &disagree, &format!("{} and {} hold the same value on every copied row", old.name, cp.new), "old_and_new_agree").at(Moment::AfterMigrate));
    v.push(checks::rows_where(s, t, &shown, &disagree, &format!("the rollback left no row where {} and {} disagree", old.name, cp.new), "old_and_new_agree_after_rollback").at(Moment::AfterRollback));
    ctx.b.migration("backfill", fwd, Some(rb), v.finish());

    // The switch: what the old column has, the new one gets.
    let mut deferred = Vec::new();
    let mut indexes = Vec::new();
    for k in t.constraints_on(&old.name) {
        match k.kind {
            ConstraintKind::Check | ConstraintKind::ForeignKey => {
                let name = copy_name(ctx, &k.name, &old.name, &cp.new);
                let definition = if k.kind == ConstraintKind::Check { replace_column(&k.definition, &old.name, &n) } else { swap_in_keys(&k.definition, "foreign", &old.name, &n) };
                deferred.push(Deferred { name, definition, validate: k.validated });
            }
            _ => {}
        }
    }
    for ix in t.indexes_on(&old.name).filter(|i| !i.primary && !i.valid) {
        ctx.b.note(format!("index {} is INVALID (a failed build): not copied to {}", ix.name, cp.new));
    }
    for ix in t.indexes_on(&old.name).filter(|i| !i.primary && i.valid) {
        let name = copy_name(ctx, &ix.name, &old.name, &cp.new);
        let def = swap_in_keys(&ix.definition, "on", &old.name, &n);
        let def = def.replacen(&format!("INDEX {} ON", s.ident(&ix.name)), &format!("INDEX CONCURRENTLY IF NOT EXISTS {name} ON"), 1);
        indexes.push(NewIndex { name, create: def, unique_constraint: ix.constraint.is_some() });
    }
    let carried: Vec<String> = deferred.iter().map(|d| d.name.clone()).chain(indexes.iter().map(|i| i.name.clone())).collect();
    if old.not_null || !deferred.is_empty() || !indexes.is_empty() {
        ctx.b.phase("switch", format!("{} gets what {} has ({}){}", s.show(t, &cp.new), old.name, if old.not_null { "NOT NULL" } else { "nullable" }, if carried.is_empty() { String::new() } else { format!(": {}", carried.join(", ")) }));
        shapes::switch(ctx, t, deferred, vec![], indexes, old.not_null.then_some(cp.new.as_str()));
    }
    let last = ctx.b.last_phase();

    ctx.b.irreversible(
        "cleanup",
        format!("drop {} and the sync trigger", s.show(t, &old.name)),
        format!("drops {}, whose values live on in {}; recover brings the column and the sync trigger back from what migrate keeps", s.show(t, &old.name), cp.new),
    );
    let fwd = format!(
        "{}{}ALTER TABLE {table} DROP COLUMN {o};\n",
        comment(&format!(
            "{}: only once no deployed application version reads or writes {}. DROP COLUMN is catalog-only and takes ACCESS EXCLUSIVE for an instant; its own indexes and constraints go with it; no CASCADE, so anything unexpected that depends on it aborts the migration.",
            ctx.b.title, old.name
        )),
        sync.drop(ctx, t, false)
    );
    let mut v = Checks::default();
    v.push(checks::rows_where(s, t, &[o.clone(), n.clone()], &pending, &format!("every row has {} copied (nothing lives only in {})", cp.new, old.name), "every_row_copied").at(Moment::BeforeMigrate));
    v.push(checks::rows_where(s, t, &[o.clone(), n.clone()], &disagree, &format!("{} and {} agree on every row before {} goes", old.name, cp.new, old.name), "old_and_new_agree_before_cleanup").at(Moment::BeforeMigrate));
    checks::column_absent(&mut v, s, t, &old.name, Moment::AfterMigrate, "old_column_dropped");
    checks::trigger_absent(&mut v, s, t, &sync.trigger, &sync.signature(), Moment::AfterMigrate, "sync_trigger_dropped");
    ctx.b.migration("drop_old_column", fwd, None, v.finish());

    // Probes: the same row's reads and writes through each name.
    let all: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
    let old_value = rws_sample.as_ref().map(|x| probes::literal(old, x.values.get(&old.name).cloned().flatten().as_deref())).unwrap_or_else(|| probes::typed_literal(s, old).unwrap_or_else(|| "NULL".into()));
    // A literal of the old column as the new one holds it (through --up).
    let mut convert = |v: &str| -> Result<String> {
        if cp.up.is_none() || v == "NULL" {
            return Ok(v.to_string());
        }
        let q = format!("SELECT ({})::{}::text", cp.up(&format!("{v}::{}", old.type_sql)), cp.new_type);
        Ok(learn::text(ctx.client, &q)?.map(|x| lit(&x)).unwrap_or_else(|| "NULL".into()))
    };
    let new_value = convert(&old_value)?;
    let new_insert: Option<Vec<(String, String)>> = match &insert {
        Some(row) => Some(row.iter().map(|(c, v)| if *c == old.name { convert(v).map(|x| (cp.new.clone(), x)) } else { Ok((c.clone(), v.clone())) }).collect::<Result<_>>()?),
        None => None,
    };
    let old_stmts = probes::statements(s, t, &skey, &all, insert.as_deref(), &[(old.name.clone(), old_value)]);
    let new_read: Vec<String> = all.iter().map(|c| if *c == old.name { cp.new.clone() } else { c.clone() }).collect();
    let new_stmts = probes::statements(s, t, &skey, &new_read, new_insert.as_deref(), &[(cp.new.clone(), new_value)]);
    probes::add(&mut ctx.b, ctx.client, Version::Old, old_stmts, before, Some(last))?;
    probes::add(&mut ctx.b, ctx.client, Version::New, new_stmts, last, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_of_keys_rename_the_column_only_in_the_key_list() {
        let ix = "CREATE UNIQUE INDEX accounts_email_key ON public.accounts USING btree (email)";
        assert_eq!(swap_in_keys(ix, "on", "email", "mail"), "CREATE UNIQUE INDEX accounts_email_key ON public.accounts USING btree (mail)");
        let same = "CREATE INDEX email_idx ON public.email USING btree (lower(email)) WHERE (email <> ''::text)";
        assert_eq!(swap_in_keys(same, "on", "email", "mail"), "CREATE INDEX email_idx ON public.email USING btree (lower(mail)) WHERE (mail <> ''::text)");
        let fk = "FOREIGN KEY (owner) REFERENCES owner(owner) ON DELETE CASCADE";
        assert_eq!(swap_in_keys(fk, "foreign", "owner", "owner_id"), "FOREIGN KEY (owner_id) REFERENCES owner(owner) ON DELETE CASCADE");
    }
}
