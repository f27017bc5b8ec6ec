-- The admin API's tokens, the audit log of every directory change, and the indexes that keep the
-- API's domain listing fast over millions of domains.

-- Bearer tokens for the admin API. Only the SHA-256 of a token is stored (hex): tokens are 256
-- random bits, so a fast hash without salt or stretching cannot be reversed or guessed, and a
-- leaked table grants nothing. A revoked token keeps its row (revoked = when) so the audit log's
-- actor names stay meaningful and a name is never reused for another holder.
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    scope TEXT NOT NULL CHECK (scope IN ('read', 'write')),
    token_hash TEXT NOT NULL UNIQUE,
    created BIGINT NOT NULL,
    revoked BIGINT
);

-- One row per change, written in the change's own transaction. Keyed by the directory revision
-- the change committed as (writers are serialised by that row, see store.rs) and a sequence
-- number within it. Times are Unix seconds; before/after are JSON of the object (never a password
-- or token hash), NULL where the object did not exist.
CREATE TABLE audit_log (
    revision BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    logged_at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT,
    PRIMARY KEY (revision, seq)
);

-- The API lists domains in name order from a cursor, optionally of one profile or one status:
-- with these, each page is an index range scan whatever the table's size.
CREATE INDEX domains_profile_name ON domains (profile, name);
CREATE INDEX domains_status_name ON domains (status, name);
