//! Decode, encode, decode again and compare: the checks the fuzz targets run.
//!
//! They live here, not in `fuzz/`, so that ordinary tests run them over every fixture file on
//! stable Rust, and so the fuzz targets stay one line each. Each function returns `None` when
//! the input does not decode (an expected outcome for arbitrary bytes) and panics when a decoded
//! value does not survive the trip, which is the bug the fuzzer looks for.

use crate::address::{Domain, EmailAddress};
use crate::autoconfig::ClientConfig;
use crate::mobilesync::MobileSyncResponse;
use crate::pacc::PaccDocument;
use crate::pox::OutlookResponse;
use crate::request::{AutodiscoverRequest, parse_request};
use crate::v2::{self, V2Request};
use crate::xml::MAX_DOCUMENT_BYTES;

/// Checks one request body: if it parses, its encoding parses back to the same request, and
/// encoding that gives the same bytes.
pub fn request(data: &[u8]) -> Option<AutodiscoverRequest> {
    check(data, parse_request, AutodiscoverRequest::to_xml)
}

/// Checks one Outlook response body the same way.
pub fn outlook_response(data: &[u8]) -> Option<OutlookResponse> {
    check(data, OutlookResponse::from_xml, OutlookResponse::to_xml)
}

/// Checks one mobilesync response body the same way.
pub fn mobilesync_response(data: &[u8]) -> Option<MobileSyncResponse> {
    check(
        data,
        MobileSyncResponse::from_xml,
        MobileSyncResponse::to_xml,
    )
}

/// Checks one SOAP Autodiscover request envelope the same way.
pub fn soap_request(data: &[u8]) -> Option<crate::soap::SoapRequest> {
    check(
        data,
        crate::soap::parse_request,
        crate::soap::SoapRequest::to_xml,
    )
}

/// Checks one SOAP Autodiscover response envelope the same way.
pub fn soap_response(data: &[u8]) -> Option<crate::soap::SoapResponse> {
    check(
        data,
        crate::soap::SoapResponse::from_xml,
        crate::soap::SoapResponse::to_xml,
    )
}

/// Checks one autoconfig document (`clientConfig`) the same way.
pub fn autoconfig_document(data: &[u8]) -> Option<ClientConfig> {
    check(data, ClientConfig::from_xml, ClientConfig::to_xml)
}

/// Checks one PACC document: if it decodes, its encoding decodes to the same document, and the
/// digest record made for the encoding vouches for it.
pub fn pacc_document(data: &[u8]) -> Option<PaccDocument> {
    let to_json = |document: &PaccDocument| {
        String::from_utf8(document.to_json()).expect("serde_json writes UTF-8")
    };
    let document = check(data, PaccDocument::from_json, to_json)?;
    let json = document.to_json();
    assert!(crate::pacc::record_matches(
        &crate::pacc::digest_record(&json),
        &json
    ));
    Some(document)
}

/// Checks a host name as the server reads it from a `Host` header (`name[:port]`): a name that
/// parses is canonical (parsing it again changes nothing, in any case, with a trailing dot)
/// and fits DNS.
pub fn host_name(data: &[u8]) -> Option<Domain> {
    let text = std::str::from_utf8(data).ok()?;
    let name = text.rsplit_once(':').map_or(text, |(name, _port)| name);
    let domain = Domain::parse(name).ok()?;
    let canonical = domain.as_str();
    assert!(
        canonical.is_ascii() && canonical.len() <= 253,
        "{canonical:?}"
    );
    assert_eq!(canonical, canonical.to_ascii_lowercase());
    assert_eq!(Domain::parse(canonical).as_ref(), Ok(&domain));
    assert_eq!(
        Domain::parse(&format!("{}.", canonical.to_ascii_uppercase())).as_ref(),
        Ok(&domain)
    );
    Some(domain)
}

/// Checks an email address as a request carries it: one that parses prints as text that parses
/// back to the same address.
pub fn email_address(data: &[u8]) -> Option<EmailAddress> {
    let address = EmailAddress::parse(std::str::from_utf8(data).ok()?).ok()?;
    assert_eq!(
        EmailAddress::parse(&address.to_string()).as_ref(),
        Ok(&address)
    );
    assert!(host_name(address.domain().as_str().as_bytes()).is_some());
    Some(address)
}

/// Checks a v2 request line (`[/v1.0/ADDRESS][?QUERY]` after the endpoint path): a request
/// that parses names an address and a protocol, and every refusal has a JSON answer that reads
/// back.
pub fn v2_query(data: &[u8]) -> Option<V2Request> {
    let text = String::from_utf8_lossy(data);
    let (path, query) = match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text.as_ref(), None),
    };
    match v2::parse_request(&format!("{}{path}", v2::PATH), query) {
        Ok(request) => {
            assert!(!request.email.is_empty() && request.email.trim() == request.email);
            Some(request)
        }
        Err(error) => {
            let answer = error.answer();
            assert_eq!(answer.status(), 400);
            let json: serde_json::Value =
                serde_json::from_str(&answer.to_json()).expect("an answer is JSON");
            assert!(json["ErrorCode"].is_string(), "{json}");
            None
        }
    }
}

/// Checks an autoconfig query string as the server reads it: the `emailaddress` parameter,
/// form-decoded, is an address or refused.
pub fn autoconfig_query(data: &[u8]) -> Option<EmailAddress> {
    let (_, value) = form_urlencoded::parse(data)
        .find(|(key, _)| key.eq_ignore_ascii_case(crate::autoconfig::ADDRESS_PARAMETER))?;
    email_address(value.as_bytes())
}

/// Decode, encode, decode again: the value and the encoding must both survive.
fn check<T, E>(
    data: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, E>,
    encode: impl Fn(&T) -> String,
) -> Option<T>
where
    T: PartialEq + std::fmt::Debug,
    E: std::fmt::Display,
{
    let value = decode(data).ok()?;
    let encoded = encode(&value);
    if fits(&encoded) {
        let again = decode(encoded.as_bytes())
            .unwrap_or_else(|e| panic!("an encoded document does not decode: {e}\n{encoded}"));
        assert_eq!(again, value, "the value changed on the way\n{encoded}");
        assert_eq!(encode(&again), encoded, "encoding is not stable");
    }
    Some(value)
}

/// Escaping can make a document longer than the input it came from (`>` becomes `&gt;`); past
/// the reader's size limit a second decode is refused by design, so the check stops there.
fn fits(encoded: &str) -> bool {
    encoded.len() <= MAX_DOCUMENT_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_documents_are_skipped() {
        assert!(request(b"").is_none());
        assert!(outlook_response(b"<x/>").is_none());
        assert!(mobilesync_response(b"\xff").is_none());
    }
}
