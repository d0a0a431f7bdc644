-- phasegate: no-transaction
-- Phase 3 (performance): key lookups by tenant and branch for the scoped
-- authorisation path, active keys only. Built CONCURRENTLY: reads and writes
-- continue; a failed build leaves an INVALID index, which the validation
-- (and `cargo xtask health`) reports.
CREATE INDEX CONCURRENTLY IF NOT EXISTS api_keys_tenant_id_branch_id_idx
  ON api_keys (tenant_id, branch_id) WHERE revoked_at IS NULL;
