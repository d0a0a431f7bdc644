-- check: dynamic_services_flag_off
-- severity: critical
-- description: the dynamic_services flag exists, disabled, at 0 percent
SELECT 'dynamic_services' AS key, f.enabled, f."rolloutPercent"
FROM (SELECT 1) AS one
LEFT JOIN feature_flags f ON f.key = 'dynamic_services'
WHERE f.key IS NULL OR f.enabled OR f."rolloutPercent" <> 0;

-- check: feature_flags_dropped
-- when: after-rollback
-- description: the feature_flags table is gone
SELECT 'feature_flags' AS still_exists
WHERE to_regclass('feature_flags') IS NOT NULL;
