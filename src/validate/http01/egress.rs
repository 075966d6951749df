//! Where the HTTP-01 fetch may connect: every address it is about to use,
//! on every hop, is checked against the profile's deny list after
//! resolution, and the connection goes to the very address that was checked
//! (so a name that resolves differently a moment later cannot slip past).

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;

use super::super::{DnsResolver, Networks};

/// Redirects followed at most (RFC 8555 §8.3 lets servers follow them).
pub(super) const MAX_REDIRECTS: usize = 10;

/// A connection the fetch will not make, and why. Its text is shown to the
/// client wherever in the redirect chain it arises: it names only what the
/// client itself sent or pointed to.
#[derive(Debug)]
pub(super) struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Refused {}

/// The refusal somewhere in `e`'s chain of causes, if there is one.
pub(super) fn refusal_in<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a Refused> {
    let mut cause = Some(e);
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<Refused>() {
            return Some(refused);
        }
        cause = current.source();
    }
    None
}

/// Resolves redirect targets through certgate's resolvers and hands reqwest
/// only the addresses the deny list allows.
pub(super) struct CheckedResolver {
    pub(super) resolver: DnsResolver,
    pub(super) denied: Networks,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.resolver.clone();
        let denied = self.denied.clone();
        Box::pin(async move {
            let addrs = resolver.addresses(name.as_str()).await?;
            let allowed: Vec<IpAddr> = addrs
                .iter()
                .copied()
                .filter(|ip| denied.refusal(*ip).is_none())
                .collect();
            if allowed.is_empty() {
                let why = addrs.first().and_then(|ip| denied.refusal(*ip));
                let why = why.unwrap_or_else(|| "no addresses".into());
                return Err(Box::new(Refused(format!("{}: {why}", name.as_str())))
                    as Box<dyn StdError + Send + Sync>);
            }
            // Port 0: the port of the URL, or its scheme's default.
            Ok(Box::new(allowed.into_iter().map(|ip| SocketAddr::new(ip, 0))) as Addrs)
        })
    }
}

/// Which redirects are followed: at most [`MAX_REDIRECTS`], to http or
/// https, on ports 80, 443 or the challenge port (as Let's Encrypt, so a
/// redirect cannot aim validation at arbitrary services), and never to an
/// address literal the deny list refuses. Names are checked once resolved,
/// by [`CheckedResolver`].
pub(super) fn redirect_policy(denied: Networks, challenge_port: u16) -> Policy {
    Policy::custom(move |attempt| {
        let url = attempt.url();
        let to = url.to_string();
        let refuse = |why: String| Refused(format!("redirect to {to}: {why}"));
        let port = url.port_or_known_default();
        let literal = url
            .host_str()
            .and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok());
        if attempt.previous().len() > MAX_REDIRECTS {
            let error = Refused(format!("more than {MAX_REDIRECTS} redirects"));
            attempt.error(error)
        } else if !matches!(url.scheme(), "http" | "https") {
            let error = refuse(format!("a {}: URL is not followed", url.scheme()));
            attempt.error(error)
        } else if let Some(why) = literal.and_then(|ip| denied.refusal(ip)) {
            let error = refuse(why);
            attempt.error(error)
        } else if !matches!(port, Some(p) if p == 80 || p == 443 || p == challenge_port) {
            let error = refuse(format!(
                "refused by policy: only ports 80, 443 and {challenge_port} are followed"
            ));
            attempt.error(error)
        } else {
            attempt.follow()
        }
    })
}
