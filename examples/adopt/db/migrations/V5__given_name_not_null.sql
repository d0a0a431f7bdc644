-- given_name NOT NULL the way that keeps the table readable and writable:
-- VALIDATE reads the table once under SHARE UPDATE EXCLUSIVE (reads and
-- writes go on); SET NOT NULL then takes V4's validated check as proof
-- (PostgreSQL 12+) and skips its own scan, so its ACCESS EXCLUSIVE lock lasts
-- only for the catalog change; the helper check is then dropped.
ALTER TABLE users VALIDATE CONSTRAINT users_given_name_not_null;

ALTER TABLE users ALTER COLUMN given_name SET NOT NULL;

ALTER TABLE users DROP CONSTRAINT users_given_name_not_null;
