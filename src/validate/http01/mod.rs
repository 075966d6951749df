//! HTTP-01 (RFC 8555 §8.3): fetch
//! `http://<name>:<port>/.well-known/acme-challenge/<token>` and compare the
//! body with the key authorization. Where it may connect is `egress`; what
//! a failure may tell the client is `detail`.

mod detail;
mod egress;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{DnsResolver, Method, Networks, Proof, ValidationSubject};
use crate::protocol::identifier::IdentifierKind;
use crate::protocol::problem::{Problem, ProblemType};
use egress::{redirect_policy, CheckedResolver};

/// Whole-fetch time limit, redirects included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of the body read at most: a key authorization is under 100.
const MAX_BODY: usize = 8 * 1024;

pub struct Http01 {
    resolver: DnsResolver,
    port: u16,
}

/// The host part of a URL for `name`: IPv6 addresses go in brackets.
fn url_host(name: &str) -> String {
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => name.to_owned(),
    }
}

/// What the last request of a fetch got back.
struct Answer {
    status: reqwest::StatusCode,
    peer: Option<SocketAddr>,
    /// The URL that answered: the first one, or where redirects led.
    url: reqwest::Url,
    /// Whether it answered the first request, not one after a redirect.
    first_hop: bool,
    body: Vec<u8>,
    /// False when reading stopped at [`MAX_BODY`].
    complete: bool,
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

    /// A client that connects to `name` only at `addrs` (already checked)
    /// and to redirect targets only as [`egress`] allows.
    fn client(
        &self,
        name: &str,
        addrs: &[IpAddr],
        denied: &Networks,
    ) -> reqwest::Result<reqwest::Client> {
        // Port 0: the port of the URL, or its scheme's default, so that a
        // redirect to https://<name>/ goes to 443.
        let sockets: Vec<SocketAddr> = addrs.iter().map(|&ip| SocketAddr::new(ip, 0)).collect();
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .no_proxy()
            .user_agent(concat!(
                "certgate/",
                env!("CARGO_PKG_VERSION"),
                " (ACME http-01 validation)"
            ))
            .redirect(redirect_policy(denied.clone(), self.port))
            // A redirect to https is followed without checking the
            // certificate: control of the name, not of a certificate, is
            // what this proves (as Let's Encrypt does).
            .danger_accept_invalid_certs(true)
            .resolve_to_addrs(name, &sockets)
            .dns_resolver(Arc::new(CheckedResolver {
                resolver: self.resolver.clone(),
                denied: denied.clone(),
            }))
            .build()
    }

    async fn fetch(client: &reqwest::Client, url: &str) -> reqwest::Result<Answer> {
        let mut response = client.get(url).send().await?;
        let mut answer = Answer {
            status: response.status(),
            peer: response.remote_addr(),
            url: response.url().clone(),
            first_hop: response.url().as_str() == url,
            body: Vec::new(),
            complete: true,
        };
        while let Some(chunk) = response.chunk().await? {
            answer.body.extend_from_slice(&chunk);
            if answer.body.len() >= MAX_BODY {
                answer.body.truncate(MAX_BODY);
                answer.complete = false;
                break;
            }
        }
        Ok(answer)
    }
}

#[async_trait]
impl Method for Http01 {
    async fn validate(&self, subject: &ValidationSubject<'_>) -> Result<Proof, Problem> {
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

        let timed_out = || format!("no complete answer within {}s", TIMEOUT.as_secs());
        let answer = match tokio::time::timeout(TIMEOUT, Self::fetch(&client, &url)).await {
            Err(_) => return Err(connection(timed_out())),
            Ok(Err(e)) if e.is_timeout() => return Err(connection(timed_out())),
            Ok(Err(e)) => return Err(connection(detail::failure(&e, &url))),
            Ok(Ok(answer)) => answer,
        };
        // Only the first request's address is told: where redirects led is
        // the client's own business, and telling it would map the network.
        let from = match (answer.first_hop, answer.peer) {
            (true, Some(addr)) => format!("{url} (from {addr})"),
            (true, None) => url.clone(),
            (false, _) => format!("{url}, redirected to {},", answer.url),
        };
        let body = detail::body(&answer.body, answer.first_hop, answer.complete);
        if !answer.status.is_success() {
            return Err(Problem::unauthorized(format!(
                "{from} answered {} with {body}",
                answer.status
            )));
        }
        let text = String::from_utf8_lossy(&answer.body);
        if !answer.complete || text.trim_end() != key_authorization {
            return Err(Problem::new(
                ProblemType::IncorrectResponse,
                format!(
                    "{from} returned {body} but the key authorization is {key_authorization:?}"
                ),
            ));
        }
        Ok(Proof::default())
    }
}
