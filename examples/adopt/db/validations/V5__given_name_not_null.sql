-- check: every_user_is_named
-- when: before-migrate
-- description: users without a given name (VALIDATE would fail on them)
SELECT id FROM users WHERE given_name IS NULL;

-- check: given_name_not_null
-- severity: critical
-- description: given_name is NOT NULL
SELECT attname FROM pg_attribute
WHERE attrelid = 'users'::regclass AND attname = 'given_name' AND NOT attnotnull;

-- check: helper_check_dropped
-- severity: critical
-- description: the helper check used to prove NOT NULL is gone
SELECT conname FROM pg_constraint WHERE conrelid = 'users'::regclass AND conname = 'users_given_name_not_null';

-- check: given_name_nullable_again
-- when: after-rollback
-- description: given_name accepts NULL again
SELECT attname FROM pg_attribute
WHERE attrelid = 'users'::regclass AND attname = 'given_name' AND attnotnull;
