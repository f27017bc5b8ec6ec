//! Parsing a request body posted to `/autodiscover/autodiscover.xml`.
//!
//! One URL serves Outlook ([MS-OXDSCLI] 2.2.3) and ActiveSync devices ([MS-ASCMD] 2.2.1.1); the
//! root element's namespace says which dialect a body speaks.

use crate::autodiscover_error::ErrorStamp;
use crate::mobilesync::{self, MobileSyncRequest};
use crate::pox::{self, OutlookRequest};
use crate::xml;

pub use crate::xml_request::{Dialect, RequestError};

/// A parsed AutoDiscover request, in whichever dialect it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutodiscoverRequest {
    /// An Outlook request.
    Outlook(OutlookRequest),
    /// An ActiveSync request.
    MobileSync(MobileSyncRequest),
}

impl AutodiscoverRequest {
    /// The dialect of the request (and of the response it needs).
    pub fn dialect(&self) -> Dialect {
        match self {
            Self::Outlook(_) => Dialect::Outlook,
            Self::MobileSync(_) => Dialect::MobileSync,
        }
    }

    /// Encodes the request as its dialect's XML document.
    pub fn to_xml(&self) -> String {
        match self {
            Self::Outlook(request) => request.to_xml(),
            Self::MobileSync(request) => request.to_xml(),
        }
    }
}

/// Parses a request body posted to the AutoDiscover URL, in either dialect.
///
/// Everything is checked here: XML hardening ([`crate::xml`]), the root's namespace, the
/// required elements, the address and the response schema. An `Ok` request names a mailbox
/// and asks for a schema this crate renders.
pub fn parse_request(body: &[u8]) -> Result<AutodiscoverRequest, RequestError> {
    let root = xml::parse_document(body)?;
    if root.is(pox::REQUEST_NAMESPACE, "Autodiscover") {
        return pox::OutlookRequest::from_root(&root).map(AutodiscoverRequest::Outlook);
    }
    if root.is(mobilesync::REQUEST_NAMESPACE, "Autodiscover") {
        return MobileSyncRequest::from_root(&root).map(AutodiscoverRequest::MobileSync);
    }
    Err(RequestError::UnknownRoot {
        namespace: root.namespace.as_deref().map(xml::snippet),
        local_name: xml::snippet(&root.local_name),
    })
}

/// Renders the error response for a refused request: the mobilesync error document when the
/// request was recognised as mobilesync, the Outlook one otherwise (Outlook is the URL's main
/// client, and [MS-OXDSCLI] 2.2.4.1.1.3 defines the error for it).
pub fn render_request_error(error: &RequestError, stamp: &ErrorStamp) -> String {
    match error.dialect() {
        Some(Dialect::MobileSync) => mobilesync::render_error(error.code(), stamp),
        Some(Dialect::Outlook) | None => pox::render_error(error.code(), stamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::EmailAddress;
    use crate::autodiscover_error::ErrorCode;

    #[test]
    fn dispatches_on_the_root_namespace() {
        let outlook = format!(
            r#"<Autodiscover xmlns="{}"><Request><EMailAddress>a@b.example</EMailAddress><AcceptableResponseSchema>{}</AcceptableResponseSchema></Request></Autodiscover>"#,
            pox::REQUEST_NAMESPACE,
            pox::RESPONSE_SCHEMA
        );
        let request = parse_request(outlook.as_bytes()).unwrap();
        assert_eq!(request.dialect(), Dialect::Outlook);

        let mobile = format!(
            r#"<Autodiscover xmlns="{}"><Request><EMailAddress>a@b.example</EMailAddress><AcceptableResponseSchema>{}</AcceptableResponseSchema></Request></Autodiscover>"#,
            mobilesync::REQUEST_NAMESPACE,
            mobilesync::RESPONSE_SCHEMA
        );
        let request = parse_request(mobile.as_bytes()).unwrap();
        assert_eq!(request.dialect(), Dialect::MobileSync);

        let error = parse_request(b"<Autodiscover xmlns=\"urn:other\"/>").unwrap_err();
        assert!(matches!(error, RequestError::UnknownRoot { .. }));
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
        assert_eq!(error.dialect(), None);
    }

    #[test]
    fn codes_follow_the_spec() {
        let wrong_schema = format!(
            r#"<Autodiscover xmlns="{}"><Request><EMailAddress>a@b.example</EMailAddress><AcceptableResponseSchema>{}</AcceptableResponseSchema></Request></Autodiscover>"#,
            mobilesync::REQUEST_NAMESPACE,
            pox::RESPONSE_SCHEMA
        );
        let error = parse_request(wrong_schema.as_bytes()).unwrap_err();
        assert_eq!(error.code(), ErrorCode::ProviderUnavailable);
        assert_eq!(error.dialect(), Some(Dialect::MobileSync));
        let rendered = render_request_error(&error, &ErrorStamp::new("01:02:03", 7));
        assert!(rendered.contains(mobilesync::RESPONSE_SCHEMA));
        assert!(rendered.contains("<ErrorCode>601</ErrorCode>"));

        let error = parse_request(b"not xml").unwrap_err();
        let rendered = render_request_error(&error, &ErrorStamp::new("01:02:03", 7));
        assert!(rendered.contains(pox::RESPONSE_SCHEMA));
        assert!(rendered.contains("<ErrorCode>600</ErrorCode>"));
    }

    #[test]
    fn outlook_request_encodes_and_parses_back() {
        let original = OutlookRequest {
            email_address: Some(EmailAddress::parse("a&b@b.example").unwrap()),
            legacy_dn: Some("/o=<x>&\"y\"".into()),
        };
        let xml = original.to_xml();
        assert!(xml.contains("a&amp;b@b.example"));
        assert_eq!(
            parse_request(xml.as_bytes()).unwrap(),
            AutodiscoverRequest::Outlook(original)
        );
    }

    #[test]
    fn mobilesync_request_round_trips() {
        let request = MobileSyncRequest {
            email_address: EmailAddress::parse("chris@a.example").unwrap(),
        };
        assert_eq!(
            parse_request(request.to_xml().as_bytes()).unwrap(),
            AutodiscoverRequest::MobileSync(request)
        );
    }
}
