-- check: index_valid
-- severity: critical
-- description: appointments_branch_id_starts_at_idx exists, is valid (not left INVALID by a failed concurrent build) and has the intended definition
SELECT 'appointments_branch_id_starts_at_idx' AS index_name,
       i.indisvalid,
       pg_get_indexdef(i.indexrelid) AS definition
FROM (SELECT to_regclass('appointments_branch_id_starts_at_idx') AS idx) AS x
LEFT JOIN pg_index i ON i.indexrelid = x.idx
WHERE i.indexrelid IS NULL
   OR NOT i.indisvalid
   OR NOT i.indisready
   OR pg_get_indexdef(i.indexrelid) NOT LIKE '%ON %appointments USING btree (branch_id, starts_at)';

-- check: index_dropped
-- when: after-rollback
-- severity: critical
-- description: the index is gone
SELECT 'appointments_branch_id_starts_at_idx' AS still_exists
WHERE to_regclass('appointments_branch_id_starts_at_idx') IS NOT NULL;
