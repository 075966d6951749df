//! The CA health check of a Vault mount: its CA chain (`cert/ca_chain`) and
//! CRL (`cert/crl`) as gauges, a role whose certificates would outlive the
//! mount's intermediate, and a CRL past its next update, seen by a certgate
//! whose clock runs four days ahead of the stand-in's (the stand-in signs
//! each CRL when asked, current for Vault's default 72 hours).

use std::time::Duration;

use certgate::app::Substitutes;
use certgate_testkit::instance::{Instance, SettableClock};
use certgate_testkit::openmetrics;
use certgate_testkit::vault::{Mount, Role, StandinConfig, VaultStandin, SECRET_ID};
use x509_parser::prelude::{FromDer, X509Certificate};

const DAY: u64 = 86_400;

/// The not-after (unix seconds) of each certificate of the mount's chain,
/// by common name, as Vault serves it.
async fn chain_at_vault(standin: &VaultStandin) -> Vec<(String, i64)> {
    let chain = reqwest::get(format!("{}/v1/pki_int/ca_chain", standin.addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    pem::parse_many(chain)
        .unwrap()
        .iter()
        .map(|pem| {
            let (_, certificate) = X509Certificate::from_der(pem.contents()).unwrap();
            let name = certificate
                .subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned();
            (name, certificate.validity().not_after.timestamp())
        })
        .collect()
}

#[tokio::test]
async fn a_mount_whose_intermediate_ends_before_its_role_and_whose_crl_is_stale_is_flagged() {
    let standin = VaultStandin::start(
        StandinConfig::new()
            .mount(
                Mount::new("pki_int")
                    .ca_validity(Duration::from_secs(20 * DAY))
                    .role(Role::lab("lab-internal").ttl(30 * DAY)),
            )
            .policy("certgate", certgate_testkit::vault::CERTGATE_POLICY)
            .certgate_approle(SECRET_ID),
    )
    .await;
    let secrets = tempfile::tempdir().unwrap();
    let config = format!(
        "default_profile = \"local\"\n{}[profiles.local]\nissuer = \"local\"\nttl = \"24h\"\n\
         [profiles.lab]\nissuer = \"vault\"\nmount = \"pki_int\"\nrole = \"lab-internal\"\n",
        standin.approle_config(secrets.path(), SECRET_ID)
    );
    let clock = SettableClock::now_real();
    clock.advance(Duration::from_secs(4 * DAY));
    let instance = Instance::start_with_substitutes(
        Some(config),
        Substitutes {
            clock: Some(clock.clone()),
            ..Substitutes::default()
        },
    )
    .await;

    let https = certgate_testkit::raw_client::https_trusting(&instance.root_pem_path());
    let scrape = openmetrics::scrape_until_present(
        &https,
        &format!("{}/metrics", instance.base_url()),
        "certgate_ca_check_succeeded",
        &[("ca", "pki_int")],
    )
    .await;
    assert_eq!(
        scrape.value("certgate_ca_check_succeeded", &[("ca", "pki_int")]),
        1.0
    );
    let chain = chain_at_vault(&standin).await;
    assert!(!chain.is_empty());
    for (subject, not_after) in &chain {
        assert_eq!(
            scrape.value(
                "certgate_ca_certificate_not_after_seconds",
                &[("ca", "pki_int"), ("subject", subject)]
            ),
            *not_after as f64,
            "{subject}"
        );
    }
    // 30-day certificates under an intermediate with 16 days left (by
    // certgate's clock); the 24-hour embedded profile is fine.
    assert_eq!(
        scrape.value("certgate_ca_expires_before_leaves", &[("profile", "lab")]),
        1.0
    );
    assert_eq!(
        scrape.value("certgate_ca_expires_before_leaves", &[("profile", "local")]),
        0.0
    );
    assert_eq!(
        scrape.value("certgate_crl_stale", &[("ca", "pki_int")]),
        1.0
    );
    assert_eq!(
        scrape.value("certgate_crl_stale", &[("ca", "embedded")]),
        0.0
    );

    let status = https
        .get(format!("{}/status", instance.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let intermediate = &chain[0].0;
    assert!(
        status.contains(&format!(
            "profile lab: CA certificate &quot;{intermediate}&quot; of pki_int expires at"
        )),
        "{status}"
    );
    assert!(
        status.contains("the CRL of pki_int was due for an update at"),
        "{status}"
    );
    assert!(
        !status.contains("profile local: CA certificate"),
        "{status}"
    );
}
