//! The fuzz targets' seed corpus (fuzz/corpus/, docs/fuzzing.md), made
//! from real traffic: lego, certbot and instant-acme against the built
//! certgate, whose `certgate::wire` trace gives every signed request body
//! exactly as it came; the answers of the DNS stub and the Vault stand-in;
//! the TLS-ALPN-01 certificates the tests' responder presents; the problem
//! documents certgate sends.
//!
//! The test checks what real clients send: every body is a JWS certgate
//! parses, each request type the fuzz targets know was seen, and each
//! finalize CSR is accepted for its order's names. With
//! `CERTGATE_FUZZ_CORPUS=<dir>` it also writes the seeds there, which is
//! how the committed corpus was made (`<dir>` = fuzz/corpus).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hickory_resolver::proto::op::{Message, Query};
use hickory_resolver::proto::rr::rdata::caa::{KeyValue, CAA};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use certgate::protocol::csr;
use certgate::protocol::identifier::WireIdentifier;
use certgate::protocol::jwk::PublicJwk;
use certgate::protocol::jws::{KeyRef, ParsedJws};
use certgate::protocol::problem::{Problem, ProblemType, Subproblem};
use certgate_testkit::clients::require_tool;
use certgate_testkit::dns::DnsStub;
use certgate_testkit::process::{CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{csr as make_csr, AccountKey, RawClient};
use certgate_testkit::real_clients::{Certbot, Lego, CERTBOT_NAMES, LEGO_NAMES};
use certgate_testkit::tls_alpn::{challenge_certificate, ChallengeCert};
use certgate_testkit::vault::{StandinConfig, VaultStandin};

/// The request types with a payload, as certgate_fuzz::payloads names
/// them (the first byte of a `payloads` seed is the index).
const PAYLOAD_KINDS: usize = 7;
/// The names the raw client orders.
const RAW_NAMES: [&str; 1] = ["raw.example.test"];
/// What certgate_fuzz::dns_records compares TXT records with, and the
/// account and issuer domain name it acts for.
const KEY_AUTHORIZATION: &str = "token.thumbprint";
const ACCOUNT_URL: &str = "https://certgate.test/acme/acct/ours";
const ISSUER_DOMAIN: &str = "certgate.test";

/// Seeds by target, each a set so a repeated body is kept once.
#[derive(Default)]
struct Seeds(BTreeMap<&'static str, BTreeSet<Vec<u8>>>);

impl Seeds {
    fn add(&mut self, target: &'static str, seed: Vec<u8>) {
        self.0.entry(target).or_default().insert(seed);
    }

    /// Writes each seed as `<dir>/<target>/<sha256 of it>`, libFuzzer's
    /// own naming, so that writing twice changes nothing.
    fn write(&self, dir: &Path) {
        for (target, seeds) in &self.0 {
            let target_dir = dir.join(target);
            std::fs::create_dir_all(&target_dir).unwrap();
            for seed in seeds {
                let name: String = Sha256::digest(seed)
                    .iter()
                    .take(20)
                    .map(|b| format!("{b:02x}"))
                    .collect();
                std::fs::write(target_dir.join(name), seed).unwrap();
            }
        }
    }
}

/// `(path, body)` of every signed request in a certgate log.
fn wire_requests(log: &str) -> Vec<(String, Vec<u8>)> {
    log.lines()
        .filter(|line| line.contains("certgate::wire"))
        .map(|line| {
            // The event's own fields, after the span's (which name the path too).
            let event = &line[line.find("certgate::wire:").unwrap()..];
            let field = |name: &str| {
                let start = event.find(&format!(" {name}=")).expect(name) + name.len() + 2;
                event[start..].split(' ').next().unwrap().to_owned()
            };
            let body = URL_SAFE_NO_PAD
                .decode(field("body"))
                .expect("base64url body");
            (field("path"), body)
        })
        .collect()
}

/// The first byte of a `payloads` seed for a request to `path`, in the
/// order of certgate_fuzz::payloads::Request::ALL; `None` for a challenge
/// POST, whose payload `{}` means nothing.
fn payload_tag(path: &str) -> Option<u8> {
    let tag = if path.ends_with("/new-account") {
        0
    } else if path.ends_with("/new-order") {
        1
    } else if path.ends_with("/finalize") {
        2
    } else if path.ends_with("/revoke-cert") {
        3
    } else if path.ends_with("/key-change") {
        4
    } else if path.contains("/acct/") {
        5
    } else if path.contains("/authz/") {
        6
    } else if path.contains("/chall/") {
        return None;
    } else {
        panic!("a payload sent to {path}")
    };
    Some(tag)
}

/// The order names a finalize CSR was accepted for, among those ordered.
fn names_of_csr(csr_b64: &str) -> Option<Vec<String>> {
    let unrelated = PublicJwk::parse(&AccountKey::generate().jwk).unwrap();
    [&LEGO_NAMES[..], &CERTBOT_NAMES[..], &RAW_NAMES[..]]
        .into_iter()
        .map(|names| {
            let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            names.sort();
            names
        })
        .find(|names| csr::check(csr_b64, names, &unrelated).is_ok())
}

/// Seeds of the JWS, JWK, payload and CSR targets from the signed
/// requests real clients sent; checks each on the way.
fn request_seeds(requests: &[(String, Vec<u8>)], seeds: &mut Seeds) {
    let mut tags_seen = BTreeSet::new();
    for (path, body) in requests {
        let jws = ParsedJws::parse(body)
            .unwrap_or_else(|p| panic!("a real client's request to {path} does not parse: {p}"));
        seeds.add("jws", body.clone());
        if let KeyRef::Jwk(key) = &jws.key {
            seeds.add("jwk", serde_json::to_vec(&jws.header.jwk).unwrap());
            jws.verify(key).expect("a real client's signature verifies");
            assert_eq!(key.value, PublicJwk::parse(&key.value).unwrap().value);
        }
        if jws.payload.is_empty() {
            continue; // POST-as-GET
        }
        let Some(tag) = payload_tag(path) else {
            continue;
        };
        tags_seen.insert(tag);
        let mut seed = vec![tag];
        seed.extend_from_slice(&jws.payload);
        seeds.add("payloads", seed);
        if tag == 2 {
            let payload: Value = serde_json::from_slice(&jws.payload).unwrap();
            let csr_b64 = payload["csr"].as_str().expect("finalize has a csr");
            let names = names_of_csr(csr_b64)
                .unwrap_or_else(|| panic!("a finalize CSR fits no order's names: {csr_b64}"));
            let mut seed = names.join(",").into_bytes();
            seed.push(0);
            seed.extend(URL_SAFE_NO_PAD.decode(csr_b64).unwrap());
            seeds.add("csr", seed);
        }
    }
    let all: BTreeSet<u8> = (0..PAYLOAD_KINDS as u8).collect();
    assert_eq!(tags_seen, all, "every request type with a payload was sent");
}

/// Asks the DNS stub for `name`'s TXT records over UDP; the answer as it
/// came off the wire.
async fn txt_answer(dns: SocketAddr, name: &str) -> Vec<u8> {
    let mut query = Message::new();
    query.set_id(7).set_recursion_desired(true);
    query.add_query(Query::query(
        Name::from_ascii(name).unwrap(),
        RecordType::TXT,
    ));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&query.to_vec().unwrap(), dns).await.unwrap();
    let mut answer = vec![0; 4096];
    let len = socket.recv(&mut answer).await.unwrap();
    answer.truncate(len);
    answer
}

/// A DNS answer of CAA records for `name`, as a server would send it.
fn caa_answer(name: &str, records: Vec<CAA>) -> Vec<u8> {
    let owner = Name::from_ascii(name).unwrap();
    let mut answer = Message::new();
    answer.add_query(Query::query(owner.clone(), RecordType::CAA));
    for record in records {
        answer.add_answer(Record::from_rdata(owner.clone(), 300, RData::CAA(record)));
    }
    answer.to_vec().unwrap()
}

/// Seeds of the DNS target: the flags byte (wildcard, method) and a message.
async fn dns_seeds(dns: &DnsStub, seeds: &mut Seeds) {
    let dns01 = URL_SAFE_NO_PAD.encode(Sha256::digest(KEY_AUTHORIZATION));
    dns.add_txt("_acme-challenge.host.lab.test", &dns01);
    dns.add_txt(
        "_validation-persist.host.lab.test",
        &format!(
            "{ISSUER_DOMAIN}; accounturi={ACCOUNT_URL}; policy=wildcard; persistUntil=1900000000"
        ),
    );
    dns.add_txt(
        "_validation-persist.lab.test",
        &format!("{ISSUER_DOMAIN}; accounturi={ACCOUNT_URL}"),
    );
    for name in [
        "_acme-challenge.host.lab.test",
        "_validation-persist.host.lab.test",
        "_validation-persist.lab.test",
    ] {
        let answer = txt_answer(dns.addr(), name).await;
        let parsed = Message::from_vec(&answer).expect("the stub answers in DNS wire format");
        assert!(
            !parsed.answers().is_empty(),
            "the stub answered TXT at {name}"
        );
        for flags in [0u8, 1 << 1 | 1] {
            let mut seed = vec![flags];
            seed.extend_from_slice(&answer);
            seeds.add("dns_records", seed);
        }
    }
    let issuer = || Some(Name::from_ascii(ISSUER_DOMAIN).unwrap());
    let limited = vec![
        KeyValue::new("accounturi", ACCOUNT_URL),
        KeyValue::new("validationmethods", "dns-01,http-01"),
    ];
    let answers = [
        vec![CAA::new_issue(false, issuer(), vec![])],
        vec![
            CAA::new_issue(false, issuer(), limited),
            CAA::new_issuewild(false, None, vec![]),
            CAA::new_iodef(false, "mailto:security@lab.test".parse().unwrap()),
        ],
        vec![CAA::new_issue(
            true,
            Some(Name::from_ascii("other-ca.test").unwrap()),
            vec![],
        )],
    ];
    for records in answers {
        for flags in [0u8, 1, 1 << 1] {
            let mut seed = vec![flags];
            seed.extend(caa_answer("host.lab.test", records.clone()));
            seeds.add("dns_records", seed);
        }
    }
}

/// Seeds of the TLS-ALPN-01 target: `<identifier>\0<digest><DER>` for the
/// certificates the tests' responder presents, right and wrong.
fn tls_alpn_seeds(seeds: &mut Seeds) {
    let provider = rustls::crypto::ring::default_provider();
    let digest = Sha256::digest(KEY_AUTHORIZATION);
    for identifier in ["host.lab.test", "192.0.2.7", "2001:db8::7"] {
        for kind in [
            ChallengeCert::Correct,
            ChallengeCert::WrongDigest,
            ChallengeCert::ExtraSan,
            ChallengeCert::NotCritical,
        ] {
            let certified = challenge_certificate(identifier, KEY_AUTHORIZATION, kind, &provider);
            let mut seed = identifier.as_bytes().to_vec();
            seed.push(0);
            seed.extend_from_slice(&digest);
            seed.extend_from_slice(certified.cert[0].as_ref());
            seeds.add("tls_alpn01", seed);
        }
    }
}

/// Seeds of the Vault target: `<answer><status - 100, 2 bytes><body>` for
/// what the stand-in (vault-api.md) answers certgate's calls.
async fn vault_seeds(seeds: &mut Seeds) {
    let standin = VaultStandin::start(StandinConfig::lab()).await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}/v1/{path}", standin.addr());
    let key = rcgen::KeyPair::generate().unwrap();
    let csr_der = URL_SAFE_NO_PAD
        .decode(make_csr(&["host.lab.example"], &key))
        .unwrap();
    let csr_pem = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", csr_der));
    let calls = [
        (
            0u8,
            "POST",
            "pki_int/sign/lab-internal",
            Some(json!({"csr": csr_pem, "common_name": "host.lab.example"})),
        ),
        (
            0,
            "POST",
            "pki_int/sign/lab-internal",
            Some(json!({"csr": "not a CSR"})),
        ),
        (
            0,
            "POST",
            "pki_int/sign/no-such-role",
            Some(json!({"csr": csr_pem})),
        ),
        (1, "GET", "pki_int/roles/lab-internal", None),
        (1, "GET", "pki_int/roles/no-such-role", None),
        (2, "GET", "pki_int/cert/ca_chain", None),
        (
            3,
            "POST",
            "pki_int/revoke",
            Some(json!({"serial_number": "01:02"})),
        ),
    ];
    let mut signed_serial = None;
    for (answer, method, path, body) in calls {
        let mut request = match method {
            "GET" => http.get(url(path)),
            _ => http.post(url(path)),
        }
        .header("X-Vault-Token", standin.root_token());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request.send().await.unwrap();
        let status = reply.status().as_u16();
        let body = reply.bytes().await.unwrap();
        if answer == 0 && status == 200 {
            let value: Value = serde_json::from_slice(&body).unwrap();
            signed_serial = value["data"]["serial_number"].as_str().map(str::to_owned);
        }
        let mut seed = vec![answer];
        seed.extend_from_slice(&(status - 100).to_be_bytes());
        seed.extend_from_slice(&body);
        seeds.add("vault_responses", seed);
    }
    let serial = signed_serial.expect("the stand-in signed the CSR");
    let reply = http
        .post(url("pki_int/revoke"))
        .header("X-Vault-Token", standin.root_token())
        .json(&json!({"serial_number": serial}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let mut seed = vec![3, 0, 100];
    seed.extend_from_slice(&reply.bytes().await.unwrap());
    seeds.add("vault_responses", seed);
}

/// Seeds of the problem target: each problem type, with a subproblem.
fn problem_seeds(seeds: &mut Seeds) {
    for kind in ProblemType::ALL {
        let problem = Problem::new(kind, format!("{} happened", kind.name()));
        seeds.add("problem", serde_json::to_vec(&problem).unwrap());
    }
    let compound = Problem::new(ProblemType::RejectedIdentifier, "some names are refused")
        .with_subproblems(vec![Subproblem {
            kind: ProblemType::Caa,
            detail: "CAA forbids".into(),
            identifier: WireIdentifier {
                kind: "dns".into(),
                value: "host.lab.test".into(),
            },
        }]);
    seeds.add("problem", serde_json::to_vec(&compound).unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn real_clients_requests_parse_and_seed_the_fuzz_corpus() {
    require_tool("certbot", "certbot");
    require_tool("lego", "lego");

    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let args = ServeArgs::new(data_dir.path(), dns.addr(), None);
    let root_pem = data_dir.path().join("ca/root.pem");
    let directory = format!("https://{}/acme/directory", args.listen);
    let env = [("RUST_LOG", "info,certgate::wire=trace")];
    let mut certgate = CertgateProcess::start_with(&args, &[], &env).await;
    let logs = || certgate.log();

    let lego = Lego::new(&directory, &root_pem, args.http01_port);
    lego.run(&logs).await;
    lego.revoke(&logs).await;
    let certbot = Certbot::new(&directory, &root_pem, args.http01_port);
    certbot.certonly(&logs).await;

    // What neither sends: an account update, a deactivated authorization,
    // a key rollover (instant-acme's), each with the problems they draw.
    let mut seeds = Seeds::default();
    let raw = RawClient::registered(&directory, &root_pem).await;
    let account = raw.kid.clone().unwrap();
    let updated = raw
        .post(&account, Some(json!({"contact": ["mailto:ops@lab.test"]})))
        .await;
    assert_eq!(updated.status, 200);
    let (_, order) = raw.new_order(&RAW_NAMES).await;
    let authorization = order["authorizations"][0].as_str().unwrap().to_owned();
    let deactivated = raw
        .post(&authorization, Some(json!({"status": "deactivated"})))
        .await;
    assert_eq!(deactivated.status, 200);
    let refused = raw.finalize(&order, &RAW_NAMES).await;
    assert_eq!(refused.status, 403, "finalizing an order that is not ready");
    seeds.add("problem", refused.body.clone());
    let bad = raw
        .post(&raw.url("newOrder"), Some(json!({"identifiers": []})))
        .await;
    assert_eq!(bad.status, 400);
    seeds.add("problem", bad.body.clone());
    let (mut library, _) = instant_acme::Account::builder_with_root(&root_pem)
        .unwrap()
        .create(
            &instant_acme::NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.clone(),
            None,
        )
        .await
        .unwrap();
    let _rolled_over = library.update_key().await.unwrap();

    let requests = wire_requests(&certgate.log());
    assert!(certgate.stop().await.success(), "{}", certgate.log());
    request_seeds(&requests, &mut seeds);
    dns_seeds(&dns, &mut seeds).await;
    tls_alpn_seeds(&mut seeds);
    vault_seeds(&mut seeds).await;
    problem_seeds(&mut seeds);

    // Every target has seeds, here and in the repository.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    if let Ok(dir) = std::env::var("CERTGATE_FUZZ_CORPUS") {
        seeds.write(Path::new(&dir));
    }
    for (target, made) in &seeds.0 {
        assert!(!made.is_empty(), "{target}");
        let committed = std::fs::read_dir(corpus.join(target))
            .map(|d| d.count())
            .unwrap_or(0);
        assert!(committed > 0, "fuzz/corpus/{target} has no seed");
    }
    println!(
        "seeds: {}",
        seeds
            .0
            .iter()
            .map(|(t, s)| format!("{t} {}", s.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
