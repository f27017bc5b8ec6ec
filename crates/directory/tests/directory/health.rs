//! The last live check of each domain: stored, replaced, listed, removed with its domain, and
//! never a reason for servers to reload (the revision stays).

use autodisco_directory::{
    Actor, DirectoryError, DomainHealth, DomainRemoval, HealthStatus, ObjectKind,
};

use crate::support::{TestDb, d, on_both_backends, profile};

on_both_backends!(health_is_stored_without_a_new_revision);

fn health(domain: &str, checked_at: u64, status: HealthStatus, findings: &str) -> DomainHealth {
    DomainHealth {
        domain: d(domain),
        checked_at,
        status,
        findings: findings.to_owned(),
    }
}

async fn health_is_stored_without_a_new_revision(db: TestDb) {
    let s = &db.store;
    s.put_profile(&Actor::Cli, "standard", &profile("h.example"))
        .await
        .unwrap();
    let domains = [d("a.example"), d("b.example")];
    assert_eq!(
        s.add_domains(&Actor::Cli, &domains, "standard")
            .await
            .unwrap(),
        2
    );
    assert_eq!(s.health(&d("a.example")).await.unwrap(), None);
    let revision = s.revision().await.unwrap();

    let first = [
        health("a.example", 100, HealthStatus::Unhealthy, r#"[{"m":"x"}]"#),
        health("b.example", 100, HealthStatus::Healthy, "[]"),
        // Removed while the check ran: skipped, not an error.
        health("gone.example", 100, HealthStatus::Healthy, "[]"),
    ];
    assert_eq!(s.put_health(&first).await.unwrap(), 2);
    assert_eq!(
        s.health(&d("a.example")).await.unwrap(),
        Some(first[0].clone())
    );
    let again = health("a.example", 200, HealthStatus::Healthy, "[]");
    assert_eq!(s.put_health(std::slice::from_ref(&again)).await.unwrap(), 1);
    assert_eq!(
        s.health(&d("a.example")).await.unwrap(),
        Some(again.clone())
    );
    assert_eq!(
        s.revision().await.unwrap(),
        revision,
        "health must not bump the revision"
    );

    let mut all = s.all_health().await.unwrap();
    all.sort_by(|x, y| x.domain.cmp(&y.domain));
    assert_eq!(all, [again, first[1].clone()]);

    s.remove_domain(&Actor::Cli, &d("a.example"), DomainRemoval::OnlyIfUnused)
        .await
        .unwrap();
    assert_eq!(s.all_health().await.unwrap(), [first[1].clone()]);
    match s.health(&d("a.example")).await {
        Err(DirectoryError::NotFound {
            kind: ObjectKind::Domain,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}
