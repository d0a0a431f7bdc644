-- check: index_valid
-- severity: critical
-- description: the index exists, is valid (not left INVALID by a failed concurrent build) and covers serviceId, preferredDate, status
SELECT 'reservations_serviceId_preferredDate_status_idx' AS index_name,
       i.indisvalid,
       pg_get_indexdef(i.indexrelid) AS definition
FROM (SELECT to_regclass('"reservations_serviceId_preferredDate_status_idx"') AS idx) AS x
LEFT JOIN pg_index i ON i.indexrelid = x.idx
WHERE i.indexrelid IS NULL
   OR NOT i.indisvalid
   OR NOT i.indisready
   OR pg_get_indexdef(i.indexrelid) NOT LIKE '%ON %reservations USING btree ("serviceId", "preferredDate", status)';

-- check: index_dropped
-- when: after-rollback
-- description: the index is gone
SELECT 'reservations_serviceId_preferredDate_status_idx' AS still_exists
WHERE to_regclass('"reservations_serviceId_preferredDate_status_idx"') IS NOT NULL;
