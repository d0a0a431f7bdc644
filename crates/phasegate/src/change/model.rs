//! The schema a change is written against, read from the catalogs of the
//! database the set was applied to (or the live database): tables with
//! their columns (type, nullability, default, identity, generated),
//! primary keys, unique and check constraints, foreign keys both ways,
//! indexes, triggers, the views that use each column, enum types, and a
//! row estimate for sizing. phasegate's own tables are left out.

use std::collections::{BTreeMap, HashSet};

use postgres::GenericClient;

use crate::error::{db_err, Result};

/// phasegate's ledger tables: never the subject of a change.
const LEDGER: &[&str] = &["refinery_schema_history", "phasegate_applied", "phasegate_runs", "phasegate_batches", "phasegate_backups", "phasegate_kept"];

#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub tables: Vec<Table>,
    pub enums: Vec<EnumType>,
    /// The first schema of the search path: tables there are named without it.
    pub current_schema: String,
    /// `server_version_num`, e.g. 150004.
    pub server_version: i32,
    /// Words PostgreSQL reserves (anything but unreserved keywords): such
    /// identifiers are quoted, as `quote_ident` does.
    pub keywords: HashSet<String>,
}

/// A schema-qualified name as the catalogs hold it (unquoted).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QName {
    pub schema: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub oid: u32,
    pub name: QName,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    pub constraints: Vec<Constraint>,
    /// Foreign keys of other tables (or this one) that reference this table.
    pub referenced_by: Vec<Constraint>,
    pub indexes: Vec<Index>,
    pub triggers: Vec<Trigger>,
    /// `pg_class.reltuples` (an estimate; -1 when never analysed).
    pub rows_estimate: i64,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub num: i16,
    pub name: String,
    /// As `format_type` prints it: `text`, `numeric(12,2)`, `"ServiceType"`.
    pub type_sql: String,
    pub not_null: bool,
    /// The default expression (`pg_get_expr`), or a generated column's expression.
    pub default: Option<String>,
    /// `a` (ALWAYS) or `d` (BY DEFAULT) for identity columns.
    pub identity: Option<char>,
    pub generated: bool,
    /// The enum type, when the column is an enum.
    pub enum_type: Option<QName>,
    /// Views (and materialized views) that read the column.
    pub views: Vec<String>,
}

impl Column {
    /// Its default takes values from a sequence (serial, identity).
    pub fn sequence_backed(&self) -> bool {
        self.identity.is_some() || self.default.as_deref().is_some_and(|d| d.contains("nextval("))
    }
}

/// The kinds of constraint a change cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    PrimaryKey,
    Unique,
    ForeignKey,
    Check,
    Exclusion,
}

#[derive(Debug, Clone)]
pub struct Constraint {
    pub name: String,
    pub kind: ConstraintKind,
    /// The table it is defined on.
    pub table: QName,
    pub columns: Vec<String>,
    /// `pg_get_constraintdef`: `CHECK ((amount > 0))`, `FOREIGN KEY (a) REFERENCES b(id)`.
    pub definition: String,
    pub validated: bool,
    /// A foreign key's referenced table and columns.
    pub references: Option<(QName, Vec<String>)>,
}

