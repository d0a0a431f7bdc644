-- check: every_user_is_named_before_the_drop
-- when: before-migrate
SELECT id FROM users WHERE given_name IS NULL;

-- check: full_name_gone
SELECT column_name FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'full_name';
