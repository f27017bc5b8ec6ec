//! The immutable in-memory directory every request is answered from.
//!
//! A [`Snapshot`] is built once (from the store, or by hand with a [`SnapshotBuilder`] in
//! tests) and never changes; the live directory swaps whole snapshots. Answering is a pure
//! function of the snapshot and the address, so it needs no locks and no I/O.

mod domain_table;

use std::collections::HashMap;
use std::collections::hash_map;
use std::fmt;
use std::sync::Arc;

use autodisco_proto::{AccountSettings, Answer, Domain, EmailAddress, ServiceProfile};

use crate::error::{DirectoryError, ObjectKind};
use crate::model::{DomainStatus, Redirect, UserOverride};
use domain_table::{DomainTable, Entry, MAX_INDEX, StrArena};

/// How many domains, profiles and overrides a snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotCounts {
    /// Service profiles.
    pub profiles: usize,
    /// Primary domains, active or suspended.
    pub primary_domains: usize,
    /// Alias domains, active or suspended.
    pub alias_domains: usize,
    /// Per-user overrides.
    pub users: usize,
}

/// What a per-user override changes, stored compactly.
#[derive(Debug)]
struct UserEntry {
    display_name: Option<Box<str>>,
    login_name: Option<Box<str>>,
    redirect: Option<Redirect>,
}

/// The whole directory at one revision, immutable, answering addresses without I/O.
pub struct Snapshot {
    revision: u64,
    /// Each profile once; domains refer to it by position.
    profiles: Vec<(Box<str>, Arc<ServiceProfile>)>,
    domains: DomainTable,
    /// Keyed by [`EmailAddress::lookup_key`] of the address in its primary domain.
    users: HashMap<Box<str>, UserEntry>,
    counts: SnapshotCounts,
}

impl Snapshot {
    /// A snapshot at revision 0 that hosts nothing.
    pub fn empty() -> Self {
        SnapshotBuilder::new(0)
            .build()
            .expect("an empty snapshot is always consistent")
    }

    /// The directory revision this snapshot was built from.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// How many profiles, domains and overrides it holds.
    pub fn counts(&self) -> SnapshotCounts {
        self.counts
    }

    /// The heap memory the snapshot holds, roughly (profiles not counted), for metrics.
    pub fn approximate_heap_bytes(&self) -> usize {
        let users: usize = self
            .users
            .iter()
            .map(|(key, user)| {
                key.len()
                    + user.display_name.as_ref().map_or(0, |s| s.len())
                    + user.login_name.as_ref().map_or(0, |s| s.len())
                    + 64
            })
            .sum();
        self.domains.heap_bytes() + users + self.users.capacity() * 16
    }

    /// The named profile, if the snapshot has it.
    pub fn profile(&self, name: &str) -> Option<&Arc<ServiceProfile>> {
        self.profiles
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, p)| p)
    }

    /// Whether `domain` is answered for: an active primary, or an active alias of an active
    /// primary. The plain-HTTP redirect site uses this to decide whom to redirect.
    pub fn hosts(&self, domain: &Domain) -> bool {
        self.active_primary_of(domain).is_some()
    }

    /// The entry of the primary domain answering for `domain`, and that primary's number if
    /// `domain` is an alias; `None` if `domain` is not hosted or suspended.
    fn active_primary_of(&self, domain: &Domain) -> Option<(Entry, Option<u32>)> {
        let found = self.domains.find(domain.as_str())?;
        let entry = self.domains.entry(found);
        if entry.is_suspended() {
            return None;
        }
        if !entry.is_alias() {
            return Some((entry, None));
        }
        let primary = self.domains.entry(entry.index());
        (!primary.is_suspended()).then_some((primary, Some(entry.index())))
    }

    /// The primary domain and the profile answering for `domain` (itself or, for an alias, its
    /// primary), when it is hosted and active: what domain-level documents (autoconfig without an
    /// address, PACC, SOAP `GetDomainSettings`) are rendered from.
    pub fn domain_profile(&self, domain: &Domain) -> Option<(Domain, Arc<ServiceProfile>)> {
        let (primary_entry, alias_target) = self.active_primary_of(domain)?;
        let primary = match alias_target {
            None => domain.clone(),
            Some(index) => Domain::parse(self.domains.name(index)).ok()?,
        };
        Some((
            primary,
            self.profiles[primary_entry.index() as usize].1.clone(),
        ))
    }

    /// The answer for `address`:
    ///
    /// - unknown or suspended domain (or an alias of a suspended primary): [`Answer::NotHosted`];
    /// - an alias domain is answered as the same local part in the primary domain, with settings
    ///   directly (the settings' address is the primary-domain address);
    /// - a user override with a redirect: [`Answer::RedirectAddr`] or [`Answer::RedirectUrl`];
    /// - a user override with a display or login name: the domain's settings with those set;
    /// - anyone else, existing mailbox or not: exactly the domain's settings, so answers do not
    ///   reveal which mailboxes exist.
    pub fn resolve(&self, address: &EmailAddress) -> Answer {
        let Some((primary_entry, alias_target)) = self.active_primary_of(address.domain()) else {
            return Answer::NotHosted;
        };
        let address = match alias_target {
            None => address.clone(),
            Some(primary) => match Domain::parse(self.domains.name(primary)) {
                Ok(domain) => address.with_domain(domain),
                // Names are validated when the snapshot is built, so this does not happen; if it
                // did, refusing beats answering for a domain we cannot name.
                Err(_) => return Answer::NotHosted,
            },
        };
        let profile = self.profiles[primary_entry.index() as usize].1.clone();
        let user = if self.users.is_empty() {
            None
        } else {
            self.users.get(address.lookup_key().as_str())
        };
        let Some(user) = user else {
            return Answer::Settings(AccountSettings::new(address, profile));
        };
        match &user.redirect {
            Some(Redirect::Address(target)) => Answer::RedirectAddr(target.clone()),
            Some(Redirect::Url(url)) => Answer::RedirectUrl(url.clone()),
            None => {
                let mut settings = AccountSettings::new(address, profile);
                settings.display_name = user.display_name.as_deref().map(str::to_owned);
                settings.login_name = user.login_name.as_deref().map(str::to_owned);
                Answer::Settings(settings)
            }
        }
    }
}

