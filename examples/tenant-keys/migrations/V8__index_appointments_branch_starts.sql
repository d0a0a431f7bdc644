-- phasegate: no-transaction
-- Phase 3: a branch's upcoming appointments (the dashboard RPC of V9).
-- Built CONCURRENTLY.
CREATE INDEX CONCURRENTLY IF NOT EXISTS appointments_branch_id_starts_at_idx
  ON appointments (branch_id, starts_at);
