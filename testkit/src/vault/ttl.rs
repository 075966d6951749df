//! Deciding a leaf's NotAfter: request `ttl` or `not_after`, the role's ttl
//! and max_ttl, the 32-day system default, and the issuer's own expiry.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::auth::SYSTEM_MAX_TTL;
use super::envelope::VaultError;
use super::fields::{go_duration, Fields};
use super::role::Role;

/// Vault's error text prints times in RFC 3339 with nanoseconds, UTC.
fn rfc3339_nano(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("formattable time")
}

/// The signing time (whole seconds, as Vault's certificates carry) and the
/// NotAfter for a request under `role`, with any warning about capping.
pub fn window(
    clock_now: OffsetDateTime,
    fields: &Fields,
    role: &Role,
    ca_not_after: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime, Vec<String>), VaultError> {
    let now = clock_now
        .replace_nanosecond(0)
        .expect("zero is a valid nanosecond");
    let (not_after, warnings) = not_after(fields, role.ttl, role.max_ttl, now, ca_not_after)?;
    Ok((now, not_after, warnings))
}

/// NotAfter for a request, plus any warning about capping.
pub fn not_after(
    fields: &Fields,
    role_ttl: u64,
    role_max_ttl: u64,
    now: OffsetDateTime,
    ca_not_after: OffsetDateTime,
) -> Result<(OffsetDateTime, Vec<String>), VaultError> {
    let requested = fields.duration("ttl")?;
    let explicit = fields.string("not_after")?;
    if requested > 0 && !explicit.is_empty() {
        return Err(VaultError::bad_request(
            "Either ttl or not_after should be provided. Both should not be provided in the same request.",
        ));
    }
    let mut ttl = if requested > 0 { requested } else { role_ttl };
    if ttl == 0 {
        ttl = SYSTEM_MAX_TTL;
    }
    let max_ttl = if role_max_ttl > 0 {
        role_max_ttl
    } else {
        SYSTEM_MAX_TTL
    };
    let mut warnings = Vec::new();
    if ttl > max_ttl {
        warnings.push(format!(
            "TTL \"{}\" is longer than permitted maxTTL \"{}\", so maxTTL is being used",
            go_duration(ttl),
            go_duration(max_ttl)
        ));
        ttl = max_ttl;
    }
    let not_after = if explicit.is_empty() {
        now + time::Duration::seconds(i64::try_from(ttl).unwrap_or(i64::MAX / 2))
    } else {
        OffsetDateTime::parse(&explicit, &Rfc3339).map_err(|e| {
            VaultError::bad_request(format!(
                "parsing time \"{explicit}\" as RFC 3339 failed: {e}"
            ))
        })?
    };
    if not_after > ca_not_after {
        return Err(VaultError::bad_request(format!(
            "cannot satisfy request, as TTL would result in notAfter of {} that is beyond the expiration of the CA certificate at {}",
            rfc3339_nano(not_after),
            rfc3339_nano(ca_not_after)
        )));
    }
    Ok((not_after, warnings))
}
