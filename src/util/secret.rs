//! Credentials that must never reach a log line, an error message or a
//! metric: Vault tokens, AppRole secret IDs, service-account JWTs.

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret string. `Debug` prints `[redacted]`, and there is no `Display`,
/// so formatting one by mistake shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a credential comes from. A file is read again at every use, so a
/// credential rotated on disk (a Vault Agent sink, a projected Kubernetes
/// token, a Nomad workload identity) is picked up without a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Value(Secret),
    File(PathBuf),
}

#[derive(Debug, thiserror::Error)]
#[error("reading {path}: {source}")]
pub struct SecretReadError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl SecretSource {
    pub fn file(path: &Path) -> Self {
        Self::File(path.to_owned())
    }

    /// The current value; a file's content is trimmed of surrounding whitespace.
    pub fn read(&self) -> Result<Secret, SecretReadError> {
        match self {
            Self::Value(secret) => Ok(secret.clone()),
            Self::File(path) => std::fs::read_to_string(path)
                .map(|text| Secret::new(text.trim()))
                .map_err(|source| SecretReadError {
                    path: path.clone(),
                    source,
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let source = SecretSource::Value(Secret::new("hvs.very-secret"));
        assert!(!format!("{source:?}").contains("very-secret"));
    }

    #[test]
    fn a_file_is_read_at_each_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let source = SecretSource::file(&path);
        assert_eq!(source.read().unwrap().expose(), "first");
        std::fs::write(&path, "second").unwrap();
        assert_eq!(source.read().unwrap().expose(), "second");
    }
}
