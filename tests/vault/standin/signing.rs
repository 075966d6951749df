//! `sign`: the happy path verified by openssl, the response shape, names,
//! formats, key types, TTLs and sign-verbatim.

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa};
use serde_json::json;

use super::common::*;

fn is_vault_serial(serial: &str) -> bool {
    let pairs: Vec<&str> = serial.split(':').collect();
    pairs.len() == 20
        && pairs.iter().all(|p| {
            p.len() == 2
                && p.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
}

#[tokio::test]
async fn signed_leaf_chains_to_the_root_with_the_documented_fields() {
    let lab = Lab::start().await;
    let reply = lab
        .sign(
            "web",
            &csr("www.lab.example", &["www.lab.example", "api.lab.example"]),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let data = reply.data();
    let certificate = data["certificate"].as_str().unwrap();
    let intermediate = lab.vault.intermediate_pem("pki_int").unwrap();

    let (ok, output) = openssl_verify(&lab.vault.root_ca_pem(), &intermediate, certificate);
    assert!(ok, "openssl verify failed: {output}");

    assert!(certificate.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(
        certificate.ends_with("-----END CERTIFICATE-----"),
        "no trailing newline"
    );
    assert_eq!(data["issuing_ca"], intermediate.as_str());
    assert_eq!(
        data["ca_chain"],
        json!([intermediate, lab.vault.root_ca_pem()])
    );

    let leaf = view(certificate);
    assert_eq!(
        leaf.dns,
        ["api.lab.example", "www.lab.example"],
        "CN added, deduplicated and sorted"
    );
    assert!(
        leaf.subject.contains("CN=www.lab.example") && leaf.subject.contains("O=Certgate Lab"),
        "{}",
        leaf.subject
    );
    let serial = data["serial_number"].as_str().unwrap();
    assert!(is_vault_serial(serial), "{serial}");
    assert_eq!(serial, leaf.serial);
    assert_eq!(data["expiration"].as_i64().unwrap(), leaf.not_after);
    assert!(
        (leaf.not_before - (now() - 30)).abs() <= 5,
        "NotBefore is now - 30 s"
    );
    assert!(!leaf.is_ca);
}

#[tokio::test]
async fn csr_extensions_are_not_copied_and_unknown_ones_are_accepted() {
    let lab = Lab::start().await;
    let key = ec_key();
    let mut params = CertificateParams::new(vec!["x.lab.example".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "x.lab.example");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Should Not Appear");
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 55555, 1],
            vec![0x05, 0x00],
        ));
    let csr_pem = params.serialize_request(&key).unwrap().pem().unwrap();

    let reply = lab.sign("web", &csr_pem, json!({})).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let leaf = view(reply.data()["certificate"].as_str().unwrap());
    assert!(!leaf
        .extension_oids
        .contains(&"1.3.6.1.4.1.55555.1".to_owned()));
    assert!(
        !leaf.subject.contains("Should Not Appear"),
        "subject is CN + role fields: {}",
        leaf.subject
    );
}

#[tokio::test]
async fn exclude_cn_from_sans_keeps_only_the_csr_sans() {
    let lab = Lab::start().await;
    let reply = lab
        .sign(
            "web",
            &csr("www.lab.example", &["api.lab.example"]),
            json!({ "exclude_cn_from_sans": true }),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        view(reply.data()["certificate"].as_str().unwrap()).dns,
        ["api.lab.example"]
    );
}

#[tokio::test]
async fn request_alt_names_are_ignored_with_a_warning_when_the_role_uses_csr_sans() {
    let lab = Lab::start().await;
    let reply = lab
        .sign(
            "web",
            &csr("www.lab.example", &[]),
            json!({ "alt_names": "other.lab.example" }),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        view(reply.data()["certificate"].as_str().unwrap()).dns,
        ["www.lab.example"]
    );
    let warnings = reply.body["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("use_csr_sans")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn a_role_without_csr_sans_takes_names_from_the_request() {
    let lab = Lab::start().await;
    let reply = lab
        .sign(
            "request-names",
            &csr("ignored.lab.example", &["ignored2.lab.example"]),
            json!({ "common_name": "a.lab.example", "alt_names": "b.lab.example,c.lab.example", "ip_sans": ["10.1.2.3"] }),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let leaf = view(reply.data()["certificate"].as_str().unwrap());
    assert!(leaf.subject.contains("CN=a.lab.example"));
    assert_eq!(
        leaf.dns,
        ["a.lab.example", "b.lab.example", "c.lab.example"]
    );
    assert_eq!(leaf.ips, ["10.1.2.3".parse::<std::net::IpAddr>().unwrap()]);
}

#[tokio::test]
async fn der_and_pem_bundle_formats() {
    let lab = Lab::start().await;
    let der = lab
        .sign(
            "web",
            &csr("d.lab.example", &[]),
            json!({ "format": "der" }),
        )
        .await;
    assert_eq!(der.status, 200);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(der.data()["certificate"].as_str().unwrap())
        .expect("base64 DER");
    let as_pem = pem::encode(&pem::Pem::new("CERTIFICATE", bytes));
    assert_eq!(
        view(&as_pem).serial,
        der.data()["serial_number"].as_str().unwrap()
    );

    let bundle = lab
        .sign(
            "web",
            &csr("b.lab.example", &[]),
            json!({ "format": "pem_bundle" }),
        )
        .await;
    assert_eq!(bundle.status, 200);
    let text = bundle.data()["certificate"].as_str().unwrap();
    assert_eq!(
        text.matches("BEGIN CERTIFICATE").count(),
        3,
        "leaf, intermediate, root"
    );

    let bad = lab
        .sign(
            "web",
            &csr("b.lab.example", &[]),
            json!({ "format": "jks" }),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.error(),
        r#"the "format" path parameter must be "pem", "der", or "pem_bundle""#
    );
}

#[tokio::test]
async fn issuer_path_and_remove_roots_from_chain() {
    let lab = Lab::start().await;
    for reference in ["default", "lab-int"] {
        let reply = lab
            .sign_at(
                &format!("pki_int/issuer/{reference}/sign/web"),
                &csr("i.lab.example", &[]),
                json!({ "remove_roots_from_chain": true }),
            )
            .await;
        assert_eq!(reply.status, 200, "{reference}: {:?}", reply.body);
        assert_eq!(
            reply.data()["ca_chain"],
            json!([lab.vault.intermediate_pem("pki_int").unwrap()])
        );
    }
    let unknown = lab
        .sign_at(
            "pki_int/issuer/nope/sign/web",
            &csr("i.lab.example", &[]),
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.error(),
        "unable to find PKI issuer for reference: nope"
    );
}

#[tokio::test]
async fn key_types_and_sizes_follow_the_role() {
    let lab = Lab::start().await;
    let ed25519 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let ed_csr = csr_with(&ed25519, "k.lab.example", &[], &[]);
    let p384_csr = csr_with(&p384, "k.lab.example", &[], &[]);
    let p256_csr = csr("k.lab.example", &[]);
    let rsa2048 = rsa_csr(2048, "k.lab.example");
    let rsa1024 = rsa_csr(1024, "k.lab.example");

    let cases: [(&str, &str, Result<(), &str>); 10] = [
        ("rsa-only", &rsa2048, Ok(())),
        ("rsa-only", &p256_csr, Err("role requires keys of type rsa")),
        (
            "rsa-only",
            &rsa1024,
            Err("role requires a minimum of a 2048-bit key, but CSR's key is 1024 bits"),
        ),
        ("ec-only", &p256_csr, Ok(())),
        ("ec-only", &ed_csr, Err("role requires keys of type ec")),
        (
            "ec-384",
            &p256_csr,
            Err("role requires a minimum of a 384-bit key, but CSR's key is 256 bits"),
        ),
        ("ec-384", &p384_csr, Ok(())),
        ("web", &ed_csr, Ok(())),
        ("web", &rsa2048, Ok(())),
        (
            "web",
            &rsa1024,
            Err("role requires a minimum of a 2048-bit key, but CSR's key is 1024 bits"),
        ),
    ];
    for (role, csr_pem, expected) in cases {
        let reply = lab.sign(role, csr_pem, json!({})).await;
        match expected {
            Ok(()) => assert_eq!(reply.status, 200, "{role}: {:?}", reply.body),
            Err(message) => {
                assert_eq!(reply.status, 400, "{role}");
                assert_eq!(reply.error(), message, "{role}");
            }
        }
    }
    let ed_leaf = lab.sign("web", &ed_csr, json!({})).await;
    let (ok, output) = openssl_verify(
        &lab.vault.root_ca_pem(),
        &lab.vault.intermediate_pem("pki_int").unwrap(),
        ed_leaf.data()["certificate"].as_str().unwrap(),
    );
    assert!(ok, "Ed25519 leaf verifies: {output}");
}

#[tokio::test]
async fn ttl_comes_from_request_then_role_then_32_days_and_is_capped_by_max_ttl() {
    let lab = Lab::start().await;
    let lifetime = |reply: &Reply| {
        let leaf = view(reply.data()["certificate"].as_str().unwrap());
        leaf.not_after - (leaf.not_before + 30)
    };
    let requested = lab
        .sign("web", &csr("t.lab.example", &[]), json!({ "ttl": "72h" }))
        .await;
    assert_eq!(lifetime(&requested), 72 * 3600);
    assert_eq!(requested.body["warnings"], serde_json::Value::Null);

    let seconds = lab
        .sign("web", &csr("t.lab.example", &[]), json!({ "ttl": 5400 }))
        .await;
    assert_eq!(lifetime(&seconds), 5400);

    let from_role = lab
        .sign("short", &csr("t.lab.example", &[]), json!({}))
        .await;
    assert_eq!(lifetime(&from_role), 3600);

    let capped = lab
        .sign("short", &csr("t.lab.example", &[]), json!({ "ttl": "3h" }))
        .await;
    assert_eq!(capped.status, 200);
    assert_eq!(lifetime(&capped), 7200);
    assert_eq!(
        capped.body["warnings"],
        json!([
            "TTL \"3h0m0s\" is longer than permitted maxTTL \"2h0m0s\", so maxTTL is being used"
        ])
    );

    let open = Lab::with(
        super::common::lab_config().mount(
            certgate_testkit::vault::Mount::new("pki_open").role(
                certgate_testkit::vault::Role::new("any")
                    .allow_any_name(true)
                    .key_type("any"),
            ),
        ),
    )
    .await;
    let default = open
        .sign_at("pki_open/sign/any", &csr("t.lab.example", &[]), json!({}))
        .await;
    assert_eq!(lifetime(&default), 32 * 86400);
}

#[tokio::test]
async fn not_after_sets_the_expiry_and_conflicts_with_ttl() {
    let lab = Lab::start().await;
    let at = time::OffsetDateTime::from_unix_timestamp(now() + 5 * 86400).unwrap();
    let text = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let reply = lab
        .sign(
            "web",
            &csr("n.lab.example", &[]),
            json!({ "not_after": text }),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        view(reply.data()["certificate"].as_str().unwrap()).not_after,
        at.unix_timestamp()
    );

    let both = lab
        .sign(
            "web",
            &csr("n.lab.example", &[]),
            json!({ "not_after": text, "ttl": "1h" }),
        )
        .await;
    assert_eq!(both.status, 400);
}

#[tokio::test]
async fn sign_verbatim_keeps_the_csr_but_never_makes_a_ca() {
    let lab = Lab::start().await;
    let key = ec_key();
    let mut params = CertificateParams::new(vec![
        "outside.other.org".to_owned(),
        "under_score.example".to_owned(),
    ])
    .unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "Verbatim Service");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Kept Org");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let csr_pem = params.serialize_request(&key).unwrap().pem().unwrap();

    for path in ["pki_int/sign-verbatim", "pki_int/sign-verbatim/short"] {
        let reply = lab.sign_at(path, &csr_pem, json!({})).await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
        let leaf = view(reply.data()["certificate"].as_str().unwrap());
        assert_eq!(leaf.dns, ["outside.other.org", "under_score.example"]);
        assert!(
            leaf.subject.contains("CN=Verbatim Service") && leaf.subject.contains("O=Kept Org"),
            "{}",
            leaf.subject
        );
        assert!(!leaf.is_ca, "basic constraints are not copied");
    }
    let with_role = lab
        .sign_at("pki_int/sign-verbatim/short", &csr_pem, json!({}))
        .await;
    let leaf = view(with_role.data()["certificate"].as_str().unwrap());
    assert_eq!(
        leaf.not_after - leaf.not_before,
        3600 + 30,
        "role ttl applies"
    );
    assert!(lab.vault.sign_calls().iter().all(|c| c.verbatim));
}

#[tokio::test]
async fn every_sign_is_recorded_with_the_csr_names() {
    let lab = Lab::start().await;
    lab.sign("web", &csr("r.lab.example", &["s.lab.example"]), json!({}))
        .await;
    lab.sign("web", &csr("r.other.org", &[]), json!({})).await;
    let calls = lab.vault.sign_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(lab.vault.issued_count(), 1);
    assert_eq!(calls[0].role, "web");
    assert_eq!(calls[0].csr_common_name, "r.lab.example");
    assert_eq!(calls[0].csr_dns_names, ["s.lab.example"]);
    assert!(calls[0].serial.is_some());
    assert_eq!((calls[1].status, calls[1].serial.clone()), (400, None));
}
