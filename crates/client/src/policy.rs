//! Which hosts the probe may contact, and which it may trust with credentials, decided with the
//! public suffix list (the `psl` crate).
//!
//! The 2021 "Autodiscover leak" captured 372,072 credentials because clients that found nothing
//! at `autodiscover.example.com` backed off to `autodiscover.com`, a name anyone can register.
//! The probe never backs off: its candidates are built from the mail domain only, and the mail
//! domain must not itself be a public suffix. Redirect targets named `autodiscover.SUFFIX` are
//! refused outright.

use std::net::IpAddr;

use autodisco_proto::Domain;

use crate::error::DiscoverError;

/// The registrable domain ("eTLD+1") of `host`: `customer.example` for
/// `autodiscover.customer.example`, `example.co.uk` for `mail.example.co.uk`. `None` for IP
/// addresses and for public suffixes themselves.
pub(crate) fn registrable_domain(host: &str) -> Option<&str> {
    let host = host.trim_end_matches('.');
    if host.parse::<IpAddr>().is_ok() || host.starts_with('[') {
        return None;
    }
    psl::domain_str(host)
}

/// Whether `name` is a public suffix (`com`, `co.uk`, `github.io`), including names under an
/// unknown top-level domain that consist of that label alone.
pub(crate) fn is_public_suffix(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    name.parse::<IpAddr>().is_err() && psl::domain_str(name).is_none()
}

/// Whether two hosts share a registrable domain. Hosts without one (IP addresses) share it only
/// with themselves.
pub(crate) fn same_registrable_domain(a: &str, b: &str) -> bool {
    match (registrable_domain(a), registrable_domain(b)) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// Refuses a mail domain that is a public suffix: nothing about it may be asked.
pub(crate) fn check_mail_domain(domain: &Domain) -> Result<(), DiscoverError> {
    if is_public_suffix(domain.as_str()) {
        return Err(DiscoverError::PublicSuffix {
            domain: domain.to_string(),
        });
    }
    Ok(())
}

/// Why a host must never be contacted, if it must not: a public suffix itself, or
/// `autodiscover.` directly under a public suffix (`autodiscover.com`, the leak's trap).
pub(crate) fn refuse_host(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<IpAddr>().is_ok() || host.starts_with('[') {
        return None;
    }
    if is_public_suffix(&host) {
        return Some(format!("{host} is a public suffix, which no one owns"));
    }
    if let Some(parent) = host.strip_prefix("autodiscover.")
        && is_public_suffix(parent)
    {
        return Some(format!(
            "{host} sits directly under the public suffix {parent}: anyone can register it (the 2021 \"Autodiscover leak\")"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domains() {
        assert_eq!(
            registrable_domain("autodiscover.customer.example"),
            Some("customer.example")
        );
        assert_eq!(
            registrable_domain("mail.example.co.uk"),
            Some("example.co.uk")
        );
        assert_eq!(registrable_domain("co.uk"), None);
        assert_eq!(registrable_domain("com"), None);
        assert_eq!(registrable_domain("127.0.0.1"), None);
        assert!(same_registrable_domain(
            "autodiscover.hoster.example",
            "mail.hoster.example"
        ));
        assert!(!same_registrable_domain(
            "autodiscover.hoster.example",
            "autodiscover.customer.example"
        ));
        assert!(same_registrable_domain("127.0.0.1", "127.0.0.1"));
        assert!(!same_registrable_domain("127.0.0.1", "127.0.0.2"));
    }

    #[test]
    fn public_suffix_mail_domains_are_refused() {
        for domain in ["co.uk", "github.io", "com.au"] {
            let domain = Domain::parse(domain).unwrap();
            assert!(check_mail_domain(&domain).is_err(), "{domain}");
        }
        for domain in ["customer.example", "example.co.uk", "a.b.example.com"] {
            let domain = Domain::parse(domain).unwrap();
            assert!(check_mail_domain(&domain).is_ok(), "{domain}");
        }
    }

    #[test]
    fn autodiscover_under_a_suffix_is_never_contacted() {
        assert!(refuse_host("autodiscover.com").is_some());
        assert!(refuse_host("autodiscover.co.uk").is_some());
        assert!(refuse_host("Autodiscover.Example.").is_some());
        assert!(refuse_host("com").is_some());
        assert!(refuse_host("autodiscover.example.com").is_none());
        assert!(refuse_host("autodiscover.hoster.example").is_none());
        assert!(refuse_host("127.0.0.1").is_none());
    }
}
