-- phasegate: no-transaction
-- Phase 3: a branch-scoped key lists its branch's newest leads; without this
-- index that is a scan of the tenant's leads. Built CONCURRENTLY.
CREATE INDEX CONCURRENTLY IF NOT EXISTS leads_tenant_id_branch_id_created_at_idx
  ON leads (tenant_id, branch_id, created_at DESC);
