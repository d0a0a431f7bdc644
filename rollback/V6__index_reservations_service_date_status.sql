-- phasegate: no-transaction
-- Undo V6: drop the index without blocking reads or writes.
DROP INDEX CONCURRENTLY IF EXISTS "reservations_serviceId_preferredDate_status_idx";
