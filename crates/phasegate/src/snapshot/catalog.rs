//! The catalog side of a snapshot. The schema text is made of blocks, one
//! per top-level object (a *root*: a schema, an extension, a relation, a
//! function or a type). [`signatures_sql`] lists every root with a
//! signature of the catalog rows its block is rendered from: how many there
//! are and the sum of their `xmin`. Creating, changing or dropping anything
//! a block shows inserts, updates or deletes such a row, and a row written
//! later has a later transaction id than every row it replaces, so the
//! signature changes; a root whose signature is unchanged renders as before.
//! (Each step of a rehearsal runs in a (sub)transaction of its own, so two
//! observations are always separated by a new transaction id.) The render
//! statement (`render`) then renders the roots that changed.
//!
//! The signature statement is prepared once per connection (parameterless,
//! its plan is cached). The render and columns statements are prepared in
//! SQL (`PREPARE`), so they run in the same round trip as the session
//! settings they need, with a generic plan (`plan_cache_mode`): planning
//! the render statement costs more than running it for a few roots.

use postgres::{GenericClient, SimpleQueryRow, Statement};

use super::scope::{not_extension_member, NS_OK};

/// What kind of top-level object a root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Namespace,
    Extension,
    /// Tables, views, materialized views, foreign tables, sequences and
    /// standalone composite types (`pg_class`).
    Relation,
    /// Functions, procedures and aggregates (`pg_proc`).
    Function,
    /// Enum, range and base types and domains (`pg_type`).
    Type,
}

impl Kind {
    fn parse(code: &str) -> Option<Kind> {
        Some(match code {
            "n" => Kind::Namespace,
            "x" => Kind::Extension,
            "r" => Kind::Relation,
            "p" => Kind::Function,
            "t" => Kind::Type,
            _ => return None,
        })
    }
}

/// A top-level object: the catalog it lives in and its oid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Root {
    pub kind: Kind,
    pub oid: u32,
}

/// One row of the signature statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signature {
    pub root: Root,
    pub namespace: u32,
    /// How many catalog rows the root is rendered from, and the sum of their xmin.
    pub rows: i64,
    pub xmin_sum: i64,
    /// Relations only: relkind, the name as `quote_ident` writes it, the
    /// plain `schema.name`, and for a sequence the table owning it (both forms).
    pub relkind: Option<String>,
    pub key: Option<String>,
    pub raw: Option<String>,
    pub owner_key: Option<String>,
    pub owner_raw: Option<String>,
    /// Tables only: rows inserted, updated or deleted by the current
    /// transaction (all partitions of a partitioned table).
    pub dml: i64,
}

/// One row of the render statement: a line of a root's block (`None` for
/// a block with no detail lines).
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub root: Root,
    pub header: String,
    pub line: Option<String>,
}

