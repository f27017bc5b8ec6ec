//! Every resolve rule, on snapshots loaded from each database (the builder-made snapshots are
//! tested beside the code).

use std::sync::Arc;

use autodisco_directory::{Actor, DomainStatus, Redirect, Snapshot, SnapshotCounts, UserOverride};
use autodisco_proto::{AccountSettings, Answer};

use crate::support::{TestDb, a, d, on_both_backends, profile};

on_both_backends!(resolve_rules, hosts_rule);

/// primary.example (standard) + alias.example; other.example (business); suspended.example +
/// via-suspended.example; off.example, a suspended alias of primary.example; three overrides.
async fn directory(db: &TestDb) -> Snapshot {
    let s = &db.store;
    s.put_profile(&Actor::Cli, "standard", &profile("standard.example"))
        .await
        .unwrap();
    s.put_profile(&Actor::Cli, "business", &profile("business.example"))
        .await
        .unwrap();
    s.add_domain(&Actor::Cli, &d("primary.example"), "standard")
        .await
        .unwrap();
    s.add_domain(&Actor::Cli, &d("other.example"), "business")
        .await
        .unwrap();
    s.add_domain(&Actor::Cli, &d("suspended.example"), "standard")
        .await
        .unwrap();
    for (alias, target) in [
        ("alias.example", "primary.example"),
        ("off.example", "primary.example"),
        ("via-suspended.example", "suspended.example"),
    ] {
        s.add_alias(&Actor::Cli, &d(alias), &d(target))
            .await
            .unwrap();
    }
    s.set_status(
        &Actor::Cli,
        &d("suspended.example"),
        DomainStatus::Suspended,
    )
    .await
    .unwrap();
    s.set_status(&Actor::Cli, &d("off.example"), DomainStatus::Suspended)
        .await
        .unwrap();

    let mut named = UserOverride::new(a("Named@primary.example"));
    named.display_name = Some("Named User".into());
    named.login_name = Some("u1001".into());
    let mut moved = UserOverride::new(a("moved@alias.example"));
    moved.redirect = Some(Redirect::Address(a("moved@other.example")));
    let mut away = UserOverride::new(a("away@primary.example"));
    away.redirect = Some(Redirect::Url("https://ad.elsewhere.example/x".into()));
    for user in [named, moved, away] {
        s.put_user(&Actor::Cli, &user).await.unwrap();
    }
    let snapshot = s.load_snapshot().await.unwrap();
    assert_eq!(snapshot.revision(), s.revision().await.unwrap());
    assert_eq!(
        snapshot.counts(),
        SnapshotCounts {
            profiles: 2,
            primary_domains: 3,
            alias_domains: 3,
            users: 3
        }
    );
    snapshot
}

fn settings(answer: Answer) -> AccountSettings {
    match answer {
        Answer::Settings(settings) => settings,
        other => panic!("expected settings, got {other:?}"),
    }
}

async fn resolve_rules(db: TestDb) {
    let s = directory(&db).await;

    // Unknown, suspended, alias of suspended, suspended alias.
    for address in [
        "jane@unknown.example",
        "jane@suspended.example",
        "jane@via-suspended.example",
        "jane@off.example",
    ] {
        assert_eq!(s.resolve(&a(address)), Answer::NotHosted, "{address}");
    }

    // A hosted domain: its profile, the address as asked.
    let jane = settings(s.resolve(&a("Jane@primary.example")));
    assert_eq!(jane.address, a("Jane@primary.example"));
    assert_eq!(
        *jane.profile,
        profile("standard.example"),
        "the domain's own profile"
    );
    assert_eq!(
        (jane.display_name.clone(), jane.login_name.clone()),
        (None, None)
    );
    let bob = settings(s.resolve(&a("bob@other.example")));
    assert_eq!(*bob.profile, profile("business.example"));
    // Interned: one Arc per profile.
    let john = settings(s.resolve(&a("john@primary.example")));
    assert!(Arc::ptr_eq(&jane.profile, &john.profile));

    // An unknown user gets what any user gets.
    let mut nobody = settings(s.resolve(&a("no-such-user@primary.example")));
    nobody.address = jane.address.clone();
    assert_eq!(nobody, jane);

    // An alias: rewritten to the primary, answered directly.
    let via_alias = settings(s.resolve(&a("Jane@alias.example")));
    assert_eq!(via_alias, jane);

    // Overrides: redirects (also when stored through the alias), names.
    assert_eq!(
        s.resolve(&a("MOVED@primary.example")),
        Answer::RedirectAddr(a("moved@other.example"))
    );
    assert_eq!(
        s.resolve(&a("moved@alias.example")),
        Answer::RedirectAddr(a("moved@other.example"))
    );
    assert_eq!(
        s.resolve(&a("away@alias.example")),
        Answer::RedirectUrl("https://ad.elsewhere.example/x".into())
    );
    let named = settings(s.resolve(&a("named@alias.example")));
    assert_eq!(named.address, a("named@primary.example"));
    assert_eq!(named.display_name.as_deref(), Some("Named User"));
    assert_eq!(named.login_name.as_deref(), Some("u1001"));
    // The same local part in another domain is someone else.
    let other = settings(s.resolve(&a("named@other.example")));
    assert_eq!(other.display_name, None);
}

async fn hosts_rule(db: TestDb) {
    let s = directory(&db).await;
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
