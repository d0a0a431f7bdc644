-- phasegate: no-transaction
-- Undo V7 without blocking reads or writes.
DROP INDEX CONCURRENTLY IF EXISTS leads_tenant_id_branch_id_created_at_idx;
