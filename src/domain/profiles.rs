//! The profiles certgate serves. A profile is a named issuance policy with
//! its own ACME directory: who signs (the embedded CA or a Vault role), and
//! the lifetime it asks for.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::EabPolicy;
use crate::issuer::Issuer;
use crate::validate::ValidationPolicy;

pub struct Profile {
    pub name: String,
    pub issuer: Arc<dyn Issuer>,
    /// Lifetime asked of the issuer; `None` leaves it to the issuer.
    pub ttl: Option<Duration>,
    pub validation: ValidationPolicy,
    /// Shown in the directory's `meta.profiles`.
    pub description: String,
    pub eab: EabPolicy,
    /// Fraction of a certificate's life at which its ARI window opens.
    pub renewal_window_start: f64,
}

/// Every profile, and which one `/acme/directory` serves.
pub struct Profiles {
    default: String,
    by_name: BTreeMap<String, Profile>,
}

impl Profiles {
    /// `default` must name one of `profiles`.
    pub fn new(default: &str, profiles: Vec<Profile>) -> Self {
        let by_name: BTreeMap<String, Profile> =
            profiles.into_iter().map(|p| (p.name.clone(), p)).collect();
        assert!(
            by_name.contains_key(default),
            "the default profile {default:?} is one of the profiles"
        );
        Self {
            default: default.to_owned(),
            by_name,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.by_name.get(name)
    }

    pub fn default_profile(&self) -> &Profile {
        &self.by_name[&self.default]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.by_name.values()
    }
}
