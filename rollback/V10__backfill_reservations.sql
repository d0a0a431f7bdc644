-- phasegate: batch 150ms
-- Undo V10: reset the new columns to NULL on every row (the state before the
-- backfill); service and "preferredTime" are not touched. The sync trigger
-- of V9 is still in place but re-derives only when service or
-- "preferredTime" change, which they do not here. The before-rollback check
-- old_columns_intact_before_rollback stops it first if an old column has
-- lost data (that needs a restore from backup, not a rollback).
-- Safe under live traffic: phasegate runs this UPDATE in batches of
-- :batch_size rows, one short transaction each, walking the primary key
-- (:last_key is the largest id the previous batch returned; a batch is the
-- range of ids up to where the next :batch_size rows to reset end), and backs each
-- batch's rows up in that batch's transaction, so writers wait for at most
-- one batch; a crash or Ctrl-C resumes after the last committed batch.
UPDATE reservations
SET "serviceId" = NULL,
    "serviceName" = NULL,
    "estimatedDuration" = NULL,
    period = NULL
WHERE (:last_key IS NULL OR id > :last_key)
  AND id <= (SELECT max(id) FROM (
        SELECT id FROM reservations
        WHERE (:last_key IS NULL OR id > :last_key)
          AND ("serviceId" IS NOT NULL
            OR "serviceName" IS NOT NULL
            OR "estimatedDuration" IS NOT NULL
            OR period IS NOT NULL)
        ORDER BY id
        LIMIT :batch_size) batch)
  AND ("serviceId" IS NOT NULL
    OR "serviceName" IS NOT NULL
    OR "estimatedDuration" IS NOT NULL
    OR period IS NOT NULL)
RETURNING id;
