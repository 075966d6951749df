//! How much validation work runs at once: every validation connects out on
//! a client's say-so, so a client with many challenges (or a responder that
//! accepts and never answers) must not take every socket certgate has.
//! Validations beyond a limit wait their turn; their challenges are already
//! `processing` in the store, so a restart resumes them like any other.

/// Default of `validation-concurrency`. A validation holds one outbound
/// connection at a time (and DNS lookups through the configured resolvers),
/// so 32 keep well inside the common 1,024 open-file limit beside the
/// listeners' connections, and still validate a large order in seconds.
pub const DEFAULT_CONCURRENT: usize = 32;
/// Default of `validation-concurrency-per-account`: one account uses at most
/// this share of the global limit, so a flood of challenges at a responder
/// that never answers (each held up to the 10 s validation timeout) leaves
/// the rest to everyone else.
pub const DEFAULT_PER_ACCOUNT: usize = 4;

/// Limits on validations running at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationLimits {
    /// All accounts together.
    pub concurrent: usize,
    /// One account's; at most `concurrent`.
    pub per_account: usize,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        Self {
            concurrent: DEFAULT_CONCURRENT,
            per_account: DEFAULT_PER_ACCOUNT,
        }
    }
}

impl ValidationLimits {
    /// `concurrent` and `per_account` when given, else the defaults; both
    /// at least 1, and one account's never more than all of them.
    pub fn new(concurrent: Option<usize>, per_account: Option<usize>) -> Result<Self, String> {
        let limits = Self {
            concurrent: concurrent.unwrap_or(DEFAULT_CONCURRENT),
            per_account: per_account.unwrap_or(DEFAULT_PER_ACCOUNT),
        };
        if limits.concurrent == 0 || limits.per_account == 0 {
            return Err(
                "validation-concurrency and validation-concurrency-per-account must be at least 1"
                    .into(),
            );
        }
        if limits.per_account > limits.concurrent {
            return Err(format!(
                "validation-concurrency-per-account ({}) must not exceed validation-concurrency ({})",
                limits.per_account, limits.concurrent
            ));
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_positive_and_one_account_gets_at_most_all() {
        assert_eq!(
            ValidationLimits::new(None, None),
            Ok(ValidationLimits::default())
        );
        assert_eq!(
            ValidationLimits::new(Some(8), Some(8)),
            Ok(ValidationLimits {
                concurrent: 8,
                per_account: 8
            })
        );
        assert!(ValidationLimits::new(Some(0), None).is_err());
        assert!(ValidationLimits::new(None, Some(0)).is_err());
        assert!(ValidationLimits::new(Some(2), Some(3)).is_err());
        assert!(ValidationLimits::new(Some(2), None).is_err());
    }
}