impl Default for Snapshot {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for Snapshot {
    // Never dump a million domains into a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("revision", &self.revision)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

/// Assembles a [`Snapshot`]: profiles first, then domains and aliases in any order, then
/// users; [`build`](Self::build) checks that everything refers to something that exists.
///
/// The store loads through this too, so a hand-built snapshot in a test behaves exactly like
/// one loaded from a database.
#[derive(Debug)]
pub struct SnapshotBuilder {
    revision: u64,
    profiles: Vec<(Box<str>, Arc<ServiceProfile>)>,
    profile_numbers: HashMap<Box<str>, u32>,
    names: StrArena,
    entries: Vec<Entry>,
    /// Aliases carry a number into this until `build` looks their primaries up.
    alias_targets: StrArena,
    users: HashMap<Box<str>, UserEntry>,
}

impl SnapshotBuilder {
    /// An empty builder for a snapshot of `revision`.
    pub fn new(revision: u64) -> Self {
        Self {
            revision,
            profiles: Vec::new(),
            profile_numbers: HashMap::new(),
            names: StrArena::default(),
            entries: Vec::new(),
            alias_targets: StrArena::default(),
            users: HashMap::new(),
        }
    }

    /// Reserves room for `domains` domains whose names total `name_bytes` bytes, so loading a
    /// large directory does not overshoot memory by growing buffers by doubling.
    pub fn reserve_domains(&mut self, domains: usize, name_bytes: usize) -> &mut Self {
        if self.names.len() == 0 {
            self.names = StrArena::with_capacity(domains, name_bytes);
        }
        self.entries.reserve(domains);
        self
    }

    /// Adds a profile under `name`.
    pub fn add_profile(
        &mut self,
        name: &str,
        profile: impl Into<Arc<ServiceProfile>>,
    ) -> Result<&mut Self, DirectoryError> {
        let number = u32::try_from(self.profiles.len())
            .ok()
            .filter(|&n| n <= MAX_INDEX)
            .ok_or(DirectoryError::TooLarge {
                what: "profiles",
                max: u64::from(MAX_INDEX),
            })?;
        match self.profile_numbers.entry(name.into()) {
            hash_map::Entry::Occupied(_) => {
                return Err(DirectoryError::AlreadyExists {
                    kind: ObjectKind::Profile,
                    name: name.to_owned(),
                });
            }
            hash_map::Entry::Vacant(slot) => {
                slot.insert(number);
            }
        }
        self.profiles.push((name.into(), profile.into()));
        Ok(self)
    }

    /// Adds a primary domain using the profile `profile` (added before).
    pub fn add_domain(
        &mut self,
        domain: &Domain,
        profile: &str,
        status: DomainStatus,
    ) -> Result<&mut Self, DirectoryError> {
        self.push_domain(domain.as_str(), profile, status)?;
        Ok(self)
    }

