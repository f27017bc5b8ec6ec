//! Decode, encode, decode again and compare: the checks the fuzz targets run.
//!
//! They live here, not in `fuzz/`, so that ordinary tests run them over every fixture file on
//! stable Rust, and so the fuzz targets stay one line each. Each function returns `None` when
//! the input does not decode (an expected outcome for arbitrary bytes) and panics when a decoded
//! value does not survive the trip, which is the bug the fuzzer looks for.

use crate::mobilesync::MobileSyncResponse;
use crate::pox::OutlookResponse;
use crate::request::{AutodiscoverRequest, parse_request};
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
