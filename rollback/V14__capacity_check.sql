-- Undo V14: drop the capacity trigger and its function.
DROP TRIGGER IF EXISTS reservations_20_check_capacity ON reservations;
DROP FUNCTION IF EXISTS phasegate_check_reservation_capacity();
