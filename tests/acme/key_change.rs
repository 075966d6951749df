//! keyChange (RFC 8555 §7.3.5): an account moves to a new key, after which
//! only the new key speaks for it; every malformed rollover is refused with
//! its problem type and leaves the account on its old key.

use certgate_testkit::instance::Instance;
use certgate_testkit::raw_client::{b64, AccountKey, RawClient, Reply};
use instant_acme::{Account, Identifier, NewAccount, NewOrder};
use serde_json::{json, Value};

/// A flattened JWS over `header` and `payload`, signed with `key` (which
/// need not be the client's: the inner JWS is signed by the new key).
fn signed(key: &AccountKey, header: &Value, payload: &[u8]) -> Value {
    let protected = b64(&serde_json::to_vec(header).unwrap());
    let payload = b64(payload);
    let signature = key.sign(format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": b64(&signature)})
}

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

/// The inner protected header a correct client sends for `new_key`.
fn inner_header(client: &RawClient, new_key: &AccountKey) -> Value {
    json!({"alg": "ES256", "jwk": new_key.jwk, "url": client.url("keyChange")})
}

/// The inner payload a correct client sends: its account and current key.
fn inner_payload(client: &RawClient) -> Value {
    json!({"account": client.kid.as_deref().unwrap(), "oldKey": client.key.jwk})
}

/// A correct inner JWS moving `client`'s account to `new_key`.
fn inner_jws(client: &RawClient, new_key: &AccountKey) -> Value {
    signed(
        new_key,
        &inner_header(client, new_key),
        &json_bytes(&inner_payload(client)),
    )
}

/// keyChange with `inner` as the payload of a correct outer JWS.
async fn key_change(client: &RawClient, inner: Value) -> Reply {
    client.post(&client.url("keyChange"), Some(inner)).await
}

/// newAccount with onlyReturnExisting, signed with `key` sent as `jwk`.
async fn existing_account(client: &RawClient, key: &AccountKey) -> Reply {
    let url = client.url("newAccount");
    let header = json!({"alg": "ES256", "nonce": client.nonce().await, "url": url, "jwk": key.jwk});
    let payload = json_bytes(&json!({"onlyReturnExisting": true}));
    client.send_jws(&url, &signed(key, &header, &payload)).await
}

/// The account id at the end of an account URL.
fn account_id(account_url: &str) -> &str {
    account_url.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn after_a_rollover_only_the_new_key_speaks_for_the_account() {
    let instance = Instance::start().await;
    let mut client =
        RawClient::registered(&instance.directory_url(), &instance.root_pem_path()).await;
    let account_url = client.kid.clone().unwrap();
    let new_key = AccountKey::generate();

    let reply = key_change(&client, inner_jws(&client, &new_key)).await;
    assert_eq!(reply.status, 200, "keyChange: {:?}", reply.json());
    assert_eq!(reply.header("location"), Some(account_url.as_str()));
    assert_eq!(reply.json()["status"], "valid");
    assert_eq!(reply.json()["orders"], format!("{account_url}/orders"));

    let old_key = std::mem::replace(&mut client.key, new_key);
    let stored = instance
        .store()
        .account(account_id(&account_url))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.key_thumbprint, client.thumbprint());

    // The new key works, under the same kid.
    client.new_order(&["rolled.lab.example"]).await;
    assert_eq!(client.post(&account_url, None).await.status, 200);

    // The old key, still naming the account by kid, no longer verifies.
    for url in [account_url.clone(), client.url("newOrder")] {
        let payload = if url == account_url {
            Vec::new()
        } else {
            json_bytes(&json!({"identifiers": [{"type": "dns", "value": "old.lab.example"}]}))
        };
        let header = client.header(&url).await;
        let reply = client
            .send_jws(&url, &signed(&old_key, &header, &payload))
            .await;
        assert_eq!(
            (reply.status, reply.problem_type().as_str()),
            (400, "malformed"),
            "{url} signed with the old key: {:?}",
            reply.json()
        );
    }

    // Looking the account up by key: found by the new key only.
    let by_new = existing_account(&client, &client.key).await;
    assert_eq!(
        (by_new.status, by_new.header("location")),
        (200, Some(account_url.as_str()))
    );
    let by_old = existing_account(&client, &old_key).await;
    assert_eq!(
        (by_old.status, by_old.problem_type().as_str()),
        (400, "accountDoesNotExist")
    );
}

#[tokio::test]
async fn a_client_library_rolls_its_key_over() {
    let instance = Instance::start().await;
    let (mut account, old_credentials) = Account::builder_with_root(instance.root_pem_path())
        .unwrap()
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            instance.directory_url(),
            None,
        )
        .await
        .unwrap();
    let account_url = account.id().to_owned();
    let credentials = account.update_key().await.unwrap();
    assert_eq!(
        serde_json::to_value(&credentials).unwrap()["id"],
        account_url
    );
    let identifiers = [Identifier::Dns("library.lab.example".into())];
    account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .unwrap();

    // The credentials saved before the rollover no longer work.
    let stale = Account::builder_with_root(instance.root_pem_path())
        .unwrap()
        .from_credentials(old_credentials)
        .await
        .unwrap();
    assert!(stale.new_order(&NewOrder::new(&identifiers)).await.is_err());
}

