//! Rate limits: new orders per account, certificates per registered domain,
//! new accounts per client address and pending authorizations per account,
//! each refused with `rateLimited` (429) and `Retry-After`; held across a
//! restart; and unvalidated orders cannot use up a domain's limit.

use certgate_testkit::instance::Instance;
use certgate_testkit::raw_client::{AccountKey, RawClient, Reply};
use serde_json::{json, Value};

async fn account(instance: &Instance) -> RawClient {
    let client = RawClient::registered(&instance.directory_url(), &instance.root_pem_path()).await;
    client
}

/// A newOrder for DNS names, whatever its outcome.
async fn order(client: &RawClient, names: &[&str]) -> Reply {
    let identifiers: Vec<Value> = names
        .iter()
        .map(|n| json!({"type": "dns", "value": n}))
        .collect();
    client
        .post(
            &client.url("newOrder"),
            Some(json!({"identifiers": identifiers})),
        )
        .await
}

/// Asserts `reply` is a `rateLimited` refusal of `bucket`, and returns its
/// `Retry-After` seconds, which must be within (0, `period`].
fn assert_rate_limited(reply: &Reply, bucket: &str, period: u64) -> u64 {
    assert_eq!(reply.status, 429, "{:?}", reply.json());
    assert_eq!(reply.problem_type(), "rateLimited", "{:?}", reply.json());
    assert_eq!(reply.json()["status"], 429);
    let detail = reply.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains(bucket), "{detail}");
    let retry_after: u64 = reply
        .header("retry-after")
        .expect("Retry-After on a rateLimited problem")
        .parse()
        .unwrap();
    assert!(
        retry_after > 0 && retry_after <= period,
        "Retry-After {retry_after}"
    );
    retry_after
}

#[tokio::test]
async fn a_burst_over_the_account_limit_is_refused_across_a_restart() {
    let mut instance =
        Instance::start_with_config(Some("rate_limit_orders_per_account = \"3/1h\"\n".into()))
            .await;
    let client = account(&instance).await;
    for i in 1..=3 {
        let reply = order(&client, &[&format!("n{i}.burst.example")]).await;
        assert_eq!(reply.status, 201, "order {i}: {:?}", reply.json());
    }
    let reply = order(&client, &["n4.burst.example"]).await;
    let account_id = client.kid.as_ref().unwrap().rsplit('/').next().unwrap();
    let bucket = format!("account:{account_id}");
    // One of 3 tokens comes back every 1200 s.
    let first_wait = assert_rate_limited(&reply, &bucket, 3600);
    assert!(first_wait <= 1200, "Retry-After {first_wait}");
    // Nothing of the refused order was stored.
    let orders = client
        .post(&format!("{}/orders", client.kid.as_ref().unwrap()), None)
        .await
        .json();
    assert_eq!(orders["orders"].as_array().unwrap().len(), 3, "{orders}");

    instance.restart().await;

    // The bucket is still empty after the restart.
    let reply = order(&client, &["n5.burst.example"]).await;
    let wait = assert_rate_limited(&reply, &bucket, 3600);
    assert!(wait <= first_wait, "Retry-After {wait} after {first_wait}");
    // Another account has a bucket of its own.
    let other = account(&instance).await;
    let reply = order(&other, &["n6.burst.example"]).await;
    assert_eq!(reply.status, 201, "{:?}", reply.json());
}

/// A certificate for `names` through `client`, validated over http-01.
async fn issue(instance: &Instance, client: &RawClient, names: &[&str]) {
    client.issue(&instance.http01, names).await;
}

