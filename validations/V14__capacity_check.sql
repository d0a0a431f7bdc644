-- check: capacity_trigger_enabled
-- severity: critical
-- description: reservations_20_check_capacity is a BEFORE INSERT OR UPDATE row trigger on the capacity function, enabled
SELECT 'reservations_20_check_capacity' AS trigger_name, t.tgenabled
FROM (SELECT 1) AS one
LEFT JOIN pg_trigger t
  ON t.tgrelid = 'reservations'::regclass
 AND t.tgname = 'reservations_20_check_capacity'
 AND NOT t.tgisinternal
WHERE t.oid IS NULL
   OR t.tgenabled <> 'O'
   OR t.tgfoid <> to_regprocedure('phasegate_check_reservation_capacity()')
   OR t.tgtype & (2 | 4 | 16) <> (2 | 4 | 16);

-- check: capacity_check_fires_after_sync
-- severity: critical
-- description: BEFORE triggers fire in name order and the capacity check needs period filled by the sync trigger
SELECT s.tgname AS sync_trigger, c.tgname AS capacity_trigger
FROM pg_trigger s
JOIN pg_trigger c ON c.tgrelid = s.tgrelid
WHERE s.tgrelid = 'reservations'::regclass
  AND s.tgfoid = to_regprocedure('phasegate_sync_reservation_columns()')
  AND c.tgfoid = to_regprocedure('phasegate_check_reservation_capacity()')
  AND NOT (s.tgname < c.tgname);

-- check: upcoming_slots_within_capacity
-- severity: warning
-- description: no upcoming slot is already booked over its capacity (bookings made before the check existed)
SELECT r."preferredDate", r.period, count(*) AS booked, t.capacity
FROM reservations r
JOIN clinic_time_slots t
  ON t."dayOfWeek" = extract(isodow FROM r."preferredDate")::integer
 AND t.period = r.period
WHERE r."preferredDate" >= current_date
  AND r.status <> 'CANCELLED'
GROUP BY r."preferredDate", r.period, t.capacity
HAVING count(*) > t.capacity;

-- check: capacity_check_dropped
-- when: after-rollback
-- severity: critical
-- description: the capacity trigger and its function are gone
SELECT 'trigger reservations_20_check_capacity' AS still_exists
FROM pg_trigger
WHERE tgrelid = 'reservations'::regclass AND tgname = 'reservations_20_check_capacity'
UNION ALL
SELECT 'function phasegate_check_reservation_capacity()'
WHERE to_regprocedure('phasegate_check_reservation_capacity()') IS NOT NULL;
