//! Fills a data dir with many issued certificates, for the figures that
//! depend on how much the database holds (`/metrics`, memory at rest, the
//! issuance rate at 100k certificates).
//!
//! Every row is written by certgate's own store functions, in the order an
//! issuance writes them (order with its authorization and challenge, the
//! challenge valid, finalize, the certificate with the order turning valid,
//! and the two audit events), and every certificate is signed by the data
//! dir's embedded CA. Only the HTTP and the validation are left out: about
//! 500 certificates a second on two cores, so 100k take a few minutes.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certgate::audit::{AuditEvent, AuditLog, SigningCa};
use certgate::config::AuditLogTarget;
use certgate::issuer::local::{EmbeddedCa, LocalIssuer};
use certgate::issuer::{Issuer, SignRequest};
use certgate::protocol::challenge::ChallengeKind;
use certgate::protocol::identifier::Identifier;
use certgate::store::{
    Lease, NewAccount, NewAuthorization, NewCertificate, NewChallenge, NewOrder,
    OrderAuthorization, Store, ValidationOutcome,
};
use certgate::util::ids::{challenge_token, resource_id};

use crate::client::AccountKey;

/// Certificates written at once: the writer takes them one transaction at
/// a time, and a few in flight keep it busy.
const CONCURRENCY: usize = 16;
/// Certificates per account, roughly a busy client's share.
const PER_ACCOUNT: usize = 100;
/// Lifetimes are spread over this many days, so the expiry gauges count
/// something in each horizon.
const LIFETIME_DAYS: u64 = 90;
/// The lease owner the seeder's validations and issuances are recorded under.
const SEEDER: &str = "certgate-bench-seed";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}

/// What every seeding task shares.
struct Seeder {
    store: Store,
    issuer: LocalIssuer,
    audit: AuditLog,
    profile: String,
    /// One P-256 CSR key: each certificate is a new signature, which is
    /// what costs; a new key per row would only slow the seeding down.
    csr_key: rcgen::KeyPair,
}

impl Seeder {
    async fn account(&self) -> anyhow::Result<String> {
        let key = AccountKey::generate()?;
        let id = resource_id();
        let new = NewAccount {
            key_thumbprint: key.thumbprint,
            jwk: key.jwk,
            contact: Vec::new(),
            tos_agreed: Some(true),
        };
        self.store.create_account(&id, &new, now()).await?;
        Ok(id)
    }

    /// One certificate for `name`, issued to `account` as an issuance writes it.
    async fn certificate(&self, account: &str, name: String, index: usize) -> anyhow::Result<()> {
        let (order_id, authz_id, challenge_id) = (resource_id(), resource_id(), resource_id());
        let identifier = Identifier::dns(name.clone());
        let order = NewOrder {
            id: order_id.clone(),
            account_id: account.to_owned(),
            profile: self.profile.clone(),
            identifiers: vec![identifier.clone()],
            expires_at: now() + 7 * 86_400,
            authorizations: vec![OrderAuthorization::New(NewAuthorization {
                id: authz_id,
                identifier: identifier.clone(),
                wildcard: false,
                expires_at: now() + 7 * 86_400,
                challenges: vec![NewChallenge {
                    id: challenge_id.clone(),
                    kind: ChallengeKind::Http01,
                    token: challenge_token(),
                }],
            })],
            replaces: None,
        };
        let refused = self
            .store
            .create_order_within_limits(&order, &Default::default(), now())
            .await?;
        refused.map_err(|r| anyhow::anyhow!("order refused: {r:?}"))?;
        self.audit
            .record(AuditEvent::OrderCreated {
                order: order_id.clone(),
                account: account.to_owned(),
                profile: self.profile.clone(),
                identifiers: vec![identifier],
                replaces: None,
            })
            .await;
        // The seeder is the only process on its data dir: its lease is
        // taken and ended within the few statements below.
        let lease = Lease {
            owner: SEEDER.to_owned(),
            until: now() + 60,
        };
        anyhow::ensure!(
            self.store
                .start_challenge(&challenge_id, now(), &lease)
                .await?
        );
        let valid_until = now() + 30 * 86_400;
        let outcome = ValidationOutcome::Valid;
        let finished = self
            .store
            .finish_challenge(&challenge_id, &outcome, now(), valid_until, SEEDER)
            .await?;
        anyhow::ensure!(finished, "challenge {challenge_id} not finished");

        let mut params = rcgen::CertificateParams::new(vec![name.clone()])?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr_der = params.serialize_request(&self.csr_key)?.der().to_vec();
        let began = self
            .store
            .begin_finalize(&order_id, &csr_der, &[], now(), &lease)
            .await?;
        anyhow::ensure!(
            began.map_err(|r| anyhow::anyhow!("{r:?}"))?,
            "order {order_id} not ready"
        );
        let lifetime = Duration::from_secs(86_400 * (1 + index as u64 % LIFETIME_DAYS));
        let request = SignRequest {
            csr_der,
            names: vec![name],
            lifetime: Some(lifetime),
        };
        let issued = self.issuer.sign(&request).await?;
        let certificate = NewCertificate {
            id: resource_id(),
            serial: issued.serial,
            names: request.names,
            chain_pem: issued.chain_pem,
            not_before: issued.not_before,
            not_after: issued.not_after,
        };
        let completed = self
            .store
            .complete_order(&order_id, &certificate, now())
            .await?;
        anyhow::ensure!(completed, "order {order_id} not processing");
        self.audit
            .record(AuditEvent::CertificateIssued {
                serial: certificate.serial,
                names: certificate.names,
                profile: self.profile.clone(),
                account: account.to_owned(),
                order: order_id,
                not_after: certgate::util::clock::rfc3339(certificate.not_after),
                ca: SigningCa::Embedded,
            })
            .await;
        Ok(())
    }
}

/// Adds `count` certificates of `profile` to the SQLite database in
/// `data_dir` (created with its embedded CA if new). Returns how long it took.
pub async fn seed(data_dir: &Path, profile: &str, count: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    std::fs::create_dir_all(data_dir)?;
    let ca = EmbeddedCa::load_or_create(&data_dir.join("ca"))?;
    let url = format!("sqlite://{}", data_dir.join("certgate.db").display());
    let store = Store::open(&url).await?;
    let seeder = Arc::new(Seeder {
        store: store.clone(),
        issuer: LocalIssuer::new(Arc::new(ca), Duration::from_secs(90 * 86_400)),
        audit: AuditLog::open(&AuditLogTarget::Off, store.clone())?,
        profile: profile.to_owned(),
        csr_key: rcgen::KeyPair::generate()?,
    });
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (seeder, next) = (seeder.clone(), next.clone());
        tasks.spawn(async move {
            let mut account = seeder.account().await?;
            let mut issued = 0;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return anyhow::Ok(());
                }
                if issued == PER_ACCOUNT {
                    (account, issued) = (seeder.account().await?, 0);
                }
                let name = format!("seed-{index}.seed.bench.test");
                seeder.certificate(&account, name, index).await?;
                issued += 1;
                if (index + 1) % 10_000 == 0 {
                    eprintln!("seeded {} certificates", index + 1);
                }
            }
        });
    }
    while let Some(task) = tasks.join_next().await {
        task??;
    }
    store.close().await;
    Ok(started.elapsed())
}
