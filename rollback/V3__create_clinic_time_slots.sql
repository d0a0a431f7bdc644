-- Undo V3: drop clinic_time_slots (the capacity check that reads it is
-- removed by the V14 rollback first).
DROP TABLE IF EXISTS clinic_time_slots;
