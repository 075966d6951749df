//! `certgate dns-persist record`: the TXT record that lets an account prove
//! a name by dns-persist-01 (draft-ietf-acme-dns-persist-01) for as long as
//! it stands, printed for operators whose ACME client cannot print it.

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::cli::offline::{OfflineContext, StoreFlags};
use crate::protocol::dns_persist::{owner_name, PersistRecord};
use crate::protocol::paths;
use crate::protocol::status::AccountStatus;
use crate::util::clock::{rfc3339, Clock, SystemClock};

#[derive(Debug, Args)]
pub struct DnsPersistArgs {
    #[command(flatten)]
    pub store: StoreFlags,
    #[command(subcommand)]
    pub command: DnsPersistCommand,
}

#[derive(Debug, Subcommand)]
pub enum DnsPersistCommand {
    /// Print the TXT record to publish once at _validation-persist.<name>:
    /// one line per issuer domain name of the profile; any one of them will do.
    Record(RecordArgs),
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The profile whose orders the record proves names for (it must have
    /// dns_persist = true).
    #[arg(long, value_name = "NAME")]
    pub profile: String,
    /// The ACME account's URL, as the client got it from newAccount.
    #[arg(long, value_name = "URL")]
    pub account: String,
    /// Add policy=wildcard: the record then also proves *.<name> and every
    /// name below <name>.
    #[arg(long)]
    pub wildcard: bool,
    /// Add persistUntil: the record stops proving anything after this
    /// instant (2027-06-30, or RFC 3339 such as 2027-06-30T12:00:00Z).
    #[arg(long, value_name = "DATE", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// The name the record is for, to print a complete zone-file line
    /// [default: <name> is left for you to fill in].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

pub async fn run(args: DnsPersistArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DnsPersistCommand::Record(record) => print_record(args.store, record).await,
    }
}

/// `2027-06-30` (midnight UTC) or an RFC 3339 date-time, as Unix seconds.
fn parse_until(text: &str) -> anyhow::Result<i64> {
    if let Ok(at) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at.unix_timestamp());
    }
    let day = time::Date::parse(text, format_description!("[year]-[month]-[day]")).with_context(
        || format!("--until {text:?}: give a date (2027-06-30) or an RFC 3339 time"),
    )?;
    Ok(day.midnight().assume_utc().unix_timestamp())
}

/// A TXT record's text in zone-file syntax: quoted character-strings of at
/// most 255 octets each (RFC 1035 §3.3.14).
fn quoted(text: &str) -> String {
    text.as_bytes()
        .chunks(255)
        .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn print_record(store: StoreFlags, args: RecordArgs) -> anyhow::Result<ExitCode> {
    let context = OfflineContext::open(store).await?;
    let Some(profile) = context
        .config
        .profiles
        .iter()
        .find(|p| p.name == args.profile)
    else {
        bail!("no profile {:?} in the configuration", args.profile);
    };
    let Some(persist) = &profile.validation.dns_persist else {
        bail!(
            "profile {:?} does not offer dns-persist-01: set dns_persist = true in [profiles.{}]",
            profile.name,
            profile.name
        );
    };
    let url = url::Url::parse(&args.account)
        .with_context(|| format!("--account {:?} is not a URL", args.account))?;
    let Some(id) = paths::account_id(url.path()).filter(|_| url.scheme() == "https") else {
        bail!(
            "--account {:?} is not an account URL (https://<host>{})",
            args.account,
            paths::account("<id>")
        );
    };
    if let Some(base) = &context.config.external_url {
        let expected = format!("{base}{}", paths::account(id));
        if args.account != expected {
            bail!("--account must be {expected:?}, the URL certgate gives that account");
        }
    }
    match context.store.account(id).await? {
        Some(account) if account.status == AccountStatus::Valid => {}
        Some(account) => bail!("account {id} is {}", account.status.as_str()),
        None => bail!("no account {id} in {}", context.config.database_url),
    }
    let persist_until = args.until.as_deref().map(parse_until).transpose()?;
    if let Some(until) = persist_until.filter(|&u| u <= SystemClock.now()) {
        bail!("--until {} is not in the future", rfc3339(until));
    }
    let owner = match &args.name {
        Some(name) => format!(
            "{}.",
            owner_name(&name.trim_start_matches("*.").to_ascii_lowercase())
        ),
        None => owner_name("<name>"),
    };
    println!(
        "; publish one of these at {owner} (any one will do){}",
        if args.wildcard {
            "; policy=wildcard also covers *.<name> and the names below it"
        } else {
            ""
        }
    );
    for issuer_domain_name in &persist.issuer_domain_names {
        let record = PersistRecord {
            issuer_domain_name: issuer_domain_name.clone(),
            account_uri: args.account.clone(),
            wildcard: args.wildcard,
            persist_until,
        };
        println!("{owner} IN TXT {}", quoted(&record.to_txt()));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_takes_a_day_or_an_rfc3339_time() {
        assert_eq!(parse_until("2027-01-01").unwrap(), 1_798_761_600);
        assert_eq!(parse_until("2027-01-01T00:00:10Z").unwrap(), 1_798_761_610);
        assert!(parse_until("next year").is_err());
    }

    #[test]
    fn long_text_is_split_into_strings_of_255_octets() {
        let text = "a".repeat(300);
        assert_eq!(
            quoted(&text),
            format!("\"{}\" \"{}\"", "a".repeat(255), "a".repeat(45))
        );
    }
}
