//! `LIST certs`, `LIST certs/revoked` and the mount's CRL, as Vault has
//! them: serials with `:`, the CA's own certificate listed too, an empty
//! list a 404 with no errors, and the list capability needed.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use x509_parser::prelude::{parse_x509_crl, FromDer, X509Certificate};

use super::common::*;

fn keys(reply: &Reply) -> BTreeSet<String> {
    reply.data()["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("no keys: {}", reply.body))
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

fn serial_of_pem(pem_text: &str) -> String {
    let block = ::pem::parse(pem_text.trim()).unwrap();
    let (_, cert) = X509Certificate::from_der(block.contents()).unwrap();
    cert.raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[tokio::test]
async fn certs_lists_every_stored_serial_and_the_ca_and_revoked_lists_the_revoked() {
    let lab = Lab::start().await;
    let ca_serial = serial_of_pem(&lab.vault.intermediate_pem("pki_int").unwrap());

    // Before anything is issued only the CA's own certificate is there,
    // and nothing is revoked: an empty list is a 404 with no errors.
    let listed = lab.call("LIST", "pki_int/certs", lab.root(), None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(keys(&listed), BTreeSet::from([ca_serial.clone()]));
    let revoked = lab
        .call("LIST", "pki_int/certs/revoked", lab.root(), None)
        .await;
    assert_eq!(revoked.status, 404);
    assert_eq!(revoked.body, json!({ "errors": [] }));
    let no_ca = lab.call("LIST", "pki_empty/certs", lab.root(), None).await;
    assert_eq!(no_ca.status, 404);
    assert_eq!(no_ca.body, json!({ "errors": [] }));

    let mut issued = Vec::new();
    for name in ["one.lab.example", "two.lab.example"] {
        let signed = lab.sign("web", &csr(name, &[name]), Value::Null).await;
        assert_eq!(signed.status, 200, "{}", signed.body);
        issued.push(signed.data()["serial_number"].as_str().unwrap().to_owned());
    }
    // A no_store role's certificate is not kept, so not listed.
    let unkept = lab
        .sign("nostore", &csr("three.lab.example", &[]), Value::Null)
        .await;
    assert_eq!(unkept.status, 200, "{}", unkept.body);

    let listed = lab.call("LIST", "pki_int/certs", lab.root(), None).await;
    let expected: BTreeSet<String> = issued.iter().cloned().chain([ca_serial.clone()]).collect();
    assert_eq!(keys(&listed), expected);
    assert!(keys(&listed).iter().all(|k| k.contains(':')));
    let by_query = lab
        .call("GET", "pki_int/certs?list=true", lab.root(), None)
        .await;
    assert_eq!(by_query.status, 200);
    assert_eq!(keys(&by_query), expected);

    // Each listed serial reads back, the CA's too.
    let ca = lab
        .call("GET", &format!("pki_int/cert/{ca_serial}"), None, None)
        .await;
    assert_eq!(ca.status, 200);
    assert_eq!(
        serial_of_pem(ca.data()["certificate"].as_str().unwrap()),
        ca_serial
    );

    let revoke = lab
        .call(
            "POST",
            "pki_int/revoke",
            lab.root(),
            Some(json!({ "serial_number": issued[0] })),
        )
        .await;
    assert_eq!(revoke.status, 200, "{}", revoke.body);
    let revoked = lab
        .call("LIST", "pki_int/certs/revoked", lab.root(), None)
        .await;
    assert_eq!(revoked.status, 200);
    assert_eq!(keys(&revoked), BTreeSet::from([issued[0].clone()]));

    // The CRL lists it too, signed by the mount's intermediate.
    let crl = lab
        .http
        .get(format!("{}/v1/pki_int/crl", lab.vault.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(crl.status(), 200);
    let der = crl.bytes().await.unwrap();
    let (_, parsed) = parse_x509_crl(&der).expect("a DER CRL");
    let listed_on_crl: Vec<String> = parsed
        .iter_revoked_certificates()
        .map(|r| {
            r.raw_serial()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .collect();
    assert_eq!(listed_on_crl, [issued[0].clone()]);
    assert!(parsed.next_update().is_some());
}

#[tokio::test]
async fn listing_needs_the_list_capability_on_the_path() {
    let lab = Lab::start().await;
    let denied = lab
        .call("LIST", "pki_int/certs", Some(READER_TOKEN), None)
        .await;
    assert_eq!(denied.status, 403);
    let write = lab.call("POST", "pki_int/certs", lab.root(), None).await;
    assert_eq!(write.status, 405);
}
