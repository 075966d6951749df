//! certgate running inside the test process on an ephemeral port, with its
//! own data directory, DNS stub and HTTP-01 responder.

use std::path::PathBuf;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use certgate::app::{Server, Substitutes};
use certgate::config::{Config, ServeFlags};
use certgate::util::clock::Clock;

use super::dns::DnsStub;
use super::http01::Http01Responder;
use super::raw_client::RawClient;

pub struct Instance {
    pub server: Option<Server>,
    pub dns: DnsStub,
    pub http01: Http01Responder,
    pub data_dir: tempfile::TempDir,
    /// Written to `<data-dir>/certgate.toml` and passed as `--config`.
    config_file: Option<String>,
    /// What stands in for the clock or the issuers, across restarts too.
    substitutes: Substitutes,
}

/// A clock a test sets: starts at the real time, moves only when told.
#[derive(Debug)]
pub struct SettableClock(AtomicI64);

impl SettableClock {
    pub fn now_real() -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )))
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(by.as_secs() as i64, Ordering::SeqCst);
    }
}

impl Clock for SettableClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Instance {
    pub async fn start() -> Self {
        Self::start_with_config(None).await
    }

    /// Starts with a config file (profiles, `[vault]`); the process
    /// environment is not read, so a `VAULT_*` variable of the machine
    /// running the tests changes nothing.
    pub async fn start_with_config(config_file: Option<String>) -> Self {
        Self::start_with_substitutes(config_file, Substitutes::default()).await
    }

    /// Starts with a clock or an issuer of the test's in place of the real
    /// ones, through certgate's composition root.
    pub async fn start_with_substitutes(
        config_file: Option<String>,
        substitutes: Substitutes,
    ) -> Self {
        let dns = DnsStub::start().await;
        let http01 = Http01Responder::start().await;
        let data_dir = tempfile::tempdir().unwrap();
        let mut instance = Self {
            server: None,
            dns,
            http01,
            data_dir,
            config_file,
            substitutes,
        };
        instance.server = Some(instance.boot().await);
        instance
    }

    fn config(&self) -> Config {
        // After a restart, the same port: clients keep URLs with it in them.
        let listen = self
            .server
            .as_ref()
            .map_or_else(|| "127.0.0.1:0".parse().unwrap(), |s| s.local_addr());
        let config = self.config_file.as_ref().map(|text| {
            let path = self.data_dir.path().join("certgate.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        Config::load_with_env(
            ServeFlags {
                config,
                listen: Some(listen),
                data_dir: Some(self.data_dir.path().to_owned()),
                http01_port: Some(self.http01.port()),
                resolvers: vec![self.dns.addr().to_string()],
                ..Default::default()
            },
            &|_| None,
        )
        .unwrap()
    }

    async fn boot(&self) -> Server {
        certgate::app::start_with(self.config(), self.substitutes.clone())
            .await
            .expect("certgate starts")
    }

    /// [`Instance::restart`] with another config file, as an operator
    /// changes a setting.
    pub async fn restart_with_config(&mut self, config_file: Option<String>) {
        self.config_file = config_file;
        self.restart().await;
    }

    /// Stops certgate gracefully and starts it again on the same port and
    /// data directory, as an operator's restart would.
    pub async fn restart(&mut self) {
        let config = self.config();
        self.server.take().unwrap().shutdown().await.unwrap();
        self.server = Some(
            certgate::app::start_with(config, self.substitutes.clone())
                .await
                .expect("certgate restarts"),
        );
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("running")
    }

    pub fn base_url(&self) -> String {
        format!("https://localhost:{}", self.server().local_addr().port())
    }

    pub fn directory_url(&self) -> String {
        format!("{}/acme/directory", self.base_url())
    }

    /// The directory of a named profile.
    pub fn profile_directory_url(&self, profile: &str) -> String {
        format!("{}/acme/{profile}/directory", self.base_url())
    }

    pub fn root_pem_path(&self) -> PathBuf {
        self.data_dir.path().join("ca/root.pem")
    }

    /// A client of `profile`'s directory with a registered account.
    pub async fn registered_client(&self, profile: &str) -> RawClient {
        RawClient::registered(&self.profile_directory_url(profile), &self.root_pem_path()).await
    }

    pub fn store(&self) -> &certgate::store::Store {
        &self.server().state().store
    }
}
