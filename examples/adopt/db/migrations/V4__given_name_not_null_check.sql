-- A CHECK that given_name is set, added NOT VALID: catalog-only, it reads no
-- rows, and from now on every insert and update must satisfy it (the
-- application writes given_name since phase 2). V5 validates it in a
-- transaction of its own and uses it to make the column NOT NULL without a scan.
ALTER TABLE users
  ADD CONSTRAINT users_given_name_not_null CHECK (given_name IS NOT NULL) NOT VALID;
