-- Phase 3 (switchover): make the sync trigger two-way, so old and new
-- columns stay in sync whichever application version writes:
--   * the NEW application writes "serviceId" and period (service and/or
--     "preferredTime" left NULL): service is set from services.code and
--     "preferredTime" from the period ('09:00' for MORNING, '14:00' for
--     AFTERNOON; kept as written when it already parses to that period);
--     "serviceName" / "estimatedDuration" are filled from services when the
--     INSERT leaves them NULL, and re-derived when an UPDATE changes
--     "serviceId" without setting them;
--   * the OLD application writes only service and "preferredTime": the new
--     columns are derived as in phase 2;
--   * on UPDATE the side that changed wins and the other is re-derived; if
--     both sides changed, the new side wins.
-- A service whose code is not a "ServiceType" label cannot be stored until
-- phase 4 and is refused with a clear error.
-- Safe under live traffic: CREATE OR REPLACE FUNCTION swaps the body
-- atomically; the trigger (reservations_10_sync_columns) is unchanged, so no
-- table lock is taken. Rows the old application writes get the same values
-- as before.

CREATE OR REPLACE FUNCTION phasegate_sync_reservation_columns() RETURNS trigger
LANGUAGE plpgsql AS $$
-- phasegate sync: two-way (old columns <-> new columns), phase 3
DECLARE
  s services%ROWTYPE;
  new_side_service boolean;
  new_side_period boolean;
BEGIN
  IF TG_OP = 'INSERT' THEN
    new_side_service := NEW."serviceId" IS NOT NULL;
    new_side_period := NEW.period IS NOT NULL;
  ELSE
    new_side_service := NEW."serviceId" IS DISTINCT FROM OLD."serviceId";
    new_side_period := NEW.period IS DISTINCT FROM OLD.period;
  END IF;

  IF new_side_service THEN
    SELECT * INTO s FROM services WHERE id = NEW."serviceId";
    IF NOT FOUND THEN
      RAISE EXCEPTION 'reservations: service % does not exist', NEW."serviceId"
        USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NOT s.code = ANY (enum_range(NULL::"ServiceType")::text[]) THEN
      RAISE EXCEPTION 'reservations: service % (%) has no "ServiceType" value; it can be booked after phase 4',
        s.id, s.code
        USING ERRCODE = 'check_violation';
    END IF;
    NEW.service := s.code::"ServiceType";
    IF TG_OP = 'INSERT' THEN
      NEW."serviceName" := coalesce(NEW."serviceName", s.name);
      NEW."estimatedDuration" := coalesce(NEW."estimatedDuration", s."durationMinutes" + s."bufferMinutes");
    ELSE
      IF NEW."serviceName" IS NOT DISTINCT FROM OLD."serviceName" THEN
        NEW."serviceName" := s.name;
      END IF;
      IF NEW."estimatedDuration" IS NOT DISTINCT FROM OLD."estimatedDuration" THEN
        NEW."estimatedDuration" := s."durationMinutes" + s."bufferMinutes";
      END IF;
    END IF;
  ELSIF TG_OP = 'INSERT' OR NEW.service IS DISTINCT FROM OLD.service THEN
    SELECT * INTO s FROM services WHERE code = NEW.service::text;
    NEW."serviceId" := s.id;
    NEW."serviceName" := s.name;
    NEW."estimatedDuration" := s."durationMinutes" + s."bufferMinutes";
  END IF;

  IF new_side_period THEN
    IF NEW."preferredTime" IS NULL
       OR phasegate_parse_period(NEW."preferredTime", NEW."createdAt") IS DISTINCT FROM NEW.period THEN
      NEW."preferredTime" := CASE NEW.period WHEN 'MORNING' THEN '09:00' WHEN 'AFTERNOON' THEN '14:00' END;
    END IF;
  ELSIF TG_OP = 'INSERT' OR NEW."preferredTime" IS DISTINCT FROM OLD."preferredTime" THEN
    NEW.period := phasegate_parse_period(NEW."preferredTime", NEW."createdAt");
  END IF;

  RETURN NEW;
END;
$$;
