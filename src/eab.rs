//! External Account Binding (RFC 8555 §7.3.4): keys an operator hands out
//! with `certgate eab create`, which an ACME client must present (or may,
//! per the profile's `eab = "required" | "optional" | "off"`) to create an
//! account through that profile's directory.
//!
//! # Keys at rest
//!
//! A key is a random kid and a random 256-bit HMAC key. The HMAC key is
//! shown once, when it is made, and stored only encrypted with AES-256-GCM
//! under a key-encryption key kept in `<data-dir>/eab.key` (mode 0600,
//! created by the first `eab create`); the kid and profile are the
//! associated data, so a ciphertext cannot be moved to another row. A
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
//! - an account whose key was revoked after binding can no longer order
//!   (expiry only ends the time in which a key can bind an account);
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

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use serde_json::Value;

use crate::acme::identifiers::{parse_dns, IdentifierKind, OrderedIdentifier};
use crate::acme::jwk::PublicJwk;
use crate::acme::jws::FlattenedJws;
use crate::acme::problem::{Problem, ProblemType, Subproblem};
use crate::acme::urls::Urls;
use crate::acme::AcmeState;
use crate::config::EabPolicy;
use crate::policy::RoleRules;
use crate::profiles::Profile;
use crate::store::eab::{BoundAccount, EabKeyRecord};
use crate::store::{Account, NewAccount, Store, StoreError};

/// The key-encryption key's file in the data directory.
pub const KEY_FILE: &str = "eab.key";
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

/// An HMAC key in clear: never printed by `Debug`, and zeroed when dropped.
pub struct HmacKey(Vec<u8>);

impl HmacKey {
    /// base64url without padding, as lego's `--hmac` and certbot's
    /// `--eab-hmac-key` take it.
    pub fn encoded(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }

    fn verify(&self, signing_input: &[u8], mac: &[u8]) -> bool {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        ring::hmac::verify(&key, signing_input, mac).is_ok()
    }
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey([redacted])")
    }
}

impl Drop for HmacKey {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// Where the key-encryption key lives. It is read at each use, so `eab
/// create` may make it while the server runs.
#[derive(Debug, Clone)]
pub struct Keyring {
    path: PathBuf,
}

/// The key-encryption key, loaded.
struct Kek {
    key: LessSafeKey,
    path: PathBuf,
}

fn associated_data(kid: &str, profile: &str) -> Vec<u8> {
    let mut aad = AAD_CONTEXT.to_vec();
    for part in [kid, profile] {
        aad.push(0);
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

impl Kek {
    fn new(bytes: &[u8], path: &Path) -> Result<Self, EabError> {
        let bad = |reason: &str| EabError::BadKeyFile {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if bytes.len() != KEY_BYTES {
            return Err(bad("it does not hold 32 bytes"));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| bad("AES-256 refused it"))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            path: path.to_owned(),
        })
    }

    /// (ciphertext with tag, nonce) of `secret`, bound to `kid` and `profile`.
    fn seal(
        &self,
        kid: &str,
        profile: &str,
        secret: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), EabError> {
        let nonce = random_bytes::<NONCE_LEN>()?;
        let mut sealed = secret.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(kid, profile)),
                &mut sealed,
            )
            .map_err(|_| EabError::Invalid("encrypting the HMAC key failed".into()))?;
        Ok((sealed, nonce.to_vec()))
    }

    fn open(&self, record: &EabKeyRecord) -> Result<HmacKey, EabError> {
        let failed = || EabError::Decrypt {
            kid: record.kid.clone(),
            path: self.path.clone(),
        };
        let nonce = Nonce::try_assume_unique_for_key(&record.key_nonce).map_err(|_| failed())?;
        let mut buffer = record.key_ciphertext.clone();
        let plain = self
            .key
            .open_in_place(
                nonce,
                Aad::from(associated_data(&record.kid, &record.profile)),
                &mut buffer,
            )
            .map_err(|_| failed())?;
        let key = HmacKey(plain.to_vec());
        buffer.iter_mut().for_each(|b| *b = 0);
        Ok(key)
    }
}

