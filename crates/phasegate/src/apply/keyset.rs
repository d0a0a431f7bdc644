//! A batched file's placeholders and the key its walk hands from one batch
//! to the next (docs/directives.md).
//!
//! `:batch_size` becomes the batch's size, a number the engine writes.
//! `:last_key` becomes the bind parameter `$1`, declared with the key's own
//! type (the type of the statement's first `RETURNING` column, read from
//! its description before the walk: nothing runs) and sent as the text the
//! server printed for the largest key of the batch before, which the
//! server reads back with that type's input function. So a key of any type
//! (integer, text, numeric-looking text such as `'00010'`, uuid, numeric,
//! timestamps, named composite types) reaches the server as a value of its
//! type, never spliced into the SQL, whatever `standard_conforming_strings`
//! says. Placeholders are found with the SQL lexer (one inside a string or
//! a comment is text) and replaced by text of the same width, so the
//! positions of PostgreSQL's errors still point into the file.

use bytes::BytesMut;
use postgres::types::{to_sql_checked, Format, IsNull, ToSql, Type};
use postgres::GenericClient;

use crate::sqltext::{lex, Token};

/// Where a walk's query wraps the file's statement: the batch's rows are
/// counted and its largest key is read by the key type's own order (there
/// is no `max(uuid)`, and text would put 9 after 10).
pub(crate) const KEYSET_PREFIX: &str = "WITH phasegate_batch AS (";
const KEYSET_SUFFIX: &str = ") SELECT (SELECT count(*) FROM phasegate_batch)::bigint, \
     (SELECT t.k::text FROM phasegate_batch AS t(k) ORDER BY t.k DESC LIMIT 1)";

/// The byte ranges of a text's `:last_key` and `:batch_size` placeholders.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Placeholders {
    last_key: Vec<std::ops::Range<usize>>,
    batch_size: Vec<std::ops::Range<usize>>,
}

impl Placeholders {
    /// `:name` where the colon and the word touch, and the colon is not the
    /// second of a `::` cast.
    pub(crate) fn find(sql: &str) -> Placeholders {
        let lx = lex(sql);
        let mut p = Placeholders::default();
        for i in 0..lx.len().saturating_sub(1) {
            let (colon, word) = (&lx[i], &lx[i + 1]);
            let cast = i > 0 && lx[i - 1].token == Token::Punct(':') && lx[i - 1].end == colon.start;
            if colon.token != Token::Punct(':') || colon.end != word.start || cast {
                continue;
            }
            if word.token.is_word("last_key") {
                p.last_key.push(colon.start..word.end);
            } else if word.token.is_word("batch_size") {
                p.batch_size.push(colon.start..word.end);
            }
        }
        p
    }

    /// The file walks its key (it uses `:last_key`).
    pub(crate) fn keyset(&self) -> bool {
        !self.last_key.is_empty()
    }
}

/// `sql` with `:batch_size` as `batch` and `:last_key` as `key` (`$1`, or
/// `NULL` to describe the statement), each padded with spaces to the width
/// of the placeholder it replaces.
pub(crate) fn substitute(sql: &str, batch: u64, key: &str) -> String {
    let p = Placeholders::find(sql);
    let batch = batch.to_string();
    let mut edits: Vec<(std::ops::Range<usize>, &str)> = p.last_key.into_iter().map(|r| (r, key)).chain(p.batch_size.into_iter().map(|r| (r, batch.as_str()))).collect();
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for (r, with) in edits {
        out.push_str(&sql[at..r.start]);
        out.push_str(&format!("{with:<width$}", width = r.len()));
        at = r.end;
    }
    out.push_str(&sql[at..]);
    out
}

/// One batch of a keyset walk: the statement wrapped to return the rows it
/// changed and the largest key among them (as text), `$1` its last key.
pub(crate) fn keyset_sql(template: &str, batch: u64) -> String {
    format!("{KEYSET_PREFIX}{}{KEYSET_SUFFIX}", substitute(template, batch, "$1"))
}

/// The key's type: the first `RETURNING` column's, from the description
/// of the wrapped statement with `:last_key` as NULL (prepared, not run).
/// `Ok(Err(type name))` for a type whose values cannot be read back from
/// text (an anonymous record).
pub(crate) fn key_type(client: &mut impl GenericClient, template: &str, batch: u64) -> Result<Result<Type, String>, postgres::Error> {
    let sql = format!("{KEYSET_PREFIX}{}) SELECT t.k FROM phasegate_batch AS t(k)", substitute(template, batch, "NULL"));
    let stmt = client.prepare(&sql)?;
    let ty = stmt.columns()[0].type_().clone();
    if ty == Type::RECORD || ty == Type::RECORD_ARRAY {
        return Ok(Err(ty.name().to_string()));
    }
    Ok(Ok(ty))
}

/// A batch key as the text the server printed for it, sent in text format
/// for a parameter declared with the key's type: the server reads it with
/// that type's input function. `None` is SQL NULL (before the first batch).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyText<'a>(pub Option<&'a str>);

impl ToSql for KeyText<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            None => Ok(IsNull::Yes),
            Some(k) => {
                out.extend_from_slice(k.as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_in_place_and_only_outside_strings_and_comments() {
        let t = "UPDATE t SET x = ':last_key' WHERE id IN (SELECT id FROM t WHERE (:last_key IS NULL OR code > :last_key::text) -- :last_key\n LIMIT :batch_size) RETURNING code";
        let s = substitute(t, 500, "$1");
        assert_eq!(s.len(), t.len(), "same width: error positions still point into the file");
        assert_eq!(s, t.replacen("(:last_key IS", "($1        IS", 1).replacen("> :last_key::", "> $1       ::", 1).replace("LIMIT :batch_size", "LIMIT 500        "));
        assert!(s.contains("x = ':last_key'") && s.contains("-- :last_key"), "{s}");
        assert!(!Placeholders::find("SELECT x::last_key, ':last_key', $$ :last_key $$").keyset());
        assert!(Placeholders::find("WHERE id > :last_key").keyset());
        assert_eq!(substitute("LIMIT :batch_size", 123_456_789_012_345, "$1"), "LIMIT 123456789012345");
    }

    #[test]
    fn a_walk_is_wrapped_to_read_its_largest_key() {
        let q = keyset_sql("UPDATE t SET x = 1 WHERE id > :last_key RETURNING id", 10);
        assert!(q.starts_with("WITH phasegate_batch AS (UPDATE t SET x = 1 WHERE id > $1        RETURNING id) SELECT"), "{q}");
    }
}
