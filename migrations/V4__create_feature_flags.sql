-- Phase 1 (additive): feature_flags, read by the application to route a
-- percentage of traffic to the dynamic-services code path. The
-- dynamic_services flag starts off at 0%. Safe under live traffic: a new
-- table; the application treats a missing or disabled flag as "old path".

CREATE TABLE feature_flags (
  key              text PRIMARY KEY,
  enabled          boolean NOT NULL DEFAULT false,
  "rolloutPercent" integer NOT NULL DEFAULT 0
    CONSTRAINT "feature_flags_rolloutPercent_check" CHECK ("rolloutPercent" BETWEEN 0 AND 100),
  description      text,
  "updatedAt"      timestamptz NOT NULL DEFAULT now()
);

-- A fixed "updatedAt" (not now()) so a rehearsal that rolls back and
-- re-applies gets an identical row.
INSERT INTO feature_flags (key, enabled, "rolloutPercent", description, "updatedAt")
VALUES ('dynamic_services', false, 0,
        'serve reservations from the services table instead of the ServiceType enum',
        timestamptz '2026-11-01 00:00+09');
