//! Who changes the directory and what they changed: actors, the audit log's entries, and the
//! admin API's bearer tokens.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{DirectoryError, ObjectKind};
use crate::model::{hex, is_plain_name};

/// Who makes a change; recorded with every audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// The `autodisco` command line (domain, profile, user, token, import commands).
    Cli,
    /// The server writing the config file's profiles into the directory at start or SIGHUP.
    Config,
    /// An admin API client, by the name of its token.
    Token(String),
}

impl Actor {
    /// The name stored in the audit log: `cli`, `config` or the token's name. Token names can
    /// never be `cli` or `config` ([`check_token_name`]), so the name alone says who it was.
    pub fn name(&self) -> &str {
        match self {
            Self::Cli => "cli",
            Self::Config => "config",
            Self::Token(name) => name,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One change in the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// The directory revision the change committed as; with `seq`, the entry's position.
    pub revision: u64,
    /// Its number within that revision (an import writes many entries in one revision).
    pub seq: u64,
    /// When, in Unix seconds.
    pub time: i64,
    /// `cli`, `config` or a token's name.
    pub actor: String,
    /// What was done, such as `domain.add` or `profile.put`.
    pub action: String,
    /// The object's name: a domain, a profile, an address, a token.
    pub object: String,
    /// The object before the change, `None` when it did not exist.
    pub before: Option<serde_json::Value>,
    /// The object after the change, `None` when it was removed.
    pub after: Option<serde_json::Value>,
}

/// What an admin API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// GET requests only.
    Read,
    /// Reads and changes.
    Write,
}

impl TokenScope {
    /// The name stored and shown: `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    /// Whether a token of this scope may do what `needed` asks.
    pub fn allows(self, needed: TokenScope) -> bool {
        self == Self::Write || needed == Self::Read
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenScope {
    type Err = DirectoryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            other => Err(DirectoryError::InvalidTokenScope {
                scope: other.chars().take(20).collect(),
            }),
        }
    }
}

/// A stored token, without its secret (which is never stored) and without its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// The holder's name, recorded as the actor of its changes.
    pub name: String,
    /// What it may do.
    pub scope: TokenScope,
    /// When it was created, Unix seconds.
    pub created: i64,
    /// When it was revoked, Unix seconds; a revoked token authenticates nothing.
    pub revoked: Option<i64>,
}

/// The prefix of every token, so secret scanners and people recognise one.
const TOKEN_PREFIX: &str = "adt_";

/// A new token's secret: the prefix and 32 random bytes in hex. Shown once, never stored.
pub(crate) fn new_token_secret() -> Result<String, DirectoryError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| DirectoryError::Randomness {
        reason: e.to_string(),
    })?;
    Ok(format!("{TOKEN_PREFIX}{}", hex(&bytes)))
}

/// The stored form of a token: SHA-256 of the secret, in hex. A plain fast hash is right here:
/// the secret has 256 random bits, so there is nothing to guess (unlike a password).
pub(crate) fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Refuses a conditional change whose expected version (`if_match`, HTTP If-Match without
/// quotes, `*` for "any existing") differs from `current` (`None`: the object does not exist).
pub(crate) fn check_version(
    kind: ObjectKind,
    name: &str,
    current: Option<&str>,
    if_match: Option<&str>,
) -> Result<(), DirectoryError> {
    let matches = match (if_match, current) {
        (None, _) => true,
        (Some("*"), current) => current.is_some(),
        (Some(expected), Some(current)) => expected == current,
        (Some(_), None) => false,
    };
    if matches {
        Ok(())
    } else {
        Err(DirectoryError::Changed {
            kind,
            name: name.to_owned(),
            current: current.unwrap_or("none").to_owned(),
        })
    }
}

/// Token names are typed on command lines and recorded as audit actors: plain, and never one
/// of the built-in actor names.
pub fn check_token_name(name: &str) -> Result<(), DirectoryError> {
    if is_plain_name(name) && name != Actor::Cli.name() && name != Actor::Config.name() {
        Ok(())
    } else {
        Err(DirectoryError::InvalidTokenName {
            name: name.chars().take(80).collect(),
        })
    }
}

/// Now in Unix seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `seconds` since the Unix epoch as RFC 3339 in UTC (`2026-11-30T16:31:27Z`), for listings and
/// the API. Days to a civil date by the proleptic Gregorian calendar's 400-year cycle.
pub fn format_time(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Shift the epoch to 0000-03-01 so the leap day ends each 4/100/400-year cycle.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(1_796_056_287), "2026-11-30T16:31:27Z");
        assert_eq!(format_time(-1), "1969-12-31T23:59:59Z");
        assert_eq!(format_time(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn token_names_and_scopes() {
        assert!(check_token_name("panel-1").is_ok());
        for bad in ["", "cli", "config", "a b", "-x", &"x".repeat(65)] {
            assert!(check_token_name(bad).is_err(), "{bad:?}");
        }
        assert!(TokenScope::Write.allows(TokenScope::Write));
        assert!(TokenScope::Write.allows(TokenScope::Read));
        assert!(TokenScope::Read.allows(TokenScope::Read));
        assert!(!TokenScope::Read.allows(TokenScope::Write));
        assert!("admin".parse::<TokenScope>().is_err());
    }

    #[test]
    fn secrets_are_random_and_hashed() {
        let a = new_token_secret().unwrap();
        let b = new_token_secret().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(
            hex(&token_hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
