//! Writing SQL the way a person would: identifiers quoted only where
//! PostgreSQL needs it, literals, names of generated objects that fit in
//! 63 bytes and collide with nothing, a column renamed inside an
//! expression (read with the SQL lexer, so strings and casts are left
//! alone), comment blocks, and validation files.

use std::collections::HashSet;

use super::model::{QName, Schema, Table};
use crate::sqltext::{self, Token};

/// PostgreSQL's limit on identifiers (NAMEDATALEN - 1), in bytes.
const MAX_NAME: usize = 63;

impl Schema {
    /// `name` as SQL: bare when PostgreSQL would read it back unchanged
    /// (lower case, not reserved), else double-quoted.
    pub fn ident(&self, name: &str) -> String {
        let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
        if plain && !self.keywords.contains(name) {
            name.to_string()
        } else {
            format!("\"{}\"", name.replace('"', "\"\""))
        }
    }

    /// A table or type name as SQL: schema-qualified outside the current schema.
    pub fn qname(&self, q: &QName) -> String {
        if q.schema == self.current_schema || q.schema.is_empty() {
            self.ident(&q.name)
        } else {
            format!("{}.{}", self.ident(&q.schema), self.ident(&q.name))
        }
    }

    /// `'accounts'::regclass` for a table, as catalog queries take it.
    pub fn regclass(&self, t: &Table) -> String {
        format!("{}::regclass", lit(&self.qname(&t.name)))
    }

    /// `accounts.full_name` for messages and phase names.
    pub fn show(&self, t: &Table, column: &str) -> String {
        format!("{}.{}", self.qname(&t.name), column)
    }

    /// Every name a relation, constraint, trigger or function of a change
    /// must not take: relations and constraints share their names with
    /// indexes, and generated names must not collide with anything.
    pub fn taken_names(&self) -> HashSet<String> {
        let mut out = HashSet::new();
        for t in &self.tables {
            out.insert(t.name.name.clone());
            out.extend(t.constraints.iter().map(|c| c.name.clone()));
            out.extend(t.indexes.iter().map(|i| i.name.clone()));
            out.extend(t.triggers.iter().map(|i| i.name.clone()));
        }
        out.extend(self.enums.iter().map(|e| e.name.name.clone()));
        out
    }
}

/// A string literal.
pub fn lit(s: &str) -> String {
    crate::pg::quote_literal(s)
}

/// A name for a generated object: `parts` joined with `_` as a [`slug`]
/// (lower case, so it needs no quotes), cut to 63 bytes (with a short hash
/// of the whole when cut), then `_2`, `_3`, ... until no name in `taken`
/// has it; the result is added to `taken`.
pub fn fresh_name(parts: &[&str], taken: &mut HashSet<String>) -> String {
    let whole = slug(&parts.join("_"));
    let base = fit(&whole, 0);
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        let suffix = format!("_{n}");
        name = format!("{}{suffix}", fit(&whole, suffix.len()));
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// `name` cut to fit 63 bytes with `reserve` bytes to spare.
fn fit(name: &str, reserve: usize) -> String {
    if name.len() + reserve <= MAX_NAME {
        return name.to_string();
    }
    let hash = &crate::set::sha256_hex(name)[..8];
    let mut keep = MAX_NAME - reserve - hash.len() - 1;
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}_{hash}", &name[..keep])
}

/// A name as a file-name fragment: `preferredTime` -> `preferred_time`,
/// anything but ASCII letters and digits -> `_`.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' });
    }
    let parts: Vec<&str> = out.split('_').filter(|p| !p.is_empty()).collect();
    parts.join("_")
}

/// `expr` with every reference to column `from` replaced by `to` (SQL
/// text); see [`map_columns`].
pub fn replace_column(expr: &str, from: &str, to: &str) -> String {
    map_columns(expr, |name| (name == from).then(|| to.to_string()))
}

