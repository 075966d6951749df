//! A DNS lookup that fails is tried again within the challenge's life, and
//! the retry sees what was not there a moment before (no cache in between).

use certgate_testkit::instance::Instance;
use certgate_testkit::raw_client::{challenge_of, RawClient};
use serde_json::json;

#[tokio::test]
async fn a_txt_record_added_after_the_first_lookup_is_found_by_the_retry() {
    let instance = Instance::start().await;
    let client = RawClient::registered(&instance.directory_url(), &instance.root_pem_path()).await;
    let name = "late.lab.example";
    let (_, order) = client.new_order(&[name]).await;
    let authz = client
        .post(order["authorizations"][0].as_str().unwrap(), None)
        .await
        .json();
    let challenge = challenge_of(&authz, "dns-01").clone();
    let token = challenge["token"].as_str().unwrap();
    let key_authz = certgate::validate::key_authorization(token, &client.thumbprint());
    let record = format!("_acme-challenge.{name}");

    let url = challenge["url"].as_str().unwrap().to_owned();
    let answer = {
        let client = &client;
        async move { client.post(&url, Some(json!({}))).await.json() }
    };
    let publish_late = async {
        // The record appears only after certgate looked and found nothing.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while instance.dns.txt_queries(&record) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no TXT lookup");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        instance
            .dns
            .add_txt(&record, &certgate::validate::dns01_txt_value(&key_authz));
    };
    let (first_answer, ()) = tokio::join!(answer, publish_late);
    assert_ne!(first_answer["status"], "invalid", "{first_answer}");

    let authz_url = order["authorizations"][0].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let authz = client.post(authz_url, None).await.json();
        if authz["status"] != "pending" {
            assert_eq!(authz["status"], "valid", "{authz}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{authz}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        instance.dns.txt_queries(&record) >= 2,
        "found by a second lookup"
    );
}
