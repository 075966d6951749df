//! Requests a careless or hostile client sends, each answered with the RFC
//! 8555 problem type and status it deserves — and nothing stored harmed.

use certgate_testkit::instance::Instance;
use certgate_testkit::raw_client::{b64, csr, RawClient, Reply};
use serde_json::{json, Value};

fn weak_rsa_csr(name: &str) -> String {
    use openssl::{hash::MessageDigest, pkey::PKey, rsa::Rsa, stack::Stack, x509};
    let key = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
    let mut req = x509::X509ReqBuilder::new().unwrap();
    req.set_pubkey(&key).unwrap();
    let mut extensions = Stack::new().unwrap();
    let san = x509::extension::SubjectAlternativeName::new()
        .dns(name)
        .build(&req.x509v3_context(None))
        .unwrap();
    extensions.push(san).unwrap();
    req.add_extensions(&extensions).unwrap();
    req.sign(&key, MessageDigest::sha256()).unwrap();
    b64(&req.build().to_der().unwrap())
}

/// One row of the table: what was sent, what came back, what should have.
struct Case {
    name: &'static str,
    reply: Reply,
    status: u16,
    problem: &'static str,
}

fn check(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let got_type = case.reply.problem_type();
        if case.reply.status != case.status || got_type != case.problem {
            failures.push(format!(
                "{}: expected {} {}, got {} {} {}",
                case.name,
                case.status,
                case.problem,
                case.reply.status,
                got_type,
                String::from_utf8_lossy(&case.reply.body)
            ));
        }
        if case.reply.header("content-type") != Some("application/problem+json") {
            failures.push(format!(
                "{}: content-type is not application/problem+json",
                case.name
            ));
        }
        if case.reply.header("replay-nonce").is_none() {
            failures.push(format!("{}: no Replay-Nonce on the error", case.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn every_bad_request_gets_its_problem_type_and_status() {
    let instance = Instance::start().await;
    let root = instance.root_pem_path();
    let client = RawClient::registered(&instance.directory_url(), &root).await;
    let account_url = client.kid.clone().unwrap();
    let mut cases = Vec::new();

    // --- JWS and nonce handling ---
    let mut header = client.header(&account_url).await;
    header.as_object_mut().unwrap().remove("nonce");
    cases.push(Case {
        name: "missing nonce",
        reply: client
            .send_jws(&account_url, &client.jws(&header, b""))
            .await,
        status: 400,
        problem: "badNonce",
    });

    let mut header = client.header(&account_url).await;
    header["nonce"] = json!("AAAAAAAAAAAAAAAAAAAAAA");
    cases.push(Case {
        name: "unknown nonce",
        reply: client
            .send_jws(&account_url, &client.jws(&header, b""))
            .await,
        status: 400,
        problem: "badNonce",
    });

    let replayed = client.jws(&client.header(&account_url).await, b"");
    assert_eq!(client.send_jws(&account_url, &replayed).await.status, 200);
    let reply = client.send_jws(&account_url, &replayed).await;
    // The fresh nonce of a badNonce answer works for the retry.
    let mut retry = client.header(&account_url).await;
    retry["nonce"] = json!(reply.header("replay-nonce").unwrap());
    assert_eq!(
        client
            .send_jws(&account_url, &client.jws(&retry, b""))
            .await
            .status,
        200
    );
    cases.push(Case {
        name: "used nonce",
        reply,
        status: 400,
        problem: "badNonce",
    });

    let header = client.header(&client.url("newOrder")).await;
    cases.push(Case {
        name: "url is not the request URL",
        reply: client
            .send_jws(&account_url, &client.jws(&header, b""))
            .await,
        status: 403,
        problem: "unauthorized",
    });

    for (name, alg) in [("alg none", "none"), ("alg HS256", "HS256")] {
        let mut header = client.header(&account_url).await;
        header["alg"] = json!(alg);
        let mut jws = client.jws(&header, b"");
        jws["signature"] = json!("");
        let reply = client.send_jws(&account_url, &jws).await;
        assert!(reply.json()["algorithms"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("ES256"))));
        cases.push(Case {
            name,
            reply,
            status: 400,
            problem: "badSignatureAlgorithm",
        });
    }

    let mut header = client.header(&account_url).await;
    header["jwk"] = client.key.jwk.clone();
    cases.push(Case {
        name: "jwk and kid both",
        reply: client
            .send_jws(&account_url, &client.jws(&header, b""))
            .await,
        status: 400,
        problem: "malformed",
    });

    let mut header = client.header(&account_url).await;
    header.as_object_mut().unwrap().remove("kid");
    cases.push(Case {
        name: "neither jwk nor kid",
        reply: client
            .send_jws(&account_url, &client.jws(&header, b""))
            .await,
        status: 400,
        problem: "malformed",
    });

    let mut header = client.header(&account_url).await;
    let unknown = format!("{}/acme/acct/no-such-account", instance.base_url());
    header["kid"] = json!(unknown);
    cases.push(Case {
        name: "unknown kid",
        reply: client
            .send_jws(&account_url, &client.jws(&header, b""))
            .await,
        status: 400,
        problem: "accountDoesNotExist",
    });

    let mut jws = client.jws(&client.header(&account_url).await, b"");
    jws["signature"] = json!(b64(&[7u8; 64]));
    cases.push(Case {
        name: "signature does not verify",
        reply: client.send_jws(&account_url, &jws).await,
        status: 400,
        problem: "malformed",
    });

    let jws = client.jws(&client.header(&account_url).await, b"");
    cases.push(Case {
        name: "wrong content type",
        reply: client
            .send(
                &account_url,
                "application/json",
                serde_json::to_vec(&jws).unwrap(),
            )
            .await,
        status: 415,
        problem: "malformed",
    });
    cases.push(Case {
        name: "body is not JSON",
        reply: client
            .send(&account_url, "application/jose+json", b"{not json".to_vec())
            .await,
        status: 400,
        problem: "malformed",
    });
    cases.push(Case {
        name: "body too large",
        reply: client
            .send(&account_url, "application/jose+json", vec![b' '; 70_000])
            .await,
        status: 413,
        problem: "malformed",
    });

    let header = client.header(&account_url).await;
    cases.push(Case {
        name: "payload that is not JSON",
        reply: client
            .send_jws(&account_url, &client.jws(&header, b"contact=me"))
            .await,
        status: 400,
        problem: "malformed",
    });

    // --- accounts ---
    let mut weak = RawClient::new(&instance.directory_url(), &root).await;
    weak.key.jwk = json!({"kty": "RSA", "n": b64(&[0xc3; 128]), "e": "AQAB"});
    cases.push(Case {
        name: "1024-bit RSA account key",
        reply: weak
            .post(
                &weak.url("newAccount"),
                Some(json!({"termsOfServiceAgreed": true})),
            )
            .await,
        status: 400,
        problem: "badPublicKey",
    });

    let stranger = RawClient::new(&instance.directory_url(), &root).await;
    cases.push(Case {
        name: "onlyReturnExisting for an unknown key",
        reply: stranger
            .post(
                &stranger.url("newAccount"),
                Some(json!({"onlyReturnExisting": true})),
            )
            .await,
        status: 400,
        problem: "accountDoesNotExist",
    });
    cases.push(Case {
        name: "contact that is not mailto",
        reply: stranger
            .post(
                &stranger.url("newAccount"),
                Some(json!({"contact": ["tel:+15551234"]})),
            )
            .await,
        status: 400,
        problem: "unsupportedContact",
    });

    // --- orders ---
    let new_order = client.url("newOrder");
    let order_with = |identifiers: Value| json!({"identifiers": identifiers});
    cases.push(Case {
        name: "identifier that is not a host name",
        reply: client
            .post(
                &new_order,
                Some(order_with(
                    json!([{"type": "dns", "value": "bad_name.test"}]),
                )),
            )
            .await,
        status: 400,
        problem: "rejectedIdentifier",
    });
    cases.push(Case {
        name: "identifier type that is not supported",
        reply: client
            .post(
                &new_order,
                Some(order_with(json!([{"type": "email", "value": "a@b.test"}]))),
            )
            .await,
        status: 400,
        problem: "unsupportedIdentifier",
    });
    cases.push(Case {
        name: "order with notAfter",
        reply: client
            .post(&new_order, Some(json!({"identifiers": [{"type": "dns", "value": "a.test"}], "notAfter": "2030-01-01T00:00:00Z"})))
            .await,
        status: 400,
        problem: "malformed",
    });

    let (pending_url, pending) = client.new_order(&["pending.lab.example"]).await;
    let key = rcgen::KeyPair::generate().unwrap();
    cases.push(Case {
        name: "finalize before ready",
        reply: client
            .post(
                pending["finalize"].as_str().unwrap(),
                Some(json!({"csr": csr(&["pending.lab.example"], &key)})),
            )
            .await,
        status: 403,
        problem: "orderNotReady",
    });
    cases.push(Case {
        name: "POST-as-GET with a payload",
        reply: client
            .post(&pending_url, Some(json!({"status": "valid"})))
            .await,
        status: 400,
        problem: "malformed",
    });
    let get = client.http.get(&pending_url).send().await.unwrap();
    cases.push(Case {
        name: "GET of an order",
        reply: Reply {
            status: get.status().as_u16(),
            headers: get.headers().clone(),
            body: get.bytes().await.unwrap().to_vec(),
        },
        status: 405,
        problem: "malformed",
    });
    cases.push(Case {
        name: "unknown resource",
        reply: client
            .post(
                &format!("{}/acme/order/no-such-order", instance.base_url()),
                None,
            )
            .await,
        status: 404,
        problem: "malformed",
    });

    let other = RawClient::registered(&instance.directory_url(), &root).await;
    cases.push(Case {
        name: "someone else's order",
        reply: other.post(&pending_url, None).await,
        status: 403,
        problem: "unauthorized",
    });
    cases.push(Case {
        name: "someone else's account",
        reply: other.post(&account_url, None).await,
        status: 403,
        problem: "unauthorized",
    });

    // --- finalize: the CSR ---
    let names = ["www.lab.example", "api.lab.example"];
    let (order_url, order) = client.ready_order(&instance.http01, &names).await;
    let finalize = order["finalize"].as_str().unwrap().to_owned();
    for (name, csr_b64) in [
        (
            "CSR names differ from the order",
            csr(&["www.lab.example", "evil.lab.example"], &key),
        ),
        ("CSR misses an order name", csr(&["www.lab.example"], &key)),
        ("CSR with the account key", csr(&names, &client.key.rcgen())),
        (
            "CSR with a 1024-bit RSA key",
            weak_rsa_csr("www.lab.example"),
        ),
        ("CSR that is not base64url", "!!!".to_owned()),
    ] {
        let reply = client.post(&finalize, Some(json!({"csr": csr_b64}))).await;
        cases.push(Case {
            name,
            reply,
            status: 400,
            problem: "badCSR",
        });
    }
    cases.push(Case {
        name: "someone else finalizes",
        reply: other
            .post(&finalize, Some(json!({"csr": csr(&names, &key)})))
            .await,
        status: 403,
        problem: "unauthorized",
    });

    // --- a deactivated account is locked out ---
    let leaving = RawClient::registered(&instance.directory_url(), &root).await;
    let leaving_url = leaving.kid.clone().unwrap();
    let reply = leaving
        .post(&leaving_url, Some(json!({"status": "deactivated"})))
        .await;
    assert_eq!(reply.json()["status"], "deactivated");
    cases.push(Case {
        name: "deactivated account",
        reply: leaving
            .post(
                &leaving.url("newOrder"),
                Some(order_with(json!([{"type": "dns", "value": "a.test"}]))),
            )
            .await,
        // RFC 8555 §7.3.6: 401, not the 403 of other unauthorized requests.
        status: 401,
        problem: "unauthorized",
    });

    check(&cases);

    // Nothing the bad requests did harmed the good order: it is still ready
    // and finalizes with a correct CSR.
    assert_eq!(
        client.post(&order_url, None).await.json()["status"],
        "ready"
    );
    let reply = client
        .post(&finalize, Some(json!({"csr": csr(&names, &key)})))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    assert_eq!(reply.json()["status"], "valid");
    let cert = client
        .post(reply.json()["certificate"].as_str().unwrap(), None)
        .await;
    assert_eq!(
        cert.header("content-type"),
        Some("application/pem-certificate-chain")
    );
    assert_eq!(
        String::from_utf8_lossy(&cert.body)
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
}

#[tokio::test]
async fn concurrent_finalizes_issue_exactly_one_certificate() {
    let instance = Instance::start().await;
    let client = RawClient::registered(&instance.directory_url(), &instance.root_pem_path()).await;
    for round in 0..5 {
        let name = format!("race{round}.lab.example");
        let (order_url, order) = client.ready_order(&instance.http01, &[&name]).await;
        let finalize = order["finalize"].as_str().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let body = json!({"csr": csr(&[&name], &key)});
        let (a, b) = tokio::join!(
            client.post(finalize, Some(body.clone())),
            client.post(finalize, Some(body.clone()))
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 403],
            "one wins, one is told the order is not ready"
        );
        let loser = if a.status == 403 { &a } else { &b };
        assert_eq!(loser.problem_type(), "orderNotReady");

        let order_id = order_url.rsplit('/').next().unwrap();
        let stored = instance
            .store()
            .certificate_count_for_order(order_id)
            .await
            .unwrap();
        assert_eq!(
            stored, 1,
            "round {round}: certificates stored for the order"
        );
        assert_eq!(
            client.post(&order_url, None).await.json()["status"],
            "valid"
        );
    }
}
