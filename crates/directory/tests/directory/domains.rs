//! Hosted and alias domains in the store.

use autodisco_directory::{
    Actor, DirectoryError, DomainInfo, DomainKind, DomainRemoval, DomainStatus, ObjectKind,
    Redirect, UserOverride,
};

use crate::support::{TestDb, a, d, on_both_backends, profile};

on_both_backends!(
    domain_add_get_list,
    domain_add_refusals,
    alias_rules,
    set_profile_and_status,
    remove_alias_and_primary,
    bulk_add_is_all_or_nothing,
    revision_moves_with_every_write_only,
);

async fn with_profiles(db: &TestDb) {
    for (name, hoster) in [("standard", "s.example"), ("business", "b.example")] {
        db.store
            .put_profile(&Actor::Cli, name, &profile(hoster))
            .await
            .unwrap();
    }
}

fn primary(profile: &str, aliases: &[&str], users: u64) -> DomainKind {
    DomainKind::Primary {
        profile: profile.into(),
        aliases: aliases.iter().map(|n| d(n)).collect(),
        users,
    }
}

async fn domain_add_get_list(db: TestDb) {
    with_profiles(&db).await;
    let s = &db.store;
    s.add_domain(&Actor::Cli, &d("b.example"), "business")
        .await
        .unwrap();
    s.add_domain(&Actor::Cli, &d("A.Example."), "standard")
        .await
        .unwrap();
    s.add_alias(&Actor::Cli, &d("alias.example"), &d("a.example"))
        .await
        .unwrap();
    let mut user = UserOverride::new(a("jane@a.example"));
    user.login_name = Some("u1".into());
    s.put_user(&Actor::Cli, &user).await.unwrap();

    let expected = vec![
        DomainInfo {
            name: d("a.example"),
            status: DomainStatus::Active,
            kind: primary("standard", &["alias.example"], 1),
        },
        DomainInfo {
            name: d("alias.example"),
            status: DomainStatus::Active,
            kind: DomainKind::Alias {
                primary: d("a.example"),
            },
        },
        DomainInfo {
            name: d("b.example"),
            status: DomainStatus::Active,
            kind: primary("business", &[], 0),
        },
    ];
    assert_eq!(s.list_domains().await.unwrap(), expected);
    for info in &expected {
        assert_eq!(&s.get_domain(&info.name).await.unwrap(), info);
    }
    assert!(matches!(
        s.get_domain(&d("nope.example")).await,
        Err(DirectoryError::NotFound { kind: ObjectKind::Domain, name }) if name == "nope.example"
    ));
}

async fn domain_add_refusals(db: TestDb) {
    with_profiles(&db).await;
    let s = &db.store;
    assert!(matches!(
        s.add_domain(&Actor::Cli, &d("a.example"), "missing").await,
        Err(DirectoryError::NotFound { kind: ObjectKind::Profile, name }) if name == "missing"
    ));
    s.add_domain(&Actor::Cli, &d("a.example"), "standard")
        .await
        .unwrap();
    s.add_alias(&Actor::Cli, &d("alias.example"), &d("a.example"))
        .await
        .unwrap();
    for taken in ["a.example", "alias.example"] {
        assert!(matches!(
            s.add_domain(&Actor::Cli, &d(taken), "business").await,
            Err(DirectoryError::AlreadyExists { kind: ObjectKind::Domain, name }) if name == taken
        ));
    }
    assert_eq!(s.list_domains().await.unwrap().len(), 2);
}

async fn alias_rules(db: TestDb) {
    with_profiles(&db).await;
    let s = &db.store;
    s.add_domain(&Actor::Cli, &d("a.example"), "standard")
        .await
        .unwrap();
    s.add_domain(&Actor::Cli, &d("b.example"), "standard")
        .await
        .unwrap();
    s.add_alias(&Actor::Cli, &d("alias.example"), &d("a.example"))
        .await
        .unwrap();
    assert!(matches!(
        s.add_alias(&Actor::Cli, &d("x.example"), &d("missing.example")).await,
        Err(DirectoryError::NotFound { kind: ObjectKind::Domain, name }) if name == "missing.example"
    ));
    match s
        .add_alias(&Actor::Cli, &d("x.example"), &d("alias.example"))
        .await
    {
        Err(DirectoryError::AliasOfAlias {
            alias,
            target,
            target_primary,
        }) => assert_eq!(
            (alias, target, target_primary),
            (d("x.example"), d("alias.example"), d("a.example"))
        ),
        other => panic!("expected AliasOfAlias, got {other:?}"),
    }
    // A primary cannot become an alias, nor an alias point elsewhere, nor a domain alias itself.
    for (alias, target) in [
        ("b.example", "a.example"),
        ("alias.example", "b.example"),
        ("a.example", "a.example"),
    ] {
        assert!(
            matches!(
                s.add_alias(&Actor::Cli, &d(alias), &d(target)).await,
                Err(DirectoryError::AlreadyExists { kind: ObjectKind::Domain, ref name }) if name == alias
            ),
            "{alias} -> {target}"
        );
    }
    assert!(matches!(
        s.get_domain(&d("x.example")).await,
        Err(DirectoryError::NotFound { .. })
    ));
}

