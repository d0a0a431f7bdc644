-- check: sync_function_two_way
-- severity: critical
-- description: the sync trigger runs the two-way function
SELECT 'phasegate_sync_reservation_columns()' AS function_name
FROM (SELECT to_regprocedure('phasegate_sync_reservation_columns()') AS f) AS x
WHERE x.f IS NULL
   OR pg_get_functiondef(x.f) NOT LIKE '%phasegate sync: two-way%';

-- check: sync_trigger_enabled
-- severity: critical
-- description: reservations_10_sync_columns is present and enabled
SELECT 'reservations_10_sync_columns' AS trigger_name, t.tgenabled
FROM (SELECT 1) AS one
LEFT JOIN pg_trigger t
  ON t.tgrelid = 'reservations'::regclass
 AND t.tgname = 'reservations_10_sync_columns'
WHERE t.oid IS NULL OR t.tgenabled <> 'O';

-- check: dual_write_service_consistent
-- severity: critical
-- description: service and serviceId name the same service on every row
SELECT r.id, r.service::text AS old_code, r."serviceId", s.code AS new_code
FROM reservations r
LEFT JOIN services s ON s.id = r."serviceId"
WHERE s.id IS NULL OR r.service::text <> s.code;

-- check: dual_write_period_consistent
-- severity: critical
-- description: period is what preferredTime parses to on every row (the strict parser once per distinct text, the whole parser only on rows the strict one does not read: the same result as calling phasegate_parse_period on every row, which is the strict parse else the createdAt fallback, at a fifth of the cost on 100k rows)
SELECT r.id, r."preferredTime", r.period, coalesce(p.strict, phasegate_parse_period(r."preferredTime", r."createdAt")) AS parsed
FROM reservations r
LEFT JOIN (SELECT t, phasegate_parse_period_strict(t) AS strict
           FROM (SELECT DISTINCT "preferredTime" AS t FROM reservations) AS texts) AS p ON p.t = r."preferredTime"
WHERE r.period IS DISTINCT FROM coalesce(p.strict, phasegate_parse_period(r."preferredTime", r."createdAt"));

-- check: sync_function_one_way_again
-- when: after-rollback
-- severity: critical
-- description: the sync trigger runs the phase 2 one-way function again
SELECT 'phasegate_sync_reservation_columns()' AS function_name
FROM (SELECT to_regprocedure('phasegate_sync_reservation_columns()') AS f) AS x
WHERE x.f IS NULL
   OR pg_get_functiondef(x.f) LIKE '%two-way%'
   OR pg_get_functiondef(x.f) NOT LIKE '%phasegate sync: one-way%';

-- check: service_mapping_after_rollback
-- when: after-rollback
-- severity: critical
-- description: service and serviceId still name the same service on every row
SELECT r.id, r.service::text AS old_code, s.code AS new_code
FROM reservations r
JOIN services s ON s.id = r."serviceId"
WHERE r.service::text <> s.code;
