//! The directory's records as the store hands them out: domains, user overrides, profiles.

use std::fmt;
use std::str::FromStr;

use autodisco_proto::{Domain, EmailAddress, ServiceProfile};

use crate::error::{DirectoryError, OverrideProblem};

/// Whether a domain is answered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DomainStatus {
    /// Answered normally.
    #[default]
    Active,
    /// Answered as not hosted, as if it did not exist (the customer stopped paying, abuse, ...).
    Suspended,
}

impl DomainStatus {
    /// The name stored in the database and shown to admins.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
}

impl fmt::Display for DomainStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is neither `active` nor `suspended`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown domain status {0:?}; use active or suspended")]
pub struct UnknownStatus(pub String);

impl FromStr for DomainStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

/// One hosted domain as listed by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInfo {
    /// The canonical name.
    pub name: Domain,
    /// The domain's own status. An alias is answered only while both it and its primary are
    /// active.
    pub status: DomainStatus,
    /// Primary or alias, with what comes with each.
    pub kind: DomainKind,
}

impl DomainInfo {
    /// A tag that changes whenever anything shown about the domain changes (status, profile or
    /// primary, aliases, override count): the admin API's ETag, so two control panels cannot
    /// overwrite each other's change unseen.
    pub fn version(&self) -> String {
        let mut text = format!("{}\n{}\n", self.name, self.status);
        match &self.kind {
            DomainKind::Primary {
                profile,
                aliases,
                users,
            } => {
                text.push_str(&format!("profile {profile}\n{users}\n"));
                for alias in aliases {
                    text.push_str(alias.as_str());
                    text.push('\n');
                }
            }
            DomainKind::Alias { primary } => text.push_str(&format!("alias {primary}\n")),
        }
        version_tag(text.as_bytes())
    }
}

/// A tag that changes whenever the profile changes (its ETag in the admin API).
pub fn profile_version(profile: &ServiceProfile) -> String {
    let json = serde_json::to_string(profile).expect("a ServiceProfile always serialises");
    version_tag(json.as_bytes())
}

/// Whether a domain stands on its own or points at another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainKind {
    /// A primary domain: it has a profile and may have aliases and user overrides.
    Primary {
        /// The name of its service profile.
        profile: String,
        /// Its alias domains, sorted.
        aliases: Vec<Domain>,
        /// How many user overrides it has.
        users: u64,
    },
    /// An alias: addresses in it are answered as the same local part in the primary domain.
    Alias {
        /// The primary domain it points at.
        primary: Domain,
    },
}

/// One page of the domain listing: names after `after`, in name order, filtered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainQuery {
    /// Only names after this one (the last name of the previous page).
    pub after: Option<String>,
    /// At most this many (capped at [`DomainQuery::MAX_LIMIT`]).
    pub limit: u32,
    /// Only primaries with this profile.
    pub profile: Option<String>,
    /// Only domains with this status.
    pub status: Option<DomainStatus>,
    /// Only names starting with this.
    pub prefix: Option<String>,
}

impl DomainQuery {
    /// The largest page: bounded work per request.
    pub const MAX_LIMIT: u32 = 1000;
}

/// A change to a domain: what is given changes, the rest stays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainUpdate {
    /// Move a primary to this profile.
    pub profile: Option<String>,
    /// Suspend or resume.
    pub status: Option<DomainStatus>,
}

/// A stored service profile with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileEntry {
    /// The profile's name.
    pub name: String,
    /// The profile.
    pub profile: ServiceProfile,
    /// How many primary domains use it.
    pub domains: u64,
}

/// Whether a put created a record or replaced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// There was none before.
    Created,
    /// An existing one was replaced.
    Replaced,
}

/// How to remove a primary domain that still has aliases or user overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DomainRemoval {
    /// Refuse with [`DirectoryError::DomainHasDependents`]: the safe default.
    #[default]
    OnlyIfUnused,
    /// Remove the aliases and user overrides too, in the same transaction.
    Cascade,
}

/// What a domain removal took with it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemovedDomain {
    /// Alias domains removed along with the primary.
    pub aliases: Vec<Domain>,
    /// How many user overrides were removed.
    pub users: u64,
}

/// Where a redirecting override sends the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// Restart discovery at another address (POX `redirectAddr`).
    Address(EmailAddress),
    /// Ask another AutoDiscover endpoint (POX `redirectUrl`); always `https://`.
    Url(String),
}

/// Settings that differ for one mailbox from its domain's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOverride {
    /// The mailbox. The store keeps it in its primary domain: an address given in an alias
    /// domain is rewritten to the primary.
    pub address: EmailAddress,
    /// The display name clients show for the account.
    pub display_name: Option<String>,
    /// The login name, replacing every server's username template.
    pub login_name: Option<String>,
    /// Send the client elsewhere instead of answering with settings.
    pub redirect: Option<Redirect>,
}

/// Longest display or login name we store; no client shows more and it keeps answers small.
const MAX_NAME_LEN: usize = 256;
/// Longest redirect URL we store.
const MAX_URL_LEN: usize = 2048;