async fn set_profile_and_status(db: TestDb) {
    with_profiles(&db).await;
    let s = &db.store;
    s.add_domain(&Actor::Cli, &d("a.example"), "standard")
        .await
        .unwrap();
    s.add_alias(&Actor::Cli, &d("alias.example"), &d("a.example"))
        .await
        .unwrap();

    s.set_profile(&Actor::Cli, &d("a.example"), "business")
        .await
        .unwrap();
    assert_eq!(
        s.get_domain(&d("a.example")).await.unwrap().kind,
        primary("business", &["alias.example"], 0)
    );
    assert!(matches!(
        s.set_profile(&Actor::Cli, &d("a.example"), "missing").await,
        Err(DirectoryError::NotFound {
            kind: ObjectKind::Profile,
            ..
        })
    ));
    match s
        .set_profile(&Actor::Cli, &d("alias.example"), "standard")
        .await
    {
        Err(DirectoryError::IsAlias { alias, primary }) => {
            assert_eq!((alias, primary), (d("alias.example"), d("a.example")))
        }
        other => panic!("expected IsAlias, got {other:?}"),
    }
    assert!(matches!(
        s.set_profile(&Actor::Cli, &d("nope.example"), "standard")
            .await,
        Err(DirectoryError::NotFound {
            kind: ObjectKind::Domain,
            ..
        })
    ));

    for domain in ["a.example", "alias.example"] {
        s.set_status(&Actor::Cli, &d(domain), DomainStatus::Suspended)
            .await
            .unwrap();
        assert_eq!(
            s.get_domain(&d(domain)).await.unwrap().status,
            DomainStatus::Suspended
        );
        s.set_status(&Actor::Cli, &d(domain), DomainStatus::Active)
            .await
            .unwrap();
        assert_eq!(
            s.get_domain(&d(domain)).await.unwrap().status,
            DomainStatus::Active
        );
    }
    assert!(matches!(
        s.set_status(&Actor::Cli, &d("nope.example"), DomainStatus::Active)
            .await,
        Err(DirectoryError::NotFound {
            kind: ObjectKind::Domain,
            ..
        })
    ));
}

async fn remove_alias_and_primary(db: TestDb) {
    with_profiles(&db).await;
    let s = &db.store;
    s.add_domain(&Actor::Cli, &d("a.example"), "standard")
        .await
        .unwrap();
    for alias in ["alias1.example", "alias2.example"] {
        s.add_alias(&Actor::Cli, &d(alias), &d("a.example"))
            .await
            .unwrap();
    }
    let mut user = UserOverride::new(a("jane@a.example"));
    user.redirect = Some(Redirect::Url("https://elsewhere.example/".into()));
    s.put_user(&Actor::Cli, &user).await.unwrap();

    // An alias goes alone.
    let removed = s
        .remove_domain(
            &Actor::Cli,
            &d("alias2.example"),
            DomainRemoval::OnlyIfUnused,
        )
        .await
        .unwrap();
    assert!(removed.aliases.is_empty() && removed.users == 0);

    match s
        .remove_domain(&Actor::Cli, &d("a.example"), DomainRemoval::OnlyIfUnused)
        .await
    {
        Err(DirectoryError::DomainHasDependents {
            domain,
            aliases,
            users,
        }) => assert_eq!(
            (domain, aliases, users),
            (d("a.example"), vec![d("alias1.example")], 1)
        ),
        other => panic!("expected DomainHasDependents, got {other:?}"),
    }
    assert_eq!(s.list_domains().await.unwrap().len(), 2);

    let removed = s
        .remove_domain(&Actor::Cli, &d("a.example"), DomainRemoval::Cascade)
        .await
        .unwrap();
    assert_eq!(removed.aliases, [d("alias1.example")]);
    assert_eq!(removed.users, 1);
    assert!(s.list_domains().await.unwrap().is_empty());
    assert!(s.list_users(None).await.unwrap().is_empty());
    // The profile is free again.
    s.remove_profile(&Actor::Cli, "standard").await.unwrap();

    assert!(matches!(
        s.remove_domain(&Actor::Cli, &d("a.example"), DomainRemoval::Cascade)
            .await,
        Err(DirectoryError::NotFound {
            kind: ObjectKind::Domain,
            ..
        })
    ));

    // A primary without dependents goes without cascade.
    s.add_domain(&Actor::Cli, &d("b.example"), "business")
        .await
        .unwrap();
    s.remove_domain(&Actor::Cli, &d("b.example"), DomainRemoval::OnlyIfUnused)
        .await
        .unwrap();
}

