//! The audit log written by every change, and the admin API's tokens.

use autodisco_directory::{
    Actor, DirectoryError, DomainRemoval, DomainStatus, ObjectKind, TokenScope, UserOverride,
};
use serde_json::json;

use crate::support::{TestDb, a, d, on_both_backends, profile};

on_both_backends!(
    every_write_is_audited,
    refused_writes_leave_no_audit_entry,
    audit_pages,
    tokens_store_only_a_hash,
);

/// (actor, action, object) of the newest `n` entries, oldest first.
async fn last(db: &TestDb, n: u32) -> Vec<(String, String, String)> {
    let mut entries: Vec<_> = db
        .store
        .audit_log(n, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action, e.object))
        .collect();
    entries.reverse();
    entries
}

fn row(actor: &str, action: &str, object: &str) -> (String, String, String) {
    (actor.into(), action.into(), object.into())
}

async fn every_write_is_audited(db: TestDb) {
    let s = &db.store;
    let panel = Actor::Token("panel".into());
    s.put_profile(&Actor::Config, "p", &profile("h.example"))
        .await
        .unwrap();
    s.put_profile(&Actor::Config, "q", &profile("q.example"))
        .await
        .unwrap();
    s.add_domain(&Actor::Cli, &d("a.example"), "p")
        .await
        .unwrap();
    s.add_alias(&panel, &d("b.example"), &d("a.example"))
        .await
        .unwrap();
    s.set_profile(&panel, &d("a.example"), "q").await.unwrap();
    s.set_status(&panel, &d("a.example"), DomainStatus::Suspended)
        .await
        .unwrap();
    s.set_status(&panel, &d("a.example"), DomainStatus::Active)
        .await
        .unwrap();
    let mut jane = UserOverride::new(a("jane@b.example"));
    jane.display_name = Some("Jane".into());
    s.put_user(&panel, &jane).await.unwrap();
    s.set_password_hash(&panel, &a("jane@a.example"), "$argon2id$v=19$x")
        .await
        .unwrap();
    s.remove_password(&panel, &a("jane@a.example"))
        .await
        .unwrap();
    s.remove_user(&panel, &a("jane@a.example")).await.unwrap();
    s.remove_domain(&Actor::Cli, &d("a.example"), DomainRemoval::Cascade)
        .await
        .unwrap();
    s.remove_profile(&Actor::Cli, "p").await.unwrap();

    assert_eq!(
        last(&db, 13).await,
        vec![
            row("config", "profile.put", "p"),
            row("config", "profile.put", "q"),
            row("cli", "domain.add", "a.example"),
            row("panel", "domain.add", "b.example"),
            row("panel", "domain.set_profile", "a.example"),
            row("panel", "domain.suspend", "a.example"),
            row("panel", "domain.resume", "a.example"),
            row("panel", "user.put", "jane@a.example"),
            row("panel", "password.set", "jane@a.example"),
            row("panel", "password.remove", "jane@a.example"),
            row("panel", "user.remove", "jane@a.example"),
            row("cli", "domain.remove", "a.example"),
            row("cli", "profile.remove", "p"),
        ]
    );
    let entries = s.audit_log(13, None).await.unwrap();
    let find = |action: &str| entries.iter().find(|e| e.action == action).unwrap();
    let moved = find("domain.set_profile");
    assert_eq!(
        moved.before,
        Some(json!({"name": "a.example", "status": "active", "profile": "p"}))
    );
    assert_eq!(
        moved.after,
        Some(json!({"name": "a.example", "status": "active", "profile": "q"}))
    );
    let removed = find("domain.remove");
    assert_eq!(
        removed.before,
        Some(
            json!({"name": "a.example", "status": "active", "profile": "q", "aliases": ["b.example"], "users": 0})
        )
    );
    assert_eq!(removed.after, None);
    let user = find("user.put");
    assert_eq!(user.before, None);
    assert_eq!(user.after.as_ref().unwrap()["display_name"], "Jane");
    // The hash never reaches the log.
    let password = find("password.set");
    assert_eq!(password.after, Some(json!({"password": "set"})));
    assert!(!format!("{entries:?}").contains("argon2"));
    let put = find("profile.put");
    assert_eq!(
        put.after.as_ref().unwrap()["imap"][0]["host"],
        "mail.q.example"
    );
    // Entries are keyed by the revision they committed as.
    assert_eq!(entries[0].revision, s.revision().await.unwrap());
}

