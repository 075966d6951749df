//! What the kernel says about the server process: CPU time spent
//! (`/proc/PID/stat`, user + system) and memory (`/proc/PID/status`).

use std::time::Duration;

/// CPU time the process has used so far, user and system together.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields from the last ')'. utime and stime are fields 14 and 15.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat has no command name"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(index)
            .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat is short"))?
            .parse()?)
    };
    // Field 3 (state) is the first after the name: field N is index N - 3.
    let total = ticks(14 - 3)? + ticks(15 - 3)?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_micros(total * 1_000_000 / per_second))
}

/// A `/proc/PID/status` memory line (`VmRSS`, `VmHWM`), in bytes.
pub fn memory(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/status has no {field}"))?;
    let kib: u64 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("{field} {line:?}: {e}"))?;
    Ok(kib * 1024)
}

/// Resident memory now, in bytes.
pub fn rss(pid: u32) -> anyhow::Result<u64> {
    memory(pid, "VmRSS")
}

/// The most resident memory the process ever had, in bytes.
pub fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    memory(pid, "VmHWM")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        // Burn a little CPU so the counter is past zero.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(cpu_time(pid).unwrap() > Duration::ZERO);
        let (now, peak) = (rss(pid).unwrap(), peak_rss(pid).unwrap());
        assert!(now > 0 && peak >= now, "{now} {peak}");
    }
}
