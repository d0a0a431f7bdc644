-- Nullable columns: no rewrite, no long lock; the running application ignores them.
ALTER TABLE users ADD COLUMN given_name text, ADD COLUMN family_name text;