/// Every root with its signature. Columns: kind, oid, namespace, rows,
/// xmin sum, relkind, key, raw, owner key, owner raw, dml. Objects made by
/// `initdb` have oids below 16384 (`FirstNormalObjectId`), so the catalogs
/// are read by index from there on (schemas, `public` among them, apart).
/// A comment on a composite type counts for its relation (whose block
/// shows it), not for a type root, which a composite type has not.
pub(crate) fn signatures_sql(only: bool) -> String {
    // With `only`, the roots whose oid is in $1 (the candidates of an
    // observation, see `touch`), read by index.
    let w = |col: &str| if only { format!(" AND {col} = ANY($1)") } else { String::new() };
    let (w_c, w_p, w_t, w_n) = (w("c.oid"), w("p.oid"), w("t.oid"), w("n.oid"));
    let (w_ext, w_att, w_def, w_con) = (w("oid"), w("attrelid"), w("adrelid"), w("CASE WHEN conrelid <> 0 THEN conrelid ELSE contypid END"));
    let (w_ind, w_iind, w_tg, w_pol) = (w("indrelid"), w("i.indrelid"), w("tgrelid"), w("polrelid"));
    let (w_rw, w_stx, w_seq, w_inh, w_ft) = (w("ev_class"), w("stxrelid"), w("seqrelid"), w("inhrelid"), w("ftrelid"));
    let (w_typrel, w_dep, w_agg, w_enum, w_rng) = (w("typrelid"), w("d.objid"), w("aggfnoid::oid"), w("enumtypid"), w("rngtypid"));
    let (w_dn, w_desc, w_xr) = (w("d.objoid"), w("coalesce(ct.typrelid, i.indrelid, d.objoid)"), w("oid"));
    let not_ext_rel = not_extension_member("pg_class", "c.oid");
    let not_ext_type = not_extension_member("pg_type", "t.oid");
    let not_ext_ns = not_extension_member("pg_namespace", "n.oid");
    let dml = "pg_stat_get_xact_tuples_inserted(x) + pg_stat_get_xact_tuples_updated(x) + pg_stat_get_xact_tuples_deleted(x)";
    format!(
        "WITH ns AS MATERIALIZED (SELECT n.oid FROM pg_namespace n WHERE {NS_OK}), \
         rels AS MATERIALIZED ( \
           SELECT c.oid, c.relnamespace AS nsp, c.xmin AS x, c.relkind::text AS relkind, \
                  quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS key, n.nspname || '.' || c.relname AS raw \
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
           WHERE c.oid >= 16384 AND c.relnamespace IN (SELECT oid FROM ns) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c') \
             AND {not_ext_rel}{w_c}), \
         procs AS MATERIALIZED ( \
           SELECT p.oid, p.pronamespace AS nsp, p.xmin AS x FROM pg_proc p \
           WHERE p.oid >= 16384 AND p.pronamespace IN (SELECT oid FROM ns){w_p} \
             AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid AND e.deptype IN ('e', 'i'))), \
         types AS MATERIALIZED ( \
           SELECT t.oid, t.typnamespace AS nsp, t.xmin AS x FROM pg_type t \
           WHERE t.oid >= 16384 AND t.typnamespace IN (SELECT oid FROM ns) AND t.typtype IN ('e', 'r', 'b', 'd') \
             AND NOT EXISTS (SELECT 1 FROM pg_type el WHERE el.typarray = t.oid) AND {not_ext_type}{w_t}), \
         parts(kind, oid, x) AS ( \
           SELECT 'n', n.oid, n.xmin FROM pg_namespace n WHERE n.oid IN (SELECT oid FROM ns){w_n} \
           UNION ALL SELECT 'n', d.objoid, d.xmin FROM pg_description d \
             WHERE d.classoid = 'pg_namespace'::regclass AND d.objoid IN (SELECT oid FROM ns){w_dn} \
           UNION ALL SELECT 'x', oid, xmin FROM pg_extension WHERE true{w_ext} \
           UNION ALL SELECT 'r', oid, x FROM rels \
           UNION ALL SELECT 'r', attrelid, xmin FROM pg_attribute WHERE attrelid >= 16384 AND attnum > 0{w_att} \
           UNION ALL SELECT 'r', adrelid, xmin FROM pg_attrdef WHERE adrelid >= 16384{w_def} \
           UNION ALL SELECT CASE WHEN conrelid <> 0 THEN 'r' ELSE 't' END, CASE WHEN conrelid <> 0 THEN conrelid ELSE contypid END, xmin \
             FROM pg_constraint WHERE oid >= 16384{w_con} \
           UNION ALL SELECT 'r', indrelid, xmin FROM pg_index WHERE indrelid >= 16384{w_ind} \
           UNION ALL SELECT 'r', i.indrelid, ic.xmin FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid >= 16384{w_iind} \
           UNION ALL SELECT 'r', tgrelid, xmin FROM pg_trigger WHERE tgrelid >= 16384{w_tg} \
           UNION ALL SELECT 'r', polrelid, xmin FROM pg_policy WHERE true{w_pol} \
           UNION ALL SELECT 'r', ev_class, xmin FROM pg_rewrite WHERE ev_class >= 16384{w_rw} \
           UNION ALL SELECT 'r', stxrelid, xmin FROM pg_statistic_ext WHERE true{w_stx} \
           UNION ALL SELECT 'r', seqrelid, xmin FROM pg_sequence WHERE seqrelid >= 16384{w_seq} \
           UNION ALL SELECT 'r', inhrelid, xmin FROM pg_inherits WHERE true{w_inh} \
           UNION ALL SELECT 'r', ftrelid, xmin FROM pg_foreign_table WHERE true{w_ft} \
           UNION ALL SELECT 'r', typrelid, xmin FROM pg_type WHERE oid >= 16384 AND typrelid <> 0{w_typrel} \
           UNION ALL SELECT 'r', d.objid, d.xmin FROM pg_depend d JOIN pg_sequence s ON s.seqrelid = d.objid \
             WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') \
               AND d.objsubid = 0 AND s.seqrelid >= 16384{w_dep} \
           UNION ALL SELECT 'p', oid, x FROM procs \
           UNION ALL SELECT 'p', aggfnoid::oid, xmin FROM pg_aggregate WHERE aggfnoid::oid >= 16384{w_agg} \
           UNION ALL SELECT 't', oid, x FROM types \
           UNION ALL SELECT 't', enumtypid, xmin FROM pg_enum WHERE true{w_enum} \
           UNION ALL SELECT 't', rngtypid, xmin FROM pg_range WHERE rngtypid >= 16384{w_rng} \
           UNION ALL SELECT CASE WHEN ct.typrelid IS NOT NULL THEN 'r' WHEN d.classoid = 'pg_proc'::regclass THEN 'p' \
                                 WHEN d.classoid = 'pg_type'::regclass THEN 't' ELSE 'r' END, \
                            coalesce(ct.typrelid, i.indrelid, d.objoid), d.xmin \
             FROM pg_description d LEFT JOIN pg_index i ON d.classoid = 'pg_class'::regclass AND i.indexrelid = d.objoid \
             LEFT JOIN pg_type ct ON d.classoid = 'pg_type'::regclass AND ct.oid = d.objoid AND ct.typrelid <> 0 \
             WHERE d.objoid >= 16384 AND d.classoid IN ('pg_proc'::regclass, 'pg_type'::regclass, 'pg_class'::regclass){w_desc}), \
         roots(kind, oid, nsp) AS ( \
           SELECT 'n', n.oid, n.oid FROM pg_namespace n WHERE n.oid IN (SELECT oid FROM ns) AND {not_ext_ns}{w_n} \
           UNION ALL SELECT 'x', oid, extnamespace FROM pg_extension WHERE true{w_xr} \
           UNION ALL SELECT 'r', oid, nsp FROM rels \
           UNION ALL SELECT 'p', oid, nsp FROM procs \
           UNION ALL SELECT 't', oid, nsp FROM types), \
         agg AS (SELECT kind, oid, count(*) AS n, sum(x::text::bigint) AS s FROM parts GROUP BY kind, oid) \
         SELECT r.kind, r.oid, r.nsp, coalesce(a.n, 0)::bigint, coalesce(a.s, 0)::bigint, \
                rl.relkind, rl.key, rl.raw, own.key, own.raw, \
                CASE WHEN rl.relkind = 'r' THEN (SELECT {dml} FROM (SELECT r.oid AS x) q) \
                     WHEN rl.relkind = 'p' THEN (SELECT coalesce(sum({dml}), 0) FROM (SELECT relid AS x FROM pg_partition_tree(r.oid)) q) \
                     ELSE 0 END::bigint \
         FROM roots r LEFT JOIN agg a ON a.kind = r.kind AND a.oid = r.oid \
         LEFT JOIN rels rl ON r.kind = 'r' AND rl.oid = r.oid \
         LEFT JOIN LATERAL ( \
           SELECT quote_ident(on_.nspname) || '.' || quote_ident(oc.relname) AS key, on_.nspname || '.' || oc.relname AS raw \
           FROM pg_depend dep JOIN pg_class oc ON oc.oid = dep.refobjid JOIN pg_namespace on_ ON on_.oid = oc.relnamespace \
           WHERE rl.relkind = 'S' AND dep.classid = 'pg_class'::regclass AND dep.objid = r.oid \
             AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i') LIMIT 1) own ON true"
    )
}

