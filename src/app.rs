//! Wiring: data directory and its lock, embedded CA (`ca_dir`), database,
//! validators, the listeners, and the background work a previous run (or,
//! with replicas, another process) left unfinished.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::audit::AuditLog;
use crate::config::database::DatabaseKind;
use crate::config::{Config, ProfileIssuer};
use crate::domain::ca_health::{self, CaHealth};
use crate::domain::orders::Orders;
use crate::domain::profiles::{Profile, Profiles};
use crate::domain::readiness::ReadinessProbe;
use crate::domain::validation_slots::ValidationSlots;
use crate::domain::work_leases::WorkLeases;
use crate::domain::workers::Workers;
use crate::issuer::local::{CaError, EmbeddedCa, LocalIssuer};
use crate::issuer::vault::{VaultIssuer, VaultRole};
use crate::issuer::Issuer;
use crate::metrics::Metrics;
use crate::store::{Migrations, Store, StoreError};
use crate::util::clock::{Clock, SystemClock};
use crate::util::serve_lock::{ServeLock, ServeLockError};
use crate::validate::{DnsResolver, ValidationPorts, Validator};
use crate::vault::{Vault, VaultSetupError};
use crate::web::connections;
use crate::web::nonce::{NonceStore, Nonces, SharedNonces};
use crate::web::ops::status_page::CertificateTable;
use crate::web::{AcmeState, Lifetimes};

pub mod banner;

/// Lifetime of certgate's own HTTPS certificate, made anew at every start.
const SERVER_CERT_LIFETIME: Duration = Duration::from_secs(397 * 86_400);
/// How long open requests may take to finish when certgate is asked to stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// File descriptors one running validation may hold at once: its HTTP-01 or
/// TLS-ALPN-01 connection and a DNS socket.
const FILES_PER_VALIDATION: u64 = 2;
/// File descriptors for everything else: the listening sockets, the log
/// and audit files, the CA's files, Vault connections, the DNS resolver.
const OTHER_FILES: u64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    // The cause is in the message, not a `source`: anyhow would print it
    // again as its own cause line.
    #[error("data directory {path}: {cause}")]
    DataDir {
        path: std::path::PathBuf,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] ServeLockError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Eab(#[from] crate::domain::eab::EabError),
    #[error("opening the database: {0}")]
    Store(#[from] StoreError),
    #[error("DNS resolver: {0}")]
    Resolver(#[from] hickory_resolver::ResolveError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error(transparent)]
    Vault(#[from] VaultSetupError),
    #[error("audit log {target:?}: {cause}")]
    AuditLog {
        target: crate::config::AuditLogTarget,
        cause: std::io::Error,
    },
    #[error("listening on {addr}: {cause}{hint}", hint = banner::bind_hint(.addr, .cause))]
    Listen {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error(transparent)]
    AdminToken(#[from] crate::web::admin::TokenFileError),
}

/// A running certgate.
pub struct Server {
    local_addr: SocketAddr,
    handle: axum_server::Handle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Work that lives as long as the server (keeping the Vault token fresh).
    companions: Vec<tokio::task::JoinHandle<()>>,
    state: AcmeState,
    /// The Vault inventory sync, when there are Vault mounts to list.
    inventory_sync: Option<Arc<crate::domain::inventory::sync::InventorySync>>,
    /// Held until the server is dropped, which is after [`Server::wait`]
    /// has closed the database. SQLite only: replicas sharing a PostgreSQL
    /// database are expected.
    _lock: Option<ServeLock>,
}

impl Server {
    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared state, for tests and tools that look inside.
    pub fn state(&self) -> &AcmeState {
        &self.state
    }

    /// The Vault inventory sync, to run one now (tests, tools).
    pub fn inventory_sync(&self) -> Option<&Arc<crate::domain::inventory::sync::InventorySync>> {
        self.inventory_sync.as_ref()
    }

    /// Waits until the listener stops (after [`Server::shutdown`] or an error).
    pub async fn wait(self) -> std::io::Result<()> {
        let result = self
            .task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        for companion in &self.companions {
            companion.abort();
        }
        if !self.state.workers.signing.close(DRAIN_TIMEOUT).await {
            tracing::warn!("stopped while a signing request was still out; its order will fail at the next start");
        }
        self.state.store.close().await;
        result
    }

    /// Stops accepting connections, lets open requests finish, closes the database.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.handle.graceful_shutdown(Some(DRAIN_TIMEOUT));
        self.wait().await
    }

    /// A handle that asks the server to stop gracefully.
    pub fn shutdown_handle(&self) -> axum_server::Handle {
        self.handle.clone()
    }
}

/// A listening socket on `addr`, ready for tokio, and the address it got
/// (the port chosen when `addr` asks for port 0).
fn bind(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), ServerError> {
    let listen_error = |cause| ServerError::Listen { addr, cause };
    let listener = std::net::TcpListener::bind(addr).map_err(listen_error)?;
    listener.set_nonblocking(true).map_err(listen_error)?;
    let local_addr = listener.local_addr().map_err(listen_error)?;
    Ok((listener, local_addr))
}

fn tls_config(ca: &EmbeddedCa, config: &Config) -> Result<RustlsConfig, ServerError> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    names.extend(config.tls_names.iter().cloned());
    let tls = |e: &dyn std::fmt::Display| ServerError::Tls(e.to_string());
    let (chain_pem, key_pem) = ca
        .server_identity(&names, SERVER_CERT_LIFETIME)
        .map_err(|e| tls(&e))?;
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls(&e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| tls(&e))?;
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls(&e))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| tls(&e))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(server)))
}

