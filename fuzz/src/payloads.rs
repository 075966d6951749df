//! The JSON payloads of ACME requests, each read the way its handler
//! reads it, after the signature checked out. The first byte of the input
//! picks the request; the rest is the payload.

use std::sync::OnceLock;

use certgate::domain::eab::parse_binding;
use certgate::protocol::ari::CertId;
use certgate::protocol::contacts::check_contacts;
use certgate::protocol::identifiers::check_order_identifiers;
use certgate::protocol::jwk::PublicJwk;
use certgate::protocol::key_change::{check_inner, KeyChangeContext};
use certgate::protocol::revoke_request::{certificate_der, RevokePayload};
use certgate::protocol::types::{
    AccountUpdateRequest, AuthorizationUpdateRequest, FinalizeRequest, NewAccountRequest,
    NewOrderRequest,
};

/// The newAccount URL a binding must name.
pub const NEW_ACCOUNT_URL: &str = "https://certgate.test/acme/new-acct";
/// The URL of the keyChange request the inner JWS must repeat.
pub const KEY_CHANGE_URL: &str = "https://certgate.test/acme/key-change";
/// The key of the account the requests come from (P-256).
pub const ACCOUNT_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

/// Which request a payload belongs to: the input's first byte, modulo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    NewAccount,
    NewOrder,
    Finalize,
    RevokeCert,
    KeyChange,
    AccountUpdate,
    AuthorizationUpdate,
}

impl Request {
    pub const ALL: [Request; 7] = [
        Request::NewAccount,
        Request::NewOrder,
        Request::Finalize,
        Request::RevokeCert,
        Request::KeyChange,
        Request::AccountUpdate,
        Request::AuthorizationUpdate,
    ];

    /// The first byte of a seed for this request.
    pub fn tag(self) -> u8 {
        Self::ALL.iter().position(|r| *r == self).expect("listed") as u8
    }
}

/// [`ACCOUNT_JWK`], parsed once.
pub fn account_key() -> &'static PublicJwk {
    static KEY: OnceLock<PublicJwk> = OnceLock::new();
    KEY.get_or_init(|| {
        let value = serde_json::from_str(ACCOUNT_JWK).expect("valid JSON");
        PublicJwk::parse(&value).expect("a valid P-256 JWK")
    })
}

pub fn run(data: &[u8]) {
    let Some((&tag, payload)) = data.split_first() else {
        return;
    };
    match Request::ALL[tag as usize % Request::ALL.len()] {
        Request::NewAccount => new_account(payload),
        Request::NewOrder => new_order(payload),
        Request::Finalize => {
            if let Ok(finalize) = serde_json::from_slice::<FinalizeRequest>(payload) {
                let names = ["host.lab.test".to_owned()];
                let _ = certgate::protocol::csr::check(&finalize.csr, &names, account_key());
            }
        }
        Request::RevokeCert => {
            if let Ok(revoke) = serde_json::from_slice::<RevokePayload>(payload) {
                let _ = certificate_der(&revoke);
            }
        }
        Request::KeyChange => {
            let context = KeyChangeContext {
                outer_url: KEY_CHANGE_URL,
                account_url: crate::ACCOUNT_URL,
                current_thumbprint: &account_key().thumbprint,
            };
            if let Ok(new_key) = check_inner(payload, &context) {
                assert_ne!(new_key.thumbprint, account_key().thumbprint);
            }
        }
        Request::AccountUpdate => {
            if let Ok(update) = serde_json::from_slice::<AccountUpdateRequest>(payload) {
                if let Some(contacts) = &update.contact {
                    let _ = check_contacts(contacts);
                }
            }
        }
        Request::AuthorizationUpdate => {
            let _ = serde_json::from_slice::<AuthorizationUpdateRequest>(payload);
        }
    }
}

fn new_account(payload: &[u8]) {
    let Ok(request) = serde_json::from_slice::<NewAccountRequest>(payload) else {
        return;
    };
    if let Some(contacts) = &request.contact {
        let _ = check_contacts(contacts);
    }
    if let Some(binding) = &request.external_account_binding {
        if let Ok(binding) = parse_binding(binding, NEW_ACCOUNT_URL, account_key()) {
            assert!(!binding.kid.is_empty(), "a binding names its key");
        }
    }
}

fn new_order(payload: &[u8]) {
    let Ok(request) = serde_json::from_slice::<NewOrderRequest>(payload) else {
        return;
    };
    if let Ok(names) = check_order_identifiers(&request.identifiers) {
        assert!(!names.is_empty() && names.len() <= request.identifiers.len());
    }
    if let Some(replaces) = &request.replaces {
        let _ = CertId::parse(replaces);
    }
}
