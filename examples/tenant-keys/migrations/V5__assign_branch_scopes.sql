-- Phase 2 (data): a key whose metadata names a branch of its own tenant
-- becomes scoped to that branch. The hint is matched as text (trimmed,
-- lower-cased) so malformed hints never raise a cast error; hints that name
-- no branch of the tenant (a typo, another tenant's branch, "main") leave
-- the key tenant-wide, and the validation reports how many there are.
-- Safe under live traffic: one UPDATE of the matching keys (about 10% of
-- them on the seed), ROW EXCLUSIVE on api_keys; idempotent (only keys still
-- scoped 'tenant').
UPDATE api_keys k
SET branch_id = b.id,
    scope = 'branch'
FROM branches b
WHERE k.scope = 'tenant'
  AND jsonb_typeof(k.metadata -> 'branch_id') = 'string'
  AND b.tenant_id = k.tenant_id
  AND b.id::text = lower(btrim(k.metadata ->> 'branch_id'));
