//! The binding newAccount carries (RFC 8555 §7.3.4), and the checks of the
//! account's binding at newOrder, challenge and finalize.

use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use crate::config::EabPolicy;
use crate::domain::profiles::Profile;
use crate::protocol::identifiers::OrderedIdentifier;
use crate::protocol::jwk::PublicJwk;
use crate::protocol::jws::FlattenedJws;
use crate::protocol::problem::{Problem, ProblemType, Subproblem};
use crate::store::eab::{BoundAccount, EabKeyRecord};
use crate::store::{Account, NewAccount, Store};

use super::{HmacKey, Keyring, NamesLimit, BINDING_ALGORITHM};

/// The binding newAccount must verify, if any: `None` when the profile
/// does not use one (an `off` profile ignores a binding it is sent).
pub fn binding_to_verify<'a>(
    profile: &Profile,
    binding: Option<&'a Value>,
) -> Result<Option<&'a Value>, Problem> {
    match (profile.eab, binding) {
        (EabPolicy::Off, Some(_)) => {
            tracing::info!(
                "newAccount carries an external account binding; the profile uses none, so it is not checked"
            );
            Ok(None)
        }
        (EabPolicy::Required, None) => Err(Problem::new(
            ProblemType::ExternalAccountRequired,
            format!(
                "profile {:?} requires an external account binding: ask the operator for a key \
                 (certgate eab create) and give its kid and HMAC key to the ACME client",
                profile.name
            ),
        )
        .with_status(StatusCode::FORBIDDEN)),
        (_, binding) => Ok(binding),
    }
}

#[derive(Debug, Deserialize)]
struct BindingHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    nonce: Option<Value>,
    #[serde(default)]
    jwk: Option<Value>,
    #[serde(default)]
    crit: Option<Value>,
}

fn malformed(detail: impl std::fmt::Display) -> Problem {
    Problem::malformed(format!("externalAccountBinding: {detail}"))
}

fn b64(field: &str, text: &str) -> Result<Vec<u8>, Problem> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| malformed(format!("{field} is not base64url without padding")))
}

/// A binding JWS checked for form, its MAC not yet verified.
pub struct Binding {
    /// The external account key it names.
    pub kid: String,
    signing_input: Vec<u8>,
    mac: Vec<u8>,
}

impl Binding {
    /// Whether its MAC is that of `key`.
    pub fn is_signed_with(&self, key: &HmacKey) -> bool {
        key.verify(&self.signing_input, &self.mac)
    }
}

/// RFC 8555 §7.3.4: everything about the binding that needs no key.
pub fn parse_binding(
    value: &Value,
    new_account_url: &str,
    account_key: &PublicJwk,
) -> Result<Binding, Problem> {
    let jws: FlattenedJws = serde_json::from_value(value.clone())
        .map_err(|e| malformed(format!("not a flattened JWS: {e}")))?;
    let header: BindingHeader = serde_json::from_slice(&b64("protected header", &jws.protected)?)
        .map_err(|e| malformed(format!("protected header: {e}")))?;
    if header.alg != BINDING_ALGORITHM {
        return Err(malformed(format!(
            "algorithm {:?} is not accepted; the binding is a MAC with {BINDING_ALGORITHM}",
            header.alg
        )));
    }
    if header.nonce.is_some() {
        return Err(malformed("the protected header must not have a nonce"));
    }
    if header.jwk.is_some() || header.crit.is_some() {
        return Err(malformed(
            "the protected header may have only alg, kid and url",
        ));
    }
    let kid = header
        .kid
        .filter(|k| !k.is_empty())
        .ok_or_else(|| malformed("the protected header has no kid"))?;
    let url = header
        .url
        .ok_or_else(|| malformed("the protected header has no url"))?;
    if url != new_account_url {
        return Err(Problem::unauthorized(format!(
            "externalAccountBinding url {url:?} is not this newAccount URL {new_account_url:?}"
        )));
    }
    let payload: Value = serde_json::from_slice(&b64("payload", &jws.payload)?)
        .map_err(|e| malformed(format!("payload is not the account JWK: {e}")))?;
    let bound_key = PublicJwk::parse(&payload)
        .map_err(|e| malformed(format!("payload is not the account JWK: {}", e.detail)))?;
    if bound_key.thumbprint != account_key.thumbprint {
        return Err(Problem::unauthorized(
            "externalAccountBinding is for another account key than the one signing this request",
        ));
    }
    Ok(Binding {
        kid,
        mac: b64("signature", &jws.signature)?,
        signing_input: format!("{}.{}", jws.protected, jws.payload).into_bytes(),
    })
}

/// Why `record` cannot bind an account now, if it cannot.
fn unusable(record: &EabKeyRecord, now: i64) -> Option<String> {
    let kid = &record.kid;
    if record.revoked_at.is_some() {
        Some(format!("external account key {kid} has been revoked"))
    } else if record.account_id.is_some() {
        Some(format!(
            "external account key {kid} is already bound to an account; a key binds one account"
        ))
    } else if record.expired(now) {
        Some(format!("external account key {kid} has expired"))
    } else {
        None
    }
}