/// What a test may put in place of the real thing when it starts certgate;
/// the default is what `certgate serve` runs. Only the composition root
/// knows about these: every component just receives a clock and issuers.
#[derive(Clone, Default)]
pub struct Substitutes {
    /// The clock every handler and background task reads (a fixed or
    /// settable one, to test expiry without waiting).
    pub clock: Option<Arc<dyn Clock>>,
    /// The issuer of every profile, instead of the embedded CA or Vault.
    pub issuer: Option<Arc<dyn Issuer>>,
}

/// The configured profiles, each with its issuer.
fn build_profiles(
    config: &Config,
    ca: &Arc<EmbeddedCa>,
    vault: Option<&Arc<Vault>>,
    substitute: Option<&Arc<dyn Issuer>>,
) -> Profiles {
    let local: Arc<dyn Issuer> = Arc::new(
        LocalIssuer::new(ca.clone(), config.cert_lifetime)
            .with_external_url(config.external_url.as_deref()),
    );
    let profiles = config
        .profiles
        .iter()
        .map(|settings| {
            let issuer = match (&settings.issuer, vault) {
                (
                    ProfileIssuer::Vault {
                        mount,
                        role,
                        issuer_ref,
                    },
                    Some(vault),
                ) => Arc::new(VaultIssuer::new(
                    vault.clone(),
                    VaultRole {
                        mount: mount.clone(),
                        role: role.clone(),
                        issuer_ref: issuer_ref.clone(),
                    },
                )) as Arc<dyn Issuer>,
                (ProfileIssuer::Vault { .. }, None) => {
                    unreachable!("Config::load requires [vault] for a vault profile")
                }
                (ProfileIssuer::Local, _) => local.clone(),
            };
            let issuer = substitute.cloned().unwrap_or(issuer);
            Profile {
                name: settings.name.clone(),
                issuer,
                ttl: settings.ttl,
                validation: settings.validation.clone(),
                description: settings.description.clone(),
                eab: settings.eab,
                renewal_window_start: settings.renewal_window_start,
            }
        })
        .collect();
    Profiles::new(&config.default_profile, profiles)
}

