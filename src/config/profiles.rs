//! `[profiles.<name>]`: the named issuance policies, each with its own ACME
//! directory at `/acme/<name>/directory`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::networks::{Network, Networks};
use super::{parse_duration, ConfigError};
use crate::protocol::dns_persist::MAX_ISSUER_DOMAIN_NAMES;

/// The profile served at `/acme/directory` when none is configured.
pub const DEFAULT_PROFILE: &str = "default";

/// Path segments under `/acme/` that name ACME resources, so no profile may
/// take them as its name.
const RESERVED: &[&str] = &[
    "directory",
    "new-nonce",
    "new-account",
    "new-order",
    "revoke-cert",
    "key-change",
    "renewal-info",
    "acct",
    "order",
    "authz",
    "chall",
    "cert",
];

/// One `[profiles.<name>]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// `vault` or `local` (the embedded CA).
    pub issuer: String,
    pub mount: Option<String>,
    pub role: Option<String>,
    pub issuer_ref: Option<String>,
    pub ttl: Option<String>,
    /// Networks validation may not connect to [default: the metadata
    /// addresses, `networks::METADATA_NETWORKS`].
    pub deny_networks: Option<Vec<String>>,
    /// Issuer domains CAA records must name [default: none, CAA not checked].
    #[serde(default)]
    pub caa_identities: Vec<String>,
    /// Shown to clients in the directory's `meta.profiles`.
    pub description: Option<String>,
    /// External account binding: `off` (default), `optional` or `required`.
    pub eab: Option<String>,
    /// Where in a certificate's life its ARI renewal window opens
    /// [default: 0.667, two thirds].
    pub renewal_window_start: Option<f64>,
    /// Offer dns-persist-01 [default: false: a leaked account key would
    /// then allow issuance for as long as the record stands].
    #[serde(default)]
    pub dns_persist: bool,
    /// How long an authorization proven by dns-persist-01 may be reused
    /// [default: authorization_reuse]; a record's persistUntil cuts it
    /// shorter still.
    pub dns_persist_reuse: Option<String>,
}

/// Whether newAccount through a profile needs an external account binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EabPolicy {
    #[default]
    Off,
    Optional,
    Required,
}

impl EabPolicy {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "off" => Some(Self::Off),
            "optional" => Some(Self::Optional),
            "required" => Some(Self::Required),
            _ => None,
        }
    }
}

/// The default fraction of a certificate's life after which ARI suggests renewing.
pub const DEFAULT_RENEWAL_WINDOW_START: f64 = 2.0 / 3.0;

/// Who signs for a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileIssuer {
    /// The embedded CA in `<data-dir>/ca`.
    Local,
    /// `<mount>/sign/<role>`, or `<mount>/issuer/<ref>/sign/<role>`.
    Vault {
        mount: String,
        role: String,
        issuer_ref: Option<String>,
    },
}

/// A validated profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSettings {
    pub name: String,
    pub issuer: ProfileIssuer,
    /// Asked-for certificate lifetime; `None` leaves it to the issuer (the
    /// Vault role's ttl, or `--cert-lifetime` for the embedded CA).
    pub ttl: Option<Duration>,
    pub validation: ValidationPolicy,
    pub description: String,
    pub eab: EabPolicy,
    /// Fraction of a certificate's life at which its renewal window opens.
    pub renewal_window_start: f64,
}

impl ProfileIssuer {
    /// A profile's description when the config gives none.
    fn describe(&self) -> String {
        match self {
            Self::Local => "certificates from the embedded CA".to_owned(),
            Self::Vault { mount, role, .. } => {
                format!("certificates from Vault role {mount}/{role}")
            }
        }
    }
}

impl ProfileSettings {
    /// A profile of this name on the embedded CA with every default.
    pub fn local(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            issuer: ProfileIssuer::Local,
            ttl: None,
            validation: ValidationPolicy {
                denied_networks: Networks::metadata(),
                caa_identities: Vec::new(),
                dns_persist: None,
            },
            description: ProfileIssuer::Local.describe(),
            eab: EabPolicy::Off,
            renewal_window_start: DEFAULT_RENEWAL_WINDOW_START,
        }
    }

    pub fn uses_vault(&self) -> bool {
        matches!(self.issuer, ProfileIssuer::Vault { .. })
    }
}

