-- A deliberately broken copy of V10, for act 2 of `cargo xtask demo`: the
-- demo runs it in place of migrations/V10__backfill_reservations.sql to show
-- a gate saying ROLLBACK. It has two slips a hurried refactor makes: the
-- batch directive is gone (one UPDATE of every row, in the step's own
-- transaction) and the services join is off by one (each reservation gets
-- the services row after its own; the last service's rows get none). V10's
-- checks catch it (service_mapping_matches shows the rows as evidence,
-- unmigrated_percent counts the rest), the verdict is ROLLBACK, and the
-- step's transaction, backfill included, leaves nothing behind.
UPDATE reservations r
SET "serviceId"         = s.id,
    "serviceName"       = s.name,
    "estimatedDuration" = s."durationMinutes" + s."bufferMinutes",
    period              = phasegate_parse_period(r."preferredTime", r."createdAt")
FROM services s
WHERE s.id = (SELECT own.id + 1 FROM services own WHERE own.code = r.service::text);
