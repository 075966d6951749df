//! Vault's answers, read as the Vault client reads them: the HTTP status
//! decides between the JSON envelope (`{"data": …}`) and an error body
//! (`{"errors": […]}`), then certgate reads what is inside.

use certgate::domain::ca_health;
use certgate::issuer::vault::{ca_documents, signed_certificate};
use certgate::vault::endpoints::{CaChain, Revoked};
use certgate::vault::role_rules::RoleRules;
use certgate::vault::VaultError;
use rustify::endpoint::EndpointResult as HttpResult;
use rustify::enums::ResponseType;
use serde::de::DeserializeOwned;
use vaultrs::api::pki::responses::SignCertificateResponse;
use vaultrs::api::{EndpointError, EndpointResult as Envelope};
use vaultrs::error::ClientError;

/// Which answer a body is: the input's first byte, modulo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `<mount>/sign/<role>`
    Sign,
    /// `<mount>/roles/<role>`
    Role,
    /// `<mount>/cert/ca_chain`
    CaChain,
    /// `<mount>/revoke`
    Revoke,
}

impl Answer {
    pub const ALL: [Answer; 4] = [Answer::Sign, Answer::Role, Answer::CaChain, Answer::Revoke];

    pub fn tag(self) -> u8 {
        Self::ALL.iter().position(|a| *a == self).expect("listed") as u8
    }
}

/// The names of the order the sign answer is for.
const NAMES: [&str; 1] = ["host.lab.example"];

/// `<answer byte><status, 2 bytes big-endian><body>`.
pub fn run(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let answer = Answer::ALL[data[0] as usize % Answer::ALL.len()];
    // Any status an HTTP response can carry.
    let status = 100 + u16::from_be_bytes([data[1], data[2]]) % 500;
    let body = &data[3..];
    if !rustify::client::HTTP_SUCCESS_CODES.contains(&status) {
        let error = VaultError::from(api_error(status, body));
        let _ = (error.plainly(), error.kind(), error.is_temporary());
        let _ = (error.is_outage(), error.is_permission_denied());
        return;
    }
    let response = http::Response::builder()
        .status(status)
        .body(body.to_vec())
        .expect("a status in range");
    match answer {
        Answer::Sign => {
            if let Some(signed) = data_of::<SignCertificateResponse>(response) {
                let names: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
                if let Ok(issued) = signed_certificate(&signed, &names) {
                    assert!(issued.chain_pem.starts_with(signed.certificate.trim()));
                }
            }
        }
        Answer::Role => {
            if let Some(rules) = data_of::<RoleRules>(response) {
                let _ = rules.check_dns(NAMES[0]);
                let _ = rules.check_dns("*.lab.example");
                let _ = rules.check_ip([192, 0, 2, 7].into());
            }
        }
        Answer::CaChain => {
            if let Some(chain) = data_of::<CaChain>(response) {
                if let Ok(documents) = ca_documents("pki_int", &chain.certificate, None) {
                    let _ = ca_health::read("pki_int", &documents);
                }
            }
        }
        Answer::Revoke => {
            let _ = data_of::<Revoked>(response);
        }
    }
}

/// What the client makes of a body it received with `status` outside
/// 200–208: Vault's error list when the body is one, else the bare status.
fn api_error(status: u16, body: &[u8]) -> ClientError {
    let content = String::from_utf8(body.to_vec()).ok();
    match content
        .as_deref()
        .map(serde_json::from_str::<EndpointError>)
    {
        Some(Ok(error)) => ClientError::APIError {
            code: status,
            errors: error.errors,
        },
        _ => ClientError::RestClientError {
            source: rustify::errors::ClientError::ServerResponseError {
                code: status,
                content,
            },
        },
    }
}

/// The `data` of a successful answer, unwrapped as the client unwraps it.
fn data_of<T: DeserializeOwned + Send + Sync>(response: http::Response<Vec<u8>>) -> Option<T> {
    HttpResult::<T>::new(response, ResponseType::JSON)
        .wrap::<Envelope<T>>()
        .ok()
        .and_then(|envelope| envelope.data)
}
