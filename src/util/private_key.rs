//! Who may read a private key certgate loads: the embedded CA's
//! intermediate key and the EAB key-encryption key (`eab.key`).
//!
//! certgate makes these files itself with mode 0600, but an operator may
//! also hand them in, read-only: replicas mount one CA folder and one
//! `eab.key` from a Kubernetes Secret or a Nomad template. A Secret volume's
//! files are symlinks into a `..data/` folder, owned by root, and readable
//! by certgate's user only through the group the pod's `fsGroup` adds
//! (`defaultMode: 0440`). So the check follows symlinks to the file and
//! takes the rule PostgreSQL applies to its TLS key:
//!
//! - a file owned by the user certgate runs as may be open to that user
//!   only (0600, 0400);
//! - a file owned by root may also be read (not written) by its group
//!   (0640, 0440): root chose that group;
//! - nothing else: a file some other user owns (that user may change it),
//!   or one that any user on the machine may read or change, is refused.
//!
//! Certificates (`root.pem`, `intermediate.pem`) are public and not checked.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PrivateKeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is a private key, and {why} (mode {mode:04o}, owner uid {owner}): make it \
         mode 0600 owned by certgate's user, or 0640/0440 owned by root with a group \
         certgate is in (a Kubernetes Secret with defaultMode 0440 and fsGroup)"
    )]
    Exposed {
        path: PathBuf,
        why: &'static str,
        mode: u32,
        owner: u32,
    },
}

/// Refuses the private key at `path` (after symlinks) when someone other
/// than certgate's user and root may read or change it.
pub fn check(path: &Path) -> Result<(), PrivateKeyError> {
    let metadata = std::fs::metadata(path).map_err(|source| PrivateKeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mode = metadata.mode() & 0o7777;
    let owner = metadata.uid();
    match exposure(mode, owner, effective_uid()) {
        None => Ok(()),
        Some(why) => Err(PrivateKeyError::Exposed {
            path: path.to_owned(),
            why,
            mode,
            owner,
        }),
    }
}

/// Why a key file with `mode` owned by `owner` is open to others when
/// certgate runs as `uid`, or `None` when it is not.
fn exposure(mode: u32, owner: u32, uid: u32) -> Option<&'static str> {
    if mode & 0o007 != 0 {
        Some("every user on this machine may use it")
    } else if owner != uid && owner != 0 {
        Some("another user owns it")
    } else if owner == 0 && mode & 0o030 != 0 {
        Some("its group may change it")
    } else if owner != 0 && mode & 0o070 != 0 {
        Some("its group may use it")
    } else {
        None
    }
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const SERVICE: u32 = 65532;

    #[test]
    fn the_owner_alone_or_root_and_its_group_may_read_a_key() {
        // Made by certgate itself.
        assert_eq!(exposure(0o600, SERVICE, SERVICE), None);
        assert_eq!(exposure(0o400, SERVICE, SERVICE), None);
        // A Kubernetes Secret with defaultMode 0440 and fsGroup; a Nomad
        // template with perms "0440" and the task's gid.
        assert_eq!(exposure(0o440, 0, SERVICE), None);
        assert_eq!(exposure(0o640, 0, SERVICE), None);
        assert_eq!(exposure(0o600, 0, 0), None);
        // Kubernetes' default mode, 0644, lets every user of the pod read it.
        assert!(exposure(0o644, 0, SERVICE).is_some());
        assert!(exposure(0o444, 0, SERVICE).is_some());
        assert!(exposure(0o604, SERVICE, SERVICE).is_some());
        assert!(exposure(0o602, SERVICE, SERVICE).is_some());
        // Group access to a file of certgate's own user: the group is not
        // one root chose for it.
        assert!(exposure(0o640, SERVICE, SERVICE).is_some());
        assert!(exposure(0o660, 0, SERVICE).is_some());
        // Someone else's file, however strict.
        assert!(exposure(0o400, 1000, SERVICE).is_some());
    }

    #[test]
    fn the_file_behind_a_symlink_is_what_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "secret").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        check(&link).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = check(&link).unwrap_err().to_string();
        assert!(refused.contains("every user on this machine"), "{refused}");
        assert!(refused.contains("mode 0644"), "{refused}");
        assert!(matches!(
            check(&dir.path().join("missing")),
            Err(PrivateKeyError::Io { .. })
        ));
    }
}
