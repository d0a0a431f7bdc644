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

-- check: helper_check_dropped
-- severity: critical
-- description: the helper constraint used to prove NOT NULL is gone
SELECT conname
FROM pg_constraint
WHERE conrelid = 'reservations'::regclass
  AND conname = 'reservations_new_columns_not_null';

-- check: new_columns_nullable_again
-- when: after-rollback
-- description: the four new columns accept NULL again
SELECT c.column_name, ic.is_nullable
FROM unnest(ARRAY['serviceId', 'serviceName', 'estimatedDuration', 'period']) AS c(column_name)
LEFT JOIN information_schema.columns ic
  ON ic.table_schema = current_schema()
 AND ic.table_name = 'reservations'
 AND ic.column_name = c.column_name
WHERE ic.column_name IS NULL OR ic.is_nullable <> 'YES';
