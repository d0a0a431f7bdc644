-- Phase 3: the reporting view support and customer success use after a
-- rollout (or a rollback) of branch scopes: per tenant, keys in total,
-- active, branch-scoped, and how many branches have a key of their own.
-- Creating a view takes no lock on the tables.
CREATE VIEW tenant_api_key_scopes AS
SELECT t.id AS tenant_id,
       t.slug,
       t.plan,
       count(k.id) AS keys_total,
       count(k.id) FILTER (WHERE k.revoked_at IS NULL) AS keys_active,
       count(k.id) FILTER (WHERE k.scope = 'branch') AS keys_branch_scoped,
       count(DISTINCT k.branch_id) AS branches_with_keys
FROM tenants t
LEFT JOIN api_keys k ON k.tenant_id = t.id
GROUP BY t.id, t.slug, t.plan;
