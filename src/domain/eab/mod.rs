//! External Account Binding (RFC 8555 §7.3.4): keys an operator hands out
//! with `certgate eab create`, which an ACME client must present (or may,
//! per the profile's `eab = "required" | "optional" | "off"`) to create an
//! account through that profile's directory.
//!
//! # Keys at rest
//!
//! A key is a random kid and a random 256-bit HMAC key. The HMAC key is
//! shown once, when it is made, and stored only encrypted with AES-256-GCM
//! under a key-encryption key kept in `eab_key_file` (by default
//! `<data-dir>/eab.key`, mode 0600, created by the first `eab create`); the
//! kid and profile are the associated data, so a ciphertext cannot be moved
//! to another row. A
//! database dump or backup without that file yields no usable HMAC key.
//! Neither key is ever logged; only kids are.
//!
//! # Binding
//!
//! newAccount verifies the binding JWS: `alg` HS256, `kid` a key of the
//! profile the request came through, `url` that profile's newAccount URL, no
//! `nonce`, the payload the same public key as the outer JWS (compared as
//! keys, by RFC 7638 thumbprint), and the MAC (constant-time). The MAC is
//! checked before anything is said about the key's state, so only a holder
//! of the HMAC key learns that it is revoked, expired or already used.
//!
//! The account is created and the key bound to it in one write transaction,
//! the key taken by a compare-and-set on "unbound, unrevoked, unexpired": of
//! two accounts racing for one key exactly one exists afterwards, and no
//! account is ever left behind without the binding it was created with.
//!
//! Problems: no binding where one is required is `externalAccountRequired`
//! with status 403, as Pebble answers (the request is well formed but not
//! authorised without a binding); a binding that fails verification, names
//! an unknown, revoked, expired or already bound key is `unauthorized` (403);
//! a binding that is not a well-formed JWS is `malformed`. A profile with
//! `eab = "off"` ignores a binding, as RFC 8555 allows.
//!
//! # Orders
//!
//! At newOrder ([`check_new_order`]):
//! - a profile with `eab = "required"` only takes orders from accounts bound
//!   with a key of that profile, so an account made through another
//!   profile's directory (or before the profile required a binding) cannot
//!   order in it by naming it in newOrder;
//! - an account whose key was revoked after binding can no longer order,
//!   nor start a challenge or finalize an order it already has
//!   ([`check_binding_in_force`]): revocation stops what the key started.
//!   Expiry only ends the time in which a key can bind an account, as
//!   `eab create --expires` documents;
//! - an account bound with a `--names` key may order only names the key's
//!   patterns allow, else `rejectedIdentifier` with one subproblem per
//!   refused identifier.
//!
//! # Name patterns
//!
//! `--names` takes comma-separated patterns with the meaning they have as a
//! Vault role's `allowed_domains` with `allow_bare_domains` and
//! `allow_glob_domains` set (and `allow_subdomains`, `allow_localhost` not):
//! - a name without `*` allows exactly that name: `nas.lab.example` does
//!   not allow `www.nas.lab.example` nor `*.nas.lab.example`;
//! - a pattern with `*` is a glob whose `*` matches any run of characters,
//!   dots included: `*.nas.lab.example` allows the wildcard name
//!   `*.nas.lab.example` and every name below `nas.lab.example` at any
//!   depth (`a.nas.lab.example`, `a.b.nas.lab.example`), but not
//!   `nas.lab.example` itself; `web-*.lab.example` allows `web-1.lab.example`;
//! - an IP address allows exactly that address.
//!
//! So `--names 'nas.lab.example,*.nas.lab.example'` gives a NAS its own name,
//! its wildcard and the names under it, and nothing else. To keep a glob
//! inside a domain, the text after a pattern's last `*` must contain a dot
//! followed by a domain name (`nas*` alone would match `nas.other.example`
//! and is refused).

mod binding;
mod keyring;
mod names;

use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};

use crate::store::eab::EabKeyRecord;
use crate::store::{Store, StoreError};

pub use binding::{
    binding_to_verify, check_binding_in_force, check_new_order, create_bound_account,
    parse_binding, Binding,
};
pub use keyring::{HmacKey, Keyring};
pub use names::NamesLimit;

