-- check: helper_check_added_not_valid
-- severity: critical
-- description: the helper check exists and is not validated yet (V12 validates it)
SELECT 'reservations_new_columns_not_null' AS missing_or_validated
WHERE NOT EXISTS (
  SELECT 1 FROM pg_constraint
  WHERE conrelid = 'reservations'::regclass
    AND conname = 'reservations_new_columns_not_null'
    AND NOT convalidated);

-- check: helper_check_gone
-- when: after-rollback
-- description: the helper check is dropped again
SELECT conname FROM pg_constraint
WHERE conrelid = 'reservations'::regclass AND conname = 'reservations_new_columns_not_null';
