//! The settings' value syntax: durations, resolver addresses and `off`
//! switches, each parsed into what `Config` holds.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::ConfigError;

/// `ADDR:PORT`, or a bare address meaning port 53.
pub fn parse_resolver(text: &str) -> Result<SocketAddr, ConfigError> {
    let text = text.trim();
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| ConfigError::Invalid(format!("resolver {text:?} is not ADDR or ADDR:PORT")))
}

/// `retention`: a duration of at least an hour, or `off`; 30 days when unset.
pub(super) fn parse_retention(text: Option<String>) -> Result<Option<Duration>, ConfigError> {
    let text = text.unwrap_or_else(|| "30d".to_owned());
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let keep = parse_duration(&text)?;
    if keep < Duration::from_secs(3600) {
        return Err(ConfigError::Invalid(
            "retention must be at least 1h, or off".into(),
        ));
    }
    Ok(Some(keep))
}

/// `work_lease`: 30 s when unset. At least 3 s, as a task renews its lease
/// every third of it and a renewal must fit in a second; at most an hour,
/// which is already long for a dead replica's work to wait.
pub(super) fn parse_work_lease(text: Option<String>) -> Result<Duration, ConfigError> {
    let lease = parse_duration(text.as_deref().unwrap_or("30s"))?;
    if lease < Duration::from_secs(3) || lease > Duration::from_secs(3600) {
        return Err(ConfigError::Invalid(
            "work-lease must be between 3s and 1h".into(),
        ));
    }
    Ok(lease)
}

/// A duration such as `90d`, `24h`, `1h30m` or `3600s`.
pub fn parse_duration(text: &str) -> Result<Duration, ConfigError> {
    if text.trim_start().starts_with('-') {
        return Err(ConfigError::Invalid(format!(
            "duration {text:?}: a duration is never negative (30d, 12h)"
        )));
    }
    humantime::parse_duration(text.trim())
        .map_err(|e| ConfigError::Invalid(format!("duration {text:?}: {e}")))
}
