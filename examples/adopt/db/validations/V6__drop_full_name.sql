-- check: every_user_is_named_before_the_drop
-- when: before-migrate
-- description: users whose name would exist nowhere once full_name is dropped
SELECT id FROM users WHERE given_name IS NULL;

-- check: full_name_gone
SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'users' AND column_name = 'full_name';
