//! The render statement of a snapshot: every root's block as rows, one per
//! line, with one query per catalog kind joined by `UNION ALL` (see the
//! module documentation of `snapshot` for the text it makes). It renders
//! every root, or the roots given as parameters ($1 relations, $2
//! functions, $3 types, $4 schemas, $5 extensions), those depending on
//! them through `pg_depend` (a view shows the name of the table it reads,
//! a column the name of its type) and those in the schemas given (a
//! renamed schema renames every header in it).

use super::scope::{not_extension_member, NS_OK};

/// The block header of the relation `c` in namespace `n`.
const REL_HEADER: &str = "(CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' \
     WHEN 'f' THEN 'foreign table ' WHEN 'S' THEN 'sequence ' WHEN 'c' THEN 'type ' ELSE 'table ' END \
     || quote_ident(n.nspname) || '.' || quote_ident(c.relname))";

/// A block's privileges line (`{label}: grantee PRIVILEGE, ...; ...`) when
/// `acl` grants other than what `acldefault(kind, owner)` does, else NULL:
/// a GRANT that a REVOKE undid leaves an explicit ACL equal to the default,
/// the same state. Grantees sorted; the owner is `owner` and the grantor
/// is left out, so the text does not depend on which role ran the files.
/// A session with `phasegate.snapshot_privileges = off` (schema drift
/// against another environment, whose roles differ) renders none.
fn privileges(label: &str, acl: &str, kind: char, owner: &str) -> String {
    let sorted = |a: &str| format!("ARRAY(SELECT x::text FROM unnest({a}) x ORDER BY 1)");
    format!(
        "CASE WHEN {acl} IS NOT NULL AND coalesce(current_setting('phasegate.snapshot_privileges', true), '') <> 'off' \
                   AND {} IS DISTINCT FROM {} THEN \
           (SELECT {label} || ': ' || coalesce(string_agg(g, '; ' ORDER BY g), 'none') FROM ( \
              SELECT CASE WHEN e.grantee = 0 THEN 'PUBLIC' WHEN e.grantee = {owner} THEN 'owner' \
                          ELSE quote_ident(pg_get_userbyid(e.grantee)) END || ' ' \
                     || string_agg(e.privilege_type || CASE WHEN e.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END, \
                                   ', ' ORDER BY e.privilege_type) AS g \
              FROM aclexplode({acl}) e GROUP BY e.grantee) s) END",
        sorted(acl),
        sorted(&format!("acldefault('{kind}', {owner})")),
    )
}

/// The filters of the render statement: everything, or the roots given as
/// parameters ($1 relations, $2 functions, $3 types, $4 schemas, $5
/// extensions), those depending on them and those in the schemas given.
struct Filters {
    rel: &'static str,
    rel_of_type: &'static str,
    proc: &'static str,
    type_: &'static str,
    ns: &'static str,
    ext: &'static str,
}

const ALL: Filters = Filters { rel: "true", rel_of_type: "true", proc: "true", type_: "true", ns: "true", ext: "true" };

const SOME: Filters = Filters {
    rel: "c.oid = ANY(ARRAY(SELECT oid FROM sel WHERE kind = 'r'))",
    rel_of_type: "t.typrelid = ANY(ARRAY(SELECT oid FROM sel WHERE kind = 'r'))",
    proc: "p.oid = ANY(ARRAY(SELECT oid FROM sel WHERE kind = 'p'))",
    type_: "t.oid = ANY(ARRAY(SELECT oid FROM sel WHERE kind = 't'))",
    ns: "n.oid = ANY($4)",
    ext: "(x.oid = ANY($5) OR x.extnamespace = ANY($4))",
};

