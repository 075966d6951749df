//! `certgate check-config`, the built binary against the Vault stand-in: a
//! good configuration is all "ok" and exits 0; each problem an operator can
//! make is one line naming it, and the exit status is 1.

use std::path::Path;
use std::process::Output;

use certgate_testkit::vault::{Mount, Role, StandinConfig, VaultStandin, SECRET_ID};

async fn standin() -> VaultStandin {
    VaultStandin::start(
        StandinConfig::new()
            .mount(Mount::new("pki_int").role(Role::new("lab-internal").key_type("any")))
            .mount(
                Mount::new("pki_empty")
                    .without_ca()
                    .role(Role::new("lab-internal")),
            )
            .policy(
                "certgate",
                ["pki_int/roles/*", "pki_empty/roles/*", "pki_empty/cert/*"],
            )
            .certgate_approle(SECRET_ID),
    )
    .await
}

/// Runs check-config with a config file holding `[vault]` for `standin`
/// (AppRole, secret id `secret_id`) and then `profiles`.
async fn check_config(
    dir: &Path,
    standin: &VaultStandin,
    secret_id: &str,
    profiles: &str,
) -> Output {
    let config = dir.join("certgate.toml");
    std::fs::write(
        &config,
        format!(
            "default_profile = \"lab\"\n{}{profiles}",
            standin.approle_config(dir, secret_id)
        ),
    )
    .unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .env_remove("CERTGATE_VAULT_SECRET_ID")
        .output()
        .await
        .unwrap()
}

fn problems(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with("PROBLEM"))
        .map(str::to_owned)
        .collect()
}

const LAB: &str =
    "[profiles.lab]\nissuer = \"vault\"\nmount = \"pki_int\"\nrole = \"lab-internal\"\n";

#[tokio::test]
async fn a_working_configuration_is_all_ok() {
    let standin = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let output = check_config(dir.path(), &standin, SECRET_ID, LAB).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(problems(&output).is_empty(), "{stdout}");
    assert!(stdout.contains("logged in with approle"), "{stdout}");
    assert!(stdout.contains("pki_int/roles/lab-internal"), "{stdout}");
    assert!(stdout.contains("CA chain of 2 certificate(s)"), "{stdout}");
}

#[tokio::test]
async fn each_problem_is_one_line_and_a_failure_status() {
    let standin = standin().await;
    let dir = tempfile::tempdir().unwrap();

    let output = check_config(dir.path(), &standin, "wrong-secret", LAB).await;
    assert_eq!(output.status.code(), Some(1));
    let lines = problems(&output);
    assert!(lines[0].contains("cannot log in with approle"), "{lines:?}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("wrong-secret"),
        "the secret id is never printed"
    );

    let missing_role = LAB.replace("lab-internal", "no-such-role");
    let output = check_config(dir.path(), &standin, SECRET_ID, &missing_role).await;
    assert_eq!(output.status.code(), Some(1));
    let lines = problems(&output);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("pki_int/roles/no-such-role does not exist")),
        "{lines:?}"
    );

    let no_ca = LAB.replace("pki_int", "pki_empty");
    let output = check_config(dir.path(), &standin, SECRET_ID, &no_ca).await;
    let lines = problems(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("pki_empty"), "{lines:?}");

    let output = check_config(
        dir.path(),
        &standin,
        SECRET_ID,
        "[profiles.lab]\nissuer = \"vault\"\n",
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        problems(&output)[0].contains("needs mount"),
        "{:?}",
        problems(&output)
    );
}
