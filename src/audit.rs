//! The audit log: one JSON line per event that changes who may get which
//! certificate (accounts, EAB use, orders, issuance, revocation, admin
//! actions), kept in the append-only `audit_events` table and written to
//! the configured file or stdout. Never holds a secret: events carry ids,
//! names, serials and key thumbprints, never a token, HMAC key or private key.
//!
//! Each line is `{"time": <RFC 3339, UTC>, "event": <snake_case name>, …}`,
//! and the table row holds the same text, so the two can be compared line
//! by line. The server and the offline commands (`certgate eab`,
//! `certgate accounts`) may append to one file at the same time: every
//! line goes out in a single `write` on a file opened with `O_APPEND`,
//! which the kernel keeps whole. The file stays open between lines and is
//! opened again once a rotation renamed it away.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::config::AuditLogTarget;
use crate::protocol::identifier::Identifier;
use crate::protocol::problem::Problem;
use crate::store::Store;
use crate::util::clock::rfc3339;
use crate::util::clock::{Clock, SystemClock};

/// Who asked for an action. Serialized as `{"kind": "account", "id": …}`
/// or `{"kind": "cli"}`, one shape for every actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// An ACME account, by id.
    Account(String),
    /// Whoever holds a certificate's private key (RFC 8555 §7.6).
    CertificateKey,
    /// An operator through `certgate` on the command line.
    Cli,
    /// An operator through the admin API.
    AdminApi,
}

/// The CA that signed a certificate, flattened into `certificate_issued`:
/// `"ca": "embedded"`, or `"ca": "vault"` with the mount and role Vault
/// signed at, so an operator can find the certificate on the Vault side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "ca", rename_all = "snake_case")]
pub enum SigningCa {
    Embedded,
    Vault {
        vault_mount: String,
        vault_role: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        vault_issuer_ref: Option<String>,
    },
}

/// What happened. Times are RFC 3339 strings, as in the line's `time`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditEvent {
    /// newAccount made an account; `eab_kid` names the external account
    /// key it was bound with, if any (that is the key's one use).
    AccountCreated {
        account: String,
        /// The profile whose directory the account was created through.
        profile: String,
        key_thumbprint: String,
        contact: Vec<String>,
        eab_kid: Option<String>,
    },
    AccountDeactivated {
        account: String,
        by: Actor,
    },
    /// keyChange (RFC 8555 §7.3.5).
    AccountKeyChanged {
        account: String,
        old_key_thumbprint: String,
        new_key_thumbprint: String,
    },
    OrderCreated {
        order: String,
        account: String,
        profile: String,
        identifiers: Vec<Identifier>,
        /// Serial of the certificate the order says it replaces (RFC 9773).
        replaces: Option<String>,
    },
    CertificateIssued {
        /// Lower-case hex, no separators.
        serial: String,
        names: Vec<String>,
        profile: String,
        account: String,
        order: String,
        not_after: String,
        #[serde(flatten)]
        ca: SigningCa,
    },
    /// The CA gave a final refusal, or certgate gave up on the order; the
    /// order is invalid with this problem.
    IssuanceFailed {
        order: String,
        account: String,
        profile: String,
        problem: Problem,
    },
    /// A signing request reached the CA but its answer was lost (the
    /// connection closed, a timeout), or certgate stopped while it was out:
    /// the CA may hold a certificate certgate never recorded. The order
    /// fails rather than being signed twice; this line is what an operator
    /// looks for that certificate at the CA with (the mount and role, the
    /// names, the time, and the key it would carry).
    IssuanceAnswerLost {
        order: String,
        account: String,
        profile: String,
        names: Vec<String>,
        /// When the signing request went out.
        attempted_at: String,
        /// SHA-256 of the CSR's SubjectPublicKeyInfo (DER), lower-case hex:
        /// the certificate, if it exists, carries this key.
        csr_public_key_sha256: String,
        #[serde(flatten)]
        ca: SigningCa,
    },
    CertificateRevoked {
        serial: String,
        profile: String,
        /// The account the certificate was issued to.
        account: String,
        /// RFC 5280 name of the reason, e.g. `keyCompromise`.
        reason: String,
        by: Actor,
    },
    /// `certgate eab create`: the kid and what it allows, never the HMAC key.
    EabKeyCreated {
        kid: String,
        profile: String,
        names: Option<Vec<String>>,
        expires: Option<String>,
        note: Option<String>,
        by: Actor,
    },
    EabKeyRevoked {
        kid: String,
        by: Actor,
    },
}

/// One line as written: the time first, then the event's own fields.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    #[serde(flatten)]
    event: &'a AuditEvent,
}

/// Where the lines go besides the table.
#[derive(Clone)]
enum Sink {
    File(Arc<AuditFile>),
    Stdout,
    Off,
}