/// The roots depending on the roots given (one level of `pg_depend`), as
/// `(kind, oid)`; dependents that are no root (a TOAST table, an array
/// type) come back too and are ignored by the caller.
const DEPENDENTS: &str = "dep AS ( \
     SELECT CASE WHEN d.classid = 'pg_proc'::regclass THEN 'p' \
                 WHEN d.classid = 'pg_type'::regclass THEN \
                   (SELECT CASE WHEN t.typrelid <> 0 THEN 'r' ELSE 't' END FROM pg_type t WHERE t.oid = d.objid) \
                 WHEN d.classid = 'pg_constraint'::regclass THEN \
                   (SELECT CASE WHEN k.conrelid <> 0 THEN 'r' ELSE 't' END FROM pg_constraint k WHERE k.oid = d.objid) \
                 ELSE 'r' END AS kind, \
            CASE d.classid \
              WHEN 'pg_class'::regclass THEN (SELECT coalesce(i.indrelid, c.oid) FROM pg_class c \
                                               LEFT JOIN pg_index i ON i.indexrelid = c.oid WHERE c.oid = d.objid) \
              WHEN 'pg_rewrite'::regclass THEN (SELECT ev_class FROM pg_rewrite WHERE oid = d.objid) \
              WHEN 'pg_constraint'::regclass THEN (SELECT CASE WHEN conrelid <> 0 THEN conrelid ELSE contypid END \
                                                    FROM pg_constraint WHERE oid = d.objid) \
              WHEN 'pg_attrdef'::regclass THEN (SELECT adrelid FROM pg_attrdef WHERE oid = d.objid) \
              WHEN 'pg_trigger'::regclass THEN (SELECT tgrelid FROM pg_trigger WHERE oid = d.objid) \
              WHEN 'pg_policy'::regclass THEN (SELECT polrelid FROM pg_policy WHERE oid = d.objid) \
              WHEN 'pg_statistic_ext'::regclass THEN (SELECT stxrelid FROM pg_statistic_ext WHERE oid = d.objid) \
              WHEN 'pg_proc'::regclass THEN d.objid \
              WHEN 'pg_type'::regclass THEN (SELECT CASE WHEN typrelid <> 0 THEN typrelid ELSE oid END FROM pg_type WHERE oid = d.objid) \
            END AS oid \
     FROM pg_depend d \
     WHERE (d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY($1)) \
        OR (d.refclassid = 'pg_proc'::regclass AND d.refobjid = ANY($2)) \
        OR (d.refclassid = 'pg_type'::regclass AND (d.refobjid = ANY($3) \
              OR d.refobjid IN (SELECT typarray FROM pg_type WHERE oid = ANY($3)) \
              OR d.refobjid IN (SELECT reltype FROM pg_class WHERE oid = ANY($1))))), \
   sel AS ( \
     SELECT 'r' AS kind, unnest($1::oid[]) AS oid UNION SELECT 'p', unnest($2::oid[]) UNION SELECT 't', unnest($3::oid[]) \
     UNION SELECT kind, oid FROM dep WHERE oid IS NOT NULL \
     UNION SELECT 'r', oid FROM pg_class WHERE relnamespace = ANY($4) \
     UNION SELECT 'p', oid FROM pg_proc WHERE pronamespace = ANY($4) \
     UNION SELECT 't', oid FROM pg_type WHERE typnamespace = ANY($4))";

/// The render statement: every root (`some` false) or the roots given and
/// their dependents (`some` true). One row per line of a block (a block
/// without detail lines gives one row with a NULL line). Columns: kind,
/// root oid, header, line.
pub(super) fn render_sql(some: bool) -> String {
    let f = if some { &SOME } else { &ALL };
    let parts = [
        q_schemas(f),
        q_extensions(f),
        q_relations(f),
        q_sequences(f),
        q_columns(f),
        q_constraints(f),
        q_indexes(f),
        q_triggers(f),
        q_policies(f),
        q_rules(f),
        q_statistics(f),
        q_functions(f),
        q_types(f),
    ];
    let body = parts.iter().enumerate().map(|(i, q)| format!("SELECT * FROM ({q}) q{i}")).collect::<Vec<_>>().join(" UNION ALL ");
    let lines = format!(
        "SELECT r.kind, r.oid, r.header, l FROM ({body}) r(kind, oid, header, lines) \
         CROSS JOIN LATERAL unnest(CASE WHEN cardinality(r.lines) = 0 THEN ARRAY[NULL::text] ELSE r.lines END) l"
    );
    if some {
        format!("WITH {DEPENDENTS} {lines}")
    } else {
        lines
    }
}

