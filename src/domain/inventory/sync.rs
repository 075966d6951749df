//! The Vault inventory sync: every `inventory.sync_interval`, each Vault
//! mount a profile signs with or `[inventory] vault_mounts` names is
//! listed (`LIST <mount>/certs`), the certificates not seen before are read
//! (a few at a time, [`InventorySync::concurrency`]) and stored with their
//! mount, the revoked ones are marked (`LIST <mount>/certs/revoked`), a
//! certificate over the key and names of an order whose answer from Vault
//! was lost is linked to that order, and older certificates for the same
//! names are marked superseded.
//!
//! It is incremental: what was read is stored in batches as it comes, so a
//! sync that stops half-way (Vault down, certgate restarted) goes on next
//! time from where it stopped, and a mount of tens of thousands of
//! certificates costs one LIST and the reads of the new ones.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use sha2::Digest;
use x509_parser::prelude::*;

use crate::config::{Config, ProfileIssuer};
use crate::protocol::csr::public_key_sha256;
use crate::store::inventory::normalize_serial;
use crate::store::vault_certificates::{LostAnswer, VaultCertificate};
use crate::store::{Store, StoreError};
use crate::util::clock::Clock;
use crate::vault::{StoredCertificate, Vault, VaultError};

/// Certificates stored in one write.
const BATCH: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("Vault mount {mount}: {source}")]
    Vault { mount: String, source: VaultError },
    #[error("Vault mount {mount}: {source}")]
    Store { mount: String, source: StoreError },
}

impl SyncError {
    /// Names `mount` on a Vault error met while syncing it.
    fn vault(mount: &str) -> impl Fn(VaultError) -> Self + Copy + '_ {
        move |source| SyncError::Vault {
            mount: mount.to_owned(),
            source,
        }
    }

    /// Names `mount` on a store error met while syncing it.
    fn store(mount: &str) -> impl Fn(StoreError) -> Self + Copy + '_ {
        move |source| SyncError::Store {
            mount: mount.to_owned(),
            source,
        }
    }
}

/// What one sync of one mount did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub mount: String,
    /// Serials the mount listed.
    pub listed: usize,
    /// Certificates read and stored this time.
    pub stored: u64,
    /// Certificates marked revoked this time.
    pub revoked: u64,
    /// Certificates linked to an order whose answer was lost.
    pub linked: usize,
    /// Certificates marked superseded this time.
    pub superseded: u64,
}

/// The sync of every inventoried Vault mount.
pub struct InventorySync {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub clock: Arc<dyn Clock>,
    pub mounts: Vec<String>,
    /// The role each Vault profile signs with, by profile name.
    pub profile_roles: HashMap<String, String>,
    /// Certificates read from Vault at once.
    pub concurrency: usize,
    /// One sync at a time: the periodic one and one asked for.
    pub running: tokio::sync::Mutex<()>,
}