/// The file and the identity (device, inode) of the file it was opened as.
type OpenFile = (std::fs::File, (u64, u64));

/// The audit file, kept open between lines. Before each line the path is
/// looked at (one `stat`, cheaper than the open and close it replaces):
/// when it no longer names the open file (a rotation renamed it away, or
/// it was deleted), the path is opened again, so a rotated log is followed
/// without a restart or a signal.
struct AuditFile {
    path: PathBuf,
    open: Mutex<Option<OpenFile>>,
}

impl AuditFile {
    /// Opens (creating) the file now, so that a path certgate cannot write
    /// is an error at start.
    fn new(path: &Path) -> std::io::Result<Self> {
        let mut file = AuditFile {
            path: path.to_owned(),
            open: Mutex::new(None),
        };
        let opened = file.reopen()?;
        file.open = Mutex::new(Some(opened));
        Ok(file)
    }

    fn reopen(&self) -> std::io::Result<OpenFile> {
        let file = open_append(&self.path)?;
        let metadata = file.metadata()?;
        Ok((file, (metadata.dev(), metadata.ino())))
    }

    /// Appends the whole line with one `write_all` on a file opened with
    /// `O_APPEND`: the kernel puts each write at the end in one piece, so
    /// the lines of processes appending at once never interleave. A write
    /// that fails closes the file, so the next line opens it anew.
    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let named = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        let file = match open.take() {
            Some(kept) if Some(kept.1) == named => open.insert(kept),
            _ => open.insert(self.reopen()?),
        };
        let written = file.0.write_all(line);
        if written.is_err() {
            *open = None;
        }
        written
    }
}

/// Where audit events go; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    store: Store,
    sink: Sink,
}

/// Opens `path` for appending, creating it readable by its owner only.
fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

impl AuditLog {
    /// Checks the target once, creating the file if missing, so that a path
    /// certgate cannot write is an error at start rather than at the first
    /// event.
    pub fn open(target: &AuditLogTarget, store: Store) -> std::io::Result<Self> {
        let sink = match target {
            AuditLogTarget::File(path) => Sink::File(Arc::new(AuditFile::new(path)?)),
            AuditLogTarget::Stdout => Sink::Stdout,
            AuditLogTarget::Off => Sink::Off,
        };
        Ok(Self { store, sink })
    }

    /// Records `event` at the wall clock's time (not the injected clock's:
    /// it says when the record was made): the table row first, then the
    /// line. A failure to
    /// record is logged at error level (with the line, so it is not lost)
    /// and never fails the request or command that caused the event: an
    /// ACME client is not refused a certificate because a log disk is full.
    pub async fn record(&self, event: AuditEvent) {
        let now = SystemClock.now();
        let (name, line) = match render(&event, now) {
            Ok(rendered) => rendered,
            Err(e) => {
                tracing::error!(error = %e, ?event, "cannot render an audit event");
                return;
            }
        };
        if let Err(e) = self.store.append_audit_event(now, &name, &line).await {
            tracing::error!(error = %e, audit = %line, "cannot store an audit event");
        }
        if let Err(e) = self.write_line(&line).await {
            tracing::error!(error = %e, audit = %line, "cannot write an audit event to its log");
        }
    }

    async fn write_line(&self, line: &str) -> std::io::Result<()> {
        let mut text = String::with_capacity(line.len() + 1);
        text.push_str(line);
        text.push('\n');
        match &self.sink {
            // Off the async workers: a stalled disk must not stall requests.
            Sink::File(file) => {
                let file = file.clone();
                tokio::task::spawn_blocking(move || {
                    file.append(text.as_bytes()).map_err(|e| {
                        std::io::Error::new(e.kind(), format!("{}: {e}", file.path.display()))
                    })
                })
                .await
                .map_err(std::io::Error::other)?
            }
            Sink::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
            Sink::Off => Ok(()),
        }
    }
}

