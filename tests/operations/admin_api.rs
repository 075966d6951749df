//! The admin HTTP API of the built binary, on its own listener with the
//! token from `admin_token_file`: refused without the token, the inventory
//! with it, and no admin listener at all unless configured.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::{json, Value};

use certgate_testkit::chain_ders;
use certgate_testkit::inventory::{
    audited, leaf_serial, openssl_der_serial, serials, TWO_LIFETIMES,
};
use certgate_testkit::process::{certgate_command, free_port};
use certgate_testkit::served::Served;

const TOKEN: &str = "admin-token-4f1c9e7a2b";

/// The config lines that turn the admin API on, with the token file
/// written (mode 600) into `dir`.
fn admin_settings(dir: &Path, listen: SocketAddr, token: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let token_file = dir.join("admin-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!(
        "admin_listen = \"{listen}\"\nadmin_token_file = \"{}\"",
        token_file.display()
    )
}

/// A GET or POST to the admin API, with `token` as bearer when given.
async fn admin(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = http.request(method, url);
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    request.send().await.expect("the admin API answers")
}

/// Asserts `response` is an RFC 7807 problem with `status`; returns its detail.
async fn problem(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], "about:blank", "{body}");
    body["detail"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_needs_the_token_and_serves_the_inventory() {
    let secrets = tempfile::tempdir().unwrap();
    let admin_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut served = Served::start_with_config(Some(&format!(
        "{}\n{TWO_LIFETIMES}",
        admin_settings(secrets.path(), admin_addr, TOKEN)
    )))
    .await;
    assert!(
        served
            .certgate
            .log()
            .contains(&format!("admin API is serving listen={admin_addr}")),
        "{}",
        served.certgate.log()
    );
    let short = served.registered_client(Some("short")).await;
    let long = served.registered_client(Some("long")).await;
    let short_chain = short.issue(&served.http01, &["a.short.example"]).await;
    let long_chain = long.issue(&served.http01, &["long.example"]).await;
    let (short_serial, long_serial) = (leaf_serial(&short_chain), leaf_serial(&long_chain));
    // The client trusts certgate's root, which the admin listener shares.
    let http = &short.http;
    let url = |path: &str| format!("https://localhost:{}/admin/v1/{path}", admin_addr.port());
    let get = |path: &str, token: Option<&'static str>| {
        admin(http, reqwest::Method::GET, url(path), token)
    };
    // The JSON body of a GET with the token.
    let get_json = |path: &str| {
        let response = get(path, Some(TOKEN));
        async move { response.await.json::<Value>().await.unwrap() }
    };

    let missing = get("certificates", None).await;
    assert_eq!(
        missing.headers()[WWW_AUTHENTICATE],
        r#"Bearer realm="certgate admin""#
    );
    problem(missing, 401).await;
    let wrong = get("certificates", Some("admin-token-4f1c9e7a2c")).await;
    assert!(wrong.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .contains(r#"error="invalid_token""#));
    problem(wrong, 401).await;
    // Unknown paths are behind the token too, so probing learns nothing.
    problem(get("nothing-here", None).await, 401).await;
    problem(get("nothing-here", Some(TOKEN)).await, 404).await;

    let all = get_json("certificates").await;
    assert_eq!(
        serials(&all),
        [short_serial.clone(), long_serial.clone()].into()
    );
    let expiring = get_json("certificates?expiring_within=30d").await;
    assert_eq!(serials(&expiring), [short_serial.clone()].into());
    let by_profile = get_json("certificates?profile=long").await;
    assert_eq!(serials(&by_profile), [long_serial.clone()].into());
    let detail = problem(
        get("certificates?expiring_within=soon", Some(TOKEN)).await,
        400,
    )
    .await;
    assert!(detail.contains("\"soon\""), "{detail}");
    problem(get("certificates?revoked=maybe", Some(TOKEN)).await, 400).await;

    let one = get_json(&format!("certificates/{short_serial}")).await;
    assert_eq!(one, expiring[0], "the same object as in the list");
    let der = get(&format!("certificates/{short_serial}/der"), Some(TOKEN)).await;
    assert_eq!(der.status(), 200);
    assert_eq!(der.headers()[CONTENT_TYPE], "application/pkix-cert");
    let der = der.bytes().await.unwrap();
    assert_eq!(openssl_der_serial(&der), short_serial);
    let pem = get(
        &format!("certificates/{short_serial}/pem?chain=true"),
        Some(TOKEN),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(chain_ders(&pem), chain_ders(&short_chain));
    problem(
        get(
            &format!("certificates/{short_serial}/der?chain=true"),
            Some(TOKEN),
        )
        .await,
        400,
    )
    .await;
    problem(get("certificates/0badc0de", Some(TOKEN)).await, 404).await;

    // A renewal supersedes: listed again only with `all`, as `certs list --all`.
    let renewed = leaf_serial(&short.issue(&served.http01, &["a.short.example"]).await);
    assert_eq!(
        serials(&get_json("certificates").await),
        [renewed.clone(), long_serial.clone()].into()
    );
    let every = get_json("certificates?all=true").await;
    assert_eq!(
        serials(&every),
        [short_serial.clone(), renewed, long_serial.clone()].into()
    );
    assert!(every
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["serial"] == short_serial.as_str() && c["superseded"] == true));

    let accounts = get_json("accounts").await;
    assert_eq!(accounts.as_array().unwrap().len(), 2, "{accounts}");
    let long_id = long.kid.as_deref().unwrap().rsplit('/').next().unwrap();
    let deactivate = |id: &str, token: Option<&'static str>| {
        admin(
            http,
            reqwest::Method::POST,
            url(&format!("accounts/{id}/deactivate")),
            token,
        )
    };
    problem(deactivate(long_id, None).await, 401).await;
    long.new_order(&["still-allowed.example"]).await;
    let deactivated: Value = deactivate(long_id, Some(TOKEN)).await.json().await.unwrap();
    assert_eq!(deactivated["id"], long_id);
    assert_eq!(deactivated["status"], "deactivated");
    assert_eq!(deactivated["certificates"], 1);
    let refused = long
        .post(
            &long.url("newOrder"),
            Some(json!({"identifiers": [{"type": "dns", "value": "refused.example"}]})),
        )
        .await;
    assert_eq!(
        refused.problem_type(),
        "unauthorized",
        "{:?}",
        refused.json()
    );
    let again: Value = deactivate(long_id, Some(TOKEN)).await.json().await.unwrap();
    assert_eq!(again, deactivated, "asking again changes nothing");
    problem(deactivate("no-such-account", Some(TOKEN)).await, 404).await;
    let deactivations = audited(served.data_dir.path(), "account_deactivated");
    assert_eq!(
        deactivations.len(),
        1,
        "only the change is audited: {deactivations:?}"
    );
    assert_eq!(deactivations[0]["account"], long_id);
    assert_eq!(deactivations[0]["by"], json!({"kind": "admin_api"}));

    served.certgate.stop().await;
    let log = served.certgate.log();
    assert!(log.contains("admin API request refused"), "{log}");
    assert!(!log.contains(TOKEN), "the token reached the log:\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_admin_settings_there_is_no_admin_api() {
    let served = Served::start_with_config(Some(TWO_LIFETIMES)).await;
    let client = served.registered_client(Some("long")).await;
    let on_main = client
        .http
        .get(format!(
            "https://localhost:{}/admin/v1/certificates",
            served.args.listen.port()
        ))
        .header(AUTHORIZATION, format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        on_main.status(),
        404,
        "the main listener serves no admin API"
    );
    assert!(
        !served.certgate.log().contains("admin API"),
        "{}",
        served.certgate.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_token_file_keeps_certgate_from_starting() {
    let data_dir = tempfile::tempdir().unwrap();
    let admin_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = data_dir.path().join("certgate.toml");
    std::fs::write(&config, admin_settings(data_dir.path(), admin_addr, "")).unwrap();
    let run = certgate_command()
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir.path())
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("certgate refuses to start instead of serving")
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is empty: the admin API never runs without a token"),
        "{stderr}"
    );
}

/// Asserts `response` is an ACME `malformed` problem with `status`.
async fn malformed(what: &str, response: reqwest::Response, status: u16) {
    assert_eq!(response.status().as_u16(), status, "{what}");
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/problem+json",
        "{what}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["type"], "urn:ietf:params:acme:error:malformed",
        "{what}: {body}"
    );
    assert_eq!(body["status"], status, "{what}: {body}");
}

/// What axum's extractors and router would refuse as `text/plain` (a path
/// parameter that is not UTF-8 once decoded, a repeated or unknown query
/// key, an unknown path or method) is a problem document on every
/// listener: ACME's `malformed` on the main one, `about:blank` on the
/// admin API. The admin listener's `/status` lists certificates behind the
/// token; the public one does not by default.
#[tokio::test(flavor = "multi_thread")]
async fn every_listener_answers_what_it_cannot_parse_with_a_problem() {
    let secrets = tempfile::tempdir().unwrap();
    let admin_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let settings = format!(
        "{}\nmetrics_listen = \"{metrics_addr}\"",
        admin_settings(secrets.path(), admin_addr, TOKEN)
    );
    let served = Served::start_with_config(Some(&format!("{}\n{TWO_LIFETIMES}", settings))).await;
    let client = served.registered_client(Some("short")).await;
    let chain = client
        .issue(&served.http01, &["listed.short.example"])
        .await;
    let serial = leaf_serial(&chain);
    let http = &client.http;
    let main = |path: &str| format!("https://localhost:{}{path}", served.args.listen.port());
    let jose = |url: String| {
        http.post(url)
            .header(CONTENT_TYPE, "application/jose+json")
            .body("{}")
            .send()
    };

    for (what, response, status) in [
        (
            "not UTF-8 in a path parameter",
            jose(main("/acme/order/%FF")).await.unwrap(),
            400,
        ),
        (
            "not UTF-8 in a profile",
            jose(main("/acme/%C3%28/new-order")).await.unwrap(),
            400,
        ),
        (
            "a repeated cursor",
            jose(main("/acme/acct/x/orders?cursor=1&cursor=2"))
                .await
                .unwrap(),
            400,
        ),
        (
            "renewal information for a non-UTF-8 id",
            http.get(main("/acme/renewal-info/%FF"))
                .send()
                .await
                .unwrap(),
            400,
        ),
        (
            "an unknown method on an ACME resource",
            http.delete(main("/acme/new-order")).send().await.unwrap(),
            405,
        ),
        (
            "an unknown method on the status page",
            http.put(main("/status")).send().await.unwrap(),
            405,
        ),
        (
            "an unknown path outside /acme",
            http.get(main("/nothing-here")).send().await.unwrap(),
            404,
        ),
        (
            "an unknown path on the metrics listener",
            http.get(format!("http://{metrics_addr}/nothing-here"))
                .send()
                .await
                .unwrap(),
            404,
        ),
        (
            "an unknown method on the metrics listener",
            http.post(format!("http://{metrics_addr}/metrics"))
                .send()
                .await
                .unwrap(),
            405,
        ),
    ] {
        malformed(what, response, status).await;
    }

    let admin_url = |path: &str| format!("https://localhost:{}{path}", admin_addr.port());
    let get = |path: &str| admin(http, reqwest::Method::GET, admin_url(path), Some(TOKEN));
    for (path, status) in [
        ("/admin/v1/certificates/%FF", 400),
        ("/admin/v1/certificates?profile=a&profile=b", 400),
        ("/admin/v1/certificates?colour=red", 400),
        ("/admin/v1/certificates/00/pem?chain=maybe", 400),
    ] {
        let detail = problem(get(path).await, status).await;
        assert!(!detail.is_empty(), "{path}");
    }
    let wrong_method = admin(
        http,
        reqwest::Method::DELETE,
        admin_url("/admin/v1/accounts"),
        Some(TOKEN),
    )
    .await;
    problem(wrong_method, 405).await;

    // The certificate table: behind the admin token, not on the public page.
    let public = http.get(main("/status")).send().await.unwrap();
    let public = public.text().await.unwrap();
    assert!(public.contains("certificates-hidden"), "{public}");
    assert!(!public.contains(&serial), "{public}");
    problem(
        admin(http, reqwest::Method::GET, admin_url("/status"), None).await,
        401,
    )
    .await;
    let behind_token = get("/status").await.text().await.unwrap();
    assert!(behind_token.contains(&serial), "{behind_token}");
    assert!(behind_token.contains("listed.short.example"));
}
