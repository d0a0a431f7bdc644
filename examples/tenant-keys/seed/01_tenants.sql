-- Rehearsal data for the tenant API keys set: runs after phase 0, in
-- rehearsals only. Deterministic: every id and value derives from the row
-- numbers through md5() and hashtext(), so a rerun produces identical rows.
-- Size: SET phasegate.seed_rows = '20000' (tenants; default 3000).
--
-- Per tenant: 1-4 branches, 1-3 API keys, 0-20 leads, 0-10 appointments.
-- About 19% of tenants asked for branch-only keys: their first key (and
-- half of their other keys) carries a `branch_id` hint in its metadata, in
-- the shapes integrators actually typed:
--   80% the branch's uuid as stored          8% upper case
--    5% with surrounding spaces               4% a branch of another tenant
--    3% not a uuid ("main", "branch-2")
-- Other keys have no hint, an empty object, or {"branch_id": null}.

CREATE TEMP TABLE seed_tenants ON COMMIT DROP AS
SELECT i,
       md5('tenant:' || i)::uuid                          AS id,
       1 + (hashtext('branches:' || i)::bigint + 2147483648) % 4 AS branches,
       1 + (hashtext('keys:' || i)::bigint + 2147483648) % 3     AS keys,
       (hashtext('scoped:' || i)::bigint + 2147483648) % 100 < 19 AS scoped,
       (hashtext('leads:' || i)::bigint + 2147483648) % 21       AS leads,
       (hashtext('appts:' || i)::bigint + 2147483648) % 11       AS appointments
FROM generate_series(1, coalesce(nullif(current_setting('phasegate.seed_rows', true), '')::integer, 3000)) AS i;

INSERT INTO tenants (id, slug, name, plan, created_at)
SELECT t.id,
       'tenant-' || t.i,
       (ARRAY['Clínica', 'Dental', 'Estética', 'Spa', 'Fisio', 'Derma', 'Vet', 'Óptica'])[1 + (hashtext('kind:' || t.i)::bigint + 2147483648) % 8]
         || ' ' || (ARRAY['Norte', 'Sur', 'Centro', 'Roma', 'Condesa', 'Polanco', 'Del Valle', 'Satélite', 'Zapopan', 'Cumbres'])[1 + (hashtext('area:' || t.i)::bigint + 2147483648) % 10]
         || ' ' || t.i,
       CASE WHEN (hashtext('plan:' || t.i)::bigint + 2147483648) % 100 < 60 THEN 'starter'
            WHEN (hashtext('plan:' || t.i)::bigint + 2147483648) % 100 < 90 THEN 'growth'
            ELSE 'enterprise' END,
       timestamptz '2023-01-01 00:00:00+00' + make_interval(mins => ((hashtext('tcreated:' || t.i)::bigint + 2147483648) % 1000000)::integer)
FROM seed_tenants t
ORDER BY t.i;

INSERT INTO branches (id, tenant_id, name, city, is_active, created_at)
SELECT md5('branch:' || t.i || ':' || j)::uuid,
       t.id,
       CASE WHEN j = 1 THEN 'Matriz' ELSE 'Sucursal ' || j END,
       (ARRAY['CDMX', 'Guadalajara', 'Monterrey', 'Puebla', 'Querétaro', 'Mérida', NULL])[1 + (hashtext('city:' || t.i || ':' || j)::bigint + 2147483648) % 7],
       (hashtext('active:' || t.i || ':' || j)::bigint + 2147483648) % 100 < 95,
       timestamptz '2023-06-01 00:00:00+00' + make_interval(mins => ((hashtext('bcreated:' || t.i || ':' || j)::bigint + 2147483648) % 500000)::integer)
FROM seed_tenants t
CROSS JOIN LATERAL generate_series(1, t.branches::integer) AS j
ORDER BY t.i, j;

INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash, permissions, metadata, created_at, last_used_at, revoked_at)
SELECT md5('key:' || t.i || ':' || j)::uuid,
       t.id,
       (ARRAY['Website form', 'CRM sync', 'Zapier', 'Mobile app', 'Call center', 'Reporting'])[1 + (h.name % 6)],
       'tis_live_' || substr(md5('secret:' || t.i || ':' || j), 1, 8),
       encode(sha256(convert_to('tis_live_' || md5('secret:' || t.i || ':' || j), 'UTF8')), 'hex'),
       CASE h.perm % 4
         WHEN 0 THEN ARRAY['leads:read']
         WHEN 1 THEN ARRAY['leads:read', 'leads:write']
         WHEN 2 THEN ARRAY['leads:read', 'appointments:read']
         ELSE ARRAY['leads:read', 'leads:write', 'appointments:read', 'appointments:write']
       END,
       CASE
         WHEN t.scoped AND (j = 1 OR h.hinted % 2 = 0) THEN
           jsonb_build_object(
             'branch_id',
             CASE
               WHEN h.shape % 100 < 80 THEN b.id::text
               WHEN h.shape % 100 < 88 THEN upper(b.id::text)
               WHEN h.shape % 100 < 93 THEN '  ' || b.id::text || ' '
               WHEN h.shape % 100 < 97 THEN md5('branch:' || (t.i % 3000 + 1) || ':1')::uuid::text
               ELSE (ARRAY['main', 'branch-2', 'Sucursal Norte'])[1 + h.shape % 3]
             END,
             'requested_by', 'support')
         WHEN h.meta % 10 < 6 THEN '{}'::jsonb
         WHEN h.meta % 10 < 8 THEN jsonb_build_object('env', 'production')
         ELSE jsonb_build_object('branch_id', NULL)
       END,
       c.created_at,
       CASE WHEN h.used % 10 < 8 THEN c.created_at + make_interval(hours => (h.used % 5000)::integer) END,
       CASE WHEN h.revoked % 100 < 5 THEN c.created_at + make_interval(days => (1 + h.revoked % 300)::integer) END
