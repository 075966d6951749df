//! The dns-persist-01 validation record, as draft-ietf-acme-dns-persist-01
//! defines it: a TXT record at `_validation-persist.<name>` whose text is an
//! RFC 8659 issue-value naming the CA (one of the challenge's
//! `issuer-domain-names`), the ACME account (`accounturi`), and optionally
//! `policy=wildcard` and `persistUntil=<UNIX seconds>`.
//!
//! Revision -01 is the one Boulder, Pebble, acme.sh and lego speak today
//! (the account URL in clear). Revision -02 replaces it with a hashed
//! account URI and renames the challenge field `issuerDomainNames`; no
//! client speaks that yet.

use super::issue_value::{self, IssueValueError};

/// The label prepended to the name being validated (draft §3).
pub const LABEL: &str = "_validation-persist";

/// The challenge type string.
pub const CHALLENGE_TYPE: &str = "dns-persist-01";

/// At most this many issuer domain names in a challenge (draft §3).
pub const MAX_ISSUER_DOMAIN_NAMES: usize = 10;

/// Where the record for `name` lives.
pub fn owner_name(name: &str) -> String {
    format!("{LABEL}.{}", name.trim_end_matches('.'))
}

/// One validation record, as published or as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistRecord {
    /// Lower case, no trailing dot.
    pub issuer_domain_name: String,
    /// Compared as a simple string (RFC 3986 §6.2.1).
    pub account_uri: String,
    /// `policy=wildcard`: also wildcards and names below the record's name.
    pub wildcard: bool,
    /// `persistUntil`: after this instant the record no longer validates.
    pub persist_until: Option<i64>,
}

/// Why a text is not a dns-persist-01 record; each message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("{0}")]
    Syntax(#[from] IssueValueError),
    #[error("it names no issuer domain name")]
    NoIssuer,
    #[error("it has no accounturi parameter")]
    NoAccountUri,
    #[error("persistUntil {0:?} is not a base-10 UNIX time in seconds")]
    PersistUntil(String),
}

impl PersistRecord {
    /// Reads a record. Unknown parameters are ignored and any value of
    /// `policy` other than `wildcard` (in any case) counts as no policy, as
    /// the draft requires; duplicates and bad syntax are refused.
    pub fn parse(text: &str) -> Result<Self, RecordError> {
        let value = issue_value::parse(text)?;
        let issuer_domain_name = value
            .issuer_domain_name
            .clone()
            .ok_or(RecordError::NoIssuer)?;
        let account_uri = value
            .parameter("accounturi")
            .filter(|v| !v.is_empty())
            .ok_or(RecordError::NoAccountUri)?
            .to_owned();
        let wildcard = value
            .parameter("policy")
            .is_some_and(|p| p.eq_ignore_ascii_case("wildcard"));
        let persist_until = value
            .parameter("persistUntil")
            .map(|v| {
                v.bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| v.parse::<i64>().ok())
                    .flatten()
                    .ok_or_else(|| RecordError::PersistUntil(v.to_owned()))
            })
            .transpose()?;
        Ok(Self {
            issuer_domain_name,
            account_uri,
            wildcard,
            persist_until,
        })
    }

    /// The record's text, as it is to be published.
    pub fn to_txt(&self) -> String {
        let mut text = format!(
            "{}; accounturi={}",
            self.issuer_domain_name, self.account_uri
        );
        if self.wildcard {
            text.push_str("; policy=wildcard");
        }
        if let Some(until) = self.persist_until {
            text.push_str(&format!("; persistUntil={until}"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_the_drafts_example() {
        let record = PersistRecord {
            issuer_domain_name: "ca.example".into(),
            account_uri: "https://ca.example/acme/acct/1".into(),
            wildcard: true,
            persist_until: Some(1_767_225_600),
        };
        assert_eq!(PersistRecord::parse(&record.to_txt()), Ok(record));
        let example = PersistRecord::parse(
            "authority.example; accounturi=https://ca.example/acct/123; POLICY=Wildcard; future=1",
        )
        .unwrap();
        assert!(example.wildcard);
        assert_eq!(example.persist_until, None);
        assert_eq!(
            owner_name("host.lab.test."),
            "_validation-persist.host.lab.test"
        );
    }

    #[test]
    fn other_policies_count_as_none() {
        let record =
            PersistRecord::parse("ca.example; accounturi=https://a/1; policy=exact").unwrap();
        assert!(!record.wildcard);
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        for (text, expected) in [
            ("; accounturi=https://a/1", RecordError::NoIssuer),
            ("ca.example", RecordError::NoAccountUri),
            ("ca.example; accounturi=", RecordError::NoAccountUri),
            (
                "ca.example; accounturi=https://a/1; persistUntil=2027-01-01",
                RecordError::PersistUntil("2027-01-01".into()),
            ),
            (
                "ca.example; accounturi=https://a/1; persistUntil=-5",
                RecordError::PersistUntil("-5".into()),
            ),
            (
                "ca.example; accounturi=https://a/1; accounturi=https://a/2",
                RecordError::Syntax(IssueValueError::Duplicate("accounturi".into())),
            ),
        ] {
            assert_eq!(PersistRecord::parse(text), Err(expected), "{text}");
        }
    }
}
