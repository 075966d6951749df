//! The load client of docs/performance.md still drives certgate: a short
//! `certgate-bench run` against the built binary issues certificates with
//! no failure, with the embedded CA and at a Vault, and prints every figure
//! the page quotes. No figure is held to a value: timings belong to the
//! benchmark, not to the tests.

use std::time::Duration;

use certgate_testkit::process::certgate_binary;

#[tokio::test(flavor = "multi_thread")]
async fn a_short_bench_run_issues_without_failures_and_prints_its_figures() {
    let bench = certgate_binary().with_file_name("certgate-bench");
    assert!(
        bench.exists(),
        "{} is missing: cargo build builds it (bench/ is a default workspace member)",
        bench.display()
    );
    let run = tokio::process::Command::new(&bench)
        .args([
            "run",
            "--clients",
            "2",
            "--duration",
            "2s",
            "--seed",
            "20",
            "--vault",
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("certgate-bench run ends on its own")
        .expect("running certgate-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");

    for figure in ["seeded 20 certificates", "RSS", "/metrics median", "peak"] {
        assert!(stdout.contains(figure), "no {figure:?} in:\n{stdout}");
    }
    for server in ["certgate", "certgate+vault"] {
        // | server | 2 | rate | p50 / p90 / p99 | CPU | peak RSS | failures |
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {server} | 2 |")))
            .unwrap_or_else(|| panic!("no row of {server} for 2 clients:\n{stdout}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let rate: f64 = cells[3].parse().unwrap_or_else(|_| panic!("{row}"));
        assert!(rate > 0.0, "nothing issued: {row}");
        let cpu: f64 = cells[5].parse().unwrap_or_else(|_| panic!("{row}"));
        assert!(cpu > 0.0, "no server CPU measured: {row}");
        assert_eq!(cells[7], "0", "failures: {row}");
    }
    // The Vault row's certificates were signed at the stand-in.
    let signed: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Vault stand-in: "))
        .and_then(|rest| rest.strip_suffix(" signed"))
        .and_then(|rest| rest.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of Vault signings in:\n{stdout}"));
    assert!(signed > 0, "{stdout}");
}
