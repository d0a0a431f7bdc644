-- Undo V9: drop the sync trigger, then its function and the parser.
DROP TRIGGER IF EXISTS reservations_10_sync_columns ON reservations;
DROP FUNCTION IF EXISTS phasegate_sync_reservation_columns();
DROP FUNCTION IF EXISTS phasegate_parse_period(text, timestamptz);
DROP FUNCTION IF EXISTS phasegate_parse_period_strict(text);