/// Bytes of a key-encryption key (AES-256) and of an HMAC key (HS256).
const KEY_BYTES: usize = 32;
/// The only MAC algorithm accepted on a binding.
pub const BINDING_ALGORITHM: &str = "HS256";
/// Prefix of the AES-GCM associated data, naming what is encrypted.
const AAD_CONTEXT: &[u8] = b"certgate eab hmac key v1";

#[derive(Debug, thiserror::Error)]
pub enum EabError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{0} does not exist; it holds the key that encrypts the external account keys \
         and is made by `certgate eab create`"
    )]
    NoKeyFile(PathBuf),
    #[error("{path} is not a key-encryption key: {reason}")]
    BadKeyFile { path: PathBuf, reason: String },
    #[error(transparent)]
    PrivateKey(#[from] crate::util::private_key::PrivateKeyError),
    #[error(
        "the HMAC key of {kid} does not decrypt with {path}: the file or the row was replaced"
    )]
    Decrypt { kid: String, path: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("the system random number generator failed")]
    Random,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> EabError + '_ {
    move |source| EabError::Io {
        path: path.to_owned(),
        source,
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], EabError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| EabError::Random)?;
    Ok(bytes)
}

/// A key as `eab create` made it: the HMAC key in clear, for printing once.
#[derive(Debug)]
pub struct CreatedKey {
    pub record: EabKeyRecord,
    pub hmac_key: HmacKey,
}

/// A new kid: 128 random bits in lower-case hex, so that it never starts
/// with '-' on a command line and needs no quoting.
fn new_kid() -> Result<String, EabError> {
    Ok(random_bytes::<16>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Makes a key for `profile` and stores it encrypted.
pub async fn create_key(
    store: &Store,
    keyring: &Keyring,
    profile: &str,
    names: Option<NamesLimit>,
    expires_at: Option<i64>,
    note: Option<String>,
    now: i64,
) -> Result<CreatedKey, EabError> {
    let kek = keyring.load_or_create()?;
    let kid = new_kid()?;
    let hmac_key = HmacKey(random_bytes::<KEY_BYTES>()?.to_vec());
    let (key_ciphertext, key_nonce) = kek.seal(&kid, profile, &hmac_key.0)?;
    let record = EabKeyRecord {
        kid,
        profile: profile.to_owned(),
        key_ciphertext,
        key_nonce,
        names: names.map(|n| n.patterns),
        note,
        created_at: now,
        expires_at,
        revoked_at: None,
        account_id: None,
        bound_at: None,
    };
    store.insert_eab_key(&record).await?;
    tracing::info!(kid = %record.kid, profile, "external account key created");
    Ok(CreatedKey { record, hmac_key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::identifiers::{parse_dns, parse_ip};

    fn allows(limit: &NamesLimit, name: &str) -> bool {
        let id = parse_ip(name).or_else(|_| parse_dns(name)).unwrap();
        limit.allows(&id)
    }

    #[test]
    fn a_name_allows_itself_and_a_glob_what_it_matches() {
        let limit = NamesLimit::parse(" NAS.lab.example, *.nas.lab.example ,10.0.0.5").unwrap();
        assert_eq!(
            limit.patterns(),
            ["nas.lab.example", "*.nas.lab.example", "10.0.0.5"]
        );
        for name in [
            "nas.lab.example",
            "*.nas.lab.example",
            "www.nas.lab.example",
            "a.b.nas.lab.example",
            "10.0.0.5",
        ] {
            assert!(allows(&limit, name), "{name}");
        }
        for name in [
            "other.lab.example",
            "lab.example",
            "*.lab.example",
            "nas.lab.example.evil.test",
            "xnas.lab.example",
            "10.0.0.6",
            "localhost",
        ] {
            assert!(!allows(&limit, name), "{name}");
        }
        let exact = NamesLimit::parse("nas.lab.example").unwrap();
        assert!(!allows(&exact, "*.nas.lab.example"));
        assert!(!allows(&exact, "www.nas.lab.example"));
        let web = NamesLimit::parse("web-*.lab.example").unwrap();
        assert!(allows(&web, "web-1.lab.example"));
        assert!(!allows(&web, "db-1.lab.example"));
    }

    #[test]
    fn patterns_that_escape_their_domain_are_refused() {
        for bad in [
            "",
            " , ",
            "nas*",
            "*",
            "*.",
            "nas.*",
            "bad name.example",
            "a_b.example",
        ] {
            assert!(NamesLimit::parse(bad).is_err(), "{bad:?}");
        }
    }
}
