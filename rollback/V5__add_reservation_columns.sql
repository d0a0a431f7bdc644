-- Undo V5: drop the constraints, then the new columns. The old columns
-- (service, "preferredTime") are not touched. Constraint names are quoted:
-- unquoted, reservations_serviceId_fkey would fold to lower case and miss.
ALTER TABLE reservations DROP CONSTRAINT IF EXISTS "reservations_serviceId_fkey";
ALTER TABLE reservations DROP CONSTRAINT IF EXISTS "reservations_period_check";

ALTER TABLE reservations
  DROP COLUMN IF EXISTS "serviceId",
  DROP COLUMN IF EXISTS "serviceName",
  DROP COLUMN IF EXISTS "estimatedDuration",
  DROP COLUMN IF EXISTS period;