fn q_schemas(f: &Filters) -> String {
    format!(
        "SELECT 'n'::text, n.oid, 'schema ' || quote_ident(n.nspname), \
                array_remove(ARRAY[{}, 'comment: ' || d.description], NULL) \
         FROM pg_namespace n \
         LEFT JOIN pg_description d ON d.objoid = n.oid AND d.classoid = 'pg_namespace'::regclass AND d.objsubid = 0 \
         WHERE {NS_OK} AND {} AND {}",
        privileges("'privileges'", "n.nspacl", 'n', "n.nspowner"),
        not_extension_member("pg_namespace", "n.oid"),
        f.ns
    )
}

fn q_extensions(f: &Filters) -> String {
    format!(
        "SELECT 'x'::text, x.oid, 'extension ' || quote_ident(x.extname), \
                ARRAY['version ' || x.extversion || ', schema ' || quote_ident(n.nspname)] \
         FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace WHERE {}",
        f.ext
    )
}

/// Tables, views, materialized views, foreign tables.
fn q_relations(f: &Filters) -> String {
    format!(
        "SELECT 'r'::text, c.oid, {REL_HEADER}, array_remove(ARRAY[ \
           CASE c.relkind WHEN 'r' THEN 'kind: ordinary' \
                          WHEN 'p' THEN 'kind: partitioned, ' || pg_get_partkeydef(c.oid) END, \
           CASE WHEN c.relkind IN ('r', 'p', 'm', 'f') THEN 'persistence: ' || \
                CASE c.relpersistence WHEN 'p' THEN 'permanent' WHEN 'u' THEN 'unlogged' ELSE 'temporary' END END, \
           CASE WHEN c.relispartition THEN 'partition of ' || \
                (SELECT quote_ident(pn.nspname) || '.' || quote_ident(pc.relname) \
                   FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent \
                   JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid) \
                || ' ' || pg_get_expr(c.relpartbound, c.oid) END, \
           CASE WHEN NOT c.relispartition THEN \
                (SELECT 'inherits: ' || string_agg(quote_ident(pn.nspname) || '.' || quote_ident(pc.relname), ', ' ORDER BY i.inhseqno) \
                   FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent \
                   JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid) END, \
           CASE WHEN c.relrowsecurity THEN 'row level security: enabled' END, \
           CASE WHEN c.relforcerowsecurity THEN 'row level security: forced' END, \
           CASE WHEN c.reloptions IS NOT NULL THEN \
                (SELECT 'options: ' || string_agg(o, ', ' ORDER BY o) FROM unnest(c.reloptions) o) END, \
           CASE WHEN c.relkind IN ('r', 'p', 'm') AND c.relreplident <> 'd' THEN 'replica identity: ' || \
                CASE c.relreplident WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full' ELSE 'index' END END, \
           CASE WHEN am.amname IS NOT NULL AND am.amname <> 'heap' THEN 'access method: ' || am.amname END, \
           CASE WHEN c.reltablespace <> 0 THEN \
                (SELECT 'tablespace: ' || quote_ident(spcname) FROM pg_tablespace WHERE oid = c.reltablespace) END, \
           CASE WHEN c.relkind IN ('v', 'm') THEN 'definition:' || E'\\n' || pg_get_viewdef(c.oid, true) END, \
           CASE WHEN c.relkind = 'm' AND NOT c.relispopulated THEN 'not populated' END, \
           CASE WHEN c.relkind = 'f' THEN \
                (SELECT 'server: ' || quote_ident(s.srvname) || coalesce(' options ' || array_to_string(ft.ftoptions, ', '), '') \
                   FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver WHERE ft.ftrelid = c.oid) END, \
           {}, \
           'comment: ' || d.description], NULL) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_am am ON am.oid = c.relam \
         LEFT JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0 \
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {NS_OK} AND {}",
        privileges("'privileges'", "c.relacl", 'r', "c.relowner"),
        f.rel
    )
}

