//! The profiles certgate serves. A profile is a named issuance policy with
//! its own ACME directory: who signs (the embedded CA or a Vault role), and
//! the lifetime it asks for.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::EabPolicy;
use crate::issuer::Issuer;
use crate::protocol::challenge::ChallengeKind;
use crate::store::{Authorization, Store, StoreError};
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

impl Profile {
    /// The issuer domain names a dns-persist-01 record may name; none when
    /// the profile does not offer it.
    pub fn issuer_domain_names(&self) -> &[String] {
        self.validation
            .dns_persist
            .as_ref()
            .map_or(&[], |p| p.issuer_domain_names.as_slice())
    }

    /// The directory's `meta.caaIdentities`: the CAA identities, or with
    /// dns-persist-01 the issuer domain names (the same list when CAA
    /// identities are set), so clients such as acme.sh can build the record.
    pub fn advertised_caa_identities(&self) -> &[String] {
        match &self.validation.dns_persist {
            Some(persist) => &persist.issuer_domain_names,
            None => &self.validation.caa_identities,
        }
    }
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

    /// The issuer domain names `authz`'s dns-persist-01 challenge shows:
    /// those of the profile its order was made under (none when it has no
    /// such challenge, so other authorizations cost no extra read).
    pub async fn issuer_domain_names_of(
        &self,
        store: &Store,
        authz: &Authorization,
    ) -> Result<Vec<String>, StoreError> {
        if !authz
            .challenges
            .iter()
            .any(|c| c.kind == ChallengeKind::DnsPersist01)
        {
            return Ok(Vec::new());
        }
        let profile = store.authorization_profile(&authz.id).await?;
        Ok(profile
            .as_deref()
            .and_then(|name| self.get(name))
            .unwrap_or_else(|| self.default_profile())
            .issuer_domain_names()
            .to_vec())
    }
}
