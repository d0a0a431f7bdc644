//! What `keep` keeps before an irreversible migration, as the ledger and
//! the recovery plan read it: the kept definitions (`Kept`), their sizes
//! and the kept entries of one migration.

use serde::{Deserialize, Serialize};

use super::destroys::Unkept;
use super::Backup;

/// The ledger of kept definitions.
pub const KEPT: &str = "phasegate_kept";
/// The column of a column backup holding the md5 of the rest of the row.
pub const ROW_MD5: &str = "phasegate_row_md5";

/// A dropped column's definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    /// `format_type` of the column.
    pub type_sql: String,
    pub not_null: bool,
    pub default: Option<String>,
    /// A collation other than the type's default, quoted.
    pub collation: Option<String>,
}

/// What was kept of one destroyed thing: what `recover` re-creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kept {
    /// Marks that the step was backed up (also when it destroys nothing).
    Step { statements: usize },
    /// Dropped columns of one table (or columns of a dropped type), their
    /// values by primary key in `backup_table` (none when the table has no
    /// primary key), with the md5 of the columns `hashed`.
    Columns { table: String, columns: Vec<ColumnDef>, key: Vec<String>, hashed: Vec<String>, backup_table: Option<String> },
    /// A dropped table: the statements that re-create it, its rows.
    Table { table: String, before: Vec<String>, create: String, after: Vec<String>, columns: Vec<String>, key: Vec<String>, backup_table: String },
    /// A truncated table's rows.
    Rows { table: String, columns: Vec<String>, key: Vec<String>, backup_table: String },
    Enum { name: String, labels: Vec<String> },
    /// A domain or composite type: the statement that re-creates it.
    Type { name: String, create: String },
    Function { signature: String, create: String },
    /// `replay`: a BEFORE INSERT row trigger, which `recover` runs on the
    /// rows written since, to fill the re-created columns.
    Trigger { table: String, trigger: String, create: String, replay: bool, enabled: String },
    /// A dropped constraint (explicitly, or with a dropped column).
    Constraint { table: String, constraint: String, definition: String, validated: bool },
    /// A dropped index (explicitly, or with a dropped column).
    Index { index: String, create: String },
    NotNull { table: String, column: String },
    Default { table: String, column: String, default: String },
    /// Something destroyed that is not kept.
    Unkept { line: usize, statement: String, why: Unkept },
}

impl Kept {
    pub fn kind(&self) -> &'static str {
        match self {
            Kept::Step { .. } => "step",
            Kept::Columns { .. } => "columns",
            Kept::Table { .. } => "table",
            Kept::Rows { .. } => "rows",
            Kept::Enum { .. } => "enum",
            Kept::Type { .. } => "type",
            Kept::Function { .. } => "function",
            Kept::Trigger { .. } => "trigger",
            Kept::Constraint { .. } => "constraint",
            Kept::Index { .. } => "index",
            Kept::NotNull { .. } => "not_null",
            Kept::Default { .. } => "default",
            Kept::Unkept { .. } => "unkept",
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Kept::Step { statements } => format!("{statements} statement(s) read"),
            Kept::Columns { table, columns, backup_table, .. } => {
                let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
                match backup_table {
                    Some(b) => format!("columns {} of {table} (values by key in {b})", names.join(", ")),
                    None => format!("columns {} of {table} (definitions only: the table has no primary key)", names.join(", ")),
                }
            }
            Kept::Table { table, backup_table, .. } => format!("table {table} (definition; rows in {backup_table})"),
            Kept::Rows { table, backup_table, .. } => format!("rows of {table} (in {backup_table})"),
            Kept::Enum { name, labels } => format!("enum {name} ({} labels: {})", labels.len(), labels.join(", ")),
            Kept::Type { name, .. } => format!("type {name}"),
            Kept::Function { signature, .. } => format!("function {signature}"),
            Kept::Trigger { table, trigger, .. } => format!("trigger {trigger} on {table}"),
            Kept::Constraint { table, constraint, .. } => format!("constraint {constraint} on {table}"),
            Kept::Index { index, .. } => format!("index {index}"),
            Kept::NotNull { table, column } => format!("NOT NULL of {table}.{column}"),
            Kept::Default { table, column, .. } => format!("default of {table}.{column}"),
            Kept::Unkept { line, statement, why } => format!("NOT KEPT (line {line}): {statement}: {}", why.as_str()),
        }
    }
}

/// How much keeping a migration's destroyed data takes, measured before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Size {
    pub rows: i64,
    pub bytes: i64,
}

impl std::ops::AddAssign for Size {
    fn add_assign(&mut self, o: Size) {
        self.rows += o.rows;
        self.bytes += o.bytes;
    }
}

/// What was kept before one migration.
#[derive(Debug, Clone, Serialize)]
pub struct KeptStep {
    pub version: i32,
    pub size: Size,
    pub kept: Vec<Kept>,
    /// The backup tables (also in `phasegate_backups`).
    pub backups: Vec<Backup>,
}

/// A kept entry as the ledger holds it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredKept {
    pub id: i64,
    pub version: i32,
    pub kept: Kept,
    pub recovered_at: Option<String>,
}