fn q_sequences(f: &Filters) -> String {
    format!(
        "SELECT 'r'::text, c.oid, {REL_HEADER}, array_remove(ARRAY[ \
           'type: ' || format_type(s.seqtypid, NULL), \
           'start ' || s.seqstart || ', increment ' || s.seqincrement || ', min ' || s.seqmin \
             || ', max ' || s.seqmax || ', cache ' || s.seqcache \
             || CASE WHEN s.seqcycle THEN ', cycle' ELSE ', no cycle' END, \
           CASE WHEN c.relpersistence = 'u' THEN 'persistence: unlogged' END, \
           CASE WHEN oc.oid IS NOT NULL THEN 'owned by ' || quote_ident(onn.nspname) || '.' || quote_ident(oc.relname) \
                || coalesce('.' || quote_ident(oa.attname), '') \
                || CASE WHEN dep.deptype = 'i' THEN ' (identity)' ELSE '' END END, \
           {}, \
           'comment: ' || d.description], NULL) \
         FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_depend dep ON dep.classid = 'pg_class'::regclass AND dep.objid = c.oid \
              AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i') \
         LEFT JOIN pg_class oc ON oc.oid = dep.refobjid \
         LEFT JOIN pg_namespace onn ON onn.oid = oc.relnamespace \
         LEFT JOIN pg_attribute oa ON oa.attrelid = dep.refobjid AND oa.attnum = dep.refobjsubid AND dep.refobjsubid > 0 \
         LEFT JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0 \
         WHERE {NS_OK} AND {}",
        privileges("'privileges'", "c.relacl", 's', "c.relowner"),
        f.rel
    )
}

/// Columns of relations and attributes of composite types: a definition
/// line and a position line each (and a comment line when there is one).
fn q_columns(f: &Filters) -> String {
    format!(
        "SELECT 'r'::text, a.attrelid, {REL_HEADER}, array_remove(ARRAY[ \
           w.word || ' ' || quote_ident(a.attname) || ': ' || format_type(a.atttypid, a.atttypmod) \
           || CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation \
                   THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END \
           || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END \
           || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(ad.adbin, ad.adrelid) || ') STORED' \
                   WHEN a.attgenerated = 'v' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(ad.adbin, ad.adrelid) || ') VIRTUAL' \
                   WHEN ad.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid) ELSE '' END \
           || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY' \
                                 WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END, \
           w.word || ' ' || quote_ident(a.attname) || ' position ' \
             || row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum), \
           w.word || ' ' || quote_ident(a.attname) || ' comment: ' || d.description, \
           {}], NULL) \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_type t ON t.oid = a.atttypid \
         CROSS JOIN LATERAL (SELECT CASE WHEN c.relkind = 'c' THEN 'attribute' ELSE 'column' END AS word) w \
         LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum \
         LEFT JOIN pg_description d ON d.objoid = a.attrelid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum \
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND a.attnum > 0 AND NOT a.attisdropped AND {NS_OK} AND {}",
        privileges("w.word || ' ' || quote_ident(a.attname) || ' privileges'", "a.attacl", 'c', "c.relowner"),
        f.rel
    )
}

/// Table and domain constraints.
fn q_constraints(f: &Filters) -> String {
    let line = "ARRAY['constraint ' || quote_ident(k.conname) || ': ' || pg_get_constraintdef(k.oid) \
                || CASE WHEN NOT k.convalidated AND pg_get_constraintdef(k.oid) !~ 'NOT VALID$' \
                        THEN ' NOT VALID' ELSE '' END]";
    format!(
        "SELECT 'r'::text, c.oid, {REL_HEADER}, {line} \
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {NS_OK} AND {} \
         UNION ALL \
         SELECT 't'::text, t.oid, 'domain ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname), {line} \
         FROM pg_constraint k JOIN pg_type t ON t.oid = k.contypid \
         JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {NS_OK} AND {}",
        f.rel, f.type_
    )
}

