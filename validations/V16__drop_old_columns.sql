-- check: new_columns_complete_before_cleanup
-- when: before-migrate
-- severity: critical
-- description: every row has serviceId and period, so nothing only lives in the columns about to be dropped
SELECT id, service, "preferredTime", "serviceId", period
FROM reservations
WHERE "serviceId" IS NULL OR period IS NULL;

-- check: service_mapping_before_cleanup
-- when: before-migrate
-- severity: critical
-- description: service and serviceId agree on every row before service is dropped
SELECT r.id, r.service::text AS old_code, s.code AS new_code
FROM reservations r
JOIN services s ON s.id = r."serviceId"
WHERE r.service::text <> s.code;

-- check: old_columns_dropped
-- severity: critical
-- description: reservations.service and preferredTime are gone
SELECT column_name AS still_exists
FROM information_schema.columns
WHERE table_schema = current_schema()
  AND table_name = 'reservations'
  AND column_name IN ('service', 'preferredTime');

-- check: service_type_dropped
-- severity: critical
-- description: the ServiceType enum, the sync trigger and the parser functions are gone
SELECT 'type ServiceType' AS still_exists
WHERE to_regtype('"ServiceType"') IS NOT NULL
UNION ALL
SELECT 'trigger ' || tgname
FROM pg_trigger
WHERE tgrelid = 'reservations'::regclass AND tgname = 'reservations_10_sync_columns'
UNION ALL
SELECT 'function ' || f.signature
FROM (VALUES ('phasegate_sync_reservation_columns()'),
             ('phasegate_parse_period(text,timestamp with time zone)'),
             ('phasegate_parse_period_strict(text)')) AS f(signature)
WHERE to_regprocedure(f.signature) IS NOT NULL;

-- check: new_columns_not_null
-- severity: critical
-- description: serviceId, serviceName, estimatedDuration and period are NOT NULL
SELECT c.column_name, ic.is_nullable
FROM unnest(ARRAY['serviceId', 'serviceName', 'estimatedDuration', 'period']) AS c(column_name)
LEFT JOIN information_schema.columns ic
  ON ic.table_schema = current_schema()
 AND ic.table_name = 'reservations'
 AND ic.column_name = c.column_name
WHERE ic.column_name IS NULL OR ic.is_nullable <> 'NO';

-- check: every_reservation_has_a_service
-- severity: critical
-- description: every reservation points at an existing service
SELECT r.id, r."serviceId"
FROM reservations r
LEFT JOIN services s ON s.id = r."serviceId"
WHERE s.id IS NULL;

-- check: capacity_check_kept
-- severity: critical
-- description: the capacity trigger stays after cleanup
SELECT 'reservations_20_check_capacity' AS missing_trigger
WHERE NOT EXISTS (
  SELECT 1 FROM pg_trigger
  WHERE tgrelid = 'reservations'::regclass
    AND tgname = 'reservations_20_check_capacity'
    AND tgenabled = 'O'
);
