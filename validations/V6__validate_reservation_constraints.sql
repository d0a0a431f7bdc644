-- check: new_constraints_added_not_valid
-- when: before-migrate
-- severity: critical
-- description: V5 added the foreign key and the period check NOT VALID (no scan under its ACCESS EXCLUSIVE lock); this migration validates them
SELECT n.conname, c.convalidated
FROM unnest(ARRAY['reservations_serviceId_fkey', 'reservations_period_check']) AS n(conname)
LEFT JOIN pg_constraint c
  ON c.conname = n.conname
 AND c.conrelid = 'reservations'::regclass
WHERE c.oid IS NULL OR c.convalidated;

-- check: new_constraints_validated
-- severity: critical
-- description: the foreign key and the period check exist and are validated
SELECT n.conname, c.convalidated
FROM unnest(ARRAY['reservations_serviceId_fkey', 'reservations_period_check']) AS n(conname)
LEFT JOIN pg_constraint c
  ON c.conname = n.conname
 AND c.conrelid = 'reservations'::regclass
WHERE c.oid IS NULL OR NOT c.convalidated;

-- check: constraints_not_valid_again
-- when: after-rollback
-- description: both constraints are back as V5 left them: present, not validated
SELECT n.conname, c.convalidated
FROM unnest(ARRAY['reservations_serviceId_fkey', 'reservations_period_check']) AS n(conname)
LEFT JOIN pg_constraint c
  ON c.conname = n.conname
 AND c.conrelid = 'reservations'::regclass
WHERE c.oid IS NULL OR c.convalidated;

-- check: old_columns_intact
-- severity: critical
-- description: service and preferredTime are set on every row (checked here rather than in V5, whose ALTER TABLE holds ACCESS EXCLUSIVE until its transaction commits: a scan there blocks readers and writers)
SELECT id, service, "preferredTime"
FROM reservations
WHERE service IS NULL OR "preferredTime" IS NULL;
