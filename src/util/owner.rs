//! Files a command run as root makes in a data directory that belongs to
//! certgate's service user: handed to that user, so the service can read
//! them (an `eab.key` left `root:root 0600` fails every EAB registration).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// When this process is root and `data_dir` belongs to another user, gives
/// each of `files` that exists and belongs to root to the data directory's
/// owner and group. Elsewhere it does nothing.
pub fn give_to_data_dir_owner(data_dir: &Path, files: &[&Path]) -> std::io::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let dir = std::fs::metadata(data_dir)?;
    if dir.uid() == 0 {
        return Ok(());
    }
    for file in files {
        match std::fs::metadata(file) {
            Ok(metadata) if metadata.uid() == 0 => {
                std::os::unix::fs::chown(file, Some(dir.uid()), Some(dir.gid()))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
