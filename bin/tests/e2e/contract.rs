//! The admin API against its own OpenAPI description: schemathesis (PyPI) generates requests
//! from `/openapi.json` and checks every answer's status, headers, content type and body
//! against it, on the running server, on SQLite and PostgreSQL.
//!
//! schemathesis comes from `AUTODISCO_SCHEMATHESIS` (the `st` program; `./test` installs it
//! into `target/schemathesis-venv`). Without it the test fails and says how to provide it.

use std::time::Duration;

use autodisco_directory::{Actor, TokenScope};
use autodisco_test_support::Backend;

use crate::admin_api::ADMIN;
use crate::seeded_server_with;

on_both_backends!(schemathesis_finds_no_contract_violation);

async fn schemathesis_finds_no_contract_violation(backend: Backend) {
    let st = std::env::var("AUTODISCO_SCHEMATHESIS").unwrap_or_else(|_| {
        panic!(
            "AUTODISCO_SCHEMATHESIS is not set: run ./test, or python3 -m venv target/schemathesis-venv && \
             target/schemathesis-venv/bin/pip install schemathesis==4.32.5 and set it to \
             $PWD/target/schemathesis-venv/bin/st"
        )
    });
    let server = seeded_server_with(backend, ADMIN).await;
    // A name schemathesis will not stumble on, or its DELETE /v1/tokens/{name} would revoke the
    // token it tests with.
    let token = server
        .store
        .create_token(&Actor::Cli, "contract-test-9d41c7e2", TokenScope::Write)
        .await
        .unwrap();
    let url = format!("http://{}/openapi.json", server.server.admin_addrs[0]);
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/schemathesis.toml");
    // schemathesis keeps a cache in its working folder: a temporary one, not the repository.
    let scratch = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(st);
    command
        .current_dir(scratch.path())
        .args(["--config-file", config, "run", &url])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // One worker: CPython 3.11's parser is not thread-safe under hypothesis's lambda
        // introspection ("AST constructor recursion depth mismatch").
        .args(["--checks", "all", "--max-examples", "25", "--workers", "1"])
        .args(["--phases", "examples,coverage,fuzzing", "--seed", "1"])
        .env("SCHEMATHESIS_HOOKS", "");
    let output = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::task::spawn_blocking(move || command.output()),
    )
    .await
    .expect("schemathesis finished within 5 minutes")
    .unwrap()
    .expect("run schemathesis");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    server.stop().await;
}
