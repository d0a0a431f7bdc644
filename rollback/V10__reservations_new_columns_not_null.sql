-- Undo V10: make the new columns nullable again (catalog-only, instant).
ALTER TABLE reservations
  ALTER COLUMN "serviceId" DROP NOT NULL,
  ALTER COLUMN "serviceName" DROP NOT NULL,
  ALTER COLUMN "estimatedDuration" DROP NOT NULL,
  ALTER COLUMN period DROP NOT NULL;
