//! Per-user overrides in the store.

use autodisco_directory::{
    Actor, DirectoryError, ObjectKind, OverrideProblem, Redirect, Upsert, UserOverride,
};

use crate::support::{TestDb, a, d, on_both_backends, profile};

on_both_backends!(
    user_put_get_list_remove,
    users_given_in_an_alias_domain_live_in_the_primary,
    user_refusals,
);

async fn hosted(db: &TestDb) {
    let s = &db.store;
    s.put_profile(&Actor::Cli, "standard", &profile("h.example"))
        .await
        .unwrap();
    s.add_domain(&Actor::Cli, &d("a.example"), "standard")
        .await
        .unwrap();
    s.add_domain(&Actor::Cli, &d("b.example"), "standard")
        .await
        .unwrap();
    s.add_alias(&Actor::Cli, &d("alias.example"), &d("a.example"))
        .await
        .unwrap();
}

async fn user_put_get_list_remove(db: TestDb) {
    hosted(&db).await;
    let s = &db.store;
    let mut jane = UserOverride::new(a("Jane.Doe@a.example"));
    jane.display_name = Some("Jane Doe".into());
    jane.login_name = Some("u1001".into());
    let (stored, outcome) = s.put_user(&Actor::Cli, &jane).await.unwrap();
    assert_eq!((stored.clone(), outcome), (jane.clone(), Upsert::Created));
    // Looked up case-insensitively, returned as typed.
    assert_eq!(s.get_user(&a("jane.doe@A.example")).await.unwrap(), jane);

    jane.login_name = None;
    jane.redirect = Some(Redirect::Address(a("jane@b.example")));
    assert_eq!(
        s.put_user(&Actor::Cli, &jane).await.unwrap().1,
        Upsert::Replaced
    );
    assert_eq!(s.get_user(&jane.address).await.unwrap(), jane);

    let mut bob = UserOverride::new(a("bob@b.example"));
    bob.redirect = Some(Redirect::Url(
        "https://autodiscover.other.example/autodiscover/autodiscover.xml".into(),
    ));
    s.put_user(&Actor::Cli, &bob).await.unwrap();
    let mut amy = UserOverride::new(a("amy@a.example"));
    amy.display_name = Some("Amy".into());
    s.put_user(&Actor::Cli, &amy).await.unwrap();

    assert_eq!(
        s.list_users(None).await.unwrap(),
        [amy.clone(), jane.clone(), bob.clone()]
    );
    assert_eq!(
        s.list_users(Some(&d("a.example"))).await.unwrap(),
        [amy.clone(), jane.clone()]
    );
    assert_eq!(s.list_users(Some(&d("b.example"))).await.unwrap(), [bob]);
    assert!(matches!(
        s.list_users(Some(&d("nope.example"))).await,
        Err(DirectoryError::NotFound {
            kind: ObjectKind::Domain,
            ..
        })
    ));

    s.remove_user(&Actor::Cli, &a("JANE.DOE@a.example"))
        .await
        .unwrap();
    for result in [
        s.get_user(&jane.address).await.map(drop),
        s.remove_user(&Actor::Cli, &jane.address).await,
    ] {
        assert!(matches!(
            result,
            Err(DirectoryError::NotFound { kind: ObjectKind::UserOverride, name }) if name == "jane.doe@a.example"
        ));
    }
    assert_eq!(s.list_users(None).await.unwrap().len(), 2);
}

async fn users_given_in_an_alias_domain_live_in_the_primary(db: TestDb) {
    hosted(&db).await;
    let s = &db.store;
    let mut jane = UserOverride::new(a("Jane@alias.example"));
    jane.display_name = Some("Jane".into());
    let (stored, _) = s.put_user(&Actor::Cli, &jane).await.unwrap();
    assert_eq!(stored.address, a("Jane@a.example"));
    assert_eq!(s.get_user(&a("jane@a.example")).await.unwrap(), stored);
    assert_eq!(s.get_user(&a("jane@alias.example")).await.unwrap(), stored);
    assert_eq!(
        s.list_users(Some(&d("alias.example"))).await.unwrap(),
        std::slice::from_ref(&stored)
    );
    // Putting it again through the primary replaces the same override.
    assert_eq!(
        s.put_user(&Actor::Cli, &stored).await.unwrap().1,
        Upsert::Replaced
    );
    s.remove_user(&Actor::Cli, &a("jane@alias.example"))
        .await
        .unwrap();
    assert!(s.list_users(None).await.unwrap().is_empty());
}

async fn user_refusals(db: TestDb) {
    hosted(&db).await;
    let s = &db.store;
    let problem = |r: Result<(UserOverride, Upsert), DirectoryError>| match r {
        Err(DirectoryError::InvalidOverride { problem, .. }) => problem,
        other => panic!("expected InvalidOverride, got {other:?}"),
    };

    let mut user = UserOverride::new(a("jane@a.example"));
    assert_eq!(
        problem(s.put_user(&Actor::Cli, &user).await),
        OverrideProblem::Empty
    );
    user.redirect = Some(Redirect::Url("http://insecure.example/".into()));
    assert!(matches!(
        problem(s.put_user(&Actor::Cli, &user).await),
        OverrideProblem::RedirectUrlNotHttps { .. }
    ));
    // To itself, directly or through an alias of its domain, or from the alias side.
    user.redirect = Some(Redirect::Address(a("JANE@a.example")));
    assert_eq!(
        problem(s.put_user(&Actor::Cli, &user).await),
        OverrideProblem::RedirectToSelf
    );
    user.redirect = Some(Redirect::Address(a("jane@alias.example")));
    assert_eq!(
        problem(s.put_user(&Actor::Cli, &user).await),
        OverrideProblem::RedirectToSelf
    );
    let mut via_alias = UserOverride::new(a("jane@alias.example"));
    via_alias.redirect = Some(Redirect::Address(a("jane@a.example")));
    assert_eq!(
        problem(s.put_user(&Actor::Cli, &via_alias).await),
        OverrideProblem::RedirectToSelf
    );

    let mut unhosted = UserOverride::new(a("jane@nope.example"));
    unhosted.display_name = Some("Jane".into());
    assert!(matches!(
        s.put_user(&Actor::Cli, &unhosted).await,
        Err(DirectoryError::NotFound { kind: ObjectKind::Domain, name }) if name == "nope.example"
    ));
    assert!(matches!(
        s.get_user(&a("jane@nope.example")).await,
        Err(DirectoryError::NotFound {
            kind: ObjectKind::Domain,
            ..
        })
    ));
    assert!(s.list_users(None).await.unwrap().is_empty());
}
