//! What went wrong talking to Vault, sorted by what certgate should do next:
//! try again later, give up, or log in again.

use vaultrs::error::ClientError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum VaultError {
    /// Vault answered with an error status.
    #[error("Vault answered {status}: {message}")]
    Api { status: u16, message: String },
    /// No address accepted a connection: nothing was sent.
    #[error("Vault is unreachable: {0}")]
    Unreachable(String),
    /// The request went out but no answer came back (timeout, connection
    /// closed), so Vault may or may not have acted on it.
    #[error("no answer from Vault: {0}")]
    NoAnswer(String),
    /// Vault's answer could not be understood.
    #[error("unexpected answer from Vault: {0}")]
    BadAnswer(String),
    /// certgate could not present its credentials (a file it cannot read).
    #[error("Vault credentials: {0}")]
    Credentials(String),
}

impl VaultError {
    /// Vault refused the token: expired, revoked, or a policy that does not
    /// cover the path.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::Api { status: 403, .. })
    }

    /// Asking again later may succeed: sealed, standby, rate-limited,
    /// failing, or not reachable. A lost answer is not in this set; whether
    /// to repeat a request that may have taken effect is the caller's call.
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Api { status, .. } => *status == 429 || *status == 412 || *status >= 500,
            _ => false,
        }
    }

    /// The call shows that Vault cannot serve now: not reachable, no answer,
    /// or an answer that it is failing (5xx: sealed, not initialised, an
    /// internal error, a gateway in front of it). Rate limits (429) and
    /// standby consistency (412) are not outages: Vault is serving, and
    /// each request is better spread out on its own backoff.
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Unreachable(_) | Self::NoAnswer(_) => true,
            Self::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// A fixed name for the kind of failure, the `outcome` label of
    /// `certgate_vault_requests_total`: `denied` (403), `unavailable`
    /// (sealed, standby, rate-limited, failing), `refused` (another error
    /// status), `unreachable`, `no_answer` or `bad_answer`; `credentials`
    /// for completeness, though such a call never leaves certgate.
    pub fn kind(&self) -> &'static str {
        match self {
            e if e.is_permission_denied() => "denied",
            Self::Api { .. } if self.is_temporary() => "unavailable",
            Self::Api { .. } => "refused",
            Self::Unreachable(_) => "unreachable",
            Self::NoAnswer(_) => "no_answer",
            Self::BadAnswer(_) => "bad_answer",
            Self::Credentials(_) => "credentials",
        }
    }

    /// The error as an operator reads it on `/ready`: what is wrong, without
    /// the HTTP status where the message says it all ("Vault is sealed",
    /// "cannot reach http://vault:8200/v1/…: Connection refused").
    pub fn plainly(&self) -> String {
        match self {
            Self::Api {
                status: 503,
                message,
            } if message.contains("sealed") => message.clone(),
            Self::Unreachable(detail) => format!("cannot reach {detail}"),
            other => other.to_string(),
        }
    }
}

/// Vault wraps messages as `1 error occurred:\n\t* permission denied\n\n`;
/// this keeps just the messages.
fn plain_message(errors: &[String]) -> String {
    let mut lines = Vec::new();
    for error in errors {
        let items: Vec<&str> = error
            .lines()
            .filter_map(|l| l.trim().strip_prefix("* "))
            .collect();
        if error.trim_start().ends_with("occurred:") || !items.is_empty() {
            lines.extend(items);
        } else {
            lines.push(error.trim());
        }
    }
    if lines.is_empty() {
        "(no message)".to_owned()
    } else {
        lines.join("; ")
    }
}

/// The deepest cause of an error, which is where reqwest says what happened
/// ("Connection refused", "operation timed out").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn from_transport(error: rustify::errors::ClientError) -> VaultError {
    use rustify::errors::ClientError as Rest;
    match error {
        Rest::RequestError { source, url, .. } => {
            let connect_failed = source
                .downcast_ref::<reqwest::Error>()
                .is_some_and(|e| e.is_connect());
            let detail = format!("{url}: {}", root_cause(source.as_ref()));
            if connect_failed {
                VaultError::Unreachable(detail)
            } else {
                VaultError::NoAnswer(detail)
            }
        }
        Rest::ResponseError { source } => VaultError::NoAnswer(root_cause(source.as_ref())),
        Rest::ServerResponseError { code, content } => VaultError::Api {
            status: code,
            message: content
                .map(|c| c.chars().take(200).collect())
                .unwrap_or_else(|| "(no body)".to_owned()),
        },
        other => VaultError::BadAnswer(root_cause(&other)),
    }
}

impl From<ClientError> for VaultError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::APIError { code, errors } => VaultError::Api {
                status: code,
                message: plain_message(&errors),
            },
            ClientError::RestClientError { source } => from_transport(source),
            other => VaultError::BadAnswer(root_cause(&other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multierror_wrapping_is_removed() {
        let errors = vec!["1 error occurred:\n\t* permission denied\n\n".to_owned()];
        assert_eq!(plain_message(&errors), "permission denied");
        let errors = vec!["common name x.test not allowed by this role".to_owned()];
        assert_eq!(
            plain_message(&errors),
            "common name x.test not allowed by this role"
        );
        assert_eq!(plain_message(&[]), "(no message)");
    }

    #[test]
    fn sealed_rate_limited_and_failing_are_temporary_denied_is_not() {
        let api = |status| VaultError::Api {
            status,
            message: String::new(),
        };
        assert!(api(503).is_temporary());
        assert!(api(429).is_temporary());
        assert!(api(500).is_temporary());
        assert!(!api(400).is_temporary());
        assert!(!api(403).is_temporary());
        assert!(api(403).is_permission_denied());
        assert!(!VaultError::NoAnswer("x".into()).is_temporary());
    }

    #[test]
    fn outages_are_what_no_request_could_get_through() {
        let api = |status| VaultError::Api {
            status,
            message: String::new(),
        };
        assert!(api(503).is_outage());
        assert!(api(502).is_outage());
        assert!(!api(429).is_outage());
        assert!(!api(400).is_outage());
        assert!(!api(403).is_outage());
        assert!(VaultError::Unreachable("x".into()).is_outage());
        assert!(VaultError::NoAnswer("x".into()).is_outage());
        assert!(!VaultError::Credentials("x".into()).is_outage());
    }

    #[test]
    fn metric_outcomes_sort_errors_by_what_to_do() {
        let api = |status| VaultError::Api {
            status,
            message: String::new(),
        };
        assert_eq!(api(403).kind(), "denied");
        assert_eq!(api(503).kind(), "unavailable");
        assert_eq!(api(400).kind(), "refused");
        assert_eq!(VaultError::Unreachable("x".into()).kind(), "unreachable");
        assert_eq!(VaultError::NoAnswer("x".into()).kind(), "no_answer");
    }

    #[test]
    fn operators_read_sealed_and_unreachable_plainly() {
        let sealed = VaultError::Api {
            status: 503,
            message: "Vault is sealed".into(),
        };
        assert_eq!(sealed.plainly(), "Vault is sealed");
        let unreachable = VaultError::Unreachable("http://v:8200/v1/x: Connection refused".into());
        assert_eq!(
            unreachable.plainly(),
            "cannot reach http://v:8200/v1/x: Connection refused"
        );
        let failing = VaultError::Api {
            status: 500,
            message: "internal error".into(),
        };
        assert_eq!(failing.plainly(), "Vault answered 500: internal error");
    }
}
