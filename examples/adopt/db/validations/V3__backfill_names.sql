-- check: unnamed_percent
-- metric: percent
-- proceed: = 0
-- review: <= 1
-- description: share of users without a given name; NULL (no rows) when there are no users
SELECT 100.0 * count(*) FILTER (WHERE given_name IS NULL) / NULLIF(count(*), 0) FROM users;

-- check: names_rebuild_full_name
-- description: given and family name put back together give the full name
SELECT id, full_name, given_name, family_name FROM users
WHERE concat_ws(' ', given_name, family_name) <> full_name;

-- check: names_reset
-- when: after-rollback
SELECT id FROM users WHERE given_name IS NOT NULL OR family_name IS NOT NULL;
