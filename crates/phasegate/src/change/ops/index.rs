//! Indexes: `create-index` (built CONCURRENTLY, outside a transaction, its
//! rollback dropped CONCURRENTLY) and `drop-index` (dropped CONCURRENTLY,
//! its rollback rebuilds it CONCURRENTLY from its definition).

use super::super::checks;
use super::super::error::Input;
use super::super::learn;
use super::super::model::{Index, Table};
use super::super::shapes::{self, NewIndex};
use super::super::sql::{comment, fresh_name, slug, Checks, Moment};
use super::super::{error, ChangeError, Ctx, TableRef};
use super::constraint::{no_duplicates, with_unique};
use super::{columns_in, free_name, same_probes, unwrap_parens};
use crate::error::Result;
use crate::sqltext::{self, Token};

/// The items of a key list at the top level: `a, lower(b), (c || d)`.
fn items(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for lx in sqltext::lex(list) {
        match lx.token {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => depth -= 1,
            Token::Punct(',') if depth == 0 => {
                out.push(list[start..lx.start].trim().to_string());
                start = lx.end;
            }
            _ => {}
        }
    }
    out.push(list[start..].trim().to_string());
    out
}

pub fn create(ctx: &mut Ctx, tr: &TableRef, keys: &str, unique: bool, predicate: Option<&str>, name: Option<&str>) -> Result<()> {
    let t = ctx.table_ref(tr)?;
    let s = ctx.s;
    let keys = unwrap_parens(keys).to_string();
    let list = items(&keys);
    if list.iter().any(String::is_empty) {
        return Err(ChangeError::BadArgument(format!("index keys `{keys}` are not a list of columns or expressions")).into());
    }
    // A key that is one name must be a column of the table: name the closest.
    for item in &list {
        let toks = sqltext::tokens(item);
        if let [tok] = toks.as_slice() {
            if let Some(n) = tok.ident() {
                if t.find_column(&n).is_none() {
                    return Err(ChangeError::UnknownColumn { table: s.qname(&t.name), column: n.clone(), closest: error::closest(&n, t.columns.iter().map(|c| c.name.as_str())) }.into());
                }
            }
        }
    }
    let table = s.qname(&t.name);
    let u = if unique { "UNIQUE " } else { "" };
    let like = format!("CREATE TEMP TABLE phasegate_like (LIKE {table}) ON COMMIT DROP;\n");
    learn::try_ddl(ctx.client, &format!("{like}CREATE {u}INDEX ON phasegate_like ({keys})"), Input::Keys, &keys, |_| Ok(()))?;
    if let Some(p) = predicate {
        learn::try_ddl(ctx.client, &format!("{like}CREATE {u}INDEX ON phasegate_like ({keys}) WHERE {p}"), Input::Predicate, p, |_| Ok(()))?;
    }
    let name = match name {
        Some(n) => free_name(ctx, "relation", n, None)?,
        None => fresh_name(&[&t.name.name, &slug(&keys), if unique { "key" } else { "idx" }], &mut ctx.taken),
    };
    if unique {
        no_duplicates(ctx, t, &list, predicate, Input::Keys, &keys)?;
    }
    let where_sql = predicate.map(|p| format!(" WHERE {p}")).unwrap_or_default();
    let id = ctx.b.phase("index", format!("{u}index {name} on {table} ({keys}){where_sql}, built CONCURRENTLY").trim_start().to_string());
    let create = format!("CREATE {u}INDEX CONCURRENTLY IF NOT EXISTS {} ON {table} ({keys}){where_sql}", s.ident(&name));
    shapes::switch(ctx, t, vec![], vec![], vec![NewIndex { name: name.clone(), create, unique_constraint: false }], None);
    let touched = columns_in(t, &keys);
    let after = if unique { with_unique(t, &name, touched.clone()) } else { t.clone() };
    same_probes(ctx, &after, &touched, id, None)
}

/// The index `r` names and its table, or an error naming the closest.
fn find<'a>(ctx: &Ctx<'a>, r: &TableRef) -> Result<(&'a Table, &'a Index)> {
    let s = ctx.s;
    let in_schema = |t: &&Table| r.schema.as_deref().map_or(t.name.schema == s.current_schema, |sc| sc == t.name.schema);
    let found = s.tables.iter().filter(in_schema).find_map(|t| t.indexes.iter().find(|i| i.name == r.table).map(|i| (t, i)));
    found.ok_or_else(|| {
        let names: Vec<&str> = s.tables.iter().flat_map(|t| t.indexes.iter().map(|i| i.name.as_str())).collect();
        ChangeError::UnknownObject { what: "index", name: r.table.clone(), place: format!("in {}", ctx.described), closest: error::closest(&r.table, names) }.into()
    })
}

pub fn drop(ctx: &mut Ctx, r: &TableRef) -> Result<()> {
    let (t, ix) = find(ctx, r)?;
    let s = ctx.s;
    if let Some(k) = &ix.constraint {
        return Err(ChangeError::Unsupported { what: format!("drop-index {}", ix.name), why: format!("it is the index of constraint {k} of {}; drop the constraint instead (drop-constraint {} {k})", s.qname(&t.name), s.qname(&t.name)) }.into());
    }
    if !ix.valid {
        ctx.b.note(format!("index {} is INVALID (a failed build): its rollback builds it again, valid", ix.name));
    }
    let q = s.ident(&ix.name);
    let qualified = if t.name.schema == s.current_schema { q.clone() } else { format!("{}.{q}", s.ident(&t.name.schema)) };
    let create = ix.definition.replacen(&format!("INDEX {q} ON"), &format!("INDEX CONCURRENTLY IF NOT EXISTS {q} ON"), 1);
    let id = ctx.b.phase("drop", format!("index {} of {} dropped CONCURRENTLY", ix.name, s.qname(&t.name)));
    let fwd = format!(
        "-- phasegate: no-transaction\n{}DROP INDEX CONCURRENTLY IF EXISTS {qualified};\n",
        comment(&format!("{}: without blocking reads or writes (CONCURRENTLY, outside a transaction). Queries that used it fall back to other plans: read the plans of the queries it served before. The rollback builds it again CONCURRENTLY from its definition.", ctx.b.title))
    );
    let rb = format!("-- phasegate: no-transaction\n{}{create};\n", comment("Undo: build the index again without blocking writes (CONCURRENTLY, outside a transaction; IF NOT EXISTS so a re-run after a crash goes on)."));
    let mut v = Checks::default();
    checks::index_absent(&mut v, s, t, &ix.name, Moment::AfterMigrate, "index_dropped");
    checks::index_valid(&mut v, s, t, &ix.name, Moment::AfterRollback, "index_back");
    ctx.b.migration("drop_index", fwd, Some(rb), v.finish());
    same_probes(ctx, t, &ix.columns, id, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn key_lists_split_at_top_level_commas() {
        assert_eq!(items("a, lower(b), (c || ',' || d)"), ["a", "lower(b)", "(c || ',' || d)"]);
        assert_eq!(items("a"), ["a"]);
        assert_eq!(items("a,"), ["a", ""]);
    }

    proptest! {
        /// No key list makes the split panic.
        #[test]
        fn any_key_list_splits(any in "\\PC{0,60}") {
            let _ = items(&any);
        }
    }
}
