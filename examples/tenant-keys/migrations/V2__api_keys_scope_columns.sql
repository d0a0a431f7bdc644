-- Phase 1 (branch-scoped keys): a key gets an optional branch and a scope.
-- Every existing key stays tenant-wide: scope defaults to 'tenant' and
-- branch_id is NULL. Safe under live traffic: a constant default is stored
-- in the catalog (PostgreSQL 11+), so the table is not rewritten; the
-- ACCESS EXCLUSIVE lock lasts milliseconds (lock_timeout 2s guards the wait).
ALTER TABLE api_keys
  ADD COLUMN branch_id uuid,
  ADD COLUMN scope text NOT NULL DEFAULT 'tenant';
