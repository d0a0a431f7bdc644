-- check: dashboard_matches_direct_counts
-- severity: critical
-- description: for a sample of tenants, the RPC returns the same counts as direct queries
WITH sample AS (
  SELECT id FROM tenants ORDER BY id LIMIT 50
)
SELECT d.branch_id, d.leads_total, direct.leads_total AS expected
FROM sample s
CROSS JOIN LATERAL get_branch_dashboard(s.id) AS d
JOIN LATERAL (
  SELECT count(*) AS leads_total FROM leads l WHERE l.tenant_id = s.id AND l.branch_id = d.branch_id
) AS direct ON true
WHERE d.leads_total <> direct.leads_total;

-- check: dashboard_one_row_per_branch
-- severity: critical
-- description: a tenant-wide call returns each of the tenant's branches once
WITH sample AS (
  SELECT id FROM tenants ORDER BY id LIMIT 50
)
SELECT s.id AS tenant_id, count(d.branch_id) AS rows, (SELECT count(*) FROM branches b WHERE b.tenant_id = s.id) AS branches
FROM sample s
LEFT JOIN LATERAL get_branch_dashboard(s.id) AS d ON true
GROUP BY s.id
HAVING count(d.branch_id) <> (SELECT count(*) FROM branches b WHERE b.tenant_id = s.id);

-- check: function_dropped
-- when: after-rollback
-- severity: critical
-- description: the RPC function is gone
SELECT 'get_branch_dashboard(uuid, uuid)' AS still_exists
WHERE to_regprocedure('get_branch_dashboard(uuid, uuid)') IS NOT NULL;