impl UserOverride {
    /// An override for `address` that sets nothing yet.
    pub fn new(address: EmailAddress) -> Self {
        Self {
            address,
            display_name: None,
            login_name: None,
            redirect: None,
        }
    }

    /// Checks what can be checked without the database: something is set, names are sane, a
    /// redirect URL is `https://` and a redirect address is not the mailbox itself.
    pub fn validate(&self) -> Result<(), DirectoryError> {
        self.problem().map_or(Ok(()), |problem| {
            Err(DirectoryError::InvalidOverride {
                address: self.address.to_string(),
                problem,
            })
        })
    }

    fn problem(&self) -> Option<OverrideProblem> {
        if self.display_name.is_none() && self.login_name.is_none() && self.redirect.is_none() {
            return Some(OverrideProblem::Empty);
        }
        for (field, value) in [
            ("display name", &self.display_name),
            ("login name", &self.login_name),
        ] {
            let problem = value
                .as_deref()
                .and_then(|value| text_problem(field, value, MAX_NAME_LEN));
            if problem.is_some() {
                return problem;
            }
        }
        match &self.redirect {
            Some(Redirect::Url(url)) => {
                if let Some(problem) = text_problem("redirect URL", url, MAX_URL_LEN) {
                    return Some(problem);
                }
                let https = url.len() > 8 && url[..8].eq_ignore_ascii_case("https://");
                if !https || url.chars().any(char::is_whitespace) {
                    return Some(OverrideProblem::RedirectUrlNotHttps { url: url.clone() });
                }
            }
            Some(Redirect::Address(target)) if target.lookup_key() == self.address.lookup_key() => {
                return Some(OverrideProblem::RedirectToSelf);
            }
            _ => {}
        }
        None
    }
}

fn text_problem(field: &'static str, value: &str, max: usize) -> Option<OverrideProblem> {
    let length = value.chars().count();
    if value.trim().is_empty() {
        Some(OverrideProblem::FieldEmpty { field })
    } else if length > max {
        Some(OverrideProblem::FieldTooLong { field, length, max })
    } else if value.chars().any(char::is_control) {
        Some(OverrideProblem::ControlCharacter { field })
    } else {
        None
    }
}

/// Profile names are typed on command lines and shown in listings: keep them plain.
pub fn check_profile_name(name: &str) -> Result<(), DirectoryError> {
    if is_plain_name(name) {
        Ok(())
    } else {
        Err(DirectoryError::InvalidProfileName {
            name: name.to_owned(),
        })
    }
}

/// A short content tag: the first 16 hex digits of SHA-256. Collisions between two versions of
/// one object are what would matter, and 64 bits make them practically impossible.
pub(crate) fn version_tag(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes)[..8])
}

/// Bytes as lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 1 to 64 ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit: safe on a
/// command line, in a URL path and in a listing.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(address: &str) -> UserOverride {
        UserOverride::new(EmailAddress::parse(address).unwrap())
    }

    fn problem(o: &UserOverride) -> OverrideProblem {
        match o.validate() {
            Err(DirectoryError::InvalidOverride { problem, .. }) => problem,
            other => panic!("expected InvalidOverride, got {other:?}"),
        }
    }

    #[test]
    fn override_validation() {
        let mut o = user("Jane@a.example");
        assert_eq!(problem(&o), OverrideProblem::Empty);
        o.display_name = Some("Jane Doe".into());
        assert!(o.validate().is_ok());
        o.login_name = Some(" ".into());
        assert_eq!(
            problem(&o),
            OverrideProblem::FieldEmpty {
                field: "login name"
            }
        );
        o.login_name = Some("a\nb".into());
        assert_eq!(
            problem(&o),
            OverrideProblem::ControlCharacter {
                field: "login name"
            }
        );
        o.login_name = Some("x".repeat(257));
        assert!(matches!(problem(&o), OverrideProblem::FieldTooLong { .. }));
        o.login_name = None;
        o.redirect = Some(Redirect::Url("http://other.example/autodiscover".into()));
        assert!(matches!(
            problem(&o),
            OverrideProblem::RedirectUrlNotHttps { .. }
        ));
        o.redirect = Some(Redirect::Url("HTTPS://other.example/x".into()));
        assert!(o.validate().is_ok());
        o.redirect = Some(Redirect::Address(
            EmailAddress::parse("jane@A.example").unwrap(),
        ));
        assert_eq!(problem(&o), OverrideProblem::RedirectToSelf);
        o.redirect = Some(Redirect::Address(
            EmailAddress::parse("jane@b.example").unwrap(),
        ));
        assert!(o.validate().is_ok());
    }

    #[test]
    fn profile_names() {
        assert!(check_profile_name("standard").is_ok());
        assert!(check_profile_name("Plan-2.eu_1").is_ok());
        for bad in ["", "-x", "a b", "a/b", &"x".repeat(65), "ü"] {
            assert!(check_profile_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn status_round_trips() {
        for s in [DomainStatus::Active, DomainStatus::Suspended] {
            assert_eq!(s.as_str().parse::<DomainStatus>(), Ok(s));
        }
        assert!("on".parse::<DomainStatus>().is_err());
    }
}