/// Reads the signature rows.
pub(crate) fn signatures(client: &mut impl GenericClient, stmt: &Statement) -> Result<Vec<Signature>, postgres::Error> {
    read_signatures(client.query(stmt, &[])?)
}

/// Reads the signature rows of the candidates `oids` (`signatures_sql(true)`).
pub(crate) fn signatures_of(client: &mut impl GenericClient, stmt: &Statement, oids: &[u32]) -> Result<Vec<Signature>, postgres::Error> {
    read_signatures(client.query(stmt, &[&oids])?)
}

fn read_signatures(rows: Vec<postgres::Row>) -> Result<Vec<Signature>, postgres::Error> {
    let mut out = Vec::new();
    for row in rows {
        let Some(kind) = Kind::parse(row.get(0)) else { continue };
        out.push(Signature {
            root: Root { kind, oid: row.get(1) },
            namespace: row.get(2),
            rows: row.get(3),
            xmin_sum: row.get(4),
            relkind: row.get(5),
            key: row.get(6),
            raw: row.get(7),
            owner_key: row.get(8),
            owner_raw: row.get(9),
            dml: row.get(10),
        });
    }
    Ok(out)
}

/// The SQL-level prepared statements an observation executes (named, so
/// they can share a round trip with the session settings they need).
pub(crate) fn prepare_statements() -> [String; 3] {
    [
        format!("PREPARE phasegate_render_all AS {}", super::render::render_sql(false)),
        format!("PREPARE phasegate_render_some(oid[], oid[], oid[], oid[], oid[]) AS {}", super::render::render_sql(true)),
        format!("PREPARE phasegate_columns(oid[]) AS {COLUMNS_SQL}"),
    ]
}