fn q_indexes(f: &Filters) -> String {
    format!(
        "SELECT 'r'::text, c.oid, {REL_HEADER}, array_remove(ARRAY[ \
           'index ' || quote_ident(ic.relname) || ': ' || pg_get_indexdef(i.indexrelid) \
             || CASE WHEN NOT i.indisvalid THEN ' INVALID' ELSE '' END \
             || CASE WHEN i.indisclustered THEN ' CLUSTER' ELSE '' END \
             || CASE WHEN i.indisreplident THEN ' REPLICA IDENTITY' ELSE '' END, \
           'index ' || quote_ident(ic.relname) || ' comment: ' || d.description], NULL) \
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
         JOIN pg_class c ON c.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_description d ON d.objoid = ic.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0 \
         WHERE {NS_OK} AND {}",
        f.rel
    )
}

fn q_triggers(f: &Filters) -> String {
    format!(
        "SELECT 'r'::text, c.oid, {REL_HEADER}, ARRAY['trigger ' || quote_ident(g.tgname) || ': ' || pg_get_triggerdef(g.oid) \
           || CASE g.tgenabled WHEN 'O' THEN ' (enabled)' WHEN 'D' THEN ' (disabled)' \
                               WHEN 'R' THEN ' (enabled replica)' WHEN 'A' THEN ' (enabled always)' END] \
         FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT g.tgisinternal AND {NS_OK} AND {}",
        f.rel
    )
}

fn q_policies(f: &Filters) -> String {
    format!(
        "SELECT 'r'::text, c.oid, {REL_HEADER}, ARRAY['policy ' || quote_ident(p.polname) || ': ' \
           || CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END \
           || ' FOR ' || CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' \
                                      WHEN 'd' THEN 'DELETE' ELSE 'ALL' END \
           || ' TO ' || (SELECT string_agg(r, ', ' ORDER BY r) FROM \
                (SELECT CASE WHEN ro = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(ro)) END AS r \
                   FROM unnest(p.polroles) ro) s) \
           || coalesce(' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', '') \
           || coalesce(' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', '')] \
         FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {NS_OK} AND {}",
        f.rel
    )
}

fn q_rules(f: &Filters) -> String {
    format!(
        "SELECT 'r'::text, c.oid, {REL_HEADER}, ARRAY['rule ' || quote_ident(r.rulename) || ': ' || pg_get_ruledef(r.oid) \
           || CASE r.ev_enabled WHEN 'O' THEN '' WHEN 'D' THEN ' (disabled)' \
                                WHEN 'R' THEN ' (enabled replica)' WHEN 'A' THEN ' (enabled always)' ELSE '' END] \
         FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE r.rulename <> '_RETURN' AND {NS_OK} AND {}",
        f.rel
    )
}

fn q_statistics(f: &Filters) -> String {
    format!(
        "SELECT 'r'::text, c.oid, {REL_HEADER}, ARRAY['statistics ' || quote_ident(sn.nspname) || '.' || quote_ident(x.stxname) \
           || ': ' || pg_get_statisticsobjdef(x.oid)] \
         FROM pg_statistic_ext x JOIN pg_class c ON c.oid = x.stxrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_namespace sn ON sn.oid = x.stxnamespace WHERE {NS_OK} AND {}",
        f.rel
    )
}

fn q_functions(f: &Filters) -> String {
    format!(
        "SELECT 'p'::text, p.oid, CASE p.prokind WHEN 'p' THEN 'procedure ' WHEN 'a' THEN 'aggregate ' ELSE 'function ' END \
           || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || oidvectortypes(p.proargtypes) || ')', \
           array_remove(ARRAY[ \
             CASE WHEN p.prokind = 'a' THEN \
               (SELECT 'aggregate: kind ' || g.aggkind::text || ', sfunc ' || g.aggtransfn::regproc::text \
                  || ', stype ' || format_type(g.aggtranstype, NULL) \
                  || CASE WHEN g.aggfinalfn <> 0 THEN ', finalfunc ' || g.aggfinalfn::regproc::text ELSE '' END \
                  || CASE WHEN g.aggcombinefn <> 0 THEN ', combinefunc ' || g.aggcombinefn::regproc::text ELSE '' END \
                  || coalesce(', initcond ' || quote_literal(g.agginitval), '') \
                  || ', arguments (' || pg_get_function_arguments(p.oid) || ')' \
                FROM pg_aggregate g WHERE g.aggfnoid = p.oid) \
             ELSE 'definition:' || E'\\n' || pg_get_functiondef(p.oid) END, \
             {}, \
             'comment: ' || d.description], NULL) \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         LEFT JOIN pg_description d ON d.objoid = p.oid AND d.classoid = 'pg_proc'::regclass AND d.objsubid = 0 \
         WHERE {NS_OK} AND {} AND {} \
           AND NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = 'pg_proc'::regclass \
                           AND i.objid = p.oid AND i.deptype = 'i')",
        privileges("'privileges'", "p.proacl", 'f', "p.proowner"),
        not_extension_member("pg_proc", "p.oid"),
        f.proc
    )
}

