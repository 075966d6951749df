//! The embedded CA's folder (`ca_dir`): which file holds what, making a new
//! CA so that it appears whole or not at all, and reading one back from a
//! folder certgate may not write.
//!
//! Several replicas may start at once on an empty folder they share. Each
//! writes its own CA into a staging folder beside it and renames that into
//! place; `rename(2)` puts a folder only where there is none or an empty
//! one, so exactly one rename wins. The others get `ENOTEMPTY` (or
//! `EEXIST`), remove their staging folder and load the winner's CA: every
//! replica ends up signing with one CA. A staging folder a crash left
//! behind (`.ca.new-…`) is never read; it may be removed.
//!
//! Loading reads `root.pem`, `intermediate.pem` and `intermediate.key` and
//! writes nothing, so the folder may be read-only: a Kubernetes Secret or
//! a Nomad template. `root.key` is only written, never read: it may be kept
//! away from the replicas. The intermediate key must pass
//! [`crate::util::private_key::check`].

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;

use super::CaError;

/// A CA's files, as PEM.
pub(super) struct CaPem {
    pub root: String,
    pub root_key: String,
    pub intermediate: String,
    pub intermediate_key: String,
}

/// What is read back: the root's key is left where it is.
pub(super) struct LoadedPem {
    pub root: String,
    pub intermediate: String,
    pub intermediate_key: String,
}

/// Where each file of the CA in `dir` is.
pub struct CaFiles {
    pub root_pem: PathBuf,
    pub root_key: PathBuf,
    pub intermediate_pem: PathBuf,
    pub intermediate_key: PathBuf,
}

impl CaFiles {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            root_pem: dir.join("root.pem"),
            root_key: dir.join("root.key"),
            intermediate_pem: dir.join("intermediate.pem"),
            intermediate_key: dir.join("intermediate.key"),
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether `dir` holds a CA yet. An empty folder (a volume mounted for
/// the CA, a folder made ahead) holds none and is filled at start.
pub(super) fn holds_a_ca(dir: &Path) -> Result<bool, CaError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(dir)(e)),
    }
}

/// Writes a file readable by its owner only when `secret`, and syncs it.
fn write(path: &Path, contents: &str, secret: bool) -> Result<(), CaError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(path))
}

/// Syncs a folder, so that the names it holds survive a crash.
fn sync_dir(dir: &Path) -> Result<(), CaError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// A fresh staging folder beside `dir`: hidden, and named for this
/// process and a random number, so that racing processes and threads
/// never share one.
fn staging_dir(dir: &Path) -> Result<PathBuf, CaError> {
    let name = dir
        .file_name()
        .ok_or_else(|| CaError::Invalid {
            dir: dir.to_owned(),
            detail: "ca_dir must name a folder".into(),
        })?
        .to_string_lossy();
    let staging = dir.with_file_name(format!(
        ".{name}.new-{}-{:016x}",
        std::process::id(),
        rand::thread_rng().next_u64()
    ));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&staging)
        .map_err(io_error(&staging))?;
    Ok(staging)
}

/// Puts `pem` in place as the CA of `dir`. True when it is now the CA;
/// false when another process (or thread) put its own there first, which
/// is then the one to load.
pub(super) fn install(dir: &Path, pem: &CaPem) -> Result<bool, CaError> {
    let staging = staging_dir(dir)?;
    let written = (|| {
        let files = CaFiles::in_dir(&staging);
        write(&files.root_key, &pem.root_key, true)?;
        write(&files.intermediate_key, &pem.intermediate_key, true)?;
        write(&files.root_pem, &pem.root, false)?;
        write(&files.intermediate_pem, &pem.intermediate, false)?;
        sync_dir(&staging)
    })();
    let renamed = written.and_then(|()| fs::rename(&staging, dir).map_err(io_error(dir)));
    match renamed {
        Ok(()) => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
            Ok(true)
        }
        Err(CaError::Io { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::DirectoryNotEmpty | std::io::ErrorKind::AlreadyExists
            ) =>
        {
            let _ = fs::remove_dir_all(&staging);
            Ok(false)
        }
        Err(error) => {
            let _ = fs::remove_dir_all(&staging);
            Err(error)
        }
    }
}

