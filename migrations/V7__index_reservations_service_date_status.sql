-- phasegate: no-transaction
-- Phase 1 (additive): index for "reservations of service X on date D by
-- status" lookups of the new application. Safe under live traffic: built
-- CONCURRENTLY (reads and writes continue; no long lock). If a build fails it
-- leaves an INVALID index; the validation catches that (drop it and re-run).
CREATE INDEX CONCURRENTLY IF NOT EXISTS "reservations_serviceId_preferredDate_status_idx"
  ON reservations ("serviceId", "preferredDate", status);
