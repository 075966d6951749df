//! Account contacts (RFC 8555 §7.3): what newAccount and an account
//! update accept.

use super::problem::{Problem, ProblemType};

/// Most contact URLs one account may list.
const MAX_CONTACTS: usize = 10;

/// RFC 8555 §7.3: only `mailto:` contacts, one plain address each.
pub fn check_contacts(contacts: &[String]) -> Result<(), Problem> {
    if contacts.len() > MAX_CONTACTS {
        return Err(Problem::new(
            ProblemType::InvalidContact,
            format!("at most {MAX_CONTACTS} contacts are accepted"),
        ));
    }
    for contact in contacts {
        let Some(address) = contact.strip_prefix("mailto:") else {
            return Err(Problem::new(
                ProblemType::UnsupportedContact,
                format!("contact {contact:?} is not a mailto: URL"),
            ));
        };
        let plausible = matches!(address.split_once('@'), Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@'))
            && address.len() <= 254
            && !address.contains(['?', ',', ' ', '<', '>']);
        if !plausible {
            return Err(Problem::new(
                ProblemType::InvalidContact,
                format!("contact {contact:?} is not a single e-mail address"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_must_be_single_mailto_addresses() {
        assert!(check_contacts(&["mailto:ops@lab.example".into()]).is_ok());
        let unsupported = check_contacts(&["tel:+1555".into()]).unwrap_err();
        assert_eq!(unsupported.kind, ProblemType::UnsupportedContact);
        for bad in [
            "mailto:",
            "mailto:a@b",
            "mailto:a@b.test?subject=x",
            "mailto:a@b.test,c@d.test",
        ] {
            let p = check_contacts(&[bad.into()]).unwrap_err();
            assert_eq!(p.kind, ProblemType::InvalidContact, "{bad}");
        }
    }
}
