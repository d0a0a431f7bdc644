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

    /// No such index, constraint or other named object.
    #[error("no {what} `{name}` {place}{}", closest_hint(.closest))]
    UnknownObject { what: &'static str, name: String, place: String, closest: Option<String> },

    /// Rows that hold the same values where a unique index is to come.
    #[error("{table} rows {keys} hold the same {columns}: a unique index would refuse them; make them distinct first")]
    Duplicates { table: String, columns: String, keys: String },

    /// A row whose value a foreign key to come would refuse.
    #[error("{table} row {key} has {column} = {value}, which {target} does not hold: the foreign key would refuse it; fix or delete the row first")]
    Orphan { table: String, key: String, column: String, value: String, target: String },

    /// A name the change would create is taken.
    #[error("{what} `{name}` already exists{}", on_table(.table))]
    NameTaken { what: &'static str, name: String, table: Option<String> },

    /// The operation makes no sense on this column (e.g. `set-not-null` on a
    /// NOT NULL column).
    #[error("{what}: {why}")]
    Pointless { what: String, why: String },

    /// An expression fails on (or gives NULL for) a row of the table: the row's key.
    #[error("{input} `{expr}` {failure} on {table} row {key}{}", message_suffix(.message))]
    DataDoesNotFit { input: Input, expr: String, table: String, key: String, failure: &'static str, message: String },

    /// An expression or type PostgreSQL does not accept.
    #[error("{input} `{expr}`: {message}")]
    BadExpression { input: Input, expr: String, message: String },

    /// A NOT NULL column added without a value for the rows that exist.
    #[error("a NOT NULL {column} needs a default or a fill expression: the rows that exist need a value, and so do the inserts of the application version that does not know the column")]
    NeedsValue { column: String },

    /// NULL rows a NOT NULL cannot be set over without a fill expression.
    #[error("{rows} rows of {table} have {column} NULL: they need a fill expression (and so do the NULLs the application writes until the cleanup)")]
    NullRows { table: String, column: String, rows: i64 },

    /// What `change` cannot write (yet) for this schema, and why.
    #[error("{what}: {why}")]
    Unsupported { what: String, why: String },

    /// An argument that does not parse (`T.C`, a name).
    #[error("{0}")]
    BadArgument(String),

    /// The live database is behind the set: the schema read there is not the
    /// one the new phases would follow.
    #[error("the database has not applied migration {version} of the set ({pending} pending): the change would be written against an older schema; migrate it first, or learn the schema from the set instead")]
    Behind { version: i32, pending: usize },

    /// The live database's ledger disagrees with the set's forward files
    /// (a migration applied that the set does not have, or whose file
    /// changed): its schema is not the one the set describes.
    #[error("the database's ledger disagrees with the set: {first}{}: the change would be written against a schema the set does not describe; `status` shows where, or learn the schema from the set instead", if *more > 0 { format!(" (and {more} more)") } else { String::new() })]
    Drifted { first: String, more: usize },

    /// A file the change would write exists already.
    #[error("{0} already exists; nothing was written")]
    FileExists(String),
}

impl From<ChangeError> for crate::error::Error {
    fn from(e: ChangeError) -> Self {
        crate::error::Error::Change(Box::new(e))
    }
}

/// Which input of an operation an expression or type is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The type of a new or changed column.
    Type,
    Default,
    Fill,
    /// The conversion into the new type (`change-type`).
    Up,
    /// The conversion back (`change-type`).
    Down,
    /// A check constraint's expression (`add-check`).
    Check,
    /// An index's key list (`create-index`).
    Keys,
    /// A partial index's predicate (`create-index --where`).
    Predicate,
    /// A new table's column list (`create-table`).
    Columns,
    /// A foreign key's ON DELETE action.
    OnDelete,
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Input::Type => "type",
            Input::Default => "default",
            Input::Fill => "fill expression",
            Input::Up => "up expression",
            Input::Down => "down expression",
            Input::Check => "check expression",
            Input::Keys => "index keys",
            Input::Predicate => "where expression",
            Input::Columns => "column list",
            Input::OnDelete => "on-delete action",
        })
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
