//! Whether certgate can do its work, as `/ready` and `/status` report it:
//! the database answers and takes writes, and every Vault a profile signs
//! through is reachable, unsealed and accepts certgate's token.
//!
//! Liveness (`/health`) depends on nothing outside the process, the database included:
//! an orchestrator restarts a process whose liveness fails, and a restart
//! cures neither a sealed Vault nor a full disk. Those belong to readiness,
//! which only takes certgate out of the load balancer until they pass.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::profiles::Profiles;
use crate::issuer::Issuer;
use crate::store::Store;
use crate::util::clock::Clock;
use crate::vault::{Vault, VaultError};

/// How long one check may take before it counts as failed. A probe is
/// usually given a few seconds; a Vault slower than this is not one to
/// send signing requests to.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What one check looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckSubject {
    Database,
    /// The Vault the Vault profiles share, by its configured addresses.
    Vault {
        addresses: String,
    },
    Profile {
        name: String,
        issuer: String,
    },
}

impl std::fmt::Display for CheckSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Database => write!(f, "database"),
            Self::Vault { addresses } => write!(f, "vault {addresses}"),
            Self::Profile { name, issuer } => write!(f, "profile {name} ({issuer})"),
        }
    }
}

/// One check and its outcome: `Ok` with a note (possibly empty) when it
/// passed, `Err` with what is wrong.
#[derive(Debug, Clone)]
pub struct Check {
    pub subject: CheckSubject,
    pub outcome: Result<String, String>,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            Ok(note) if note.is_empty() => write!(f, "{}: ok", self.subject),
            Ok(note) => write!(f, "{}: ok ({note})", self.subject),
            Err(problem) => write!(f, "{}: {problem}", self.subject),
        }
    }
}

/// Every check of one `/ready` (or `/status`) request: the database, the
/// shared Vault when there is one, then each profile in name order.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub checks: Vec<Check>,
}

impl Readiness {
    /// Runs the checks. The database is checked alongside Vault; Vault's
    /// token once for all Vault profiles, then each distinct issuer once
    /// (profiles sharing a role share its check). When the token check
    /// fails, the Vault profiles report that failure without asking Vault
    /// again.
    async fn check(sources: &ReadinessProbe) -> Self {
        let database = within_timeout(async {
            if !sources.store.ping().await {
                return Err("the database does not answer".to_owned());
            }
            // A full disk or a read-only file still answers reads.
            sources
                .store
                .probe_writable(sources.clock.now())
                .await
                .map(|()| String::new())
                .map_err(|reason| format!("not writable ({reason})"))
        });
        let vault_and_profiles = async {
            let vault = match &sources.vault {
                Some(vault) => Some(check_vault(vault).await),
                None => None,
            };
            let vault_problem = vault.as_ref().and_then(|c| c.outcome.clone().err());
            let profiles = check_profiles(&sources.profiles, vault_problem).await;
            (vault, profiles)
        };
        let (database, (vault, profiles)) = tokio::join!(database, vault_and_profiles);
        let mut checks = vec![Check {
            subject: CheckSubject::Database,
            outcome: database,
        }];
        checks.extend(vault);
        checks.extend(profiles);
        Self { checks }
    }

    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|check| check.outcome.is_ok())
    }

    /// The outcome of one profile's check.
    pub fn of_profile(&self, profile: &str) -> Option<&Result<String, String>> {
        self.checks.iter().find_map(|check| match &check.subject {
            CheckSubject::Profile { name, .. } if name == profile => Some(&check.outcome),
            _ => None,
        })
    }
}

/// Shares readiness checks between requests that arrive while one runs.
///
/// `/ready` and `/status` need no credentials, and each check asks Vault
/// twice; without this, a burst of requests would be a burst on Vault.
/// A request waits for the check in flight and takes its result when that
/// check finished after the request arrived; otherwise it runs its own, so
/// no request is answered with a result from before it was made.
pub struct ReadinessProbe {
    store: Store,
    vault: Option<Arc<Vault>>,
    profiles: Arc<Profiles>,
    clock: Arc<dyn Clock>,
    /// The last result and when its check finished.
    last: tokio::sync::Mutex<Option<(tokio::time::Instant, Arc<Readiness>)>>,
}