/// Builds the handler state from the configuration.
async fn build_state(
    config: &Config,
    ca: Arc<EmbeddedCa>,
    vault: Option<&Arc<Vault>>,
    metrics: Arc<Metrics>,
    substitutes: Substitutes,
) -> Result<AcmeState, ServerError> {
    let migrations = if config.migrate {
        Migrations::Apply
    } else {
        Migrations::Require
    };
    let store = Store::open_with(&config.database_url, migrations).await?;
    let audit = AuditLog::open(&config.audit_log, store.clone()).map_err(|cause| {
        ServerError::AuditLog {
            target: config.audit_log.clone(),
            cause,
        }
    })?;
    let resolver = DnsResolver::new(&config.resolvers)?;
    let profiles = Arc::new(build_profiles(
        config,
        &ca,
        vault,
        substitutes.issuer.as_ref(),
    ));
    let clock = substitutes.clock.unwrap_or_else(|| Arc::new(SystemClock));
    let readiness = Arc::new(ReadinessProbe::new(
        store.clone(),
        vault.cloned(),
        profiles.clone(),
        clock.clone(),
    ));
    let lifetimes = Lifetimes {
        valid_authorization: config.authorization_reuse,
        ..Lifetimes::default()
    };
    let workers = Arc::new(Workers {
        store: store.clone(),
        profiles: profiles.clone(),
        validation_slots: Arc::new(ValidationSlots::new(config.validation_limits)),
        validator: Arc::new(Validator::new(
            resolver,
            ValidationPorts {
                http01: config.http01_port,
                tls_alpn01: config.tls_alpn01_port,
            },
            config.external_url.clone(),
        )),
        clock: clock.clone(),
        metrics: metrics.clone(),
        audit: audit.clone(),
        valid_authorization: lifetimes.valid_authorization,
        signing: Arc::default(),
        leases: Arc::new(WorkLeases::new(
            store.clone(),
            clock.clone(),
            config.work_lease,
        )),
    });
    let orders = Arc::new(Orders {
        store: store.clone(),
        profiles: profiles.clone(),
        rate_limits: config.rate_limits,
        pending_lifetime: lifetimes.pending,
        clock: clock.clone(),
        audit: audit.clone(),
    });
    let nonces = match DatabaseKind::of_url(&config.database_url) {
        Some(DatabaseKind::Postgres) => Nonces::Shared(SharedNonces::new(
            store.clone(),
            clock.clone(),
            NonceStore::DEFAULT_LIFETIME,
        )),
        _ => Nonces::InMemory(NonceStore::new(
            NonceStore::DEFAULT_LIFETIME,
            NonceStore::DEFAULT_CAPACITY,
        )),
    };
    Ok(AcmeState {
        store,
        orders,
        nonces: Arc::new(nonces),
        root_pem: ca.root_pem().into(),
        ca_health: Arc::new(CaHealth::new(profiles.clone(), clock.clone())),
        profiles,
        workers,
        clock,
        lifetimes,
        rate_limits: config.rate_limits,
        external_url: config.external_url.clone(),
        eab: crate::domain::eab::Keyring::at(&config.eab_key_file),
        metrics,
        audit,
        vault: vault.cloned(),
        readiness,
    })
}

/// Starts the background work: when this process is the database's only
/// server (`sole_server`: it holds the SQLite data directory's lock), the
/// validations and issuances the previous run left `processing`, at once;
/// on every backend, the sweep for work whose lease ran out (a replica's
/// that died); with shared nonces, their purge. Called only once every
/// listener is bound, so that a start which fails (a taken port) never
/// marks, fails or signs an order.
async fn start_background_work(
    state: &AcmeState,
    sole_server: bool,
    companions: &mut Vec<tokio::task::JoinHandle<()>>,
) {
    if sole_server {
        if let Err(error) = state.workers.take_over_unfinished().await {
            tracing::warn!(%error, "resuming the previous run's work failed; it resumes once its leases run out");
        }
    }
    companions.push(tokio::spawn(state.workers.clone().keep_sweeping()));
    if let Nonces::Shared(nonces) = state.nonces.as_ref() {
        companions.push(tokio::spawn(nonces.clone().keep_purging()));
    }
}

