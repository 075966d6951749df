//! `sign/{role}` (and `issuer/{ref}/sign/{role}`): every check in the order
//! Vault runs them, names taken from the CSR by the role's rules, and the
//! leaf signed by the mount's intermediate.

use std::net::IpAddr;

use rcgen::{DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose, SanType};
use serde_json::Value;

use super::csr::{self, Csr, CsrPublicKey, KeyKind};
use super::envelope::{ok_with_warnings, Reply, VaultError};
use super::fields::Fields;
use super::issue::{issue, response_data, Format, Issued, LeafPlan};
use super::names::{glob_match, is_hostname, name_allowed};
use super::record::{push, SignCall};
use super::role::Role;
use super::state::{App, PkiMount, StoredCert};
use super::ttl;
use super::verbatim;

/// Which signing endpoint was called.
pub struct SignTarget<'a> {
    pub role: Option<&'a str>,
    pub issuer_ref: Option<&'a str>,
    pub verbatim: bool,
}

impl<'a> SignTarget<'a> {
    pub fn new(role: Option<&'a str>, issuer_ref: Option<&'a str>, verbatim: bool) -> Self {
        Self {
            role,
            issuer_ref,
            verbatim,
        }
    }
}

/// Runs a sign request and records it, whatever the outcome.
pub fn handle(app: &App, mount: &PkiMount, target: &SignTarget, fields: &Fields) -> Reply {
    let outcome = if target.verbatim {
        verbatim::sign_verbatim(app, mount, target, fields)
    } else {
        sign(app, mount, target, fields)
    };
    let csr = csr::parse(&fields.string("csr").unwrap_or_default()).ok();
    push(
        &app.record.signs,
        SignCall {
            mount: mount.name.clone(),
            role: target.role.unwrap_or_default().to_owned(),
            verbatim: target.verbatim,
            csr_common_name: csr
                .as_ref()
                .map(|c| c.common_name.clone())
                .unwrap_or_default(),
            csr_dns_names: csr
                .as_ref()
                .map(|c| c.dns_names.clone())
                .unwrap_or_default(),
            csr_ip_sans: csr
                .as_ref()
                .map(|c| c.ip_sans.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            status: outcome.as_ref().map_or_else(|e| e.status.as_u16(), |_| 200),
            serial: outcome
                .as_ref()
                .ok()
                .map(|(issued, _, _)| issued.serial.clone()),
            error: outcome
                .as_ref()
                .err()
                .and_then(|e| e.errors.first().cloned()),
        },
    );
    let (_, data, warnings) = outcome?;
    Ok(ok_with_warnings(data, &warnings))
}

/// What a successful sign produced: the leaf, the response data, warnings.
pub type Signed = (Issued, Value, Vec<String>);

/// Check 1: the role exists.
pub fn find_role(mount: &PkiMount, name: &str) -> Result<Role, VaultError> {
    mount
        .role(name)
        .ok_or_else(|| VaultError::bad_request(format!("unknown role: {name}")))
}

/// Check 2: a CA is loaded and answers to the issuer reference.
pub fn find_ca<'m>(
    mount: &'m PkiMount,
    reference: &str,
) -> Result<&'m super::ca::MountCa, VaultError> {
    let ca = mount.ca.as_ref().ok_or_else(VaultError::no_ca)?;
    if ca.answers_to(reference) {
        Ok(ca)
    } else {
        Err(VaultError::bad_request(format!(
            "unable to find PKI issuer for reference: {reference}"
        )))
    }
}