/// The event's name and its line, without the newline.
fn render(event: &AuditEvent, now: i64) -> serde_json::Result<(String, String)> {
    let name = match serde_json::to_value(event)?.get("event") {
        Some(serde_json::Value::String(name)) => name.clone(),
        _ => unreachable!("AuditEvent is tagged with \"event\""),
    };
    let line = serde_json::to_string(&Line {
        time: rfc3339(now),
        event,
    })?;
    Ok((name, line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::on_both_backends;
    use serde_json::{json, Value};

    fn line_of(event: &AuditEvent) -> Value {
        let (name, line) = render(event, 1_700_000_000).unwrap();
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["event"], name);
        value
    }

    #[test]
    fn a_line_starts_with_time_and_event_then_the_fields() {
        let event = AuditEvent::CertificateIssued {
            serial: "0a1b".into(),
            names: vec!["nas.lab.example".into()],
            profile: "lab".into(),
            account: "acct1".into(),
            order: "ord1".into(),
            not_after: rfc3339(1_700_086_400),
            ca: SigningCa::Vault {
                vault_mount: "pki_int".into(),
                vault_role: "lab-internal".into(),
                vault_issuer_ref: None,
            },
        };
        let (name, line) = render(&event, 1_700_000_000).unwrap();
        assert_eq!(name, "certificate_issued");
        assert!(
            line.starts_with(r#"{"time":"2023-11-14T22:13:20Z","event":"certificate_issued","#),
            "{line}"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap(),
            json!({
                "time": "2023-11-14T22:13:20Z",
                "event": "certificate_issued",
                "serial": "0a1b",
                "names": ["nas.lab.example"],
                "profile": "lab",
                "account": "acct1",
                "order": "ord1",
                "not_after": "2023-11-15T22:13:20Z",
                "ca": "vault",
                "vault_mount": "pki_int",
                "vault_role": "lab-internal",
            })
        );
        let embedded = AuditEvent::CertificateIssued {
            serial: "0c".into(),
            names: vec![],
            profile: "local".into(),
            account: "a".into(),
            order: "o".into(),
            not_after: rfc3339(0),
            ca: SigningCa::Embedded,
        };
        let value = line_of(&embedded);
        assert_eq!(value["ca"], "embedded");
        assert!(value.get("vault_role").is_none(), "{value}");
    }

    #[test]
    fn a_lost_answer_names_where_to_look_for_the_certificate() {
        let value = line_of(&AuditEvent::IssuanceAnswerLost {
            order: "ord1".into(),
            account: "acct1".into(),
            profile: "lab".into(),
            names: vec!["web.lab.example".into()],
            attempted_at: rfc3339(1_700_000_000),
            csr_public_key_sha256: "ab".repeat(32),
            ca: SigningCa::Vault {
                vault_mount: "pki_int".into(),
                vault_role: "lab-internal".into(),
                vault_issuer_ref: None,
            },
        });
        assert_eq!(
            value,
            json!({
                "time": "2023-11-14T22:13:20Z",
                "event": "issuance_answer_lost",
                "order": "ord1",
                "account": "acct1",
                "profile": "lab",
                "names": ["web.lab.example"],
                "attempted_at": "2023-11-14T22:13:20Z",
                "csr_public_key_sha256": "ab".repeat(32),
                "ca": "vault",
                "vault_mount": "pki_int",
                "vault_role": "lab-internal",
            })
        );
    }

    #[test]
    fn every_actor_has_the_same_shape() {
        let by = |actor: Actor| {
            line_of(&AuditEvent::AccountDeactivated {
                account: "a".into(),
                by: actor,
            })["by"]
                .clone()
        };
        assert_eq!(
            by(Actor::Account("x".into())),
            json!({"kind": "account", "id": "x"})
        );
        assert_eq!(by(Actor::Cli), json!({"kind": "cli"}));
        assert_eq!(by(Actor::AdminApi), json!({"kind": "admin_api"}));
        assert_eq!(
            by(Actor::CertificateKey),
            json!({"kind": "certificate_key"})
        );
    }

    on_both_backends! {
        async fn record_appends_one_line_to_the_file_and_one_row_to_the_table() {
            let dir = tempfile::tempdir().unwrap();
            let (_database, store) = crate::store::testing::temporary().await;
            let path = dir.path().join("audit.log");
            let log = AuditLog::open(&AuditLogTarget::File(path.clone()), store.clone()).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions();
            assert_eq!(
                std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
                0o600
            );
            for kid in ["k1", "k2"] {
                log.record(AuditEvent::EabKeyRevoked {
                    kid: kid.into(),
                    by: Actor::Cli,
                })
                .await;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 2, "{text}");
            assert_eq!(store.audit_records().await.unwrap(), lines);
            assert_eq!(line_of_text(lines[1])["kid"], "k2");
        }
    }

    #[test]
    fn a_rotated_or_deleted_file_is_opened_again_at_the_next_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let file = AuditFile::new(&path).unwrap();
        file.append(b"one\n").unwrap();
        file.append(b"two\n").unwrap();
        // logrotate without copytruncate: rename, and let the writer recreate.
        std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
        file.append(b"three\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("audit.log.1")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        std::fs::remove_file(&path).unwrap();
        file.append(b"four\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "four\n");
        // copytruncate: the same file, emptied; appends go on at its end.
        std::fs::File::create(&path).unwrap();
        file.append(b"five\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "five\n");
    }

    fn line_of_text(line: &str) -> Value {
        serde_json::from_str(line).unwrap()
    }
}
