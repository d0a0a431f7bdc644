-- phasegate: no-transaction
-- Phase 1 (additive): index for availability counts per date and period (the
-- phase 3 capacity check counts reservations by "preferredDate", period and
-- status). Safe under live traffic: built CONCURRENTLY (reads and writes
-- continue). A failed build leaves an INVALID index; the validation catches it.
CREATE INDEX CONCURRENTLY IF NOT EXISTS "reservations_preferredDate_period_status_idx"
  ON reservations ("preferredDate", period, status);
