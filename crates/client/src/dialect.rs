//! The dialects a mail client may discover its settings in.
//!
//! - [`Dialect::Pox`]: Outlook's POX AutoDiscover ([MS-OXDISCO], [MS-OXDSCLI]).
//! - [`Dialect::Soap`]: SOAP `GetUserSettings` as the EWS libraries send it ([MS-OXWSADISC]), at
//!   the same four candidates with the `.svc` path.
//! - [`Dialect::V2`]: Autodiscover v2 as current Outlook asks it
//!   (`/autodiscover/autodiscover.json`), then the POX request to the `AutodiscoverV1` URL.
//! - [`Dialect::Autoconfig`]: Mozilla autoconfig as Thunderbird fetches it, including the MX path.

use std::fmt;

use serde::Serialize;

/// A discovery dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// Outlook's POX AutoDiscover (`autodiscover.xml`).
    Pox,
    /// SOAP `GetUserSettings` (`autodiscover.svc`), as the EWS libraries do.
    Soap,
    /// Autodiscover v2 JSON (`autodiscover.json`), as current Outlook does. Named `json` on
    /// the command line and in JSON, as the probe always called it.
    #[serde(rename = "json")]
    V2,
    /// Mozilla autoconfig (`config-v1.1.xml`), as Thunderbird does.
    Autoconfig,
}

impl Dialect {
    /// Every dialect, in the order `--dialect all` shows them.
    pub const ALL: [Self; 4] = [Self::Pox, Self::Soap, Self::V2, Self::Autoconfig];

    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pox => "pox",
            Self::Soap => "soap",
            Self::V2 => "json",
            Self::Autoconfig => "autoconfig",
        }
    }

    /// The dialect named `name` (as [`Dialect::as_str`] writes it, or `v2`), in any case.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("v2") {
            return Some(Self::V2);
        }
        Self::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for dialect in Dialect::ALL {
            assert_eq!(Dialect::parse(dialect.as_str()), Some(dialect));
        }
        assert_eq!(Dialect::parse("SOAP"), Some(Dialect::Soap));
        assert_eq!(Dialect::parse("all"), None);
        assert_eq!(Dialect::parse("V2"), Some(Dialect::V2));
    }
}