/// Verifies a binding sent to newAccount of `profile`; returns its kid.
async fn verify_binding(
    store: &Store,
    keyring: &Keyring,
    new_account_url: &str,
    profile: &Profile,
    account_key: &PublicJwk,
    value: &Value,
    now: i64,
) -> Result<String, Problem> {
    let binding = parse_binding(value, new_account_url, account_key)?;
    let unknown = || {
        Problem::unauthorized(format!(
            "external account key {:?} is not a key of profile {:?}",
            binding.kid, profile.name
        ))
    };
    let record = store
        .eab_key(&binding.kid)
        .await?
        .filter(|r| r.profile == profile.name)
        .ok_or_else(unknown)?;
    let hmac_key = keyring
        .load()
        .and_then(|kek| kek.open(&record))
        .map_err(|e| Problem::internal("reading an external account key", &e))?;
    if !binding.is_signed_with(&hmac_key) {
        tracing::info!(kid = %record.kid, "external account binding MAC does not verify");
        return Err(Problem::unauthorized(format!(
            "externalAccountBinding MAC does not verify with the HMAC key of {}",
            record.kid
        )));
    }
    if let Some(why) = unusable(&record, now) {
        tracing::info!(kid = %record.kid, "{why}");
        return Err(Problem::unauthorized(why));
    }
    Ok(record.kid)
}

/// newAccount with a binding: verifies it, then creates the account bound
/// to the key. Returns the account and, when it was created now, the kid
/// of the key it was bound with (an account that already holds the JWK is
/// returned as it is, and no key is used).
#[allow(clippy::too_many_arguments)]
pub async fn create_bound_account(
    store: &Store,
    keyring: &Keyring,
    new_account_url: &str,
    profile: &Profile,
    account_key: &PublicJwk,
    binding: &Value,
    new: &NewAccount,
    now: i64,
) -> Result<(Account, Option<String>), Problem> {
    let kid = verify_binding(
        store,
        keyring,
        new_account_url,
        profile,
        account_key,
        binding,
        now,
    )
    .await?;
    let id = crate::util::ids::resource_id();
    match store
        .create_account_with_eab(&id, new, &kid, &profile.name, now)
        .await?
    {
        BoundAccount::Created(account) => {
            tracing::info!(account = %account.id, kid = %kid, "account bound to an external account key");
            Ok((account, Some(kid)))
        }
        BoundAccount::Existing(account) => Ok((account, None)),
        BoundAccount::KeyUnavailable => {
            // Someone else changed the key between the check and the write.
            let why = store
                .eab_key(&kid)
                .await?
                .and_then(|record| unusable(&record, now))
                .unwrap_or_else(|| format!("external account key {kid} cannot bind an account"));
            tracing::info!(kid = %kid, "{why}");
            Err(Problem::unauthorized(why))
        }
    }
}

/// The check every step that moves an account's work forward makes besides
/// newOrder (a challenge POST, finalize): an account bound with a key the
/// operator has since revoked can finish nothing it started. Reading its
/// resources, revoking its certificates and deactivating itself stay open.
pub fn check_binding_in_force(account: &Account) -> Result<(), Problem> {
    match &account.binding {
        Some(binding) if binding.revoked => Err(revoked(&binding.kid)),
        _ => Ok(()),
    }
}

fn revoked(kid: &str) -> Problem {
    Problem::unauthorized(format!(
        "external account key {kid} that this account was bound with has been revoked"
    ))
}

/// newOrder's check of the ordering account's binding (see the module
/// documentation): the profile's EAB requirement, a revoked key, and the
/// names limit of the key, with one subproblem per refused identifier.
pub async fn check_new_order(
    store: &Store,
    account: &Account,
    profile: &Profile,
    identifiers: &[OrderedIdentifier],
) -> Result<(), Problem> {
    // The keyring is read only for an account that was bound.
    let record = match &account.binding {
        Some(binding) => store.eab_key(&binding.kid).await?,
        None => None,
    };
    if profile.eab == EabPolicy::Required
        && record.as_ref().is_none_or(|r| r.profile != profile.name)
    {
        return Err(Problem::unauthorized(format!(
            "profile {:?} requires an external account binding, and this account was not \
             created with a key of that profile; register through its directory with one",
            profile.name
        )));
    }
    let Some(record) = record else {
        return Ok(());
    };
    if record.revoked_at.is_some() {
        return Err(revoked(&record.kid));
    }
    let Some(patterns) = record.names else {
        return Ok(());
    };
    let limit = NamesLimit::from_stored(patterns);
    let subproblems: Vec<Subproblem> = identifiers
        .iter()
        .filter(|id| !limit.allows(id))
        .map(|id| Subproblem {
            kind: ProblemType::RejectedIdentifier,
            detail: format!(
                "{}: the external account key of this account allows only {}",
                id.ordered,
                limit.patterns().join(", ")
            ),
            identifier: id.as_ordered().into(),
        })
        .collect();
    let detail = match subproblems.as_slice() {
        [] => return Ok(()),
        [only] => only.detail.clone(),
        many => format!(
            "{} identifiers are outside the names the external account key of this account allows ({})",
            many.len(),
            limit.patterns().join(", ")
        ),
    };
    Err(Problem::new(ProblemType::RejectedIdentifier, detail).with_subproblems(subproblems))
}
