//! Runs the Vault stand-in on its own, for trying certgate by hand:
//!
//! ```text
//! cargo run --example vault-standin -- --listen 127.0.0.1:8200
//! ```
//!
//! Flags: `--listen ADDR` (default 127.0.0.1:8200), `--root-token TOKEN`
//! (default `root`), `--root-ca-out PATH` (default: a file in the temp dir).

use std::net::SocketAddr;
use std::path::PathBuf;

use certgate_testkit::vault::{Grant, Mount, Role, StandinConfig, VaultStandin};

struct Flags {
    listen: SocketAddr,
    root_token: String,
    root_ca_out: PathBuf,
}

fn parse_flags() -> Result<Flags, String> {
    let mut flags = Flags {
        listen: SocketAddr::from(([127, 0, 0, 1], 8200)),
        root_token: "root".to_owned(),
        root_ca_out: std::env::temp_dir().join("certgate-vault-standin-root-ca.pem"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => {
                flags.listen = value
                    .parse()
                    .map_err(|e| format!("--listen {value}: {e}"))?
            }
            "--root-token" => flags.root_token = value,
            "--root-ca-out" => flags.root_ca_out = PathBuf::from(value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(flags)
}

#[tokio::main]
async fn main() {
    let flags = match parse_flags() {
        Ok(flags) => flags,
        Err(message) => {
            eprintln!("vault-standin: {message}");
            eprintln!(
                "usage: vault-standin [--listen ADDR] [--root-token TOKEN] [--root-ca-out PATH]"
            );
            std::process::exit(2);
        }
    };
    let role = Role::new("lab-internal")
        .allowed_domains(["lab.example", "example.test"])
        .allow_subdomains(true)
        .key_type("any")
        .max_ttl(30 * 86400);
    let config = StandinConfig::new()
        .listen(flags.listen)
        .root_token(&flags.root_token)
        .mount(Mount::new("pki_int").role(role.clone()))
        .policy(
            "certgate",
            [
                "pki_int/sign/*",
                "pki_int/issuer/*",
                "pki_int/roles/*",
                "pki_int/revoke",
            ],
        )
        .approle(
            "approle",
            "certgate-role-id",
            "certgate-secret-id",
            Grant::new(["certgate"]),
        );
    let standin = VaultStandin::start(config).await;
    if let Err(e) = std::fs::write(&flags.root_ca_out, format!("{}\n", standin.root_ca_pem())) {
        eprintln!(
            "vault-standin: cannot write {}: {e}",
            flags.root_ca_out.display()
        );
        std::process::exit(1);
    }

    println!("Vault stand-in listening on {}", standin.addr());
    println!("  root token:  {}", standin.root_token());
    println!("  root CA:     {}", flags.root_ca_out.display());
    println!("  mount:       pki_int (intermediate signed by the root CA)");
    println!(
        "  role:        pki_int/roles/{} allowing subdomains of {}, any key type",
        role.name,
        role.allowed_domains.join(", ")
    );
    println!("  approle:     auth/approle/login role_id=certgate-role-id secret_id=certgate-secret-id (policy certgate)");
    println!(
        "  controls:    {}/_standin/faults, /_standin/record",
        standin.addr()
    );
    println!("Press Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
}
