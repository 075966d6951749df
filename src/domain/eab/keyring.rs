//! The HMAC keys of external account binding at rest: sealed with a
//! key-encryption key kept in `eab_key_file` (by default
//! `<data-dir>/eab.key`), opened only to verify. Replicas share one file,
//! mounted read-only; it must pass [`crate::util::private_key::check`].

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use crate::store::eab::EabKeyRecord;

use super::{io_error, random_bytes, EabError, AAD_CONTEXT, KEY_BYTES};

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
    /// The key-encryption key in `path` (`eab_key_file`).
    pub fn at(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
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
        crate::util::private_key::check(&self.path)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| EabError::BadKeyFile {
                path: self.path.clone(),
                reason: "it is not base64url".into(),
            })?;
        Kek::new(&bytes, &self.path)
    }

    /// Checks the key file, if there is one, as a use would load it: a
    /// start refuses a key of the wrong size or open to others at once,
    /// instead of failing every binding later. None is fine: the first
    /// `eab create` makes it.
    pub fn check(&self) -> Result<(), EabError> {
        match self.load() {
            Ok(_) | Err(EabError::NoKeyFile(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Loads the key-encryption key, making it first if there is none. Two
    /// processes doing so at once end with one key: the file appears whole
    /// (a hard link to a finished temporary file) or not at all, and
    /// `link(2)`, like `O_CREAT | O_EXCL`, never replaces a file, so the
    /// first link wins and the others load what it linked.
    pub(super) fn load_or_create(&self) -> Result<Kek, EabError> {
        match self.load() {
            Err(EabError::NoKeyFile(_)) => {}
            other => return other,
        }
        let bytes = random_bytes::<KEY_BYTES>()?;
        let mut text = URL_SAFE_NO_PAD.encode(bytes);
        text.push('\n');
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        let temporary = self.path.with_file_name(format!(
            ".{name}.{}",
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Barrier};

    use super::*;

    /// A row holding `sealed` (ciphertext, nonce) for `kid` of `default`.
    fn record(kid: &str, (key_ciphertext, key_nonce): (Vec<u8>, Vec<u8>)) -> EabKeyRecord {
        EabKeyRecord {
            kid: kid.into(),
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
        }
    }

    #[test]
    fn the_key_encryption_key_seals_to_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Keyring::at(&dir.path().join("eab.key"));
        assert!(matches!(keyring.load(), Err(EabError::NoKeyFile(_))));
        let kek = keyring.load_or_create().unwrap();
        let mode = std::fs::metadata(keyring.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut record = record("k1", kek.seal("k1", "default", &[7u8; 32]).unwrap());
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

    /// `eab create` run on several machines at once against one shared
    /// file: the first link wins, and every process seals with its key.
    #[test]
    fn racing_creators_end_with_one_key() {
        const RACERS: usize = 8;
        let dir = tempfile::tempdir().unwrap();
        let keyring = Keyring::at(&dir.path().join("eab.key"));
        let barrier = Arc::new(Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|n| {
                let (keyring, barrier) = (keyring.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let kek = keyring.load_or_create().unwrap();
                    kek.seal(&format!("k{n}"), "default", &[n as u8; 32])
                        .unwrap()
                })
            })
            .collect();
        let sealed: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let kek = keyring.load().unwrap();
        for (n, sealed) in sealed.into_iter().enumerate() {
            let record = record(&format!("k{n}"), sealed);
            assert_eq!(kek.open(&record).unwrap().0, [n as u8; 32]);
        }
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "temporary files left: {files:?}");
    }

    #[test]
    fn a_key_file_others_may_read_is_refused_and_none_is_fine_until_used() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Keyring::at(&dir.path().join("eab.key"));
        keyring.check().unwrap();
        keyring.load_or_create().unwrap();
        keyring.check().unwrap();
        std::fs::set_permissions(keyring.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(keyring.check(), Err(EabError::PrivateKey(_))));
        assert!(matches!(keyring.load(), Err(EabError::PrivateKey(_))));
    }
}
