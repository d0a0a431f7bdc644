-- check: every_service_type_has_a_service
-- when: before-migrate
-- severity: critical
-- description: every ServiceType value used by a reservation has a services row, or the backfill would leave rows behind
SELECT DISTINCT r.service
FROM reservations r
LEFT JOIN services s ON s.code = r.service::text
WHERE s.id IS NULL;

-- check: every_time_value_gets_a_period
-- when: before-migrate
-- severity: critical
-- description: the parser of V9 with its fallback yields a period for every preferredTime in the table, or the backfill would leave rows without one (here rather than in V9, whose transaction holds SHARE ROW EXCLUSIVE on reservations from CREATE TRIGGER until it commits: a scan of the table there blocked writers for 0.6 s). The strict parser runs once per distinct text and the whole parser only on rows it does not read: phasegate_parse_period is the strict parse, else the createdAt fallback (V9), so the result is the same as calling it on every row, at a seventh of the cost on 100k rows
SELECT DISTINCT r."preferredTime"
FROM reservations r
LEFT JOIN (SELECT t, phasegate_parse_period_strict(t) AS strict
           FROM (SELECT DISTINCT "preferredTime" AS t FROM reservations) AS texts) AS p ON p.t = r."preferredTime"
WHERE coalesce(p.strict, phasegate_parse_period(r."preferredTime", r."createdAt")) IS NULL;

-- check: unmigrated_percent
-- metric: percent
-- proceed: = 0
-- review: <= 1
-- description: share of reservations without serviceId (0 proceed, up to 1 manual review, more rollback); NULL, shown as no rows, when there are no reservations
SELECT 100.0 * count(*) FILTER (WHERE "serviceId" IS NULL) / NULLIF(count(*), 0)
FROM reservations;

-- check: service_mapping_matches
-- severity: critical
-- description: serviceId points at the services row whose code is the old enum value
SELECT r.id, r.service::text AS old_code, s.code AS new_code
FROM reservations r
JOIN services s ON s.id = r."serviceId"
WHERE r.service::text <> s.code;

-- check: period_distribution_max_percent
-- metric: percent
-- proceed: < 95
-- description: share of the most common period; 95 or more means the parser is clearly wrong; NULL, shown as no rows, when no reservation has a period
SELECT max(share)
FROM (
  SELECT 100.0 * count(*) / sum(count(*)) OVER () AS share
  FROM reservations
  WHERE period IS NOT NULL
  GROUP BY period
) AS shares;

-- check: estimated_duration_matches
-- severity: warning
-- description: estimatedDuration equals durationMinutes plus bufferMinutes of the service
SELECT r.id, s.code, r."estimatedDuration", s."durationMinutes" + s."bufferMinutes" AS expected
FROM reservations r
JOIN services s ON s.id = r."serviceId"
WHERE r."estimatedDuration" IS DISTINCT FROM s."durationMinutes" + s."bufferMinutes";

-- check: service_name_matches
-- severity: warning
-- description: serviceName equals the name of the service
SELECT r.id, s.code, r."serviceName", s.name AS expected
FROM reservations r
JOIN services s ON s.id = r."serviceId"
WHERE r."serviceName" IS DISTINCT FROM s.name;

-- check: old_columns_intact
-- severity: critical
-- description: service and preferredTime are set on every row (the backfill only reads them)
SELECT id, service, "preferredTime"
FROM reservations
WHERE service IS NULL OR "preferredTime" IS NULL;

-- check: every_time_format_classified
-- severity: critical
-- description: no backfilled row is left without a period
SELECT id, "preferredTime", "createdAt"
FROM reservations
WHERE period IS NULL;

-- check: same_time_text_one_period
-- severity: critical
-- description: a recognised preferredTime text always maps to the same period (the texts are grouped first and the strict parser runs once per text that maps to two periods, not once per row: MATERIALIZED keeps PostgreSQL from pushing the filter on the grouping column below the grouping)
WITH texts AS MATERIALIZED (
  SELECT "preferredTime", count(DISTINCT period) AS periods, min(period) AS first, max(period) AS second
  FROM reservations
  GROUP BY "preferredTime"
  HAVING count(DISTINCT period) > 1
)
SELECT "preferredTime", periods, first, second
FROM texts
WHERE phasegate_parse_period_strict("preferredTime") IS NOT NULL;

-- check: fallback_period_percent
-- metric: percent
-- proceed: <= 15
-- review: <= 30
-- description: share of rows whose period came from the createdAt fallback (blank or unrecognised preferredTime); staff should confirm these; NULL, shown as no rows, when there are no reservations (the strict parser runs once per distinct text, not once per row: 1.2-1.4 s less on 100k rows)
SELECT 100.0 * coalesce(sum(n) FILTER (WHERE phasegate_parse_period_strict(t) IS NULL), 0)::bigint / NULLIF(sum(n)::bigint, 0)
FROM (SELECT "preferredTime" AS t, count(*) AS n FROM reservations GROUP BY "preferredTime") AS texts;

-- check: old_columns_intact_before_rollback
-- when: before-rollback
-- severity: critical
-- description: service and preferredTime are set on every row; if not, old data was lost and this needs a restore from backup, not a rollback (nothing is changed)
SELECT id, service, "preferredTime"
FROM reservations
WHERE service IS NULL OR "preferredTime" IS NULL;

-- check: new_columns_reset
-- when: after-rollback
-- severity: critical
-- description: serviceId, serviceName, estimatedDuration and period are NULL again on every row the backfill could have filled; rows the application inserts while the rollback runs are filled by V9's sync trigger, which is still in place, so only rows created more than a second before the rollback began (phasegate.step_started_at; a margin for inserts still committing then) are checked, however long the rollback took
SELECT id, "serviceId", "serviceName", "estimatedDuration", period
FROM reservations
WHERE "createdAt" < coalesce(nullif(current_setting('phasegate.step_started_at', true), '')::timestamptz, now()) - interval '1 second'
  AND ("serviceId" IS NOT NULL
   OR "serviceName" IS NOT NULL
   OR "estimatedDuration" IS NOT NULL
   OR period IS NOT NULL);

-- check: old_columns_intact_after_rollback
-- when: after-rollback
-- severity: critical
-- description: service and preferredTime are still set on every row
SELECT id, service, "preferredTime"
FROM reservations
WHERE service IS NULL OR "preferredTime" IS NULL;
