-- Undo V4: drop feature_flags; the application treats a missing flag as off.
DROP TABLE IF EXISTS feature_flags;
