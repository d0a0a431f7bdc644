-- Undo V2: drop the two columns. phasegate backs up any branch_id set since
-- (restore --run ID puts it back once the columns exist again).
ALTER TABLE api_keys
  DROP COLUMN scope,
  DROP COLUMN branch_id;
