//! What survives a restart: accounts and their orders, and work that a stop
//! interrupted half-way (an order already `processing`), which resumes.

use certgate_testkit::instance::Instance;
use certgate_testkit::raw_client::{b64, RawClient};
use rcgen::PublicKeyData;
use serde_json::json;

/// Certificates the database holds for the order.
async fn stored(instance: &Instance, order_id: &str) -> i64 {
    instance
        .store()
        .certificate_count_for_order(order_id)
        .await
        .unwrap()
}

#[tokio::test]
async fn accounts_survive_and_an_interrupted_issuance_resumes() {
    let mut instance = Instance::start().await;
    let client = RawClient::registered(&instance.directory_url(), &instance.root_pem_path()).await;
    let name = "resume.lab.example";
    let (order_url, _) = client.ready_order(&instance.http01, &[name]).await;

    // A stop right after finalize accepted the CSR: the order is processing
    // with its CSR stored, and nothing has been signed yet.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).unwrap();
    let order_id = order_url.rsplit('/').next().unwrap().to_owned();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Its lease still runs for a minute: a restart on SQLite does not wait
    // for it to run out.
    let lease = certgate::store::Lease {
        owner: "the run that stopped".into(),
        until: now + 60,
    };
    assert!(instance
        .store()
        .begin_finalize(&order_id, csr.der(), &[], now, &lease)
        .await
        .unwrap()
        .unwrap());
    assert_eq!(stored(&instance, &order_id).await, 0);

    instance.restart().await;
    let restarted = std::time::Instant::now();

    // The account still signs requests; the order finishes without the client
    // doing anything but polling.
    let mut status = String::new();
    for _ in 0..100 {
        let reply = client.post(&order_url, None).await;
        assert_eq!(reply.status, 200, "{:?}", reply.json());
        status = reply.json()["status"].as_str().unwrap().to_owned();
        if status != "processing" {
            break;
        }
        let wait: u64 = reply.header("retry-after").unwrap().parse().unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
    assert_eq!(status, "valid");
    assert!(
        restarted.elapsed() < std::time::Duration::from_secs(30),
        "the resumed issuance waited for the lease: {:?}",
        restarted.elapsed()
    );
    assert_eq!(stored(&instance, &order_id).await, 1);
    let certificate_url = client.post(&order_url, None).await.json()["certificate"]
        .as_str()
        .unwrap()
        .to_owned();
    let chain = client.post(&certificate_url, None).await;
    assert_eq!(chain.status, 200);
    let leaf = ::pem::parse_many(&chain.body).unwrap().remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.contents()).unwrap();
    let spki = cert.public_key().raw;
    assert_eq!(
        b64(spki),
        b64(&key.subject_public_key_info()),
        "certificate carries the CSR key"
    );

    // A second account list read after the restart shows the order.
    let orders = client
        .post(&format!("{}/orders", client.kid.as_ref().unwrap()), None)
        .await
        .json();
    assert_eq!(orders["orders"], json!([order_url]));
}