    /// Adds an alias of `primary`, which may be added before or after.
    pub fn add_alias(
        &mut self,
        alias: &Domain,
        primary: &Domain,
        status: DomainStatus,
    ) -> Result<&mut Self, DirectoryError> {
        self.push_alias(alias.as_str(), primary.as_str(), status)?;
        Ok(self)
    }

    /// Adds a per-user override; its address must be in a primary domain.
    pub fn add_user(&mut self, user: &UserOverride) -> Result<&mut Self, DirectoryError> {
        user.validate()?;
        let entry = UserEntry {
            display_name: user.display_name.as_deref().map(Box::from),
            login_name: user.login_name.as_deref().map(Box::from),
            redirect: user.redirect.clone(),
        };
        match self.users.entry(user.address.lookup_key().into()) {
            hash_map::Entry::Occupied(slot) => Err(DirectoryError::AlreadyExists {
                kind: ObjectKind::UserOverride,
                name: slot.key().to_string(),
            }),
            hash_map::Entry::Vacant(slot) => {
                slot.insert(entry);
                Ok(self)
            }
        }
    }

    /// Adds a primary domain whose name the caller has checked to be canonical.
    pub(crate) fn push_domain(
        &mut self,
        name: &str,
        profile: &str,
        status: DomainStatus,
    ) -> Result<(), DirectoryError> {
        let profile =
            *self
                .profile_numbers
                .get(profile)
                .ok_or_else(|| DirectoryError::NotFound {
                    kind: ObjectKind::Profile,
                    name: profile.to_owned(),
                })?;
        self.names.push(name)?;
        self.entries
            .push(Entry::primary(profile, status == DomainStatus::Suspended));
        Ok(())
    }

    /// Adds an alias whose names the caller has checked to be canonical.
    pub(crate) fn push_alias(
        &mut self,
        name: &str,
        primary: &str,
        status: DomainStatus,
    ) -> Result<(), DirectoryError> {
        let target = self.alias_targets.push(primary)?;
        self.names.push(name)?;
        self.entries
            .push(Entry::alias(target, status == DomainStatus::Suspended));
        Ok(())
    }

