//! Bulk import and export.

use autodisco_directory::{
    Actor, DirectoryData, DirectoryError, DomainRecord, DomainStatus, DomainTarget, ImportCounts,
    Redirect, Section, UserOverride,
};

use crate::support::{TestDb, a, d, on_both_backends, profile};

on_both_backends!(
    export_import_export_is_identical,
    refused_import_names_every_problem_and_writes_nothing,
    dry_run_reports_and_writes_nothing,
);

fn primary(name: &str, profile: &str, status: DomainStatus) -> DomainRecord {
    DomainRecord {
        name: d(name),
        status,
        target: DomainTarget::Profile(profile.into()),
    }
}

fn alias(name: &str, of: &str) -> DomainRecord {
    DomainRecord {
        name: d(name),
        status: DomainStatus::Active,
        target: DomainTarget::AliasOf(d(of)),
    }
}

fn sample() -> DirectoryData {
    let mut jane = UserOverride::new(a("jane@a.example"));
    jane.display_name = Some("Jane, \"J\" Doe".into());
    jane.login_name = Some("jdoe".into());
    let mut moved = UserOverride::new(a("old@a.example"));
    moved.redirect = Some(Redirect::Address(a("new@b.example")));
    DirectoryData {
        profiles: vec![
            ("business".into(), profile("b.example")),
            ("standard".into(), profile("s.example")),
        ],
        // Aliases before their primaries: the order in a file is free.
        domains: vec![
            alias("alias.example", "a.example"),
            primary("a.example", "standard", DomainStatus::Active),
            primary("b.example", "business", DomainStatus::Suspended),
        ],
        users: vec![jane, moved],
    }
}

async fn export_import_export_is_identical(db: TestDb) {
    let s = &db.store;
    let report = s.import(&Actor::Cli, &sample(), false).await.unwrap();
    let created = |n| ImportCounts {
        created: n,
        changed: 0,
        unchanged: 0,
    };
    assert_eq!(
        (report.profiles, report.domains, report.users),
        (created(2), created(3), created(2))
    );
    let first = s.export().await.unwrap();
    assert_eq!(first.domains.len(), 3);
    assert_eq!(first.domains[0].name, d("a.example"));
    // Into a fresh database, then out again.
    let other = TestDb::sqlite().await;
    other
        .store
        .import(&Actor::Cli, &first, false)
        .await
        .unwrap();
    assert_eq!(other.store.export().await.unwrap(), first);
    // Into the same one: nothing to do.
    let again = s.import(&Actor::Cli, &first, false).await.unwrap();
    assert_eq!(again.domains.unchanged, 3);
    assert_eq!(again.users.unchanged, 2);
    assert_eq!(again.profiles.unchanged, 2);
    // A change is an update, recorded in the log.
    let mut changed = first.clone();
    changed.domains[2].status = DomainStatus::Active;
    let report = s.import(&Actor::Cli, &changed, false).await.unwrap();
    assert_eq!((report.domains.changed, report.domains.unchanged), (1, 2));
    let entry = &s.audit_log(1, None).await.unwrap()[0];
    assert_eq!(
        (entry.action.as_str(), entry.object.as_str()),
        ("domain.update", "b.example")
    );
    assert!(s.load_snapshot().await.unwrap().hosts(&d("b.example")));
}

async fn refused_import_names_every_problem_and_writes_nothing(db: TestDb) {
    let s = &db.store;
    s.put_profile(&Actor::Cli, "standard", &profile("s.example"))
        .await
        .unwrap();
    s.add_domain(&Actor::Cli, &d("old.example"), "standard")
        .await
        .unwrap();
    let revision = s.revision().await.unwrap();
    let mut data = sample();
    data.domains.extend([
        primary("x.example", "missing", DomainStatus::Active),
        alias("y.example", "alias.example"),
        alias("z.example", "nowhere.example"),
        primary("a.example", "standard", DomainStatus::Active),
        alias("old.example", "a.example"),
        primary("fine.example", "standard", DomainStatus::Active),
    ]);
    data.users.push(UserOverride::new(a("empty@a.example")));
    data.users.push({
        let mut u = UserOverride::new(a("u@unhosted.example"));
        u.login_name = Some("u".into());
        u
    });
    let Err(DirectoryError::ImportRefused { problems }) = s.import(&Actor::Cli, &data, false).await
    else {
        panic!("the import was accepted");
    };
    let found: Vec<(Section, usize)> = problems.iter().map(|p| (p.section, p.index)).collect();
    assert_eq!(
        found,
        vec![
            (Section::Domains, 3),
            (Section::Domains, 4),
            (Section::Domains, 5),
            (Section::Domains, 6),
            (Section::Domains, 7),
            (Section::Users, 2),
            (Section::Users, 3),
        ],
        "{problems:#?}"
    );
    assert!(
        problems[0]
            .message
            .contains("profile missing does not exist")
    );
    assert!(
        problems[1]
            .message
            .contains("alias.example is itself an alias of a.example")
    );
    assert!(
        problems[2]
            .message
            .contains("nowhere.example is not hosted")
    );
    assert!(problems[3].message.contains("listed twice"));
    assert!(problems[4].message.contains("exists as a primary"));
    assert!(
        problems[6]
            .message
            .contains("unhosted.example is not hosted")
    );
    assert_eq!(s.revision().await.unwrap(), revision);
    assert_eq!(s.list_domains().await.unwrap().len(), 1);
}

async fn dry_run_reports_and_writes_nothing(db: TestDb) {
    let s = &db.store;
    let revision = s.revision().await.unwrap();
    let report = s.import(&Actor::Cli, &sample(), true).await.unwrap();
    assert_eq!(report.domains.created, 3);
    assert_eq!(s.revision().await.unwrap(), revision);
    assert!(s.export().await.unwrap().domains.is_empty());
    assert!(s.audit_log(10, None).await.unwrap().is_empty());
}
