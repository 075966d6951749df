//! DNS-01 (RFC 8555 §8.4): a TXT record at `_acme-challenge.<name>` holding
//! the digest of the key authorization. Any one of several values may match,
//! so that a wildcard and its base name can be validated at once.

use async_trait::async_trait;

use super::{dns01_txt_value, DnsResolver, Method, Proof, ValidationSubject};
use crate::protocol::problem::{Problem, ProblemType};

pub struct Dns01 {
    resolver: DnsResolver,
}

impl Dns01 {
    pub fn new(resolver: DnsResolver) -> Self {
        Self { resolver }
    }
}

#[async_trait]
impl Method for Dns01 {
    async fn validate(&self, subject: &ValidationSubject<'_>) -> Result<Proof, Problem> {
        let record = format!("_acme-challenge.{}", subject.identifier.value);
        let expected = dns01_txt_value(subject.key_authorization);
        let found = self
            .resolver
            .txt(&record)
            .await
            .map_err(|e| Problem::new(ProblemType::Dns, e))?;
        if found.iter().any(|v| v.trim() == expected) {
            return Ok(Proof::default());
        }
        Err(Problem::new(
            ProblemType::IncorrectResponse,
            format!(
                "TXT records at {record} via {} are {found:?}; none is the expected {expected:?}",
                self.resolver.servers()
            ),
        ))
    }
}
