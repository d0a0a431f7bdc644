-- Undo V4: a validated constraint cannot be marked NOT VALID again, so it is
-- replaced by the same constraint added NOT VALID (the state after V3).
-- Nothing is scanned; ACCESS EXCLUSIVE on api_keys for milliseconds.
ALTER TABLE api_keys
  DROP CONSTRAINT api_keys_scope_check,
  DROP CONSTRAINT api_keys_branch_fkey,
  ADD CONSTRAINT api_keys_branch_fkey
    FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, id) NOT VALID,
  ADD CONSTRAINT api_keys_scope_check
    CHECK (scope IN ('tenant', 'branch') AND (scope = 'branch') = (branch_id IS NOT NULL)) NOT VALID;
