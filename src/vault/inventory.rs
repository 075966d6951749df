//! What the inventory sync asks Vault: the serials a PKI mount keeps
//! (`LIST <mount>/certs`), the revoked ones (`LIST <mount>/certs/revoked`)
//! and each certificate (`GET <mount>/cert/<serial>`). Roles with
//! `no_store` keep nothing, so Vault cannot list their certificates.

use rustify_derive::Endpoint;
use serde::Deserialize;
use vaultrs::error::ClientError;

use super::{Vault, VaultError};

/// `LIST <mount>/certs` or `LIST <mount>/certs/revoked`.
#[derive(Debug, Endpoint)]
#[endpoint(path = "{self.mount}/{self.list}", method = "LIST", response = "Keys")]
struct ListSerials {
    #[endpoint(skip)]
    mount: String,
    #[endpoint(skip)]
    list: &'static str,
}

#[derive(Debug, Deserialize)]
struct Keys {
    #[serde(default)]
    keys: Vec<String>,
}

/// `GET <mount>/cert/<serial>`.
#[derive(Debug, Endpoint)]
#[endpoint(
    path = "{self.mount}/cert/{self.serial}",
    response = "StoredCertificate"
)]
struct ReadCertificate {
    #[endpoint(skip)]
    mount: String,
    #[endpoint(skip)]
    serial: String,
}

/// A certificate as Vault keeps it.
#[derive(Debug, Clone, Deserialize)]
pub struct StoredCertificate {
    /// PEM.
    pub certificate: String,
    /// Unix seconds; 0 when not revoked.
    #[serde(default)]
    pub revocation_time: i64,
}

/// Vault answers an empty list, or a path with nothing under it, with 404.
fn empty_when_missing<T: Default>(result: Result<T, VaultError>) -> Result<T, VaultError> {
    match result {
        Err(VaultError::Api { status: 404, .. }) => Ok(T::default()),
        other => other,
    }
}

impl Vault {
    async fn list_serials(
        &self,
        mount: &str,
        list: &'static str,
    ) -> Result<Vec<String>, VaultError> {
        let keys = self
            .with_token(&format!("{mount}/{list}"), &|client| {
                let endpoint = ListSerials {
                    mount: mount.to_owned(),
                    list,
                };
                Box::pin(async move {
                    vaultrs::api::exec_with_result(client, endpoint)
                        .await
                        .map(|keys: Keys| keys.keys)
                })
            })
            .await;
        empty_when_missing(keys)
    }

    /// The serials of every certificate `mount` keeps, as Vault prints them
    /// (`3a:0f:…`); its CA certificates are among them.
    pub async fn list_certificates(&self, mount: &str) -> Result<Vec<String>, VaultError> {
        self.list_serials(mount, "certs").await
    }

    /// The serials of the certificates revoked on `mount`.
    pub async fn list_revoked(&self, mount: &str) -> Result<Vec<String>, VaultError> {
        self.list_serials(mount, "certs/revoked").await
    }

    /// One certificate of `mount`; `None` when Vault no longer has it (its
    /// tidy removed it between the list and the read).
    pub async fn read_certificate(
        &self,
        mount: &str,
        serial: &str,
    ) -> Result<Option<StoredCertificate>, VaultError> {
        // One metrics label for all serials of a mount.
        let label = format!("{mount}/cert/{{serial}}");
        let read = self
            .on_any_address(&label, None, &|client| {
                let endpoint = ReadCertificate {
                    mount: mount.to_owned(),
                    serial: serial.to_owned(),
                };
                Box::pin(async move {
                    match vaultrs::api::exec_with_result(client, endpoint).await {
                        Ok(stored) => Ok(Some(stored)),
                        Err(ClientError::APIError { code: 404, .. }) => Ok(None),
                        Err(other) => Err(other),
                    }
                })
            })
            .await?;
        Ok(read)
    }

    /// The mount's CRL, PEM (`GET <mount>/cert/crl`); `None` when the
    /// mount publishes none.
    pub async fn read_crl(&self, mount: &str) -> Result<Option<String>, VaultError> {
        Ok(self
            .read_certificate(mount, "crl")
            .await?
            .map(|stored| stored.certificate))
    }
}
