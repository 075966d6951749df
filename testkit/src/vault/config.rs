//! What a test states before starting the stand-in: mounts with their roles,
//! tokens, policies and the credentials each login method accepts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::auth::Grant;
use super::login::{LoginRule, LoginSpec};
use super::role::Role;

/// The paths certgate's policy grants on `pki_int`, as `deploy/vault/setup.sh`
/// writes it: sign (also through an issuer), read roles and the chain, revoke,
/// and list what the mount issued for the inventory.
pub const CERTGATE_POLICY: [&str; 7] = [
    "pki_int/sign/*",
    "pki_int/issuer/*",
    "pki_int/roles/*",
    "pki_int/cert/*",
    "pki_int/revoke",
    "pki_int/certs",
    "pki_int/certs/revoked",
];

/// A PKI secrets engine mount.
#[derive(Debug, Clone)]
pub struct Mount {
    pub name: String,
    /// False for a mount where no CA was ever set (every sign is a 500).
    pub with_ca: bool,
    pub issuer_name: String,
    /// How long the mount's intermediate is valid; short values let a test
    /// reach the "beyond the expiration of the CA" refusal.
    pub ca_validity: Duration,
    pub roles: Vec<Role>,
}

impl Mount {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.trim_matches('/').to_owned(),
            with_ca: true,
            issuer_name: format!("{}-issuer", name.replace('/', "-")),
            ca_validity: Duration::from_secs(5 * 365 * 86400),
            roles: Vec::new(),
        }
    }

    pub fn without_ca(mut self) -> Self {
        self.with_ca = false;
        self
    }

    pub fn issuer_name(mut self, name: &str) -> Self {
        self.issuer_name = name.to_owned();
        self
    }

    pub fn ca_validity(mut self, validity: Duration) -> Self {
        self.ca_validity = validity;
        self
    }

    pub fn role(mut self, role: Role) -> Self {
        self.roles.push(role);
        self
    }
}

/// The whole stand-in configuration, built fluently.
#[derive(Debug, Clone)]
pub struct StandinConfig {
    pub listen: SocketAddr,
    pub root_token: String,
    pub mounts: Vec<Mount>,
    pub tokens: Vec<(String, Grant)>,
    pub policies: HashMap<String, Vec<String>>,
    pub logins: Vec<LoginSpec>,
    /// Time stands still but for `advance_clock` (see [`StandinConfig::frozen_clock`]).
    pub frozen_clock: bool,
}

impl Default for StandinConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl StandinConfig {
    /// Listens on an ephemeral loopback port, with a random root token.
    pub fn new() -> Self {
        let root: [u8; 12] = rand::random();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            root_token: format!(
                "hvs.root{}",
                root.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
            mounts: Vec::new(),
            tokens: Vec::new(),
            policies: HashMap::new(),
            logins: Vec::new(),
            frozen_clock: false,
        }
    }

    /// Time stands still from the start but for
    /// [`VaultStandin::advance_clock`](super::VaultStandin::advance_clock):
    /// for tests of the stand-in that compare TTLs to the second. certgate's
    /// own tests keep the real clock, as certgate's renewals run on it.
    pub fn frozen_clock(mut self) -> Self {
        self.frozen_clock = true;
        self
    }

    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    pub fn root_token(mut self, id: &str) -> Self {
        self.root_token = id.to_owned();
        self
    }

    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }

    /// A static token with a chosen id.
    pub fn token(mut self, id: &str, grant: Grant) -> Self {
        self.tokens.push((id.to_owned(), grant));
        self
    }

    /// A policy: the paths (or `prefix*` patterns) its tokens may use.
    pub fn policy<S: Into<String>>(
        mut self,
        name: &str,
        paths: impl IntoIterator<Item = S>,
    ) -> Self {
        self.policies
            .insert(name.to_owned(), paths.into_iter().map(Into::into).collect());
        self
    }

    /// AppRole at `auth/{mount}` accepting this role_id/secret_id pair.
    pub fn approle(self, mount: &str, role_id: &str, secret_id: &str, grant: Grant) -> Self {
        self.login(
            mount,
            LoginRule::AppRole {
                role_id: role_id.to_owned(),
                secret_id: secret_id.to_owned(),
            },
            grant,
        )
    }

    /// Kubernetes at `auth/{mount}` accepting this role with this service-account JWT.
    pub fn kubernetes(self, mount: &str, role: &str, jwt: &str, grant: Grant) -> Self {
        self.login(
            mount,
            LoginRule::Kubernetes {
                role: role.to_owned(),
                jwt: jwt.to_owned(),
            },
            grant,
        )
    }

    /// JWT at `auth/{mount}` accepting this token string, for `role` (or as the
    /// default role when a login names none).
    pub fn jwt(self, mount: &str, role: &str, jwt: &str, grant: Grant) -> Self {
        self.login(
            mount,
            LoginRule::Jwt {
                role: role.to_owned(),
                jwt: jwt.to_owned(),
            },
            grant,
        )
    }

    fn login(mut self, mount: &str, rule: LoginRule, grant: Grant) -> Self {
        self.logins.push(LoginSpec {
            mount: mount.trim_matches('/').to_owned(),
            rule,
            grant,
        });
        self
    }
}
