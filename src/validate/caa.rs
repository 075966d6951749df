//! CAA (RFC 8659, with the `accounturi` and `validationmethods` parameters
//! of RFC 8657): may certgate issue for a name at all? Checked after a
//! challenge succeeds, for profiles that name their CAA identities.

use crate::protocol::problem::{Problem, ProblemType};

use super::DnsResolver;

/// One CAA record, in the terms the decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaaRecord {
    pub critical: bool,
    /// `issue`, `issuewild`, `iodef`, or another tag.
    pub tag: String,
    /// For issue/issuewild: the issuer domain (`None` for `;`, which
    /// authorizes no one); `None` as well when the value does not parse.
    pub issuer: Option<String>,
    pub parameters: Vec<(String, String)>,
    /// False when an issue value could not be parsed.
    pub well_formed: bool,
}

/// What is being issued, and by whom it was validated.
pub struct CaaQuestion<'a> {
    pub name: &'a str,
    pub wildcard: bool,
    /// The issuer domains that stand for this certgate profile.
    pub identities: &'a [String],
    /// The challenge type that proved control (`http-01`, …).
    pub method: &'a str,
    /// Whether an `accounturi` parameter names the account that asked.
    pub is_our_account: &'a (dyn Fn(&str) -> bool + Sync),
}

/// Decides on the relevant record set (the first non-empty one found
/// climbing from the name to the root). `Err` says why issuance is refused.
pub fn decide(records: &[CaaRecord], question: &CaaQuestion<'_>) -> Result<(), String> {
    if let Some(unknown) = records
        .iter()
        .find(|r| r.critical && !matches!(r.tag.as_str(), "issue" | "issuewild" | "iodef"))
    {
        return Err(format!(
            "a CAA record has the critical flag on the unknown tag {:?}",
            unknown.tag
        ));
    }
    let wild: Vec<&CaaRecord> = records.iter().filter(|r| r.tag == "issuewild").collect();
    let issue: Vec<&CaaRecord> = records.iter().filter(|r| r.tag == "issue").collect();
    // A wildcard is governed by issuewild when there is any, else by issue.
    let (governing, tag) = if question.wildcard && !wild.is_empty() {
        (wild, "issuewild")
    } else {
        (issue, "issue")
    };
    if governing.is_empty() {
        return Ok(());
    }
    let mut reasons = Vec::new();
    for record in governing {
        match permits(record, question) {
            Ok(()) => return Ok(()),
            Err(reason) => reasons.push(reason),
        }
    }
    Err(format!(
        "no CAA {tag} record authorizes certgate ({}): {}",
        question.identities.join(", "),
        reasons.join("; ")
    ))
}

