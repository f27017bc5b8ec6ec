-- The last live check of each domain (`autodisco domain check`): when, the verdict, and the
-- findings as JSON text (the checker's own format; the directory does not read it). Health is
-- not served data: writing it does not bump directory_revision, so a check of 10,000 domains
-- makes no server reload its snapshot. Removing a domain removes its health (ON DELETE CASCADE,
-- enforced by SQLite and PostgreSQL alike).
CREATE TABLE domain_health (
    domain TEXT PRIMARY KEY REFERENCES domains (name) ON DELETE CASCADE,
    checked_at BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('healthy', 'unhealthy')),
    findings TEXT NOT NULL
);
CREATE INDEX domain_health_status ON domain_health (status);
