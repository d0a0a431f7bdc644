-- What the booking application on dynamic services runs (docs/probes.md):
-- it reads the services table and the capacity of clinic_time_slots, and
-- writes "serviceId" and period, with the service's name and duration (after
-- the cleanup no trigger fills them). phases.toml says it must work from the
-- switchover (phase 3) on; before it, the old columns are still NOT NULL and
-- nothing fills them from the new ones, so it does not run there.
SELECT enabled, "rolloutPercent" FROM feature_flags WHERE key = 'dynamic_services';
SELECT id, code, name, "durationMinutes" + "bufferMinutes" AS minutes FROM services WHERE "isActive" ORDER BY "displayOrder";
SELECT t.capacity, count(r.id) AS booked
FROM clinic_time_slots t
LEFT JOIN reservations r ON r."preferredDate" = '2027-03-03' AND r.period = t.period AND r.status <> 'CANCELLED'
WHERE t."dayOfWeek" = 3 AND t.period = 'AFTERNOON'
GROUP BY t.capacity;
INSERT INTO reservations ("patientName", phone, "birthDate", gender, "treatmentType", "serviceId", "serviceName", "estimatedDuration", "preferredDate", period)
SELECT '이준호', '010-2345-6789', '1985-09-30', 'MALE', 'FOLLOW_UP', s.id, s.name, s."durationMinutes" + s."bufferMinutes", '2027-03-03', 'AFTERNOON'
FROM services s
WHERE s.code = 'VOLUME_LIFTING';
SELECT id, "serviceId", "serviceName", "estimatedDuration", "preferredDate", period, status
FROM reservations
WHERE phone = '010-2345-6789'
ORDER BY "preferredDate" DESC
LIMIT 20;
UPDATE reservations SET period = 'MORNING' WHERE phone = '010-2345-6789' AND "preferredDate" = '2027-03-03';
UPDATE reservations SET status = 'CONFIRMED' WHERE id = 1;
