-- Undo V6: PostgreSQL cannot mark a constraint unvalidated, so drop each one
-- and add it back NOT VALID, exactly as V5 left it. Both statements are
-- catalog-only (NOT VALID reads no rows); the ACCESS EXCLUSIVE locks they
-- take are held for milliseconds.
ALTER TABLE reservations DROP CONSTRAINT "reservations_period_check";
ALTER TABLE reservations
  ADD CONSTRAINT "reservations_period_check"
  CHECK (period IN ('MORNING', 'AFTERNOON')) NOT VALID;

ALTER TABLE reservations DROP CONSTRAINT "reservations_serviceId_fkey";
ALTER TABLE reservations
  ADD CONSTRAINT "reservations_serviceId_fkey"
  FOREIGN KEY ("serviceId") REFERENCES services (id)
  ON UPDATE CASCADE ON DELETE RESTRICT
  NOT VALID;
