-- Phase 3: the RPC the branch-scoped API calls (POST /rpc/get_branch_dashboard):
-- per branch of a tenant, leads in total and in the last 30 days, and
-- upcoming appointments. One round trip instead of three queries per branch;
-- a branch-scoped key passes its branch, a tenant-wide key NULL for all.
-- STABLE, SECURITY INVOKER: row-level security of the caller still applies.
-- Creating a function takes no lock on the tables.
CREATE FUNCTION get_branch_dashboard(p_tenant_id uuid, p_branch_id uuid DEFAULT NULL)
RETURNS TABLE (
  branch_id uuid,
  branch_name text,
  leads_total bigint,
  leads_last_30_days bigint,
  appointments_upcoming bigint
)
LANGUAGE sql STABLE
AS $$
  SELECT b.id,
         b.name,
         (SELECT count(*) FROM leads l
           WHERE l.tenant_id = b.tenant_id AND l.branch_id = b.id),
         (SELECT count(*) FROM leads l
           WHERE l.tenant_id = b.tenant_id AND l.branch_id = b.id
             AND l.created_at >= now() - interval '30 days'),
         (SELECT count(*) FROM appointments a
           WHERE a.branch_id = b.id AND a.starts_at >= now()
             AND a.status IN ('scheduled', 'confirmed'))
  FROM branches b
  WHERE b.tenant_id = p_tenant_id
    AND (p_branch_id IS NULL OR b.id = p_branch_id)
  ORDER BY b.name, b.id
$$;
