-- Cleanup: every user has a given name (V5 made it NOT NULL) and the
-- application reads given_name and family_name only; full_name goes.
ALTER TABLE users DROP COLUMN full_name;
