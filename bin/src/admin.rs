//! `autodisco domain|profile|user`: the directory's admin commands.
//!
//! Each command opens the directory the config names, changes it in one transaction, and exits;
//! a running server picks the change up within its poll interval (1 s by default).

use std::path::PathBuf;

use anyhow::{Context, bail};
use std::collections::HashMap;

use autodisco_directory::{
    Actor, DomainHealth, DomainKind, DomainRemoval, DomainStatus, HealthStatus, Redirect, Store,
    Upsert, UserOverride,
};
use autodisco_proto::{Domain, EmailAddress, ServiceProfile};
use autodisco_server::bootstrap::{
    DEFAULT_PROFILE, add_missing_config_profiles, ensure_default_profile,
};
use autodisco_server::config::Config;
use clap::Subcommand;

use crate::args::{address_arg, domain_arg};
use crate::check::CheckArgs;
use crate::dns::{records_for, zone_lines};
use crate::open_store;

#[derive(Subcommand)]
pub(crate) enum DomainCommand {
    /// Host a customer domain (or, with --alias-of, an alias of a hosted one).
    ///
    /// Names are validated and stored in canonical form: lower case, no trailing dot,
    /// internationalised names as A-labels (xn--...).
    Add {
        /// The domain, such as customer.example.
        name: String,
        /// The service profile; default "default".
        #[arg(long, conflicts_with = "alias_of")]
        profile: Option<String>,
        /// Make NAME an alias of this hosted domain: addresses in NAME get its settings.
        #[arg(long, value_name = "PRIMARY")]
        alias_of: Option<String>,
    },
    /// Stop hosting a domain.
    Remove {
        /// The domain.
        name: String,
        /// Also remove its alias domains and user overrides.
        #[arg(long)]
        cascade: bool,
    },
    /// List hosted domains, each with the health its last check found (`domain check`).
    List {
        /// Only the domains whose last check had findings.
        #[arg(long)]
        unhealthy: bool,
    },
    /// Check domains live: their DNS records, then what Outlook meets on the way to the
    /// service; each finding in words with its fix. Exit codes: 0 every domain healthy,
    /// 1 findings, 2 usage or configuration error.
    Check(CheckArgs),
    /// Show one domain: status, profile, aliases, user overrides, DNS records, last check.
    Show {
        /// The domain.
        name: String,
    },
    /// Move a primary domain to another service profile.
    SetProfile {
        /// The domain.
        name: String,
        /// The profile.
        profile: String,
    },
    /// Answer a domain as not hosted, without removing it.
    Suspend {
        /// The domain.
        name: String,
    },
    /// Answer a suspended domain again.
    Resume {
        /// The domain.
        name: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum ProfileCommand {
    /// Create a profile from a TOML file (the same keys as a [profiles.NAME] table in the
    /// config), or, without --file, a copy of the built-in default for the hoster.
    Add {
        /// The profile's name: letters, digits, '-', '_', '.'.
        name: String,
        /// TOML file with the profile's settings.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Replace a profile's settings with those in a TOML file (see `profile show`).
    Set {
        /// The profile's name.
        name: String,
        /// TOML file with the profile's settings.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// List profiles and how many domains use each.
    List,
    /// Print a profile as TOML (a starting point for `profile set`).
    Show {
        /// The profile's name.
        name: String,
    },
    /// Remove a profile no domain uses.
    Remove {
        /// The profile's name.
        name: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Set an override for one mailbox (replacing any it had).
    Add {
        /// The address, such as jane@customer.example.
        address: String,
        /// The display name clients show.
        #[arg(long)]
        display_name: Option<String>,
        /// The login name, instead of the profile's username template.
        #[arg(long)]
        login_name: Option<String>,
        /// The mailbox moved: send clients to this address (POX redirectAddr).
        #[arg(long, value_name = "ADDRESS", conflicts_with = "redirect_url")]
        redirect_addr: Option<String>,
        /// The mailbox is served elsewhere: send clients to this https AutoDiscover URL.
        #[arg(long, value_name = "URL")]
        redirect_url: Option<String>,
    },
    /// Remove a mailbox's override: it gets its domain's answer again.
    Remove {
        /// The address.
        address: String,
    },
    /// List overrides, of one domain or of all.
    List {
        /// Only this domain.
        domain: Option<String>,
    },
    /// Set the password a mailbox signs in with when `auth = "basic"` uses the directory.
    ///
    /// The password is read from a prompt (asked twice) when standard input is a terminal, and
    /// otherwise as the first line of standard input. Only an argon2 hash is stored.
    Passwd {
        /// The address, such as jane@customer.example.
        address: String,
        /// Remove the mailbox's password instead of setting one.
        #[arg(long)]
        remove: bool,
    },
}

fn upsert_word(upsert: Upsert) -> &'static str {
    match upsert {
        Upsert::Created => "created",
        Upsert::Replaced => "replaced",
    }
}

pub(crate) async fn domain(config: &Config, command: DomainCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    match command {
        DomainCommand::Add {
            name,
            profile,
            alias_of,
        } => {
            let domain = domain_arg(&name)?;
            if let Some(primary) = alias_of {
                let primary = domain_arg(&primary)?;
                store.add_alias(&Actor::Cli, &domain, &primary).await?;
                println!("added {domain} as an alias of {primary}");
            } else {
                // Profiles the config defines but the directory lacks, and the fresh-install
                // default; existing profiles are left alone, so a `profile set` is not undone.
                add_missing_config_profiles(config, &store).await?;
                ensure_default_profile(config, &store).await?;
                let profile = profile.unwrap_or_else(|| DEFAULT_PROFILE.to_owned());
                store.add_domain(&Actor::Cli, &domain, &profile).await?;
                println!("added {domain} with profile {profile}");
            }
            println!("the customer adds:");
            let records = records_for(config, &store, &domain).await?;
            for line in zone_lines(&records) {
                println!("  {line}");
            }
        }
        DomainCommand::Remove { name, cascade } => {
            let domain = domain_arg(&name)?;
            let removal = if cascade {
                DomainRemoval::Cascade
            } else {
                DomainRemoval::OnlyIfUnused
            };
            let removed = store.remove_domain(&Actor::Cli, &domain, removal).await?;
            println!("removed {domain}");
            for alias in &removed.aliases {
                println!("removed alias {alias}");
            }
            if removed.users > 0 {
                println!("removed {} user overrides", removed.users);
            }
        }
        DomainCommand::List { unhealthy } => list_domains(&store, unhealthy).await?,
        DomainCommand::Check(_) => unreachable!("dispatched in main: it has exit codes of its own"),
        DomainCommand::Show { name } => {
            let info = store.get_domain(&domain_arg(&name)?).await?;
            println!("domain:  {}", info.name);
            println!("status:  {}", info.status);
            match &info.kind {
                DomainKind::Primary {
                    profile,
                    aliases,
                    users,
                } => {
                    println!("profile: {profile}");
                    let aliases: Vec<String> = aliases.iter().map(ToString::to_string).collect();
                    println!(
                        "aliases: {}",
                        if aliases.is_empty() {
                            "-".to_owned()
                        } else {
                            aliases.join(", ")
                        }
                    );
                    println!("users:   {users} overrides");
                }
                DomainKind::Alias { primary } => println!("alias of: {primary}"),
            }
            println!("DNS:");
            let records = records_for(config, &store, &info.name).await?;
            for line in zone_lines(&records) {
                println!("  {line}");
            }
            print_health(&store, &info.name).await?;
        }
        DomainCommand::SetProfile { name, profile } => {
            let domain = domain_arg(&name)?;
            store.set_profile(&Actor::Cli, &domain, &profile).await?;
            println!("{domain} now uses profile {profile}");
        }
        DomainCommand::Suspend { name } => {
            let domain = domain_arg(&name)?;
            store
                .set_status(&Actor::Cli, &domain, DomainStatus::Suspended)
                .await?;
            println!("{domain} suspended: answered as not hosted");
        }
        DomainCommand::Resume { name } => {
            let domain = domain_arg(&name)?;
            store
                .set_status(&Actor::Cli, &domain, DomainStatus::Active)
                .await?;
            println!("{domain} active again");
        }
    }
    Ok(())
}

/// One line per domain: name, status, profile or primary, health.
async fn list_domains(store: &Store, only_unhealthy: bool) -> anyhow::Result<()> {
    let health: HashMap<Domain, DomainHealth> = store
        .all_health()
        .await?
        .into_iter()
        .map(|h| (h.domain.clone(), h))
        .collect();
    let now = unix_now();
    for info in store.list_domains().await? {
        let health = health.get(&info.name);
        if only_unhealthy && !health.is_some_and(|h| h.status == HealthStatus::Unhealthy) {
            continue;
        }
        let kind = match &info.kind {
            DomainKind::Primary { profile, .. } => format!("profile {profile}"),
            DomainKind::Alias { primary } => format!("alias of {primary}"),
        };
        let health = match health {
            Some(h) => format!("{} ({})", h.status, ago(now, h.checked_at)),
            None => "unchecked".to_owned(),
        };
        println!("{}\t{}\t{kind}\t{health}", info.name, info.status);
    }
    Ok(())
}

/// The last check's verdict and findings, for `domain show`.
async fn print_health(store: &Store, domain: &Domain) -> anyhow::Result<()> {
    let Some(health) = store.health(domain).await? else {
        println!("health:  unchecked (autodisco domain check {domain})");
        return Ok(());
    };
    println!(
        "health:  {} ({})",
        health.status,
        ago(unix_now(), health.checked_at)
    );
    // Written by `domain check`; the messages quote customer DNS data, so they are escaped.
    match serde_json::from_str::<Vec<autodisco_client::Finding>>(&health.findings) {
        Ok(findings) => {
            autodisco_client::render::findings(&mut std::io::stdout().lock(), &findings)?
        }
        Err(_) => println!("  (findings stored in a format this version does not read)"),
    }
    Ok(())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// "checked 5 min ago", in the largest whole unit.
fn ago(now: u64, then: u64) -> String {
    let seconds = now.saturating_sub(then);
    let (value, unit) = match seconds {
        0..120 => (seconds, "s"),
        120..7_200 => (seconds / 60, "min"),
        7_200..172_800 => (seconds / 3_600, "h"),
        _ => (seconds / 86_400, "days"),
    };
    format!("checked {value} {unit} ago")
}

fn read_profile_file(path: &std::path::Path) -> anyhow::Result<ServiceProfile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
        match line {
            Some(line) => anyhow::anyhow!("{}:{line}: {}", path.display(), e.message().trim()),
            None => anyhow::anyhow!("{}: {}", path.display(), e.message().trim()),
        }
    })
}

pub(crate) async fn profile(config: &Config, command: ProfileCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    match command {
        ProfileCommand::Add { name, file } => {
            if store.get_profile(&name).await.is_ok() {
                bail!(
                    "profile {name} exists already; use `autodisco profile set {name} --file FILE`"
                );
            }
            let profile = match file {
                Some(path) => read_profile_file(&path)?,
                None => ServiceProfile::default_for_hoster(config.hoster.as_str()),
            };
            store.put_profile(&Actor::Cli, &name, &profile).await?;
            println!("profile {name} created");
        }
        ProfileCommand::Set { name, file } => {
            let profile = read_profile_file(&file)?;
            if config.profiles.contains_key(&name) {
                eprintln!(
                    "note: profile {name} is also defined in {}; the config's version returns at the next start or SIGHUP",
                    config.origin()
                );
            }
            let upsert = store.put_profile(&Actor::Cli, &name, &profile).await?;
            println!("profile {name} {}", upsert_word(upsert));
        }
        ProfileCommand::List => {
            for entry in store.list_profiles().await? {
                println!("{}\t{} domains", entry.name, entry.domains);
            }
        }
        ProfileCommand::Show { name } => {
            let profile = store.get_profile(&name).await?;
            print!(
                "{}",
                toml::to_string_pretty(&profile).context("cannot print the profile as TOML")?
            );
        }
        ProfileCommand::Remove { name } => {
            store.remove_profile(&Actor::Cli, &name).await?;
            println!("profile {name} removed");
        }
    }
    Ok(())
}

pub(crate) async fn user(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    match command {
        UserCommand::Add {
            address,
            display_name,
            login_name,
            redirect_addr,
            redirect_url,
        } => {
            let mut user = UserOverride::new(address_arg(&address)?);
            user.display_name = display_name;
            user.login_name = login_name;
            user.redirect = match (redirect_addr, redirect_url) {
                (Some(target), _) => Some(Redirect::Address(address_arg(&target)?)),
                (None, Some(url)) => Some(Redirect::Url(url)),
                (None, None) => None,
            };
            let (stored, upsert) = store.put_user(&Actor::Cli, &user).await?;
            println!("override for {} {}", stored.address, upsert_word(upsert));
        }
        UserCommand::Remove { address } => {
            let address = address_arg(&address)?;
            store.remove_user(&Actor::Cli, &address).await?;
            println!("override for {address} removed");
        }
        UserCommand::Passwd { address, remove } => {
            let address = address_arg(&address)?;
            if remove {
                store.remove_password(&Actor::Cli, &address).await?;
                println!("password for {address} removed");
                return Ok(());
            }
            let password = read_new_password(&address)?;
            let hash = autodisco_server::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
            let (stored, upsert) = store
                .set_password_hash(&Actor::Cli, &address, &hash)
                .await?;
            println!("password for {stored} {}", upsert_word(upsert));
            if config.auth.mode != autodisco_server::config::AuthMode::Basic
                || config.auth.imap.is_some()
            {
                eprintln!(
                    "note: {} does not check directory passwords (it needs auth = \"basic\" without [auth_imap])",
                    config.origin()
                );
            }
        }
        UserCommand::List { domain } => {
            let domain = domain.as_deref().map(domain_arg).transpose()?;
            for user in store.list_users(domain.as_ref()).await? {
                let mut line = user.address.to_string();
                if let Some(name) = &user.display_name {
                    line.push_str(&format!("\tdisplay name {name:?}"));
                }
                if let Some(login) = &user.login_name {
                    line.push_str(&format!("\tlogin {login}"));
                }
                match &user.redirect {
                    Some(Redirect::Address(target)) => {
                        line.push_str(&format!("\tredirect to {target}"))
                    }
                    Some(Redirect::Url(url)) => line.push_str(&format!("\tredirect to {url}")),
                    None => {}
                }
                println!("{line}");
            }
        }
    }
    Ok(())
}

/// The new password: prompted twice on a terminal, else the first line of standard input.
fn read_new_password(address: &EmailAddress) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New password for {address}: "))
            .context("cannot read the password")?;
        let second = rpassword::prompt_password("Again: ").context("cannot read the password")?;
        if first != second {
            bail!("the two passwords differ; nothing changed");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        bail!("the password is empty; nothing changed");
    }
    if password.chars().count() > 1024 {
        bail!("the password is longer than 1024 characters; nothing changed");
    }
    Ok(password)
}