/// Whether one issue/issuewild record authorizes this issuance.
fn permits(record: &CaaRecord, question: &CaaQuestion<'_>) -> Result<(), String> {
    let Some(issuer) = record.issuer.as_deref().filter(|_| record.well_formed) else {
        return Err("a record authorizes no CA".into());
    };
    if !question
        .identities
        .iter()
        .any(|id| id.eq_ignore_ascii_case(issuer))
    {
        return Err(format!("{issuer} is another CA"));
    }
    for (key, value) in &record.parameters {
        match key.to_ascii_lowercase().as_str() {
            "accounturi" if !(question.is_our_account)(value) => {
                return Err(format!("{issuer} is limited to account {value}"));
            }
            "validationmethods"
                if !value
                    .split(',')
                    .any(|m| m.trim().eq_ignore_ascii_case(question.method)) =>
            {
                return Err(format!(
                    "{issuer} is limited to validation methods {value}, not {}",
                    question.method
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The names whose CAA records may govern `name`: itself, then each parent.
fn climb(name: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(name), |n| n.split_once('.').map(|(_, parent)| parent))
        .filter(|n| !n.is_empty())
}

/// Looks up the relevant record set and decides.
pub async fn check(resolver: &DnsResolver, question: &CaaQuestion<'_>) -> Result<(), Problem> {
    for candidate in climb(question.name) {
        let records = resolver.caa(candidate).await.map_err(|e| {
            Problem::new(
                ProblemType::Dns,
                format!("CAA lookup failed, so certgate may not issue: {e}"),
            )
        })?;
        if !records.is_empty() {
            return decide(&records, question).map_err(|why| {
                Problem::new(ProblemType::Caa, format!("CAA at {candidate}: {why}"))
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(tag: &str, issuer: Option<&str>, parameters: &[(&str, &str)]) -> CaaRecord {
        CaaRecord {
            critical: false,
            tag: tag.to_owned(),
            issuer: issuer.map(str::to_owned),
            parameters: parameters
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            well_formed: true,
        }
    }

    fn ask(records: &[CaaRecord], wildcard: bool) -> Result<(), String> {
        ask_for(records, wildcard, "http-01")
    }

    fn ask_for(records: &[CaaRecord], wildcard: bool, method: &str) -> Result<(), String> {
        let identities = ["certgate.test".to_owned()];
        decide(
            records,
            &CaaQuestion {
                name: "host.lab.test",
                wildcard,
                identities: &identities,
                method,
                is_our_account: &|uri: &str| uri.ends_with("/acme/acct/ours"),
            },
        )
    }

    #[test]
    fn issue_records_name_the_ca() {
        assert!(ask(&[], false).is_ok());
        assert!(ask(&[issue("issue", Some("certgate.test"), &[])], false).is_ok());
        assert!(ask(&[issue("issue", Some("CERTGATE.test"), &[])], false).is_ok());
        assert!(ask(&[issue("issue", Some("other-ca.test"), &[])], false).is_err());
        assert!(ask(&[issue("issue", None, &[])], false).is_err());
        assert!(ask(&[issue("iodef", None, &[])], false).is_ok());
        assert!(ask(
            &[
                issue("issue", Some("other-ca.test"), &[]),
                issue("issue", Some("certgate.test"), &[])
            ],
            false
        )
        .is_ok());
    }

    #[test]
    fn wildcards_follow_issuewild_when_present() {
        let records = [
            issue("issue", Some("certgate.test"), &[]),
            issue("issuewild", Some("other-ca.test"), &[]),
        ];
        assert!(ask(&records, false).is_ok());
        assert!(ask(&records, true).is_err());
        assert!(ask(&records[..1], true).is_ok());
    }

    #[test]
    fn rfc8657_parameters_limit_account_and_method() {
        let ours = [issue(
            "issue",
            Some("certgate.test"),
            &[("accounturi", "https://ca/acme/acct/ours")],
        )];
        assert!(ask(&ours, false).is_ok());
        let theirs = [issue(
            "issue",
            Some("certgate.test"),
            &[("accounturi", "https://ca/acme/acct/theirs")],
        )];
        assert!(ask(&theirs, false).unwrap_err().contains("acct/theirs"));
        let dns_only = [issue(
            "issue",
            Some("certgate.test"),
            &[("validationmethods", "dns-01")],
        )];
        assert!(ask(&dns_only, false).unwrap_err().contains("dns-01"));
        let both = [issue(
            "issue",
            Some("certgate.test"),
            &[("validationmethods", "dns-01,http-01")],
        )];
        assert!(ask(&both, false).is_ok());
    }

    #[test]
    fn validationmethods_names_dns_persist_01_exactly() {
        let dns01_only = [issue(
            "issue",
            Some("certgate.test"),
            &[("validationmethods", "dns-01")],
        )];
        let why = ask_for(&dns01_only, false, "dns-persist-01").unwrap_err();
        assert!(why.contains("not dns-persist-01"), "{why}");
        let persist = [issue(
            "issue",
            Some("certgate.test"),
            &[("validationmethods", "http-01,dns-persist-01")],
        )];
        assert!(ask_for(&persist, true, "dns-persist-01").is_ok());
        assert!(ask_for(&persist, false, "dns-01").is_err());
    }

    #[test]
    fn an_unknown_critical_tag_forbids_issuance() {
        let mut odd = issue("tbs", None, &[]);
        odd.critical = true;
        assert!(ask(&[odd], false).unwrap_err().contains("tbs"));
    }

    #[test]
    fn climbing_stops_before_the_root() {
        assert_eq!(
            climb("a.b.test").collect::<Vec<_>>(),
            ["a.b.test", "b.test", "test"]
        );
    }
}
