//! The open-file limit (`RLIMIT_NOFILE`): every connection, outbound
//! validation and database file is a descriptor, and a process that runs
//! out refuses every client with `Too many open files`. Raised at start as
//! Go's runtime does, because the common soft limit of 1,024 is a default
//! from the days of `select(2)`, not a policy.

/// The limit before and after [`raise_toward_hard_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit the process started with.
    pub was: u64,
    /// The soft limit now in force.
    pub soft: u64,
    /// The ceiling an unprivileged process may raise the soft limit to.
    pub hard: u64,
}

fn get() -> std::io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(limit)
}

fn set_soft(limit: libc::rlimit, soft: libc::rlim_t) -> bool {
    let wanted = libc::rlimit {
        rlim_cur: soft,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the struct it is given and nothing else.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 }
}

/// Raises the soft limit to the hard one; where the kernel refuses that
/// (a hard limit of "unlimited" above `fs.nr_open`), to `needed` at least.
/// Never lowers it.
pub fn raise_toward_hard_limit(needed: u64) -> std::io::Result<OpenFileLimit> {
    let limit = get()?;
    let was = limit.rlim_cur as u64;
    if limit.rlim_cur < limit.rlim_max && !set_soft(limit, limit.rlim_max) {
        let fallback = (needed as libc::rlim_t).min(limit.rlim_max);
        if fallback > limit.rlim_cur {
            set_soft(limit, fallback);
        }
    }
    let now = get()?;
    Ok(OpenFileLimit {
        was,
        soft: now.rlim_cur as u64,
        hard: now.rlim_max as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_never_lowers_and_stays_within_the_hard_limit() {
        let before = get().unwrap();
        let limit = raise_toward_hard_limit(64).unwrap();
        assert_eq!(limit.was, before.rlim_cur as u64);
        assert!(limit.soft >= limit.was);
        assert!(limit.soft <= limit.hard);
    }
}
