//! A stored certificate written out as PEM (the leaf, or the leaf and its
//! chain) or DER (the leaf), for `certs show` and the admin API's
//! downloads.

use crate::store::Certificate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Pem,
    Der,
}

impl ExportFormat {
    /// The media type of a download: RFC 8555 §9.1 for PEM (one or more
    /// certificates), RFC 2585 for a single DER certificate.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Pem => "application/pem-certificate-chain",
            Self::Der => "application/pkix-cert",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Pem => "pem",
            Self::Der => "der",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// DER encodes exactly one certificate; concatenated DER would be a
    /// format no tool reads back.
    #[error("DER holds a single certificate, so a chain has no DER form: export the chain as PEM")]
    DerChain,
    #[error("the stored chain of certificate {serial} is not PEM: {reason}")]
    Stored { serial: String, reason: String },
}

/// `certificate` in `format`: the leaf alone, or with `chain` the leaf and
/// the certificates after it as certgate serves them to ACME clients.
pub fn export(
    certificate: &Certificate,
    format: ExportFormat,
    chain: bool,
) -> Result<Vec<u8>, ExportError> {
    if chain && format == ExportFormat::Der {
        return Err(ExportError::DerChain);
    }
    let stored = |reason: String| ExportError::Stored {
        serial: certificate.serial.clone(),
        reason,
    };
    let blocks: Vec<pem::Pem> = pem::parse_many(&certificate.chain_pem)
        .map_err(|e| stored(e.to_string()))?
        .into_iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .collect();
    let Some(leaf) = blocks.first() else {
        return Err(stored("no CERTIFICATE block".into()));
    };
    let wanted = if chain { &blocks[..] } else { &blocks[..1] };
    Ok(match format {
        ExportFormat::Der => leaf.contents().to_vec(),
        ExportFormat::Pem => {
            let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
            wanted
                .iter()
                .map(|block| pem::encode_config(block, lf))
                .collect::<String>()
                .into_bytes()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(chain_pem: String) -> Certificate {
        Certificate {
            id: "c".into(),
            order_id: "o".into(),
            account_id: "a".into(),
            profile: "default".into(),
            serial: "01".into(),
            names: vec!["a.example".into()],
            chain_pem,
            not_before: 0,
            not_after: 1,
            revoked_at: None,
            revocation_reason: None,
            created_at: 0,
            superseded_by: None,
        }
    }

    #[test]
    fn pem_is_the_leaf_or_the_whole_chain_and_der_the_leaf_alone() {
        let chain = format!(
            "{}{}",
            pem::encode(&pem::Pem::new("CERTIFICATE", vec![1, 2, 3])),
            pem::encode(&pem::Pem::new("CERTIFICATE", vec![4, 5, 6]))
        );
        let certificate = stored(chain);
        let leaf = export(&certificate, ExportFormat::Pem, false).unwrap();
        assert_eq!(pem::parse_many(&leaf).unwrap().len(), 1);
        let full = export(&certificate, ExportFormat::Pem, true).unwrap();
        let blocks = pem::parse_many(&full).unwrap();
        assert_eq!(
            blocks.iter().map(|b| b.contents()).collect::<Vec<_>>(),
            [&[1, 2, 3][..], &[4, 5, 6][..]]
        );
        assert!(!String::from_utf8(full).unwrap().contains('\r'));
        assert_eq!(
            export(&certificate, ExportFormat::Der, false).unwrap(),
            [1, 2, 3]
        );
        assert!(matches!(
            export(&certificate, ExportFormat::Der, true),
            Err(ExportError::DerChain)
        ));
    }

    #[test]
    fn a_chain_without_a_certificate_is_an_error_not_an_empty_file() {
        assert!(matches!(
            export(&stored(String::new()), ExportFormat::Pem, false),
            Err(ExportError::Stored { .. })
        ));
    }
}
