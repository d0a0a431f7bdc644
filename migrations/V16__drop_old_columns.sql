-- Phase 4 (cleanup, irreversible): drop the sync trigger and its functions
-- (the parser included), the old service and "preferredTime" columns and the
-- "ServiceType" enum. The capacity check stays. Only run when no deployed
-- application version reads or writes the old columns (dynamic_services at
-- 100%). Safe under live traffic: DROP COLUMN is catalog-only (no rewrite;
-- the space is reclaimed by later updates and VACUUM) and takes the ACCESS
-- EXCLUSIVE lock for an instant; every DROP is without CASCADE, so anything
-- unexpected still depending on these objects aborts the migration instead
-- of being dropped silently.

DROP TRIGGER reservations_10_sync_columns ON reservations;

DROP FUNCTION phasegate_sync_reservation_columns();
DROP FUNCTION phasegate_parse_period(text, timestamptz);
DROP FUNCTION phasegate_parse_period_strict(text);

ALTER TABLE reservations
  DROP COLUMN service,
  DROP COLUMN "preferredTime";

DROP TYPE "ServiceType";
