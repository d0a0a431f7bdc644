-- check: view_covers_every_tenant
-- severity: critical
-- description: one row per tenant
SELECT (SELECT count(*) FROM tenant_api_key_scopes) AS view_rows, (SELECT count(*) FROM tenants) AS tenants
WHERE (SELECT count(*) FROM tenant_api_key_scopes) <> (SELECT count(*) FROM tenants);

-- check: view_totals_match
-- severity: critical
-- description: the view's key totals add up to api_keys
SELECT sum(keys_total) AS view_keys, (SELECT count(*) FROM api_keys) AS keys,
       sum(keys_branch_scoped) AS view_scoped, (SELECT count(*) FROM api_keys WHERE scope = 'branch') AS scoped
FROM tenant_api_key_scopes
HAVING coalesce(sum(keys_total), 0) <> (SELECT count(*) FROM api_keys)
    OR coalesce(sum(keys_branch_scoped), 0) <> (SELECT count(*) FROM api_keys WHERE scope = 'branch');

-- check: view_dropped
-- when: after-rollback
-- severity: critical
-- description: the view is gone
SELECT 'tenant_api_key_scopes' AS still_exists
WHERE to_regclass('tenant_api_key_scopes') IS NOT NULL;
