-- phasegate: no-transaction
-- Undo V8 without blocking reads or writes.
DROP INDEX CONCURRENTLY IF EXISTS appointments_branch_id_starts_at_idx;