/// Check 4: the role's key type and minimum size.
fn check_key(role: &Role, csr: &Csr) -> Result<CsrPublicKey, VaultError> {
    let wrong_type =
        || VaultError::bad_request(format!("role requires keys of type {}", role.key_type));
    let key = csr.key.clone().ok_or_else(wrong_type)?;
    if role.key_type != "any" && role.key_type != key.kind.role_name() {
        return Err(wrong_type());
    }
    // With key_type "any" the role's key_bits is ignored for the type's own minimum.
    let minimum = match (role.key_type.as_str(), key.kind) {
        ("any", KeyKind::Rsa) => 2048,
        ("any", KeyKind::Ec) => 256,
        (_, KeyKind::Ed25519) => 0,
        _ => role.key_bits,
    };
    if key.bits < minimum {
        return Err(VaultError::bad_request(format!(
            "role requires a minimum of a {minimum}-bit key, but CSR's key is {} bits",
            key.bits
        )));
    }
    Ok(key)
}

/// The subject Vault writes: the CN plus the role's O/OU/C/L/ST.
fn subject(role: &Role, common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    let attributes = [
        (DnType::CountryName, &role.country),
        (DnType::StateOrProvinceName, &role.province),
        (DnType::LocalityName, &role.locality),
        (DnType::OrganizationName, &role.organization),
        (DnType::OrganizationalUnitName, &role.ou),
    ];
    for (kind, values) in attributes {
        if let Some(value) = values.first() {
            dn.push(kind, value.as_str());
        }
    }
    if !common_name.is_empty() {
        dn.push(DnType::CommonName, common_name);
    }
    dn
}

fn parse_ips(texts: &[String]) -> Result<Vec<IpAddr>, VaultError> {
    texts
        .iter()
        .map(|t| {
            t.parse().map_err(|_| {
                VaultError::bad_request(format!("the value \"{t}\" is not a valid IP address"))
            })
        })
        .collect()
}

/// The names a role-based sign certifies, after checks 5–7.
struct Names {
    common_name: String,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
    uris: Vec<String>,
}

