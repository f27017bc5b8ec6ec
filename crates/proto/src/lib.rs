//! autodisco-proto: the AutoDiscover protocols as pure types and codecs.
//!
//! No I/O, no async, no sockets: everything here works on byte slices and strings, so every
//! decoder can be fuzzed and every encoder tested against the specifications' examples.
//!
//! - [`address`]: validated [`Domain`] names and [`EmailAddress`]es.
//! - [`profile`]: the protocol-neutral [`ServiceProfile`] every dialect renders.
//! - [`answer`]: the directory's decision for one address ([`Answer`]).
//! - [`autoconfig`]: Mozilla's autoconfig `clientConfig` 1.1 (Thunderbird and most others).
//! - [`request`]: [`parse_request`] for the body posted to the XML AutoDiscover URL.
//! - [`pox`]: Outlook's POX dialect ([MS-OXDSCLI]): requests, responses, errors.
//! - [`mobilesync`]: the ActiveSync dialect ([MS-ASCMD] 2.2.1.1).
//! - [`mobileconfig`]: Apple configuration profiles (iPhone, iPad and Mac Mail).
//! - [`pacc`]: the IETF provider auto-configuration document (draft-ietf-mailmaint-pacc).
//! - [`records`]: the DNS records a customer domain publishes ([`DomainRecords`]).
//! - [`soap`]: SOAP Autodiscover ([MS-OXWSADISC]), the dialect of the EWS client libraries.
//! - [`v2`]: Autodiscover v2, the JSON endpoint of current Outlook.
//! - [`autodiscover_error`]: the `Error` element and [`ErrorCode`]s both XML dialects share.
//! - [`decode_error`]: why a response could not be decoded (client side).
//! - [`xml`]: the hardened reader and escaping writer under every XML dialect.
//!
//! With the `fuzzing` feature (for the fuzz targets and this crate's own tests, not for users),
//! `round_trip` holds the decode-encode-decode checks the fuzz targets run.
#![warn(missing_docs)]

pub mod address;
pub mod answer;
pub mod autoconfig;
pub mod autodiscover_error;
pub mod decode_error;
pub mod mobileconfig;
pub mod mobilesync;
pub mod pacc;
pub mod pox;
pub mod profile;
pub mod records;
pub mod request;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod round_trip;
pub mod soap;
pub mod v2;
pub mod xml;
mod xml_request;

pub use address::{AddressError, Domain, DomainError, EmailAddress};
pub use answer::{AccountSettings, Answer};
pub use autoconfig::{AutoconfigError, ClientConfig};
pub use autodiscover_error::{AutodiscoverError, ErrorCode, ErrorStamp};
pub use decode_error::DecodeError;
pub use mobilesync::{MobileSyncRequest, MobileSyncResponse};
pub use pox::{OutlookRequest, OutlookResponse, RenderOptions};
pub use profile::{ProfileError, ServiceProfile};
pub use records::{DnsRecord, DomainRecords, HosterNames, Purpose, RecordData};
pub use request::{
    AutodiscoverRequest, Dialect, RequestError, parse_request, render_request_error,
};
pub use soap::{SoapRequest, SoapRequestError, SoapResponse, SoapVersion};
pub use xml::XmlError;
