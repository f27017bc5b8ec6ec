//! Why a response document could not be decoded, and the small helpers the decoders share.

use std::str::FromStr;

use thiserror::Error;

use crate::address::{AddressError, EmailAddress};
use crate::xml::{self, Element, XmlError};

/// Why an AutoDiscover response could not be decoded (the client side of every XML dialect).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The document is not acceptable XML.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// The root element is not `Autodiscover` in the response namespace.
    #[error(
        "the root element {local_name:?} in namespace {namespace:?} is not an AutoDiscover response"
    )]
    UnexpectedRoot {
        /// The root's namespace URI (truncated).
        namespace: Option<String>,
        /// The root's local name (truncated).
        local_name: String,
    },
    /// A `Response` element in a schema this decoder does not read.
    #[error(
        "the Response element is in the schema {namespace:?}, which this decoder does not read"
    )]
    UnexpectedSchema {
        /// The `Response` element's namespace URI (truncated).
        namespace: Option<String>,
    },
    /// A required element is missing.
    #[error("the response has no {element} element")]
    MissingElement {
        /// The element's local name.
        element: &'static str,
    },
    /// An element the schema allows once appears twice.
    #[error("the response has more than one {element} element")]
    DuplicateElement {
        /// The element's local name.
        element: &'static str,
    },
    /// An element that should hold text holds elements.
    #[error("the {element} element contains elements where text was expected")]
    NotText {
        /// The element's local name.
        element: &'static str,
    },
    /// A value outside the element's type (a port that is not a number, `SSL` neither on nor off).
    #[error("the {element} element has the invalid value {value:?}")]
    InvalidValue {
        /// The element's local name.
        element: &'static str,
        /// The value (truncated).
        value: String,
    },
    /// An element that should hold an email address holds something else.
    #[error("the {element} element is not a valid email address: {source}")]
    InvalidAddress {
        /// The element's local name.
        element: &'static str,
        /// Why the address was refused.
        #[source]
        source: AddressError,
    },
}

impl DecodeError {
    pub(crate) fn unexpected_root(root: &Element) -> Self {
        Self::UnexpectedRoot {
            namespace: root.namespace.as_deref().map(xml::snippet),
            local_name: xml::snippet(&root.local_name),
        }
    }

    pub(crate) fn invalid_value(element: &'static str, value: &str) -> Self {
        Self::InvalidValue {
            element,
            value: xml::snippet(value),
        }
    }
}

/// The one child `name` in `namespace`, if present.
pub(crate) fn optional_child<'a>(
    parent: &'a Element,
    namespace: &str,
    name: &'static str,
) -> Result<Option<&'a Element>, DecodeError> {
    parent
        .child(namespace, name)
        .map_err(|_| DecodeError::DuplicateElement { element: name })
}

/// The one child `name` in `namespace`, which must be present.
pub(crate) fn required_child<'a>(
    parent: &'a Element,
    namespace: &str,
    name: &'static str,
) -> Result<&'a Element, DecodeError> {
    optional_child(parent, namespace, name)?.ok_or(DecodeError::MissingElement { element: name })
}

/// The trimmed text of an element that must hold text only.
pub(crate) fn text_of(element: &Element, name: &'static str) -> Result<String, DecodeError> {
    element
        .leaf_text()
        .map(str::to_owned)
        .ok_or(DecodeError::NotText { element: name })
}

/// The text of the child `name`, if present.
pub(crate) fn optional_text(
    parent: &Element,
    namespace: &str,
    name: &'static str,
) -> Result<Option<String>, DecodeError> {
    optional_child(parent, namespace, name)?
        .map(|child| text_of(child, name))
        .transpose()
}

/// The text of the child `name`, which must be present.
pub(crate) fn required_text(
    parent: &Element,
    namespace: &str,
    name: &'static str,
) -> Result<String, DecodeError> {
    text_of(required_child(parent, namespace, name)?, name)
}

/// Parses a number or other simple value held by the element `name`.
pub(crate) fn parse_value<T: FromStr>(name: &'static str, text: &str) -> Result<T, DecodeError> {
    text.parse()
        .map_err(|_| DecodeError::invalid_value(name, text))
}

/// Parses an email address held by the element `name`.
pub(crate) fn parse_address(name: &'static str, text: &str) -> Result<EmailAddress, DecodeError> {
    EmailAddress::parse(text).map_err(|source| DecodeError::InvalidAddress {
        element: name,
        source,
    })
}
