-- check: scope_columns_exist
-- severity: critical
-- description: api_keys.branch_id (uuid, nullable) and scope (text NOT NULL DEFAULT 'tenant') exist
SELECT c.column_name, c.data_type, c.is_nullable, c.column_default
FROM (VALUES ('branch_id', 'uuid', 'YES', NULL), ('scope', 'text', 'NO', '''tenant''::text')) AS want (column_name, data_type, is_nullable, column_default)
LEFT JOIN information_schema.columns c
  ON c.table_schema = current_schema() AND c.table_name = 'api_keys' AND c.column_name = want.column_name
WHERE c.column_name IS NULL
   OR c.data_type <> want.data_type
   OR c.is_nullable <> want.is_nullable
   OR c.column_default IS DISTINCT FROM want.column_default;

-- check: every_key_still_tenant_wide
-- severity: critical
-- description: adding the columns scoped no key to a branch
SELECT id, tenant_id, branch_id, scope
FROM api_keys
WHERE scope <> 'tenant' OR branch_id IS NOT NULL;

-- check: scope_columns_dropped
-- when: after-rollback
-- severity: critical
-- description: api_keys is back to its baseline columns
SELECT attname AS still_exists
FROM pg_attribute
WHERE attrelid = 'api_keys'::regclass AND attname IN ('branch_id', 'scope') AND NOT attisdropped;
