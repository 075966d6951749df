//! How long a client may hold a connection without using it, and how many
//! connections and HTTP/2 streams it may hold: the settings that keep one
//! client from taking every socket or file descriptor certgate has.

use std::time::Duration;

use super::{parse_duration, ConfigError};

/// Connections each listener holds at once; more are closed as they are
/// accepted. Sized for a few hundred clients renewing at the same minute.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;
/// Of those, connections one client address (an IPv4 address, an IPv6
/// /64) holds at once: far more than ACME clients open, far fewer than the
/// listener's whole cap.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;
/// As Go's net/http servers behind Boulder: a client gets this long to send
/// a request head, from the end of the TLS handshake or from the start of a
/// head on a kept-alive connection.
pub const DEFAULT_HEADER_READ_TIMEOUT: &str = "10s";
/// A kept-alive connection with no request in flight is closed after this.
pub const DEFAULT_IDLE_TIMEOUT: &str = "60s";
/// rustls' handshake, from the first byte accepted.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: &str = "10s";
/// RFC 9113 §6.5.2 recommends no fewer than 100; an ACME client opens one
/// or two at a time.
pub const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;

/// The limits every listener (ACME, admin, metrics) applies to its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub http2_max_concurrent_streams: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self::resolve(ConnectionSettings::default()).expect("the defaults are valid")
    }
}

/// The settings as given (flag, environment or file), before defaults.
#[derive(Debug, Default)]
pub struct ConnectionSettings {
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub header_read_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub tls_handshake_timeout: Option<String>,
    pub http2_max_concurrent_streams: Option<u32>,
}

impl ConnectionLimits {
    pub fn resolve(given: ConnectionSettings) -> Result<Self, ConfigError> {
        let timeout = |setting: &str, text: Option<String>, default: &str| {
            let duration = parse_duration(text.as_deref().unwrap_or(default))
                .map_err(|e| ConfigError::Invalid(format!("{setting}: {e}")))?;
            if duration.is_zero() {
                return Err(ConfigError::Invalid(format!(
                    "{setting} must be longer than 0: a connection without a deadline is what it prevents"
                )));
            }
            Ok(duration)
        };
        let limits = Self {
            max_connections: given.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
            max_connections_per_ip: given
                .max_connections_per_ip
                .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_IP),
            header_read_timeout: timeout(
                "header-read-timeout",
                given.header_read_timeout,
                DEFAULT_HEADER_READ_TIMEOUT,
            )?,
            idle_timeout: timeout("idle-timeout", given.idle_timeout, DEFAULT_IDLE_TIMEOUT)?,
            tls_handshake_timeout: timeout(
                "tls-handshake-timeout",
                given.tls_handshake_timeout,
                DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            )?,
            http2_max_concurrent_streams: given
                .http2_max_concurrent_streams
                .unwrap_or(DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS),
        };
        if limits.max_connections == 0 || limits.max_connections_per_ip == 0 {
            return Err(ConfigError::Invalid(
                "max-connections and max-connections-per-ip must be at least 1".into(),
            ));
        }
        if limits.http2_max_concurrent_streams == 0 {
            return Err(ConfigError::Invalid(
                "http2-max-concurrent-streams must be at least 1".into(),
            ));
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bound_every_connection() {
        let limits = ConnectionLimits::default();
        assert_eq!(limits.max_connections, 1000);
        assert_eq!(limits.max_connections_per_ip, 256);
        assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
        assert_eq!(limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(limits.tls_handshake_timeout, Duration::from_secs(10));
        assert_eq!(limits.http2_max_concurrent_streams, 100);
    }

    #[test]
    fn given_values_win_and_no_limit_may_be_switched_off() {
        let limits = ConnectionLimits::resolve(ConnectionSettings {
            max_connections: Some(50),
            idle_timeout: Some("5s".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(limits.max_connections, 50);
        assert_eq!(limits.idle_timeout, Duration::from_secs(5));
        for bad in [
            ConnectionSettings {
                max_connections: Some(0),
                ..Default::default()
            },
            ConnectionSettings {
                max_connections_per_ip: Some(0),
                ..Default::default()
            },
            ConnectionSettings {
                header_read_timeout: Some("0s".into()),
                ..Default::default()
            },
            ConnectionSettings {
                tls_handshake_timeout: Some("soon".into()),
                ..Default::default()
            },
            ConnectionSettings {
                http2_max_concurrent_streams: Some(0),
                ..Default::default()
            },
        ] {
            assert!(ConnectionLimits::resolve(bad).is_err());
        }
    }
}
