-- Phase 2 (data): a helper CHECK that all four new columns are set, added NOT
-- VALID: catalog-only, it reads no rows, and from now on every insert and
-- update must satisfy it. V12 validates it in its own transaction and uses it
-- to make the columns NOT NULL without another scan. One combined check means
-- the table is read once, not four times.
ALTER TABLE reservations
  ADD CONSTRAINT reservations_new_columns_not_null
  CHECK ("serviceId" IS NOT NULL
     AND "serviceName" IS NOT NULL
     AND "estimatedDuration" IS NOT NULL
     AND period IS NOT NULL) NOT VALID;
