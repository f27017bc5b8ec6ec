//! The `Error` element both XML dialects share: its codes, its stamp and its content.
//!
//! [MS-OXDSCLI] 2.2.4.1.1.3 defines it for Outlook (`ErrorCode`, `Message`, `DebugData`, with the
//! `Time` and `Id` attributes) and [MS-ASCMD] 2.2.3.63 gives mobilesync the same shape when the
//! error is a child of `Response`.

use std::fmt;

use crate::decode_error::{self, DecodeError};
use crate::xml::{Element, XmlWriter};

/// An AutoDiscover error code (the `ErrorCode` child of `Error`: [MS-OXDSCLI] 2.2.4.1.1.3.2,
/// [MS-ASCMD] 2.2.3.64).
///
/// Each code has a fixed [`message`](Self::message): responses never carry details about the
/// request or the server, those go to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 500: the address is not in a hosted domain (or its domain is suspended).
    NotHosted,
    /// 501: the address is known but has no configuration to offer.
    NoConfiguration,
    /// 600: the request is not a valid AutoDiscover request.
    InvalidRequest,
    /// 601: no provider for the requested response schema, or for the requested service.
    ProviderUnavailable,
    /// 602: the address is known but its configuration is broken.
    ConfigurationError,
    /// 603: the server failed internally.
    InternalError,
    /// A code this crate does not know, as received from another server.
    Other(u32),
}

impl ErrorCode {
    /// The number sent in `ErrorCode`.
    pub fn number(self) -> u32 {
        match self {
            Self::NotHosted => 500,
            Self::NoConfiguration => 501,
            Self::InvalidRequest => 600,
            Self::ProviderUnavailable => 601,
            Self::ConfigurationError => 602,
            Self::InternalError => 603,
            Self::Other(number) => number,
        }
    }

    /// The code for a number; unknown numbers become [`ErrorCode::Other`].
    pub fn from_number(number: u32) -> Self {
        match number {
            500 => Self::NotHosted,
            501 => Self::NoConfiguration,
            600 => Self::InvalidRequest,
            601 => Self::ProviderUnavailable,
            602 => Self::ConfigurationError,
            603 => Self::InternalError,
            other => Self::Other(other),
        }
    }

    /// The fixed, human-readable `Message` autodisco sends with this code.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotHosted => "The email address cannot be found.",
            Self::NoConfiguration => "The email address has no configuration.",
            Self::InvalidRequest => "Invalid Request",
            Self::ProviderUnavailable => "No provider is available for the requested settings.",
            Self::ConfigurationError => "The email address cannot be configured.",
            Self::InternalError => "The server had an internal error.",
            Self::Other(_) => "Unknown error.",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.number(), self.message())
    }
}

/// The `Time` and `Id` attributes of an `Error` element.
///
/// The crate has no clock, so the caller supplies both. [MS-ASCMD] 2.2.3.63 describes `Time` as
/// the time of day (`hh:mm:ss` with optional fractional seconds) and `Id` as an unsigned integer
/// naming the server; [`ErrorStamp::new`] builds that form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ErrorStamp {
    /// The `Time` attribute.
    pub time: String,
    /// The `Id` attribute.
    pub id: String,
}

impl ErrorStamp {
    /// A stamp with the given time of day and numeric server id.
    pub fn new(time: impl Into<String>, id: u32) -> Self {
        Self {
            time: time.into(),
            id: id.to_string(),
        }
    }
}

/// The content of an `Error` element that is a child of `Response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutodiscoverError {
    /// `ErrorCode`.
    pub code: ErrorCode,
    /// `Message`; empty when absent.
    pub message: String,
    /// `DebugData`; empty when absent. autodisco always sends it empty, so nothing from a
    /// request is ever echoed back.
    pub debug_data: String,
    /// The `Time` and `Id` attributes; empty strings when absent.
    pub stamp: ErrorStamp,
}

impl AutodiscoverError {
    /// The error autodisco sends for `code`: the fixed message and empty debug data.
    pub fn new(code: ErrorCode, stamp: &ErrorStamp) -> Self {
        Self {
            code,
            message: code.message().to_owned(),
            debug_data: String::new(),
            stamp: stamp.clone(),
        }
    }

    /// Writes `<Error Time=".." Id="..">` with its three children.
    pub(crate) fn write(&self, writer: &mut XmlWriter) {
        writer.start(
            "Error",
            &[("Time", &self.stamp.time), ("Id", &self.stamp.id)],
        );
        writer.leaf("ErrorCode", &self.code.number().to_string());
        writer.leaf("Message", &self.message);
        writer.leaf("DebugData", &self.debug_data);
        writer.end();
    }

    /// Reads an `Error` element whose children are in `namespace`.
    pub(crate) fn read(error: &Element, namespace: &str) -> Result<Self, DecodeError> {
        let code = decode_error::required_text(error, namespace, "ErrorCode")?;
        let code = ErrorCode::from_number(decode_error::parse_value("ErrorCode", &code)?);
        Ok(Self {
            code,
            message: decode_error::optional_text(error, namespace, "Message")?.unwrap_or_default(),
            debug_data: decode_error::optional_text(error, namespace, "DebugData")?
                .unwrap_or_default(),
            stamp: ErrorStamp {
                time: error.attribute("Time").unwrap_or_default().to_owned(),
                id: error.attribute("Id").unwrap_or_default().to_owned(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for number in [500, 501, 600, 601, 602, 603, 42] {
            assert_eq!(ErrorCode::from_number(number).number(), number);
        }
        assert_eq!(ErrorCode::from_number(600), ErrorCode::InvalidRequest);
        assert_eq!(ErrorCode::from_number(7), ErrorCode::Other(7));
        assert_eq!(
            ErrorCode::InvalidRequest.to_string(),
            "600 (Invalid Request)"
        );
    }

    #[test]
    fn stamp_takes_a_numeric_id() {
        let stamp = ErrorStamp::new("09:08:07.123", 42);
        assert_eq!(stamp.id, "42");
        assert_eq!(stamp.time, "09:08:07.123");
    }
}
