-- What the booking application before dynamic services runs (docs/probes.md):
-- reservations keyed to the "ServiceType" enum with a free-text
-- "preferredTime"; it knows nothing of the new columns. phases.toml says it
-- must work until the cleanup (phase 4) drops what it uses; verify runs it
-- there after every migrate, rollback and re-apply, inside a savepoint that
-- is rolled back.
SELECT id, "patientName", phone, service, "preferredDate", "preferredTime", status
FROM reservations
WHERE phone = '010-1234-5678'
ORDER BY "preferredDate" DESC
LIMIT 20;
SELECT id, "patientName", service, "preferredDate", "preferredTime", status FROM reservations WHERE id = 1;
INSERT INTO reservations ("patientName", phone, "birthDate", gender, "treatmentType", service, "preferredDate", "preferredTime")
VALUES ('김서연', '010-1234-5678', '1991-04-12', 'FEMALE', 'FIRST_VISIT', 'SKIN_CARE', '2027-03-02', '오전 10시 30분');
UPDATE reservations SET "preferredTime" = '2:30 PM', service = 'BODY_CARE'
WHERE phone = '010-1234-5678' AND "preferredDate" = '2027-03-02';
UPDATE reservations SET status = 'CONFIRMED' WHERE id = 1;
SELECT service, count(*) FROM reservations WHERE "preferredDate" = '2027-03-02' AND status <> 'CANCELLED' GROUP BY service;
