//! Reading an automx2 database (its SQLite file), so its users can switch in one command.
//!
//! automx2 keeps `provider` (id, name, short_name), `domain` (id, name, provider_id,
//! ldapserver_id), `server` (id, prio, name, port, type, socket_type, user_name,
//! authentication) and the `server_domain` link table. The mapping:
//!
//! - every domain becomes a primary domain; domains of one provider with the same servers share
//!   one profile, named `automx2-SHORTNAME` (then `-2`, `-3`, ... for other server sets), with
//!   the provider's name as display name;
//! - servers of type `imap`, `pop`/`pop3` and `smtp` become the profile's IMAP, POP3 and SMTP
//!   servers in `prio` order; `socket_type` SSL is `tls`, STARTTLS `starttls`, plain `none`;
//!   `user_name` keeps its placeholders (automx2 spells them as autodisco does);
//!   `authentication` plain is `password-cleartext`, CRAM-MD5/NTLM/SPA `password-encrypted`,
//!   OAuth2 `oauth2`, client-certificate `client-certificate`.
//!
//! Not carried over, each reported as a note: CalDAV/CardDAV servers (`davserver`), LDAP
//! look-ups (`ldapserver`: autodisco keeps per-user overrides instead), servers of other types,
//! unknown socket types or authentication methods, and domains left with no incoming server
//! (a profile needs one).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use autodisco_proto::profile::{Authentication, MailServer, Security};
use autodisco_proto::{Domain, ServiceProfile};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};

use crate::error::DirectoryError;
use crate::model::DomainStatus;
use crate::transfer::{DirectoryData, DomainRecord, DomainTarget};

/// What an automx2 database becomes, and what could not come along.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Automx2Import {
    /// Profiles and domains for [`crate::Store::import`].
    pub data: DirectoryData,
    /// One sentence per thing left behind.
    pub notes: Vec<String>,
}