impl Keyring {
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(KEY_FILE),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<Kek, EabError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(EabError::NoKeyFile(self.path.clone()))
            }
            Err(e) => return Err(io_error(&self.path)(e)),
        };
        if let Ok(meta) = std::fs::metadata(&self.path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %self.path.display(),
                    "the external account key-encryption key is readable by others; chmod 600 it"
                );
            }
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| EabError::BadKeyFile {
                path: self.path.clone(),
                reason: "it is not base64url".into(),
            })?;
        Kek::new(&bytes, &self.path)
    }

    /// Loads the key-encryption key, making it first if there is none. Two
    /// processes doing so at once end with one key: the file appears whole
    /// (a hard link to a finished temporary file) or not at all.
    fn load_or_create(&self) -> Result<Kek, EabError> {
        match self.load() {
            Err(EabError::NoKeyFile(_)) => {}
            other => return other,
        }
        let bytes = random_bytes::<KEY_BYTES>()?;
        let mut text = URL_SAFE_NO_PAD.encode(bytes);
        text.push('\n');
        let temporary = self.path.with_file_name(format!(
            ".{KEY_FILE}.{}",
            URL_SAFE_NO_PAD.encode(random_bytes::<12>()?)
        ));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .and_then(|mut file| {
                file.write_all(text.as_bytes())?;
                file.sync_all()
            });
        let linked = written.and_then(|()| std::fs::hard_link(&temporary, &self.path));
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => {
                tracing::info!(path = %self.path.display(), "created the external account key-encryption key");
                Kek::new(&bytes, &self.path)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.load(),
            Err(e) => Err(io_error(&self.path)(e)),
        }
    }
}

/// The names a `--names` key lets its account order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamesLimit {
    patterns: Vec<String>,
}

/// Why one `--names` pattern is refused, or `None` if it is usable.
fn pattern_error(pattern: &str) -> Option<String> {
    if pattern.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let Some(star) = pattern.rfind('*') else {
        return parse_dns(pattern).err();
    };
    let legal = pattern
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.*".contains(&b));
    if !legal {
        return Some(format!(
            "{pattern:?}: a pattern has letters, digits, '-', '.' and '*' only"
        ));
    }
    let anchored = pattern[star + 1..]
        .split_once('.')
        .is_some_and(|(_, domain)| parse_dns(domain).is_ok());
    if !anchored {
        return Some(format!(
            "{pattern:?}: after the last '*' a pattern needs '.' and a domain \
             (as in *.nas.lab.example), so it cannot match names of other domains"
        ));
    }
    None
}

impl NamesLimit {
    /// Comma-separated patterns (see the module documentation).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut patterns: Vec<String> = Vec::new();
        for raw in text.split(',') {
            let pattern = raw.trim().to_ascii_lowercase();
            if pattern.is_empty() {
                continue;
            }
            if let Some(why) = pattern_error(&pattern) {
                return Err(why);
            }
            let pattern = match pattern.parse::<std::net::IpAddr>() {
                Ok(ip) => ip.to_string(),
                Err(_) => pattern,
            };
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
        if patterns.is_empty() {
            return Err("--names lists no names; leave it out for a key without a limit".into());
        }
        Ok(Self { patterns })
    }

    /// Patterns as stored, already checked when the key was made.
    pub fn from_stored(patterns: Vec<String>) -> Self {
        Self { patterns }
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The DNS patterns as a Vault role would hold them.
    fn rules(&self) -> RoleRules {
        RoleRules {
            allowed_domains: self
                .patterns
                .iter()
                .filter(|p| p.parse::<std::net::IpAddr>().is_err())
                .cloned()
                .collect(),
            allow_subdomains: false,
            allow_bare_domains: true,
            allow_glob_domains: true,
            allow_wildcard_certificates: true,
            allow_any_name: false,
            allow_localhost: false,
            enforce_hostnames: true,
            allow_ip_sans: false,
            no_store: false,
        }
    }

    pub fn allows(&self, identifier: &OrderedIdentifier) -> bool {
        match identifier.kind {
            IdentifierKind::Ip => self.patterns.contains(&identifier.ordered),
            IdentifierKind::Dns => self.rules().check_dns(&identifier.ordered).is_ok(),
        }
    }
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

/// The profile whose directory a request came through.
pub fn request_profile<'a>(state: &'a AcmeState, urls: &Urls) -> &'a Profile {
    urls.profile()
        .and_then(|name| state.profiles.get(name))
        .unwrap_or_else(|| state.profiles.default_profile())
}