    /// Checks every reference and freezes the snapshot.
    ///
    /// Fails on a domain added twice, an alias whose primary is missing or is itself an alias,
    /// and a user override in a missing or alias domain.
    pub fn build(self) -> Result<Snapshot, DirectoryError> {
        let domain = |name: &str| Domain::parse(name).expect("names are canonical when added");
        let mut domains = DomainTable::build(self.names, self.entries).map_err(|duplicate| {
            DirectoryError::AlreadyExists {
                kind: ObjectKind::Domain,
                name: duplicate.0,
            }
        })?;
        let mut counts = SnapshotCounts {
            profiles: self.profiles.len(),
            users: self.users.len(),
            ..SnapshotCounts::default()
        };
        for index in 0..domains.len() as u32 {
            let entry = domains.entry(index);
            if !entry.is_alias() {
                counts.primary_domains += 1;
                continue;
            }
            counts.alias_domains += 1;
            let target_name = self.alias_targets.get(entry.index());
            let target = domains
                .find(target_name)
                .ok_or_else(|| DirectoryError::NotFound {
                    kind: ObjectKind::Domain,
                    name: target_name.to_owned(),
                })?;
            let target_entry = domains.entry(target);
            if target_entry.is_alias() {
                // The target may not be resolved yet; its primary name is in alias_targets then.
                let target_primary = if target < index {
                    domains.name(target_entry.index())
                } else {
                    self.alias_targets.get(target_entry.index())
                };
                return Err(DirectoryError::AliasOfAlias {
                    alias: domain(domains.name(index)),
                    target: domain(target_name),
                    target_primary: domain(target_primary),
                });
            }
            domains.set_entry(index, Entry::alias(target, entry.is_suspended()));
        }
        for key in self.users.keys() {
            let domain_name = key.rsplit_once('@').map_or("", |(_, d)| d);
            let found = domains
                .find(domain_name)
                .ok_or_else(|| DirectoryError::NotFound {
                    kind: ObjectKind::Domain,
                    name: domain_name.to_owned(),
                })?;
            let entry = domains.entry(found);
            if entry.is_alias() {
                return Err(DirectoryError::IsAlias {
                    alias: domain(domain_name),
                    primary: domain(domains.name(entry.index())),
                });
            }
        }
        let mut users = self.users;
        users.shrink_to_fit();
        Ok(Snapshot {
            revision: self.revision,
            profiles: self.profiles,
            domains,
            users,
            counts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &str) -> Domain {
        Domain::parse(name).unwrap()
    }

    fn a(address: &str) -> EmailAddress {
        EmailAddress::parse(address).unwrap()
    }

    fn profile(hoster: &str) -> ServiceProfile {
        ServiceProfile::default_for_hoster(hoster)
    }

    /// primary.example (standard) with alias alias.example, other.example (business),
    /// suspended.example with alias via-suspended.example, and a suspended alias of primary.
    fn sample() -> Snapshot {
        let mut b = SnapshotBuilder::new(7);
        b.add_profile("standard", profile("standard.example"))
            .unwrap()
            .add_profile("business", profile("business.example"))
            .unwrap();
        b.add_alias(
            &d("alias.example"),
            &d("primary.example"),
            DomainStatus::Active,
        )
        .unwrap()
        .add_domain(&d("primary.example"), "standard", DomainStatus::Active)
        .unwrap()
        .add_domain(&d("other.example"), "business", DomainStatus::Active)
        .unwrap()
        .add_domain(&d("suspended.example"), "standard", DomainStatus::Suspended)
        .unwrap()
        .add_alias(
            &d("via-suspended.example"),
            &d("suspended.example"),
            DomainStatus::Active,
        )
        .unwrap()
        .add_alias(
            &d("off.example"),
            &d("primary.example"),
            DomainStatus::Suspended,
        )
        .unwrap();
        let mut named = UserOverride::new(a("Named@primary.example"));
        named.display_name = Some("Named User".into());
        named.login_name = Some("u1001".into());
        let mut moved = UserOverride::new(a("moved@primary.example"));
        moved.redirect = Some(Redirect::Address(a("moved@other.example")));
        let mut away = UserOverride::new(a("away@primary.example"));
        away.redirect = Some(Redirect::Url(
            "https://autodiscover.elsewhere.example/autodiscover/autodiscover.xml".into(),
        ));
        b.add_user(&named).unwrap();
        b.add_user(&moved).unwrap();
        b.add_user(&away).unwrap();
        b.build().unwrap()
    }

    fn settings(answer: Answer) -> AccountSettings {
        match answer {
            Answer::Settings(settings) => settings,
            other => panic!("expected settings, got {other:?}"),
        }
    }

    #[test]
    fn counts_and_revision() {
        let s = sample();
        assert_eq!(s.revision(), 7);
        assert_eq!(
            s.counts(),
            SnapshotCounts {
                profiles: 2,
                primary_domains: 3,
                alias_domains: 3,
                users: 3
            }
        );
        assert_eq!(Snapshot::empty().counts(), SnapshotCounts::default());
        assert!(s.profile("standard").is_some() && s.profile("nope").is_none());
    }

    #[test]
    fn unknown_and_suspended_domains_are_not_hosted() {
        let s = sample();
        for address in [
            "jane@unknown.example",
            "jane@suspended.example",
            "jane@via-suspended.example",
            "jane@off.example",
            // A parent or child of a hosted domain is a different domain.
            "jane@sub.primary.example",
        ] {
            assert_eq!(s.resolve(&a(address)), Answer::NotHosted, "{address}");
        }
        assert_eq!(
            Snapshot::empty().resolve(&a("x@primary.example")),
            Answer::NotHosted
        );
    }

    #[test]
    fn hosted_addresses_get_their_domains_profile() {
        let s = sample();
        let jane = settings(s.resolve(&a("Jane@primary.example")));
        assert_eq!(jane.address, a("Jane@primary.example"));
        assert_eq!(
            jane.profile.display_name.as_deref(),
            Some("standard.example Mail")
        );
        assert_eq!(jane.display_name, None);
        assert_eq!(jane.login_name, None);
        let bob = settings(s.resolve(&a("bob@other.example")));
        assert_eq!(
            bob.profile.display_name.as_deref(),
            Some("business.example Mail")
        );
        // Profiles are interned: every domain of a profile shares one allocation.
        let john = settings(s.resolve(&a("john@primary.example")));
        assert!(Arc::ptr_eq(&jane.profile, &john.profile));
    }

    #[test]
    fn unknown_users_look_like_any_user() {
        let s = sample();
        let mut nobody = settings(s.resolve(&a("nobody-at-all@primary.example")));
        let jane = settings(s.resolve(&a("jane@primary.example")));
        nobody.address = jane.address.clone();
        assert_eq!(nobody, jane);
    }

    #[test]
    fn alias_domains_answer_as_the_primary() {
        let s = sample();
        let jane = settings(s.resolve(&a("Jane@alias.example")));
        assert_eq!(jane.address, a("Jane@primary.example"));
        assert_eq!(jane.address.local_part(), "Jane");
        assert_eq!(
            jane.deployment_id,
            autodisco_proto::answer::deployment_id(&d("primary.example"))
        );
        // Overrides apply through the alias too.
        let named = settings(s.resolve(&a("named@alias.example")));
        assert_eq!(named.display_name.as_deref(), Some("Named User"));
    }

    #[test]
    fn overrides_redirect_or_rename() {
        let s = sample();
        assert_eq!(
            s.resolve(&a("Moved@primary.example")),
            Answer::RedirectAddr(a("moved@other.example"))
        );
        assert_eq!(
            s.resolve(&a("away@alias.example")),
            Answer::RedirectUrl(
                "https://autodiscover.elsewhere.example/autodiscover/autodiscover.xml".into()
            )
        );
        // Local parts match case-insensitively; the address keeps the case asked for.
        let named = settings(s.resolve(&a("NAMED@primary.example")));
        assert_eq!(named.address.local_part(), "NAMED");
        assert_eq!(named.display_name.as_deref(), Some("Named User"));
        assert_eq!(named.login_name.as_deref(), Some("u1001"));
        assert_eq!(named.username_for(&named.profile.imap[0]), "u1001");
    }

    #[test]
    fn hosts_active_primaries_and_aliases_only() {
        let s = sample();
        for (domain, hosted) in [
            ("primary.example", true),
            ("alias.example", true),
            ("other.example", true),
            ("suspended.example", false),
            ("via-suspended.example", false),
            ("off.example", false),
            ("unknown.example", false),
        ] {
            assert_eq!(s.hosts(&d(domain)), hosted, "{domain}");
        }
    }

    #[test]
    fn builder_checks_references() {
        let mut b = SnapshotBuilder::new(1);
        b.add_profile("p", profile("h.example")).unwrap();
        assert!(matches!(
            b.add_profile("p", profile("h.example")),
            Err(DirectoryError::AlreadyExists {
                kind: ObjectKind::Profile,
                ..
            })
        ));
        assert!(matches!(
            b.add_domain(&d("a.example"), "missing", DomainStatus::Active),
            Err(DirectoryError::NotFound {
                kind: ObjectKind::Profile,
                ..
            })
        ));

        let mut b = SnapshotBuilder::new(1);
        b.add_profile("p", profile("h.example")).unwrap();
        b.add_domain(&d("a.example"), "p", DomainStatus::Active)
            .unwrap();
        b.add_domain(&d("a.example"), "p", DomainStatus::Active)
            .unwrap();
        assert!(matches!(
            b.build(),
            Err(DirectoryError::AlreadyExists { kind: ObjectKind::Domain, name }) if name == "a.example"
        ));

        let mut b = SnapshotBuilder::new(1);
        b.add_alias(&d("b.example"), &d("missing.example"), DomainStatus::Active)
            .unwrap();
        assert!(matches!(
            b.build(),
            Err(DirectoryError::NotFound { kind: ObjectKind::Domain, name }) if name == "missing.example"
        ));

        // Both orders: the target alias before and after the alias pointing at it.
        for flip in [false, true] {
            let mut b = SnapshotBuilder::new(1);
            b.add_profile("p", profile("h.example")).unwrap();
            b.add_domain(&d("a.example"), "p", DomainStatus::Active)
                .unwrap();
            let first = (d("b.example"), d("a.example"));
            let second = (d("c.example"), d("b.example"));
            let order = if flip {
                [second, first]
            } else {
                [first, second]
            };
            for (alias, target) in order {
                b.add_alias(&alias, &target, DomainStatus::Active).unwrap();
            }
            match b.build() {
                Err(DirectoryError::AliasOfAlias {
                    alias,
                    target,
                    target_primary,
                }) => {
                    assert_eq!(
                        (alias, target, target_primary),
                        (d("c.example"), d("b.example"), d("a.example"))
                    );
                }
                other => panic!("expected AliasOfAlias, got {other:?}"),
            }
        }

        let mut b = SnapshotBuilder::new(1);
        b.add_profile("p", profile("h.example")).unwrap();
        b.add_domain(&d("a.example"), "p", DomainStatus::Active)
            .unwrap();
        b.add_alias(&d("b.example"), &d("a.example"), DomainStatus::Active)
            .unwrap();
        let mut user = UserOverride::new(a("jane@b.example"));
        user.login_name = Some("jane".into());
        b.add_user(&user).unwrap();
        assert!(matches!(b.build(), Err(DirectoryError::IsAlias { .. })));
    }
}
