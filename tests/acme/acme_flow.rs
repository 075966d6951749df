//! The whole ACME flow, driven by a real client library (instant-acme)
//! against certgate running in-process on an ephemeral port.

use certgate_testkit::chain_ders;
use certgate_testkit::instance::Instance;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use x509_parser::prelude::*;

async fn new_account(instance: &Instance) -> Account {
    let (account, _credentials) = Account::builder_with_root(instance.root_pem_path())
        .unwrap()
        .create(
            &NewAccount {
                contact: &["mailto:ops@lab.example"],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            instance.directory_url(),
            None,
        )
        .await
        .unwrap();
    account
}

fn retry() -> RetryPolicy {
    RetryPolicy::new().timeout(std::time::Duration::from_secs(20))
}

fn dns_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut names: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Checks that `chain` is leaf + intermediate, signed up to the root on disk,
/// and returns the leaf's DNS names.
fn verify_chain(instance: &Instance, chain: &str) -> Vec<String> {
    let ders = chain_ders(chain);
    assert_eq!(ders.len(), 2, "chain is leaf + intermediate");
    let root_pem = std::fs::read_to_string(instance.root_pem_path()).unwrap();
    let root_der = ::pem::parse(root_pem).unwrap().into_contents();
    let (_, leaf) = X509Certificate::from_der(&ders[0]).unwrap();
    let (_, intermediate) = X509Certificate::from_der(&ders[1]).unwrap();
    let (_, root) = X509Certificate::from_der(&root_der).unwrap();
    leaf.verify_signature(Some(intermediate.public_key()))
        .expect("leaf signed by the intermediate");
    intermediate
        .verify_signature(Some(root.public_key()))
        .expect("intermediate signed by the root");
    assert!(!leaf.is_ca());
    assert_eq!(leaf.issuer(), intermediate.subject());
    dns_names(&leaf)
}

/// Waits for `order` to be ready, finalizes it with a fresh key and returns
/// the certificate chain.
async fn finish(order: &mut instant_acme::Order) -> String {
    assert_eq!(
        order.poll_ready(&retry()).await.unwrap(),
        OrderStatus::Ready
    );
    order.finalize().await.unwrap();
    order.poll_certificate(&retry()).await.unwrap()
}

#[tokio::test]
async fn issues_a_certificate_for_two_names_over_http01() {
    let instance = Instance::start().await;
    let account = new_account(&instance).await;
    let identifiers = [
        Identifier::Dns("www.lab.example".into()),
        Identifier::Dns("api.lab.example".into()),
    ];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .unwrap();
    assert_eq!(order.state().status, OrderStatus::Pending);

    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.unwrap();
        assert_eq!(authz.status, AuthorizationStatus::Pending);
        assert!(!authz.wildcard);
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .expect("http-01 offered");
        let key_authorization = challenge.key_authorization();
        instance
            .http01
            .serve(&challenge.token, key_authorization.as_str());
        challenge.set_ready().await.unwrap();
    }
    let chain = finish(&mut order).await;

    assert_eq!(
        verify_chain(&instance, &chain),
        ["api.lab.example", "www.lab.example"]
    );
    let (_, order_state) = order.into_parts();
    assert_eq!(order_state.status, OrderStatus::Valid);
}

#[tokio::test]
async fn issues_a_wildcard_over_dns01_and_offers_it_nothing_else() {
    let instance = Instance::start().await;
    let account = new_account(&instance).await;
    let identifiers = [
        Identifier::Dns("*.home.test".into()),
        Identifier::Dns("home.test".into()),
    ];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .unwrap();
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.unwrap();
        if authz.wildcard {
            let offered: Vec<_> = authz.challenges.iter().map(|c| c.r#type.clone()).collect();
            assert_eq!(
                offered,
                [ChallengeType::Dns01],
                "a wildcard offers dns-01 only"
            );
        }
        let mut challenge = authz
            .challenge(ChallengeType::Dns01)
            .expect("dns-01 offered");
        // Both authorizations are for home.test: the two values stand side by side.
        instance.dns.add_txt(
            "_acme-challenge.home.test",
            &challenge.key_authorization().dns_value(),
        );
        challenge.set_ready().await.unwrap();
    }
    let chain = finish(&mut order).await;
    assert_eq!(
        verify_chain(&instance, &chain),
        ["*.home.test", "home.test"]
    );
}

/// Starts the http-01 challenge of a one-name order and returns the problem
/// the order ends with.
async fn failed_order_problem(instance: &Instance, name: &str) -> instant_acme::Problem {
    let account = new_account(instance).await;
    let identifiers = [Identifier::Dns(name.into())];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .unwrap();
    {
        let mut authorizations = order.authorizations();
        let mut authz = authorizations.next().await.unwrap().unwrap();
        let mut challenge = authz.challenge(ChallengeType::Http01).unwrap();
        // A refused connection fails within the server's answer wait, so
        // the POST already reports it; a failed lookup is tried again for a
        // few seconds first, so the POST answers `processing`.
        match challenge.set_ready().await {
            Ok(()) | Err(instant_acme::Error::Api(_)) => {}
            Err(other) => panic!("challenge POST failed: {other:?}"),
        }
    }
    let problem = match order.poll_ready(&retry()).await {
        Err(instant_acme::Error::Api(problem)) => problem,
        other => panic!("expected the order to fail, got {other:?}"),
    };
    let state = order.refresh().await.unwrap();
    assert_eq!(
        state.error.as_ref().map(|e| &e.detail),
        Some(&problem.detail)
    );
    assert_eq!(order.state().status, OrderStatus::Invalid);
    let mut authorizations = order.authorizations();
    let authz = authorizations.next().await.unwrap().unwrap();
    assert_eq!(authz.status, AuthorizationStatus::Invalid);
    let challenge_problem = authz.challenges[0]
        .error
        .as_ref()
        .expect("challenge has a problem");
    assert_eq!(
        challenge_problem.detail, problem.detail,
        "order and challenge agree"
    );
    problem
}

#[tokio::test]
async fn a_failed_challenge_says_what_was_seen_and_invalidates_the_order() {
    let instance = Instance::start().await;
    // The responder does not know the token: it answers 404.
    let problem = failed_order_problem(&instance, "nas.lab.example").await;
    let detail = problem.detail.as_deref().unwrap_or_default();
    assert_eq!(
        problem.r#type.as_deref(),
        Some("urn:ietf:params:acme:error:unauthorized")
    );
    assert!(detail.contains("404"), "{detail}");
    assert!(detail.contains("127.0.0.1"), "names the address: {detail}");
    assert!(detail.contains("/.well-known/acme-challenge/"), "{detail}");
}

#[tokio::test]
async fn an_unresolvable_name_fails_with_a_dns_problem() {
    let instance = Instance::start().await;
    let problem = failed_order_problem(&instance, "ghost.invalid").await;
    assert_eq!(
        problem.r#type.as_deref(),
        Some("urn:ietf:params:acme:error:dns")
    );
    let detail = problem.detail.as_deref().unwrap_or_default();
    let resolver = instance.dns.addr().to_string();
    assert!(
        detail.contains("ghost.invalid") && detail.contains(&resolver),
        "{detail}"
    );
}
