//! Options whose value may start with `-` (a duration or date such as
//! `-5d`, free text) take it as their value, so the value's own parser
//! says what is wrong with it, instead of clap reading `-5` as an unknown
//! flag.

use clap::{ArgMatches, Args, Command, FromArgMatches};

use crate::cli::dns_persist::RecordArgs;
use crate::cli::eab::{CreateArgs, EabCommand};
use crate::cli::inventory::{AccountsCommand, ListArgs};
use crate::config::{parse_duration, ServeFlags};

fn parse<T: Args + FromArgMatches>(args: &[&str]) -> Result<T, clap::Error> {
    let command = T::augment_args(Command::new("certgate").no_binary_name(true));
    let matches: ArgMatches = command.try_get_matches_from(args)?;
    T::from_arg_matches(&matches)
}

#[test]
fn certs_list_expiring_within_takes_a_value_with_a_hyphen() {
    let list: ListArgs = parse(&["--expiring-within", "-5d", "--json"]).unwrap();
    assert_eq!(list.expiring_within.as_deref(), Some("-5d"));
    assert!(list.json, "the flag after the value is still a flag");
    // The value reaches the filter, which names the option and the fault.
    let error =
        crate::domain::inventory::filter::certificate_filter(None, Some("-5d"), false, false, 0)
            .unwrap_err()
            .to_string();
    assert!(error.starts_with("expiring within: "), "{error}");
    assert!(error.contains("never negative"), "{error}");
    assert_eq!(error.matches("-5d").count(), 1, "said once: {error}");
}

#[test]
fn eab_create_expires_and_note_take_values_with_a_hyphen() {
    let create: CreateArgs = parse(&[
        "--profile",
        "lab",
        "--expires",
        "-5d",
        "--note",
        "-- the NAS, hall",
    ])
    .unwrap();
    assert_eq!(create.expires.as_deref(), Some("-5d"));
    assert_eq!(create.note.as_deref(), Some("-- the NAS, hall"));
    assert_eq!(create.profile, "lab");
}

#[test]
fn dns_persist_until_takes_a_value_with_a_hyphen() {
    let record: RecordArgs = parse(&[
        "--profile",
        "default",
        "--account",
        "https://acme.lab.example/acme/acct/1",
        "--until",
        "-5d",
    ])
    .unwrap();
    assert_eq!(record.until.as_deref(), Some("-5d"));
}

#[test]
fn serve_duration_flags_take_values_with_a_hyphen() {
    let flags: ServeFlags = parse(&[
        "--cert-lifetime",
        "-5d",
        "--authorization-reuse",
        "-1h",
        "--work-lease",
        "-30s",
        "--retention",
        "-7d",
        "--header-read-timeout",
        "-1s",
        "--idle-timeout",
        "-1s",
        "--tls-handshake-timeout",
        "-1s",
    ])
    .unwrap();
    assert_eq!(flags.cert_lifetime.as_deref(), Some("-5d"));
    assert_eq!(flags.authorization_reuse.as_deref(), Some("-1h"));
    assert_eq!(flags.work_lease.as_deref(), Some("-30s"));
    assert_eq!(flags.retention.as_deref(), Some("-7d"));
    assert_eq!(flags.header_read_timeout.as_deref(), Some("-1s"));
    assert_eq!(flags.idle_timeout.as_deref(), Some("-1s"));
    assert_eq!(flags.tls_handshake_timeout.as_deref(), Some("-1s"));
}

#[test]
fn a_flag_that_takes_no_hyphen_value_still_refuses_one() {
    // Only the options above take such values: elsewhere `-5` is what it
    // looks like, an unknown flag.
    let error = parse::<ListArgs>(&["--profile", "-5d"]).unwrap_err();
    assert_eq!(error.kind(), clap::error::ErrorKind::UnknownArgument);
}

#[test]
fn a_negative_duration_is_refused_with_why() {
    let error = parse_duration("-5d").unwrap_err().to_string();
    assert!(
        error.contains("\"-5d\"") && error.contains("never negative"),
        "{error}"
    );
    assert_eq!(parse_duration(" 5d").unwrap().as_secs(), 5 * 86_400);
}

/// `command` parsed as one of `S`'s subcommands.
fn parse_subcommand<S: clap::Subcommand + FromArgMatches>(args: &[&str]) -> Result<S, clap::Error> {
    let command = S::augment_subcommands(Command::new("certgate").no_binary_name(true));
    S::from_arg_matches(&command.try_get_matches_from(args)?)
}

#[test]
fn ids_that_start_with_a_hyphen_are_ids() {
    // Account ids and kids are base64url: one in 64 starts with `-`.
    match parse_subcommand::<AccountsCommand>(&["deactivate", "-TkntaJ3T1lIlB6FwxHT1w"]) {
        Ok(AccountsCommand::Deactivate { id }) => assert_eq!(id, "-TkntaJ3T1lIlB6FwxHT1w"),
        other => panic!("{other:?}"),
    }
    match parse_subcommand::<EabCommand>(&["revoke", "-kid_4f1c"]) {
        Ok(EabCommand::Revoke { kid, .. }) => assert_eq!(kid, "-kid_4f1c"),
        other => panic!("{other:?}"),
    }
}
