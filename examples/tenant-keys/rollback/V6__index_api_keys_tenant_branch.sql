-- phasegate: no-transaction
-- Undo V6 without blocking reads or writes.
DROP INDEX CONCURRENTLY IF EXISTS api_keys_tenant_id_branch_id_idx;
