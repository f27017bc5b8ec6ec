//! Command-line values read into the directory's types, with errors that quote what was typed.

use anyhow::Context;
use autodisco_proto::{Domain, EmailAddress};

pub(crate) fn domain_arg(name: &str) -> anyhow::Result<Domain> {
    Domain::parse(name).with_context(|| format!("{name:?} is not a valid domain name"))
}

pub(crate) fn address_arg(address: &str) -> anyhow::Result<EmailAddress> {
    EmailAddress::parse(address)
        .with_context(|| format!("{address:?} is not a valid email address"))
}