impl ReadinessProbe {
    /// A probe of the database, the shared Vault (when a profile signs
    /// through one) and every profile's issuer.
    pub fn new(
        store: Store,
        vault: Option<Arc<Vault>>,
        profiles: Arc<Profiles>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            vault,
            profiles,
            clock,
            last: tokio::sync::Mutex::default(),
        }
    }

    pub async fn current(&self) -> Arc<Readiness> {
        let asked = tokio::time::Instant::now();
        let mut last = self.last.lock().await;
        if let Some((finished, readiness)) = last.as_ref() {
            if *finished > asked {
                return readiness.clone();
            }
        }
        let readiness = Arc::new(Readiness::check(self).await);
        *last = Some((tokio::time::Instant::now(), readiness.clone()));
        readiness
    }
}

/// Runs one check, failing it when it takes longer than [`CHECK_TIMEOUT`].
async fn within_timeout(
    check: impl Future<Output = Result<String, String>>,
) -> Result<String, String> {
    tokio::time::timeout(CHECK_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())))
}

/// Looks up certgate's token: an answer means Vault is reachable, unsealed
/// and accepts the token (after logging in again, if it had to).
async fn check_vault(vault: &Vault) -> Check {
    let addresses = vault
        .settings()
        .addresses
        .iter()
        .map(|address| address.as_str().trim_end_matches('/'))
        .collect::<Vec<_>>()
        .join(", ");
    let outcome = within_timeout(async {
        match vault.lookup_token().await {
            Ok(token) => Ok(token.lifetime()),
            Err(VaultError::Api {
                status: 403,
                message,
            }) => Err(format!("Vault refused certgate's token: {message}")),
            Err(e) => Err(e.plainly()),
        }
    })
    .await;
    Check {
        subject: CheckSubject::Vault { addresses },
        outcome,
    }
}

/// One check per profile, each distinct issuer (by its description) asked
/// once, all at the same time. A profile signing through Vault takes
/// `vault_problem` when Vault itself failed its check.
async fn check_profiles(profiles: &Profiles, vault_problem: Option<String>) -> Vec<Check> {
    let mut issuers: BTreeMap<String, Arc<dyn Issuer>> = BTreeMap::new();
    for profile in profiles.iter() {
        issuers
            .entry(profile.issuer.describe())
            .or_insert_with(|| profile.issuer.clone());
    }
    let mut running = tokio::task::JoinSet::new();
    for (description, issuer) in issuers {
        let vault_problem = vault_problem.clone();
        running.spawn(async move {
            let outcome = match vault_problem {
                // Vault is the one issuer that signs remotely.
                Some(problem) if issuer.signs_remotely() => Err(problem),
                _ => {
                    within_timeout(async { issuer.readiness().await.map(|()| String::new()) }).await
                }
            };
            (description, outcome)
        });
    }
    let mut outcomes = BTreeMap::new();
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok((description, outcome)) => {
                outcomes.insert(description, outcome);
            }
            Err(e) => tracing::error!(error = %e, "a readiness check failed"),
        }
    }
    profiles
        .iter()
        .map(|profile| {
            let issuer = profile.issuer.describe();
            let outcome = outcomes
                .get(&issuer)
                .cloned()
                .unwrap_or_else(|| Err("the check did not finish".to_owned()));
            Check {
                subject: CheckSubject::Profile {
                    name: profile.name.clone(),
                    issuer,
                },
                outcome,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_subject_and_say_what_is_wrong() {
        let line = |subject, outcome| Check { subject, outcome }.to_string();
        assert_eq!(
            line(CheckSubject::Database, Ok(String::new())),
            "database: ok"
        );
        assert_eq!(
            line(
                CheckSubject::Vault {
                    addresses: "https://vault:8200".into()
                },
                Ok("token valid for 60 s".into())
            ),
            "vault https://vault:8200: ok (token valid for 60 s)"
        );
        assert_eq!(
            line(
                CheckSubject::Profile {
                    name: "lab".into(),
                    issuer: "vault pki_int/lab-internal".into()
                },
                Err("Vault is sealed".into())
            ),
            "profile lab (vault pki_int/lab-internal): Vault is sealed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_hangs_fails_after_the_timeout() {
        let outcome = within_timeout(std::future::pending()).await;
        assert_eq!(outcome, Err("no answer within 2 s".to_owned()));
    }
}
