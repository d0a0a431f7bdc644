-- check: scope_constraints_exist
-- severity: critical
-- description: the same-tenant branch foreign key and the scope check exist
SELECT want AS missing_constraint
FROM unnest(ARRAY['api_keys_branch_fkey', 'api_keys_scope_check']) AS want
WHERE NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'api_keys'::regclass AND conname = want);

-- check: scope_constraints_dropped
-- when: after-rollback
-- severity: critical
-- description: neither constraint is left behind
SELECT conname AS still_exists
FROM pg_constraint
WHERE conrelid = 'api_keys'::regclass AND conname IN ('api_keys_branch_fkey', 'api_keys_scope_check');
