//! autodisco-server: the HTTPS AutoDiscover service and the plain-HTTP redirect site.
//!
//! - [`config`]: the TOML configuration, checked as a whole, errors with file and line.
//! - [`bootstrap`]: bringing the directory in line with the configuration.
//! - [`tls`]: the hoster's certificate, per-domain certificates by SNI, hot reload.
//! - `admission`: per-client rate and connection limits, body read rules, per-site slots.
//! - [`listener`]: the accept loop (TLS handshake, HTTP/1.1 and HTTP/2, limits, graceful stop).
//! - [`service`]: the HTTPS router and what every dialect shares (body limits, XML answers).
//! - [`dialect`]: one module per protocol (POX and mobilesync so far).
//! - [`redirect`]: the plain-HTTP redirect site.
//! - [`auth`]: optional HTTP Basic authentication (directory or IMAP backend, rate limits).
//! - [`signing`]: CMS signatures over Apple configuration profiles.
//! - [`request_log`]: one structured log line per request.
//! - [`server`]: starting and stopping it all ([`RunningServer`]).

mod admission;
pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod dialect;
pub mod listener;
pub mod redirect;
pub mod request_log;
pub mod server;
pub mod service;
pub mod signing;
pub mod state;
pub mod tls;

pub use server::{RunningServer, ServerError};
