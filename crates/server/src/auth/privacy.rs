//! What a request may learn about a mailbox.
//!
//! With `auth = "none"` everyone gets what the directory says, per-user overrides included:
//! the hoster chose openness. With `auth = "basic"` overrides (display name, login name,
//! redirects) are per-user data:
//!
//! - anonymous endpoints (`/mobileconfig`, autoconfig with `?emailaddress=`, v2 JSON) answer
//!   every address of a hosted domain with the domain's settings, as if it had no override, so
//!   guessing local parts harvests nothing and known and unknown users look the same;
//! - an authenticated POX or SOAP request gets the settings of the caller's own mailbox only
//!   (its address in any alias domain, and the address its own redirectAddr points to, which a
//!   client follows with the same credentials); any other mailbox is answered as an address that
//!   is not hosted ([MS-OXDSCLI] 2.2.4.1.1.3.2 error 500, [MS-OXWSADISC] `InvalidUser`), so it
//!   can neither be read nor told apart from one that does not exist.

use autodisco_directory::Snapshot;
use autodisco_proto::{AccountSettings, Answer, EmailAddress};
use http::HeaderMap;

use super::{Authenticator, basic_credentials};

/// Who asks, as far as privacy goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// Authentication is off: the directory's answer for everyone.
    Anyone,
    /// Authentication is on and the caller is not authenticated: domain-level answers only.
    Anonymous,
    /// The authenticated owner of this mailbox (in its primary domain).
    Account(EmailAddress),
}

impl Caller {
    /// The caller of an endpoint that takes no credentials.
    pub(crate) fn anonymous(auth: &Authenticator) -> Self {
        if auth.is_enabled() {
            Self::Anonymous
        } else {
            Self::Anyone
        }
    }

    /// The caller of an endpoint behind [`super::require`], whose `headers` it accepted: the
    /// Basic user, in its primary domain.
    pub(crate) fn authenticated(auth: &Authenticator, headers: &HeaderMap) -> Self {
        if !auth.is_enabled() {
            return Self::Anyone;
        }
        basic_credentials(headers)
            .and_then(|(user, _)| EmailAddress::parse(&user).ok())
            .map_or(Self::Anonymous, |address| {
                Self::Account(auth.account(&address).0)
            })
    }

    /// The answer for `address` this caller may have.
    pub(crate) fn answer(&self, snapshot: &Snapshot, address: &EmailAddress) -> Answer {
        match self {
            Self::Anyone => snapshot.resolve(address),
            Self::Anonymous => domain_answer(snapshot, address),
            Self::Account(own) if owns(snapshot, own, address) => snapshot.resolve(address),
            Self::Account(_) => Answer::NotHosted,
        }
    }

    /// The settings for `address` this caller may have, following one redirectAddr inside the
    /// directory: a mailbox that moved to another hosted address is configured as that one. A
    /// redirectUrl (served by another AutoDiscover service) has no equivalent in the document
    /// dialects (autoconfig, Apple profiles), so it gives none.
    pub(crate) fn settings_following_redirect(
        &self,
        snapshot: &Snapshot,
        address: &EmailAddress,
    ) -> Option<AccountSettings> {
        match self.answer(snapshot, address) {
            Answer::Settings(settings) => Some(settings),
            Answer::RedirectAddr(target) => match self.answer(snapshot, &target) {
                Answer::Settings(settings) => Some(settings),
                _ => None,
            },
            Answer::RedirectUrl(_) | Answer::NotHosted => None,
        }
    }
}

/// The answer for `address` as if it had no override: the domain's settings, or not hosted.
pub(crate) fn domain_answer(snapshot: &Snapshot, address: &EmailAddress) -> Answer {
    match snapshot.domain_profile(address.domain()) {
        Some((primary, profile)) => {
            Answer::Settings(AccountSettings::new(address.with_domain(primary), profile))
        }
        None => Answer::NotHosted,
    }
}

