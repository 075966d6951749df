//! What happened, so tests can assert on it ("exactly one sign call", "the
//! revocation used the PEM"). Every entry is appended when the stand-in
//! answers, whatever the outcome.

use std::sync::Mutex;

/// One call to `sign`, `issuer/…/sign` or `sign-verbatim`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignCall {
    pub mount: String,
    /// Empty for sign-verbatim without a role.
    pub role: String,
    pub verbatim: bool,
    /// Names read from the CSR (empty when it did not parse).
    pub csr_common_name: String,
    pub csr_dns_names: Vec<String>,
    pub csr_ip_sans: Vec<String>,
    pub status: u16,
    /// Set when a certificate was issued.
    pub serial: Option<String>,
    /// The first error message when refused.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Revocation {
    pub mount: String,
    /// The serial named or read from the PEM (normalised to `aa:bb`).
    pub serial: String,
    pub by_pem: bool,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Login {
    /// `approle`, `kubernetes` or `jwt`.
    pub method: String,
    pub mount: String,
    /// The role named in the login (role_id for AppRole).
    pub role: String,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Renewal {
    pub accessor: String,
    pub status: u16,
}

/// A request as it reached the stand-in's API (after the fault switches).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestLine {
    pub method: String,
    pub path: String,
    pub status: u16,
}

#[derive(Debug, Default)]
pub struct Recorder {
    pub signs: Mutex<Vec<SignCall>>,
    pub revocations: Mutex<Vec<Revocation>>,
    pub logins: Mutex<Vec<Login>>,
    pub renewals: Mutex<Vec<Renewal>>,
    pub requests: Mutex<Vec<RequestLine>>,
}

/// Appends to one of the recorder's lists.
pub fn push<T>(list: &Mutex<Vec<T>>, entry: T) {
    list.lock().unwrap().push(entry);
}

/// A copy of one of the recorder's lists.
pub fn snapshot<T: Clone>(list: &Mutex<Vec<T>>) -> Vec<T> {
    list.lock().unwrap().clone()
}
