//! `autodisco import` and `export` through the real binary: 100,000 domains from CSV, timed;
//! export, import into a fresh directory, export again gives the same bytes; bad rows are named
//! by line and nothing is written.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

use autodisco_test_support::{Backend, TestDatabase};

use crate::PROFILES;

on_both_backends!(
    hundred_thousand_domains_round_trip,
    bad_rows_are_named_by_line
);

const DOMAINS: usize = 100_000;

/// A config for `database` in `folder`, with the end-to-end profiles.
async fn directory(backend: Backend, folder: &Path) -> (TestDatabase, PathBuf) {
    std::fs::create_dir_all(folder).unwrap();
    let database = TestDatabase::create(backend, folder).await;
    let config = folder.join("autodisco.toml");
    std::fs::write(
        &config,
        format!(
            "hoster = \"hoster.example\"\ndatabase = \"{}\"\n{PROFILES}",
            database.url
        ),
    )
    .unwrap();
    (database, config)
}

fn cli(config: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_autodisco"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run autodisco")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn hundred_thousand_domains_round_trip(backend: Backend) {
    let folder = tempfile::tempdir().unwrap();
    let (_first_db, first) = directory(backend, &folder.path().join("first")).await;
    let (_second_db, second) = directory(backend, &folder.path().join("second")).await;
    let csv_path = folder.path().join("domains.csv");
    let mut csv = String::from("domain,profile,alias_of,status\n");
    for i in 0..DOMAINS {
        let line = match i % 100 {
            // Aliases of an earlier primary, some suspended primaries, two profiles.
            0 if i > 0 => format!("alias{i:06}.example,,customer{:06}.example,active\n", i - 1),
            7 => format!("customer{i:06}.example,business,,suspended\n"),
            n if n % 2 == 0 => format!("customer{i:06}.example,default,,active\n"),
            _ => format!("customer{i:06}.example,business,,active\n"),
        };
        csv.push_str(&line);
    }
    std::fs::write(&csv_path, csv).unwrap();

    let started = Instant::now();
    let report = ok(cli(&first, &["import", csv_path.to_str().unwrap()]));
    let elapsed = started.elapsed();
    eprintln!("{backend:?}: imported {DOMAINS} domains from CSV in {elapsed:.2?}");
    assert!(
        report.contains(&format!("domains: {DOMAINS} were created")),
        "{report}"
    );

    let export = |config: &Path, format: &str| ok(cli(config, &["export", "--format", format]));
    let csv_out = export(&first, "csv");
    let json_out = export(&first, "json");
    assert_eq!(csv_out.lines().count(), DOMAINS + 1);
    assert!(csv_out.contains("alias000100.example,,customer000099.example,active\n"));
    assert!(csv_out.contains("customer000007.example,business,,suspended\n"));

    // JSON carries profiles too, so it fills an empty directory by itself.
    let json_path = folder.path().join("directory.json");
    std::fs::write(&json_path, &json_out).unwrap();
    ok(cli(&second, &["import", json_path.to_str().unwrap()]));
    assert_eq!(export(&second, "json"), json_out);
    assert_eq!(export(&second, "csv"), csv_out);

    // Importing the same again changes nothing.
    let report = ok(cli(&second, &["import", json_path.to_str().unwrap()]));
    assert!(
        report.contains(&format!(
            "domains: 0 were created, 0 were changed, {DOMAINS} unchanged"
        )),
        "{report}"
    );
}

async fn bad_rows_are_named_by_line(backend: Backend) {
    let folder = tempfile::tempdir().unwrap();
    let (_db, config) = directory(backend, folder.path()).await;
    let path = folder.path().join("bad.csv");
    std::fs::write(
        &path,
        "domain,profile,alias_of\n\
         good.example,default,\n\
         bad..example,default,\n\
         other.example,gold,\n\
         alias.example,,nowhere.example\n\
         good.example,business,\n",
    )
    .unwrap();
    for args in [
        vec!["import", path.to_str().unwrap(), "--dry-run"],
        vec!["import", path.to_str().unwrap()],
    ] {
        let output = cli(&config, &args);
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let named: Vec<&str> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix(path.to_str().unwrap()))
            .collect();
        assert_eq!(named.len(), 4, "{stderr}");
        for (line, words) in [
            (":3:", "empty label"),
            (":4:", "profile gold does not exist"),
            (":5:", "nowhere.example is not hosted"),
            (":6:", "listed twice"),
        ] {
            assert!(
                named
                    .iter()
                    .any(|l| l.starts_with(line) && l.contains(words)),
                "{line} {words}: {stderr}"
            );
        }
        assert!(
            stderr.contains("4 problem(s); nothing was changed"),
            "{stderr}"
        );
    }
    let csv = ok(cli(&config, &["export", "--format", "csv"]));
    assert_eq!(csv, "domain,profile,alias_of,status\n");
}
