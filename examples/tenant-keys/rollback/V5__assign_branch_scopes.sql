-- phasegate: batch 1000
-- Undo V5: every branch-scoped key becomes tenant-wide again (it can see all
-- branches of its tenant, as before phase 2). The metadata hint is not
-- touched, so re-applying V5 scopes the same keys again; keys the new
-- application scoped without a hint are only recoverable from the backup
-- phasegate takes of every key this changes (cargo xtask restore --run ID).
-- The before-rollback checks count the keys and tenants affected: every one
-- of those tenants must be told (see the rollback report's checklist).
-- Safe under live traffic: batches of :batch_size keys walking the primary
-- key, one short transaction each, each batch's keys backed up in it.
UPDATE api_keys
SET branch_id = NULL,
    scope = 'tenant'
WHERE id = ANY (ARRAY(
        SELECT id FROM api_keys
        WHERE (:last_key IS NULL OR id > :last_key)
          AND (scope <> 'tenant' OR branch_id IS NOT NULL)
        ORDER BY id
        LIMIT :batch_size))
RETURNING id;
