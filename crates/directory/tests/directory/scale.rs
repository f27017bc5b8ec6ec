//! A million domains: how long loading takes and how much memory the snapshot needs.
//!
//! Ignored by default (a minute or two). Run in release mode, which is what a server runs:
//!
//! ```text
//! cargo test --release -p autodisco-directory --test directory -- --ignored --nocapture scale::million
//! ```
//!
//! The parent test fills a database in a few large transactions, then measures the load in a
//! child process (this test binary again), so the figures are not inflated by the fill.

use std::process::Command;
use std::time::Instant;

use autodisco_directory::{Actor, Redirect, Store, UserOverride};
use autodisco_proto::{Answer, Domain};

use crate::support::{TestDb, a, d, profile};

const DOMAINS: usize = 1_000_000;
const BATCH: usize = 250_000;
const ALIASES: usize = 1_000;
const USERS: usize = 1_000;
/// The database the child process loads.
const URL_VAR: &str = "AUTODISCO_SCALE_URL";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a minute or two; run in release with --ignored"]
async fn million_domains_sqlite() {
    let db = TestDb::sqlite().await;
    fill_and_measure(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a minute or two; run in release with --ignored"]
async fn million_domains_postgres() {
    let db = TestDb::postgres().await;
    fill_and_measure(&db).await;
}

fn name(i: usize) -> String {
    format!("customer{i:07}.example")
}

async fn fill_and_measure(db: &TestDb) {
    let s = &db.store;
    s.put_profile(&Actor::Cli, "standard", &profile("hoster.example"))
        .await
        .unwrap();
    let started = Instant::now();
    for start in (0..DOMAINS).step_by(BATCH) {
        let batch: Vec<Domain> = (start..start + BATCH).map(|i| d(&name(i))).collect();
        s.add_domains(&Actor::Cli, &batch, "standard")
            .await
            .unwrap();
    }
    let fill = started.elapsed();
    for i in 0..ALIASES {
        s.add_alias(&Actor::Cli, &d(&format!("alias{i}.example")), &d(&name(i)))
            .await
            .unwrap();
    }
    for i in 0..USERS {
        let mut user = UserOverride::new(a(&format!("user{i}@{}", name(i))));
        user.redirect = Some(Redirect::Url(format!("https://other.example/{i}")));
        s.put_user(&Actor::Cli, &user).await.unwrap();
    }
    println!(
        "{:?}: inserted {DOMAINS} domains in {} transactions in {fill:.1?}; \
         {ALIASES} aliases and {USERS} overrides one by one in {:.1?}",
        s.backend(),
        DOMAINS / BATCH,
        started.elapsed() - fill
    );
    s.close().await;

    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "scale::load_in_a_fresh_process",
            "--nocapture",
        ])
        .env(URL_VAR, &db.url)
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the measuring process failed");
}

/// Run by the tests above, in a process of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by million_domains_*"]
async fn load_in_a_fresh_process() {
    let url = std::env::var(URL_VAR).expect("run through million_domains_sqlite or _postgres");
    let rss_before = memory_kib("VmRSS");
    let store = Store::connect(&url).await.unwrap();
    let started = Instant::now();
    let snapshot = store.load_snapshot().await.unwrap();
    let load = started.elapsed();
    let rss_after = memory_kib("VmRSS");
    let peak = memory_kib("VmHWM");
    let counts = snapshot.counts();
    assert_eq!(counts.primary_domains, DOMAINS);
    assert_eq!(counts.alias_domains, ALIASES);
    assert_eq!(counts.users, USERS);

    let lookups = 1_000_000;
    let addresses: Vec<_> = (0..1000)
        .map(|i| a(&format!("jane@{}", name(i * 997 % DOMAINS))))
        .collect();
    let started = Instant::now();
    let mut hosted = 0;
    for i in 0..lookups {
        if let Answer::Settings(_) = snapshot.resolve(&addresses[i % addresses.len()]) {
            hosted += 1;
        }
    }
    let per_lookup = started.elapsed() / lookups as u32;
    assert_eq!(hosted, lookups);

    println!(
        "{:?}: load_snapshot {load:.2?}; snapshot heap ~{} MiB; process RSS {} MiB before, \
         {} MiB after, peak {} MiB; resolve {per_lookup:?} per address",
        store.backend(),
        snapshot.approximate_heap_bytes() / (1 << 20),
        rss_before / 1024,
        rss_after / 1024,
        peak / 1024,
    );
    assert!(load.as_secs_f64() < 5.0, "load took {load:?}");
    assert!(rss_after < 300 * 1024, "RSS {rss_after} KiB");
}

/// A field of /proc/self/status, in KiB (Linux).
fn memory_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
