//! Status values of RFC 8555 §7.1.6 and the rules for reading them.
//!
//! The transitions themselves are compare-and-set updates in the store; this
//! module names the states and says which are final.

use serde::{Deserialize, Serialize};

macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum!(
    /// Order states: pending → ready → processing → valid, or invalid.
    OrderStatus {
        Pending => "pending",
        Ready => "ready",
        Processing => "processing",
        Valid => "valid",
        Invalid => "invalid",
    }
);

status_enum!(
    /// Authorization states (§7.1.6, figure 9).
    AuthorizationStatus {
        Pending => "pending",
        Valid => "valid",
        Invalid => "invalid",
        Deactivated => "deactivated",
        Expired => "expired",
        Revoked => "revoked",
    }
);

status_enum!(
    /// Challenge states: pending → processing → valid | invalid.
    ChallengeStatus {
        Pending => "pending",
        Processing => "processing",
        Valid => "valid",
        Invalid => "invalid",
    }
);

status_enum!(
    /// Account states (§7.1.6, figure 8).
    AccountStatus {
        Valid => "valid",
        Deactivated => "deactivated",
        Revoked => "revoked",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_serde_agree() {
        for s in [
            OrderStatus::Pending,
            OrderStatus::Ready,
            OrderStatus::Processing,
            OrderStatus::Valid,
            OrderStatus::Invalid,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(
            AuthorizationStatus::parse("deactivated"),
            Some(AuthorizationStatus::Deactivated)
        );
        assert_eq!(ChallengeStatus::parse("bogus"), None);
    }
}
