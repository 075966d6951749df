//! The paths of certgate's ACME resources, in one place: the URLs written
//! into responses, the CAA `accounturi` an account is known by, and the
//! directory paths the commands print are all built here. (The router in
//! `web::acme` matches the same paths.)

/// Where every ACME resource lives.
pub const ROOT: &str = "/acme";

/// A directory entry (`directory`, `new-order`, …): under
/// `/acme/<profile>/` for a profile's own directory, else under `/acme/`.
pub fn entry(profile: Option<&str>, name: &str) -> String {
    match profile {
        Some(profile) => format!("{ROOT}/{profile}/{name}"),
        None => format!("{ROOT}/{name}"),
    }
}

/// The directory of `profile`, or the default one.
pub fn directory(profile: Option<&str>) -> String {
    entry(profile, "directory")
}

/// A resource below `/acme/` that belongs to no profile: `acct/<id>`,
/// `order/<id>`, `renewal-info`, ….
pub fn resource(path: &str) -> String {
    format!("{ROOT}/{path}")
}

/// The path of account `id`, which is also its `kid` after the base URL.
pub fn account(id: &str) -> String {
    resource(&format!("acct/{id}"))
}

/// The account id at the end of an account path, if `path` is one.
pub fn account_id(path: &str) -> Option<&str> {
    let id = path.strip_prefix(ROOT)?.strip_prefix("/acct/")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_the_default_directory_and_of_a_profile() {
        assert_eq!(directory(None), "/acme/directory");
        assert_eq!(directory(Some("lab")), "/acme/lab/directory");
        assert_eq!(entry(Some("lab"), "new-order"), "/acme/lab/new-order");
        assert_eq!(account("abc"), "/acme/acct/abc");
        assert_eq!(account_id("/acme/acct/abc"), Some("abc"));
        assert_eq!(account_id("/acme/acct/abc/orders"), None);
        assert_eq!(account_id("/acme/acct/"), None);
        assert_eq!(account_id("/other/acct/abc"), None);
    }
}