/// File descriptors certgate may hold at once with these settings: each
/// listener's connection cap, outbound validations, the database, the rest.
pub fn open_files_needed(config: &Config) -> u64 {
    let listeners =
        1 + u64::from(config.admin.is_some()) + u64::from(config.metrics_listen.is_some());
    let connections = listeners * config.connections.max_connections as u64;
    connections + validation_files(config) + Store::OPEN_FILES + OTHER_FILES
}

/// Files the validations running at once may hold (`validation_concurrency`).
fn validation_files(config: &Config) -> u64 {
    config.validation_limits.concurrent as u64 * FILES_PER_VALIDATION
}

/// Raises the open-file limit toward its hard limit, and warns once when it
/// is still below what the listeners' connection caps, validations and the
/// database may hold at once: past it, every `accept` and every validation
/// fails with `Too many open files`.
fn check_open_file_limit(config: &Config) {
    let needed = open_files_needed(config);
    let validations = validation_files(config);
    let connections = needed - validations - Store::OPEN_FILES - OTHER_FILES;
    match crate::util::open_files::raise_toward_hard_limit(needed) {
        Ok(limit) if limit.soft < needed => tracing::warn!(
            soft_limit = limit.soft,
            hard_limit = limit.hard,
            needed,
            connections,
            validations,
            database = Store::OPEN_FILES,
            other = OTHER_FILES,
            "the open-file limit is below what the settings need: raise it (LimitNOFILE=, ulimit -n) or lower max-connections"
        ),
        Ok(limit) if limit.soft > limit.was => tracing::info!(
            from = limit.was,
            to = limit.soft,
            needed,
            "raised the open-file limit"
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "reading the open-file limit"),
    }
}

/// Runs a listener beside the main one, for as long as the server lives;
/// its failure is logged as `what` stopping.
fn serve_beside(
    what: &'static str,
    serving: impl std::future::Future<Output = std::io::Result<()>> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = serving.await {
            tracing::error!(%error, "{what} stopped");
        }
    })
}

/// Starts certgate as configured and returns once it listens.
///
/// Everything that can fail comes before anything that acts: the data dir
/// lock first (a second server on the same data dir is refused before it
/// reads the CA or opens the database), then setup and every listener, and
/// only then the background work (token renewal, resumed issuances). A
/// failed start therefore leaves no task running and no order touched.
pub async fn start(config: Config) -> Result<Server, ServerError> {
    start_with(config, Substitutes::default()).await
}

