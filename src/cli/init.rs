//! `certgate init`: a first configuration and data directory, so a new
//! install starts from a short file that serves as written (the embedded CA,
//! or with `--vault` the Vault variant) instead of `config example`'s
//! every-setting reference, and the data dir belongs to the user the
//! service runs as from the start.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;

const EMBEDDED: &str = include_str!("init/embedded.toml");
const VAULT: &str = include_str!("init/vault.toml");

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the config file.
    #[arg(long, value_name = "PATH", default_value = "certgate.toml")]
    pub config: PathBuf,
    /// The data directory the config names; made now (mode 0700).
    #[arg(long, value_name = "DIR", default_value = "certgate-data")]
    pub data_dir: PathBuf,
    /// The HTTPS listener the config names.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    pub listen: String,
    /// A name clients reach certgate by (repeat for more); its HTTPS
    /// certificate covers it.
    #[arg(long, value_name = "NAME")]
    pub tls_name: Vec<String>,
    /// Write the Vault variant: a profile signed at pki_int/sign/acme and
    /// AppRole credentials read from files beside the config.
    #[arg(long)]
    pub vault: bool,
    /// The user `certgate serve` runs as: the data directory and the config
    /// are given to it (run as root).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Replace a config file that exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let owner = args.user.as_deref().map(user_ids).transpose()?;
    let config = absolute(&args.config)?;
    let data_dir = absolute(&args.data_dir)?;
    if config.exists() && !args.force {
        bail!(
            "{} exists; give another --config, or --force to replace it",
            config.display()
        );
    }
    let text = render(&args, &config, &data_dir);
    crate::util::data_dir::create(&data_dir)
        .with_context(|| format!("making the data directory {}", data_dir.display()))?;
    write_config(&config, &text, args.force)?;
    if let Some((uid, gid)) = owner {
        for path in [data_dir.as_path(), config.as_path()] {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).with_context(|| {
                format!(
                    "giving {} to {} (run certgate init as root)",
                    path.display(),
                    args.user.as_deref().unwrap_or_default()
                )
            })?;
        }
    }
    let config = config.display();
    println!("wrote {config}");
    println!("made {}", data_dir.display());
    if args.vault {
        let secrets = secrets_dir(&args.config);
        println!(
            "next: put the AppRole role_id and secret_id from deploy/vault/setup.sh in {0}/role-id and {0}/secret-id (mode 0600), set [vault] address",
            secrets.display()
        );
    }
    println!("check: certgate check-config --offline --config {config}");
    println!("serve: certgate serve --config {config}");
    Ok(ExitCode::SUCCESS)
}

/// The template with this install's values in place.
fn render(args: &InitArgs, config: &Path, data_dir: &Path) -> String {
    let template = if args.vault { VAULT } else { EMBEDDED };
    let names: Vec<String> = args.tls_name.iter().map(|name| toml_string(name)).collect();
    template
        .replace("@CONFIG@", &config.display().to_string())
        .replace("@DATA_DIR@", &toml_inner(&data_dir.display().to_string()))
        .replace("@LISTEN@", &toml_inner(&args.listen))
        .replace("@TLS_NAMES@", &names.join(", "))
        .replace(
            "@SECRETS_DIR@",
            &toml_inner(&secrets_dir(config).display().to_string()),
        )
}

/// Where the Vault variant expects its credential files: beside the config.
fn secrets_dir(config: &Path) -> PathBuf {
    match config.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `value` as a TOML basic string, quotes included.
fn toml_string(value: &str) -> String {
    format!("\"{}\"", toml_inner(value))
}

/// `value` escaped for the inside of a TOML basic string.
fn toml_inner(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A path as the config must name it: serve may run from another folder.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// Writes the config readable by its owner and group only (it may name
/// secret files, and later hold settings an operator adds).
fn write_config(path: &Path, text: &str, replace: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o640);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// The uid and gid of the user named `name`.
fn user_ids(name: &str) -> anyhow::Result<(u32, u32)> {
    let c_name = CString::new(name).context("a user name has no NUL byte")?;
    // SAFETY: getpwnam reads the NUL-terminated name and returns NULL or a
    // pointer to a static record, read at once before any other call to it.
    let entry = unsafe { libc::getpwnam(c_name.as_ptr()) };
    if entry.is_null() {
        bail!("there is no user {name:?} (make it first, e.g. useradd --system {name})");
    }
    // SAFETY: non-null, so it points to a valid passwd record.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        init: InitArgs,
    }

    fn rendered(flags: &[&str]) -> String {
        let cli = Cli::parse_from(std::iter::once("init").chain(flags.iter().copied()));
        render(
            &cli.init,
            Path::new("/etc/certgate/certgate.toml"),
            Path::new("/var/lib/certgate"),
        )
    }

    #[test]
    fn both_templates_fill_every_placeholder_and_parse_as_toml() {
        for flags in [&["--tls-name", "acme.lab.example"][..], &["--vault"][..]] {
            let text = rendered(flags);
            assert!(!text.contains('@'), "{text}");
            let value: toml::Value = toml::from_str(&text).unwrap();
            assert_eq!(value["data_dir"].as_str(), Some("/var/lib/certgate"));
            assert!(value["profiles"]["default"]["issuer"].is_str());
        }
        let vault: toml::Value = toml::from_str(&rendered(&["--vault"])).unwrap();
        assert_eq!(
            vault["vault"]["auth"]["secret_id_file"].as_str(),
            Some("/etc/certgate/secret-id")
        );
    }

    #[test]
    fn a_name_with_a_quote_stays_one_toml_string() {
        let text = rendered(&["--tls-name", "a\"b", "--tls-name", "c"]);
        let value: toml::Value = toml::from_str(&text).unwrap();
        let names: Vec<&str> = value["tls_name"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(names, ["a\"b", "c"]);
    }
}