/// `expr` with each column reference `f` maps replaced by what it gives:
/// identifier tokens not qualified by another name (`x.col`), not a
/// function name (`col(`), not a type after `::`. Strings, comments and
/// quoted names are read as the lexer reads them, in one pass, so a
/// replacement is never replaced again.
pub fn map_columns(expr: &str, f: impl Fn(&str) -> Option<String>) -> String {
    let lx = sqltext::lex(expr);
    let mut out = String::with_capacity(expr.len());
    let mut last = 0;
    for (i, l) in lx.iter().enumerate() {
        let Some(name) = l.token.ident() else { continue };
        let prev = i.checked_sub(1).map(|p| &lx[p].token);
        let qualified = prev == Some(&Token::Punct('.'));
        let cast = i >= 2 && prev == Some(&Token::Punct(':')) && lx[i - 2].token == Token::Punct(':');
        let call = lx.get(i + 1).is_some_and(|n| n.token == Token::Punct('('));
        if qualified || cast || call {
            continue;
        }
        let Some(to) = f(&name) else { continue };
        out.push_str(&expr[last..l.start]);
        out.push_str(&to);
        last = l.end;
    }
    out.push_str(&expr[last..]);
    out
}

/// The text wrapped into `-- ` comment lines of at most 78 characters.
pub fn comment(text: &str) -> String {
    let mut out = String::new();
    for para in text.split('\n') {
        let mut line = String::from("--");
        for word in para.split_whitespace() {
            if line.len() + 1 + word.len() > 78 && line.len() > 2 {
                out.push_str(&line);
                out.push('\n');
                line = String::from("--");
            }
            line.push(' ');
            line.push_str(word);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// When a check runs (docs/checks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    AfterMigrate,
    BeforeMigrate,
    BeforeRollback,
    AfterRollback,
}

/// What a check does when its query returns rows or a value.
#[derive(Debug, Clone)]
enum Kind {
    /// An assertion: rows are ROLLBACK (critical) or REVIEW (warning).
    Rows { critical: bool },
    /// A metric with its thresholds.
    Metric { unit: String, proceed: String, review: Option<String> },
}

/// One check of a validation file (docs/checks.md).
#[derive(Debug, Clone)]
pub struct Check {
    name: String,
    when: Moment,
    kind: Kind,
    description: String,
    query: String,
    /// Written `-- holds: until-next-migration`: the state right after its
    /// own migration, which the next migration of the phase moves past.
    until_next: bool,
}

impl Check {
    /// A critical assertion: the query returns the offending rows.
    pub fn rows(name: &str, description: &str, query: &str) -> Check {
        Check { name: name.into(), when: Moment::AfterMigrate, kind: Kind::Rows { critical: true }, description: description.into(), query: query.into(), until_next: false }
    }
    /// A metric: PROCEED when the value satisfies `proceed`, else REVIEW
    /// when `review`, else ROLLBACK.
    pub fn metric(name: &str, unit: &str, thresholds: (&str, Option<&str>), description: &str, query: &str) -> Check {
        let kind = Kind::Metric { unit: unit.into(), proceed: thresholds.0.into(), review: thresholds.1.map(str::to_string) };
        Check { name: name.into(), when: Moment::AfterMigrate, kind, description: description.into(), query: query.into(), until_next: false }
    }
    /// At another moment than after the migration.
    pub fn at(mut self, when: Moment) -> Check {
        self.when = when;
        self
    }
    /// Holds right after its own migration only (an after-migrate check
    /// the next migration of its phase moves past on purpose).
    pub fn until_next_migration(mut self) -> Check {
        self.until_next = true;
        self
    }
}

/// A validation file, check by check.
#[derive(Debug, Default)]
pub struct Checks {
    text: String,
}

impl Checks {
    pub fn push(&mut self, c: Check) -> &mut Self {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(&format!("-- check: {}\n", c.name));
        match c.when {
            Moment::AfterMigrate => {}
            Moment::BeforeMigrate => self.text.push_str("-- when: before-migrate\n"),
            Moment::BeforeRollback => self.text.push_str("-- when: before-rollback\n"),
            Moment::AfterRollback => self.text.push_str("-- when: after-rollback\n"),
        }
        if c.until_next {
            self.text.push_str("-- holds: until-next-migration\n");
        }
        match &c.kind {
            Kind::Rows { critical: true } => self.text.push_str("-- severity: critical\n"),
            Kind::Rows { critical: false } => self.text.push_str("-- severity: warning\n"),
            Kind::Metric { unit, proceed, review } => {
                self.text.push_str(&format!("-- metric: {unit}\n-- proceed: {proceed}\n"));
                if let Some(r) = review {
                    self.text.push_str(&format!("-- review: {r}\n"));
                }
            }
        }
        self.text.push_str(&format!("-- description: {}\n{};\n", c.description.replace('\n', " "), c.query.trim_end().trim_end_matches(';')));
        self
    }

    /// A critical assertion at `when` (see [`Check::rows`]).
    pub fn assert(&mut self, name: &str, when: Moment, description: &str, query: &str) -> &mut Self {
        self.push(Check::rows(name, description, query).at(when))
    }

    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_only_where_needed() {
        let s = Schema { keywords: ["user".to_string(), "order".to_string()].into(), current_schema: "public".into(), ..Default::default() };
        assert_eq!(s.ident("full_name"), "full_name");
        assert_eq!(s.ident("preferredTime"), "\"preferredTime\"");
        assert_eq!(s.ident("user"), "\"user\"");
        assert_eq!(s.ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(s.qname(&QName { schema: "public".into(), name: "t".into() }), "t");
        assert_eq!(s.qname(&QName { schema: "Billing".into(), name: "t".into() }), "\"Billing\".t");
    }

    #[test]
    fn a_column_is_renamed_only_where_it_is_the_column() {
        assert_eq!(replace_column("amount::numeric(12,2)", "amount", "NEW.amount"), "NEW.amount::numeric(12,2)");
        assert_eq!(replace_column("lower(text) || 'text' || x.text || t::text", "text", "v"), "lower(v) || 'text' || x.text || t::text");
        assert_eq!(replace_column("\"preferredTime\" <> ''", "preferredTime", "t.\"preferredTime\""), "t.\"preferredTime\" <> ''");
        assert_eq!(replace_column("amount(amount)", "amount", "a"), "amount(a)");
    }

    #[test]
    fn generated_names_fit_and_do_not_collide() {
        let mut taken: HashSet<String> = ["accounts_full_name_sync".to_string()].into();
        assert_eq!(fresh_name(&["accounts", "full_name", "sync"], &mut taken), "accounts_full_name_sync_2");
        let long = "x".repeat(80);
        let a = fresh_name(&[&long, "sync"], &mut taken);
        let b = fresh_name(&[&long, "sync"], &mut taken);
        assert!(a.len() <= 63 && b.len() <= 63 && a != b, "{a} {b}");
        assert_eq!(slug("reservations.preferredTime"), "reservations_preferred_time");
        assert_eq!(slug("Hello World-2"), "hello_world_2");
    }

    #[test]
    fn comments_wrap_and_checks_render_in_the_check_language() {
        let c = comment(&"word ".repeat(30));
        assert!(c.lines().all(|l| l.starts_with("-- ") && l.len() <= 78), "{c}");
        let mut v = Checks::default();
        v.push(Check::metric("unmigrated_percent", "percent", ("= 0", Some("<= 1")), "share", "SELECT 1.0;"));
        v.assert("gone", Moment::AfterRollback, "gone", "SELECT 1 WHERE false");
        let text = v.finish();
        let checks = crate::check::parse_file(std::path::Path::new("v.sql"), &text).unwrap();
        assert_eq!(checks.len(), 2, "{text}");
    }
}
