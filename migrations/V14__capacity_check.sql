-- Phase 3 (switchover): refuse a reservation that would overbook its slot.
-- When a row starts to occupy a (preferredDate, period) slot (an INSERT, a
-- change of date or period, or a CANCELLED row re-activated) and is not
-- CANCELLED itself, the other non-cancelled reservations of that slot are
-- counted; if they already reach the capacity of clinic_time_slots for that
-- ISO day of week and period, the write fails with SQLSTATE 23514. An
-- inactive slot has capacity 0; a day/period with no slot row is not limited.
-- Rows that do not move (status changes, edits of other columns) are never
-- checked, so existing data is never rejected. A transaction-scoped advisory
-- lock per slot serialises concurrent bookings of the same slot, so two
-- inserts cannot both take the last place.
-- The trigger fires on every UPDATE (not UPDATE OF "preferredDate", period):
-- the old application changes period only through "preferredTime" and the
-- sync trigger, which UPDATE OF would not see. It is named to fire after
-- reservations_10_sync_columns, which fills period first.
-- Safe under live traffic: CREATE FUNCTION touches no table; CREATE TRIGGER
-- holds SHARE ROW EXCLUSIVE on reservations for an instant. Each checked
-- write adds one index count on ("preferredDate", period, status).

CREATE FUNCTION phasegate_check_reservation_capacity() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  slot_capacity integer;
  booked bigint;
BEGIN
  IF NEW.status = 'CANCELLED' OR NEW.period IS NULL THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'UPDATE'
     AND OLD.status <> 'CANCELLED'
     AND NEW."preferredDate" = OLD."preferredDate"
     AND NEW.period IS NOT DISTINCT FROM OLD.period THEN
    RETURN NEW;
  END IF;

  SELECT CASE WHEN t."isActive" THEN t.capacity ELSE 0 END
    INTO slot_capacity
    FROM clinic_time_slots t
   WHERE t."dayOfWeek" = extract(isodow FROM NEW."preferredDate")::integer
     AND t.period = NEW.period;
  IF NOT FOUND THEN
    RETURN NEW;
  END IF;

  PERFORM pg_advisory_xact_lock(hashtext('phasegate_capacity'),
                                hashtext(NEW."preferredDate"::text || ' ' || NEW.period));

  SELECT count(*)
    INTO booked
    FROM reservations r
   WHERE r."preferredDate" = NEW."preferredDate"
     AND r.period = NEW.period
     AND r.status <> 'CANCELLED'
     AND r.id <> NEW.id;

  IF booked >= slot_capacity THEN
    RAISE EXCEPTION 'reservations: % % is fully booked (% of % places taken)',
      NEW."preferredDate", NEW.period, booked, slot_capacity
      USING ERRCODE = 'check_violation',
            HINT = 'choose another date or period, or raise clinic_time_slots.capacity';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER reservations_20_check_capacity
  BEFORE INSERT OR UPDATE ON reservations
  FOR EACH ROW EXECUTE FUNCTION phasegate_check_reservation_capacity();