/// The binding newAccount must verify, if any: `None` when the profile
/// does not use one (an `off` profile ignores a binding it is sent).
pub fn binding_to_verify<'a>(
    profile: &Profile,
    binding: Option<&'a Value>,
) -> Result<Option<&'a Value>, Problem> {
    match (profile.eab, binding) {
        (EabPolicy::Off, Some(_)) => {
            tracing::info!(
                "newAccount carries an external account binding; the profile uses none, so it is not checked"
            );
            Ok(None)
        }
        (EabPolicy::Required, None) => Err(Problem::new(
            ProblemType::ExternalAccountRequired,
            format!(
                "profile {:?} requires an external account binding: ask the operator for a key \
                 (certgate eab create) and give its kid and HMAC key to the ACME client",
                profile.name
            ),
        )
        .with_status(StatusCode::FORBIDDEN)),
        (_, binding) => Ok(binding),
    }
}

#[derive(Debug, Deserialize)]
struct BindingHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    nonce: Option<Value>,
    #[serde(default)]
    jwk: Option<Value>,
    #[serde(default)]
    crit: Option<Value>,
}

fn malformed(detail: impl std::fmt::Display) -> Problem {
    Problem::malformed(format!("externalAccountBinding: {detail}"))
}

fn b64(field: &str, text: &str) -> Result<Vec<u8>, Problem> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| malformed(format!("{field} is not base64url without padding")))
}

/// A binding JWS checked for form, its MAC not yet verified.
struct Binding {
    kid: String,
    signing_input: Vec<u8>,
    mac: Vec<u8>,
}

/// RFC 8555 §7.3.4: everything about the binding that needs no key.
fn parse_binding(
    value: &Value,
    new_account_url: &str,
    account_key: &PublicJwk,
) -> Result<Binding, Problem> {
    let jws: FlattenedJws = serde_json::from_value(value.clone())
        .map_err(|e| malformed(format!("not a flattened JWS: {e}")))?;
    let header: BindingHeader = serde_json::from_slice(&b64("protected header", &jws.protected)?)
        .map_err(|e| malformed(format!("protected header: {e}")))?;
    if header.alg != BINDING_ALGORITHM {
        return Err(malformed(format!(
            "algorithm {:?} is not accepted; the binding is a MAC with {BINDING_ALGORITHM}",
            header.alg
        )));
    }
    if header.nonce.is_some() {
        return Err(malformed("the protected header must not have a nonce"));
    }
    if header.jwk.is_some() || header.crit.is_some() {
        return Err(malformed(
            "the protected header may have only alg, kid and url",
        ));
    }
    let kid = header
        .kid
        .filter(|k| !k.is_empty())
        .ok_or_else(|| malformed("the protected header has no kid"))?;
    let url = header
        .url
        .ok_or_else(|| malformed("the protected header has no url"))?;
    if url != new_account_url {
        return Err(Problem::unauthorized(format!(
            "externalAccountBinding url {url:?} is not this newAccount URL {new_account_url:?}"
        )));
    }
    let payload: Value = serde_json::from_slice(&b64("payload", &jws.payload)?)
        .map_err(|e| malformed(format!("payload is not the account JWK: {e}")))?;
    let bound_key = PublicJwk::parse(&payload)
        .map_err(|e| malformed(format!("payload is not the account JWK: {}", e.detail)))?;
    if bound_key.thumbprint != account_key.thumbprint {
        return Err(Problem::unauthorized(
            "externalAccountBinding is for another account key than the one signing this request",
        ));
    }
    Ok(Binding {
        kid,
        mac: b64("signature", &jws.signature)?,
        signing_input: format!("{}.{}", jws.protected, jws.payload).into_bytes(),
    })
}

/// Why `record` cannot bind an account now, if it cannot.
fn unusable(record: &EabKeyRecord, now: i64) -> Option<String> {
    let kid = &record.kid;
    if record.revoked_at.is_some() {
        Some(format!("external account key {kid} has been revoked"))
    } else if record.account_id.is_some() {
        Some(format!(
            "external account key {kid} is already bound to an account; a key binds one account"
        ))
    } else if record.expired(now) {
        Some(format!("external account key {kid} has expired"))
    } else {
        None
    }
}

