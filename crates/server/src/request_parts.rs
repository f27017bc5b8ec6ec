//! What handlers read from a request besides its body: the connection it came on, the host it
//! names and its query.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use autodisco_proto::Domain;
use axum::extract::{Query, Request};
use http::header;

/// What the listener tells the layers and handlers about the connection a request came on.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionInfo {
    /// The client's address.
    pub(crate) peer: SocketAddr,
}

/// The client's IP address (unspecified when the request did not come through a listener).
pub(crate) fn peer_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectionInfo>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.peer.ip())
}

/// The Host header (HTTP/1.1) or the URI's authority (HTTP/2), without port. An IP literal is
/// never a mail domain, so `[...]` gives none.
pub(crate) fn request_host(request: &Request) -> Option<String> {
    let raw = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))?;
    if raw.starts_with('[') {
        return None;
    }
    Some(
        raw.rsplit_once(':')
            .map_or(raw, |(name, _)| name)
            .to_owned(),
    )
}

/// `LABEL.CUSTOMER` -> `CUSTOMER`, and `CUSTOMER` as it is; canonicalised (lower case, no
/// trailing dot, A-labels). For names a customer may point at us with or without the label.
pub(crate) fn strip_label(host: &str, label: &str) -> Option<Domain> {
    let host = Domain::parse(host).ok()?;
    match below_label(&host, label) {
        Some(rest) => Some(rest),
        None => Some(host),
    }
}

/// `LABEL.CUSTOMER` -> `CUSTOMER`, canonicalised; any other host is none of ours. For names
/// that only ever reach us with the label (`autodiscover.`, `ua-auto-config.`).
pub(crate) fn labelled_domain(host: &str, label: &str) -> Option<Domain> {
    below_label(&Domain::parse(host).ok()?, label)
}

fn below_label(host: &Domain, label: &str) -> Option<Domain> {
    let rest = host.as_str().strip_prefix(label)?.strip_prefix('.')?;
    Domain::parse(rest).ok()
}

/// The query parameter `name` (matched in any case): `Ok(None)` when absent, `Err(())` when
/// the query cannot be read at all.
pub(crate) fn query_parameter(request: &Request, name: &str) -> Result<Option<String>, ()> {
    let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(request.uri()) else {
        return Err(());
    };
    Ok(pairs
        .into_iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_with_an_optional_label_are_stripped_and_normalised() {
        let d = |h: &str| strip_label(h, "autoconfig").map(|d| d.to_string());
        assert_eq!(
            d("Autoconfig.Customer.Example."),
            Some("customer.example".into())
        );
        assert_eq!(d("customer.example"), Some("customer.example".into()));
        // "autoconfig.com" is a domain of its own, not the label on "com".
        assert_eq!(d("autoconfig.com"), Some("autoconfig.com".into()));
        assert_eq!(d("autoconfigx.example"), Some("autoconfigx.example".into()));
        assert_eq!(d("a..b"), None);
    }

    #[test]
    fn hosts_that_need_their_label_name_a_customer_only_with_it() {
        let d = |h: &str, label: &str| labelled_domain(h, label).map(|d| d.to_string());
        assert_eq!(
            d("UA-Auto-Config.Customer.Example.", "ua-auto-config"),
            Some("customer.example".into())
        );
        assert_eq!(
            d("autodiscover.bücher.example", "autodiscover"),
            Some("xn--bcher-kva.example".into())
        );
        assert_eq!(d("customer.example", "autodiscover"), None);
        assert_eq!(d("autodiscover.com", "autodiscover"), None);
        assert_eq!(
            d("ua-auto-configx.customer.example", "ua-auto-config"),
            None
        );
        assert_eq!(d("[::1]", "autodiscover"), None);
        assert_eq!(d("autodiscover..example", "autodiscover"), None);
    }
}
