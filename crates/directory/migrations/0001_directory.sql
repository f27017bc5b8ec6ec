-- The directory's schema. Written once for SQLite and PostgreSQL alike: only TEXT and BIGINT,
-- no generated keys, constraints both engines enforce (sqlx turns SQLite's foreign keys on).

-- A hoster's plans: the JSON of autodisco_proto::ServiceProfile, under a short admin-chosen name.
CREATE TABLE profiles (
    name TEXT PRIMARY KEY,
    settings TEXT NOT NULL
);

-- Hosted domains, primaries and aliases in one table so that one name can never be both (the
-- primary key sees to it). A primary names its profile; an alias names its primary instead and
-- uses the primary's profile. The store refuses an alias of an alias; no operation turns a
-- primary into an alias later, so checking at insert time is enough.
CREATE TABLE domains (
    name TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    profile TEXT REFERENCES profiles (name),
    alias_of TEXT REFERENCES domains (name),
    CHECK ((profile IS NULL) <> (alias_of IS NULL))
);
CREATE INDEX domains_profile ON domains (profile);
CREATE INDEX domains_alias_of ON domains (alias_of);

-- Per-user overrides, keyed by EmailAddress::lookup_key() of the address in its primary domain.
-- `address` keeps the local part as the admin typed it, for listings.
CREATE TABLE user_overrides (
    lookup_key TEXT PRIMARY KEY,
    domain TEXT NOT NULL REFERENCES domains (name),
    address TEXT NOT NULL,
    display_name TEXT,
    login_name TEXT,
    redirect_addr TEXT,
    redirect_url TEXT,
    CHECK (redirect_addr IS NULL OR redirect_url IS NULL)
);
CREATE INDEX user_overrides_domain ON user_overrides (domain);

-- One row, bumped in the same transaction as every write: readers (the server's refresher, other
-- instances) poll it to learn cheaply whether anything changed. Writers bump it first, which also
-- serialises them (a row lock in PostgreSQL, the write lock in SQLite).
CREATE TABLE directory_revision (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
INSERT INTO directory_revision (id, revision) VALUES (1, 0);
