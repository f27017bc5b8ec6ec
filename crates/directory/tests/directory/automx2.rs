//! Reading an automx2 database: providers, domains and servers become profiles and domains.

use autodisco_directory::automx2::read_automx2;
use autodisco_directory::{Actor, DomainTarget};
use autodisco_proto::profile::{Authentication, Security};
use sqlx::{Connection, Executor, SqliteConnection};

use crate::support::TestDb;

/// automx2's schema (its model.py), with two providers, three domains, servers shared and not,
/// and what cannot come along.
const AUTOMX2: &str = r#"
CREATE TABLE provider (id INTEGER PRIMARY KEY, name VARCHAR(128) NOT NULL, short_name VARCHAR(32) NOT NULL);
CREATE TABLE server (id INTEGER PRIMARY KEY, prio INTEGER NOT NULL DEFAULT 10, name VARCHAR(128) NOT NULL,
  port INTEGER NOT NULL, type VARCHAR(32) NOT NULL, socket_type VARCHAR(32) NOT NULL,
  user_name VARCHAR(64) NOT NULL, authentication VARCHAR(32) NOT NULL);
CREATE TABLE ldapserver (id INTEGER PRIMARY KEY, name VARCHAR(128) NOT NULL, port INTEGER NOT NULL,
  use_ssl BOOLEAN NOT NULL, search_base VARCHAR(128) NOT NULL, search_filter VARCHAR(128) NOT NULL,
  attr_uid VARCHAR(32) NOT NULL, attr_cn VARCHAR(32), bind_password VARCHAR(128), bind_user VARCHAR(128));
CREATE TABLE davserver (id INTEGER PRIMARY KEY, url VARCHAR(128) NOT NULL, port INTEGER NOT NULL,
  type VARCHAR(32) NOT NULL, use_ssl BOOLEAN NOT NULL, domain_required BOOLEAN NOT NULL, user_name VARCHAR(64));
CREATE TABLE domain (id INTEGER PRIMARY KEY, name VARCHAR(128) NOT NULL UNIQUE,
  provider_id INTEGER NOT NULL REFERENCES provider(id), ldapserver_id INTEGER REFERENCES ldapserver(id));
CREATE TABLE server_domain (server_id INTEGER NOT NULL, domain_id INTEGER NOT NULL, PRIMARY KEY (server_id, domain_id));
CREATE TABLE davserver_domain (davserver_id INTEGER NOT NULL, domain_id INTEGER NOT NULL, PRIMARY KEY (davserver_id, domain_id));
INSERT INTO provider VALUES (1, 'Example Hosting', 'example'), (2, 'Other Mail', 'other mail');
INSERT INTO server VALUES
  (1, 10, 'imap.example.net', 993, 'imap', 'SSL', '%EMAILADDRESS%', 'plain'),
  (2, 20, 'smtp.example.net', 587, 'smtp', 'STARTTLS', '%EMAILLOCALPART%', 'plain'),
  (3, 5, 'pop.other.net', 995, 'pop', 'SSL', '%EMAILADDRESS%', 'CRAM-MD5'),
  (4, 10, 'jmap.other.net', 443, 'jmap', 'SSL', '%EMAILADDRESS%', 'plain'),
  (5, 10, 'smtp.only.net', 465, 'smtp', 'SSL', '%EMAILADDRESS%', 'plain');
INSERT INTO davserver VALUES (1, 'https://dav.example.net', 443, 'caldav', 1, 0, NULL);
INSERT INTO domain VALUES (1, 'alpha.example', 1, NULL), (2, 'beta.example', 1, NULL),
  (3, 'gamma.example', 2, NULL), (4, 'sendonly.example', 1, NULL);
INSERT INTO server_domain VALUES (1, 1), (2, 1), (1, 2), (2, 2), (3, 3), (4, 3), (5, 4);
"#;

#[tokio::test]
async fn automx2_databases_become_profiles_and_domains() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("automx2.sqlite");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    conn.execute(AUTOMX2).await.unwrap();
    conn.close().await.unwrap();

    let import = read_automx2(&path).await.unwrap();
    let names: Vec<(&str, &str)> = import
        .data
        .domains
        .iter()
        .map(|r| match &r.target {
            DomainTarget::Profile(p) => (r.name.as_str(), p.as_str()),
            DomainTarget::AliasOf(_) => unreachable!(),
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("alpha.example", "automx2-example"),
            ("beta.example", "automx2-example"),
            ("gamma.example", "automx2-other-mail"),
        ]
    );
    let (_, example) = &import.data.profiles[0];
    assert_eq!(example.display_name.as_deref(), Some("Example Hosting"));
    assert_eq!(example.imap[0].host, "imap.example.net");
    assert_eq!(example.imap[0].security, Security::Tls);
    assert_eq!(example.smtp[0].security, Security::Starttls);
    assert_eq!(example.smtp[0].username, "%EMAILLOCALPART%");
    let (_, other) = &import.data.profiles[1];
    assert_eq!(
        other.pop3[0].authentication,
        Authentication::PasswordEncrypted
    );
    let notes = import.notes.join("\n");
    assert!(
        notes.contains("jmap.other.net of type \"jmap\" is left out"),
        "{notes}"
    );
    assert!(notes.contains("sendonly.example is left out"), "{notes}");
    assert!(notes.contains("1 row(s) in davserver"), "{notes}");

    // And it imports as it reads.
    let db = TestDb::sqlite().await;
    let report = db
        .store
        .import(&Actor::Cli, &import.data, false)
        .await
        .unwrap();
    assert_eq!((report.profiles.created, report.domains.created), (2, 3));
}
