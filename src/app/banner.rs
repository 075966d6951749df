//! What certgate says once it serves: the directory URLs clients should use
//! (never the wildcard address it listens on), the fingerprint of the root
//! they must trust, and one client command to try.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::config::Config;

/// The names certgate's own TLS certificate always carries, besides the
/// configured `tls_name`s.
const ALWAYS_NAMED: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// `host:port` for a URL: IPv6 addresses in brackets.
fn authority(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

/// The hosts clients reach certgate by, best first: the TLS names when it
/// listens on every address (else this machine's name), or the address it
/// listens on after them.
fn hosts(listen: SocketAddr, tls_names: &[String], host_name: Option<String>) -> Vec<String> {
    let mut hosts: Vec<String> = tls_names
        .iter()
        .filter(|name| !name.contains('*'))
        .cloned()
        .collect();
    if listen.ip().is_unspecified() {
        if hosts.is_empty() {
            hosts.push(host_name.unwrap_or_else(|| "localhost".to_owned()));
        }
    } else {
        hosts.push(listen.ip().to_string());
    }
    hosts
}

/// The default directory's URL(s), best first: from `external_url` when
/// set, else from the TLS names and the listening address.
pub fn directory_urls(
    listen: SocketAddr,
    tls_names: &[String],
    external_url: Option<&str>,
    host_name: Option<String>,
) -> Vec<String> {
    if let Some(url) = external_url {
        return vec![format!("{}/acme/directory", url.trim_end_matches('/'))];
    }
    hosts(listen, tls_names, host_name)
        .iter()
        .map(|host| format!("https://{}/acme/directory", authority(host, listen.port())))
        .collect()
}

/// Whether certgate's own TLS certificate names the host of `url`.
fn certificate_names(url: &str, tls_names: &[String]) -> bool {
    let Some(host) = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()))
    else {
        return false;
    };
    ALWAYS_NAMED
        .iter()
        .any(|name| name.eq_ignore_ascii_case(&host))
        || tls_names
            .iter()
            .any(|name| name.eq_ignore_ascii_case(&host))
}

/// This machine's host name, as `hostname` prints it.
pub fn host_name() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer.
    let done = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if done != 0 {
        return None;
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    let name = String::from_utf8_lossy(&buffer[..end]).trim().to_owned();
    (!name.is_empty()).then_some(name)
}

/// One lego command that gets a first certificate from `directory`.
pub fn example_client(
    directory: &str,
    root_pem: &Path,
    listen: SocketAddr,
    http01_port: u16,
) -> String {
    let name = if listen.ip().is_loopback() {
        "localhost"
    } else {
        "<this-client's-name>"
    };
    let port = if http01_port == 80 {
        String::new()
    } else {
        format!(" --http.port :{http01_port}")
    };
    format!(
        "LEGO_CA_CERTIFICATES={} lego --server {directory} --email you@example.com --accept-tos --http{port} -d {name} run",
        root_pem.display()
    )
}

/// Logs the banner: where clients go, what they trust, how to try it.
pub fn log(config: &Config, local_addr: SocketAddr, root_sha256: &[u8], profiles: &[&str]) {
    let urls = directory_urls(
        local_addr,
        &config.tls_names,
        config.external_url.as_deref(),
        host_name(),
    );
    let directory = urls.first().cloned().unwrap_or_default();
    let root = crate::issuer::local::CaFiles::in_dir(&config.ca_dir).root_pem;
    let root_sha256 = crate::util::fingerprint::colon_hex(root_sha256);
    tracing::info!(
        listen = %local_addr,
        directory = %directory,
        directories = %urls.join(" "),
        root = %root.display(),
        root_sha256 = %root_sha256,
        default_profile = %config.default_profile,
        profiles = ?profiles,
        "certgate is serving"
    );
    if config.external_url.is_none() && !certificate_names(&directory, &config.tls_names) {
        tracing::warn!(
            directory = %directory,
            "certgate's TLS certificate names only localhost, 127.0.0.1, ::1 and the tls_name settings: clients using this URL fail with a hostname mismatch; add --tls-name (tls_name in the config) with the name clients use"
        );
    }
    tracing::info!(
        client = %example_client(&directory, &root, local_addr, config.http01_port),
        "first certificate: trust the root (check its SHA-256 with `certgate ca fingerprint`), then for example"
    );
}

/// What to do when binding `addr` was refused: ports below 1024 need
/// root or `CAP_NET_BIND_SERVICE`.
pub fn bind_hint(addr: &SocketAddr, error: &std::io::Error) -> &'static str {
    if error.kind() == std::io::ErrorKind::PermissionDenied && addr.port() < 1024 {
        " (ports below 1024 need root or CAP_NET_BIND_SERVICE: systemd's AmbientCapabilities=CAP_NET_BIND_SERVICE, or `setcap cap_net_bind_service=+ep` on the binary)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_low_port_names_the_capability() {
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(bind_hint(&addr("0.0.0.0:443"), &denied).contains("CAP_NET_BIND_SERVICE"));
        assert_eq!(bind_hint(&addr("0.0.0.0:8443"), &denied), "");
        let busy = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        assert_eq!(bind_hint(&addr("0.0.0.0:443"), &busy), "");
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_wildcard_address_is_never_a_url() {
        let names = vec!["acme.lab.example".to_owned()];
        assert_eq!(
            directory_urls(addr("0.0.0.0:8443"), &names, None, Some("box".into())),
            ["https://acme.lab.example:8443/acme/directory"]
        );
        assert_eq!(
            directory_urls(addr("[::]:8443"), &[], None, Some("box".into())),
            ["https://box:8443/acme/directory"]
        );
        assert_eq!(
            directory_urls(addr("127.0.0.1:8443"), &[], None, Some("box".into())),
            ["https://127.0.0.1:8443/acme/directory"]
        );
        assert_eq!(
            directory_urls(addr("[::1]:8443"), &names, None, None),
            [
                "https://acme.lab.example:8443/acme/directory",
                "https://[::1]:8443/acme/directory"
            ]
        );
        assert_eq!(
            directory_urls(
                addr("0.0.0.0:8443"),
                &names,
                Some("https://acme.example/"),
                None
            ),
            ["https://acme.example/acme/directory"]
        );
    }

    #[test]
    fn a_host_the_certificate_does_not_name_is_told_apart() {
        let names = vec!["acme.lab.example".to_owned()];
        assert!(certificate_names("https://127.0.0.1:1/acme/directory", &[]));
        assert!(certificate_names("https://[::1]:1/acme/directory", &[]));
        assert!(certificate_names("https://ACME.lab.example:1/x", &names));
        assert!(!certificate_names(
            "https://box:8443/acme/directory",
            &names
        ));
        assert!(!certificate_names(
            "https://10.0.0.5:8443/acme/directory",
            &[]
        ));
    }
}
