//! The data directory and the database file: made on first use, readable by
//! certgate's user only, since they hold the CA's keys and the accounts.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Creates `path` (and its parents) with mode 0700 unless it exists.
/// A file in its place is named as such: the OS's own "File exists" does
/// not tell an operator that `--data-dir` points at a file.
pub fn create(path: &Path) -> std::io::Result<()> {
    if path.exists() && !path.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "exists and is not a directory; give --data-dir a directory (certgate makes it when missing)",
        ));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Creates the empty file `path` with mode 0600 unless it exists, whatever
/// the umask. For the database: SQLite gives the `-wal`, `-shm` and
/// `-journal` files it creates beside it the database file's own mode, so
/// making this one private first keeps them all private, even in a data
/// directory an operator made 0755.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_file_where_the_data_dir_should_be_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certgate-data");
        std::fs::write(&path, "").unwrap();
        let error = create(&path).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotADirectory);
        assert!(error.to_string().contains("is not a directory"), "{error}");
        create(&dir.path().join("a/b")).unwrap();
        assert!(dir.path().join("a/b").is_dir());
    }

    #[test]
    fn a_private_file_is_0600_and_an_existing_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certgate.db");
        create_private_file(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        std::fs::write(&path, b"data").unwrap();
        create_private_file(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }
}
