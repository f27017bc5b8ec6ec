//! What the two XML request dialects share: their names, why a request is refused, and the
//! reader for the `Request` element.
//!
//! It sits below the `pox` and `mobilesync` modules, which read their requests with it, and below
//! `request`, which picks the dialect and re-exports the public items.

use std::fmt;

use thiserror::Error;

use crate::address::AddressError;
use crate::autodiscover_error::ErrorCode;
use crate::xml::{self, Element, XmlError};

/// The two XML AutoDiscover dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Outlook's "plain old XML" ([MS-OXDSCLI]).
    Outlook,
    /// ActiveSync devices ([MS-ASCMD] 2.2.1.1).
    MobileSync,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Outlook => "Outlook",
            Self::MobileSync => "mobilesync",
        })
    }
}

/// Why a request body was refused, with the protocol error code the answer must carry
/// ([`RequestError::code`]).
///
/// The details are for the log: the response carries only the code and its fixed message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The body is not acceptable XML (too big, not UTF-8, a DTD, an unknown entity, too deep,
    /// not well-formed).
    #[error("the request is not acceptable XML: {0}")]
    Xml(#[from] XmlError),
    /// The root element is not `Autodiscover` in a request namespace this server knows.
    #[error(
        "the root element {local_name:?} in namespace {namespace:?} is not an AutoDiscover request"
    )]
    UnknownRoot {
        /// The root's namespace URI (truncated).
        namespace: Option<String>,
        /// The root's local name (truncated).
        local_name: String,
    },
    /// A required element is missing.
    #[error("the {dialect} request has no {element} element")]
    MissingElement {
        /// The request's dialect.
        dialect: Dialect,
        /// The element's local name.
        element: &'static str,
    },
    /// An element the schema allows once appears twice.
    #[error("the {dialect} request has more than one {element} element")]
    DuplicateElement {
        /// The request's dialect.
        dialect: Dialect,
        /// The element's local name.
        element: &'static str,
    },
    /// An element that should hold text holds elements.
    #[error("the {element} element of the {dialect} request contains elements, not text")]
    NotText {
        /// The request's dialect.
        dialect: Dialect,
        /// The element's local name.
        element: &'static str,
    },
    /// Neither `EMailAddress` nor `LegacyDN` names a mailbox.
    #[error("the {dialect} request names no mailbox")]
    NoAddress {
        /// The request's dialect.
        dialect: Dialect,
    },
    /// `EMailAddress` is not a usable address.
    #[error("the EMailAddress of the {dialect} request is invalid: {source}")]
    InvalidAddress {
        /// The request's dialect.
        dialect: Dialect,
        /// Why the address was refused.
        #[source]
        source: AddressError,
    },
    /// `AcceptableResponseSchema` names a schema this server does not answer in (601).
    #[error(
        "the {dialect} request asks for the response schema {schema:?}; only {supported} is served"
    )]
    UnsupportedSchema {
        /// The request's dialect.
        dialect: Dialect,
        /// The schema asked for (truncated).
        schema: String,
        /// The one schema served for this dialect.
        supported: &'static str,
    },
}

impl RequestError {
    /// The protocol error code for the answer: 601 for an unsupported response schema
    /// ([MS-OXDSCLI] 2.2.4.1.1.3, [MS-ASCMD] 2.2.3.64), 600 for everything else.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnsupportedSchema { .. } => ErrorCode::ProviderUnavailable,
            _ => ErrorCode::InvalidRequest,
        }
    }

    /// The dialect the request was recognised as before it failed; `None` when the body was not
    /// even an XML document with a known root.
    pub fn dialect(&self) -> Option<Dialect> {
        match self {
            Self::Xml(_) | Self::UnknownRoot { .. } => None,
            Self::MissingElement { dialect, .. }
            | Self::DuplicateElement { dialect, .. }
            | Self::NotText { dialect, .. }
            | Self::NoAddress { dialect }
            | Self::InvalidAddress { dialect, .. }
            | Self::UnsupportedSchema { dialect, .. } => Some(*dialect),
        }
    }
}

/// Reads the single `Request` element and the text children the dialects share.
pub(crate) struct RequestReader<'a> {
    pub(crate) dialect: Dialect,
    pub(crate) namespace: &'static str,
    pub(crate) request: &'a Element,
}

impl<'a> RequestReader<'a> {
    /// Finds the one `Request` child of the root.
    pub(crate) fn new(
        root: &'a Element,
        dialect: Dialect,
        namespace: &'static str,
    ) -> Result<Self, RequestError> {
        let request = root
            .child(namespace, "Request")
            .map_err(|_| RequestError::DuplicateElement {
                dialect,
                element: "Request",
            })?
            .ok_or(RequestError::MissingElement {
                dialect,
                element: "Request",
            })?;
        Ok(Self {
            dialect,
            namespace,
            request,
        })
    }

    /// The trimmed text of the one child `name`; `None` when absent or empty.
    pub(crate) fn text(&self, name: &'static str) -> Result<Option<&'a str>, RequestError> {
        let child = self.request.child(self.namespace, name).map_err(|_| {
            RequestError::DuplicateElement {
                dialect: self.dialect,
                element: name,
            }
        })?;
        let Some(child) = child else {
            return Ok(None);
        };
        let text = child.leaf_text().ok_or(RequestError::NotText {
            dialect: self.dialect,
            element: name,
        })?;
        Ok((!text.is_empty()).then_some(text))
    }

    /// Checks `AcceptableResponseSchema` against the one schema served for the dialect.
    pub(crate) fn check_schema(&self, supported: &'static str) -> Result<(), RequestError> {
        let schema =
            self.text("AcceptableResponseSchema")?
                .ok_or(RequestError::MissingElement {
                    dialect: self.dialect,
                    element: "AcceptableResponseSchema",
                })?;
        if schema == supported {
            Ok(())
        } else {
            Err(RequestError::UnsupportedSchema {
                dialect: self.dialect,
                schema: xml::snippet(schema),
                supported,
            })
        }
    }
}
