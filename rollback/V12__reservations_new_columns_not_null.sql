-- Undo V12: make the new columns nullable again and put back the helper
-- check NOT VALID, as V11 left it (both catalog-only, instant).
ALTER TABLE reservations
  ALTER COLUMN "serviceId" DROP NOT NULL,
  ALTER COLUMN "serviceName" DROP NOT NULL,
  ALTER COLUMN "estimatedDuration" DROP NOT NULL,
  ALTER COLUMN period DROP NOT NULL;

ALTER TABLE reservations
  ADD CONSTRAINT reservations_new_columns_not_null
  CHECK ("serviceId" IS NOT NULL
     AND "serviceName" IS NOT NULL
     AND "estimatedDuration" IS NOT NULL
     AND period IS NOT NULL) NOT VALID;
