-- Undo V2: drop services. No CASCADE: the FK from reservations is removed by
-- the V5 rollback first; anything else still depending on services makes
-- this fail loudly instead of being dropped with it.
DROP TABLE IF EXISTS services;
