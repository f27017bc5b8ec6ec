//! Helpers the protocol crate's integration tests share: golden files and profile pieces.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::Path;

use autodisco_proto::profile::{Authentication, MailServer, Security};

/// Compares `actual` with the golden file at `path` byte for byte, or writes it when
/// `UPDATE_GOLDEN` is set (review the diff afterwards).
pub(crate) fn check_golden_file(path: &Path, actual: &[u8]) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden files live in a folder")).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "{} differs from its golden file; if intended, rerun with UPDATE_GOLDEN=1\n--- actual\n{}",
        path.display(),
        String::from_utf8_lossy(actual)
    );
}

/// A mail server with a password login as the full address.
pub(crate) fn mail_server(host: &str, port: u16, security: Security) -> MailServer {
    MailServer {
        host: host.to_owned(),
        port,
        security,
        authentication: Authentication::PasswordCleartext,
        username: "%EMAILADDRESS%".to_owned(),
    }
}
