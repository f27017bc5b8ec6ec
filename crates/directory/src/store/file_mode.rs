//! The SQLite file holds argon2 password hashes: only its owner may read it.
//!
//! SQLite creates a database with mode `0644` less the umask, readable by every local user. So
//! before the first connection the file is created empty with mode `0600` (SQLite takes an
//! empty file as a new database), and SQLite gives the `-wal` and `-shm` files it makes later
//! the database file's mode. A file (or `-wal`, `-shm`) that already exists with a looser mode
//! is tightened to `0600`, with a warning, since its hashes may have been read already.

use std::path::{Path, PathBuf};

use crate::error::DirectoryError;

/// The mode of the database file and its companions.
#[cfg(unix)]
pub(super) const MODE: u32 = 0o600;

/// The file a prepared `sqlite:` URL names; `None` for an in-memory database.
pub(super) fn sqlite_path(url: &str) -> Option<PathBuf> {
    // The same reading of the URL as sqlx's: scheme off, query off, percent-decoded.
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path.is_empty()
        || path == ":memory:"
        || query.split('&').any(|parameter| parameter == "mode=memory");
    if in_memory {
        return None;
    }
    Some(PathBuf::from(percent_decode(path)?))
}

fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Creates `path` empty with mode `0600` when `create` and it does not exist, and tightens it
/// and its `-wal` and `-shm` files to `0600` when they exist with a looser mode.
#[cfg(unix)]
pub(super) fn protect(path: &Path, create: bool) -> Result<(), DirectoryError> {
    use std::fs::OpenOptions;
    use std::io::ErrorKind;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let fail = |path: &Path, source| DirectoryError::FileMode {
        path: path.display().to_string(),
        source,
    };
    if create {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            // A missing folder and the like: SQLite reports it better when it tries itself.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(fail(path, e)),
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        let mode = match std::fs::metadata(file) {
            Ok(metadata) => metadata.permissions().mode() & 0o777,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(fail(file, e)),
        };
        if mode & !MODE != 0 {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(MODE))
                .map_err(|e| fail(file, e))?;
            tracing::warn!(
                file = %file.display(),
                was = format!("{mode:o}"),
                "the directory file holds password hashes but was readable by others; its mode is now 0600"
            );
        }
    }
    Ok(())
}

/// Elsewhere file modes are not Unix modes: nothing to do.
#[cfg(not(unix))]
pub(super) fn protect(_path: &Path, _create: bool) -> Result<(), DirectoryError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_like_sqlx_reads_them() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/a%20b/dir.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/a b/dir.db"))
        );
        assert_eq!(
            sqlite_path("sqlite://dir.db?mode=rwc"),
            Some(PathBuf::from("dir.db"))
        );
        assert_eq!(sqlite_path("sqlite:dir.db"), Some(PathBuf::from("dir.db")));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("sqlite://?mode=memory"), None);
        assert_eq!(sqlite_path("sqlite://x.db?mode=memory&cache=shared"), None);
        assert_eq!(sqlite_path("sqlite://bad%zz"), None);
    }
}
