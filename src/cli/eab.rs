//! `certgate eab create | list | revoke`: external account keys, made and
//! managed while the server runs.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::audit::{Actor, AuditEvent, AuditLog};
use crate::cli::offline::{OfflineContext, StoreFlags};
use crate::cli::output::print_json;
use crate::config::{parse_duration, Config, EabPolicy};
use crate::domain::accounts::{deactivate_account, Deactivation};
use crate::domain::eab::{create_key, Keyring, NamesLimit};
use crate::protocol::paths;
use crate::store::eab::{EabKeyRecord, RevokeOutcome};
use crate::store::Store;
use crate::util::clock::rfc3339;
use crate::util::clock::{Clock, SystemClock};

#[derive(Debug, Args)]
pub struct EabArgs {
    #[command(flatten)]
    pub store: StoreFlags,
    #[command(subcommand)]
    pub command: EabCommand,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The profile whose directory accepts the key.
    #[arg(long, value_name = "NAME")]
    pub profile: String,
    /// Names the bound account may order, comma-separated. A name
    /// allows exactly itself; a pattern with '*' is a glob as in a
    /// Vault role ('*' also spans dots): '*.nas.lab.example' allows
    /// the wildcard and every name below nas.lab.example.
    #[arg(long, value_name = "PATTERNS")]
    pub names: Option<String>,
    /// How long the key can bind an account, e.g. 30d, 12h [default: no limit].
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub expires: Option<String>,
    /// Free text shown by `eab list`, e.g. whose device the key is for.
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub note: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum EabCommand {
    /// Make a key for a profile and print its kid and HMAC key, once.
    /// Works while the server runs.
    Create(CreateArgs),
    /// List keys (never the HMAC keys).
    List {
        /// One JSON array instead of one line per key, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: it can no longer bind an account, and an account
    /// it is bound to can no longer order certificates, answer a
    /// challenge or finalize an order.
    Revoke {
        /// A kid may start with `-` (base64url): it is taken as the kid.
        #[arg(value_name = "KID", allow_hyphen_values = true)]
        kid: String,
        /// Also deactivate the account the key is bound to: its pending
        /// orders become invalid, and it can do nothing more (RFC 8555
        /// §7.3.6), not even read its orders or revoke its certificates.
        #[arg(long)]
        deactivate_account: bool,
    },
}

pub async fn run(args: EabArgs) -> anyhow::Result<ExitCode> {
    let context = match args.command {
        EabCommand::Create(_) => OfflineContext::open_or_create(args.store).await?,
        _ => OfflineContext::open(args.store).await?,
    };
    let outcome = run_in(&context, args.command).await;
    context.store.close().await;
    context.hand_files_to_data_dir_owner()?;
    outcome
}

async fn run_in(context: &OfflineContext, command: EabCommand) -> anyhow::Result<ExitCode> {
    let OfflineContext {
        config,
        store,
        keyring,
        audit,
    } = context;
    let now = SystemClock.now();
    match command {
        EabCommand::Create(create_args) => {
            create(config, store, keyring, audit, create_args, now).await
        }
        EabCommand::List { json } => list(store, now, json).await,
        EabCommand::Revoke {
            kid,
            deactivate_account,
        } => {
            let revoked = revoke(store, audit, &kid, now).await;
            match revoked {
                Ok(code) if code == ExitCode::SUCCESS && deactivate_account => {
                    deactivate_bound_account(store, audit, &kid, now).await
                }
                other => other,
            }
        }
    }
}

async fn create(
    config: &Config,
    store: &Store,
    keyring: &Keyring,
    audit: &AuditLog,
    args: CreateArgs,
    now: i64,
) -> anyhow::Result<ExitCode> {
    let CreateArgs {
        profile,
        names,
        expires,
        note,
    } = args;
    let Some(settings) = config.profiles.iter().find(|p| p.name == profile) else {
        let known: Vec<&str> = config.profiles.iter().map(|p| p.name.as_str()).collect();
        anyhow::bail!(
            "there is no profile {profile:?}; the configured ones are {}",
            known.join(", ")
        );
    };
    let names = names
        .as_deref()
        .map(NamesLimit::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--names: {e}"))?;
    let expires_at = expires
        .as_deref()
        .map(parse_duration)
        .transpose()
        .context("--expires")?
        .map(|d| crate::util::clock::seconds_after(now, d));
    let created = create_key(
        store,
        keyring,
        &profile,
        names,
        expires_at,
        note.filter(|n| !n.is_empty()),
        now,
    )
    .await?;
    audit
        .record(AuditEvent::EabKeyCreated {
            kid: created.record.kid.clone(),
            profile: created.record.profile.clone(),
            names: created.record.names.clone(),
            expires: created.record.expires_at.map(rfc3339),
            note: created.record.note.clone(),
            by: Actor::Cli,
        })
        .await;
    let kid = &created.record.kid;
    let hmac = created.hmac_key.encoded();
    let directory = {
        let path = if profile == config.default_profile {
            paths::directory(None)
        } else {
            paths::directory(Some(&profile))
        };
        match &config.external_url {
            Some(base) => format!("{base}{path}"),
            None => path,
        }
    };
    println!("External account key for profile {profile:?} (directory {directory}):");
    println!();
    println!("kid:      {kid}");
    println!("hmac_key: {hmac}");
    println!();
    println!(
        "The HMAC key is shown only now; certgate keeps it encrypted. The key binds one account."
    );
    if let Some(names) = &created.record.names {
        println!("That account may order only: {}", names.join(", "));
    }
    if let Some(at) = created.record.expires_at {
        println!("The key must be used by {}.", rfc3339(at));
    }
    println!();
    println!("lego:    --eab --kid={kid} --hmac={hmac}");
    println!("certbot: --eab-kid={kid} --eab-hmac-key={hmac}");
    if settings.eab == EabPolicy::Off {
        eprintln!(
            "note: profile {profile:?} has eab = \"off\", so it ignores bindings; \
             set eab = \"optional\" or \"required\" for the key to matter"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One key as `eab list --json` prints it: what `eab list` shows, with
/// times as RFC 3339 and the state apart from when it was reached. The key
/// material is not a field, so it cannot be printed by mistake.
#[derive(serde::Serialize)]
struct KeyListing<'a> {
    kid: &'a str,
    profile: &'a str,
    /// `unused`, `bound`, `expired` or `revoked`.
    state: &'static str,
    account: Option<&'a str>,
    created: String,
    expires: Option<String>,
    bound: Option<String>,
    revoked: Option<String>,
    /// Name patterns the bound account may order; absent means any.
    names: Option<&'a [String]>,
    note: Option<&'a str>,
}

impl<'a> KeyListing<'a> {
    fn of(record: &'a EabKeyRecord, now: i64) -> Self {
        let state = match (record.revoked_at, &record.account_id) {
            (Some(_), _) => "revoked",
            (None, Some(_)) => "bound",
            (None, None) if record.expired(now) => "expired",
            (None, None) => "unused",
        };
        Self {
            kid: &record.kid,
            profile: &record.profile,
            state,
            account: record.account_id.as_deref(),
            created: rfc3339(record.created_at),
            expires: record.expires_at.map(rfc3339),
            bound: record.bound_at.map(rfc3339),
            revoked: record.revoked_at.map(rfc3339),
            names: record.names.as_deref(),
            note: record.note.as_deref(),
        }
    }
}

async fn list(store: &Store, now: i64, json: bool) -> anyhow::Result<ExitCode> {
    let keys = store.eab_keys().await?;
    if json {
        let listing: Vec<KeyListing> = keys.iter().map(|k| KeyListing::of(k, now)).collect();
        print_json(&listing)?;
        return Ok(ExitCode::SUCCESS);
    }
    if keys.is_empty() {
        eprintln!("no external account keys");
    }
    for record in &keys {
        let key = KeyListing::of(record, now);
        // The text form says when a key was bound or revoked in its state.
        let state = match (key.state, &key.bound, &key.revoked) {
            ("revoked", _, Some(at)) => format!("revoked:{at}"),
            ("bound", Some(at), _) => format!("bound:{at}"),
            (state, _, _) => state.to_owned(),
        };
        println!(
            "kid={} profile={} state={state} account={} created={} expires={} names={} note={:?}",
            key.kid,
            key.profile,
            key.account.unwrap_or("-"),
            key.created,
            key.expires.as_deref().unwrap_or("never"),
            key.names.map_or("any".to_owned(), |n| n.join(",")),
            key.note.unwrap_or_default(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke(store: &Store, audit: &AuditLog, kid: &str, now: i64) -> anyhow::Result<ExitCode> {
    Ok(match store.revoke_eab_key(kid, now).await? {
        RevokeOutcome::Revoked => {
            tracing::info!(kid, "external account key revoked");
            audit
                .record(AuditEvent::EabKeyRevoked {
                    kid: kid.to_owned(),
                    by: Actor::Cli,
                })
                .await;
            println!("revoked {kid}");
            ExitCode::SUCCESS
        }
        RevokeOutcome::AlreadyRevoked(at) => {
            println!("{kid} was already revoked at {}", rfc3339(at));
            ExitCode::SUCCESS
        }
        RevokeOutcome::Unknown => {
            eprintln!("there is no external account key {kid:?}");
            ExitCode::FAILURE
        }
    })
}

/// `eab revoke --deactivate-account`: the account key `kid` bound, if any,
/// is deactivated as an operator would with `accounts deactivate`.
async fn deactivate_bound_account(
    store: &Store,
    audit: &AuditLog,
    kid: &str,
    now: i64,
) -> anyhow::Result<ExitCode> {
    let Some(account) = store.eab_key(kid).await?.and_then(|r| r.account_id) else {
        println!("{kid} is bound to no account; nothing to deactivate");
        return Ok(ExitCode::SUCCESS);
    };
    match deactivate_account(store, audit, &account, Actor::Cli, now).await? {
        Deactivation::Deactivated => println!("deactivated account {account}"),
        Deactivation::AlreadyInactive(status) => println!("account {account} was already {status}"),
        Deactivation::Unknown => println!("account {account} no longer exists"),
    }
    Ok(ExitCode::SUCCESS)
}