#[tokio::test]
async fn of_two_concurrent_rollovers_one_wins() {
    let instance = Instance::start().await;
    let mut client =
        RawClient::registered(&instance.directory_url(), &instance.root_pem_path()).await;
    let account_url = client.kid.clone().unwrap();
    let (a, b) = (AccountKey::generate(), AccountKey::generate());
    let (inner_a, inner_b) = (inner_jws(&client, &a), inner_jws(&client, &b));

    let (reply_a, reply_b) =
        tokio::join!(key_change(&client, inner_a), key_change(&client, inner_b));
    let (winner, loser, loser_reply) = match (reply_a.status, reply_b.status) {
        (200, _) => (a, b, reply_b),
        (_, 200) => (b, a, reply_a),
        _ => panic!("neither rollover succeeded: {reply_a:?} {reply_b:?}"),
    };
    assert_eq!(
        (loser_reply.status, loser_reply.problem_type().as_str()),
        (400, "malformed"),
        "{:?}",
        loser_reply.json()
    );
    let by_winner = existing_account(&client, &winner).await;
    assert_eq!(by_winner.header("location"), Some(account_url.as_str()));
    let by_loser = existing_account(&client, &loser).await;
    assert_eq!(by_loser.problem_type(), "accountDoesNotExist");

    client.key = winner;
    assert_eq!(client.post(&account_url, None).await.status, 200);
}

/// One bad rollover: what was sent, what came back, what should have.
struct Case {
    name: &'static str,
    reply: Reply,
    status: u16,
    problem: &'static str,
    /// A fragment of the detail, naming the check that refused it.
    detail: &'static str,
    location: Option<String>,
}

