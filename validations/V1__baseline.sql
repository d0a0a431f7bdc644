-- check: reservations_table_exists
-- severity: critical
-- description: the reservations table of the existing application is there
SELECT 'reservations' AS missing_table
WHERE to_regclass('reservations') IS NULL;

-- check: reservations_columns_present
-- severity: critical
-- description: every column the migration set reads exists on reservations
SELECT c.column_name AS missing_column
FROM unnest(ARRAY['id', 'patientName', 'phone', 'birthDate', 'gender', 'treatmentType',
                  'service', 'preferredDate', 'preferredTime', 'status', 'createdAt']) AS c(column_name)
WHERE NOT EXISTS (
  SELECT 1 FROM information_schema.columns ic
  WHERE ic.table_schema = current_schema()
    AND ic.table_name = 'reservations'
    AND ic.column_name = c.column_name
);

-- check: service_type_values
-- metric: count
-- proceed: = 6
-- description: the ServiceType enum has its six values
SELECT count(*)
FROM pg_enum e
JOIN pg_type t ON t.oid = e.enumtypid
WHERE t.typname = 'ServiceType';
