-- phasegate: batch 5000
-- Phase 2 (data): fill "serviceId", "serviceName", "estimatedDuration" and
-- period for every row that does not have them yet (rows written since V8
-- are already filled by the sync trigger), with the same parser the trigger
-- uses. Old columns are only read, never written.
-- Safe under live traffic: a batched backfill. The UPDATE runs again and
-- again, 5000 rows per transaction, until it changes no rows, so only the
-- rows of the current batch are locked at any moment (reads and inserts are
-- never blocked; an update of a row waits for at most one batch). It is
-- idempotent and resumable (only rows with "serviceId" IS NULL are picked)
-- and the sync trigger does not re-derive anything here because service and
-- "preferredTime" do not change. Each batch finds its rows by scanning past
-- the rows already done; on tables of many millions of rows, a partial index
-- on (id) WHERE "serviceId" IS NULL keeps the batches fast.

UPDATE reservations r
SET "serviceId"         = s.id,
    "serviceName"       = s.name,
    "estimatedDuration" = s."durationMinutes" + s."bufferMinutes",
    period              = phasegate_parse_period(r."preferredTime", r."createdAt")
FROM services s
WHERE s.code = r.service::text
  AND r.id IN (SELECT id FROM reservations WHERE "serviceId" IS NULL LIMIT :batch_size);
