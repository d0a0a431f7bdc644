-- Phase 1 (additive): nullable "serviceId" (FK to services), "serviceName",
-- "estimatedDuration" and period on reservations. Nothing writes them yet.
-- Safe under live traffic: adding nullable columns without a default is a
-- catalog-only change (no table rewrite), and the constraints are added NOT
-- VALID, so nothing here reads the table: the ACCESS EXCLUSIVE lock of ADD
-- COLUMN is held for milliseconds (lock_timeout keeps the request from
-- queueing behind long transactions). V6 validates the constraints in a
-- transaction of its own, under the weaker SHARE UPDATE EXCLUSIVE lock.
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
