//! The envelope, the unauthenticated CA reads, certificate reads and roles.

use serde_json::{json, Value};

use super::common::*;

fn is_uuid(text: &str) -> bool {
    let groups: Vec<usize> = text.split('-').map(str::len).collect();
    groups == [8, 4, 4, 4, 12] && text.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[tokio::test]
async fn success_envelope_has_every_field_vaultrs_requires() {
    let lab = Lab::start().await;
    let reply = lab.call("GET", "pki_int/roles/web", lab.root(), None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/json");
    let body = reply.body.as_object().unwrap();
    assert!(is_uuid(body["request_id"].as_str().unwrap()));
    assert_eq!(body["lease_id"], "");
    assert_eq!(body["renewable"], false);
    assert_eq!(body["lease_duration"], 0);
    assert_eq!(body["wrap_info"], Value::Null);
    assert_eq!(body["warnings"], Value::Null);
    assert_eq!(body["auth"], Value::Null);
    assert!(body["data"].is_object());
    let other = lab.call("GET", "pki_int/roles/web", lab.root(), None).await;
    assert_ne!(
        other.body["request_id"], reply.body["request_id"],
        "request ids are unique"
    );
}

#[tokio::test]
async fn ca_chain_reads_need_no_token() {
    let lab = Lab::start().await;
    let intermediate = lab.vault.intermediate_pem("pki_int").unwrap();
    let root = lab.vault.root_ca_pem();

    let raw = lab.call("GET", "pki_int/ca_chain", None, None).await;
    assert_eq!(raw.status, 200);
    let text = raw.body.as_str().expect("raw PEM, not JSON");
    assert_eq!(text.trim_end(), format!("{intermediate}\n{root}"));

    let wrapped = lab.call("GET", "pki_int/cert/ca_chain", None, None).await;
    assert_eq!(wrapped.status, 200);
    assert_eq!(
        wrapped.data()["certificate"].as_str().unwrap().trim_end(),
        format!("{intermediate}\n{root}")
    );

    let issuer = lab
        .call("GET", "pki_int/issuer/default/json", None, None)
        .await;
    assert_eq!(issuer.status, 200);
    assert_eq!(issuer.data()["issuer_name"], "lab-int");
    assert!(is_uuid(issuer.data()["issuer_id"].as_str().unwrap()));
    assert_eq!(
        issuer.data()["certificate"].as_str().unwrap().trim_end(),
        intermediate
    );
    let chain: Vec<String> = serde_json::from_value(issuer.data()["ca_chain"].clone()).unwrap();
    assert_eq!(
        chain.iter().map(|c| c.trim_end()).collect::<Vec<_>>(),
        [intermediate.as_str(), root.as_str()]
    );

    let none = lab.call("GET", "pki_empty/ca_chain", None, None).await;
    assert_eq!(none.status, 204);
}

#[tokio::test]
async fn cert_read_accepts_colon_or_dash_serials() {
    let lab = Lab::start().await;
    let signed = lab.sign("web", &csr("c.lab.example", &[]), json!({})).await;
    let serial = signed.data()["serial_number"].as_str().unwrap().to_owned();
    for form in [
        serial.clone(),
        serial.replace(':', "-"),
        serial.to_uppercase(),
    ] {
        let reply = lab
            .call("GET", &format!("pki_int/cert/{form}"), None, None)
            .await;
        assert_eq!(reply.status, 200, "{form}");
        assert_eq!(
            reply.data()["certificate"].as_str().unwrap().trim_end(),
            signed.data()["certificate"].as_str().unwrap()
        );
        assert_eq!(reply.data()["revocation_time"], 0);
    }
}

#[tokio::test]
async fn role_read_has_vault_defaults_and_list_works_both_ways() {
    let lab = Lab::start().await;
    let role = lab
        .call("GET", "pki_int/roles/rsa-only", lab.root(), None)
        .await;
    assert_eq!(role.status, 200);
    let data = role.data();
    assert_eq!(data["allowed_domains"], json!(["lab.example"]));
    assert_eq!(data["allow_subdomains"], true);
    assert_eq!(data["allow_bare_domains"], false);
    assert_eq!(data["allow_glob_domains"], false);
    assert_eq!(data["allow_wildcard_certificates"], true);
    assert_eq!(data["allow_any_name"], false);
    assert_eq!(data["allow_localhost"], true);
    assert_eq!(data["enforce_hostnames"], true);
    assert_eq!(data["allow_ip_sans"], true);
    assert_eq!(data["key_type"], "rsa");
    assert_eq!(data["key_bits"], 2048);
    assert_eq!(data["ttl"], 0);
    assert_eq!(data["max_ttl"], 0);
    assert_eq!(data["no_store"], false);
    assert_eq!(data["issuer_ref"], "default");
    assert_eq!(
        lab.call("GET", "pki_int/roles/short", lab.root(), None)
            .await
            .data()["max_ttl"],
        7200
    );

    let listed = lab.call("LIST", "pki_int/roles", lab.root(), None).await;
    assert_eq!(listed.status, 200);
    let keys: Vec<String> = serde_json::from_value(listed.data()["keys"].clone()).unwrap();
    assert!(keys.contains(&"web".to_owned()) && keys.contains(&"nostore".to_owned()));
    let by_query = lab
        .call("GET", "pki_int/roles?list=true", lab.root(), None)
        .await;
    assert_eq!(by_query.data()["keys"], listed.data()["keys"]);
}
