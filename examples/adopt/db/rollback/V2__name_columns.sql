ALTER TABLE users DROP COLUMN given_name, DROP COLUMN family_name;
