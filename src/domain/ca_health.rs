//! The health of the CAs certgate signs under, apart from `/ready`: when
//! each CA certificate of each issuer's chain expires, when its CRL says it
//! will next be updated, and whether a profile's certificates would outlive
//! their CA.
//!
//! A CA that expires before the leaves it signs does not stop issuance (the
//! embedded CA cuts leaves short at its own expiry; Vault cuts them short
//! or refuses, by its `leaf_not_after_behavior`), so it is no reason to
//! take a replica out of a load balancer: it is a warning on `/status`, in
//! the log and as gauges an alert can watch, weeks before clients see it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use x509_parser::prelude::{CertificateRevocationList, FromDer, X509Certificate};

use crate::domain::profiles::Profiles;
use crate::issuer::CaDocuments;
use crate::util::clock::{rfc3339, seconds_after, Clock};

/// How often the CAs are read again: chains and CRLs change over days, and
/// each check asks Vault two small reads per mount.
pub const CHECK_EVERY: Duration = Duration::from_secs(3600);

/// One CA certificate of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCertificate {
    /// The subject's common name, or the whole subject when it has none.
    pub subject: String,
    /// Unix seconds.
    pub not_after: i64,
}

/// What was read of one CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaState {
    /// The issuing CA first.
    pub certificates: Vec<CaCertificate>,
    /// The CRL's nextUpdate (unix seconds), when it has a CRL that says.
    pub crl_next_update: Option<i64>,
}

impl CaState {
    /// Whether the CRL's nextUpdate has passed at `now`: relying parties
    /// that check revocation may then refuse every certificate of the CA.
    pub fn crl_is_stale(&self, now: i64) -> bool {
        self.crl_next_update.is_some_and(|next| next <= now)
    }
}

/// One CA (`embedded`, or a Vault mount) and what its check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCa {
    pub name: String,
    /// `Err` says why the CA could not be read.
    pub state: Result<CaState, String>,
}

/// A profile whose certificates, issued now, would outlive a CA certificate
/// above them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortCa {
    pub profile: String,
    pub ca: String,
    pub certificate: CaCertificate,
    /// The lifetime a certificate of the profile gets.
    pub lifetime: Duration,
}

impl ShortCa {
    /// The warning, in words an operator acts on.
    pub fn message(&self) -> String {
        format!(
            "profile {}: CA certificate \"{}\" of {} expires at {}, before a certificate issued now for {} would; \
             its certificates are cut short or refused until the CA is renewed",
            self.profile,
            self.certificate.subject,
            self.ca,
            rfc3339(self.certificate.not_after),
            humantime::format_duration(self.lifetime),
        )
    }
}

/// One check of every CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaReport {
    /// Unix seconds.
    pub checked_at: i64,
    pub cas: Vec<CheckedCa>,
    pub short: Vec<ShortCa>,
}

impl CaReport {
    /// The warnings of this report: CAs too short for a profile, stale
    /// CRLs, CAs that could not be read.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = self.short.iter().map(ShortCa::message).collect();
        for ca in &self.cas {
            match &ca.state {
                Ok(state) if state.crl_is_stale(self.checked_at) => warnings.push(format!(
                    "the CRL of {} was due for an update at {} and is stale",
                    ca.name,
                    rfc3339(state.crl_next_update.unwrap_or_default()),
                )),
                Ok(_) => {}
                Err(why) => {
                    warnings.push(format!("the CA of {} could not be read: {why}", ca.name))
                }
            }
        }
        warnings
    }
}

/// Reads every CA the profiles sign under and keeps the last report for
/// `/metrics` and `/status`.
pub struct CaHealth {
    profiles: Arc<Profiles>,
    clock: Arc<dyn Clock>,
    last: Mutex<Option<Arc<CaReport>>>,
}

impl CaHealth {
    pub fn new(profiles: Arc<Profiles>, clock: Arc<dyn Clock>) -> Self {
        Self {
            profiles,
            clock,
            last: Mutex::default(),
        }
    }

    /// The last report; `None` before the first check ends.
    pub fn last(&self) -> Option<Arc<CaReport>> {
        self.last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads every CA once (each CA once, however many profiles share it)
    /// and keeps the report.
    pub async fn check(&self) -> Arc<CaReport> {
        let now = self.clock.now();
        let mut cas: Vec<CheckedCa> = Vec::new();
        let mut short = Vec::new();
        for profile in self.profiles.iter() {
            let Some(name) = profile.issuer.ca_name() else {
                continue;
            };
            let index = match cas.iter().position(|ca| ca.name == name) {
                Some(index) => index,
                None => {
                    let state = profile
                        .issuer
                        .read_ca(now)
                        .await
                        .and_then(|documents| read(&name, &documents));
                    cas.push(CheckedCa { name, state });
                    cas.len() - 1
                }
            };
            let ca = &cas[index];
            if let (Ok(state), Some(lifetime)) = (
                &ca.state,
                profile.issuer.longest_lifetime(profile.ttl).await,
            ) {
                let ends = seconds_after(now, lifetime);
                short.extend(
                    state
                        .certificates
                        .iter()
                        .filter(|certificate| certificate.not_after < ends)
                        .map(|certificate| ShortCa {
                            profile: profile.name.clone(),
                            ca: ca.name.clone(),
                            certificate: certificate.clone(),
                            lifetime,
                        }),
                );
            }
        }
        let report = Arc::new(CaReport {
            checked_at: now,
            cas,
            short,
        });
        *self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(report.clone());
        report
    }

    /// Checks now and then every `every`, until its task is aborted. Each
    /// warning is logged when it first appears, not at every check.
    pub async fn keep_checking(self: Arc<Self>, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut logged = BTreeSet::new();
        loop {
            ticks.tick().await;
            let warnings: BTreeSet<String> = self.check().await.warnings().into_iter().collect();
            for warning in warnings.difference(&logged) {
                tracing::warn!("{warning}");
            }
            logged = warnings;
        }
    }
}

/// The certificates and CRL of a CA, as read from their DER.
pub fn read(name: &str, documents: &CaDocuments) -> Result<CaState, String> {
    let certificates = documents
        .chain_der
        .iter()
        .map(|der| {
            let (_, certificate) = X509Certificate::from_der(der)
                .map_err(|e| format!("a CA certificate of {} does not parse: {e}", name))?;
            let subject = certificate
                .subject()
                .iter_common_name()
                .next()
                .and_then(|name| name.as_str().ok())
                .map_or_else(|| certificate.subject().to_string(), str::to_owned);
            Ok(CaCertificate {
                subject,
                not_after: certificate.validity().not_after.timestamp(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let crl_next_update = match &documents.crl_der {
        Some(der) => {
            let (_, crl) = CertificateRevocationList::from_der(der)
                .map_err(|e| format!("the CRL of {} does not parse: {e}", name))?;
            crl.next_update().map(|next| next.timestamp())
        }
        None => None,
    };
    Ok(CaState {
        certificates,
        crl_next_update,
    })
}
