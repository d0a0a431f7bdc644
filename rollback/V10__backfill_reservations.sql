-- Undo V10: reset the new columns to NULL on every row (the state before the
-- backfill); service and "preferredTime" are not touched. The sync trigger
-- of V9 is still in place but re-derives only when service or
-- "preferredTime" change, which they do not here. Abort if an old column has
-- lost data (that needs a restore from backup, not a rollback).
UPDATE reservations
SET "serviceId" = NULL,
    "serviceName" = NULL,
    "estimatedDuration" = NULL,
    period = NULL
WHERE "serviceId" IS NOT NULL
   OR "serviceName" IS NOT NULL
   OR "estimatedDuration" IS NOT NULL
   OR period IS NOT NULL;

DO $$
DECLARE
  total_count bigint;
  old_service_count bigint;
  old_time_count bigint;
BEGIN
  SELECT count(*), count(service), count("preferredTime")
    INTO total_count, old_service_count, old_time_count
    FROM reservations;
  IF total_count <> old_service_count OR total_count <> old_time_count THEN
    RAISE EXCEPTION 'old data corrupted: total %, service %, preferredTime %',
      total_count, old_service_count, old_time_count;
  END IF;
END;
$$;
