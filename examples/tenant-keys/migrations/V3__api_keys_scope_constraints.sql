-- Phase 1: a branch-scoped key's branch must belong to the key's own tenant
-- (composite foreign key onto branches (tenant_id, id)), and scope says
-- 'branch' exactly when branch_id is set. Added NOT VALID: no scan of
-- existing rows, only new and updated rows are checked, so the SHARE ROW
-- EXCLUSIVE locks on api_keys and branches last milliseconds. V4 validates
-- them in a transaction of its own. No ON DELETE action: a branch cannot be
-- deleted while keys are scoped to it.
ALTER TABLE api_keys
  ADD CONSTRAINT api_keys_branch_fkey
    FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, id) NOT VALID,
  ADD CONSTRAINT api_keys_scope_check
    CHECK (scope IN ('tenant', 'branch') AND (scope = 'branch') = (branch_id IS NOT NULL)) NOT VALID;