#[tokio::test]
async fn unvalidated_orders_cannot_use_up_a_domain_but_certificates_do() {
    let instance = Instance::start_with_config(Some(
        "rate_limit_orders_per_account = \"off\"\nrate_limit_orders_per_domain = \"2/1h\"\n".into(),
    ))
    .await;
    // Fresh accounts order names under five registered domains, six orders
    // each, three times the limit, and validate nothing.
    let domains: Vec<String> = (0..5).map(|k| format!("d{k}.example")).collect();
    for attacker in 0..3 {
        let client = account(&instance).await;
        for i in 0..10 {
            let name = format!("a{attacker}-{i}.{}", domains[i % domains.len()]);
            let reply = order(&client, &[&name]).await;
            assert_eq!(reply.status, 201, "{name}: {:?}", reply.json());
        }
    }
    // Another account still gets its certificates for every one of them.
    let owner = account(&instance).await;
    for domain in &domains {
        issue(&instance, &owner, &[&format!("www.{domain}")]).await;
    }

    // The limit holds for certificates. d0.example has one token left: an
    // order made ready now passes newOrder's check...
    let late = format!("late.{}", domains[0]);
    let (late_url, late_order) = owner.ready_order(&instance.http01, &[&late]).await;
    // ...but another account's certificate takes that token (two names
    // under one domain take one), and then the ready order's finalize and
    // any new order for the domain are refused.
    let other = account(&instance).await;
    issue(
        &instance,
        &other,
        &[
            &format!("x.{}", domains[0]),
            &format!("y.lab.{}", domains[0]),
        ],
    )
    .await;
    let bucket = format!("domain:{}", domains[0]);
    assert_rate_limited(&owner.finalize(&late_order, &[&late]).await, &bucket, 1800);
    assert_eq!(owner.post(&late_url, None).await.json()["status"], "ready");
    assert_rate_limited(
        &order(&other, &[&format!("z.{}", domains[0])]).await,
        &bucket,
        1800,
    );
    assert_rate_limited(&order(&owner, &["*.d0.example"]).await, &bucket, 1800);
    // An order naming it with another domain is refused whole; the other
    // domain is limited only by its own certificates.
    assert_rate_limited(
        &order(&owner, &["v.d1.example", "w.d0.example"]).await,
        &bucket,
        1800,
    );
    issue(&instance, &owner, &["v.d1.example"]).await;
    assert_rate_limited(
        &order(&owner, &["u.d1.example"]).await,
        "domain:d1.example",
        1800,
    );
}

#[tokio::test]
async fn new_accounts_from_one_address_are_limited() {
    let instance =
        Instance::start_with_config(Some("rate_limit_new_accounts_per_ip = \"2/1h\"\n".into()))
            .await;
    let mut first = account(&instance).await;
    account(&instance).await;
    let mut third = RawClient::new(&instance.directory_url(), &instance.root_pem_path()).await;
    let reply = third
        .post(
            &third.url("newAccount"),
            Some(json!({"termsOfServiceAgreed": true})),
        )
        .await;
    assert_rate_limited(&reply, "client:127.0.0.1", 1800);
    // Looking up an existing account (signed with its key, as newAccount
    // is) is not a new one.
    first.kid = None;
    let reply = first
        .post(
            &first.url("newAccount"),
            Some(json!({"onlyReturnExisting": true})),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    // A refusal took nothing: still refused, and for as long.
    third.key = AccountKey::generate();
    let again = third
        .post(
            &third.url("newAccount"),
            Some(json!({"termsOfServiceAgreed": true})),
        )
        .await;
    assert_rate_limited(&again, "client:127.0.0.1", 1800);
}

#[tokio::test]
async fn pending_authorizations_of_an_account_are_capped() {
    let instance =
        Instance::start_with_config(Some("pending_authorizations_per_account = 3\n".into())).await;
    let client = account(&instance).await;
    let reply = order(&client, &["a.cap.example", "b.cap.example"]).await;
    assert_eq!(reply.status, 201, "{:?}", reply.json());
    let authz = reply.json()["authorizations"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = order(&client, &["c.cap.example", "d.cap.example"]).await;
    assert_eq!(reply.status, 429, "{:?}", reply.json());
    assert_eq!(reply.problem_type(), "rateLimited");
    let detail = reply.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("more than 3 pending"), "{detail}");
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=3600).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    // Another account has a cap of its own.
    let other = account(&instance).await;
    assert_eq!(
        order(&other, &["c.cap.example", "d.cap.example"])
            .await
            .status,
        201
    );
    // Deactivating a pending authorization frees its place.
    let reply = client
        .post(&authz, Some(json!({"status": "deactivated"})))
        .await;
    assert_eq!(reply.json()["status"], "deactivated", "{:?}", reply.json());
    let reply = order(&client, &["c.cap.example", "d.cap.example"]).await;
    assert_eq!(reply.status, 201, "{:?}", reply.json());
}