/// Verifies a binding sent to newAccount of `profile`; returns its kid.
async fn verify_binding(
    state: &AcmeState,
    urls: &Urls,
    profile: &Profile,
    account_key: &PublicJwk,
    value: &Value,
    now: i64,
) -> Result<String, Problem> {
    let binding = parse_binding(value, &urls.new_account(), account_key)?;
    let unknown = || {
        Problem::unauthorized(format!(
            "external account key {:?} is not a key of profile {:?}",
            binding.kid, profile.name
        ))
    };
    let record = state
        .store
        .eab_key(&binding.kid)
        .await?
        .filter(|r| r.profile == profile.name)
        .ok_or_else(unknown)?;
    let hmac_key = state
        .eab
        .load()
        .and_then(|kek| kek.open(&record))
        .map_err(|e| Problem::internal("reading an external account key", &e))?;
    if !hmac_key.verify(&binding.signing_input, &binding.mac) {
        tracing::info!(kid = %record.kid, "external account binding MAC does not verify");
        return Err(Problem::unauthorized(format!(
            "externalAccountBinding MAC does not verify with the HMAC key of {}",
            record.kid
        )));
    }
    if let Some(why) = unusable(&record, now) {
        tracing::info!(kid = %record.kid, "{why}");
        return Err(Problem::unauthorized(why));
    }
    Ok(record.kid)
}

/// newAccount with a binding: verifies it, then creates the account bound
/// to the key. Returns the account and, when it was created now, the kid
/// of the key it was bound with (an account that already holds the JWK is
/// returned as it is, and no key is used).
pub async fn create_bound_account(
    state: &AcmeState,
    urls: &Urls,
    profile: &Profile,
    account_key: &PublicJwk,
    binding: &Value,
    new: &NewAccount,
) -> Result<(Account, Option<String>), Problem> {
    let now = state.clock.now();
    let kid = verify_binding(state, urls, profile, account_key, binding, now).await?;
    let id = crate::ids::resource_id();
    match state
        .store
        .create_account_with_eab(&id, new, &kid, &profile.name, now)
        .await?
    {
        BoundAccount::Created(account) => {
            tracing::info!(account = %account.id, kid = %kid, "account bound to an external account key");
            Ok((account, Some(kid)))
        }
        BoundAccount::Existing(account) => Ok((account, None)),
        BoundAccount::KeyUnavailable => {
            // Someone else changed the key between the check and the write.
            let why = state
                .store
                .eab_key(&kid)
                .await?
                .and_then(|record| unusable(&record, now))
                .unwrap_or_else(|| format!("external account key {kid} cannot bind an account"));
            tracing::info!(kid = %kid, "{why}");
            Err(Problem::unauthorized(why))
        }
    }
}

/// newOrder's check of the ordering account's binding (see the module
/// documentation): the profile's EAB requirement, a revoked key, and the
/// names limit of the key, with one subproblem per refused identifier.
pub async fn check_new_order(
    store: &Store,
    account_id: &str,
    profile: &Profile,
    identifiers: &[OrderedIdentifier],
) -> Result<(), Problem> {
    let record = store.eab_key_of_account(account_id).await?;
    if profile.eab == EabPolicy::Required
        && record.as_ref().is_none_or(|r| r.profile != profile.name)
    {
        return Err(Problem::unauthorized(format!(
            "profile {:?} requires an external account binding, and this account was not \
             created with a key of that profile; register through its directory with one",
            profile.name
        )));
    }
    let Some(record) = record else {
        return Ok(());
    };
    if record.revoked_at.is_some() {
        return Err(Problem::unauthorized(format!(
            "external account key {} that this account was bound with has been revoked",
            record.kid
        )));
    }
    let Some(patterns) = record.names else {
        return Ok(());
    };
    let limit = NamesLimit::from_stored(patterns);
    let subproblems: Vec<Subproblem> = identifiers
        .iter()
        .filter(|id| !limit.allows(id))
        .map(|id| Subproblem {
            kind: ProblemType::RejectedIdentifier,
            detail: format!(
                "{}: the external account key of this account allows only {}",
                id.ordered,
                limit.patterns().join(", ")
            ),
            identifier: id.as_ordered(),
        })
        .collect();
    let detail = match subproblems.as_slice() {
        [] => return Ok(()),
        [only] => only.detail.clone(),
        many => format!(
            "{} identifiers are outside the names the external account key of this account allows ({})",
            many.len(),
            limit.patterns().join(", ")
        ),
    };
    Err(Problem::new(ProblemType::RejectedIdentifier, detail).with_subproblems(subproblems))
}

