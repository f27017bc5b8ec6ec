//! POX AutoDiscover as Outlook speaks it ([MS-OXDSCLI] 3.1.5): the request each POST carries and
//! how its answer reads.
//!
//! Each POST carries an Outlook request with `Content-Type: text/xml; charset=utf-8`. Any status
//! but 200, or an `Error` inside a 200, fails the lane ([MS-OXDSCLI] 3.1.5.5). `redirectUrl` is
//! followed with a new POST (https only, never a URL that failed before); `redirectAddr` restarts
//! the whole discovery for the new address.

use autodisco_proto::{EmailAddress, OutlookRequest, OutlookResponse};
use http::HeaderValue;
use http::header::HeaderName;
use url::Url;

use super::follow::{Next, PostDialect};
use crate::report::{Failure, Outcome};
use crate::settings::Settings;

/// Outlook's POX dialect.
pub(super) struct Pox;

impl PostDialect for Pox {
    fn service_url(&self, host: &str) -> Option<Url> {
        Url::parse(&format!("https://{host}{}", autodisco_proto::pox::PATH)).ok()
    }

    fn body(&self, address: &EmailAddress) -> String {
        OutlookRequest::for_address(address.clone()).to_xml()
    }

    fn announce(&self) -> (HeaderName, HeaderValue) {
        outlook_announce()
    }

    fn interpret(&self, body: &[u8]) -> Result<(Outcome, Next), Failure> {
        let response = OutlookResponse::from_xml(body).map_err(|error| Failure::Decode {
            detail: error.to_string(),
        })?;
        match response {
            OutlookResponse::Settings(settings) => Ok((
                Outcome::Settings,
                Next::Settings(Box::new(Settings::from_outlook(&settings))),
            )),
            OutlookResponse::RedirectAddr(next) => Ok((
                Outcome::RedirectAddr {
                    address: next.to_string(),
                },
                Next::RedirectAddr(next),
            )),
            OutlookResponse::RedirectUrl(next) => match Url::parse(next.trim()) {
                Ok(url) => Ok((
                    Outcome::RedirectUrl {
                        url: url.to_string(),
                    },
                    Next::Follow(url),
                )),
                Err(_) => Err(Failure::Refused {
                    url: next,
                    why: "the redirectUrl is not a URL".to_owned(),
                }),
            },
            // A POX error inside a 200 moves on as well ([MS-OXDSCLI] 3.1.5.5).
            OutlookResponse::Error(error) => Err(Failure::AutodiscoverError {
                code: error.code.number(),
                message: if error.message.is_empty() {
                    error.code.message().to_owned()
                } else {
                    error.message.clone()
                },
            }),
        }
    }
}

/// Outlook announces MAPI over HTTP so that servers offering it say so; the mobilesync question
/// carries the same.
pub(super) fn outlook_announce() -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static("x-mapihttpcapability"),
        HeaderValue::from_static("1"),
    )
}