/// [`start`] with a clock or an issuer of the caller's in place of the real
/// ones (see [`Substitutes`]).
pub async fn start_with(config: Config, substitutes: Substitutes) -> Result<Server, ServerError> {
    crate::util::data_dir::create(&config.data_dir).map_err(|cause| ServerError::DataDir {
        path: config.data_dir.clone(),
        cause,
    })?;
    let lock = match DatabaseKind::of_url(&config.database_url) {
        Some(DatabaseKind::Postgres) => None,
        _ => Some(ServeLock::acquire(&config.data_dir)?),
    };
    check_open_file_limit(&config);
    let ca = Arc::new(EmbeddedCa::load_or_create(&config.ca_dir)?);
    crate::domain::eab::Keyring::at(&config.eab_key_file).check()?;
    let metrics = Arc::new(Metrics::default());
    let vault = config
        .vault
        .clone()
        .map(|settings| Vault::new(settings, metrics.clone()))
        .transpose()?
        .map(Arc::new);
    let state = build_state(&config, ca.clone(), vault.as_ref(), metrics, substitutes).await?;
    let tls = tls_config(&ca, &config)?;

    let (listener, local_addr) = bind(config.listen)?;
    let handle = axum_server::Handle::new();
    // Read and bound before either listener serves, so a bad token file
    // or a taken port stops the start before any request is answered.
    let admin = match &config.admin {
        Some(settings) => Some((
            crate::web::admin::AdminToken::load(&settings.token_file)?,
            bind(settings.listen)?,
        )),
        None => None,
    };
    let metrics_listener = config.metrics_listen.map(bind).transpose()?;

    // Every listener is bound: from here on nothing fails, so work may start.
    let inventory_sync = vault
        .clone()
        .filter(|_| !config.inventory.vault_mounts.is_empty())
        .map(|vault| {
            crate::domain::inventory::sync::InventorySync::new(
                &config,
                vault,
                state.store.clone(),
                state.clock.clone(),
            )
        });
    let mut companions: Vec<_> = vault
        .into_iter()
        .map(|vault| tokio::spawn(async move { vault.keep_token_fresh().await }))
        .collect();
    let limits = config.connections;
    let table = if config.status_page_certificates {
        CertificateTable::Shown
    } else {
        CertificateTable::Hidden
    };
    // With the client's address, which newAccount's per-address limit keys on.
    let service = crate::web::router(state.clone(), table)
        .into_make_service_with_connect_info::<SocketAddr>();
    let server = connections::https(listener, tls.clone(), limits, "acme").handle(handle.clone());
    let task = tokio::spawn(async move { server.serve(service).await });
    if let Some((token, (listener, admin_addr))) = admin {
        // The same TLS identity, and the same handle: stopping certgate
        // stops the admin API and waits for its requests too.
        let service = crate::web::admin::router(state.clone(), token).into_make_service();
        let server = connections::https(listener, tls, limits, "admin").handle(handle.clone());
        companions.push(serve_beside("the admin API", server.serve(service)));
        tracing::info!(listen = %admin_addr, "admin API is serving");
    }
    if let Some((listener, metrics_addr)) = metrics_listener {
        // Plain HTTP, as Prometheus scrapes without certgate's root; only
        // /metrics is served here.
        let service = crate::web::metrics_router(state.clone()).into_make_service();
        let server = connections::http(listener, limits, "metrics").handle(handle.clone());
        companions.push(serve_beside("the metrics listener", server.serve(service)));
        tracing::info!(listen = %metrics_addr, "metrics are served at /metrics");
    }
    start_background_work(&state, lock.is_some(), &mut companions).await;
    companions.push(tokio::spawn(
        state
            .ca_health
            .clone()
            .keep_checking(ca_health::CHECK_EVERY),
    ));
    let counts = state.metrics.database().clone();
    companions.push(tokio::spawn(
        counts.keep_fresh(state.store.clone(), state.clock.clone()),
    ));
    if let Some(keep) = config.retention {
        let retention = crate::domain::retention::Retention {
            store: state.store.clone(),
            clock: state.clock.clone(),
            keep,
        };
        companions.push(tokio::spawn(retention.run()));
    }
    let bucket_sweep = crate::domain::bucket_sweep::BucketSweep {
        store: state.store.clone(),
        clock: state.clock.clone(),
    };
    companions.push(tokio::spawn(bucket_sweep.run()));
    if let Some(dir) = &config.inventory.export_dir {
        let format = if config.inventory.export_der {
            crate::domain::inventory::export::ExportFormat::Der
        } else {
            crate::domain::inventory::export::ExportFormat::Pem
        };
        companions.push(tokio::spawn(
            crate::domain::inventory::export_dir::keep_exported(
                state.store.clone(),
                state.clock.clone(),
                dir.clone(),
                format,
                config.inventory.sync_interval,
            ),
        ));
    }
    if let Some(sync) = &inventory_sync {
        let interval = config.inventory.sync_interval;
        companions.push(tokio::spawn(sync.clone().run(interval)));
    }
    let profiles: Vec<&str> = state.profiles.iter().map(|p| p.name.as_str()).collect();
    banner::log(&config, local_addr, &ca.root_sha256(), &profiles);
    tracing::debug!(lease_owner = %state.workers.leases.owner(), "work leases");
    Ok(Server {
        local_addr,
        handle,
        task,
        companions,
        state,
        inventory_sync,
        _lock: lock,
    })
}
