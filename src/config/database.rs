//! Which database a `database_url` names. The store decides how to talk to
//! each; here the URL is only checked, so that a typo fails at start (and
//! in `check-config`) rather than at the first write.

/// The databases certgate can keep its data in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// One file in the data directory, for one `serve` process: the default.
    Sqlite,
    /// A server that several `serve` processes may share.
    Postgres,
}

impl DatabaseKind {
    /// The kind a URL names by its scheme (`sqlite:`, `postgres://`,
    /// `postgresql://`), or `None` for any other.
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0;
        match scheme {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" if url[scheme.len()..].starts_with("://") => {
                Some(Self::Postgres)
            }
            _ => None,
        }
    }
}

/// `url` fit for a log line or an error message: a password in it is
/// replaced by `redacted` (a PostgreSQL URL may carry one).
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{redacted, DatabaseKind};

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redacted("postgres://certgate:hunter2@db:5432/certgate"),
            "postgres://certgate:redacted@db:5432/certgate"
        );
        assert_eq!(
            redacted("postgres://certgate@db/certgate"),
            "postgres://certgate@db/certgate"
        );
        assert_eq!(
            redacted("sqlite://data/certgate.db"),
            "sqlite://data/certgate.db"
        );
    }

    #[test]
    fn the_scheme_names_the_kind() {
        for (url, kind) in [
            (
                "sqlite://certgate-data/certgate.db",
                Some(DatabaseKind::Sqlite),
            ),
            ("sqlite::memory:", Some(DatabaseKind::Sqlite)),
            (
                "postgres://certgate@db/certgate",
                Some(DatabaseKind::Postgres),
            ),
            (
                "postgresql://db:5432/certgate",
                Some(DatabaseKind::Postgres),
            ),
            ("postgres:certgate", None),
            ("mysql://db/certgate", None),
            ("certgate.db", None),
        ] {
            assert_eq!(DatabaseKind::of_url(url), kind, "{url}");
        }
    }
}
