-- Phase 2 (data): make "serviceId", "serviceName", "estimatedDuration" and
-- period NOT NULL now that every row is backfilled and the sync trigger fills
-- new rows. VALIDATE reads the table once under SHARE UPDATE EXCLUSIVE (reads
-- and writes go on); SET NOT NULL then uses the validated helper check of V11
-- as proof (PostgreSQL 12+) and skips its own scans, so its ACCESS EXCLUSIVE
-- lock is held only for the catalog change; the helper check is then dropped.
ALTER TABLE reservations VALIDATE CONSTRAINT reservations_new_columns_not_null;

ALTER TABLE reservations
  ALTER COLUMN "serviceId" SET NOT NULL,
  ALTER COLUMN "serviceName" SET NOT NULL,
  ALTER COLUMN "estimatedDuration" SET NOT NULL,
  ALTER COLUMN period SET NOT NULL;

ALTER TABLE reservations DROP CONSTRAINT reservations_new_columns_not_null;
