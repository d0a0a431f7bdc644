-- Undo V5: given_name nullable again and the helper check back NOT VALID,
-- as V4 left it (both catalog-only, instant).
ALTER TABLE users ALTER COLUMN given_name DROP NOT NULL;

ALTER TABLE users
  ADD CONSTRAINT users_given_name_not_null CHECK (given_name IS NOT NULL) NOT VALID;