fn check_name(name: &str) -> Result<(), ConfigError> {
    let well_formed = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if !well_formed {
        return Err(ConfigError::Invalid(format!(
            "profile name {name:?}: use lower-case letters, digits and '-' (at most 63)"
        )));
    }
    if RESERVED.contains(&name) {
        return Err(ConfigError::Invalid(format!(
            "profile name {name:?} is reserved for an ACME resource"
        )));
    }
    Ok(())
}

fn vault_path_part(
    profile: &str,
    key: &str,
    value: Option<&String>,
) -> Result<String, ConfigError> {
    let value = value
        .map(|v| v.trim_matches('/').to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ConfigError::Invalid(format!("profile {profile:?}: issuer \"vault\" needs {key}"))
        })?;
    if value.contains("..") || value.contains(char::is_whitespace) || value.contains(['?', '#']) {
        return Err(ConfigError::Invalid(format!(
            "profile {profile:?}: {key} {value:?} is not a Vault path"
        )));
    }
    Ok(value)
}

impl ProfileFile {
    /// dns-persist-01 as this profile offers it, or `None`. Its issuer
    /// domain names are the CAA identities, or when there are none the names
    /// certgate serves under (`served_names`).
    fn dns_persist(
        &self,
        name: &str,
        caa_identities: &[String],
        served_names: &[String],
    ) -> Result<Option<DnsPersistPolicy>, ConfigError> {
        let reuse = self
            .dns_persist_reuse
            .as_deref()
            .map(parse_duration)
            .transpose()?;
        if !self.dns_persist {
            return match reuse {
                Some(_) => Err(ConfigError::Invalid(format!(
                    "profile {name:?}: dns_persist_reuse needs dns_persist = true"
                ))),
                None => Ok(None),
            };
        }
        let issuer_domain_names = if caa_identities.is_empty() {
            served_names.to_vec()
        } else {
            caa_identities.to_vec()
        };
        if issuer_domain_names.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "profile {name:?}: dns_persist needs an issuer domain name: set caa_identities, external_url or tls_name"
            )));
        }
        if issuer_domain_names.len() > MAX_ISSUER_DOMAIN_NAMES {
            return Err(ConfigError::Invalid(format!(
                "profile {name:?}: dns-persist-01 offers at most {MAX_ISSUER_DOMAIN_NAMES} issuer domain names; caa_identities has {}",
                issuer_domain_names.len()
            )));
        }
        Ok(Some(DnsPersistPolicy {
            issuer_domain_names,
            reuse,
        }))
    }

    fn resolve(&self, name: &str, served_names: &[String]) -> Result<ProfileSettings, ConfigError> {
        check_name(name)?;
        let issuer = match self.issuer.as_str() {
            "local" => {
                if let Some(key) = [
                    ("mount", &self.mount),
                    ("role", &self.role),
                    ("issuer_ref", &self.issuer_ref),
                ]
                .iter()
                .find_map(|(key, v)| v.as_ref().map(|_| key))
                {
                    return Err(ConfigError::Invalid(format!(
                        "profile {name:?}: {key} only applies to issuer \"vault\""
                    )));
                }
                ProfileIssuer::Local
            }
            "vault" => ProfileIssuer::Vault {
                mount: vault_path_part(name, "mount", self.mount.as_ref())?,
                role: vault_path_part(name, "role", self.role.as_ref())?,
                issuer_ref: self
                    .issuer_ref
                    .as_ref()
                    .map(|r| vault_path_part(name, "issuer_ref", Some(r)))
                    .transpose()?,
            },
            other => {
                return Err(ConfigError::Invalid(format!(
                    "profile {name:?}: issuer {other:?} is not \"vault\" or \"local\""
                )))
            }
        };
        let denied_networks = match &self.deny_networks {
            None => Networks::metadata(),
            Some(list) => Networks::new(
                list.iter()
                    .map(|n| n.parse::<Network>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| ConfigError::Invalid(format!("profile {name:?}: {e}")))?,
            ),
        };
        let caa_identities = self
            .caa_identities
            .iter()
            .map(|id| id.trim().trim_end_matches('.').to_ascii_lowercase())
            .collect::<Vec<_>>();
        if let Some(bad) = caa_identities
            .iter()
            .find(|id| crate::protocol::identifiers::parse_dns(id).is_err())
        {
            return Err(ConfigError::Invalid(format!(
                "profile {name:?}: caa_identities entry {bad:?} is not a domain name"
            )));
        }
        let dns_persist = self.dns_persist(name, &caa_identities, served_names)?;
        let eab = match self.eab.as_deref() {
            None => EabPolicy::Off,
            Some(text) => EabPolicy::parse(text).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "profile {name:?}: eab {text:?} is not \"off\", \"optional\" or \"required\""
                ))
            })?,
        };
        let renewal_window_start = self
            .renewal_window_start
            .unwrap_or(DEFAULT_RENEWAL_WINDOW_START);
        if !(renewal_window_start > 0.0 && renewal_window_start < 1.0) {
            return Err(ConfigError::Invalid(format!(
                "profile {name:?}: renewal_window_start must be between 0 and 1"
            )));
        }
        let description = self
            .description
            .clone()
            .unwrap_or_else(|| issuer.describe());
        Ok(ProfileSettings {
            name: name.to_owned(),
            issuer,
            ttl: self.ttl.as_deref().map(parse_duration).transpose()?,
            validation: ValidationPolicy {
                denied_networks,
                caa_identities,
                dns_persist,
            },
            description,
            eab,
            renewal_window_start,
        })
    }
}