async fn refused_writes_leave_no_audit_entry(db: TestDb) {
    let s = &db.store;
    s.put_profile(&Actor::Cli, "p", &profile("h.example"))
        .await
        .unwrap();
    s.add_domain(&Actor::Cli, &d("a.example"), "p")
        .await
        .unwrap();
    let before = s.audit_log(100, None).await.unwrap();
    assert!(
        s.add_domain(&Actor::Cli, &d("a.example"), "p")
            .await
            .is_err()
    );
    assert!(
        s.add_domains(&Actor::Cli, &[d("new.example"), d("a.example")], "p")
            .await
            .is_err()
    );
    assert!(s.remove_profile(&Actor::Cli, "p").await.is_err());
    assert!(
        s.set_status(&Actor::Cli, &d("none.example"), DomainStatus::Active)
            .await
            .is_err()
    );
    assert_eq!(s.audit_log(100, None).await.unwrap(), before);
    // A bulk add records every domain under one revision.
    s.add_domains(&Actor::Cli, &[d("x.example"), d("y.example")], "p")
        .await
        .unwrap();
    let entries = s.audit_log(2, None).await.unwrap();
    assert_eq!(entries[0].revision, entries[1].revision);
    assert_eq!((entries[0].seq, entries[1].seq), (1, 0));
    assert_eq!(entries[0].object, "y.example");
}

async fn audit_pages(db: TestDb) {
    let s = &db.store;
    s.put_profile(&Actor::Cli, "p", &profile("h.example"))
        .await
        .unwrap();
    let names: Vec<_> = (0..1203).map(|i| d(&format!("d{i}.example"))).collect();
    s.add_domains(&Actor::Cli, &names, "p").await.unwrap();
    // Capped at 1000 per page whatever is asked.
    let first = s.audit_log(5000, None).await.unwrap();
    assert_eq!(first.len(), 1000);
    assert_eq!(first[0].object, "d1202.example");
    let cursor = first.last().map(|e| (e.revision, e.seq));
    let second = s.audit_log(1000, cursor).await.unwrap();
    assert_eq!(second.len(), 204);
    assert_eq!(second.last().unwrap().action, "profile.put");
    assert_eq!(second[0].object, "d202.example");
}

async fn tokens_store_only_a_hash(db: TestDb) {
    let s = &db.store;
    let secret = s
        .create_token(&Actor::Cli, "panel", TokenScope::Write)
        .await
        .unwrap();
    let reader = s
        .create_token(&Actor::Cli, "reader", TokenScope::Read)
        .await
        .unwrap();
    assert_ne!(secret, reader);
    let found = s.authenticate_token(&secret).await.unwrap().unwrap();
    assert_eq!(
        (found.name.as_str(), found.scope),
        ("panel", TokenScope::Write)
    );
    assert_eq!(
        s.authenticate_token(&reader).await.unwrap().unwrap().scope,
        TokenScope::Read
    );
    assert_eq!(s.authenticate_token("adt_00").await.unwrap(), None);
    assert_eq!(s.authenticate_token("").await.unwrap(), None);
    // The secret is nowhere in the database.
    let dump = db.dump_text().await;
    assert!(!dump.contains(&secret[4..]), "the secret is stored");
    assert!(matches!(
        s.create_token(&Actor::Cli, "panel", TokenScope::Read).await,
        Err(DirectoryError::AlreadyExists {
            kind: ObjectKind::Token,
            ..
        })
    ));
    assert!(matches!(
        s.create_token(&Actor::Cli, "cli", TokenScope::Read).await,
        Err(DirectoryError::InvalidTokenName { .. })
    ));
    let revoked = s.revoke_token(&Actor::Cli, "panel").await.unwrap();
    assert!(revoked.revoked.is_some());
    assert_eq!(s.authenticate_token(&secret).await.unwrap(), None);
    // Revoked names stay taken, so the log's actor names keep meaning one holder.
    assert!(
        s.create_token(&Actor::Cli, "panel", TokenScope::Write)
            .await
            .is_err()
    );
    let list = s.list_tokens().await.unwrap();
    assert_eq!(
        list.iter()
            .map(|t| (t.name.as_str(), t.revoked.is_some()))
            .collect::<Vec<_>>(),
        vec![("panel", true), ("reader", false)]
    );
    assert!(matches!(
        s.revoke_token(&Actor::Cli, "nobody").await,
        Err(DirectoryError::NotFound {
            kind: ObjectKind::Token,
            ..
        })
    ));
    assert_eq!(
        last(&db, 3).await,
        vec![
            row("cli", "token.create", "panel"),
            row("cli", "token.create", "reader"),
            row("cli", "token.revoke", "panel"),
        ]
    );
}