/// Enum, composite, range and base types and domains (not the row types of
/// tables, not automatic array and multirange types). A standalone
/// composite type belongs to the root of its `pg_class` row.
fn q_types(f: &Filters) -> String {
    format!(
        "SELECT CASE WHEN t.typrelid <> 0 THEN 'r' ELSE 't' END, CASE WHEN t.typrelid <> 0 THEN t.typrelid ELSE t.oid END, \
           CASE WHEN t.typtype = 'd' THEN 'domain ' ELSE 'type ' END \
           || quote_ident(n.nspname) || '.' || quote_ident(t.typname), \
           array_remove(ARRAY[ \
             CASE t.typtype WHEN 'e' THEN 'kind: enum' WHEN 'c' THEN 'kind: composite' \
                            WHEN 'r' THEN 'kind: range' WHEN 'b' THEN 'kind: base' END, \
             CASE WHEN t.typtype = 'e' THEN \
               (SELECT 'labels: ' || coalesce(string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder), '') \
                  FROM pg_enum e WHERE e.enumtypid = t.oid) END, \
             CASE WHEN t.typtype = 'd' THEN 'base type: ' || format_type(t.typbasetype, t.typtypmod) \
               || CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation \
                       THEN ' COLLATE ' || t.typcollation::regcollation::text ELSE '' END END, \
             CASE WHEN t.typtype = 'd' AND t.typnotnull THEN 'not null' END, \
             'default: ' || pg_get_expr(t.typdefaultbin, 0), \
             CASE WHEN t.typtype = 'r' THEN \
               (SELECT 'subtype: ' || format_type(r.rngsubtype, NULL) \
                  || CASE WHEN r.rngcollation <> 0 THEN ', collation ' || r.rngcollation::regcollation::text ELSE '' END \
                  || ', opclass ' || quote_ident(oc.opcname) \
                  || CASE WHEN r.rngcanonical <> 0 THEN ', canonical ' || r.rngcanonical::regproc::text ELSE '' END \
                  || CASE WHEN r.rngsubdiff <> 0 THEN ', subdiff ' || r.rngsubdiff::regproc::text ELSE '' END \
                FROM pg_range r JOIN pg_opclass oc ON oc.oid = r.rngsubopc WHERE r.rngtypid = t.oid) END, \
             CASE WHEN t.typtype = 'b' THEN 'input ' || t.typinput::regproc::text || ', output ' \
               || t.typoutput::regproc::text || ', length ' || t.typlen || ', alignment ' || t.typalign::text END, \
             {}, \
             'comment: ' || d.description], NULL) \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         LEFT JOIN pg_type bt ON bt.oid = t.typbasetype \
         LEFT JOIN pg_class rc ON rc.oid = t.typrelid \
         LEFT JOIN pg_description d ON d.objoid = t.oid AND d.classoid = 'pg_type'::regclass AND d.objsubid = 0 \
         WHERE t.typtype IN ('e', 'c', 'r', 'b', 'd') \
           AND (t.typrelid = 0 OR rc.relkind = 'c') \
           AND NOT EXISTS (SELECT 1 FROM pg_type el WHERE el.typarray = t.oid) \
           AND {NS_OK} AND {} AND (CASE WHEN t.typrelid <> 0 THEN {} ELSE {} END)",
        privileges("'privileges'", "t.typacl", 'T', "t.typowner"),
        not_extension_member("pg_type", "t.oid"),
        f.rel_of_type,
        f.type_
    )
}
