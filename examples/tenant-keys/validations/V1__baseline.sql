-- check: baseline_tables_exist
-- severity: critical
-- description: the five tables of the multi-tenant API exist
SELECT t AS missing_table
FROM unnest(ARRAY['tenants', 'branches', 'api_keys', 'leads', 'appointments']) AS t
WHERE to_regclass(t) IS NULL;

-- check: keys_are_tenant_wide
-- severity: critical
-- description: before this set, api_keys has no branch scope of its own
SELECT attname AS unexpected_column
FROM pg_attribute
WHERE attrelid = 'api_keys'::regclass AND attname IN ('branch_id', 'scope') AND NOT attisdropped;
