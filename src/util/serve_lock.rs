//! One `certgate serve` per data directory.
//!
//! Two servers on one SQLite data directory each believe they own the orders
//! left `processing`: the second resumes (and, for a Vault profile, fails)
//! signings the first is still waiting on, so certificates the CA signed are
//! never recorded, and with the embedded CA an order can be signed twice.
//! `serve` therefore holds an exclusive lock on `<data-dir>/serve.lock` for
//! as long as it runs, and a second `serve` is refused before it reads or
//! writes anything else there.
//!
//! The lock is `flock(2)` (through [`std::fs::File::try_lock`]): the kernel
//! drops it when the process ends, however it ends, so a SIGKILL or a crash
//! never leaves a stale lock behind and there is no file to clean up. The
//! file holds the holder's PID, only so that a refusal can say who holds it;
//! the file's existence means nothing. The offline commands (`certs`,
//! `accounts`, `eab`, `check-config`) do not take the lock: SQLite in WAL
//! mode lets them read and write beside a running server.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "serve.lock";

/// How long a refused start waits for the holder to write its PID: the
/// holder locks the file first and writes the PID right after, so a refusal
/// that reads in between sees an empty file.
const PID_WAIT: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum ServeLockError {
    #[error(
        "another certgate ({holder}) is serving data dir {data_dir}; stop it first, or give this \
         one its own --data-dir (one server per SQLite data dir)"
    )]
    Held { data_dir: PathBuf, holder: Holder },
    #[error("locking {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Who holds the lock, as far as the file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// `None` when the file held no PID (the holder had not written it yet,
    /// or the file was edited by hand).
    pub pid: Option<u32>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid {pid}"),
            None => f.write_str("pid unknown"),
        }
    }
}

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct ServeLock {
    /// Kept open only to keep the lock: `flock` belongs to this open file.
    _file: File,
    path: PathBuf,
}

impl ServeLock {
    /// Takes the lock of `data_dir` (which must exist) without waiting, and
    /// writes this process's PID into it. Refused with
    /// [`ServeLockError::Held`] when another process holds it.
    pub fn acquire(data_dir: &Path) -> Result<Self, ServeLockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| ServeLockError::Io {
            path: path.clone(),
            source,
        };
        // No truncate on open: until the lock is ours, the PID in the file
        // is the holder's and the refusal needs it.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = Holder {
                    pid: read_pid(&mut file),
                };
                return Err(ServeLockError::Held {
                    data_dir: data_dir.to_owned(),
                    holder,
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        // The PID only names the holder in a refusal; the lock is what
        // counts. A full disk must not stop a start that can still serve
        // reads and answer 503 for writes, so failing to write it is a warning.
        if let Err(error) = write_pid(&mut file) {
            tracing::warn!(path = %path.display(), %error, "could not write the PID into the lock file; a refused second serve will not be able to name this one");
        }
        tracing::debug!(path = %path.display(), "holding the data dir lock");
        Ok(Self { _file: file, path })
    }

    /// Whether a running serve holds the lock of `data_dir`; makes no file.
    pub fn is_held(data_dir: &Path) -> bool {
        match File::open(data_dir.join(LOCK_FILE)) {
            Ok(file) => matches!(file.try_lock(), Err(TryLockError::WouldBlock)),
            Err(_) => false,
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())
}

/// The PID the holder wrote, waiting briefly for it to appear.
fn read_pid(file: &mut File) -> Option<u32> {
    let deadline = std::time::Instant::now() + PID_WAIT;
    loop {
        let mut text = String::new();
        let read = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut text));
        if let Ok(pid) = text.trim().parse() {
            return Some(pid);
        }
        if read.is_err() || std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = ServeLock::acquire(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(first.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
        // flock belongs to the open file, so a second open in this same
        // process is refused just as another process would be.
        match ServeLock::acquire(dir.path()) {
            Err(ServeLockError::Held { data_dir, holder }) => {
                assert_eq!(data_dir, dir.path());
                assert_eq!(holder.pid, Some(std::process::id()));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // The refusal did not wipe the holder's PID.
        assert_eq!(
            std::fs::read_to_string(first.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(first);
        ServeLock::acquire(dir.path()).expect("free again once dropped");
    }

    #[test]
    fn a_stale_pid_in_the_file_does_not_hold_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "999999999\n").unwrap();
        let lock = ServeLock::acquire(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(lock.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
    }
}
