//! The live directory: refreshing, propagation from another process, and riding out faults.

use std::time::{Duration, Instant};

use autodisco_directory::{Actor, DEFAULT_POLL_INTERVAL, DomainStatus, LiveDirectory};
use autodisco_proto::Answer;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};
use tracing::Level;

use crate::support::{
    CapturedLogs, TestDb, a, d, on_both_backends, postgres_admin_url, profile, wait_for,
};

on_both_backends!(
    refresh_swaps_only_on_change,
    change_by_another_store_shows_within_two_seconds,
    failed_load_keeps_last_snapshot_and_recovers,
);

/// A fast poll for the fault tests, so they finish quickly.
const FAST_POLL: Duration = Duration::from_millis(50);

async fn hosted(db: &TestDb) {
    db.store
        .put_profile(&Actor::Cli, "standard", &profile("h.example"))
        .await
        .unwrap();
    db.store
        .add_domain(&Actor::Cli, &d("a.example"), "standard")
        .await
        .unwrap();
}

fn answers(live: &LiveDirectory) -> bool {
    matches!(
        live.snapshot().resolve(&a("jane@a.example")),
        Answer::Settings(_)
    )
}

async fn refresh_swaps_only_on_change(db: TestDb) {
    hosted(&db).await;
    let live = LiveDirectory::load(db.store.clone()).await.unwrap();
    assert!(answers(&live));
    assert!(!live.refresh().await.unwrap());
    let before = live.snapshot();

    db.store
        .add_domain(&Actor::Cli, &d("b.example"), "standard")
        .await
        .unwrap();
    assert!(live.refresh().await.unwrap());
    assert!(live.snapshot().hosts(&d("b.example")));
    // A reader holding the old snapshot keeps a consistent view.
    assert!(!before.hosts(&d("b.example")));
    let health = live.health();
    assert_eq!(health.revision, db.store.revision().await.unwrap());
    assert_eq!(health.fault, None);
    assert!(!live.refresh().await.unwrap());
}

async fn change_by_another_store_shows_within_two_seconds(db: TestDb) {
    hosted(&db).await;
    let live = LiveDirectory::load(db.store.clone()).await.unwrap();
    let refresher = live.spawn_refresher(DEFAULT_POLL_INTERVAL);
    // "Another process": its own connections, as the CLI or a second instance has.
    let cli = db.second_store().await;

    cli.add_domain(&Actor::Cli, &d("new.example"), "standard")
        .await
        .unwrap();
    let written = Instant::now();
    wait_for("the new domain to appear", Duration::from_secs(2), || {
        live.snapshot().hosts(&d("new.example"))
    })
    .await;
    let first = written.elapsed();

    cli.set_status(&Actor::Cli, &d("a.example"), DomainStatus::Suspended)
        .await
        .unwrap();
    let written = Instant::now();
    wait_for("the suspension to apply", Duration::from_secs(2), || {
        !answers(&live)
    })
    .await;
    eprintln!(
        "propagated in {first:?} and {:?} with a {DEFAULT_POLL_INTERVAL:?} poll",
        written.elapsed()
    );
    refresher.abort();
}

async fn failed_load_keeps_last_snapshot_and_recovers(db: TestDb) {
    let logs = CapturedLogs::default();
    let _capture = logs.install();
    hosted(&db).await;
    let live = LiveDirectory::load(db.store.clone()).await.unwrap();
    let refresher = live.spawn_refresher(FAST_POLL);

    // A hand edit breaks the profile and tells readers something changed.
    db.raw_sql(
        r#"UPDATE profiles SET settings = '{"imapp": []}' WHERE name = 'standard';
           UPDATE directory_revision SET revision = revision + 1 WHERE id = 1"#,
    )
    .await;
    wait_for("the fault to show", Duration::from_secs(2), || {
        live.health().fault.is_some()
    })
    .await;
    assert!(live.health().fault.unwrap().contains("standard"));
    // Several failing polls later: still answering from the last good snapshot, logged once.
    tokio::time::sleep(FAST_POLL * 6).await;
    assert!(answers(&live));
    assert_eq!(
        logs.at_least(Level::WARN).len(),
        1,
        "{:?}",
        logs.at_least(Level::WARN)
    );

    // The admin repairs the profile: the refresher recovers by itself.
    db.store
        .put_profile(&Actor::Cli, "standard", &profile("h.example"))
        .await
        .unwrap();
    let repaired = db.store.revision().await.unwrap();
    wait_for("the recovery", Duration::from_secs(2), || {
        let health = live.health();
        health.fault.is_none() && health.revision == repaired
    })
    .await;
    assert!(answers(&live));
    assert!(logs.contains("directory database is back"));
    assert_eq!(logs.at_least(Level::WARN).len(), 1);
    refresher.abort();
}

/// A real outage: PostgreSQL stops accepting connections to the database and drops the open
/// ones. Answers continue from the last snapshot; once connections are allowed again, the
/// refresher picks up what changed meanwhile.
#[tokio::test]
async fn postgres_outage_keeps_last_snapshot_and_recovers() {
    let db = TestDb::postgres().await;
    let name = db.pg_name.clone().unwrap();
    let logs = CapturedLogs::default();
    let _capture = logs.install();
    hosted(&db).await;
    let live = LiveDirectory::load(db.store.clone()).await.unwrap();
    let refresher = live.spawn_refresher(FAST_POLL);
    let writer = db.second_store().await;

    let mut admin = PgConnection::connect(&postgres_admin_url()).await.unwrap();
    admin
        .execute(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false").as_str())
        .await
        .unwrap();
    admin
        .execute(
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
            .as_str(),
        )
        .await
        .unwrap();

    wait_for("the outage to be noticed", Duration::from_secs(5), || {
        live.health().fault.is_some()
    })
    .await;
    let fault = live.health().fault.unwrap();
    assert!(fault.contains("cannot be reached"), "{fault}");
    tokio::time::sleep(FAST_POLL * 6).await;
    assert!(answers(&live), "the last snapshot keeps answering");
    assert_eq!(
        logs.at_least(Level::WARN).len(),
        1,
        "logged once: {:?}",
        logs.at_least(Level::WARN)
    );
    assert!(
        writer
            .add_domain(&Actor::Cli, &d("b.example"), "standard")
            .await
            .is_err()
    );

    admin
        .execute(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true").as_str())
        .await
        .unwrap();
    admin.close().await.unwrap();
    writer
        .add_domain(&Actor::Cli, &d("b.example"), "standard")
        .await
        .unwrap();
    wait_for("the recovery", Duration::from_secs(5), || {
        live.health().fault.is_none() && live.snapshot().hosts(&d("b.example"))
    })
    .await;
    assert!(answers(&live));
    assert!(logs.contains("directory database is back"));
    assert_eq!(logs.at_least(Level::WARN).len(), 1);
    refresher.abort();
}