pub mod cli {
    //! `certgate eab create | list | revoke`.

    use std::process::ExitCode;

    use anyhow::Context;
    use clap::{Args, Subcommand};

    use super::{create_key, Keyring, NamesLimit};
    use crate::acme::response::rfc3339;
    use crate::audit::{Actor, AuditEvent, AuditLog};
    use crate::clock::{Clock, SystemClock};
    use crate::config::{parse_duration, Config, EabPolicy};
    use crate::offline::{OfflineContext, StoreFlags};
    use crate::store::eab::{EabKeyRecord, RevokeOutcome};
    use crate::store::Store;

    #[derive(Debug, Args)]
    pub struct EabArgs {
        #[command(flatten)]
        pub store: StoreFlags,
        #[command(subcommand)]
        pub command: EabCommand,
    }

    #[derive(Debug, Args)]
    pub struct CreateArgs {
        /// The profile whose directory accepts the key.
        #[arg(long, value_name = "NAME")]
        pub profile: String,
        /// Names the bound account may order, comma-separated. A name
        /// allows exactly itself; a pattern with '*' is a glob as in a
        /// Vault role ('*' also spans dots): '*.nas.lab.example' allows
        /// the wildcard and every name below nas.lab.example.
        #[arg(long, value_name = "PATTERNS")]
        pub names: Option<String>,
        /// How long the key can bind an account, e.g. 30d, 12h [default: no limit].
        #[arg(long, value_name = "DURATION")]
        pub expires: Option<String>,
        /// Free text shown by `eab list`, e.g. whose device the key is for.
        #[arg(long, value_name = "TEXT")]
        pub note: Option<String>,
    }

    #[derive(Debug, Subcommand)]
    pub enum EabCommand {
        /// Make a key for a profile and print its kid and HMAC key, once.
        /// Works while the server runs.
        Create(CreateArgs),
        /// List keys (never the HMAC keys).
        List,
        /// Revoke a key: it can no longer bind an account, and an account
        /// it is bound to can no longer order certificates.
        Revoke {
            #[arg(value_name = "KID")]
            kid: String,
        },
    }

    pub async fn run(args: EabArgs) -> anyhow::Result<ExitCode> {
        let OfflineContext {
            config,
            store,
            keyring,
            audit,
        } = OfflineContext::open(args.store).await?;
        let now = SystemClock.now();
        let outcome = match args.command {
            EabCommand::Create(create_args) => {
                create(&config, &store, &keyring, &audit, create_args, now).await
            }
            EabCommand::List => list(&store, now).await,
            EabCommand::Revoke { kid } => revoke(&store, &audit, &kid, now).await,
        };
        store.close().await;
        outcome
    }

