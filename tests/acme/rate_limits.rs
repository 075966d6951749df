//! Rate limits on newOrder: per account and per registered domain, refused
//! with `rateLimited` (429) and `Retry-After`, and held across a restart.

use certgate_testkit::instance::Instance;
use certgate_testkit::raw_client::{RawClient, Reply};
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

#[tokio::test]
async fn accounts_share_the_bucket_of_a_registered_domain() {
    let instance = Instance::start_with_config(Some(
        "rate_limit_orders_per_account = \"off\"\nrate_limit_orders_per_domain = \"2/1h\"\n".into(),
    ))
    .await;
    let alice = account(&instance).await;
    let bob = account(&instance).await;

    // Two accounts, two names under shared.example: its two tokens.
    assert_eq!(order(&alice, &["a.shared.example"]).await.status, 201);
    assert_eq!(order(&bob, &["b.lab.shared.example"]).await.status, 201);
    let reply = order(&bob, &["c.shared.example"]).await;
    assert_rate_limited(&reply, "domain:shared.example", 1800);
    let reply = order(&alice, &["*.shared.example"]).await;
    assert_rate_limited(&reply, "domain:shared.example", 1800);

    // Another registered domain is not limited by it.
    let reply = order(&bob, &["x.other.example"]).await;
    assert_eq!(reply.status, 201, "{:?}", reply.json());

    // An order takes its tokens all or none: refused for shared.example, it
    // leaves third.example's two tokens where they were.
    let reply = order(&alice, &["y.third.example", "d.shared.example"]).await;
    assert_rate_limited(&reply, "domain:shared.example", 1800);
    // Several names under one domain take one token.
    let reply = order(&alice, &["y.third.example", "z.third.example"]).await;
    assert_eq!(reply.status, 201, "{:?}", reply.json());
    assert_eq!(order(&bob, &["w.third.example"]).await.status, 201);
    let reply = order(&bob, &["v.third.example"]).await;
    assert_rate_limited(&reply, "domain:third.example", 1800);
}
