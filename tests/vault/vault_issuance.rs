//! Issuing through a Vault profile, end to end: certgate in-process, the
//! Vault stand-in as its CA, and a raw ACME client. Covers the role's name
//! rules at newOrder, what each kind of Vault failure does to an order, and
//! the promise that no order is ever signed twice.

use certgate_testkit::chain_ders;
use certgate_testkit::instance::Instance;
use certgate_testkit::raw_client::RawClient;
use certgate_testkit::vault::{Role, StandinConfig, VaultStandin, SECRET_ID};
use serde_json::{json, Value};
use x509_parser::prelude::*;

/// `[profiles.<name>]` signing with `pki_int/<role>`, plus `extra` keys.
fn vault_profile(name: &str, role: &str, extra: &str) -> String {
    format!(
        "[profiles.{name}]\nissuer = \"vault\"\nmount = \"pki_int\"\nrole = \"{role}\"\n{extra}\n"
    )
}

/// certgate with an embedded-CA default profile and the given Vault
/// profiles, logging in to the stand-in with AppRole.
struct Lab {
    standin: VaultStandin,
    instance: Instance,
    _secrets: tempfile::TempDir,
}

impl Lab {
    async fn start(standin: StandinConfig, profiles: &str) -> Self {
        let standin = VaultStandin::start(standin).await;
        let secrets = tempfile::tempdir().unwrap();
        let config = format!(
            "default_profile = \"local\"\n{}[profiles.local]\nissuer = \"local\"\n{profiles}",
            standin.approle_config(secrets.path(), SECRET_ID)
        );
        let instance = Instance::start_with_config(Some(config)).await;
        Self {
            standin,
            instance,
            _secrets: secrets,
        }
    }

