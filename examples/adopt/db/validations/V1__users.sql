-- check: users_table_exists
SELECT 1 WHERE to_regclass('users') IS NULL;
