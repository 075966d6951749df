//! Validation cannot be turned against the network it runs in, against the
//! built binary: a redirect to a service on loopback is followed (internal
//! hosts are what certgate is for) but nothing that service answers reaches
//! the client; redirects and names that lead to an unspecified address
//! (`0.0.0.0`, `::`, which reach the local host by another name) or to a
//! cloud metadata address are refused before any connection; and `0.0.0.0`
//! and `::` are never identifiers.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use certgate_testkit::http01::Http01Responder;
use certgate_testkit::served::Served;

/// What an internal service on loopback answers: it looks like a key
/// authorization, so only the redirect rule keeps it out of the error.
const SECRET: &str = "c2VjcmV0LWludGVybmFs.dG9rZW4tb2YtdGhlLWFkbWlu";
const FORBIDDEN_SECRET: &str = "internal admin password hunter2";

/// A service on `addr` that answers [`SECRET`] at `/secret` and 403 with
/// [`FORBIDDEN_SECRET`] elsewhere, counting the requests it gets.
async fn internal_service(addr: SocketAddr) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let (secret_hits, other_hits) = (hits.clone(), hits.clone());
    let app = Router::new()
        .route(
            "/secret",
            get(move || async move {
                secret_hits.fetch_add(1, Ordering::SeqCst);
                SECRET
            }),
        )
        .fallback(move || async move {
            other_hits.fetch_add(1, Ordering::SeqCst);
            (StatusCode::FORBIDDEN, FORBIDDEN_SECRET)
        });
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (hits, task)
}

fn detail(challenge: &Value) -> &str {
    challenge["error"]["detail"].as_str().unwrap_or_default()
}

/// Whether any 6 consecutive characters of `answer` appear in `text`.
fn quotes_any_of(text: &str, answer: &str) -> bool {
    let bytes = answer.as_bytes();
    bytes
        .windows(6)
        .any(|w| text.contains(std::str::from_utf8(w).unwrap()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_a_loopback_service_shows_nothing_of_its_answer() {
    let served = Served::start().await;
    let port = served.http01.port();
    // Another loopback address, on the challenge port itself.
    let (hits, _service) = internal_service(SocketAddr::new([127, 0, 0, 2].into(), port)).await;
    let client = served.registered_client(None).await;

    let challenge = client
        .attempt_http01("loop.lab.example", |token, _| {
            let to = format!("http://127.0.0.2:{port}/secret");
            served.http01.redirect(token, &to);
        })
        .await;
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the redirect was followed");
    assert_eq!(challenge["status"], "invalid", "{challenge}");
    assert_eq!(
        challenge["error"]["type"],
        "urn:ietf:params:acme:error:incorrectResponse"
    );
    let text = detail(&challenge);
    assert!(!quotes_any_of(&challenge.to_string(), SECRET), "{text}");
    assert!(
        text.contains(&format!(
            "{} bytes (not quoted: fetched after a redirect)",
            SECRET.len()
        )),
        "{text}"
    );

    let challenge = client
        .attempt_http01("loop2.lab.example", |token, _| {
            let to = format!("http://127.0.0.2:{port}/admin");
            served.http01.redirect(token, &to);
        })
        .await;
    assert_eq!(hits.load(Ordering::SeqCst), 2, "the redirect was followed");
    assert_eq!(challenge["status"], "invalid", "{challenge}");
    let text = detail(&challenge);
    assert!(text.contains("403 Forbidden"), "{text}");
    assert!(
        !quotes_any_of(&challenge.to_string(), FORBIDDEN_SECRET),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unspecified_and_metadata_addresses_are_refused_before_connecting() {
    let served = Served::start().await;
    let port = served.http01.port();
    // Bait: were certgate to connect to 0.0.0.0 or ::, it would reach these
    // loopback responders, which serve the right key authorization.
    let v6 = Http01Responder::start_on(SocketAddr::new("::1".parse().unwrap(), port)).await;
    let unspecified: [IpAddr; 2] = ["0.0.0.0".parse().unwrap(), "::".parse().unwrap()];
    served.dns.set_addresses("zero.lab.example", &unspecified);
    let client = served.registered_client(None).await;

    let bait = |n: usize| format!("/.well-known/acme-challenge/bait-{n}");
    let targets = [
        format!("http://0.0.0.0:{port}{}", bait(0)),
        format!("http://[::]:{port}{}", bait(1)),
        format!("http://[::ffff:0.0.0.0]:{port}{}", bait(2)),
        format!("http://zero.lab.example:{port}{}", bait(3)),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fe80::1]/".to_owned(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_owned(),
        "http://100.100.100.200/latest/meta-data/".to_owned(),
    ];
    for (n, target) in targets.iter().enumerate() {
        let started = Instant::now();
        let challenge = client
            .attempt_http01(&format!("t{n}.lab.example"), |token, key_authz| {
                served.http01.serve(&format!("bait-{n}"), key_authz);
                v6.serve(&format!("bait-{n}"), key_authz);
                served.http01.redirect(token, target);
            })
            .await;
        let elapsed = started.elapsed();
        assert_eq!(challenge["status"], "invalid", "{target}: {challenge}");
        assert_eq!(
            challenge["error"]["type"], "urn:ietf:params:acme:error:connection",
            "{target}"
        );
        let text = detail(&challenge);
        assert!(text.contains("refused by policy"), "{target}: {text}");
        assert!(
            !text.to_lowercase().contains("error trying to connect"),
            "{text}"
        );
        // A connection attempt to an address nobody answers takes 10 s.
        assert!(elapsed < Duration::from_secs(5), "{target}: {elapsed:?}");
        println!("{target}: refused in {elapsed:?}: {text}");
    }

    // A name that resolves only to unspecified addresses.
    let challenge = client
        .attempt_http01("zero.lab.example", |token, key_authz| {
            served.http01.serve(token, key_authz);
            v6.serve(token, key_authz);
        })
        .await;
    assert_eq!(challenge["status"], "invalid", "{challenge}");
    let text = detail(&challenge);
    assert!(
        text.contains("refused by policy") && text.contains("unspecified address"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unspecified_ip_identifiers_are_refused_at_new_order() {
    let served = Served::start().await;
    let client = served.registered_client(None).await;
    for value in ["0.0.0.0", "::", "0.1.2.3"] {
        let reply = client
            .post(
                &client.url("newOrder"),
                Some(json!({"identifiers": [{"type": "ip", "value": value}]})),
            )
            .await;
        assert_eq!(reply.status, 400, "{value}: {:?}", reply.json());
        assert_eq!(reply.problem_type(), "rejectedIdentifier", "{value}");
        assert!(
            reply.json()["detail"]
                .as_str()
                .unwrap()
                .contains("unspecified"),
            "{:?}",
            reply.json()
        );
    }
    // A real address is still an identifier.
    let (_, order) = client.new_order(&["127.0.0.1"]).await;
    assert_eq!(order["status"], "pending");
}
