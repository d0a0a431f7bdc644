-- Undo V11: drop the helper check (catalog-only).
ALTER TABLE reservations DROP CONSTRAINT reservations_new_columns_not_null;
