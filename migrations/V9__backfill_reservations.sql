-- Phase 2 (data): fill "serviceId", "serviceName", "estimatedDuration" and
-- period for every row that does not have them yet (rows written since V8
-- are already filled by the sync trigger), with the same parser the trigger
-- uses. Old columns are only read, never written.
-- Safe under live traffic: a single UPDATE takes ROW EXCLUSIVE (reads and
-- inserts continue); only updates of the same rows wait, for as long as this
-- statement runs (measured: about 4 s for 100k rows on the rehearsal machine,
-- where a no-op UPDATE of every row takes 2.4 s). It is idempotent (only rows
-- with "serviceId" IS NULL) and the sync trigger does not re-derive anything
-- here because service and "preferredTime" do not change. For tables of many
-- millions of rows switch to a batched backfill (-- phasegate: batch N).

UPDATE reservations r
SET "serviceId"         = s.id,
    "serviceName"       = s.name,
    "estimatedDuration" = s."durationMinutes" + s."bufferMinutes",
    period              = phasegate_parse_period(r."preferredTime", r."createdAt")
FROM services s
WHERE s.code = r.service::text
  AND r."serviceId" IS NULL;