async fn bulk_add_is_all_or_nothing(db: TestDb) {
    with_profiles(&db).await;
    let s = &db.store;
    // More than one INSERT chunk.
    let domains: Vec<_> = (0..1203).map(|i| d(&format!("bulk{i}.example"))).collect();
    assert_eq!(
        s.add_domains(&Actor::Cli, &domains, "standard")
            .await
            .unwrap(),
        1203
    );
    assert_eq!(s.list_domains().await.unwrap().len(), 1203);

    // One existing name in the last chunk: nothing of the batch is added.
    let mut batch: Vec<_> = (0..1100).map(|i| d(&format!("new{i}.example"))).collect();
    batch.push(d("bulk1202.example"));
    assert!(matches!(
        s.add_domains(&Actor::Cli, &batch, "standard").await,
        Err(DirectoryError::AlreadyExists { name, .. }) if name == "bulk1202.example"
    ));
    let twice = [d("x.example"), d("y.example"), d("x.example")];
    assert!(matches!(
        s.add_domains(&Actor::Cli, &twice, "standard").await,
        Err(DirectoryError::AlreadyExists { name, .. }) if name == "x.example"
    ));
    assert!(matches!(
        s.add_domains(&Actor::Cli, &[d("z.example")], "missing")
            .await,
        Err(DirectoryError::NotFound {
            kind: ObjectKind::Profile,
            ..
        })
    ));
    assert_eq!(s.list_domains().await.unwrap().len(), 1203);
    assert_eq!(
        s.add_domains(&Actor::Cli, &[], "standard").await.unwrap(),
        0
    );
}

async fn revision_moves_with_every_write_only(db: TestDb) {
    let s = &db.store;
    let mut last = s.revision().await.unwrap();
    let mut expect_bump = |now: u64, what: &str| {
        assert!(now > last, "{what} did not bump the revision");
        last = now;
    };
    s.put_profile(&Actor::Cli, "standard", &profile("h.example"))
        .await
        .unwrap();
    expect_bump(s.revision().await.unwrap(), "put_profile");
    s.add_domain(&Actor::Cli, &d("a.example"), "standard")
        .await
        .unwrap();
    expect_bump(s.revision().await.unwrap(), "add_domain");
    s.add_alias(&Actor::Cli, &d("b.example"), &d("a.example"))
        .await
        .unwrap();
    expect_bump(s.revision().await.unwrap(), "add_alias");
    s.set_status(&Actor::Cli, &d("b.example"), DomainStatus::Suspended)
        .await
        .unwrap();
    expect_bump(s.revision().await.unwrap(), "set_status");
    let mut user = UserOverride::new(a("jane@a.example"));
    user.display_name = Some("Jane".into());
    s.put_user(&Actor::Cli, &user).await.unwrap();
    expect_bump(s.revision().await.unwrap(), "put_user");

    // Refused writes roll back, bump included; reads never bump.
    let _ = s
        .add_domain(&Actor::Cli, &d("a.example"), "standard")
        .await
        .unwrap_err();
    let _ = s.remove_profile(&Actor::Cli, "standard").await.unwrap_err();
    let _ = s
        .remove_user(&Actor::Cli, &a("nobody@a.example"))
        .await
        .unwrap_err();
    let _ = s
        .set_status(&Actor::Cli, &d("x.example"), DomainStatus::Active)
        .await
        .unwrap_err();
    s.list_domains().await.unwrap();
    s.load_snapshot().await.unwrap();
    assert_eq!(s.revision().await.unwrap(), last);
    assert_eq!(s.load_snapshot().await.unwrap().revision(), last);
}
