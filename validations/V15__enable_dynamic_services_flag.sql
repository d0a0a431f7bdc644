-- check: dynamic_services_enabled
-- severity: critical
-- description: the dynamic_services flag is enabled
SELECT 'dynamic_services' AS key, f.enabled, f."rolloutPercent"
FROM (SELECT 1) AS one
LEFT JOIN feature_flags f ON f.key = 'dynamic_services'
WHERE f.key IS NULL OR NOT f.enabled;

-- check: dynamic_services_rollout_percent
-- metric: percent
-- proceed: = 10
-- description: the first rollout step sends 10 percent of traffic to the new code path (-1 when the flag is missing)
SELECT coalesce((SELECT "rolloutPercent" FROM feature_flags WHERE key = 'dynamic_services'), -1);

-- check: dynamic_services_disabled
-- when: after-rollback
-- severity: critical
-- description: the flag is disabled again
SELECT 'dynamic_services' AS key, f.enabled, f."rolloutPercent"
FROM (SELECT 1) AS one
LEFT JOIN feature_flags f ON f.key = 'dynamic_services'
WHERE f.key IS NULL OR f.enabled;

-- check: rollout_percent_reset
-- when: after-rollback
-- metric: percent
-- proceed: = 0
-- description: rollout is back at 0 percent (-1 when the flag is missing)
SELECT coalesce((SELECT "rolloutPercent" FROM feature_flags WHERE key = 'dynamic_services'), -1);
