-- Undo V3: drop both constraints (ACCESS EXCLUSIVE for milliseconds).
ALTER TABLE api_keys
  DROP CONSTRAINT api_keys_scope_check,
  DROP CONSTRAINT api_keys_branch_fkey;
