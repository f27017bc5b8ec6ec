//! Service profiles in the store.

use autodisco_directory::{Actor, DirectoryError, ObjectKind, Upsert};
use autodisco_proto::ServiceProfile;

use crate::support::{TestDb, d, on_both_backends, profile};

on_both_backends!(
    profile_put_get_list_remove,
    profile_refusals_change_nothing,
    profile_in_use_cannot_be_removed,
    corrupt_profile_is_reported,
);

async fn profile_put_get_list_remove(db: TestDb) {
    let s = &db.store;
    let standard = profile("hoster.example");
    assert_eq!(
        s.put_profile(&Actor::Cli, "standard", &standard)
            .await
            .unwrap(),
        Upsert::Created
    );
    assert_eq!(s.get_profile("standard").await.unwrap(), standard);

    let mut renamed = standard.clone();
    renamed.display_name = Some("Hoster Mail Plus".into());
    assert_eq!(
        s.put_profile(&Actor::Cli, "standard", &renamed)
            .await
            .unwrap(),
        Upsert::Replaced
    );
    assert_eq!(s.get_profile("standard").await.unwrap(), renamed);

    s.put_profile(&Actor::Cli, "Business.2", &standard)
        .await
        .unwrap();
    s.add_domain(&Actor::Cli, &d("a.example"), "standard")
        .await
        .unwrap();
    let list = s.list_profiles().await.unwrap();
    let summary: Vec<_> = list.iter().map(|p| (p.name.as_str(), p.domains)).collect();
    assert_eq!(summary, [("Business.2", 0), ("standard", 1)]);
    assert_eq!(list[1].profile, renamed);

    s.remove_profile(&Actor::Cli, "Business.2").await.unwrap();
    for result in [
        s.get_profile("Business.2").await.map(drop),
        s.remove_profile(&Actor::Cli, "Business.2").await,
    ] {
        assert!(matches!(
            result,
            Err(DirectoryError::NotFound { kind: ObjectKind::Profile, name }) if name == "Business.2"
        ));
    }
}

async fn profile_refusals_change_nothing(db: TestDb) {
    let s = &db.store;
    let before = s.revision().await.unwrap();
    assert!(matches!(
        s.put_profile(&Actor::Cli, "no spaces", &profile("h.example"))
            .await,
        Err(DirectoryError::InvalidProfileName { .. })
    ));
    match s
        .put_profile(&Actor::Cli, "empty", &ServiceProfile::default())
        .await
    {
        Err(DirectoryError::InvalidProfile { name, problems }) => {
            assert_eq!(name, "empty");
            assert_eq!(problems.len(), 1);
        }
        other => panic!("expected InvalidProfile, got {other:?}"),
    }
    assert!(s.list_profiles().await.unwrap().is_empty());
    assert_eq!(s.revision().await.unwrap(), before);
}

async fn profile_in_use_cannot_be_removed(db: TestDb) {
    let s = &db.store;
    s.put_profile(&Actor::Cli, "standard", &profile("h.example"))
        .await
        .unwrap();
    let domains: Vec<_> = (0..12).map(|i| d(&format!("d{i:02}.example"))).collect();
    s.add_domains(&Actor::Cli, &domains, "standard")
        .await
        .unwrap();
    match s.remove_profile(&Actor::Cli, "standard").await {
        Err(error @ DirectoryError::ProfileInUse { .. }) => {
            let message = error.to_string();
            let DirectoryError::ProfileInUse {
                profile,
                domains: named,
                total,
            } = error
            else {
                unreachable!()
            };
            assert_eq!(profile, "standard");
            assert_eq!(total, 12);
            assert_eq!(named, domains[..10]);
            assert!(message.contains("d00.example, d01.example"), "{message}");
        }
        other => panic!("expected ProfileInUse, got {other:?}"),
    }
    assert!(s.get_profile("standard").await.is_ok());
}

async fn corrupt_profile_is_reported(db: TestDb) {
    let s = &db.store;
    s.put_profile(&Actor::Cli, "standard", &profile("h.example"))
        .await
        .unwrap();
    db.raw_sql(r#"UPDATE profiles SET settings = '{"imapp": []}' WHERE name = 'standard'"#)
        .await;
    let is_corrupt = |r: Result<(), DirectoryError>| matches!(r, Err(DirectoryError::CorruptProfile { name, .. }) if name == "standard");
    assert!(is_corrupt(s.get_profile("standard").await.map(drop)));
    assert!(is_corrupt(s.list_profiles().await.map(drop)));
    assert!(is_corrupt(s.load_snapshot().await.map(drop)));
    // Putting a good profile back repairs it.
    s.put_profile(&Actor::Cli, "standard", &profile("h.example"))
        .await
        .unwrap();
    assert!(s.load_snapshot().await.is_ok());
}
