//! Validated domain names and email addresses.
//!
//! Every name that enters autodisco (from a request, the CLI or the database) passes through
//! [`Domain::parse`], so the rest of the code compares names in one canonical form: lower-case
//! A-labels (IDNA/UTS #46), no trailing dot.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The longest domain name DNS can carry in presentation form (RFC 1035 2.3.4).
const MAX_DOMAIN_LEN: usize = 253;
/// The longest single label (RFC 1035 2.3.4).
const MAX_LABEL_LEN: usize = 63;
/// The longest local part SMTP accepts (RFC 5321 4.5.3.1.1).
const MAX_LOCAL_PART_LEN: usize = 64;

/// Why a domain name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DomainError {
    /// Nothing was given.
    #[error("the domain name is empty")]
    Empty,
    /// Two dots in a row, or a leading dot.
    #[error("the domain name {name:?} has an empty label (two dots in a row or a leading dot)")]
    EmptyLabel {
        /// The name as given.
        name: String,
    },
    /// Longer than DNS allows.
    #[error("the domain name is {length} characters long; at most {MAX_DOMAIN_LEN} are allowed")]
    TooLong {
        /// Length of the A-label form.
        length: usize,
    },
    /// One label longer than DNS allows.
    #[error("the label {label:?} is {length} characters long; at most {MAX_LABEL_LEN} are allowed")]
    LabelTooLong {
        /// The offending label.
        label: String,
        /// Its length.
        length: usize,
    },
    /// A character a host name cannot contain.
    #[error("the domain name {name:?} contains a character a host name cannot have")]
    InvalidCharacter {
        /// The name as given.
        name: String,
    },
    /// A label that starts or ends with a hyphen.
    #[error("the label {label:?} starts or ends with a hyphen")]
    HyphenAtEdge {
        /// The offending label.
        label: String,
    },
    /// A single label, such as `localhost` or `com`: mail domains have at least two.
    #[error("the domain name {name:?} has a single label; a mail domain needs at least two")]
    SingleLabel {
        /// The name as given.
        name: String,
    },
    /// IDNA processing failed.
    #[error("the domain name {name:?} is not a valid internationalised name")]
    Idna {
        /// The name as given.
        name: String,
    },
}

/// A fully qualified domain name in canonical form: lower-case ASCII (A-labels), no trailing dot.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(Box<str>);

impl Domain {
    /// Validates and canonicalises a domain name.
    ///
    /// Accepts U-labels (converted to A-labels), any case, and one trailing dot (dropped).
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let trimmed = input.strip_suffix('.').unwrap_or(input);
        if trimmed.is_empty() {
            return Err(DomainError::Empty);
        }
        if trimmed.split('.').any(str::is_empty) {
            return Err(DomainError::EmptyLabel {
                name: input.to_owned(),
            });
        }
        let ascii = if trimmed.is_ascii() {
            trimmed.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii_strict(trimmed).map_err(|_| DomainError::Idna {
                name: input.to_owned(),
            })?
        };
        Self::check_ascii(&ascii, input)?;
        // A-labels that came in as ASCII must still be valid punycode.
        if ascii.split('.').any(|label| label.starts_with("xn--"))
            && idna::domain_to_unicode(&ascii).1.is_err()
        {
            return Err(DomainError::Idna {
                name: input.to_owned(),
            });
        }
        Ok(Self(ascii.into_boxed_str()))
    }

    fn check_ascii(ascii: &str, input: &str) -> Result<(), DomainError> {
        if ascii.len() > MAX_DOMAIN_LEN {
            return Err(DomainError::TooLong {
                length: ascii.len(),
            });
        }
        let mut labels = 0;
        for label in ascii.split('.') {
            labels += 1;
            if label.is_empty() {
                return Err(DomainError::EmptyLabel {
                    name: input.to_owned(),
                });
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(DomainError::LabelTooLong {
                    label: label.to_owned(),
                    length: label.len(),
                });
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(DomainError::InvalidCharacter {
                    name: input.to_owned(),
                });
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(DomainError::HyphenAtEdge {
                    label: label.to_owned(),
                });
            }
        }
        if labels < 2 {
            return Err(DomainError::SingleLabel {
                name: input.to_owned(),
            });
        }
        Ok(())
    }

    /// The canonical A-label form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name with the given label prepended, such as `autodiscover.` + this domain.
    pub fn with_prefix(&self, label: &str) -> Result<Self, DomainError> {
        Self::parse(&format!("{label}.{}", self.0))
    }

    /// The domain one label up (`a.b.c` gives `b.c`), if that still has two labels.
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_once('.')?;
        rest.contains('.').then(|| Self(rest.into()))
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Domain({})", self.0)
    }
}

