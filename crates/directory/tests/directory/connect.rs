//! Connecting: creating, reopening, and the errors an admin sees for a wrong URL.

use autodisco_directory::{Actor, DirectoryError, Store};

use crate::support::{TestDb, d, postgres_admin_url, profile};

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url).await.unwrap();
    assert!(path.exists());
    store
        .put_profile(&Actor::Cli, "standard", &profile("h.example"))
        .await
        .unwrap();
    store
        .add_domain(&Actor::Cli, &d("a.example"), "standard")
        .await
        .unwrap();
    store.close().await;
    // The WAL file exists while a connection is open; the mode itself is stored in the file.
    let header = std::fs::read(&path).unwrap();
    assert_eq!(
        (header[18], header[19]),
        (2, 2),
        "WAL mode in the file header"
    );

    // Reopening runs the migrations again harmlessly and finds the data.
    let again = Store::connect(&url).await.unwrap();
    assert!(again.load_snapshot().await.unwrap().hosts(&d("a.example")));
}

/// The file holds password hashes: it and its `-wal` and `-shm` files are `0600` whatever the
/// umask, and a file left readable by an older version is tightened on the next start.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;

    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url).await.unwrap();
    store
        .put_profile(&Actor::Cli, "standard", &profile("h.example"))
        .await
        .unwrap();
    // The write went through the WAL, so all three files exist now.
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("secret.db{suffix}"));
        assert!(file.exists(), "{} missing", file.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    store.close().await;

    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("secret.db{suffix}"));
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let again = Store::connect(&url).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("secret.db{suffix}"));
        if file.exists() {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
    assert_eq!(mode(&path), 0o600);
    again.close().await;
}

#[tokio::test]
async fn sqlite_in_memory_keeps_its_data() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store
        .put_profile(&Actor::Cli, "standard", &profile("h.example"))
        .await
        .unwrap();
    store
        .add_domain(&Actor::Cli, &d("a.example"), "standard")
        .await
        .unwrap();
    assert!(store.load_snapshot().await.unwrap().hosts(&d("a.example")));
}

#[tokio::test]
async fn sqlite_file_that_cannot_be_opened_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/missing-dir/x.db", dir.path().display());
    let error = Store::connect(&url).await.unwrap_err();
    assert!(error.is_unreachable(), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("the directory database cannot be reached")
    );
}

#[tokio::test]
async fn postgres_missing_database_is_unreachable() {
    // Make sure the server itself is up, so this tests the missing database only.
    drop(TestDb::postgres().await);
    let admin = postgres_admin_url();
    let base = admin.rsplit_once('/').unwrap().0;
    let error = Store::connect(&format!("{base}/autodisco_no_such_database"))
        .await
        .unwrap_err();
    assert!(error.is_unreachable(), "{error:?}");
}

#[tokio::test]
async fn postgres_server_that_is_down_is_unreachable() {
    let error = Store::connect("postgres://root@127.0.0.1:1/test")
        .await
        .unwrap_err();
    assert!(error.is_unreachable(), "{error:?}");
}

#[tokio::test]
async fn unsupported_urls_are_refused_without_echoing_secrets() {
    let error = Store::connect("mysql://admin:hunter2@db.example/directory")
        .await
        .unwrap_err();
    assert!(matches!(error, DirectoryError::UnsupportedUrl { .. }));
    assert!(!error.to_string().contains("hunter2"), "{error}");
}