FROM seed_tenants t
CROSS JOIN LATERAL generate_series(1, t.keys::integer) AS j
CROSS JOIN LATERAL (
  SELECT hashtext('kname:' || t.i || ':' || j)::bigint + 2147483648   AS name,
         hashtext('perm:' || t.i || ':' || j)::bigint + 2147483648    AS perm,
         hashtext('hinted:' || t.i || ':' || j)::bigint + 2147483648  AS hinted,
         hashtext('shape:' || t.i || ':' || j)::bigint + 2147483648   AS shape,
         hashtext('meta:' || t.i || ':' || j)::bigint + 2147483648    AS meta,
         hashtext('used:' || t.i || ':' || j)::bigint + 2147483648    AS used,
         hashtext('revoked:' || t.i || ':' || j)::bigint + 2147483648 AS revoked,
         hashtext('kbranch:' || t.i || ':' || j)::bigint + 2147483648 AS branch
) AS h
CROSS JOIN LATERAL (
  SELECT md5('branch:' || t.i || ':' || (1 + h.branch % t.branches))::uuid AS id
) AS b
CROSS JOIN LATERAL (
  SELECT timestamptz '2024-01-01 00:00:00+00' + make_interval(mins => ((hashtext('kcreated:' || t.i || ':' || j)::bigint + 2147483648) % 700000)::integer) AS created_at
) AS c
ORDER BY t.i, j;

INSERT INTO leads (tenant_id, branch_id, full_name, phone, email, source, status, created_at)
SELECT t.id,
       CASE WHEN h.branch % 10 < 8 THEN md5('branch:' || t.i || ':' || (1 + h.branch % t.branches))::uuid END,
       (ARRAY['María', 'José', 'Guadalupe', 'Juan', 'Fernanda', 'Luis', 'Sofía', 'Carlos', 'Valeria', 'Miguel'])[1 + h.first % 10]
         || ' ' || (ARRAY['García', 'Hernández', 'López', 'Martínez', 'González', 'Pérez', 'Rodríguez', 'Sánchez'])[1 + h.last % 8],
       CASE WHEN h.contact % 10 < 9 THEN '+52 55 ' || lpad((h.contact % 100000000)::text, 8, '0') END,
       CASE WHEN h.contact % 10 < 6 THEN 'lead' || t.i || '.' || n || '@example.com' END,
       (ARRAY['api', 'api', 'api', 'website', 'whatsapp', 'referral'])[1 + h.source % 6],
       (ARRAY['new', 'new', 'contacted', 'qualified', 'converted', 'lost'])[1 + h.status % 6],
       timestamptz '2025-01-01 00:00:00+00' + make_interval(mins => (h.created % 800000)::integer)
FROM seed_tenants t
CROSS JOIN LATERAL generate_series(1, t.leads::integer) AS n
CROSS JOIN LATERAL (
  SELECT hashtext('lbranch:' || t.i || ':' || n)::bigint + 2147483648  AS branch,
         hashtext('lfirst:' || t.i || ':' || n)::bigint + 2147483648   AS first,
         hashtext('llast:' || t.i || ':' || n)::bigint + 2147483648    AS last,
         hashtext('lcontact:' || t.i || ':' || n)::bigint + 2147483648 AS contact,
         hashtext('lsource:' || t.i || ':' || n)::bigint + 2147483648  AS source,
         hashtext('lstatus:' || t.i || ':' || n)::bigint + 2147483648  AS status,
         hashtext('lcreated:' || t.i || ':' || n)::bigint + 2147483648 AS created
) AS h
ORDER BY t.i, n;

INSERT INTO appointments (tenant_id, branch_id, lead_id, starts_at, duration_minutes, status, created_at)
SELECT t.id,
       md5('branch:' || t.i || ':' || (1 + h.branch % t.branches))::uuid,
       NULL,
       timestamptz '2026-01-05 15:00:00+00' + make_interval(days => (h.day % 400)::integer, mins => 30 * (h.slot % 18)::integer),
       (ARRAY[30, 30, 45, 60, 90])[1 + h.duration % 5],
       (ARRAY['scheduled', 'confirmed', 'completed', 'completed', 'cancelled', 'no_show'])[1 + h.status % 6],
       timestamptz '2025-12-01 00:00:00+00' + make_interval(mins => (h.created % 100000)::integer)
FROM seed_tenants t
CROSS JOIN LATERAL generate_series(1, t.appointments::integer) AS n
CROSS JOIN LATERAL (
  SELECT hashtext('abranch:' || t.i || ':' || n)::bigint + 2147483648   AS branch,
         hashtext('aday:' || t.i || ':' || n)::bigint + 2147483648      AS day,
         hashtext('aslot:' || t.i || ':' || n)::bigint + 2147483648     AS slot,
         hashtext('aduration:' || t.i || ':' || n)::bigint + 2147483648 AS duration,
         hashtext('astatus:' || t.i || ':' || n)::bigint + 2147483648   AS status,
         hashtext('acreated:' || t.i || ':' || n)::bigint + 2147483648  AS created
) AS h
ORDER BY t.i, n;

ANALYZE tenants, branches, api_keys, leads, appointments;