/// Reads the files a running CA needs, refusing an intermediate key that
/// others may read.
pub(super) fn load(dir: &Path) -> Result<LoadedPem, CaError> {
    let files = CaFiles::in_dir(dir);
    let read = |path: &Path| fs::read_to_string(path).map_err(io_error(path));
    let intermediate_key = read(&files.intermediate_key)?;
    crate::util::private_key::check(&files.intermediate_key)?;
    Ok(LoadedPem {
        root: read(&files.root_pem)?,
        intermediate: read(&files.intermediate_pem)?,
        intermediate_key,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Barrier};

    use super::super::EmbeddedCa;
    use super::*;

    /// Replicas starting together on a shared folder that is missing, or
    /// there and empty: each loads the same CA, and no staging folder is
    /// left behind.
    #[test]
    fn racing_starts_on_a_missing_or_empty_folder_end_with_one_ca() {
        const RACERS: usize = 8;
        for empty_folder_first in [false, true] {
            let shared = tempfile::tempdir().unwrap();
            let dir = shared.path().join("ca");
            if empty_folder_first {
                fs::create_dir(&dir).unwrap();
            }
            let barrier = Arc::new(Barrier::new(RACERS));
            let racers: Vec<_> = (0..RACERS)
                .map(|_| {
                    let (dir, barrier) = (dir.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        let made = EmbeddedCa::create_unless_present(&dir).unwrap();
                        (made, EmbeddedCa::load(&dir).unwrap().root_sha256())
                    })
                })
                .collect();
            let outcomes: Vec<(bool, [u8; 32])> =
                racers.into_iter().map(|r| r.join().unwrap()).collect();
            let made = outcomes.iter().filter(|(made, _)| *made).count();
            assert_eq!(made, 1, "empty folder first: {empty_folder_first}");
            assert!(outcomes.iter().all(|(_, root)| *root == outcomes[0].1));
            let left: Vec<_> = fs::read_dir(shared.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            assert_eq!(left, ["ca"], "empty folder first: {empty_folder_first}");
        }
    }

    /// The shape of a Kubernetes Secret volume: a read-only folder whose
    /// files are symlinks into `..data/`, the key readable by the group
    /// when root owns it. A key everyone may read is refused.
    #[test]
    fn loads_from_a_read_only_folder_of_symlinks_and_refuses_an_exposed_key() {
        let tmp = tempfile::tempdir().unwrap();
        let made = tmp.path().join("made");
        let expected = EmbeddedCa::load_or_create(&made).unwrap().root_sha256();
        let secret = tmp.path().join("secret");
        let version = secret.join("..2025_01_01_00_00_00.000000001");
        fs::create_dir_all(&version).unwrap();
        // A root-owned key may be open to its group; any other owner's may not.
        let made_by_root =
            std::os::unix::fs::MetadataExt::uid(&fs::metadata(made.join("root.key")).unwrap()) == 0;
        let key_mode = if made_by_root { 0o440 } else { 0o400 };
        for name in ["root.pem", "intermediate.pem", "intermediate.key"] {
            let copy = version.join(name);
            fs::copy(made.join(name), &copy).unwrap();
            let mode = if name.ends_with(".key") {
                key_mode
            } else {
                0o444
            };
            fs::set_permissions(&copy, fs::Permissions::from_mode(mode)).unwrap();
            std::os::unix::fs::symlink(format!("..data/{name}"), secret.join(name)).unwrap();
        }
        std::os::unix::fs::symlink(version.file_name().unwrap(), secret.join("..data")).unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o555)).unwrap();

        assert_eq!(EmbeddedCa::load(&secret).unwrap().root_sha256(), expected);
        // Not "missing or empty": nothing is generated over it.
        assert!(!EmbeddedCa::create_unless_present(&secret).unwrap());

        let key = version.join("intermediate.key");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o444)).unwrap();
        let refused = EmbeddedCa::load(&secret).unwrap_err().to_string();
        assert!(
            refused.contains("intermediate.key is a private key"),
            "{refused}"
        );
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o755)).unwrap();
    }
}
