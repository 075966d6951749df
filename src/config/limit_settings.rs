//! The limit settings of `certgate serve` read into their value types:
//! the rate limits and the validation concurrency, flag over file over
//! default.

use super::rate_limits::{self, Limit, RateLimits};
use super::validation_limits::ValidationLimits;
use super::{ConfigError, ServeFlags};

/// Rate limit `setting`: the flag's text, else the file's, else `default`.
fn parse_rate_limit(
    setting: &str,
    flag: &Option<String>,
    file: &Option<String>,
    default: &str,
) -> Result<Option<Limit>, ConfigError> {
    let text = flag.as_deref().or(file.as_deref()).unwrap_or(default);
    Limit::parse(text).map_err(|e| ConfigError::Invalid(format!("{setting}: {e}")))
}

pub(super) fn rate_limits(
    flags: &ServeFlags,
    file: &ServeFlags,
) -> Result<RateLimits, ConfigError> {
    let pending = flags
        .pending_authorizations_per_account
        .or(file.pending_authorizations_per_account)
        .unwrap_or(rate_limits::DEFAULT_PENDING_AUTHORIZATIONS_PER_ACCOUNT);
    if pending == 0 {
        return Err(ConfigError::Invalid(
            "pending-authorizations-per-account must be at least 1".into(),
        ));
    }
    Ok(RateLimits {
        orders_per_account: parse_rate_limit(
            "rate-limit-orders-per-account",
            &flags.rate_limit_orders_per_account,
            &file.rate_limit_orders_per_account,
            rate_limits::DEFAULT_ORDERS_PER_ACCOUNT,
        )?,
        orders_per_domain: parse_rate_limit(
            "rate-limit-orders-per-domain",
            &flags.rate_limit_orders_per_domain,
            &file.rate_limit_orders_per_domain,
            rate_limits::DEFAULT_ORDERS_PER_DOMAIN,
        )?,
        new_accounts_per_ip: parse_rate_limit(
            "rate-limit-new-accounts-per-ip",
            &flags.rate_limit_new_accounts_per_ip,
            &file.rate_limit_new_accounts_per_ip,
            rate_limits::DEFAULT_NEW_ACCOUNTS_PER_IP,
        )?,
        pending_authorizations_per_account: Some(pending),
    })
}

pub(super) fn validation_limits(
    flags: &ServeFlags,
    file: &ServeFlags,
) -> Result<ValidationLimits, ConfigError> {
    ValidationLimits::new(
        flags.validation_concurrency.or(file.validation_concurrency),
        flags
            .validation_concurrency_per_account
            .or(file.validation_concurrency_per_account),
    )
    .map_err(ConfigError::Invalid)
}

#[cfg(test)]
mod tests {
    use crate::config::rate_limits::{Limit, RateLimits};
    use crate::config::validation_limits::ValidationLimits;
    use crate::config::{Config, ServeFlags};

    #[test]
    fn rate_limits_from_flags_file_and_defaults() {
        let defaults = Config::load(ServeFlags::default()).unwrap().rate_limits;
        assert_eq!(defaults, RateLimits::default());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certgate.toml");
        std::fs::write(
            &path,
            "rate_limit_orders_per_account = \"3/1h\"\nrate_limit_orders_per_domain = \"off\"\n",
        )
        .unwrap();
        let file = ServeFlags {
            config: Some(path),
            ..Default::default()
        };
        let limits = Config::load(file.clone()).unwrap().rate_limits;
        assert_eq!(limits.orders_per_account, Limit::parse("3/1h").unwrap());
        assert_eq!(limits.orders_per_domain, None);
        let flags = ServeFlags {
            rate_limit_orders_per_account: Some("off".into()),
            ..file
        };
        assert_eq!(
            Config::load(flags).unwrap().rate_limits.orders_per_account,
            None
        );
        let err = Config::load(ServeFlags {
            rate_limit_orders_per_domain: Some("many".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("rate-limit-orders-per-domain"),
            "{err}"
        );
    }

    #[test]
    fn account_and_validation_limits_from_flags_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certgate.toml");
        std::fs::write(
            &path,
            "rate_limit_new_accounts_per_ip = \"off\"\npending_authorizations_per_account = 20\n\
             validation_concurrency = 10\nvalidation_concurrency_per_account = 2\n",
        )
        .unwrap();
        let file = ServeFlags {
            config: Some(path),
            ..Default::default()
        };
        let config = Config::load(file.clone()).unwrap();
        assert_eq!(config.rate_limits.new_accounts_per_ip, None);
        assert_eq!(
            config.rate_limits.pending_authorizations_per_account,
            Some(20)
        );
        assert_eq!(
            config.validation_limits,
            ValidationLimits {
                concurrent: 10,
                per_account: 2
            }
        );
        let flags = ServeFlags {
            validation_concurrency_per_account: Some(11),
            ..file.clone()
        };
        let err = Config::load(flags).unwrap_err().to_string();
        assert!(err.contains("must not exceed"), "{err}");
        let flags = ServeFlags {
            pending_authorizations_per_account: Some(0),
            ..file
        };
        assert!(Config::load(flags).is_err());
        let defaults = Config::load(ServeFlags::default()).unwrap();
        assert_eq!(defaults.validation_limits, ValidationLimits::default());
    }
}
