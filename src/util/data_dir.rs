//! The data directory: made on first use, readable by certgate's user only,
//! since it holds the CA's keys and the database.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// Creates `path` (and its parents) with mode 0700 unless it exists.
pub fn create(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}
