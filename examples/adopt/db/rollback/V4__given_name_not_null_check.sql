-- Undo V4: drop the helper check (catalog-only).
ALTER TABLE users DROP CONSTRAINT users_given_name_not_null;
