//! The setup most tests of certgate's Vault profiles share: `pki_int` with
//! roles for subdomains of `lab.example`, certgate's policy, an AppRole login
//! for certgate, and the `[vault]` tables that make certgate use it.

use std::path::Path;

use super::auth::Grant;
use super::config::{Mount, StandinConfig, CERTGATE_POLICY};
use super::role::Role;
use super::VaultStandin;

/// The role ID certgate logs in with.
pub const ROLE_ID: &str = "certgate-role-id";
/// The secret ID of [`StandinConfig::lab`].
pub const SECRET_ID: &str = "certgate-secret-id";

impl Role {
    /// Subdomains of `lab.example`, any key type (ACME clients send EC keys;
    /// Vault's default `rsa` would refuse them).
    pub fn lab(name: &str) -> Self {
        Self::new(name)
            .allowed_domains(["lab.example"])
            .allow_subdomains(true)
            .key_type("any")
    }
}

impl StandinConfig {
    /// `pki_int` holding `roles`, and the `certgate` policy
    /// ([`CERTGATE_POLICY`]); no way to log in yet.
    pub fn pki_int(roles: impl IntoIterator<Item = Role>) -> Self {
        let mount = roles
            .into_iter()
            .fold(Mount::new("pki_int"), |mount, role| mount.role(role));
        Self::new().mount(mount).policy("certgate", CERTGATE_POLICY)
    }

    /// `pki_int/lab-internal` ([`Role::lab`]) with certgate's policy, and
    /// AppRole accepting [`ROLE_ID`] with [`SECRET_ID`].
    pub fn lab() -> Self {
        Self::pki_int([Role::lab("lab-internal")]).certgate_approle(SECRET_ID)
    }

    /// AppRole at `auth/approle` accepting [`ROLE_ID`] with `secret_id`, for
    /// a token with the `certgate` policy.
    pub fn certgate_approle(self, secret_id: &str) -> Self {
        self.approle("approle", ROLE_ID, secret_id, Grant::new(["certgate"]))
    }
}

impl VaultStandin {
    /// certgate's `[vault]` and `[vault.auth]` tables for this stand-in:
    /// AppRole as [`ROLE_ID`], the secret ID read from `dir/secret-id`,
    /// which this writes with `secret_id` (and a trailing newline, as tools
    /// write such files).
    pub fn approle_config(&self, dir: &Path, secret_id: &str) -> String {
        let secret_id_file = dir.join("secret-id");
        std::fs::write(&secret_id_file, format!("{secret_id}\n")).unwrap();
        // Private, as an operator keeps it (check-config flags it otherwise).
        std::fs::set_permissions(
            &secret_id_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        format!(
            "[vault]\naddress = \"{}\"\n\
             [vault.auth]\nmethod = \"approle\"\nrole_id = \"{ROLE_ID}\"\nsecret_id_file = \"{}\"\n",
            self.addr(),
            secret_id_file.display()
        )
    }

    /// Signs a new key's CSR for `name` at `pki_int/sign/lab-internal` with
    /// the root token, as an operator or Vault Agent would, without
    /// certgate; returns Vault's serial (`aa:bb:…`).
    pub async fn sign_as_an_operator(&self, name: &str) -> String {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let reply: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/v1/pki_int/sign/lab-internal", self.addr()))
            .header("X-Vault-Token", self.root_token())
            .json(&serde_json::json!({ "csr": csr }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reply["data"]["serial_number"]
            .as_str()
            .unwrap_or_else(|| panic!("not signed: {reply}"))
            .to_owned()
    }
}
