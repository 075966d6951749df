//! The stand-in's shared state: mounts with their CA, roles and stored
//! certificates, tokens, login rules, fault switches and the record.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::auth::{Grant, Policies, TokenStore};
use super::ca::{Ca, MountCa};
use super::clock::Clock;
use super::config::StandinConfig;
use super::faults::Faults;
use super::login::LoginSpec;
use super::record::Recorder;
use super::role::Role;

/// A certificate the mount keeps (`no_store` roles add none).
#[derive(Debug, Clone)]
pub struct StoredCert {
    pub pem: String,
    pub not_after: i64,
    pub revoked_at: Option<i64>,
}

/// One PKI secrets engine.
pub struct PkiMount {
    pub name: String,
    pub ca: Option<MountCa>,
    pub roles: Mutex<BTreeMap<String, Role>>,
    pub certs: Mutex<HashMap<String, StoredCert>>,
}

impl PkiMount {
    pub fn role(&self, name: &str) -> Option<Role> {
        self.roles.lock().unwrap().get(name).cloned()
    }
}

pub struct App {
    pub clock: Clock,
    pub root: Ca,
    pub mounts: HashMap<String, PkiMount>,
    pub tokens: TokenStore,
    pub policies: Policies,
    pub logins: Vec<LoginSpec>,
    pub faults: Faults,
    pub record: Recorder,
}

impl App {
    pub fn new(config: &StandinConfig) -> Self {
        let clock = Clock::new(config.frozen_clock);
        let root = Ca::root(clock.now());
        let mounts = config
            .mounts
            .iter()
            .map(|m| {
                let ca = m.with_ca.then(|| {
                    MountCa::new(&root, &m.name, &m.issuer_name, clock.now(), m.ca_validity)
                });
                let roles = m
                    .roles
                    .iter()
                    .map(|r| (r.name.clone(), r.clone()))
                    .collect();
                let mount = PkiMount {
                    name: m.name.clone(),
                    ca,
                    roles: Mutex::new(roles),
                    certs: Mutex::new(HashMap::new()),
                };
                (m.name.clone(), mount)
            })
            .collect();
        let tokens = TokenStore::default();
        let now = clock.unix();
        tokens.create(
            Some(&config.root_token),
            &Grant::root(),
            "auth/token/root",
            HashMap::new(),
            now,
        );
        for (id, grant) in &config.tokens {
            tokens.create(Some(id), grant, "auth/token/create", HashMap::new(), now);
        }
        Self {
            clock,
            root,
            mounts,
            tokens,
            policies: Policies(config.policies.clone()),
            logins: config.logins.clone(),
            faults: Faults::default(),
            record: Recorder::default(),
        }
    }

    /// The mount serving `path` (longest matching mount name) and the rest of the path.
    pub fn mount_for<'p>(&self, path: &'p str) -> Option<(&PkiMount, &'p str)> {
        self.mounts
            .values()
            .filter_map(|m| {
                path.strip_prefix(m.name.as_str())
                    .and_then(|rest| rest.strip_prefix('/'))
                    .map(|rest| (m, rest))
            })
            .max_by_key(|(m, _)| m.name.len())
    }
}
