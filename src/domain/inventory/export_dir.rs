//! `certgate certs export --dir DIR`: the current certificate of each set
//! of names — neither revoked, expired nor superseded; the latest when
//! several are — written as `<first name>.pem` (the leaf and its chain) or
//! `<first name>.der` (the leaf), each replaced atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::export::ExportFormat;
use crate::store::inventory::CertificateFilter;
use crate::store::vault_certificates::VaultFilter;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ExportDirError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the stored certificate for {name} is not PEM: {reason}")]
    Stored { name: String, reason: String },
}

/// Which certificates: `acme`, `vault` or both (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    Acme,
    Vault,
}

/// One certificate to write: its names, not-after and PEM (leaf first).
struct Current {
    names: Vec<String>,
    not_after: i64,
    chain_pem: String,
}

/// A file name for `name`: a wildcard's `*` becomes `_`.
fn file_stem(name: &str) -> String {
    name.replace(['*', '/'], "_")
}

fn render(current: &Current, format: ExportFormat) -> Result<Vec<u8>, ExportDirError> {
    let stored = |reason: String| ExportDirError::Stored {
        name: current.names.first().cloned().unwrap_or_default(),
        reason,
    };
    let blocks: Vec<pem::Pem> = pem::parse_many(&current.chain_pem)
        .map_err(|e| stored(e.to_string()))?
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .collect();
    let leaf = blocks
        .first()
        .ok_or_else(|| stored("no CERTIFICATE block".into()))?;
    Ok(match format {
        ExportFormat::Der => leaf.contents().to_vec(),
        ExportFormat::Pem => {
            let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
            blocks
                .iter()
                .map(|b| pem::encode_config(b, lf))
                .collect::<String>()
                .into_bytes()
        }
    })
}

/// Writes `bytes` to `path` through a temporary file in the same folder,
/// renamed over it: a reader sees the old file or the new one, never half.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ExportDirError> {
    let failed = |source| ExportDirError::Write {
        path: path.to_owned(),
        source,
    };
    let temporary = path.with_extension(format!(
        "{}.tmp",
        path.extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
    ));
    std::fs::write(&temporary, bytes).map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}

/// Writes the current certificate of each name set into `dir` (made when
/// missing); returns the files written, in name order.
pub async fn export_current(
    store: &Store,
    dir: &Path,
    format: ExportFormat,
    profile: Option<String>,
    source: Option<Source>,
    now: i64,
) -> Result<Vec<PathBuf>, ExportDirError> {
    let mut current: Vec<Current> = Vec::new();
    if source != Some(Source::Vault) {
        let filter = CertificateFilter {
            profile: profile.clone(),
            // In use: neither revoked nor expired, whatever its not-after.
            expiring_by: Some(i64::MAX),
            ..CertificateFilter::default()
        };
        current.extend(
            store
                .list_certificates(&filter, now)
                .await?
                .into_iter()
                .map(|c| Current {
                    names: c.names,
                    not_after: c.not_after,
                    chain_pem: c.chain_pem,
                }),
        );
    }
    if source != Some(Source::Acme) {
        let filter = VaultFilter {
            expiring_by: Some(i64::MAX),
            profile: profile.clone(),
            ..VaultFilter::default()
        };
        current.extend(
            store
                .list_vault_certificates(&filter, now)
                .await?
                .into_iter()
                .map(|c| Current {
                    names: c.names,
                    not_after: c.not_after,
                    chain_pem: c.chain_pem,
                }),
        );
    }
    // The latest of each name set.
    let mut latest: BTreeMap<String, Current> = BTreeMap::new();
    for certificate in current {
        let Some(first) = certificate.names.first() else {
            continue;
        };
        let stem = file_stem(first);
        if latest
            .get(&stem)
            .is_none_or(|kept| kept.not_after < certificate.not_after)
        {
            latest.insert(stem, certificate);
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| ExportDirError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    for (stem, certificate) in latest {
        let path = dir.join(format!("{stem}.{}", format.extension()));
        write_atomically(&path, &render(&certificate, format)?)?;
        written.push(path);
    }
    Ok(written)
}

/// What `serve` does with `[inventory] export_dir`: writes the folder now
/// and again every `interval`, for as long as it runs. A failed write is
/// logged and tried again at the next interval.
pub async fn keep_exported(
    store: Store,
    clock: std::sync::Arc<dyn crate::util::clock::Clock>,
    dir: PathBuf,
    format: ExportFormat,
    interval: std::time::Duration,
) {
    crate::util::periodic::every(interval, || {
        let (store, clock, dir) = (store.clone(), clock.clone(), dir.clone());
        async move {
            let now = clock.now();
            if let Err(error) = export_current(&store, &dir, format, None, None, now).await {
                tracing::warn!(%error, dir = %dir.display(), "keeping the export folder up to date failed");
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_make_file_names() {
        assert_eq!(file_stem("*.lab.example"), "_.lab.example");
        assert_eq!(file_stem("a.lab.example"), "a.lab.example");
    }
}