#[tokio::test]
async fn bad_rollovers_are_refused_and_change_nothing() {
    let instance = Instance::start().await;
    let root = instance.root_pem_path();
    let client = RawClient::registered(&instance.directory_url(), &root).await;
    let account_url = client.kid.clone().unwrap();
    let thumbprint = client.thumbprint();
    let other = RawClient::registered(&instance.directory_url(), &root).await;
    let other_url = other.kid.clone().unwrap();
    let new_key = AccountKey::generate();
    let header = inner_header(&client, &new_key);
    let payload = inner_payload(&client);
    let mut cases = Vec::new();

    // Each case is sent, then the account must still answer to its old key.
    macro_rules! case {
        ($name:expr, $reply:expr, $status:expr, $problem:expr, $detail:expr, $location:expr) => {{
            let reply = $reply;
            let still = client.post(&account_url, None).await;
            assert_eq!(still.status, 200, "after {}: {:?}", $name, still.json());
            cases.push(Case {
                name: $name,
                reply,
                status: $status,
                problem: $problem,
                detail: $detail,
                location: $location,
            });
        }};
    }

    case!(
        "inner signed by the old key",
        key_change(&client, signed(&client.key, &header, &json_bytes(&payload))).await,
        400,
        "malformed",
        "signature does not verify",
        None
    );

    let mut wrong = payload.clone();
    wrong["account"] = json!(other_url);
    case!(
        "inner account is another account",
        key_change(&client, signed(&new_key, &header, &json_bytes(&wrong))).await,
        400,
        "malformed",
        "is not the account that signed",
        None
    );

    let mut wrong = payload.clone();
    wrong["account"] = json!(format!("{account_url}/"));
    case!(
        "inner account is not exactly the kid",
        key_change(&client, signed(&new_key, &header, &json_bytes(&wrong))).await,
        400,
        "malformed",
        "is not the account that signed",
        None
    );

    let mut wrong = payload.clone();
    wrong["oldKey"] = AccountKey::generate().jwk;
    case!(
        "inner oldKey is not the current key",
        key_change(&client, signed(&new_key, &header, &json_bytes(&wrong))).await,
        400,
        "malformed",
        "oldKey is not the account's current key",
        None
    );

    let mut wrong = payload.clone();
    wrong["oldKey"] = other.key.jwk.clone();
    case!(
        "inner oldKey is another account's key",
        key_change(&client, signed(&new_key, &header, &json_bytes(&wrong))).await,
        400,
        "malformed",
        "oldKey is not the account's current key",
        None
    );

    let mut wrong = payload.clone();
    wrong.as_object_mut().unwrap().remove("oldKey");
    case!(
        "inner payload lacks oldKey",
        key_change(&client, signed(&new_key, &header, &json_bytes(&wrong))).await,
        400,
        "malformed",
        "missing field `oldKey`",
        None
    );

    let mut wrong = header.clone();
    wrong["url"] = json!(client.url("newAccount"));
    case!(
        "inner url differs from the outer url",
        key_change(&client, signed(&new_key, &wrong, &json_bytes(&payload))).await,
        400,
        "malformed",
        "is not the outer JWS url",
        None
    );

    let mut wrong = header.clone();
    wrong["nonce"] = json!(client.nonce().await);
    case!(
        "inner carries a nonce",
        key_change(&client, signed(&new_key, &wrong, &json_bytes(&payload))).await,
        400,
        "malformed",
        "must not carry a nonce",
        None
    );

    let mut wrong = header.clone();
    wrong.as_object_mut().unwrap().remove("jwk");
    wrong["kid"] = json!(account_url);
    case!(
        "inner names a kid instead of the new jwk",
        key_change(&client, signed(&new_key, &wrong, &json_bytes(&payload))).await,
        400,
        "malformed",
        "must be sent as jwk",
        None
    );

    let mut wrong = header.clone();
    wrong["kid"] = json!(account_url);
    case!(
        "inner carries both jwk and kid",
        key_change(&client, signed(&new_key, &wrong, &json_bytes(&payload))).await,
        400,
        "malformed",
        "both jwk and kid",
        None
    );

    let mut wrong = header.clone();
    wrong["alg"] = json!("HS256");
    case!(
        "inner algorithm outside the allowed list",
        key_change(&client, signed(&new_key, &wrong, &json_bytes(&payload))).await,
        400,
        "badSignatureAlgorithm",
        "is not accepted",
        None
    );

    let mut wrong = header.clone();
    wrong["jwk"] = json!({"kty": "RSA", "n": b64(&[0xc5; 128]), "e": "AQAB"});
    case!(
        "new key is a 1024-bit RSA key",
        key_change(&client, signed(&new_key, &wrong, &json_bytes(&payload))).await,
        400,
        "badPublicKey",
        "RSA key is 1024 bits",
        None
    );

    case!(
        "new key belongs to another account",
        key_change(
            &client,
            signed(
                &other.key,
                &inner_header(&client, &other.key),
                &json_bytes(&payload)
            )
        )
        .await,
        409,
        "malformed",
        "already the key of another account",
        Some(other_url.clone())
    );

    case!(
        "new key is the old key",
        key_change(
            &client,
            signed(
                &client.key,
                &inner_header(&client, &client.key),
                &json_bytes(&payload)
            )
        )
        .await,
        400,
        "malformed",
        "the new key is the account's current key",
        None
    );

    case!(
        "payload is not a JWS",
        key_change(&client, payload.clone()).await,
        400,
        "malformed",
        "not a flattened JWS",
        None
    );

    let url = client.url("keyChange");
    let mut outer = client.header(&url).await;
    outer.as_object_mut().unwrap().remove("kid");
    outer["jwk"] = client.key.jwk.clone();
    case!(
        "outer JWS carries jwk instead of kid",
        client
            .send_jws(
                &url,
                &client.jws(&outer, &json_bytes(&inner_jws(&client, &new_key)))
            )
            .await,
        400,
        "malformed",
        "identified by kid",
        None
    );

    let mut failures = Vec::new();
    for case in &cases {
        let got = (case.reply.status, case.reply.problem_type());
        if got != (case.status, case.problem.to_owned()) {
            failures.push(format!(
                "{}: expected {} {}, got {} {} {}",
                case.name,
                case.status,
                case.problem,
                got.0,
                got.1,
                String::from_utf8_lossy(&case.reply.body)
            ));
        }
        let detail = case.reply.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !detail.contains(case.detail) {
            failures.push(format!(
                "{}: detail {detail:?} does not mention {:?}",
                case.name, case.detail
            ));
        }
        if case.reply.header("location") != case.location.as_deref() {
            failures.push(format!(
                "{}: Location {:?}, expected {:?}",
                case.name,
                case.reply.header("location"),
                case.location
            ));
        }
        if case.reply.header("content-type") != Some("application/problem+json") {
            failures.push(format!("{}: not a problem document", case.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // Nothing moved: both accounts keep their keys; the new key is unbound.
    let stored = instance
        .store()
        .account(account_id(&account_url))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.key_thumbprint, thumbprint);
    assert_eq!(other.post(&other_url, None).await.status, 200);
    let by_new = existing_account(&client, &new_key).await;
    assert_eq!(by_new.problem_type(), "accountDoesNotExist");
}

#[tokio::test]
async fn the_stored_key_changes_only_from_the_expected_old_key() {
    let instance = Instance::start().await;
    let root = instance.root_pem_path();
    let client = RawClient::registered(&instance.directory_url(), &root).await;
    let other = RawClient::registered(&instance.directory_url(), &root).await;
    let id = account_id(client.kid.as_deref().unwrap()).to_owned();
    let other_id = account_id(other.kid.as_deref().unwrap()).to_owned();
    let store = instance.store();
    let new_key = AccountKey::generate();
    let new = RawClient {
        key: new_key,
        kid: None,
        ..RawClient::new(&instance.directory_url(), &root).await
    };
    let (old_thumbprint, new_thumbprint) = (client.thumbprint(), new.thumbprint());

    // A stale old key (someone else rolled over first) loses.
    let stale = store
        .update_account_key(&id, &new_thumbprint, &old_thumbprint, &client.key.jwk)
        .await
        .unwrap();
    assert_eq!(stale, Ok(false));
    // The new key of another account: that account is named.
    let taken = store
        .update_account_key(&id, &old_thumbprint, &other.thumbprint(), &other.key.jwk)
        .await
        .unwrap();
    assert_eq!(taken, Err(other_id));
    // The expected old key wins once; repeating it is then stale.
    for expected in [Ok(true), Ok(false)] {
        let outcome = store
            .update_account_key(&id, &old_thumbprint, &new_thumbprint, &new.key.jwk)
            .await
            .unwrap();
        assert_eq!(outcome, expected);
    }
    let stored = store.account(&id).await.unwrap().unwrap();
    assert_eq!(
        (stored.key_thumbprint.as_str(), &stored.jwk),
        (new_thumbprint.as_str(), &new.key.jwk)
    );
}
