//! What a snapshot covers: the filters both the catalog reader
//! (`catalog.rs`) and the DDL renderer (`render.rs`) put in their queries.

/// Namespaces covered, for a `pg_namespace` aliased `n`.
pub(crate) const NS_OK: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'phasegate_backup', 'phasegate_touch') \
     AND n.nspname !~ '^pg_(toast_)?temp_'";

/// `NOT EXISTS` condition: object `oid_expr` of catalog `catalog` is not an
/// extension member.
pub(crate) fn not_extension_member(catalog: &str, oid_expr: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass \
         AND e.objid = {oid_expr} AND e.deptype = 'e')"
    )
}
