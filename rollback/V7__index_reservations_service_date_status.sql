-- phasegate: no-transaction
-- Undo V7: drop the index without blocking reads or writes.
DROP INDEX CONCURRENTLY IF EXISTS "reservations_serviceId_preferredDate_status_idx";
