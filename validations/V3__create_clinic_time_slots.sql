-- check: slot_row_count
-- metric: rows
-- proceed: = 14
-- description: seven days times two periods
SELECT count(*) FROM clinic_time_slots;

-- check: every_day_and_period_has_a_slot
-- severity: critical
-- description: no ISO day of week or period lacks a slot
SELECT d AS "dayOfWeek", p.period
FROM generate_series(1, 7) AS d
CROSS JOIN (VALUES ('MORNING'), ('AFTERNOON')) AS p(period)
WHERE NOT EXISTS (
  SELECT 1 FROM clinic_time_slots t
  WHERE t."dayOfWeek" = d AND t.period = p.period
);

-- check: slot_capacity_positive
-- severity: warning
-- description: an active slot with capacity 0 refuses every booking of that slot
SELECT id, "dayOfWeek", period, capacity
FROM clinic_time_slots
WHERE "isActive" AND capacity <= 0;

-- check: clinic_time_slots_dropped
-- when: after-rollback
-- description: the clinic_time_slots table is gone
SELECT 'clinic_time_slots' AS still_exists
WHERE to_regclass('clinic_time_slots') IS NOT NULL;