impl FromStr for Domain {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Domain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Why an email address was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AddressError {
    /// There is no `@`.
    #[error("the address has no '@'")]
    MissingAt,
    /// Nothing before the `@`.
    #[error("the address has an empty local part")]
    EmptyLocalPart,
    /// The local part is longer than SMTP allows.
    #[error("the local part is {length} characters long; at most {MAX_LOCAL_PART_LEN} are allowed")]
    LocalPartTooLong {
        /// Its length in bytes.
        length: usize,
    },
    /// The local part has a character we do not accept (controls, spaces, quotes, angle brackets).
    #[error("the local part contains a character an address cannot have here")]
    InvalidLocalPart,
    /// The domain part is not a valid domain name.
    #[error("the domain part is invalid: {0}")]
    Domain(#[from] DomainError),
}

/// An email address: a local part as given, and a canonical [`Domain`].
///
/// The local part keeps its case (mailbox names may be case-sensitive, RFC 5321 2.4); matching
/// against per-user overrides lower-cases it, as every hosted mail system we target does.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress {
    local_part: Box<str>,
    domain: Domain,
}

impl EmailAddress {
    /// Parses `local@domain`. Quoted local parts and address literals are refused: no mail client
    /// configures an account for them, and refusing them keeps output escaping simple.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let input = input.trim();
        let (local, domain) = input.rsplit_once('@').ok_or(AddressError::MissingAt)?;
        if local.is_empty() {
            return Err(AddressError::EmptyLocalPart);
        }
        if local.len() > MAX_LOCAL_PART_LEN {
            return Err(AddressError::LocalPartTooLong {
                length: local.len(),
            });
        }
        let bad = |c: char| {
            c.is_control()
                || c.is_whitespace()
                // Not XML characters (XML 1.0 section 2.2): no XML answer could carry them.
                || matches!(c, '\u{FFFE}' | '\u{FFFF}')
                || matches!(
                    c,
                    '@' | '"' | '<' | '>' | '(' | ')' | '[' | ']' | ',' | ';' | ':' | '\\'
                )
        };
        if local.chars().any(bad)
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err(AddressError::InvalidLocalPart);
        }
        Ok(Self {
            local_part: local.into(),
            domain: Domain::parse(domain)?,
        })
    }

    /// Builds an address from parts already validated elsewhere.
    pub fn from_parts(local_part: &str, domain: Domain) -> Result<Self, AddressError> {
        Self::parse(&format!("{local_part}@{domain}"))
    }

    /// The part before the `@`, as given.
    pub fn local_part(&self) -> &str {
        &self.local_part
    }

    /// The canonical domain.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The same mailbox in another domain (for alias domains).
    pub fn with_domain(&self, domain: Domain) -> Self {
        Self {
            local_part: self.local_part.clone(),
            domain,
        }
    }

    /// The key per-user overrides are stored under: lower-cased local part, canonical domain.
    pub fn lookup_key(&self) -> String {
        format!("{}@{}", self.local_part.to_lowercase(), self.domain)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local_part, self.domain)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({self})")
    }
}

impl FromStr for EmailAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_is_canonical() {
        assert_eq!(
            Domain::parse("Example.COM.").unwrap().as_str(),
            "example.com"
        );
        assert_eq!(
            Domain::parse("bücher.example").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
    }

    #[test]
    fn domain_errors_are_specific() {
        assert!(matches!(
            Domain::parse("foo..bar"),
            Err(DomainError::EmptyLabel { .. })
        ));
        assert!(matches!(Domain::parse(""), Err(DomainError::Empty)));
        assert!(matches!(Domain::parse("."), Err(DomainError::Empty)));
        assert!(matches!(
            Domain::parse("localhost"),
            Err(DomainError::SingleLabel { .. })
        ));
        assert!(matches!(
            Domain::parse("-a.example"),
            Err(DomainError::HyphenAtEdge { .. })
        ));
        assert!(matches!(
            Domain::parse("a_b.example"),
            Err(DomainError::InvalidCharacter { .. })
        ));
        assert!(matches!(
            Domain::parse("a b.example"),
            Err(DomainError::InvalidCharacter { .. })
        ));
        assert!(matches!(
            Domain::parse(&format!("{}.example", "a".repeat(64))),
            Err(DomainError::LabelTooLong { .. })
        ));
        assert!(matches!(
            Domain::parse("xn--zz.example"),
            Err(DomainError::Idna { .. })
        ));
    }

    #[test]
    fn parent_stops_at_two_labels() {
        let d = Domain::parse("a.b.example").unwrap();
        assert_eq!(d.parent().unwrap().as_str(), "b.example");
        assert_eq!(d.parent().unwrap().parent(), None);
    }

    #[test]
    fn address_parsing() {
        let a = EmailAddress::parse(" John.Doe@Example.com ").unwrap();
        assert_eq!(a.local_part(), "John.Doe");
        assert_eq!(a.domain().as_str(), "example.com");
        assert_eq!(a.lookup_key(), "john.doe@example.com");
        assert_eq!(EmailAddress::parse("nobody"), Err(AddressError::MissingAt));
        assert_eq!(
            EmailAddress::parse("@x.example"),
            Err(AddressError::EmptyLocalPart)
        );
        assert_eq!(
            EmailAddress::parse("a<b@x.example"),
            Err(AddressError::InvalidLocalPart)
        );
        assert!(matches!(
            EmailAddress::parse("a@x..example"),
            Err(AddressError::Domain(_))
        ));
        // Found by the property tests: XML cannot carry U+FFFE or U+FFFF, so no answer could
        // name such an address.
        for local in ["\u{FFFE}", "a\u{FFFF}b"] {
            assert_eq!(
                EmailAddress::parse(&format!("{local}@x.example")),
                Err(AddressError::InvalidLocalPart)
            );
        }
    }
}
