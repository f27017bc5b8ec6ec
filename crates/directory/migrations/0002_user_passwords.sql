-- Passwords for `auth = "basic"` with the directory as the backend. Only argon2 hashes in PHC
-- string form ($argon2id$...) are stored, never a password. Keyed like user_overrides, by
-- EmailAddress::lookup_key() of the address in its primary domain; a password is independent of
-- any override. Removing the domain removes its passwords (ON DELETE CASCADE, which both SQLite
-- and PostgreSQL enforce), so a domain added again later never revives old passwords.
CREATE TABLE user_passwords (
    lookup_key TEXT PRIMARY KEY,
    domain TEXT NOT NULL REFERENCES domains (name) ON DELETE CASCADE,
    password_hash TEXT NOT NULL
);
CREATE INDEX user_passwords_domain ON user_passwords (domain);
