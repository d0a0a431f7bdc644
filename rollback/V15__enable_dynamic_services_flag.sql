-- Undo V15: every request back to the old code path.
UPDATE feature_flags
SET enabled = false,
    "rolloutPercent" = 0
WHERE key = 'dynamic_services';