#[derive(Debug, Clone)]
pub struct Index {
    pub name: String,
    pub unique: bool,
    pub primary: bool,
    pub valid: bool,
    /// The constraint it backs (primary key, unique, exclusion), if any.
    pub constraint: Option<String>,
    /// `pg_get_indexdef`.
    pub definition: String,
    /// Key columns that are plain columns (expressions are in `definition`).
    pub columns: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Trigger {
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct EnumType {
    pub name: QName,
    pub labels: Vec<String>,
}

impl Table {
    pub fn find_column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
    /// The single-column primary key, which batched backfills walk.
    pub fn single_key(&self) -> Option<&Column> {
        match self.primary_key.as_slice() {
            [k] => self.find_column(k),
            _ => None,
        }
    }
    /// Constraints of this table that involve `column`.
    pub fn constraints_on<'a>(&'a self, column: &'a str) -> impl Iterator<Item = &'a Constraint> {
        self.constraints.iter().filter(move |c| c.columns.iter().any(|x| x == column))
    }
    /// Indexes whose definition mentions `column` (as a key, in an
    /// expression or in the predicate), read with the SQL lexer.
    pub fn indexes_on<'a>(&'a self, column: &'a str) -> impl Iterator<Item = &'a Index> {
        self.indexes.iter().filter(move |i| i.columns.iter().any(|x| x == column) || crate::sqltext::tokens(&i.definition).iter().skip(4).any(|t| t.ident().as_deref() == Some(column)))
    }
}

impl Schema {
    pub fn enum_type(&self, name: &QName) -> Option<&EnumType> {
        self.enums.iter().find(|e| &e.name == name)
    }
    /// Columns of any table that use the type `name`.
    pub fn columns_of_type<'a>(&'a self, name: &'a QName) -> impl Iterator<Item = (&'a Table, &'a Column)> {
        self.tables.iter().flat_map(move |t| t.columns.iter().filter(move |c| c.enum_type.as_ref() == Some(name)).map(move |c| (t, c)))
    }
}

/// Reads the schema of the database `client` is connected to.
pub fn read(client: &mut impl GenericClient) -> Result<Schema> {
    let q = |e| db_err("reading the schema for the change")(e);
    let head = client
        .query_one("SELECT current_schema()::text, current_setting('server_version_num')::int", &[])
        .map_err(q)?;
    let current_schema: String = head.get(0);
    let server_version: i32 = head.get(1);
    let keywords = client
        .query("SELECT word FROM pg_get_keywords() WHERE catcode <> 'U'", &[])
        .map_err(q)?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let qn = |schema: String, name: String| QName { schema, name };
    let rows = client
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.reltuples::bigint
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'phasegate_backup')
               AND n.nspname NOT LIKE 'pg\\_%'
               AND NOT (c.relname = ANY ($1))
             ORDER BY n.nspname, c.relname",
            &[&LEDGER],
        )
        .map_err(q)?;
    let mut tables: Vec<Table> = rows
        .iter()
        .map(|r| Table {
            oid: r.get(0),
            name: qn(r.get(1), r.get(2)),
            columns: Vec::new(),
            primary_key: Vec::new(),
            constraints: Vec::new(),
            referenced_by: Vec::new(),
            indexes: Vec::new(),
            triggers: Vec::new(),
            rows_estimate: r.get(3),
        })
        .collect();
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let at: BTreeMap<u32, usize> = oids.iter().enumerate().map(|(i, o)| (*o, i)).collect();

    for r in client
        .query(
            "SELECT a.attrelid, a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text,
                    CASE WHEN t.typtype = 'e' THEN tn.nspname::text END, t.typname::text,
                    ARRAY(SELECT DISTINCT v.oid::regclass::text
                          FROM pg_depend dep JOIN pg_rewrite rw ON rw.oid = dep.objid JOIN pg_class v ON v.oid = rw.ev_class
                          WHERE dep.classid = 'pg_rewrite'::regclass AND dep.refclassid = 'pg_class'::regclass
                            AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum AND v.oid <> a.attrelid)
             FROM pg_attribute a
             JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = ANY ($1) AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attrelid, a.attnum",
            &[&oids],
        )
        .map_err(q)?
    {
        let identity: String = r.get(6);
        let generated: String = r.get(7);
        let enum_schema: Option<String> = r.get(8);
        let col = Column {
            num: r.get(1),
            name: r.get(2),
            type_sql: r.get(3),
            not_null: r.get(4),
            default: r.get(5),
            identity: identity.chars().next(),
            generated: !generated.is_empty(),
            enum_type: enum_schema.map(|s| qn(s, r.get(9))),
            views: r.get(10),
        };
        tables[at[&r.get::<_, u32>(0)]].columns.push(col);
    }

    let name_of = |tables: &[Table], oid: u32, num: i16| -> String {
        at.get(&oid).and_then(|i| tables[*i].columns.iter().find(|c| c.num == num)).map(|c| c.name.clone()).unwrap_or_default()
    };
    let constraints = client
        .query(
            "SELECT c.conrelid, c.conname::text, c.contype::text, c.convalidated, pg_get_constraintdef(c.oid),
                    c.conkey, c.confrelid, c.confkey, cn.nspname::text, cr.relname::text
             FROM pg_constraint c
             JOIN pg_class cr ON cr.oid = c.conrelid JOIN pg_namespace cn ON cn.oid = cr.relnamespace
             WHERE (c.conrelid = ANY ($1) OR c.confrelid = ANY ($1)) AND c.contype IN ('p', 'u', 'f', 'c', 'x')
             ORDER BY c.conname",
            &[&oids],
        )
        .map_err(q)?;
    for r in &constraints {
        let table_oid: u32 = r.get(0);
        let kind = match r.get::<_, String>(2).as_str() {
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "f" => ConstraintKind::ForeignKey,
            "x" => ConstraintKind::Exclusion,
            _ => ConstraintKind::Check,
        };
        let keys: Vec<i16> = r.get::<_, Option<Vec<i16>>>(5).unwrap_or_default();
        let ref_oid: u32 = r.get(6);
        let ref_keys: Vec<i16> = r.get::<_, Option<Vec<i16>>>(7).unwrap_or_default();
        let references = (kind == ConstraintKind::ForeignKey).then(|| {
            let target = at.get(&ref_oid).map(|i| tables[*i].name.clone()).unwrap_or_else(|| qn(String::new(), format!("oid {ref_oid}")));
            (target, ref_keys.iter().map(|k| name_of(&tables, ref_oid, *k)).collect())
        });
        let c = Constraint {
            name: r.get(1),
            kind,
            table: qn(r.get(8), r.get(9)),
            columns: keys.iter().map(|k| name_of(&tables, table_oid, *k)).collect(),
            definition: r.get(4),
            validated: r.get(3),
            references,
        };
        if kind == ConstraintKind::ForeignKey {
            if let Some(i) = at.get(&ref_oid) {
                tables[*i].referenced_by.push(c.clone());
            }
        }
        if let Some(i) = at.get(&table_oid) {
            if kind == ConstraintKind::PrimaryKey {
                tables[*i].primary_key = c.columns.clone();
            }
            tables[*i].constraints.push(c);
        }
    }

    for r in client
        .query(
            "SELECT i.indrelid, ic.relname::text, i.indisunique, i.indisprimary, i.indisvalid, pg_get_indexdef(i.indexrelid),
                    i.indkey::int2[], con.conname::text
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
             LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
             WHERE i.indrelid = ANY ($1)
             ORDER BY ic.relname",
            &[&oids],
        )
        .map_err(q)?
    {
        let table_oid: u32 = r.get(0);
        let keys: Vec<i16> = r.get(6);
        let idx = Index {
            name: r.get(1),
            unique: r.get(2),
            primary: r.get(3),
            valid: r.get(4),
            definition: r.get(5),
            columns: keys.iter().filter(|k| **k > 0).map(|k| name_of(&tables, table_oid, *k)).collect(),
            constraint: r.get(7),
        };
        tables[at[&table_oid]].indexes.push(idx);
    }

    for r in client
        .query(
            "SELECT tgrelid, tgname::text FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = ANY ($1) ORDER BY tgname",
            &[&oids],
        )
        .map_err(q)?
    {
        let t = Trigger { name: r.get(1) };
        tables[at[&r.get::<_, u32>(0)]].triggers.push(t);
    }

    let enums = client
        .query(
            "SELECT n.nspname::text, t.typname::text, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
             GROUP BY n.nspname, t.typname ORDER BY 1, 2",
            &[],
        )
        .map_err(q)?
        .iter()
        .map(|r| EnumType { name: qn(r.get(0), r.get(1)), labels: r.get(2) })
        .collect();

    Ok(Schema { tables, enums, current_schema, server_version, keywords })
}
