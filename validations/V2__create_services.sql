-- check: services_row_count
-- metric: rows
-- proceed: = 6
-- description: one services row per ServiceType value
SELECT count(*) FROM services;

-- check: services_match_service_type
-- severity: critical
-- description: every ServiceType label has a services row with that code and no services row lacks a label
SELECT coalesce(e.label, s.code) AS code,
       e.label IS NULL AS not_a_service_type,
       s.code IS NULL AS missing_services_row
FROM (SELECT unnest(enum_range(NULL::"ServiceType"))::text AS label) AS e
FULL JOIN services s ON s.code = e.label
WHERE e.label IS NULL OR s.code IS NULL;

-- check: services_durations_plausible
-- severity: warning
-- description: durations are plausible (5 to 480 minutes, buffer 0 to 120)
SELECT id, code, "durationMinutes", "bufferMinutes"
FROM services
WHERE "durationMinutes" NOT BETWEEN 5 AND 480
   OR "bufferMinutes" NOT BETWEEN 0 AND 120;

-- check: services_dropped
-- when: after-rollback
-- description: the services table is gone
SELECT 'services' AS still_exists
WHERE to_regclass('services') IS NOT NULL;

-- check: old_service_column_intact
-- when: after-rollback
-- description: reservations.service still set on every row
SELECT id, service
FROM reservations
WHERE service IS NULL;
