//! autodisco-proto: the AutoDiscover protocols as pure types and codecs.
//!
//! No I/O, no async, no sockets: everything here works on byte slices and strings, so every
//! decoder can be fuzzed and every encoder tested against the specifications' examples.
//!
//! - [`address`]: validated [`Domain`] names and [`EmailAddress`]es.
//! - [`profile`]: the protocol-neutral [`ServiceProfile`] every dialect renders.
//! - [`answer`]: the directory's decision for one address ([`Answer`]).
#![warn(missing_docs)]

pub mod address;
pub mod answer;
pub mod profile;

pub use address::{AddressError, Domain, DomainError, EmailAddress};
pub use answer::{AccountSettings, Answer};
pub use profile::{ProfileError, ServiceProfile};