/// Reads the automx2 SQLite database at `path`, read-only.
pub async fn read_automx2(path: &Path) -> Result<Automx2Import, DirectoryError> {
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let mut notes = Vec::new();

    let providers: HashMap<i64, (String, String)> =
        sqlx::query("SELECT id, name, short_name FROM provider")
            .fetch_all(&mut conn)
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?))))
            .collect::<Result<_, sqlx::Error>>()?;

    // Servers per domain, in automx2's order (prio, then id).
    let mut servers: HashMap<i64, Vec<(String, MailServer)>> = HashMap::new();
    let rows = sqlx::query(
        "SELECT sd.domain_id, s.type, s.name, s.port, s.socket_type, s.user_name, s.authentication \
         FROM server s JOIN server_domain sd ON sd.server_id = s.id ORDER BY s.prio, s.id",
    )
    .fetch_all(&mut conn)
    .await?;
    for row in &rows {
        let domain_id: i64 = row.try_get(0)?;
        let kind: String = row.try_get(1)?;
        let host: String = row.try_get(2)?;
        let port: i64 = row.try_get(3)?;
        let socket: String = row.try_get(4)?;
        let username: String = row.try_get(5)?;
        let auth: String = row.try_get(6)?;
        let kind = match kind.to_ascii_lowercase().as_str() {
            "imap" => "imap",
            "pop" | "pop3" => "pop3",
            "smtp" => "smtp",
            _ => {
                note(
                    &mut notes,
                    format!(
                        "server {host} of type {kind:?} is left out: autodisco serves IMAP, POP3 and SMTP"
                    ),
                );
                continue;
            }
        };
        let security = match socket.to_ascii_uppercase().as_str() {
            "SSL" | "TLS" => Security::Tls,
            "STARTTLS" => Security::Starttls,
            "PLAIN" => Security::None,
            _ => {
                note(
                    &mut notes,
                    format!("server {host} with socket type {socket:?} is left out"),
                );
                continue;
            }
        };
        let authentication = match auth.to_ascii_lowercase().as_str() {
            "plain" | "password-cleartext" => Authentication::PasswordCleartext,
            "cram-md5" | "ntlm" | "spa" | "password-encrypted" => Authentication::PasswordEncrypted,
            "oauth2" => Authentication::Oauth2,
            "client-certificate" | "tls-client-cert" => Authentication::ClientCertificate,
            _ => {
                note(
                    &mut notes,
                    format!("server {host} with authentication {auth:?} is left out"),
                );
                continue;
            }
        };
        let Ok(port) = u16::try_from(port) else {
            note(
                &mut notes,
                format!("server {host} with port {port} is left out"),
            );
            continue;
        };
        servers.entry(domain_id).or_default().push((
            kind.to_owned(),
            MailServer {
                host,
                port,
                security,
                authentication,
                username,
            },
        ));
    }

    for (table, what) in [
        (
            "davserver",
            "CalDAV/CardDAV servers are not carried over: autodisco configures mail",
        ),
        (
            "ldapserver",
            "LDAP look-ups are not carried over: set display and login names with per-user overrides",
        ),
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        if let Ok(count) = sqlx::query_scalar::<_, i64>(&sql)
            .fetch_one(&mut conn)
            .await
            && count > 0
        {
            notes.push(format!("{count} row(s) in {table}: {what}"));
        }
    }

    let domains = sqlx::query("SELECT id, name, provider_id FROM domain ORDER BY name")
        .fetch_all(&mut conn)
        .await?;
    conn.close().await.ok();

    let mut data = DirectoryData::default();
    // (provider, servers as JSON) to profile name; names per provider short name.
    let mut profile_of: BTreeMap<(i64, String), String> = BTreeMap::new();
    let mut taken: HashMap<String, usize> = HashMap::new();
    for row in &domains {
        let id: i64 = row.try_get(0)?;
        let name: String = row.try_get(1)?;
        let provider_id: i64 = row.try_get(2)?;
        let Ok(domain) = Domain::parse(&name) else {
            note(
                &mut notes,
                format!("domain {name:?} is not a valid domain name and is left out"),
            );
            continue;
        };
        let (provider_name, short_name) = providers
            .get(&provider_id)
            .cloned()
            .unwrap_or_else(|| (String::new(), format!("provider{provider_id}")));
        let mut profile = ServiceProfile {
            display_name: (!provider_name.trim().is_empty()).then(|| provider_name.clone()),
            ..ServiceProfile::default()
        };
        for (kind, server) in servers.get(&id).into_iter().flatten() {
            match kind.as_str() {
                "imap" => profile.imap.push(server.clone()),
                "pop3" => profile.pop3.push(server.clone()),
                _ => profile.smtp.push(server.clone()),
            }
        }
        if let Err(problems) = profile.validate() {
            let reasons: Vec<String> = problems.iter().map(ToString::to_string).collect();
            note(
                &mut notes,
                format!(
                    "domain {domain} is left out: its servers make no usable profile ({})",
                    reasons.join("; ")
                ),
            );
            continue;
        }
        let key = (
            provider_id,
            serde_json::to_string(&profile).expect("a ServiceProfile always serialises"),
        );
        let profile_name = match profile_of.get(&key) {
            Some(name) => name.clone(),
            None => {
                let base = format!("automx2-{}", plain(&short_name));
                let n = taken.entry(base.clone()).or_insert(0);
                *n += 1;
                let name = if *n == 1 { base } else { format!("{base}-{n}") };
                profile_of.insert(key, name.clone());
                data.profiles.push((name.clone(), profile));
                name
            }
        };
        data.domains.push(DomainRecord {
            name: domain,
            status: DomainStatus::Active,
            target: DomainTarget::Profile(profile_name),
        });
    }
    Ok(Automx2Import { data, notes })
}

fn note(notes: &mut Vec<String>, note: String) {
    if !notes.contains(&note) {
        notes.push(note);
    }
}

/// A short name reduced to profile-name characters (at most 40 of them).
fn plain(short_name: &str) -> String {
    let name: String = short_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    if name.is_empty() {
        "provider".to_owned()
    } else {
        name
    }
}
