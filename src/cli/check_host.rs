//! The part of `check-config --offline` that asks this machine what `serve`
//! will meet at start: whether each listener's port is free, whether the
//! data directory is writable by the user running the check (in the
//! systemd unit's `ExecStartPre`, the service's user), and whether a
//! secret file is readable by others; and the findings every check reports.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::config::Config;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Ok(String),
    Problem(String),
    /// Not checked here: only the machine certgate runs on can tell.
    Skipped(String),
}

impl Finding {
    pub fn is_problem(&self) -> bool {
        matches!(self, Self::Problem(_))
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ok(line) => write!(f, "ok       {line}"),
            Self::Problem(line) => write!(f, "PROBLEM  {line}"),
            Self::Skipped(line) => write!(f, "skipped  {line}"),
        }
    }
}

/// Binds each listener for a moment: a port another process holds (or one
/// this user may not bind) fails `serve` at start.
pub fn listeners(config: &Config) -> Vec<Finding> {
    if crate::util::serve_lock::ServeLock::is_held(&config.data_dir) {
        return vec![Finding::Skipped(format!(
            "listeners: a certgate is serving data dir {}, so its ports are taken by it; not tried",
            config.data_dir.display()
        ))];
    }
    let listeners = [("listen", Some(config.listen))]
        .into_iter()
        .chain([
            ("metrics_listen", config.metrics_listen),
            ("admin_listen", config.admin.as_ref().map(|a| a.listen)),
        ])
        .filter_map(|(name, addr)| addr.map(|a| (name, a)));
    listeners.map(|(name, addr)| bind(name, addr)).collect()
}

fn bind(name: &str, addr: SocketAddr) -> Finding {
    match std::net::TcpListener::bind(addr) {
        Ok(_) => Finding::Ok(format!("{name} {addr}: the port is free")),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Finding::Problem(format!(
            "{name} {addr}: port {} is already in use by another process (a certgate already serving, or something else: `ss -ltnp 'sport = :{}'` names it)",
            addr.port(),
            addr.port()
        )),
        // Not a problem of the config: serve may run with a capability
        // this check lacks.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Finding::Skipped(format!(
            "{name} {addr}: this user may not bind port {} ({e}); serve needs root or CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE)",
            addr.port()
        )),
        Err(e) => Finding::Problem(format!("{name} {addr}: cannot bind: {e}")),
    }
}

/// The data directory, where it exists, takes a new file from this user.
pub fn data_dir_writable(dir: &Path) -> Finding {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if !dir.is_dir() {
        return Finding::Skipped(format!(
            "data_dir {}: not there yet; serve creates it",
            dir.display()
        ));
    }
    let probe = dir.join(format!(".check-config-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Finding::Ok(format!("data_dir {}: writable by uid {uid}", dir.display()))
        }
        Err(e) => Finding::Problem(format!(
            "data_dir {} is not writable by uid {uid}, the user running this check ({e}); serve must run as a user that can write it (chown it to the service user)",
            dir.display()
        )),
    }
}

/// A secret file others may read: world-readable is a problem, readable
/// by its group is said so.
pub fn secret_mode(setting: &str, path: &Path) -> Option<Finding> {
    let metadata = std::fs::metadata(path).ok()?;
    let mode = metadata.mode() & 0o777;
    if mode & 0o007 != 0 {
        Some(Finding::Problem(format!(
            "{setting} {}: readable by every user (mode {mode:o}); chmod 600 it",
            path.display()
        )))
    } else if mode & 0o070 != 0 {
        Some(Finding::Ok(format!(
            "{setting} {}: readable by its group, gid {} (mode {mode:o}): fine only if nothing but certgate is in it",
            path.display(),
            metadata.gid()
        )))
    } else {
        None
    }
}
