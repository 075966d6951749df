//! `sign-verbatim[/{role}]`: the CSR's subject, SANs and extensions as they
//! are (basic constraints dropped, so a CSR cannot make itself a CA), any key
//! type, no name rules. A role contributes only ttl, max_ttl, no_store and
//! issuer_ref.

use super::csr;
use super::envelope::VaultError;
use super::fields::Fields;
use super::issue::{issue, response_data, Format, LeafPlan};
use super::role::Role;
use super::sign::{find_ca, find_role, store, SignTarget, Signed};
use super::state::{App, PkiMount};
use super::ttl;

/// Extensions never copied: basic constraints (Vault's rule) and the
/// authority key identifier (the issuer writes its own).
const NOT_COPIED: [&[u64]; 2] = [&[2, 5, 29, 19], &[2, 5, 29, 35]];

pub fn sign_verbatim(
    app: &App,
    mount: &PkiMount,
    target: &SignTarget,
    fields: &Fields,
) -> Result<Signed, VaultError> {
    let role = match target.role {
        Some(name) => find_role(mount, name)?,
        None => Role::new(""),
    };
    let format = Format::parse(&fields.string("format")?)?;
    let ca = find_ca(mount, target.issuer_ref.unwrap_or(&role.issuer_ref))?;
    let csr = csr::parse(&fields.string("csr")?).map_err(VaultError::bad_request)?;
    let key = csr
        .key
        .clone()
        .ok_or_else(|| VaultError::bad_request("unsupported key type in CSR"))?;
    let (now, not_after, warnings) =
        ttl::window(app.clock.now(), fields, &role, ca.intermediate.not_after)?;
    if !csr.signature_valid {
        return Err(VaultError::bad_request("request signature invalid"));
    }
    let plan = LeafPlan {
        subject: csr.subject.clone(),
        sans: Vec::new(),
        not_before: now - time::Duration::seconds(30),
        not_after,
        key_usages: Vec::new(),
        extended_key_usages: Vec::new(),
        copied_extensions: csr
            .extensions
            .into_iter()
            .filter(|ext| !NOT_COPIED.contains(&ext.oid.as_slice()))
            .collect(),
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
