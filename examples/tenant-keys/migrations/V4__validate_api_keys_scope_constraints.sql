-- Phase 1: validate the constraints V3 added NOT VALID. VALIDATE CONSTRAINT
-- takes SHARE UPDATE EXCLUSIVE on api_keys (reads and writes continue) and
-- ROW SHARE on branches while it scans the existing keys.
ALTER TABLE api_keys VALIDATE CONSTRAINT api_keys_branch_fkey;
ALTER TABLE api_keys VALIDATE CONSTRAINT api_keys_scope_check;
