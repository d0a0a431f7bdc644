-- check: branch_hints_honoured_percent
-- metric: percent
-- proceed: = 100
-- description: share of keys whose metadata names a branch of their own tenant that are now scoped to that branch; NULL, shown as no rows, when no key has such a hint
SELECT 100.0 * count(*) FILTER (WHERE k.scope = 'branch' AND k.branch_id = b.id) / NULLIF(count(*), 0)
FROM api_keys k
JOIN branches b ON b.tenant_id = k.tenant_id AND b.id::text = lower(btrim(k.metadata ->> 'branch_id'))
WHERE jsonb_typeof(k.metadata -> 'branch_id') = 'string';

-- check: scoped_keys_match_their_hint
-- severity: critical
-- description: no key is scoped to a branch its metadata does not name
SELECT id, tenant_id, branch_id, metadata ->> 'branch_id' AS hint
FROM api_keys
WHERE scope = 'branch'
  AND branch_id::text IS DISTINCT FROM lower(btrim(metadata ->> 'branch_id'));

-- check: unusable_branch_hints_percent
-- metric: percent
-- proceed: <= 10
-- review: <= 25
-- description: share of branch hints that name no branch of the key's tenant (those keys stay tenant-wide; support should contact their tenants); NULL, shown as no rows, when no key has a branch hint
SELECT 100.0 * count(*) FILTER (WHERE scope = 'tenant') / NULLIF(count(*), 0)
FROM api_keys
WHERE jsonb_typeof(metadata -> 'branch_id') = 'string';

-- check: branch_scoped_tenants_percent
-- metric: percent
-- proceed: between 5 and 30
-- review: <= 50
-- description: share of tenants with at least one branch-scoped key (15-20% expected); NULL, shown as no rows, when there are no tenants
SELECT 100.0 * (SELECT count(DISTINCT tenant_id) FROM api_keys WHERE scope = 'branch')
       / NULLIF((SELECT count(*) FROM tenants), 0);

-- check: affected_keys
-- when: before-rollback
-- metric: keys
-- proceed: >= 0
-- description: branch-scoped keys this rollback makes tenant-wide again (each is backed up first)
SELECT count(*) FROM api_keys WHERE scope <> 'tenant' OR branch_id IS NOT NULL;

-- check: affected_tenants
-- when: before-rollback
-- metric: tenants
-- proceed: >= 0
-- description: tenants whose keys this rollback widens to every branch; each must be told (customer email within 30 minutes)
SELECT count(DISTINCT tenant_id) FROM api_keys WHERE scope <> 'tenant' OR branch_id IS NOT NULL;

-- check: every_key_tenant_wide_again
-- when: after-rollback
-- severity: critical
-- description: no key is branch-scoped any more
SELECT id, tenant_id, branch_id, scope
FROM api_keys
WHERE scope <> 'tenant' OR branch_id IS NOT NULL;

-- check: branch_hints_kept
-- when: after-rollback
-- severity: critical
-- description: the metadata hints are still there, so re-applying phase 2 scopes the same keys
SELECT 'no key has a branch hint' AS problem
WHERE (SELECT count(*) FROM tenants) > 0
  AND NOT EXISTS (SELECT 1 FROM api_keys WHERE jsonb_typeof(metadata -> 'branch_id') = 'string');
