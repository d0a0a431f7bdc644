-- check: helper_check_added_not_valid
-- severity: critical
-- description: the helper check exists and is not validated yet, unless V12 already used it to make the four columns NOT NULL and dropped it (so `validate` after phase 2 passes too)
SELECT 'reservations_new_columns_not_null' AS missing_or_validated
WHERE NOT EXISTS (
  SELECT 1 FROM pg_constraint
  WHERE conrelid = 'reservations'::regclass
    AND conname = 'reservations_new_columns_not_null'
    AND NOT convalidated)
  AND EXISTS (
  SELECT 1 FROM pg_attribute
  WHERE attrelid = 'reservations'::regclass
    AND attname IN ('serviceId', 'serviceName', 'estimatedDuration', 'period')
    AND NOT attisdropped
    AND NOT attnotnull);

-- check: helper_check_gone
-- when: after-rollback
-- description: the helper check is dropped again
SELECT conname FROM pg_constraint
WHERE conrelid = 'reservations'::regclass AND conname = 'reservations_new_columns_not_null';
