-- Phase 3 (switchover): route 10% of traffic to the dynamic-services code
-- path. "updatedAt" is deliberately left alone so the rollback restores the
-- row exactly. Safe under live traffic: a one-row update; the dual-write
-- trigger keeps both column sets in sync whichever path serves a request.

UPDATE feature_flags
SET enabled = true,
    "rolloutPercent" = 10
WHERE key = 'dynamic_services';
