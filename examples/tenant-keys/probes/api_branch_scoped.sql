-- What the API with branch-scoped keys runs (docs/probes.md), for tenant 1
-- of the seed and its first branch: it reads a key's scope and branch, the
-- dashboard RPC and the reporting view of phase 3, and issues and widens a
-- branch-scoped key. phases.toml says it must work from phase 3 on (before
-- it, get_branch_dashboard and tenant_api_key_scopes do not exist).
SELECT id, tenant_id, scope, branch_id, permissions
FROM api_keys
WHERE key_hash = '757835ea3b5205860f1b16e5bfbbeaee559df6d36636110ca3747cc38cb5287b' AND revoked_at IS NULL;
SELECT * FROM get_branch_dashboard('40a6d137-32a4-de23-af98-3ddcfa762bef', 'b9f71568-926a-28c0-dd35-f0d4eafc5c96');
SELECT * FROM get_branch_dashboard('40a6d137-32a4-de23-af98-3ddcfa762bef');
SELECT keys_total, keys_active, keys_branch_scoped, branches_with_keys FROM tenant_api_key_scopes WHERE tenant_id = '40a6d137-32a4-de23-af98-3ddcfa762bef';
SELECT id, full_name, status, created_at
FROM leads
WHERE tenant_id = '40a6d137-32a4-de23-af98-3ddcfa762bef' AND branch_id = 'b9f71568-926a-28c0-dd35-f0d4eafc5c96'
ORDER BY created_at DESC
LIMIT 50;
INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash, permissions, branch_id, scope)
VALUES ('00000000-0000-4000-8000-000000000002', '40a6d137-32a4-de23-af98-3ddcfa762bef', 'Branch CRM sync', 'tis_live_probe002', 'probe-branch-scoped-key-hash',
        '{leads:read}', 'b9f71568-926a-28c0-dd35-f0d4eafc5c96', 'branch');
UPDATE api_keys SET scope = 'tenant', branch_id = NULL WHERE id = '00000000-0000-4000-8000-000000000002';
