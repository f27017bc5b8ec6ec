//! The directory is live: a change made by another process is answered within 2 seconds.

use std::time::{Duration, Instant};

use autodisco_test_support::{Backend, outlook_request};

use crate::{element, post, seeded_server};

on_both_backends!(domain_added_with_the_cli_is_answered_within_two_seconds);

fn cli(server: &autodisco_test_support::TestServer, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_autodisco"))
        .arg("--config")
        .arg(&server.config_path)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run autodisco")
}

async fn domain_added_with_the_cli_is_answered_within_two_seconds(backend: Backend) {
    let server = seeded_server(backend).await;
    let (_, _, before) = post(&server, outlook_request("someone@new.example"), &[]).await;
    assert_eq!(element(&before, "ErrorCode"), Some("500"));

    let output = cli(
        &server,
        &["domain", "add", "New.Example.", "--profile", "business"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let added = Instant::now();
    let answered = loop {
        let (_, _, body) = post(&server, outlook_request("someone@new.example"), &[]).await;
        if element(&body, "Action") == Some("settings") {
            break added.elapsed();
        }
        assert!(
            added.elapsed() < Duration::from_secs(2),
            "not answered within 2 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(answered < Duration::from_secs(2));

    // Names are validated by the CLI with a clear error.
    let output = cli(&server, &["domain", "add", "foo..bar"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("empty label"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_is_refused_with_file_and_line() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("bad.toml");
    std::fs::write(
        &path,
        "hoster = \"hoster.example\"\n\n[https]\nlisten = [\"not-an-address\"]\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_autodisco"))
        .arg("--config")
        .arg(&path)
        .args(["domain", "list"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:4:", path.display())),
        "{stderr}"
    );
}