    /// Waits until the stand-in has answered a sign request with `status`.
    async fn sign_answered(&self, status: u16) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while !self
            .standin
            .requests()
            .iter()
            .any(|r| r.path.contains("/sign/") && r.status == status)
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no sign request answered {status}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// An order for `names`, validated and finalized; returns (order URL, final order).
async fn issue(lab: &Lab, client: &RawClient, names: &[&str]) -> (String, Value) {
    let (order_url, order) = client.ready_order(&lab.instance.http01, names).await;
    client.finalize(&order, names).await;
    let order = client
        .wait_for_order(&order_url, &["valid", "invalid"])
        .await;
    (order_url, order)
}

fn problem_type(problem: &Value) -> &str {
    problem["type"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("urn:ietf:params:acme:error:")
}

#[tokio::test]
async fn a_vault_profile_issues_a_chain_that_leads_to_vaults_root() {
    let lab = Lab::start(
        StandinConfig::lab(),
        &vault_profile("lab", "lab-internal", ""),
    )
    .await;
    let client = lab.instance.registered_client("lab").await;
    assert!(client.url("newOrder").ends_with("/acme/lab/new-order"));
    let index = client
        .http
        .get(format!("{}/", lab.instance.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(index.contains("/acme/lab/directory"), "{index}");
    assert!(index.contains("(profile local)"), "{index}");

    let names = ["web.lab.example", "api.lab.example"];
    let (_, order) = issue(&lab, &client, &names).await;
    assert_eq!(order["status"], "valid", "{order}");
    let download = client
        .post(order["certificate"].as_str().unwrap(), None)
        .await;
    let chain = chain_ders(std::str::from_utf8(&download.body).unwrap());
    assert_eq!(chain.len(), 2, "leaf + Vault's intermediate, not the root");

    let intermediate_pem = lab.standin.intermediate_pem("pki_int").unwrap();
    let root_der = ::pem::parse(lab.standin.root_ca_pem())
        .unwrap()
        .into_contents();
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let (_, intermediate) = X509Certificate::from_der(&chain[1]).unwrap();
    let (_, root) = X509Certificate::from_der(&root_der).unwrap();
    assert_eq!(
        chain[1],
        ::pem::parse(intermediate_pem).unwrap().into_contents()
    );
    assert_eq!(leaf.issuer(), intermediate.subject());
    leaf.verify_signature(Some(intermediate.public_key()))
        .expect("leaf signed by Vault's intermediate");
    intermediate
        .verify_signature(Some(root.public_key()))
        .expect("intermediate signed by Vault's root");

    let calls = lab.standin.sign_calls();
    assert_eq!(calls.len(), 1, "one sign call per order: {calls:?}");
    assert_eq!(
        (calls[0].mount.as_str(), calls[0].role.as_str()),
        ("pki_int", "lab-internal")
    );
    let mut sans = calls[0].csr_dns_names.clone();
    sans.sort();
    assert_eq!(sans, ["api.lab.example", "web.lab.example"]);
}

#[tokio::test]
async fn issuer_ref_signs_through_the_issuer_path() {
    let lab = Lab::start(
        StandinConfig::lab(),
        &vault_profile(
            "lab",
            "lab-internal",
            "issuer_ref = \"pki_int-issuer\"\nttl = \"72h\"",
        ),
    )
    .await;
    let client = lab.instance.registered_client("lab").await;
    let (_, order) = issue(&lab, &client, &["ref.lab.example"]).await;
    assert_eq!(order["status"], "valid", "{order}");
    assert!(
        lab.standin.requests().iter().any(|r| r.path
            == "pki_int/issuer/pki_int-issuer/sign/lab-internal"
            && r.status == 200),
        "{:?}",
        lab.standin.requests()
    );
    let download = client
        .post(order["certificate"].as_str().unwrap(), None)
        .await;
    let chain = chain_ders(std::str::from_utf8(&download.body).unwrap());
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let validity = leaf.validity();
    let lifetime = validity.not_after.timestamp() - validity.not_before.timestamp();
    // Vault back-dates notBefore by 30 s.
    assert_eq!(lifetime, 72 * 3600 + 30, "the profile's ttl was sent");
}

/// The roles of the name-rule table, each served as a profile of its name.
fn rule_roles() -> Vec<Role> {
    let base = |name: &str| Role::new(name).key_type("any");
    vec![
        base("sub")
            .allowed_domains(["lab.example"])
            .allow_subdomains(true),
        base("bare")
            .allowed_domains(["lab.example"])
            .allow_bare_domains(true),
        base("glob")
            .allowed_domains(["web-*.lab.example"])
            .allow_glob_domains(true),
        base("nowild")
            .allowed_domains(["lab.example"])
            .allow_subdomains(true)
            .allow_wildcard_certificates(false),
        base("nolocal")
            .allowed_domains(["lab.example"])
            .allow_subdomains(true)
            .allow_localhost(false),
        base("any").allow_any_name(true),
        base("case")
            .allowed_domains(["Lab.Example"])
            .allow_subdomains(true)
            .allow_bare_domains(true),
        base("empty"),
    ]
}

#[tokio::test]
async fn names_a_role_refuses_are_rejected_at_new_order() {
    let roles = rule_roles();
    let profiles: String = roles
        .iter()
        .map(|r| vault_profile(&r.name, &r.name, ""))
        .collect();
    let lab = Lab::start(
        StandinConfig::pki_int(roles).certgate_approle(SECRET_ID),
        &profiles,
    )
    .await;
    let client = lab.instance.registered_client("sub").await;
    let base = lab.instance.base_url();

    // (profile, identifiers, the identifiers the role refuses)
    let table: &[(&str, &[&str], &[&str])] = &[
        ("sub", &["a.lab.example"], &[]),
        ("sub", &["deep.a.lab.example"], &[]),
        ("sub", &["lab.example"], &["lab.example"]),
        ("sub", &["*.lab.example"], &[]),
        ("sub", &["*.a.lab.example"], &[]),
        (
            "sub",
            &["a.lab.example.evil.test"],
            &["a.lab.example.evil.test"],
        ),
        ("sub", &["evil-lab.example"], &["evil-lab.example"]),
        ("sub", &["localhost"], &[]),
        ("sub", &["localdomain"], &[]),
        ("sub", &["a.lab.example", "evil.test"], &["evil.test"]),
        ("nolocal", &["localhost"], &["localhost"]),
        ("bare", &["lab.example"], &[]),
        ("bare", &["a.lab.example"], &["a.lab.example"]),
        ("bare", &["*.lab.example"], &["*.lab.example"]),
        ("glob", &["web-1.lab.example"], &[]),
        ("glob", &["web-1.eu.lab.example"], &[]),
        ("glob", &["db-1.lab.example"], &["db-1.lab.example"]),
        ("nowild", &["*.lab.example"], &["*.lab.example"]),
        ("nowild", &["a.lab.example"], &[]),
        ("any", &["anything.example.org"], &[]),
        ("any", &["*.example.org"], &[]),
        ("case", &["lab.example"], &[]),
        ("case", &["a.lab.example"], &["a.lab.example"]),
        ("empty", &["a.lab.example"], &["a.lab.example"]),
        ("empty", &["localhost"], &[]),
    ];
    for (profile, identifiers, refused) in table {
        let body = json!({"identifiers": identifiers
            .iter()
            .map(|n| json!({"type": "dns", "value": n}))
            .collect::<Vec<_>>()});
        let reply = client
            .post(&format!("{base}/acme/{profile}/new-order"), Some(body))
            .await;
        let case = format!("{profile} {identifiers:?}");
        if refused.is_empty() {
            assert_eq!(reply.status, 201, "{case}: {:?}", reply.json());
            continue;
        }
        let problem = reply.json();
        assert_eq!(reply.status, 400, "{case}: {problem}");
        assert_eq!(problem_type(&problem), "rejectedIdentifier", "{case}");
        let named: Vec<&str> = problem["subproblems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["identifier"]["value"].as_str().unwrap())
            .collect();
        assert_eq!(named, *refused, "{case}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(refused[0]) || refused.len() > 1,
            "{case}: {problem}"
        );
    }
    assert_eq!(
        lab.standin.sign_count(),
        0,
        "refused at newOrder, never signed"
    );
    let role_reads = lab
        .standin
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("pki_int/roles/"))
        .count();
    assert_eq!(role_reads, 8, "each role read once, then cached");
}

/// Sends 16 concurrent newOrders to a fresh lab whose Vault answers after
/// 200 ms, so that all arrive while the first read of the role is out;
/// `prepare` sets up the stand-in's faults first. Returns the newOrders'
/// statuses and how many times the role was read.
async fn new_order_burst(prepare: impl FnOnce(&VaultStandin)) -> (Vec<u16>, usize) {
    // With its own ttl the profile needs no role to know its lifetime, so
    // nothing reads the role before the burst.
    let lab = Lab::start(
        StandinConfig::lab(),
        &vault_profile("lab", "lab-internal", "ttl = \"72h\""),
    )
    .await;
    let client = lab.instance.registered_client("lab").await;
    prepare(&lab.standin);
    lab.standin.set_delay(std::time::Duration::from_millis(200));
    let url = format!("{}/acme/lab/new-order", lab.instance.base_url());
    let orders = (0..16).map(|n| {
        let body =
            json!({"identifiers": [{"type": "dns", "value": format!("burst-{n}.lab.example")}]});
        client.post(&url, Some(body))
    });
    let statuses = futures_util::future::join_all(orders)
        .await
        .iter()
        .map(|reply| reply.status)
        .collect();
    let role_reads = lab
        .standin
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("pki_int/roles/"))
        .count();
    (statuses, role_reads)
}

#[tokio::test]
async fn a_burst_of_new_orders_reads_the_role_once() {
    let (statuses, role_reads) = new_order_burst(|_| {}).await;
    assert!(statuses.iter().all(|&s| s == 201), "{statuses:?}");
    assert_eq!(
        role_reads, 1,
        "concurrent newOrders share one read of the role"
    );
}

#[tokio::test]
async fn a_burst_of_new_orders_shares_one_failed_read_of_the_role() {
    // The role was never read, and Vault fails the first read: the
    // newOrders waiting on it take its failure rather than each asking
    // again in turn.
    let (statuses, role_reads) = new_order_burst(|standin| standin.fail_next(1, 500)).await;
    assert_eq!(role_reads, 1, "newOrders answered {statuses:?}");
    assert!(statuses.iter().all(|&s| s == 503), "{statuses:?}");
}

/// Vault sealed while an order is being signed: the order waits in
/// `processing` (with Retry-After), across a restart if asked, and is
/// signed exactly once after Vault unseals.
async fn sealed_during_finalize(restart: bool) {
    let mut lab = Lab::start(
        StandinConfig::lab(),
        &vault_profile("lab", "lab-internal", ""),
    )
    .await;
    let client = lab.instance.registered_client("lab").await;
    let names = ["sealed.lab.example"];
    let (order_url, order) = client.ready_order(&lab.instance.http01, &names).await;
    lab.standin.seal();
    let reply = client.finalize(&order, &names).await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    lab.sign_answered(503).await;
    let polled = client.post(&order_url, None).await;
    assert_eq!(polled.json()["status"], "processing");
    assert!(
        polled.header("retry-after").is_some(),
        "polls are told when to come back"
    );

    if restart {
        lab.instance.restart().await;
        let order_id = order_url.rsplit('/').next().unwrap();
        let stored = lab.instance.store().order(order_id).await.unwrap().unwrap();
        assert_eq!(
            stored.sign_attempted_at, None,
            "a graceful stop leaves no attempt open"
        );
        assert_eq!(
            client.post(&order_url, None).await.json()["status"],
            "processing"
        );
    }
    lab.standin.unseal();
    let order = client
        .wait_for_order(&order_url, &["valid", "invalid"])
        .await;
    assert_eq!(order["status"], "valid", "{order}");
    assert_eq!(
        lab.standin.sign_count(),
        1,
        "{:?}",
        lab.standin.sign_calls()
    );
    assert_eq!(lab.standin.issued_count(), 1);
}

#[tokio::test]
async fn vault_sealed_during_finalize_keeps_the_order_processing_until_it_unseals() {
    sealed_during_finalize(false).await;
}

#[tokio::test]
async fn vault_sealed_during_finalize_survives_a_restart() {
    sealed_during_finalize(true).await;
}

#[tokio::test]
async fn vault_errors_and_rate_limits_are_waited_out() {
    let lab = Lab::start(
        StandinConfig::lab(),
        &vault_profile("lab", "lab-internal", ""),
    )
    .await;
    let client = lab.instance.registered_client("lab").await;
    let names = ["retry.lab.example"];
    let (order_url, order) = client.ready_order(&lab.instance.http01, &names).await;
    lab.standin.fail_next(1, 502);
    lab.standin.rate_limit_next(1);
    client.finalize(&order, &names).await;
    let order = client
        .wait_for_order(&order_url, &["valid", "invalid"])
        .await;
    assert_eq!(order["status"], "valid", "{order}");
    let statuses: Vec<u16> = lab
        .standin
        .requests()
        .iter()
        .filter(|r| r.path.contains("/sign/"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 502, 200]);
    assert_eq!(lab.standin.sign_count(), 1);
}

#[tokio::test]
async fn a_lost_answer_fails_the_order_rather_than_signing_twice() {
    let lab = Lab::start(
        StandinConfig::lab(),
        &vault_profile("lab", "lab-internal", ""),
    )
    .await;
    let client = lab.instance.registered_client("lab").await;
    let names = ["lost.lab.example"];
    let (order_url, order) = client.ready_order(&lab.instance.http01, &names).await;
    lab.standin.drop_next_responses(1);
    client.finalize(&order, &names).await;
    let order = client
        .wait_for_order(&order_url, &["valid", "invalid"])
        .await;
    assert_eq!(order["status"], "invalid", "{order}");
    assert_eq!(problem_type(&order["error"]), "serverInternal");
    assert!(order["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("new order"));
    assert_eq!(
        lab.standin.issued_count(),
        1,
        "Vault signed once and was never asked again"
    );
}

#[tokio::test]
async fn vault_refusals_keep_their_meaning() {
    let rsa_only = Role::new("rsa-only")
        .allowed_domains(["lab.example"])
        .allow_subdomains(true);
    let lab = Lab::start(
        StandinConfig::pki_int([Role::lab("lab-internal"), rsa_only]).certgate_approle(SECRET_ID),
        &(vault_profile("lab", "lab-internal", "") + &vault_profile("rsa", "rsa-only", "")),
    )
    .await;

    // A 400 about the CSR is badCSR with Vault's own words.
    let rsa_client = lab.instance.registered_client("rsa").await;
    let (_, order) = issue(&lab, &rsa_client, &["ec.lab.example"]).await;
    assert_eq!(order["status"], "invalid");
    assert_eq!(problem_type(&order["error"]), "badCSR", "{order}");
    assert!(
        order["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("role requires keys of type rsa"),
        "{order}"
    );

    // A role narrowed between newOrder and finalize refuses the name at
    // signing: rejectedIdentifier naming it, and the next newOrder reads
    // the new rules.
    let client = lab.instance.registered_client("lab").await;
    let names = ["moved.lab.example"];
    let (order_url, order) = client.ready_order(&lab.instance.http01, &names).await;
    lab.standin.put_role(
        "pki_int",
        Role::lab("lab-internal").allowed_domains(["elsewhere.example"]),
    );
    client.finalize(&order, &names).await;
    let order = client
        .wait_for_order(&order_url, &["valid", "invalid"])
        .await;
    assert_eq!(
        problem_type(&order["error"]),
        "rejectedIdentifier",
        "{order}"
    );
    assert_eq!(
        order["error"]["subproblems"][0]["identifier"]["value"],
        names[0]
    );
    let reply = client
        .post(
            &client.url("newOrder"),
            Some(json!({"identifiers": [{"type": "dns", "value": "again.lab.example"}]})),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.problem_type(), "rejectedIdentifier");
}

#[tokio::test]
async fn a_policy_that_denies_signing_is_a_server_error_after_one_fresh_login() {
    let lab = Lab::start(
        // The `certgate` policy replaced by one that reads roles but cannot sign.
        StandinConfig::lab().policy("certgate", ["pki_int/roles/*"]),
        &vault_profile("lab", "lab-internal", ""),
    )
    .await;
    let client = lab.instance.registered_client("lab").await;
    let (_, order) = issue(&lab, &client, &["denied.lab.example"]).await;
    assert_eq!(order["status"], "invalid");
    assert_eq!(problem_type(&order["error"]), "serverInternal", "{order}");
    assert_eq!(
        lab.standin.logins().len(),
        2,
        "logged in again once before giving up"
    );
    assert_eq!(lab.standin.sign_count(), 0);
}

#[tokio::test]
async fn a_no_store_role_issues_and_certgate_keeps_the_only_copy() {
    let lab = Lab::start(
        StandinConfig::pki_int([Role::lab("lab-internal").no_store(true)])
            .certgate_approle(SECRET_ID),
        &vault_profile("lab", "lab-internal", ""),
    )
    .await;
    let client = lab.instance.registered_client("lab").await;
    let (_, order) = issue(&lab, &client, &["kept.lab.example"]).await;
    assert_eq!(order["status"], "valid", "{order}");
    let download = client
        .post(order["certificate"].as_str().unwrap(), None)
        .await;
    assert_eq!(download.status, 200);
    let chain = chain_ders(std::str::from_utf8(&download.body).unwrap());
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let serial = leaf.raw_serial_as_string();
    assert!(
        lab.standin.stored_cert("pki_int", &serial).is_none(),
        "Vault kept no copy"
    );
    assert_eq!(lab.standin.issued_count(), 1);
}

#[tokio::test]
async fn an_ip_identifier_issues_through_a_role_that_allows_ip_sans() {
    // An order of addresses alone has no DNS name to put in a CN, so the
    // role must not require one.
    let ip_role = Role::lab("lab-internal").require_cn(false);
    let no_ip_role = Role::new("no-ip")
        .allow_any_name(true)
        .allow_ip_sans(false)
        .key_type("any");
    let lab = Lab::start(
        StandinConfig::pki_int([ip_role, no_ip_role]).certgate_approle(SECRET_ID),
        &(vault_profile("lab", "lab-internal", "") + &vault_profile("no-ip", "no-ip", "")),
    )
    .await;
    let client = lab.instance.registered_client("lab").await;
    let (order_url, order) = client.new_order(&["127.0.0.1"]).await;
    assert_eq!(
        order["identifiers"][0],
        json!({"type": "ip", "value": "127.0.0.1"})
    );
    let authz = client
        .post(order["authorizations"][0].as_str().unwrap(), None)
        .await
        .json();
    let offered: Vec<&str> = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        offered,
        ["http-01", "tls-alpn-01"],
        "never dns-01 for an address"
    );

    let (order_url2, order) = client
        .ready_order(&lab.instance.http01, &["127.0.0.1"])
        .await;
    assert_ne!(order_url, order_url2);
    client.finalize(&order, &["127.0.0.1"]).await;
    let order = client
        .wait_for_order(&order_url2, &["valid", "invalid"])
        .await;
    assert_eq!(order["status"], "valid", "{order}");
    let download = client
        .post(order["certificate"].as_str().unwrap(), None)
        .await;
    let chain = chain_ders(std::str::from_utf8(&download.body).unwrap());
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let sans: Vec<GeneralName> = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .clone();
    assert_eq!(sans, [GeneralName::IPAddress(&[127, 0, 0, 1])]);
    let calls = lab.standin.sign_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].csr_ip_sans, ["127.0.0.1"]);

    // A role without allow_ip_sans refuses the address at newOrder.
    let reply = client
        .post(
            &format!("{}/acme/no-ip/new-order", lab.instance.base_url()),
            Some(json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.problem_type(), "rejectedIdentifier");
    assert_eq!(reply.json()["subproblems"][0]["identifier"]["type"], "ip");
}
