-- check: index_valid
-- severity: critical
-- description: api_keys_tenant_id_branch_id_idx exists, is valid (not left INVALID by a failed concurrent build) and has the intended definition
SELECT 'api_keys_tenant_id_branch_id_idx' AS index_name,
       i.indisvalid,
       pg_get_indexdef(i.indexrelid) AS definition
FROM (SELECT to_regclass('api_keys_tenant_id_branch_id_idx') AS idx) AS x
LEFT JOIN pg_index i ON i.indexrelid = x.idx
WHERE i.indexrelid IS NULL
   OR NOT i.indisvalid
   OR NOT i.indisready
   OR pg_get_indexdef(i.indexrelid) NOT LIKE '%ON %api_keys USING btree (tenant_id, branch_id) WHERE (revoked_at IS NULL)';

-- check: index_dropped
-- when: after-rollback
-- severity: critical
-- description: the index is gone
SELECT 'api_keys_tenant_id_branch_id_idx' AS still_exists
WHERE to_regclass('api_keys_tenant_id_branch_id_idx') IS NOT NULL;