/// Validates the profiles and picks the default: the one named by
/// `default_profile`, else the one called `default`, else the only one.
/// No profiles at all means one `default` profile on the embedded CA.
/// `served_names` are the DNS names certgate is reached under (its external
/// URL's host and TLS names), for dns-persist-01 without CAA identities.
pub fn resolve(
    files: &BTreeMap<String, ProfileFile>,
    default_profile: Option<&str>,
    served_names: &[String],
) -> Result<(Vec<ProfileSettings>, String), ConfigError> {
    let profiles = if files.is_empty() {
        vec![ProfileSettings::local(DEFAULT_PROFILE)]
    } else {
        files
            .iter()
            .map(|(name, file)| file.resolve(name, served_names))
            .collect::<Result<Vec<_>, _>>()?
    };
    let default = match default_profile {
        Some(name) => name.to_owned(),
        None if profiles.len() == 1 => profiles[0].name.clone(),
        None if profiles.iter().any(|p| p.name == DEFAULT_PROFILE) => DEFAULT_PROFILE.to_owned(),
        None => {
            return Err(ConfigError::Invalid(
                "several profiles and none called \"default\": set default_profile".into(),
            ))
        }
    };
    if !profiles.iter().any(|p| p.name == default) {
        return Err(ConfigError::Invalid(format!(
            "default_profile {default:?} is not a configured profile"
        )));
    }
    Ok((profiles, default))
}

/// A profile's limits on validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationPolicy {
    /// Networks no validation may connect to.
    pub denied_networks: Networks,
    /// Issuer domains CAA records must name; empty means CAA is not checked.
    pub caa_identities: Vec<String>,
    /// dns-persist-01, when the profile offers it.
    pub dns_persist: Option<DnsPersistPolicy>,
}

