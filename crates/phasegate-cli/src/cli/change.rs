//! The arguments of `change`: one subcommand per operation, each with the
//! flags every operation shares (the set, where the schema is learned,
//! `--dry-run`). Part of `cli`, split off to keep files short.

use clap::{Args as ClapArgs, Subcommand};

use super::{BackendArg, ServerArgs, SetArgs};

/// `change`: write a zero-downtime change into the set.
#[derive(Debug, Clone, ClapArgs)]
pub struct ChangeArgs {
    #[command(subcommand)]
    pub op: ChangeOp,
}

/// What every operation takes.
#[derive(Debug, Clone, ClapArgs)]
pub struct ChangeCommon {
    #[command(flatten)]
    pub set: SetArgs,
    /// Print the files the change would write (and the lines phases.toml would gain) and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Learn the schema and rows from this database instead of the set applied to a disposable one; it
    /// must have applied every migration of the set (only read, in transactions that are rolled back)
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Where the disposable PostgreSQL comes from (as for verify)
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Rows the seed generates in the disposable database (sets phasegate.seed_rows)
    #[arg(long)]
    pub seed_rows: Option<u64>,
    /// Rows per batch of the generated backfills and their rollbacks
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub batch: u64,
    /// Where the run log goes (default: <dir>/logs)
    #[arg(long, value_name = "PATH")]
    pub log_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ChangeOp {
    /// A new column; with --fill (or a volatile --default) a fill trigger, a batched backfill and a cleanup
    #[command(after_help = "Examples:
  phasegate change add-column accounts.nickname text
  phasegate change add-column accounts.status text --default \"'active'\" --not-null   catalog-only on PostgreSQL 11+
  phasegate change add-column accounts.email_lower text --fill 'lower(email)' --not-null")]
    AddColumn {
        /// TABLE.COLUMN (or SCHEMA.TABLE.COLUMN) to add
        column: String,
        /// Its type, e.g. text, numeric(12,2)
        #[arg(value_name = "TYPE")]
        type_sql: String,
        /// Its default (SQL), for the rows inserted from now on (and the existing rows when not volatile)
        #[arg(long, value_name = "EXPR")]
        default: Option<String>,
        /// Make it NOT NULL (needs --default or --fill)
        #[arg(long)]
        not_null: bool,
        /// SQL over the row's other columns giving existing rows (and writers that leave it out) a value
        #[arg(long, value_name = "EXPR")]
        fill: Option<String>,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// Rename a column: the new name beside the old, synced both ways, backfilled, switched, the old dropped
    #[command(after_help = "Example:\n  phasegate change rename-column accounts.full_name display_name")]
    RenameColumn {
        /// TABLE.COLUMN to rename
        column: String,
        /// Its new name
        new_name: String,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// Change a column's type through a new column, converted both ways by --up and --down
    #[command(after_help = "Example:\n  phasegate change change-type orders.amount 'numeric(12,2)' --up 'amount::numeric(12,2)' --down 'round(amount)::integer'\n\n\
--up converts the old value (the column by its name) into the new type; --down converts a value of the new type (again \
the column by its name) back, for the application version that still reads the old column. --up is tried on every row \
first: a row it fails on (or gives NULL for) is named and nothing is written.")]
    ChangeType {
        /// TABLE.COLUMN to change
        column: String,
        /// The new type
        #[arg(value_name = "TYPE")]
        type_sql: String,
        /// SQL converting the column's value to the new type, in terms of the column's name
        #[arg(long, value_name = "EXPR")]
        up: String,
        /// SQL converting a value of the new type back, in terms of the column's name
        #[arg(long, value_name = "EXPR")]
        down: String,
        /// The new column's name (default: the column's name and the type's, e.g. amount_numeric)
        #[arg(long = "as", value_name = "NAME")]
        new_name: Option<String>,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// Make a column NOT NULL through a validated CHECK; --fill gives NULL rows (and NULL writes) a value
    #[command(after_help = "Examples:\n  phasegate change set-not-null accounts.email --fill \"'unknown@example.com'\"\n  phasegate change set-not-null accounts.created_at   when no row is NULL")]
    SetNotNull {
        /// TABLE.COLUMN
        column: String,
        /// SQL over the row giving the NULL rows (and writes that leave it NULL, until the cleanup) a value
        #[arg(long, value_name = "EXPR")]
        fill: Option<String>,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// Let a column accept NULL (its rollback restores NOT NULL without a scan under an exclusive lock)
    #[command(after_help = "Example:\n  phasegate change drop-not-null accounts.phone")]
    DropNotNull {
        /// TABLE.COLUMN
        column: String,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// Set a column's default (catalog-only; applies to rows inserted from then on)
    #[command(after_help = "Example:\n  phasegate change set-default accounts.status \"'active'\"")]
    SetDefault {
        /// TABLE.COLUMN
        column: String,
        /// The default (SQL)
        #[arg(value_name = "EXPR")]
        default: String,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// Drop a column's default (catalog-only)
    #[command(after_help = "Example:\n  phasegate change drop-default accounts.status")]
    DropDefault {
        /// TABLE.COLUMN
        column: String,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// Drop a column in an irreversible cleanup (made nullable first when NOT NULL without a default)
    #[command(after_help = "Example:\n  phasegate change drop-column accounts.legacy_flags")]
    DropColumn {
        /// TABLE.COLUMN
        column: String,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// Move a column's values to a lookup table (id, code) and reference it instead
    #[command(after_help = "Example:\n  phasegate change split-to-lookup reservations.service services   the ServiceType enum -> services, serviceId")]
    SplitToLookup {
        /// TABLE.COLUMN whose values move
        column: String,
        /// The lookup table to create
        lookup: String,
        /// The reference column (default: <column>Id for camelCase tables, else <column>_id)
        #[arg(long, value_name = "NAME")]
        reference: Option<String>,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// A check constraint: added NOT VALID, then validated in a migration of its own
    #[command(after_help = "Example:\n  phasegate change add-check orders orders_amount_small 'amount < 100000'\n\nEvery row is tried first: a row the expression is false on is named and nothing is written.")]
    AddCheck {
        /// TABLE (or SCHEMA.TABLE)
        table: String,
        /// The constraint's name
        name: String,
        /// The condition (SQL over the row's columns)
        #[arg(value_name = "EXPR")]
        expr: String,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// A unique constraint: its index built CONCURRENTLY, then attached (ADD CONSTRAINT ... USING INDEX)
    #[command(after_help = "Examples:\n  phasegate change add-unique accounts.phone\n  phasegate change add-unique orders.account_id,note --name orders_account_note_key")]
    AddUnique {
        /// TABLE.COLUMN[,COLUMN...]
        columns: String,
        /// The constraint's name (default: <table>_<columns>_key)
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// A foreign key: added NOT VALID (the column indexed CONCURRENTLY when no index starts with it), then validated
    #[command(after_help = "Example:\n  phasegate change add-foreign-key orders.account_id accounts.id --on-delete cascade")]
    AddForeignKey {
        /// TABLE.COLUMN that references
        column: String,
        /// TABLE.COLUMN it references (a primary key or unique column)
        references: String,
        /// no action, restrict, cascade, set null or set default
        #[arg(long, value_name = "ACTION")]
        on_delete: Option<String>,
        /// The constraint's name (default: <table>_<column>_fkey)
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// An index built CONCURRENTLY, outside a transaction
    #[command(after_help = "Examples:\n  phasegate change create-index orders '(channel, kind)'\n  phasegate change create-index accounts 'lower(email)' --unique --where \"status = 'active'\"")]
    CreateIndex {
        /// TABLE (or SCHEMA.TABLE)
        table: String,
        /// The key list: columns or expressions, e.g. '(a, lower(b))'
        #[arg(value_name = "COLUMNS")]
        keys: String,
        /// A unique index (rows that would break it are named first)
        #[arg(long)]
        unique: bool,
        /// A partial index's predicate (SQL)
        #[arg(long = "where", value_name = "EXPR")]
        predicate: Option<String>,
        /// The index's name (default: <table>_<keys>_idx, or _key when unique)
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// Drop an index CONCURRENTLY; its rollback builds it again CONCURRENTLY
    #[command(after_help = "Example:\n  phasegate change drop-index accounts_full_name_idx")]
    DropIndex {
        /// INDEX (or SCHEMA.INDEX)
        index: String,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// A new table
    #[command(after_help = "Example:\n  phasegate change create-table coupons '(id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, code text NOT NULL UNIQUE, account_id bigint REFERENCES accounts (id))'")]
    CreateTable {
        /// TABLE (or SCHEMA.TABLE)
        table: String,
        /// The column list as CREATE TABLE takes it (columns, types, constraints)
        #[arg(value_name = "COLUMNS")]
        columns: String,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// Rename a table: a view under the old name during the window, dropped in a phase of its own
    #[command(after_help = "Example:\n  phasegate change rename-table orders purchases")]
    RenameTable {
        /// TABLE (or SCHEMA.TABLE)
        table: String,
        /// Its new name
        new_name: String,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// Drop a table in an irreversible cleanup (migrate keeps it and its rows for recover)
    #[command(after_help = "Example:\n  phasegate change drop-table legacy_sessions")]
    DropTable {
        /// TABLE (or SCHEMA.TABLE)
        table: String,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// Drop a check, unique constraint or foreign key, in steps its rollback can retrace without blocking writes
    #[command(after_help = "Example:\n  phasegate change drop-constraint accounts accounts_full_name_check")]
    DropConstraint {
        /// TABLE (or SCHEMA.TABLE)
        table: String,
        /// The constraint's name
        name: String,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// Rename a constraint (catalog-only)
    #[command(after_help = "Example:\n  phasegate change rename-constraint orders orders_amount_check orders_amount_not_negative")]
    RenameConstraint {
        /// TABLE (or SCHEMA.TABLE)
        table: String,
        /// The constraint's name
        name: String,
        /// Its new name
        new_name: String,
        #[command(flatten)]
        common: ChangeCommon,
    },
    /// A phase of its own for hand-written SQL: forward, rollback and validation files to fill in
    #[command(after_help = "Examples:\n  phasegate change raw backfill_invoice_totals\n  phasegate change raw purge_sessions --irreversible 'deletes expired sessions'")]
    Raw {
        /// snake_case name of the phase and its files
        name: String,
        /// Make the phase irreversible, for this reason (no rollback file)
        #[arg(long, value_name = "REASON")]
        irreversible: Option<String>,
        #[command(flatten)]
        common: ChangeCommon,
    },
}

impl ChangeOp {
    /// The flags every operation shares.
    pub fn common(&self) -> &ChangeCommon {
        match self {
            ChangeOp::AddColumn { common, .. }
            | ChangeOp::RenameColumn { common, .. }
            | ChangeOp::ChangeType { common, .. }
            | ChangeOp::SetNotNull { common, .. }
            | ChangeOp::DropNotNull { common, .. }
            | ChangeOp::SetDefault { common, .. }
            | ChangeOp::DropDefault { common, .. }
            | ChangeOp::DropColumn { common, .. }
            | ChangeOp::SplitToLookup { common, .. }
            | ChangeOp::AddCheck { common, .. }
            | ChangeOp::AddUnique { common, .. }
            | ChangeOp::AddForeignKey { common, .. }
            | ChangeOp::CreateIndex { common, .. }
            | ChangeOp::DropIndex { common, .. }
            | ChangeOp::CreateTable { common, .. }
            | ChangeOp::RenameTable { common, .. }
            | ChangeOp::DropTable { common, .. }
            | ChangeOp::DropConstraint { common, .. }
            | ChangeOp::RenameConstraint { common, .. }
            | ChangeOp::Raw { common, .. } => common,
        }
    }
}
