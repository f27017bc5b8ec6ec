//! The directory's integration tests, one binary: every store operation and every resolve rule
//! against SQLite and PostgreSQL, the live directory's refresher, and an ignored scale test.
//!
//! PostgreSQL comes from `AUTODISCO_TEST_POSTGRES` (default
//! `postgres://root@127.0.0.1:5432/test`); each test creates and drops a database of its own.
//! The PostgreSQL tests fail when it is unreachable. Run one backend with a filter:
//! `cargo test -p autodisco-directory sqlite::` or `... postgres::`.

mod support;

mod admin;
mod automx2;
mod connect;
mod domains;
mod health;
mod live;
mod profiles;
mod resolve;
mod scale;
mod transfer;
mod users;
