//! The `issue-value` syntax of RFC 8659 §4.2, shared by CAA `issue`
//! properties and the dns-persist-01 validation record: an optional issuer
//! domain name, then `;`-separated `tag=value` parameters. A pure function
//! over text, so that it can be fuzzed on its own.
//!
//! ```text
//! issue-value = *WSP [issuer-domain-name *WSP] [";" *WSP [parameters *WSP]]
//! parameters  = (parameter *WSP ";" *WSP parameters) / parameter
//! parameter   = tag *WSP "=" *WSP value
//! tag         = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
//! value       = *(%x21-3A / %x3C-7E)
//! ```

/// One parsed issue-value. Tags keep the case they were written in; two
/// tags equal but for case are duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueValue {
    /// Lower-cased; `None` when the value names no issuer (`";"`).
    pub issuer_domain_name: Option<String>,
    pub parameters: Vec<(String, String)>,
}

impl IssueValue {
    /// The value of parameter `tag` (compared without case).
    pub fn parameter(&self, tag: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(tag))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a text is not an issue-value; each message names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueValueError {
    #[error("issuer domain name {0:?} is not a domain name")]
    IssuerDomainName(String),
    #[error("an empty parameter (two ';' in a row, or a ';' at the end)")]
    EmptyParameter,
    #[error("parameter {0:?} is not tag=value")]
    NotTagValue(String),
    #[error("parameter tag {0:?} is not letters, digits and inner '-'")]
    Tag(String),
    #[error("the value of {tag:?} has a character outside %x21-3A / %x3C-7E: {value:?}")]
    Value { tag: String, value: String },
    #[error("parameter {0:?} appears more than once")]
    Duplicate(String),
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `(ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))`: a label, and a tag.
fn is_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

fn is_value_char(c: char) -> bool {
    matches!(c, '\x21'..='\x3a' | '\x3c'..='\x7e')
}

/// Parses `text` strictly: anything the grammar does not allow, and a
/// parameter given twice, is an error rather than silently dropped.
pub fn parse(text: &str) -> Result<IssueValue, IssueValueError> {
    let mut sections = text.split(';');
    let issuer = sections.next().unwrap_or_default().trim_matches(is_wsp);
    let issuer_domain_name = if issuer.is_empty() {
        None
    } else if issuer.len() <= 253 && issuer.split('.').all(is_label) {
        Some(issuer.to_ascii_lowercase())
    } else {
        return Err(IssueValueError::IssuerDomainName(issuer.to_owned()));
    };
    let rest: Vec<&str> = sections.map(|s| s.trim_matches(is_wsp)).collect();
    // `"ca.example;"` is allowed (the parameters after ';' are optional);
    // an empty one between or after parameters is not.
    let rest: &[&str] = if rest == [""] { &[] } else { &rest };
    let mut parameters: Vec<(String, String)> = Vec::with_capacity(rest.len());
    for parameter in rest {
        if parameter.is_empty() {
            return Err(IssueValueError::EmptyParameter);
        }
        let (tag, value) = parameter
            .split_once('=')
            .ok_or_else(|| IssueValueError::NotTagValue((*parameter).to_owned()))?;
        let (tag, value) = (tag.trim_matches(is_wsp), value.trim_matches(is_wsp));
        if !is_label(tag) {
            return Err(IssueValueError::Tag(tag.to_owned()));
        }
        if !value.chars().all(is_value_char) {
            return Err(IssueValueError::Value {
                tag: tag.to_owned(),
                value: value.to_owned(),
            });
        }
        if parameters.iter().any(|(t, _)| t.eq_ignore_ascii_case(tag)) {
            return Err(IssueValueError::Duplicate(tag.to_owned()));
        }
        parameters.push((tag.to_owned(), value.to_owned()));
    }
    Ok(IssueValue {
        issuer_domain_name,
        parameters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rfc_examples_and_whitespace() {
        let value = parse("ca.example; accounturi=https://ca.example/acct/1").unwrap();
        assert_eq!(value.issuer_domain_name.as_deref(), Some("ca.example"));
        assert_eq!(
            value.parameter("ACCOUNTURI"),
            Some("https://ca.example/acct/1")
        );
        let spaced = parse(" \tCA.Example\t;  a = 1 ;b=2 ").unwrap();
        assert_eq!(spaced.issuer_domain_name.as_deref(), Some("ca.example"));
        assert_eq!(
            spaced.parameters,
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert_eq!(parse(";").unwrap().issuer_domain_name, None);
        assert!(parse("ca.example;").unwrap().parameters.is_empty());
        assert!(parse("").unwrap().issuer_domain_name.is_none());
    }

    #[test]
    fn refuses_malformed_and_duplicate_parameters_naming_them() {
        for (text, expected) in [
            (
                "ca..example",
                IssueValueError::IssuerDomainName("ca..example".into()),
            ),
            (
                "-ca.example",
                IssueValueError::IssuerDomainName("-ca.example".into()),
            ),
            (
                "ca example",
                IssueValueError::IssuerDomainName("ca example".into()),
            ),
            ("ca.example; a=1;", IssueValueError::EmptyParameter),
            ("ca.example;; a=1", IssueValueError::EmptyParameter),
            (
                "ca.example; policy",
                IssueValueError::NotTagValue("policy".into()),
            ),
            ("ca.example; -x=1", IssueValueError::Tag("-x".into())),
            ("ca.example; a_b=1", IssueValueError::Tag("a_b".into())),
            (
                "ca.example; a=b c",
                IssueValueError::Value {
                    tag: "a".into(),
                    value: "b c".into(),
                },
            ),
            (
                "ca.example; a=é",
                IssueValueError::Value {
                    tag: "a".into(),
                    value: "é".into(),
                },
            ),
            (
                "ca.example; policy=wildcard; Policy=wildcard",
                IssueValueError::Duplicate("Policy".into()),
            ),
        ] {
            assert_eq!(parse(text), Err(expected.clone()), "{text}");
            assert!(!expected.to_string().is_empty());
        }
    }
}
