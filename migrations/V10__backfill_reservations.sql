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
-- A batch is a range of the primary key: the subquery finds where the next
-- :batch_size rows still to do end (an index walk from :last_key), and the
-- UPDATE reads that range in key order, one index range scan. Handing it the
-- ids as an array (`= ANY (ARRAY(...))`) probes the index once per id (about
-- 5% slower on 1M rows); `id IN (SELECT ...)` is planned as a hash join
-- against a scan of the whole table, in every batch (half the speed).
UPDATE reservations r
SET "serviceId"         = s.id,
    "serviceName"       = s.name,
    "estimatedDuration" = s."durationMinutes" + s."bufferMinutes",
    period              = phasegate_parse_period(r."preferredTime", r."createdAt")
FROM services s
WHERE (:last_key IS NULL OR r.id > :last_key)
  AND r.id <= (SELECT max(id) FROM (
        SELECT id FROM reservations
        WHERE (:last_key IS NULL OR id > :last_key)
          AND "serviceId" IS NULL
        ORDER BY id
        LIMIT :batch_size) batch)
  AND r."serviceId" IS NULL
  AND s.code = r.service::text
RETURNING r.id;
