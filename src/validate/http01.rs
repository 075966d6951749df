//! HTTP-01 (RFC 8555 §8.3): fetch
//! `http://<name>:<port>/.well-known/acme-challenge/<token>` and compare the
//! body with the key authorization.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;

use super::{DnsResolver, Method, Networks, ValidationSubject};
use crate::protocol::identifier::IdentifierKind;
use crate::protocol::problem::{Problem, ProblemType};

/// Whole-fetch time limit, redirects included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed at most (RFC 8555 §8.3 lets servers follow them).
const MAX_REDIRECTS: usize = 10;
/// Bytes of the body read at most: a key authorization is under 100.
const MAX_BODY: usize = 8 * 1024;
/// Bytes of an unexpected body quoted back in the error.
const QUOTED_BODY: usize = 64;

pub struct Http01 {
    resolver: DnsResolver,
    port: u16,
}

/// Lets reqwest resolve redirect targets through our resolvers, leaving
/// out addresses in denied networks.
struct ViaResolver {
    resolver: DnsResolver,
    denied: Networks,
}

impl Resolve for ViaResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.resolver.clone();
        let denied = self.denied.clone();
        Box::pin(async move {
            let error = |e: String| -> Box<dyn StdError + Send + Sync> { e.into() };
            let addrs = resolver.addresses(name.as_str()).await.map_err(error)?;
            let allowed: Vec<IpAddr> = addrs
                .iter()
                .copied()
                .filter(|ip| denied.containing(*ip).is_none())
                .collect();
            if allowed.is_empty() {
                let why = addrs.first().and_then(|ip| denied.refusal(*ip));
                return Err(error(format!(
                    "{}: {}",
                    name.as_str(),
                    why.unwrap_or_else(|| "no addresses".into())
                )));
            }
            Ok(Box::new(allowed.into_iter().map(|ip| SocketAddr::new(ip, 0))) as Addrs)
        })
    }
}

/// The host part of a URL for `name`: IPv6 addresses go in brackets.
fn url_host(name: &str) -> String {
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => name.to_owned(),
    }
}

/// The error and its causes on one line: reqwest's top-level message alone
/// ("error sending request") does not tell a user what to fix.
fn causes(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(QUOTED_BODY)]).into_owned();
    if body.len() > QUOTED_BODY {
        format!("{text:?}…")
    } else {
        format!("{text:?}")
    }
}

impl Http01 {
    pub fn new(resolver: DnsResolver, port: u16) -> Self {
        Self { resolver, port }
    }

    fn url(&self, name: &str, token: &str) -> String {
        let host = url_host(name);
        match self.port {
            80 => format!("http://{host}/.well-known/acme-challenge/{token}"),
            port => format!("http://{host}:{port}/.well-known/acme-challenge/{token}"),
        }
    }

    fn client(
        &self,
        name: &str,
        addrs: &[IpAddr],
        denied: &Networks,
    ) -> reqwest::Result<reqwest::Client> {
        let challenge_port = self.port;
        let redirect_denied = denied.clone();
        let sockets: Vec<SocketAddr> = addrs
            .iter()
            .map(|&ip| SocketAddr::new(ip, self.port))
            .collect();
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .no_proxy()
            .user_agent(concat!(
                "certgate/",
                env!("CARGO_PKG_VERSION"),
                " (ACME http-01 validation)"
            ))
            .redirect(Policy::custom(move |attempt| {
                let url = attempt.url();
                let port = url.port_or_known_default();
                if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
                } else if !matches!(url.scheme(), "http" | "https") {
                    let scheme = url.scheme().to_owned();
                    attempt.error(format!("redirect to a {scheme}: URL"))
                } else if let Some(why) = url
                    .host_str()
                    .and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok())
                    .and_then(|ip| redirect_denied.refusal(ip))
                {
                    let to = url.to_string();
                    attempt.error(format!("redirect to {to}: {why}"))
                } else if !matches!(port, Some(p) if p == 80 || p == 443 || p == challenge_port) {
                    // As Let's Encrypt: a redirect may not aim validation at
                    // arbitrary services.
                    let to = url.to_string();
                    attempt.error(format!(
                        "redirect to {to}: only ports 80, 443 and {challenge_port} are followed"
                    ))
                } else {
                    attempt.follow()
                }
            }))
            // A redirect to https is followed without checking the
            // certificate: control of the name, not of a certificate, is
            // what this proves (as Let's Encrypt does).
            .danger_accept_invalid_certs(true)
            .resolve_to_addrs(name, &sockets)
            .dns_resolver(std::sync::Arc::new(ViaResolver {
                resolver: self.resolver.clone(),
                denied: denied.clone(),
            }))
            .build()
    }
}

#[async_trait]
impl Method for Http01 {
    async fn validate(&self, subject: &ValidationSubject<'_>) -> Result<(), Problem> {
        let name = subject.identifier.value.as_str();
        let key_authorization = subject.key_authorization;
        let url = self.url(name, subject.token);
        let addrs = match subject.kind() {
            IdentifierKind::Ip => vec![name
                .parse::<IpAddr>()
                .map_err(|_| Problem::malformed(format!("{name:?} is not an IP address")))?],
            IdentifierKind::Dns => self
                .resolver
                .addresses(name)
                .await
                .map_err(|e| Problem::new(ProblemType::Dns, e))?,
        };
        let addrs = subject.reachable(name, &addrs)?;
        let listed = addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let connection = |why: String| {
            Problem::new(
                ProblemType::Connection,
                format!("fetching {url} ({name} resolved to {listed}): {why}"),
            )
        };
        let client = self
            .client(name, &addrs, &subject.policy.denied_networks)
            .map_err(|e| Problem::internal("building the HTTP-01 client", &e))?;

        let fetch = async {
            let mut response = client.get(&url).send().await?;
            let status = response.status();
            let peer = response.remote_addr();
            let final_url = response.url().to_string();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                body.extend_from_slice(&chunk);
                if body.len() >= MAX_BODY {
                    break;
                }
            }
            Ok::<_, reqwest::Error>((status, peer, final_url, body))
        };
        let (status, peer, final_url, body) = match tokio::time::timeout(TIMEOUT, fetch).await {
            Err(_) => {
                return Err(connection(format!(
                    "no complete answer within {}s",
                    TIMEOUT.as_secs()
                )))
            }
            Ok(Err(e)) if e.is_timeout() => {
                return Err(connection(format!(
                    "no complete answer within {}s",
                    TIMEOUT.as_secs()
                )))
            }
            Ok(Err(e)) => return Err(connection(causes(&e))),
            Ok(Ok(answer)) => answer,
        };
        let from = match peer {
            Some(addr) => format!("{final_url} (from {addr})"),
            None => final_url,
        };
        if !status.is_success() {
            return Err(Problem::unauthorized(format!(
                "{from} answered {status}, body {}",
                quote(&body)
            )));
        }
        let text = String::from_utf8_lossy(&body);
        if text.trim_end() != key_authorization {
            return Err(Problem::new(
                ProblemType::IncorrectResponse,
                format!(
                    "{from} returned {} but the key authorization is {key_authorization:?}",
                    quote(&body)
                ),
            ));
        }
        Ok(())
    }
}