/// A certificate as the inventory keeps it; `None` when the PEM is not a
/// certificate.
fn parse(
    mount: &str,
    serial: &str,
    stored: &StoredCertificate,
    now: i64,
) -> Option<VaultCertificate> {
    let block = ::pem::parse(stored.certificate.trim()).ok()?;
    let (_, cert) = X509Certificate::from_der(block.contents()).ok()?;
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: String| {
        let name = name.to_ascii_lowercase();
        if !names.contains(&name) {
            names.push(name);
        }
    };
    for cn in cert.subject().iter_common_name() {
        if let Ok(text) = cn.as_str() {
            add(text.to_owned());
        }
    }
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => add((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes)
                            .ok()
                            .map(std::net::IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        add(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let is_ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    let digest = sha2::Sha256::digest(cert.public_key().raw);
    Some(VaultCertificate {
        mount: mount.to_owned(),
        serial: serial.to_owned(),
        role: None,
        names,
        chain_pem: format!("{}\n", ::pem::encode(&block).trim_end()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        revoked_at: (stored.revocation_time > 0).then_some(stored.revocation_time),
        public_key_sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        is_ca,
        order_id: None,
        account_id: None,
        profile: None,
        superseded_by: None,
        synced_at: now,
    })
}

/// The names an order asked for, as a certificate lists them.
fn order_names(answer: &LostAnswer) -> BTreeSet<String> {
    answer
        .identifiers
        .iter()
        .map(|i| i.value.to_ascii_lowercase())
        .collect()
}

impl InventorySync {
    /// The sync of the mounts `config` inventories, through `vault`.
    pub fn new(
        config: &Config,
        vault: Arc<Vault>,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        let profile_roles = config
            .profiles
            .iter()
            .filter_map(|p| match &p.issuer {
                ProfileIssuer::Vault { role, .. } => Some((p.name.clone(), role.clone())),
                ProfileIssuer::Local => None,
            })
            .collect();
        Arc::new(Self {
            store,
            vault,
            clock,
            mounts: config.inventory.vault_mounts.clone(),
            profile_roles,
            concurrency: config.inventory.sync_concurrency,
            running: tokio::sync::Mutex::new(()),
        })
    }

    /// Syncs every mount now, one after another; a mount that fails is
    /// logged and the others go on.
    pub async fn sync_all(&self) -> Vec<Result<SyncReport, SyncError>> {
        let _one_at_a_time = self.running.lock().await;
        let mut reports = Vec::new();
        for mount in &self.mounts {
            let report = self.sync_mount(mount).await;
            match &report {
                Ok(report) if report.stored + report.revoked > 0 || report.linked > 0 => {
                    tracing::info!(
                        mount = %report.mount,
                        listed = report.listed,
                        stored = report.stored,
                        revoked = report.revoked,
                        linked = report.linked,
                        superseded = report.superseded,
                        "inventory synced from Vault"
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "inventory sync from Vault failed; it goes on from here next time");
                }
            }
            reports.push(report);
        }
        reports
    }

    /// Runs [`InventorySync::sync_all`] every `interval`, forever, the
    /// first one `interval` after start: a restart does not list every
    /// mount again at once, and a start is not slowed by it.
    pub async fn run(self: Arc<Self>, interval: Duration) {
        tokio::time::sleep(interval).await;
        crate::util::periodic::every(interval, || {
            let sync = self.clone();
            async move {
                sync.sync_all().await;
            }
        })
        .await
    }

    async fn sync_mount(&self, mount: &str) -> Result<SyncReport, SyncError> {
        let (vault_error, store_error) = (SyncError::vault(mount), SyncError::store(mount));
        let mut report = SyncReport {
            mount: mount.to_owned(),
            ..SyncReport::default()
        };
        let listed = self
            .vault
            .list_certificates(mount)
            .await
            .map_err(vault_error)?;
        report.listed = listed.len();
        let known = self
            .store
            .known_vault_serials(mount)
            .await
            .map_err(store_error)?;
        let unseen: Vec<String> = listed
            .into_iter()
            .filter(|serial| !known.contains(&normalize_serial(serial)))
            .collect();
        for chunk in unseen.chunks(BATCH) {
            let reads: Vec<_> = stream::iter(chunk.to_vec())
                .map(|serial| {
                    let (vault, mount) = (self.vault.clone(), mount.to_owned());
                    async move {
                        let read = vault.read_certificate(&mount, &serial).await;
                        (serial, read)
                    }
                })
                .buffer_unordered(self.concurrency.max(1))
                .collect()
                .await;
            let now = self.clock.now();
            let mut batch = Vec::new();
            let mut failure = None;
            for (serial, read) in reads {
                match read {
                    Ok(Some(stored)) => {
                        match parse(mount, &normalize_serial(&serial), &stored, now) {
                            Some(certificate) => batch.push(certificate),
                            None => {
                                tracing::warn!(%mount, %serial, "Vault's certificate does not parse; skipped")
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(error) => failure = Some(error),
                }
            }
            // What was read is kept even when a read failed: the next sync
            // starts after it.
            report.stored += self
                .store
                .insert_vault_certificates(batch)
                .await
                .map_err(store_error)?;
            if let Some(error) = failure {
                return Err(vault_error(error));
            }
        }
        report.revoked = self.mark_revoked(mount).await?;
        report.linked = self.link_lost_answers(mount).await.map_err(store_error)?;
        report.superseded = self
            .store
            .mark_vault_superseded(mount)
            .await
            .map_err(store_error)?;
        Ok(report)
    }

    /// Marks what `LIST <mount>/certs/revoked` names and the inventory
    /// holds as valid, at the time Vault says it was revoked.
    async fn mark_revoked(&self, mount: &str) -> Result<u64, SyncError> {
        let (vault_error, store_error) = (SyncError::vault(mount), SyncError::store(mount));
        let revoked = self.vault.list_revoked(mount).await.map_err(vault_error)?;
        let unrevoked = self
            .store
            .unrevoked_vault_serials(mount)
            .await
            .map_err(store_error)?;
        let newly: Vec<&String> = revoked
            .iter()
            .filter(|serial| unrevoked.contains(&normalize_serial(serial)))
            .collect();
        let mut marked = Vec::new();
        for serial in newly {
            let at = match self.vault.read_certificate(mount, serial).await {
                Ok(Some(stored)) if stored.revocation_time > 0 => stored.revocation_time,
                Ok(_) => self.clock.now(),
                Err(error) => return Err(vault_error(error)),
            };
            marked.push((normalize_serial(serial), at));
        }
        self.store
            .mark_vault_revoked(mount, marked)
            .await
            .map_err(store_error)
    }

    /// Links each certificate of `mount` over the key and for exactly the
    /// names of an order whose answer was lost to that order.
    async fn link_lost_answers(&self, mount: &str) -> Result<usize, StoreError> {
        let mut linked = 0;
        for answer in self.store.unlinked_lost_answers().await? {
            let Some(key) = public_key_sha256(&answer.csr) else {
                continue;
            };
            let wanted = order_names(&answer);
            let candidates = self
                .store
                .unlinked_vault_certificates_by_key(mount, &key)
                .await?;
            let found = candidates
                .into_iter()
                .find(|c| c.names.iter().cloned().collect::<BTreeSet<_>>() == wanted);
            if let Some(certificate) = found {
                let role = self.profile_roles.get(&answer.profile).map(String::as_str);
                if self
                    .store
                    .link_vault_certificate(mount, &certificate.serial, &answer, role)
                    .await?
                {
                    tracing::warn!(
                        order = %answer.order_id,
                        account = %answer.account_id,
                        %mount,
                        serial = %certificate.serial,
                        "found at Vault the certificate of an order whose answer was lost; linked it to the order"
                    );
                    linked += 1;
                }
            }
        }
        Ok(linked)
    }
}
