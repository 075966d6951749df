//! DNS lookups for every validation, through the operator's `--resolver`s
//! (or the system's), with caching off so a retry sees a record added a
//! moment ago.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::rdata::caa::{Property, CAA};
use hickory_resolver::proto::rr::rdata::TXT;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, TokioResolver};

use super::caa::CaaRecord;

/// A CAA record as the decision reads it.
pub fn caa_record(caa: &CAA) -> CaaRecord {
    let tag = match caa.tag() {
        Property::Issue => "issue".to_owned(),
        Property::IssueWild => "issuewild".to_owned(),
        Property::Iodef => "iodef".to_owned(),
        Property::Unknown(tag) => tag.to_ascii_lowercase(),
    };
    let issue = (caa.tag().is_issue() || caa.tag().is_issuewild())
        .then(|| caa.value_as_issue().ok())
        .flatten();
    let (issuer, parameters) = match &issue {
        Some((name, values)) => (
            name.as_ref()
                .map(|n| n.to_ascii().trim_end_matches('.').to_ascii_lowercase()),
            values
                .iter()
                .map(|kv| (kv.key().to_owned(), kv.value().to_owned()))
                .collect(),
        ),
        None => (None, Vec::new()),
    };
    CaaRecord {
        critical: caa.issuer_critical(),
        well_formed: issue.is_some() || !(caa.tag().is_issue() || caa.tag().is_issuewild()),
        tag,
        issuer,
        parameters,
    }
}

/// One TXT record's character-strings, joined (RFC 8555 §8.4, and the
/// draft's long dns-persist-01 values split across strings).
pub fn joined(txt: &TXT) -> String {
    txt.txt_data()
        .iter()
        .map(|part| String::from_utf8_lossy(part))
        .collect()
}

#[derive(Debug, Clone)]
pub struct DnsResolver {
    inner: TokioResolver,
    /// Which servers answer, for error messages: "127.0.0.1:53" or "the system resolver".
    servers: String,
}

impl DnsResolver {
    /// A resolver asking `servers` (UDP, falling back to TCP), or the
    /// system's configuration when `servers` is empty.
    pub fn new(servers: &[SocketAddr]) -> Result<Self, ResolveError> {
        let mut builder = if servers.is_empty() {
            TokioResolver::builder_tokio()?
        } else {
            let mut config = ResolverConfig::new();
            for &addr in servers {
                config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
            }
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        };
        let options = builder.options_mut();
        options.cache_size = 0;
        options.timeout = Duration::from_secs(5);
        options.attempts = 2;
        // With explicit servers, ask them and nothing else; the hosts file
        // is the system resolver's business.
        if !servers.is_empty() {
            options.use_hosts_file = ResolveHosts::Never;
        }
        let described = if servers.is_empty() {
            "the system resolver".to_owned()
        } else {
            servers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        Ok(Self {
            inner: builder.build(),
            servers: described,
        })
    }

    /// The servers asked, as a phrase for error messages.
    pub fn servers(&self) -> &str {
        &self.servers
    }

    /// A and AAAA addresses of `name`.
    pub async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.inner.lookup_ip(fqdn.as_str()).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(e) => Err(self.describe(name, "A/AAAA", &e)),
        }
    }

    /// The TXT records at `name`, each record's strings joined.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.inner.txt_lookup(fqdn.as_str()).await {
            Ok(lookup) => Ok(lookup.iter().map(joined).collect()),
            Err(e) => Err(self.describe(name, "TXT", &e)),
        }
    }

    /// The TXT records at `name` like [`DnsResolver::txt`], but none when
    /// the name or its TXT set does not exist: for records that may be
    /// absent without anything having failed.
    pub async fn txt_if_any(&self, name: &str) -> Result<Vec<String>, String> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.inner.txt_lookup(fqdn.as_str()).await {
            Ok(lookup) => Ok(lookup.iter().map(joined).collect()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(self.describe(name, "TXT", &e)),
        }
    }

    /// The CAA records at `name` (following a CNAME); none when the name
    /// or its CAA set does not exist, an error when the lookup itself fails.
    pub async fn caa(&self, name: &str) -> Result<Vec<CaaRecord>, String> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let lookup = match self.inner.lookup(fqdn.as_str(), RecordType::CAA).await {
            Ok(lookup) => lookup,
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => return Ok(Vec::new()),
            Err(e) => return Err(self.describe(name, "CAA", &e)),
        };
        Ok(lookup
            .record_iter()
            .filter_map(|record| match record.data() {
                RData::CAA(caa) => Some(caa_record(caa)),
                _ => None,
            })
            .collect())
    }

    fn describe(&self, name: &str, kind: &str, e: &ResolveError) -> String {
        let what = if e.is_nx_domain() {
            "the name does not exist (NXDOMAIN)".to_owned()
        } else if e.is_no_records_found() {
            format!("no {kind} records")
        } else {
            e.to_string()
        };
        format!("{kind} lookup of {name} via {}: {what}", self.servers)
    }
}
