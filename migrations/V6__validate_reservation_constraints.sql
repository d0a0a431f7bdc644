-- Phase 1 (additive): validate the foreign key and the period check V5 added
-- NOT VALID. In a transaction of its own, VALIDATE CONSTRAINT takes SHARE
-- UPDATE EXCLUSIVE: reads and writes of reservations go on while it scans.
-- The columns are all NULL at this point, so the scan checks nothing (no
-- services lookups); it proves the constraints for later phases.
ALTER TABLE reservations VALIDATE CONSTRAINT "reservations_period_check";

ALTER TABLE reservations VALIDATE CONSTRAINT "reservations_serviceId_fkey";
