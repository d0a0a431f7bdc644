-- check: scope_constraints_validated
-- severity: critical
-- description: both constraints hold for every existing key
SELECT conname, convalidated
FROM pg_constraint
WHERE conrelid = 'api_keys'::regclass
  AND conname IN ('api_keys_branch_fkey', 'api_keys_scope_check')
  AND NOT convalidated;

-- check: scope_constraints_not_valid_again
-- when: after-rollback
-- severity: critical
-- description: both constraints exist, NOT VALID, as after V3
SELECT want AS constraint_name
FROM unnest(ARRAY['api_keys_branch_fkey', 'api_keys_scope_check']) AS want
LEFT JOIN pg_constraint c ON c.conrelid = 'api_keys'::regclass AND c.conname = want
WHERE c.oid IS NULL OR c.convalidated;
