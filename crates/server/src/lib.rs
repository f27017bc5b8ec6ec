//! autodisco-server: the HTTPS AutoDiscover service and the plain-HTTP redirect site.
//!
//! Public: [`config`] (the TOML configuration, checked as a whole, errors with file and line),
//! [`bootstrap`] (bringing the directory in line with it), and [`RunningServer`] (starting,
//! reloading and stopping it all). Inside, from the socket to the answer:
//!
//! - `admin`: the admin API for control panels (JSON, bearer tokens, OpenAPI 3.1), on its
//!   own loopback listener;
//! - `listener`: the accept loop (TLS handshake, HTTP/1.1 and HTTP/2, limits, graceful stop);
//! - `tls`: the hoster's certificate, per-domain certificates by SNI, hot reload;
//! - `admission`: per-client rate and connection limits, body read rules, per-site slots;
//! - `request_log`: one structured log line per request;
//! - `routes`: both sites' routes in one place: path to dialect, methods, authentication;
//! - `auth`: optional HTTP Basic authentication (directory or IMAP backend, rate limits) and
//!   what each caller may learn (`auth::privacy`);
//! - `dialect`: one module per protocol, each reading its request and writing its answer;
//! - `redirect`: the plain-HTTP redirect site's 302;
//! - `reply` and `request_parts`: what the handlers share (bodies, hosts, queries, answers);
//! - `signing`: CMS signatures over Apple configuration profiles;
//! - `state`: what every handler reads (directory, site settings, limits);
//! - `server`: starting and stopping it all, and the SIGHUP reload policy.

mod admin;
mod admission;
mod auth;
pub mod bootstrap;
pub mod config;
mod dialect;
mod listener;
mod redirect;
mod reply;
mod request_log;
mod request_parts;
mod routes;
mod server;
mod signing;
mod state;
mod tls;

pub use admin::{BoxFuture, DomainChecker};
pub use auth::hash_password;
pub use server::{RunningServer, ServerError};
pub use tls::create_self_signed;

/// The limits of authentication, which tests drive to their edges.
pub mod auth_limits {
    pub use crate::auth::FAILURE_FLOOR;
    pub use crate::auth::imap::{MAX_CONCURRENT_LOGINS, QUEUE_WAIT};
    pub use crate::auth::limiter::FREE_FAILURES_PER_ACCOUNT;
}