/// Whether this session has prepared them already.
pub(crate) const PREPARED_SQL: &str = "SELECT count(*) FROM pg_prepared_statements WHERE name = 'phasegate_render_all'";

fn oid_array(oids: &[u32]) -> String {
    format!("'{{{}}}'::oid[]", oids.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
}

/// The oids to render, by kind (the parameters of the render statement).
#[derive(Debug, Default, Clone)]
pub(crate) struct Selection {
    pub relations: Vec<u32>,
    pub functions: Vec<u32>,
    pub types: Vec<u32>,
    pub namespaces: Vec<u32>,
    pub extensions: Vec<u32>,
}

impl Selection {
    pub fn add(&mut self, root: Root) {
        match root.kind {
            Kind::Relation => self.relations.push(root.oid),
            Kind::Function => self.functions.push(root.oid),
            Kind::Type => self.types.push(root.oid),
            Kind::Namespace => self.namespaces.push(root.oid),
            Kind::Extension => self.extensions.push(root.oid),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.relations.is_empty() && self.functions.is_empty() && self.types.is_empty() && self.namespaces.is_empty() && self.extensions.is_empty()
    }
}

/// Executes the render statement: every root, or the selection.
pub(crate) fn execute_render(selection: Option<&Selection>) -> String {
    match selection {
        None => "EXECUTE phasegate_render_all".into(),
        Some(s) => format!(
            "EXECUTE phasegate_render_some({}, {}, {}, {}, {})",
            oid_array(&s.relations),
            oid_array(&s.functions),
            oid_array(&s.types),
            oid_array(&s.namespaces),
            oid_array(&s.extensions)
        ),
    }
}

/// Executes the columns statement for these tables.
pub(crate) fn execute_columns(tables: &[u32]) -> String {
    format!("EXECUTE phasegate_columns({})", oid_array(tables))
}

/// A row of the render statement: one line of a root's block.
pub(crate) fn part(row: &SimpleQueryRow) -> Option<Part> {
    let kind = Kind::parse(row.get(0)?)?;
    let oid = row.get(1)?.parse().ok()?;
    Some(Part { root: Root { kind, oid }, header: row.get(2)?.to_string(), line: row.get(3).map(str::to_string) })
}

/// A row of the columns statement: `(table oid, name, attnum)`.
pub(crate) fn column(row: &SimpleQueryRow) -> Option<(u32, String, i16)> {
    Some((row.get(0)?.parse().ok()?, row.get(1)?.to_string(), row.get(2)?.parse().ok()?))
}

/// The live columns of tables, in attnum order: `(table oid, name, attnum)`.
const COLUMNS_SQL: &str = "SELECT attrelid, attname::text, attnum FROM pg_attribute \
     WHERE attrelid = ANY($1) AND attnum > 0 AND NOT attisdropped ORDER BY attrelid, attnum";
