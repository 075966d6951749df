//! A load run: N accounts issuing one certificate after another for T
//! seconds, and what came of it.
//!
//! Accounts are registered before the clock starts; a flow that started
//! before the deadline is let finish and counted, and the rate is over the
//! time until the last one finished, so no work is counted without its time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certgate_testkit::http01::Http01Responder;

use crate::client::{Client, Failure};
use crate::process;

/// What a load run is pointed at.
pub struct Target<'a> {
    pub directory_url: &'a str,
    /// The root the server's TLS certificate chains to; `None` checks nothing.
    pub root_pem: Option<&'a [u8]>,
    /// Serves the HTTP-01 answers, on the port the server fetches them from.
    pub http01: Arc<Http01Responder>,
    /// The server's process, for its CPU time and memory.
    pub pid: Option<u32>,
}

/// What one run measured.
#[derive(Debug)]
pub struct Report {
    pub clients: usize,
    pub elapsed: Duration,
    /// Full-flow times of the issuances that succeeded, sorted.
    pub latencies: Vec<Duration>,
    pub failures: BTreeMap<Failure, usize>,
    /// The server's CPU time during the run, when its PID was given.
    pub server_cpu: Option<Duration>,
    /// The server's peak resident memory so far, when its PID was given.
    pub server_peak_rss: Option<u64>,
}

impl Report {
    pub fn issued(&self) -> usize {
        self.latencies.len()
    }

    pub fn failed(&self) -> usize {
        self.failures.values().sum()
    }

    pub fn per_second(&self) -> f64 {
        self.issued() as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p`-th percentile (0–100) of the flow times, nearest rank.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    /// Server CPU time per issuance, when both are known.
    pub fn cpu_per_issuance(&self) -> Option<Duration> {
        let cpu = self.server_cpu?;
        (self.issued() > 0).then(|| cpu / self.issued() as u32)
    }

    /// The report as the lines `certgate-bench load` prints.
    pub fn lines(&self) -> Vec<String> {
        let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
        let mut lines = vec![
            format!("clients: {}", self.clients),
            format!(
                "issued: {} in {:.2} s = {:.1} issuances/s",
                self.issued(),
                self.elapsed.as_secs_f64(),
                self.per_second()
            ),
            format!(
                "flow ms: p50 {} p90 {} p99 {} max {}",
                ms(self.percentile(50.0)),
                ms(self.percentile(90.0)),
                ms(self.percentile(99.0)),
                ms(self.percentile(100.0))
            ),
            format!("failures: {}", self.failed()),
        ];
        for (failure, count) in &self.failures {
            lines.push(format!("  {}: {count}", failure.0));
        }
        if let Some(cpu) = self.server_cpu {
            lines.push(format!(
                "server CPU: {:.2} s, {} ms per issuance",
                cpu.as_secs_f64(),
                self.cpu_per_issuance().map_or("-".into(), ms)
            ));
        }
        if let Some(peak) = self.server_peak_rss {
            lines.push(format!("server peak RSS: {:.1} MB", mib(peak)));
        }
        lines
    }
}

/// Bytes in MB (10^6, as `ps` and the issue count them).
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

/// Registers `clients` accounts, then lets each issue for `duration`.
pub async fn run(
    target: &Target<'_>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Report> {
    let mut registering = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (url, root) = (
            target.directory_url.to_owned(),
            target.root_pem.map(<[u8]>::to_vec),
        );
        registering.spawn(async move { Client::register(&url, root.as_deref()).await });
    }
    let mut accounts = Vec::with_capacity(clients);
    while let Some(registered) = registering.join_next().await {
        accounts.push(registered??);
    }

    // Names nobody ordered before, so no authorization is reused.
    let run_id: u32 = rand::random();
    let cpu_before = target.pid.map(process::cpu_time).transpose()?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut flows = tokio::task::JoinSet::new();
    for (index, mut client) in accounts.into_iter().enumerate() {
        let http01 = target.http01.clone();
        flows.spawn(async move {
            let mut latencies = Vec::new();
            let mut failures: BTreeMap<Failure, usize> = BTreeMap::new();
            let mut sequence = 0u64;
            while Instant::now() < deadline {
                sequence += 1;
                let name = format!("c{index}-{sequence}.r{run_id:08x}.bench.test");
                let flow_start = Instant::now();
                match client.issue(&name, &http01).await {
                    Ok(()) => latencies.push(flow_start.elapsed()),
                    Err(failure) => *failures.entry(failure).or_default() += 1,
                }
            }
            (latencies, failures)
        });
    }
    let mut latencies = Vec::new();
    let mut failures: BTreeMap<Failure, usize> = BTreeMap::new();
    while let Some(flow) = flows.join_next().await {
        let (flow_latencies, flow_failures) = flow?;
        latencies.extend(flow_latencies);
        for (failure, count) in flow_failures {
            *failures.entry(failure).or_default() += count;
        }
    }
    let elapsed = started.elapsed();
    let server_cpu = match (target.pid, cpu_before) {
        (Some(pid), Some(before)) => Some(process::cpu_time(pid)?.saturating_sub(before)),
        _ => None,
    };
    latencies.sort();
    Ok(Report {
        clients,
        elapsed,
        latencies,
        failures,
        server_cpu,
        server_peak_rss: target.pid.map(process::peak_rss).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(millis: &[u64]) -> Report {
        Report {
            clients: 1,
            elapsed: Duration::from_secs(2),
            latencies: millis.iter().map(|&m| Duration::from_millis(m)).collect(),
            failures: BTreeMap::new(),
            server_cpu: Some(Duration::from_millis(80)),
            server_peak_rss: None,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let r = report(&(1..=100).collect::<Vec<_>>());
        assert_eq!(r.percentile(50.0), Duration::from_millis(50));
        assert_eq!(r.percentile(99.0), Duration::from_millis(99));
        assert_eq!(r.percentile(100.0), Duration::from_millis(100));
        assert_eq!(report(&[7]).percentile(99.0), Duration::from_millis(7));
        assert_eq!(report(&[]).percentile(50.0), Duration::ZERO);
    }

    #[test]
    fn rate_and_cpu_are_per_issuance() {
        let r = report(&[10, 20, 30, 40]);
        assert_eq!(r.per_second(), 2.0);
        assert_eq!(r.cpu_per_issuance(), Some(Duration::from_millis(20)));
        assert_eq!(report(&[]).cpu_per_issuance(), None);
    }
}
