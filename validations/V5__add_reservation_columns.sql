-- check: new_columns_nullable
-- severity: critical
-- description: serviceId, serviceName, estimatedDuration and period exist and are nullable
SELECT c.column_name, ic.is_nullable
FROM unnest(ARRAY['serviceId', 'serviceName', 'estimatedDuration', 'period']) AS c(column_name)
LEFT JOIN information_schema.columns ic
  ON ic.table_schema = current_schema()
 AND ic.table_name = 'reservations'
 AND ic.column_name = c.column_name
WHERE ic.column_name IS NULL OR ic.is_nullable <> 'YES';

-- check: new_constraints_added
-- severity: critical
-- description: the foreign key and the period check exist (that they were added NOT VALID is V6's precondition: V6 validates them, so `validate` after phase 1 finds them validated)
SELECT n.conname
FROM unnest(ARRAY['reservations_serviceId_fkey', 'reservations_period_check']) AS n(conname)
LEFT JOIN pg_constraint c
  ON c.conname = n.conname
 AND c.conrelid = 'reservations'::regclass
WHERE c.oid IS NULL;

-- check: new_columns_dropped
-- when: after-rollback
-- description: the four new columns are gone from reservations
SELECT column_name AS still_exists
FROM information_schema.columns
WHERE table_schema = current_schema()
  AND table_name = 'reservations'
  AND column_name IN ('serviceId', 'serviceName', 'estimatedDuration', 'period');

-- check: new_constraints_dropped
-- when: after-rollback
-- description: the foreign key and the period check are gone
SELECT conname AS still_exists
FROM pg_constraint
WHERE conrelid = 'reservations'::regclass
  AND conname IN ('reservations_serviceId_fkey', 'reservations_period_check');

-- check: old_columns_intact_after_rollback
-- when: after-rollback
-- description: service and preferredTime are still set on every row
SELECT id, service, "preferredTime"
FROM reservations
WHERE service IS NULL OR "preferredTime" IS NULL;