/// A profile's dns-persist-01 (draft-ietf-acme-dns-persist-01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsPersistPolicy {
    /// What a record may name as its CA: shown in each challenge and as the
    /// directory's `caaIdentities`; lower case, no trailing dot, at most 10.
    pub issuer_domain_names: Vec<String>,
    /// A cap on how long an authorization it proved may be reused; `None`
    /// leaves it at `authorization_reuse`.
    pub reuse: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(text: &str) -> BTreeMap<String, ProfileFile> {
        #[derive(Deserialize)]
        struct Wrapper {
            profiles: BTreeMap<String, ProfileFile>,
        }
        toml::from_str::<Wrapper>(text).unwrap().profiles
    }

    #[test]
    fn no_profiles_means_the_embedded_ca_as_default() {
        let (profiles, default) = resolve(&BTreeMap::new(), None, &[]).unwrap();
        assert_eq!(default, "default");
        assert_eq!(profiles[0].issuer, ProfileIssuer::Local);
    }

    #[test]
    fn a_vault_profile_with_issuer_ref_and_ttl() {
        let (profiles, default) = resolve(
            &files(
                "[profiles.lab]\nissuer = \"vault\"\nmount = \"pki_int/\"\nrole = \"lab-internal\"\nissuer_ref = \"next\"\nttl = \"72h\"\n",
            ),
            None,
            &[],
        )
        .unwrap();
        assert_eq!(default, "lab");
        assert_eq!(
            profiles[0],
            ProfileSettings {
                name: "lab".into(),
                issuer: ProfileIssuer::Vault {
                    mount: "pki_int".into(),
                    role: "lab-internal".into(),
                    issuer_ref: Some("next".into()),
                },
                ttl: Some(Duration::from_secs(72 * 3600)),
                validation: ValidationPolicy {
                    denied_networks: Networks::metadata(),
                    caa_identities: Vec::new(),
                    dns_persist: None,
                },
                description: "certificates from Vault role pki_int/lab-internal".into(),
                eab: EabPolicy::Off,
                renewal_window_start: DEFAULT_RENEWAL_WINDOW_START,
            }
        );
    }

    #[test]
    fn dns_persist_is_off_by_default_and_names_the_ca_identities_or_served_names() {
        let served = ["acme.lab.test".to_owned()];
        let (profiles, _) =
            resolve(&files("[profiles.a]\nissuer = \"local\"\n"), None, &served).unwrap();
        assert_eq!(profiles[0].validation.dns_persist, None);
        let (profiles, _) = resolve(
            &files("[profiles.a]\nissuer = \"local\"\ndns_persist = true\ndns_persist_reuse = \"8h\"\n"),
            None,
            &served,
        )
        .unwrap();
        assert_eq!(
            profiles[0].validation.dns_persist,
            Some(DnsPersistPolicy {
                issuer_domain_names: served.to_vec(),
                reuse: Some(Duration::from_secs(8 * 3600)),
            })
        );
        let (profiles, _) = resolve(
            &files("[profiles.a]\nissuer = \"local\"\ndns_persist = true\ncaa_identities = [\"CA.Lab.test.\"]\n"),
            None,
            &served,
        )
        .unwrap();
        let persist = profiles[0].validation.dns_persist.as_ref().unwrap();
        assert_eq!(persist.issuer_domain_names, ["ca.lab.test"]);
        assert_eq!(persist.reuse, None);
    }

    #[test]
    fn refuses_what_cannot_work() {
        for (text, default, needle) in [
            (
                "[profiles.lab]\nissuer = \"vault\"\nrole = \"r\"\n",
                None,
                "mount",
            ),
            (
                "[profiles.lab]\nissuer = \"vault\"\nmount = \"pki\"\n",
                None,
                "role",
            ),
            (
                "[profiles.lab]\nissuer = \"local\"\nrole = \"r\"\n",
                None,
                "only applies",
            ),
            ("[profiles.lab]\nissuer = \"acme\"\n", None, "\"acme\""),
            (
                "[profiles.lab]\nissuer = \"local\"\ndeny_networks = [\"10.0.0.0/33\"]\n",
                None,
                "prefix",
            ),
            (
                "[profiles.lab]\nissuer = \"local\"\ncaa_identities = [\"not a domain\"]\n",
                None,
                "caa_identities",
            ),
            ("[profiles.Lab]\nissuer = \"local\"\n", None, "lower-case"),
            ("[profiles.acct]\nissuer = \"local\"\n", None, "reserved"),
            (
                "[profiles.a]\nissuer = \"local\"\n[profiles.b]\nissuer = \"local\"\n",
                None,
                "default_profile",
            ),
            (
                "[profiles.a]\nissuer = \"local\"\n",
                Some("b"),
                "not a configured",
            ),
            (
                "[profiles.a]\nissuer = \"vault\"\nmount = \"pki/../sys\"\nrole = \"r\"\n",
                None,
                "not a Vault path",
            ),
            (
                "[profiles.a]\nissuer = \"local\"\ndns_persist = true\n",
                None,
                "needs an issuer domain name",
            ),
            (
                "[profiles.a]\nissuer = \"local\"\ndns_persist_reuse = \"1h\"\n",
                None,
                "needs dns_persist = true",
            ),
            (
                "[profiles.a]\nissuer = \"local\"\ndns_persist = true\ncaa_identities = [\"a1.test\", \"a2.test\", \"a3.test\", \"a4.test\", \"a5.test\", \"a6.test\", \"a7.test\", \"a8.test\", \"a9.test\", \"a10.test\", \"a11.test\"]\n",
                None,
                "at most 10",
            ),
        ] {
            let err = resolve(&files(text), default, &[]).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
