//! The HMAC keys of external account binding at rest: sealed with a
//! key-encryption key kept in `<data-dir>/eab.key`, opened only to verify.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use crate::store::eab::EabKeyRecord;

use super::{io_error, random_bytes, EabError, AAD_CONTEXT, KEY_BYTES, KEY_FILE};

/// An HMAC key in clear: never printed by `Debug`, and zeroed when dropped.
pub struct HmacKey(pub(super) Vec<u8>);

impl HmacKey {
    /// base64url without padding, as lego's `--hmac` and certbot's
    /// `--eab-hmac-key` take it.
    pub fn encoded(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }

    pub(super) fn verify(&self, signing_input: &[u8], mac: &[u8]) -> bool {
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
pub(super) struct Kek {
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
    pub(super) fn seal(
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

    pub(super) fn open(&self, record: &EabKeyRecord) -> Result<HmacKey, EabError> {
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

    pub(super) fn load(&self) -> Result<Kek, EabError> {
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
    pub(super) fn load_or_create(&self) -> Result<Kek, EabError> {
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
