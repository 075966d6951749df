//! dns-persist-01 (draft-ietf-acme-dns-persist-01): a standing TXT record at
//! `_validation-persist.<name>` naming this CA and the account. Read fresh
//! at each validation; a record at a parent of the name counts only with
//! `policy=wildcard` (draft §6), as must one proving a wildcard (§5).
//!
//! Refusals follow Boulder: a record for this CA that does not parse is
//! `malformed`; one that parses but does not authorize (another account, no
//! wildcard policy, past its persistUntil) is `unauthorized`, and so is
//! finding none for this CA. Each detail names the record and the fault.

use async_trait::async_trait;

use super::{DnsResolver, Method, Proof, ValidationSubject};
use crate::protocol::dns_persist::{owner_name, PersistRecord};
use crate::protocol::issue_value;
use crate::protocol::problem::{Problem, ProblemType};
use crate::util::clock::rfc3339;

pub struct DnsPersist01 {
    resolver: DnsResolver,
}

impl DnsPersist01 {
    pub fn new(resolver: DnsResolver) -> Self {
        Self { resolver }
    }
}

/// What a record must say, and about what.
pub struct PersistQuestion<'a> {
    /// The identifier, without a wildcard label.
    pub name: &'a str,
    pub wildcard: bool,
    pub issuer_domain_names: &'a [String],
    pub is_our_account: &'a (dyn Fn(&str) -> bool + Sync),
    pub now: i64,
}

/// Why the records seen so far do not authorize.
#[derive(Debug, Default)]
pub struct Refusals {
    malformed: Vec<String>,
    unauthorized: Vec<String>,
    /// Issuers named by well-formed records for other CAs.
    other_cas: Vec<String>,
    /// Records read, in all.
    seen: usize,
}

impl Refusals {
    /// The problem to show when no record authorized.
    pub fn into_problem(self, question: &PersistQuestion<'_>) -> Problem {
        if !self.malformed.is_empty() {
            return Problem::new(ProblemType::Malformed, self.malformed.join("; "));
        }
        let owner = owner_name(question.name);
        let detail = if !self.unauthorized.is_empty() {
            self.unauthorized.join("; ")
        } else if !self.other_cas.is_empty() {
            format!(
                "the TXT records at {owner} name other CAs ({}), not this one ({})",
                self.other_cas.join(", "),
                question.issuer_domain_names.join(", ")
            )
        } else if self.seen > 0 {
            format!("no TXT record at {owner} is a dns-persist-01 record for this CA")
        } else {
            format!("no TXT record at {owner}")
        };
        Problem::new(ProblemType::Unauthorized, detail)
    }
}

/// At most this many names are asked for a record: the identifier and its
/// nearest parents. A name of many labels must not turn one validation into
/// a hundred lookups.
const MAX_NAMES_ASKED: usize = 10;

/// The names whose record may prove `name`: itself, then its parents that
/// still have two labels or more (a record at a top-level domain is no one's
/// to publish), nearest first.
fn owners_to_ask(name: &str) -> impl Iterator<Item = (&str, bool)> {
    std::iter::successors(Some(name), |n| n.split_once('.').map(|(_, parent)| parent))
        .take_while(|n| n.contains('.'))
        .take(MAX_NAMES_ASKED)
        .enumerate()
        .map(|(i, n)| (n, i > 0))
}

/// Judges the TXT records found at the record for `at` (`via_parent` when
/// `at` is a parent of the identifier): `Some(persistUntil)` of the first
/// that authorizes, or what was wrong added to `refusals`.
pub fn judge(
    question: &PersistQuestion<'_>,
    at: &str,
    via_parent: bool,
    texts: &[String],
    refusals: &mut Refusals,
) -> Option<Option<i64>> {
    let owner = owner_name(at);
    let ours = |issuer: &str| question.issuer_domain_names.iter().any(|n| n == issuer);
    for text in texts {
        refusals.seen += 1;
        let record = match PersistRecord::parse(text) {
            Ok(record) => record,
            Err(e) => {
                // Only a record that names this CA is this CA's to judge.
                let issuer = text.split(';').next().unwrap_or_default();
                if issue_value::parse(issuer)
                    .ok()
                    .and_then(|v| v.issuer_domain_name)
                    .is_some_and(|i| ours(&i))
                {
                    refusals.malformed.push(format!(
                        "the TXT record {text:?} at {owner} is malformed: {e}"
                    ));
                }
                continue;
            }
        };
        if !ours(&record.issuer_domain_name) {
            refusals.other_cas.push(record.issuer_domain_name);
            continue;
        }
        let fault = if !(question.is_our_account)(&record.account_uri) {
            Some(format!(
                "the record at {owner} is for account {}, not the one asking",
                record.account_uri
            ))
        } else if question.wildcard && !record.wildcard {
            Some(format!(
                "the record at {owner} has no policy=wildcard, which *.{} needs",
                question.name
            ))
        } else if via_parent && !record.wildcard {
            Some(format!(
                "the record at {owner} has no policy=wildcard, which {} (below {at}) needs",
                question.name
            ))
        } else {
            record
                .persist_until
                .filter(|&until| until < question.now)
                .map(|until| {
                    format!(
                        "the record at {owner} expired at persistUntil={until} ({})",
                        rfc3339(until)
                    )
                })
        };
        match fault {
            None => return Some(record.persist_until),
            Some(fault) => refusals.unauthorized.push(fault),
        }
    }
    None
}

