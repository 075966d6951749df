//! A PKI role: its fields with Vault's defaults, and its read-back form.

use serde_json::{json, Value};

/// A PKI role. Fields are public so a test can set any of them; the defaults
/// are Vault's own (`Role::new`), so a test only states what it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub allowed_domains: Vec<String>,
    pub allow_subdomains: bool,
    pub allow_bare_domains: bool,
    pub allow_glob_domains: bool,
    pub allow_wildcard_certificates: bool,
    pub allow_any_name: bool,
    pub allow_localhost: bool,
    pub enforce_hostnames: bool,
    pub allow_ip_sans: bool,
    /// URI SAN globs; empty refuses every URI SAN.
    pub allowed_uri_sans: Vec<String>,
    /// `rsa`, `ec`, `ed25519` or `any`.
    pub key_type: String,
    /// Minimum key size; 0 means the key type's own minimum.
    pub key_bits: u32,
    /// Seconds; 0 means the mount default (32 days).
    pub ttl: u64,
    /// Seconds; 0 means the mount maximum (32 days).
    pub max_ttl: u64,
    pub no_store: bool,
    pub issuer_ref: String,
    pub use_csr_common_name: bool,
    pub use_csr_sans: bool,
    pub require_cn: bool,
    pub server_flag: bool,
    pub client_flag: bool,
    pub organization: Vec<String>,
    pub ou: Vec<String>,
    pub country: Vec<String>,
    pub locality: Vec<String>,
    pub province: Vec<String>,
    /// Seconds the NotBefore is back-dated.
    pub not_before_duration: u64,
}

/// Chainable setters, one per field a test commonly changes.
macro_rules! setters {
    ($($field:ident: $ty:ty),* $(,)?) => {
        $(
            pub fn $field(mut self, value: $ty) -> Self {
                self.$field = value;
                self
            }
        )*
    };
}

impl Role {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            allowed_domains: Vec::new(),
            allow_subdomains: false,
            allow_bare_domains: false,
            allow_glob_domains: false,
            allow_wildcard_certificates: true,
            allow_any_name: false,
            allow_localhost: true,
            enforce_hostnames: true,
            allow_ip_sans: true,
            allowed_uri_sans: Vec::new(),
            key_type: "rsa".to_owned(),
            key_bits: 2048,
            ttl: 0,
            max_ttl: 0,
            no_store: false,
            issuer_ref: "default".to_owned(),
            use_csr_common_name: true,
            use_csr_sans: true,
            require_cn: true,
            server_flag: true,
            client_flag: true,
            organization: Vec::new(),
            ou: Vec::new(),
            country: Vec::new(),
            locality: Vec::new(),
            province: Vec::new(),
            not_before_duration: 30,
        }
    }

    pub fn allowed_domains<S: Into<String>>(
        mut self,
        domains: impl IntoIterator<Item = S>,
    ) -> Self {
        self.allowed_domains = domains.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the key type and, as Vault does when `key_bits` is left out, the
    /// type's default size (rsa 2048, ec 256, otherwise 0).
    pub fn key_type(mut self, key_type: &str) -> Self {
        self.key_type = key_type.to_owned();
        self.key_bits = match key_type {
            "rsa" => 2048,
            "ec" => 256,
            _ => 0,
        };
        self
    }

    setters! {
        allow_subdomains: bool,
        allow_bare_domains: bool,
        allow_glob_domains: bool,
        allow_wildcard_certificates: bool,
        allow_any_name: bool,
        allow_localhost: bool,
        enforce_hostnames: bool,
        allow_ip_sans: bool,
        key_bits: u32,
        ttl: u64,
        max_ttl: u64,
        no_store: bool,
        issuer_ref: String,
        use_csr_common_name: bool,
        use_csr_sans: bool,
        require_cn: bool,
        server_flag: bool,
        client_flag: bool,
    }

    /// The `data` of `GET roles/{role}`: every field vaultrs' `ReadRoleResponse` needs.
    pub fn read_data(&self) -> Value {
        // Two halves: one json! literal this long exceeds the macro recursion limit.
        let mut data = json!({
            "allow_any_name": self.allow_any_name,
            "allow_bare_domains": self.allow_bare_domains,
            "allow_glob_domains": self.allow_glob_domains,
            "allow_ip_sans": self.allow_ip_sans,
            "allow_localhost": self.allow_localhost,
            "allow_subdomains": self.allow_subdomains,
            "allow_token_displayname": false,
            "allow_wildcard_certificates": self.allow_wildcard_certificates,
            "allowed_domains": self.allowed_domains,
            "allowed_domains_template": false,
            "allowed_other_sans": [],
            "allowed_serial_numbers": [],
            "allowed_uri_sans": self.allowed_uri_sans,
            "allowed_uri_sans_template": false,
            "allowed_user_ids": [],
            "basic_constraints_valid_for_non_ca": false,
            "client_flag": self.client_flag,
            "cn_validations": ["email", "hostname"],
            "code_signing_flag": false,
            "country": self.country,
            "email_protection_flag": false,
            "enforce_hostnames": self.enforce_hostnames,
        });
        let rest = json!({
            "ext_key_usage": [],
            "ext_key_usage_oids": [],
            "generate_lease": false,
            "issuer_ref": self.issuer_ref,
            "key_bits": self.key_bits,
            "key_type": self.key_type,
            "key_usage": ["DigitalSignature", "KeyAgreement", "KeyEncipherment"],
            "locality": self.locality,
            "max_ttl": self.max_ttl,
            "no_store": self.no_store,
            "not_after": "",
            "not_before_duration": self.not_before_duration,
            "organization": self.organization,
            "ou": self.ou,
            "policy_identifiers": [],
            "postal_code": [],
            "province": self.province,
            "require_cn": self.require_cn,
            "server_flag": self.server_flag,
            "signature_bits": 256,
            "street_address": [],
            "ttl": self.ttl,
            "use_csr_common_name": self.use_csr_common_name,
            "use_csr_sans": self.use_csr_sans,
            "use_pss": false,
        });
        if let (Value::Object(data), Value::Object(rest)) = (&mut data, rest) {
            data.extend(rest);
        }
        data
    }
}
