-- Undo V13: restore the one-way (old columns -> new columns) sync function
-- of V9, byte for byte, so the schema equals the one before phase 3. The
-- trigger itself was not changed by V13.
CREATE OR REPLACE FUNCTION phasegate_sync_reservation_columns() RETURNS trigger
LANGUAGE plpgsql AS $$
-- phasegate sync: one-way (old columns -> new columns), phase 2
DECLARE
  s services%ROWTYPE;
BEGIN
  IF TG_OP = 'INSERT' OR NEW.service IS DISTINCT FROM OLD.service THEN
    SELECT * INTO s FROM services WHERE code = NEW.service::text;
    NEW."serviceId" := s.id;
    NEW."serviceName" := s.name;
    NEW."estimatedDuration" := s."durationMinutes" + s."bufferMinutes";
  END IF;
  IF TG_OP = 'INSERT' OR NEW."preferredTime" IS DISTINCT FROM OLD."preferredTime" THEN
    NEW.period := phasegate_parse_period(NEW."preferredTime", NEW."createdAt");
  END IF;
  RETURN NEW;
END;
$$;