fn decide_names(
    role: &Role,
    csr: &Csr,
    fields: &Fields,
    warnings: &mut Vec<String>,
) -> Result<Names, VaultError> {
    let requested_cn = fields.string("common_name")?;
    if role.use_csr_common_name && !requested_cn.is_empty() {
        warnings.push("the common_name field was provided but the role is set with \"use_csr_common_name\" set to true".to_owned());
    }
    if role.use_csr_sans && !fields.list("alt_names")?.is_empty() {
        warnings.push("the alt_names field was provided but the role is set with \"use_csr_sans\" set to true".to_owned());
    }
    // The CSR's CN when the role says so and there is one; otherwise the
    // request's `common_name` (Vault's fallback for CSRs without a CN).
    let common_name = if role.use_csr_common_name && !csr.common_name.is_empty() {
        csr.common_name.clone()
    } else {
        requested_cn
    };

    // 5. the common name
    if common_name.is_empty() && role.require_cn {
        return Err(VaultError::bad_request(
            "the common_name field is required, or must be provided in a CSR with \"use_csr_common_name\" set to true, unless \"require_cn\" is set to false",
        ));
    }
    if !common_name.is_empty() && !name_allowed(role, &common_name) {
        return Err(VaultError::bad_request(format!(
            "common name {common_name} not allowed by this role"
        )));
    }

    // 6. DNS SANs, with the CN added unless excluded (and only if it is a hostname)
    let mut dns = if role.use_csr_sans {
        csr.dns_names.clone()
    } else {
        fields.list("alt_names")?
    };
    let cn_host = common_name.strip_prefix("*.").unwrap_or(&common_name);
    if !fields.boolean("exclude_cn_from_sans", false)?
        && !common_name.is_empty()
        && is_hostname(cn_host)
    {
        dns.push(common_name.clone());
    }
    // Vault deduplicates with strutil.RemoveDuplicates, which also sorts.
    dns.sort();
    dns.dedup();
    if let Some(bad) = dns.iter().find(|name| !name_allowed(role, name)) {
        return Err(VaultError::bad_request(format!(
            "subject alternate name {bad} not allowed by this role"
        )));
    }

    // 7. IP SANs, then URI SANs
    let (ips, from_csr) = if role.use_csr_sans {
        (csr.ip_sans.clone(), true)
    } else {
        (parse_ips(&fields.list("ip_sans")?)?, false)
    };
    if !ips.is_empty() && !role.allow_ip_sans {
        let source = if from_csr {
            "some via CSR".to_owned()
        } else {
            ips.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        return Err(VaultError::bad_request(format!(
            "IP Subject Alternative Names are not allowed in this role, but was provided {source}"
        )));
    }
    let uris = if role.use_csr_sans {
        csr.uri_sans.clone()
    } else {
        fields.list("uri_sans")?
    };
    if !uris.is_empty() && role.allowed_uri_sans.is_empty() {
        return Err(VaultError::bad_request(
            "URI Subject Alternative Names are not allowed in this role, but were provided via CSR",
        ));
    }
    if let Some(bad) = uris
        .iter()
        .find(|u| !role.allowed_uri_sans.iter().any(|g| glob_match(g, u)))
    {
        return Err(VaultError::bad_request(format!(
            "URI Subject Alternative Name {bad} not allowed by this role"
        )));
    }
    Ok(Names {
        common_name,
        dns,
        ips,
        uris,
    })
}

fn sans(names: &Names) -> Result<Vec<SanType>, VaultError> {
    let mut sans = Vec::new();
    for name in &names.dns {
        let ia5 = name
            .as_str()
            .try_into()
            .map_err(|_| VaultError::bad_request(format!("invalid DNS name {name}")))?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(names.ips.iter().copied().map(SanType::IpAddress));
    for uri in &names.uris {
        let ia5 = uri
            .as_str()
            .try_into()
            .map_err(|_| VaultError::bad_request(format!("invalid URI {uri}")))?;
        sans.push(SanType::URI(ia5));
    }
    Ok(sans)
}

/// Keeps the certificate unless the role says `no_store`.
pub fn store(mount: &PkiMount, issued: &Issued, no_store: bool) {
    if !no_store {
        mount.certs.lock().unwrap().insert(
            issued.serial.clone(),
            StoredCert {
                pem: issued.pem.clone(),
                not_after: issued.not_after,
                revoked_at: None,
            },
        );
    }
}

fn sign(
    app: &App,
    mount: &PkiMount,
    target: &SignTarget,
    fields: &Fields,
) -> Result<Signed, VaultError> {
    let role = find_role(mount, target.role.unwrap_or_default())?;
    let format = Format::parse(&fields.string("format")?)?;
    let ca = find_ca(mount, target.issuer_ref.unwrap_or(&role.issuer_ref))?;
    let csr = csr::parse(&fields.string("csr")?).map_err(VaultError::bad_request)?;
    let key = check_key(&role, &csr)?;
    let mut warnings = Vec::new();
    let names = decide_names(&role, &csr, fields, &mut warnings)?;
    let (now, not_after, ttl_warnings) =
        ttl::window(app.clock.now(), fields, &role, ca.intermediate.not_after)?;
    warnings.extend(ttl_warnings);
    if !csr.signature_valid {
        return Err(VaultError::bad_request("request signature invalid"));
    }

    let mut extended_key_usages = Vec::new();
    if role.server_flag {
        extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if role.client_flag {
        extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    let plan = LeafPlan {
        subject: subject(&role, &names.common_name),
        sans: sans(&names)?,
        not_before: now
            - time::Duration::seconds(i64::try_from(role.not_before_duration).unwrap_or(30)),
        not_after,
        key_usages: vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
            KeyUsagePurpose::KeyEncipherment,
        ],
        extended_key_usages,
        copied_extensions: Vec::new(),
    };
    let issued = issue(plan, &key, ca)?;
    store(mount, &issued, role.no_store);
    let data = response_data(
        &issued,
        ca,
        format,
        fields.boolean("remove_roots_from_chain", false)?,
    );
    Ok((issued, data, warnings))
}
