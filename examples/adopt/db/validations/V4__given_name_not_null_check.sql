-- check: helper_check_added_not_valid
-- severity: critical
-- description: the helper check exists and is not validated yet, unless V5 already used it to make given_name NOT NULL and dropped it
SELECT 'users_given_name_not_null' AS missing_or_validated
WHERE NOT EXISTS (
  SELECT 1 FROM pg_constraint
  WHERE conrelid = 'users'::regclass AND conname = 'users_given_name_not_null' AND NOT convalidated)
  AND EXISTS (
  SELECT 1 FROM pg_attribute
  WHERE attrelid = 'users'::regclass AND attname = 'given_name' AND NOT attisdropped AND NOT attnotnull);

-- check: helper_check_gone
-- when: after-rollback
-- description: the helper check is dropped again
SELECT conname FROM pg_constraint WHERE conrelid = 'users'::regclass AND conname = 'users_given_name_not_null';
