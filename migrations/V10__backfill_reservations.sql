-- phasegate: batch 150ms
-- Phase 2 (data): fill "serviceId", "serviceName", "estimatedDuration" and
-- period for every row that does not have them yet (rows written since V9
-- are already filled by the sync trigger), with the same parser the trigger
-- uses. Old columns are only read, never written.
-- Safe under live traffic: phasegate runs this UPDATE in batches of
-- :batch_size rows, one short transaction each, each batch sized so it
-- takes about 150 ms (from the last batches' times), walking the primary key
-- (:last_key is the largest id the previous batch returned), so concurrent
-- writers wait for at most one batch's row locks. Each batch records its
-- progress: a crash or Ctrl-C resumes after the last committed batch. Rows
-- inserted meanwhile are filled by the sync trigger and never selected here,
-- so the backfill ends even under steady inserts.
-- The batch's ids go to the UPDATE as an array (`= ANY (ARRAY(...))`), so it
-- finds its rows through the primary key: with `id IN (SELECT ...)` the
-- planner hash-joins the batch against a scan of the whole table, in every
-- batch (on 1M rows, half the speed of one UPDATE).
UPDATE reservations r
SET "serviceId"         = s.id,
    "serviceName"       = s.name,
    "estimatedDuration" = s."durationMinutes" + s."bufferMinutes",
    period              = phasegate_parse_period(r."preferredTime", r."createdAt")
FROM services s
WHERE r.id = ANY (ARRAY(
        SELECT id FROM reservations
        WHERE (:last_key IS NULL OR id > :last_key)
          AND "serviceId" IS NULL
        ORDER BY id
        LIMIT :batch_size))
  AND s.code = r.service::text
RETURNING r.id;