    async fn create(
        config: &Config,
        store: &Store,
        keyring: &Keyring,
        audit: &AuditLog,
        args: CreateArgs,
        now: i64,
    ) -> anyhow::Result<ExitCode> {
        let CreateArgs {
            profile,
            names,
            expires,
            note,
        } = args;
        let Some(settings) = config.profiles.iter().find(|p| p.name == profile) else {
            let known: Vec<&str> = config.profiles.iter().map(|p| p.name.as_str()).collect();
            anyhow::bail!(
                "there is no profile {profile:?}; the configured ones are {}",
                known.join(", ")
            );
        };
        let names = names
            .as_deref()
            .map(NamesLimit::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--names: {e}"))?;
        let expires_at = expires
            .as_deref()
            .map(parse_duration)
            .transpose()
            .context("--expires")?
            .map(|d| crate::clock::seconds_after(now, d));
        let created = create_key(
            store,
            keyring,
            &profile,
            names,
            expires_at,
            note.filter(|n| !n.is_empty()),
            now,
        )
        .await?;
        audit
            .record(AuditEvent::EabKeyCreated {
                kid: created.record.kid.clone(),
                profile: created.record.profile.clone(),
                names: created.record.names.clone(),
                expires: created.record.expires_at.map(rfc3339),
                note: created.record.note.clone(),
                by: Actor::Cli,
            })
            .await;
        let kid = &created.record.kid;
        let hmac = created.hmac_key.encoded();
        let directory = {
            let path = if profile == config.default_profile {
                "/acme/directory".to_owned()
            } else {
                format!("/acme/{profile}/directory")
            };
            match &config.external_url {
                Some(base) => format!("{base}{path}"),
                None => path,
            }
        };
        println!("External account key for profile {profile:?} (directory {directory}):");
        println!();
        println!("kid:      {kid}");
        println!("hmac_key: {hmac}");
        println!();
        println!("The HMAC key is shown only now; certgate keeps it encrypted. The key binds one account.");
        if let Some(names) = &created.record.names {
            println!("That account may order only: {}", names.join(", "));
        }
        if let Some(at) = created.record.expires_at {
            println!("The key must be used by {}.", rfc3339(at));
        }
        println!();
        println!("lego:    --eab --kid={kid} --hmac={hmac}");
        println!("certbot: --eab-kid={kid} --eab-hmac-key={hmac}");
        if settings.eab == EabPolicy::Off {
            eprintln!(
                "note: profile {profile:?} has eab = \"off\", so it ignores bindings; \
                 set eab = \"optional\" or \"required\" for the key to matter"
            );
        }
        Ok(ExitCode::SUCCESS)
    }

    fn state(record: &EabKeyRecord, now: i64) -> String {
        match (record.revoked_at, &record.account_id) {
            (Some(at), _) => format!("revoked:{}", rfc3339(at)),
            (None, Some(_)) => format!("bound:{}", rfc3339(record.bound_at.unwrap_or_default())),
            (None, None) if record.expired(now) => "expired".to_owned(),
            (None, None) => "unused".to_owned(),
        }
    }

    async fn list(store: &Store, now: i64) -> anyhow::Result<ExitCode> {
        let keys = store.eab_keys().await?;
        if keys.is_empty() {
            eprintln!("no external account keys");
        }
        for record in keys {
            println!(
                "kid={} profile={} state={} account={} created={} expires={} names={} note={:?}",
                record.kid,
                record.profile,
                state(&record, now),
                record.account_id.as_deref().unwrap_or("-"),
                rfc3339(record.created_at),
                record.expires_at.map_or("never".to_owned(), rfc3339),
                record
                    .names
                    .as_ref()
                    .map_or("any".to_owned(), |n| n.join(",")),
                record.note.as_deref().unwrap_or_default(),
            );
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn revoke(
        store: &Store,
        audit: &AuditLog,
        kid: &str,
        now: i64,
    ) -> anyhow::Result<ExitCode> {
        Ok(match store.revoke_eab_key(kid, now).await? {
            RevokeOutcome::Revoked => {
                tracing::info!(kid, "external account key revoked");
                audit
                    .record(AuditEvent::EabKeyRevoked {
                        kid: kid.to_owned(),
                        by: Actor::Cli,
                    })
                    .await;
                println!("revoked {kid}");
                ExitCode::SUCCESS
            }
            RevokeOutcome::AlreadyRevoked(at) => {
                println!("{kid} was already revoked at {}", rfc3339(at));
                ExitCode::SUCCESS
            }
            RevokeOutcome::Unknown => {
                eprintln!("there is no external account key {kid:?}");
                ExitCode::FAILURE
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::identifiers::{parse_dns, parse_ip};

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

    #[test]
    fn the_key_encryption_key_seals_to_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Keyring::in_data_dir(dir.path());
        assert!(matches!(keyring.load(), Err(EabError::NoKeyFile(_))));
        let kek = keyring.load_or_create().unwrap();
        let mode = std::fs::metadata(keyring.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (key_ciphertext, key_nonce) = kek.seal("k1", "default", &[7u8; 32]).unwrap();
        let mut record = EabKeyRecord {
            kid: "k1".into(),
            profile: "default".into(),
            key_ciphertext,
            key_nonce,
            names: None,
            note: None,
            created_at: 0,
            expires_at: None,
            revoked_at: None,
            account_id: None,
            bound_at: None,
        };
        // A second load reads the same file.
        assert_eq!(
            keyring.load_or_create().unwrap().open(&record).unwrap().0,
            [7u8; 32]
        );
        record.kid = "k2".into();
        assert!(matches!(kek.open(&record), Err(EabError::Decrypt { .. })));
        assert_eq!(
            format!("{:?}", HmacKey(vec![1, 2, 3])),
            "HmacKey([redacted])"
        );
    }
}
