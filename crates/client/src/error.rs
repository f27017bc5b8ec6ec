//! Errors that stop a discovery before it starts. Everything that goes wrong during a discovery
//! is part of the [`Report`](crate::Report) instead.

use thiserror::Error;

/// Why a [`Client`](crate::Client) could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An extra CA (`--ca`) could not be read as PEM certificates.
    #[error("the extra CA is not a PEM certificate: {detail}")]
    CaPem {
        /// What the PEM reader said.
        detail: String,
    },
    /// An extra CA held no certificate at all.
    #[error("the extra CA holds no certificate")]
    CaEmpty,
    /// A CA certificate was refused by the certificate store.
    #[error("the extra CA certificate cannot be used as a trust anchor: {detail}")]
    CaRefused {
        /// What rustls said.
        detail: String,
    },
    /// No trusted CA at all: webpki roots off and no extra CA.
    #[error("no trusted certificate authority: enable the webpki roots or add a CA")]
    NoRoots,
    /// The system's DNS configuration could not be read.
    #[error("cannot read the system's DNS configuration: {detail}")]
    SystemDns {
        /// What the resolver said.
        detail: String,
    },
    /// A pinned name is not a valid host name.
    #[error("the pinned name {host:?} is not a valid host name")]
    BadPin {
        /// The name as given.
        host: String,
    },
}

/// Why an address must not be probed at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// The mail domain is itself a public suffix (`co.uk`, `github.io`): its `autodiscover.`
    /// host belongs to no one in particular, which is how the 2021 "Autodiscover leak" captured
    /// credentials, so nothing is asked.
    #[error(
        "the mail domain {domain} is a public suffix: no one owns autodiscover.{domain}, so it is never asked"
    )]
    PublicSuffix {
        /// The domain.
        domain: String,
    },
}
