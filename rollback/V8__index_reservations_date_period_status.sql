-- phasegate: no-transaction
-- Undo V8: drop the index without blocking reads or writes.
DROP INDEX CONCURRENTLY IF EXISTS "reservations_preferredDate_period_status_idx";