/// `address` in its primary domain (as it is when its domain is not hosted).
fn primary(snapshot: &Snapshot, address: &EmailAddress) -> EmailAddress {
    match snapshot.domain_profile(address.domain()) {
        Some((domain, _)) => address.with_domain(domain),
        None => address.clone(),
    }
}

/// Whether `address` is the mailbox of `own` (a primary-domain address).
fn owns(snapshot: &Snapshot, own: &EmailAddress, address: &EmailAddress) -> bool {
    let wanted = primary(snapshot, address).lookup_key();
    if wanted == own.lookup_key() {
        return true;
    }
    match snapshot.resolve(own) {
        Answer::RedirectAddr(target) => primary(snapshot, &target).lookup_key() == wanted,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use autodisco_directory::{DomainStatus, Redirect, SnapshotBuilder, UserOverride};
    use autodisco_proto::{Domain, ServiceProfile};

    use super::*;

    fn address(text: &str) -> EmailAddress {
        EmailAddress::parse(text).unwrap()
    }

    fn snapshot() -> Snapshot {
        let mut builder = SnapshotBuilder::new(1);
        builder
            .add_profile("p", ServiceProfile::default_for_hoster("h.example"))
            .unwrap();
        let a = Domain::parse("a.example").unwrap();
        builder.add_domain(&a, "p", DomainStatus::Active).unwrap();
        builder
            .add_alias(
                &Domain::parse("b.example").unwrap(),
                &a,
                DomainStatus::Active,
            )
            .unwrap();
        let mut jane = UserOverride::new(address("jane@a.example"));
        jane.display_name = Some("Jane Doe".into());
        jane.login_name = Some("jdoe".into());
        builder.add_user(&jane).unwrap();
        let mut moved = UserOverride::new(address("moved@a.example"));
        moved.redirect = Some(Redirect::Address(address("new@a.example")));
        builder.add_user(&moved).unwrap();
        builder.build().unwrap()
    }

    #[test]
    fn anonymous_callers_get_the_domain_settings_only() {
        let snapshot = snapshot();
        let anonymous = Caller::Anonymous;
        let jane = anonymous.answer(&snapshot, &address("jane@b.example"));
        let Answer::Settings(settings) = &jane else {
            panic!("{jane:?}")
        };
        assert_eq!(settings.address.to_string(), "jane@a.example");
        assert_eq!(
            (&settings.display_name, &settings.login_name),
            (&None, &None)
        );
        assert!(matches!(
            anonymous.answer(&snapshot, &address("moved@a.example")),
            Answer::Settings(_)
        ));
        assert_eq!(
            anonymous.answer(&snapshot, &address("x@c.example")),
            Answer::NotHosted
        );
        // With authentication off, everything the directory says.
        assert_eq!(
            Caller::Anyone.answer(&snapshot, &address("jane@b.example")),
            snapshot.resolve(&address("jane@a.example"))
        );
    }

    #[test]
    fn an_account_gets_its_own_mailbox_only() {
        let snapshot = snapshot();
        let jane = Caller::Account(address("jane@a.example"));
        for own in ["jane@a.example", "JANE@b.example"] {
            let answer = jane.answer(&snapshot, &address(own));
            assert_eq!(answer, snapshot.resolve(&address(own)), "{own}");
            let Answer::Settings(settings) = answer else {
                panic!("{own}")
            };
            assert_eq!(settings.display_name.as_deref(), Some("Jane Doe"));
        }
        for other in ["joe@a.example", "moved@b.example", "jane@c.example"] {
            assert_eq!(
                jane.answer(&snapshot, &address(other)),
                Answer::NotHosted,
                "{other}"
            );
        }
        // A redirected mailbox may follow its own redirect.
        let moved = Caller::Account(address("moved@a.example"));
        assert_eq!(
            moved.answer(&snapshot, &address("moved@a.example")),
            Answer::RedirectAddr(address("new@a.example"))
        );
        assert!(matches!(
            moved.answer(&snapshot, &address("new@b.example")),
            Answer::Settings(_)
        ));
    }
}
