-- check: parser_functions_immutable
-- severity: critical
-- description: both parser functions exist and are IMMUTABLE (the backfill and the trigger must agree)
SELECT f.signature, p.provolatile
FROM (VALUES ('phasegate_parse_period_strict(text)'),
             ('phasegate_parse_period(text,timestamp with time zone)')) AS f(signature)
LEFT JOIN pg_proc p ON p.oid = to_regprocedure(f.signature)
WHERE p.oid IS NULL OR p.provolatile <> 'i';

-- check: parser_known_formats
-- severity: critical
-- description: every time format seen in production parses to the expected period
SELECT v.raw, v.expected, phasegate_parse_period_strict(v.raw) AS parsed
FROM (VALUES
  ('10:00', 'MORNING'), ('14:30', 'AFTERNOON'), ('09:30', 'MORNING'), ('12:00', 'AFTERNOON'),
  ('07:30', 'MORNING'), ('2:30', 'AFTERNOON'), ('2:30 PM', 'AFTERNOON'), ('10:00 AM', 'MORNING'),
  ('12:30 pm', 'AFTERNOON'), ('11:30am', 'MORNING'), ('10 AM', 'MORNING'), ('10am', 'MORNING'),
  ('3pm', 'AFTERNOON'), ('3 p.m.', 'AFTERNOON'), ('9 a.m.', 'MORNING'), ('오전', 'MORNING'),
  ('오후', 'AFTERNOON'), ('오후 3시', 'AFTERNOON'), ('오전 10시', 'MORNING'), ('오후3시', 'AFTERNOON'),
  ('오후 2시 30분', 'AFTERNOON'), ('오전 11시반', 'MORNING'), ('morning', 'MORNING'),
  ('Afternoon', 'AFTERNOON'), ('MORNING ', 'MORNING'), ('AM', 'MORNING'), ('PM', 'AFTERNOON'),
  ('10:00-11:00', 'MORNING'), ('13:00~14:00', 'AFTERNOON'), ('11:30 - 12:30', 'MORNING'),
  ('9:30~10:30', 'MORNING'), ('오후 2시~3시', 'AFTERNOON'), ('11am-1pm', 'MORNING'),
  ('점심 이후', 'AFTERNOON'), ('after lunch', 'AFTERNOON'), ('noon', 'AFTERNOON'),
  ('저녁', 'AFTERNOON'), ('아침', 'MORNING'), ('3시', 'AFTERNOON'), ('10시', 'MORNING'),
  ('14시', 'AFTERNOON'), ('1430', 'AFTERNOON'), ('0930', 'MORNING'), ('AM 10', 'MORNING'),
  ('PM 3', 'AFTERNOON'), ('early morning', 'MORNING'), ('late afternoon', 'AFTERNOON'),
  ('', NULL), ('   ', NULL), (E'\t', NULL), ('anytime', NULL), ('상관없음', NULL), ('25:00', NULL)
) AS v(raw, expected)
WHERE phasegate_parse_period_strict(v.raw) IS DISTINCT FROM v.expected;

-- check: parser_fallback_rule
-- severity: critical
-- description: blanks and unrecognised text fall back to the hour of createdAt in Asia/Seoul
SELECT v.raw, v.created_at, v.expected, phasegate_parse_period(v.raw, v.created_at) AS parsed
FROM (VALUES
  ('', timestamptz '2026-03-02 09:15+09', 'MORNING'),
  ('  ', timestamptz '2026-03-02 11:59+09', 'MORNING'),
  ('anytime', timestamptz '2026-03-02 12:00+09', 'AFTERNOON'),
  ('', timestamptz '2026-03-02 05:00+00', 'AFTERNOON'),
  ('', NULL::timestamptz, 'MORNING'),
  ('14:00', timestamptz '2026-03-02 08:00+09', 'AFTERNOON')
) AS v(raw, created_at, expected)
WHERE phasegate_parse_period(v.raw, v.created_at) IS DISTINCT FROM v.expected;

-- check: sync_trigger_enabled
-- severity: critical
-- description: reservations_10_sync_columns is a BEFORE INSERT OR UPDATE row trigger, enabled
SELECT 'reservations_10_sync_columns' AS trigger_name, t.tgenabled
FROM (SELECT 1) AS one
LEFT JOIN pg_trigger t
  ON t.tgrelid = 'reservations'::regclass
 AND t.tgname = 'reservations_10_sync_columns'
 AND NOT t.tgisinternal
WHERE t.oid IS NULL
   OR t.tgenabled <> 'O'
   OR t.tgfoid <> to_regprocedure('phasegate_sync_reservation_columns()')
   OR t.tgtype & (2 | 4 | 16) <> (2 | 4 | 16);

-- check: sync_trigger_dropped
-- when: after-rollback
-- description: the sync trigger and its functions are gone
SELECT 'trigger reservations_10_sync_columns' AS still_exists
FROM pg_trigger
WHERE tgrelid = 'reservations'::regclass AND tgname = 'reservations_10_sync_columns'
UNION ALL
SELECT 'function ' || f.signature
FROM (VALUES ('phasegate_sync_reservation_columns()'),
             ('phasegate_parse_period(text,timestamp with time zone)'),
             ('phasegate_parse_period_strict(text)')) AS f(signature)
WHERE to_regprocedure(f.signature) IS NOT NULL;

-- check: old_columns_intact
-- when: after-rollback
-- description: service and preferredTime are still set on every row
SELECT id, service, "preferredTime"
FROM reservations
WHERE service IS NULL OR "preferredTime" IS NULL;
