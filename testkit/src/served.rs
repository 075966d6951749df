//! The built binary serving in a temporary data dir, with a DNS stub as its
//! resolver and an HTTP-01 responder on its challenge port: what a test of
//! certgate as operators run it starts with.

use crate::dns::DnsStub;
use crate::http01::Http01Responder;
use crate::process::{CertgateProcess, ServeArgs};
use crate::raw_client::RawClient;

pub struct Served {
    pub certgate: CertgateProcess,
    pub args: ServeArgs,
    pub http01: Http01Responder,
    pub dns: DnsStub,
    pub data_dir: tempfile::TempDir,
}

impl Served {
    /// With no config file: one profile, the embedded CA.
    pub async fn start() -> Self {
        Self::start_with_config(None).await
    }

    /// With `config` as its `--config` file, when given.
    pub async fn start_with_config(config: Option<&str>) -> Self {
        let dns = DnsStub::start().await;
        let http01 = Http01Responder::start().await;
        let data_dir = tempfile::tempdir().unwrap();
        let config = config.map(|text| {
            let path = data_dir.path().join("certgate.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let args = ServeArgs {
            http01_port: http01.port(),
            ..ServeArgs::new(data_dir.path(), dns.addr(), config)
        };
        let certgate = CertgateProcess::start(&args).await;
        Self {
            certgate,
            args,
            http01,
            dns,
            data_dir,
        }
    }

    /// A client of the default directory, with no account yet.
    pub async fn client(&self) -> RawClient {
        RawClient::new(&self.args.directory_url(), &self.args.root_pem()).await
    }

    /// A client with an account, through `profile`'s directory when given.
    pub async fn registered_client(&self, profile: Option<&str>) -> RawClient {
        let directory = match profile {
            Some(profile) => format!("https://{}/acme/{profile}/directory", self.args.listen),
            None => self.args.directory_url(),
        };
        RawClient::registered(&directory, &self.args.root_pem()).await
    }
}
