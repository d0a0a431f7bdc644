//! Why `change` refused an operation: each a one-line message naming what
//! is wrong and, for a misspelt name, the closest existing one. A refused
//! change writes nothing.

/// A refused `change`. Messages are lowercase with no trailing period.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No such table in the schema the change was written against.
    #[error("no table `{table}` in {within}{}", closest_hint(.closest))]
    UnknownTable { table: String, within: String, closest: Option<String> },

    /// No such column on the table.
    #[error("table `{table}` has no column `{column}`{}", closest_hint(.closest))]
    UnknownColumn { table: String, column: String, closest: Option<String> },

    /// A name the change would create is taken.
    #[error("{what} `{name}` already exists{}", on_table(.table))]
    NameTaken { what: &'static str, name: String, table: Option<String> },

    /// The operation makes no sense on this column (e.g. `set-not-null` on a
    /// NOT NULL column).
    #[error("{what}: {why}")]
    Pointless { what: String, why: String },

    /// An expression fails on (or gives NULL for) a row of the table: the row's key.
    #[error("{flag} `{expr}` {failure} on {table} row {key}{}", message_suffix(.message))]
    DataDoesNotFit { flag: &'static str, expr: String, table: String, key: String, failure: &'static str, message: String },

    /// An expression or type PostgreSQL does not accept.
    #[error("{flag} `{expr}`: {message}")]
    BadExpression { flag: &'static str, expr: String, message: String },

    /// What `change` cannot write (yet) for this schema, and why.
    #[error("{what}: {why}")]
    Unsupported { what: String, why: String },

    /// An argument that does not parse (`T.C`, a name).
    #[error("{0}")]
    BadArgument(String),

    /// The live database is behind the set: the schema read there is not the
    /// one the new phases would follow.
    #[error("the database has not applied migration {version} of the set ({pending} pending): the change would be written against an older schema; migrate first, or leave out the database to learn the schema from the set")]
    Behind { version: i32, pending: usize },

    /// A file the change would write exists already.
    #[error("{0} already exists; nothing was written")]
    FileExists(String),
}

impl From<ChangeError> for crate::error::Error {
    fn from(e: ChangeError) -> Self {
        crate::error::Error::Change(Box::new(e))
    }
}

fn closest_hint(closest: &Option<String>) -> String {
    closest.as_ref().map(|c| format!("; did you mean `{c}`?")).unwrap_or_default()
}

fn on_table(table: &Option<String>) -> String {
    table.as_ref().map(|t| format!(" on {t}")).unwrap_or_default()
}

fn message_suffix(m: &str) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!(": {m}")
    }
}

/// The candidate closest to `wanted` (same name in another case first, then
/// by Jaro-Winkler similarity), when one is close enough to be a likely typo.
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = wanted.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = if c.to_lowercase() == lower { 2.0 } else { strsim::jaro_winkler(&lower, &c.to_lowercase()) };
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.filter(|(s, _)| *s >= 0.75).map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_name_is_a_likely_typo_or_nothing() {
        let cols = ["id", "full_name", "email", "preferredTime"];
        assert_eq!(closest("full_nam", cols).as_deref(), Some("full_name"));
        assert_eq!(closest("preferredtime", cols).as_deref(), Some("preferredTime"));
        assert_eq!(closest("emial", cols).as_deref(), Some("email"));
        assert_eq!(closest("zzz", cols), None);
        let e = ChangeError::UnknownColumn { table: "accounts".into(), column: "full_nam".into(), closest: closest("full_nam", cols) };
        assert_eq!(e.to_string(), "table `accounts` has no column `full_nam`; did you mean `full_name`?");
    }
}
