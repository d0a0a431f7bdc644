-- check: name_columns_nullable
SELECT column_name FROM information_schema.columns
WHERE table_name = 'users' AND column_name IN ('given_name', 'family_name') AND is_nullable = 'NO';

-- check: name_columns_gone
-- when: after-rollback
SELECT column_name FROM information_schema.columns
WHERE table_name = 'users' AND column_name IN ('given_name', 'family_name');
