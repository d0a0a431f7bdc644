-- What the API before branch-scoped keys runs (docs/probes.md), for tenant 1
-- of the seed (tenant-1) and its first key and branch: it authenticates a key
-- by its hash, reads the branch hint of its metadata as a default filter,
-- lists and writes leads and appointments, and issues tenant-wide keys. The
-- set only adds, so phases.toml says it must work after every phase.
SELECT id, tenant_id, permissions, metadata ->> 'branch_id' AS branch_hint
FROM api_keys
WHERE key_hash = '757835ea3b5205860f1b16e5bfbbeaee559df6d36636110ca3747cc38cb5287b' AND revoked_at IS NULL;
UPDATE api_keys SET last_used_at = '2026-12-01 10:00:00+00' WHERE id = '460c9c1c-6861-b288-02ab-e74876442f94';
SELECT id, full_name, phone, status, created_at
FROM leads
WHERE tenant_id = '40a6d137-32a4-de23-af98-3ddcfa762bef' AND branch_id = 'b9f71568-926a-28c0-dd35-f0d4eafc5c96'
ORDER BY created_at DESC
LIMIT 50;
INSERT INTO leads (tenant_id, branch_id, full_name, phone, email, source)
VALUES ('40a6d137-32a4-de23-af98-3ddcfa762bef', 'b9f71568-926a-28c0-dd35-f0d4eafc5c96', 'María López', '+52 55 12345678', 'maria.lopez@example.com', 'api');
INSERT INTO appointments (tenant_id, branch_id, lead_id, starts_at)
SELECT tenant_id, branch_id, id, '2027-01-15 16:00:00+00' FROM leads WHERE email = 'maria.lopez@example.com';
INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash, permissions, metadata)
VALUES ('00000000-0000-4000-8000-000000000001', '40a6d137-32a4-de23-af98-3ddcfa762bef', 'Website form', 'tis_live_probe001', 'probe-tenant-wide-key-hash',
        '{leads:read,leads:write}', '{"branch_id": "b9f71568-926a-28c0-dd35-f0d4eafc5c96"}');
UPDATE api_keys SET revoked_at = '2026-12-01 10:05:00+00' WHERE id = '00000000-0000-4000-8000-000000000001';