#[async_trait]
impl Method for DnsPersist01 {
    async fn validate(&self, subject: &ValidationSubject<'_>) -> Result<Proof, Problem> {
        let Some(persist) = &subject.policy.dns_persist else {
            return Err(Problem::unauthorized(
                "this profile no longer offers dns-persist-01",
            ));
        };
        let question = PersistQuestion {
            name: &subject.identifier.value,
            wildcard: subject.wildcard,
            issuer_domain_names: &persist.issuer_domain_names,
            is_our_account: subject.is_our_account,
            now: subject.now,
        };
        let mut refusals = Refusals::default();
        for (at, via_parent) in owners_to_ask(question.name) {
            let texts = self
                .resolver
                .txt_if_any(&owner_name(at))
                .await
                .map_err(|e| Problem::new(ProblemType::Dns, e))?;
            if let Some(until) = judge(&question, at, via_parent, &texts, &mut refusals) {
                return Ok(Proof {
                    relied_on_until: until,
                });
            }
        }
        Err(refusals.into_problem(&question))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "https://ca.lab.test/acme/acct/ours";

    fn ask(name: &str, wildcard: bool, at: &str, texts: &[&str]) -> Result<Option<i64>, Problem> {
        let names = ["ca.lab.test".to_owned()];
        let question = PersistQuestion {
            name,
            wildcard,
            issuer_domain_names: &names,
            is_our_account: &|uri: &str| uri == OURS,
            now: 1_800_000_000,
        };
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        let mut refusals = Refusals::default();
        match judge(&question, at, at != name, &texts, &mut refusals) {
            Some(until) => Ok(until),
            None => Err(refusals.into_problem(&question)),
        }
    }

    fn refused(result: Result<Option<i64>, Problem>, kind: ProblemType, needle: &str) {
        let problem = result.expect_err("refused");
        assert_eq!(problem.kind, kind, "{problem}");
        assert!(problem.detail.contains(needle), "{needle:?} in {problem}");
    }

    #[test]
    fn a_record_for_this_ca_and_account_proves_the_name() {
        let plain = format!("ca.lab.test; accounturi={OURS}");
        assert_eq!(
            ask("nas.lab.test", false, "nas.lab.test", &[&plain]),
            Ok(None)
        );
        let until = format!("CA.lab.test;accounturi={OURS};persistUntil=1900000000");
        assert_eq!(
            ask(
                "nas.lab.test",
                false,
                "nas.lab.test",
                &["other.test; accounturi=x", &until]
            ),
            Ok(Some(1_900_000_000))
        );
    }

    #[test]
    fn wildcards_and_parents_need_policy_wildcard() {
        let plain = format!("ca.lab.test; accounturi={OURS}");
        let wild = format!("ca.lab.test; accounturi={OURS}; policy=WILDCARD");
        refused(
            ask("lab.test", true, "lab.test", &[&plain]),
            ProblemType::Unauthorized,
            "policy=wildcard, which *.lab.test needs",
        );
        assert_eq!(ask("lab.test", true, "lab.test", &[&wild]), Ok(None));
        refused(
            ask("nas.lab.test", false, "lab.test", &[&plain]),
            ProblemType::Unauthorized,
            "below lab.test",
        );
        assert_eq!(ask("nas.lab.test", false, "lab.test", &[&wild]), Ok(None));
    }

    #[test]
    fn each_refusal_names_its_fault() {
        refused(
            ask(
                "nas.lab.test",
                false,
                "nas.lab.test",
                &["ca.lab.test; accounturi=https://ca.lab.test/acme/acct/theirs"],
            ),
            ProblemType::Unauthorized,
            "for account https://ca.lab.test/acme/acct/theirs",
        );
        refused(
            ask(
                "nas.lab.test",
                false,
                "nas.lab.test",
                &[&format!("other-ca.test; accounturi={OURS}")],
            ),
            ProblemType::Unauthorized,
            "name other CAs (other-ca.test)",
        );
        refused(
            ask(
                "nas.lab.test",
                false,
                "nas.lab.test",
                &[&format!(
                    "ca.lab.test; accounturi={OURS}; persistUntil=1700000000"
                )],
            ),
            ProblemType::Unauthorized,
            "expired at persistUntil=1700000000 (2023-11-14T22:13:20Z)",
        );
        refused(
            ask(
                "nas.lab.test",
                false,
                "nas.lab.test",
                &[&format!(
                    "ca.lab.test; accounturi={OURS}; policy=wildcard; policy=wildcard"
                )],
            ),
            ProblemType::Malformed,
            "\"policy\" appears more than once",
        );
        refused(
            ask(
                "nas.lab.test",
                false,
                "nas.lab.test",
                &["ca.lab.test; persistUntil=soon"],
            ),
            ProblemType::Malformed,
            "at _validation-persist.nas.lab.test is malformed",
        );
        refused(
            ask("nas.lab.test", false, "nas.lab.test", &["v=spf1 -all"]),
            ProblemType::Unauthorized,
            "no TXT record at _validation-persist.nas.lab.test is a dns-persist-01 record",
        );
        refused(
            ask("nas.lab.test", false, "nas.lab.test", &[]),
            ProblemType::Unauthorized,
            "no TXT record at _validation-persist.nas.lab.test",
        );
    }

    #[test]
    fn parents_are_asked_down_to_two_labels() {
        assert_eq!(
            owners_to_ask("a.b.lab.test").collect::<Vec<_>>(),
            [
                ("a.b.lab.test", false),
                ("b.lab.test", true),
                ("lab.test", true)
            ]
        );
    }
}
