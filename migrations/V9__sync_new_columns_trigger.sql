-- Phase 2 (data): keep the new columns filled for every row the OLD
-- application writes (it only sets service and "preferredTime"), so the
-- backfill in V10 does not race with live inserts and updates.
--   phasegate_parse_period_strict(text)        MORNING / AFTERNOON, or NULL
--                                              when the text says nothing usable
--   phasegate_parse_period(text, timestamptz)  never NULL: the strict parse,
--                                              else the fallback rule below
--   phasegate_sync_reservation_columns()       one-way trigger function,
--                                              old columns -> new columns
-- Safe under live traffic: CREATE FUNCTION touches no table; CREATE TRIGGER
-- takes a SHARE ROW EXCLUSIVE lock on reservations for an instant (catalog
-- only). The trigger adds one primary-key lookup on services per written row.
--
-- Parsing rules (the text is lower-cased, whitespace collapsed, "p.m." -> "pm"):
--   * a range ("10:00-11:00", "13:00~14:00", "2시부터 3시") keeps its start;
--   * "pm", "오후", "afternoon", "evening", "저녁", "noon", "lunch", "점심"
--     -> AFTERNOON; "am", "오전", "morning", "아침" -> MORNING
--     (a meridiem word wins over the hour: "오후 3시", "2:30 PM", "10am");
--   * otherwise the first number is the hour ("14:30", "10시", "1430" = 14):
--     12..23 -> AFTERNOON; 8..11, or a zero-padded hour ("07:30") -> MORNING;
--     a bare 1..7 ("2:30", "3시") is read as 13..19 (clinic hours 09-19) ->
--     AFTERNOON; 24 and over -> not recognised;
--   * noon and later is AFTERNOON.
-- Fallback for blanks ('' or whitespace) and text with no time in it
-- ("anytime", "상관없음"): the hour the reservation was made ("createdAt" in
-- Asia/Seoul): before noon -> MORNING, noon or later -> AFTERNOON; a NULL
-- "createdAt" -> MORNING. Staff confirm these bookings by phone anyway; the
-- V10 check fallback_period_percent reports how many rows used this rule.

CREATE FUNCTION phasegate_parse_period_strict(raw text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  s      text;
  digits text;
  hour   integer;
BEGIN
  IF raw IS NULL THEN
    RETURN NULL;
  END IF;
  s := lower(raw);
  s := regexp_replace(s, '[[:space:]\u00a0\u3000]+', ' ', 'g');
  s := regexp_replace(s, '([ap])\.? ?m\.?', '\1m', 'g');
  s := btrim(s);
  -- a range keeps its start
  s := btrim(regexp_replace(s, ' ?(-|~|–|—|부터| to ).*$', ''));
  IF s = '' THEN
    RETURN NULL;
  END IF;

  IF s ~ '(^|[^a-z])pm($|[^a-z])' OR s ~ '오후|저녁|점심|afternoon|evening|noon|lunch' THEN
    RETURN 'AFTERNOON';
  END IF;
  IF s ~ '(^|[^a-z])am($|[^a-z])' OR s ~ '오전|아침|morning' THEN
    RETURN 'MORNING';
  END IF;

  digits := substring(s FROM '[0-9]+');
  IF digits IS NULL OR length(digits) > 4 THEN
    RETURN NULL;
  END IF;
  IF length(digits) >= 3 THEN
    hour := digits::integer / 100;
  ELSE
    hour := digits::integer;
  END IF;

  IF hour >= 24 THEN
    RETURN NULL;
  ELSIF hour >= 12 THEN
    RETURN 'AFTERNOON';
  ELSIF hour >= 8 OR digits LIKE '0%' THEN
    RETURN 'MORNING';
  END IF;
  RETURN 'AFTERNOON';
END;
$$;

CREATE FUNCTION phasegate_parse_period(raw text, created_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(
    phasegate_parse_period_strict(raw),
    CASE
      WHEN extract(hour FROM created_at AT TIME ZONE 'Asia/Seoul') >= 12 THEN 'AFTERNOON'
      ELSE 'MORNING'
    END)
$$;

CREATE FUNCTION phasegate_sync_reservation_columns() RETURNS trigger
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

-- BEFORE ROW triggers fire in name order: the number keeps this one ahead of
-- the phase 3 capacity check (reservations_20_check_capacity), which needs
-- period filled in.
CREATE TRIGGER reservations_10_sync_columns
  BEFORE INSERT OR UPDATE ON reservations
  FOR EACH ROW EXECUTE FUNCTION phasegate_sync_reservation_columns();
