//! certgate as a separate process: the built binary, started the way an
//! operator starts it, so a test also covers the command line, the log and
//! the handling of SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The log line certgate writes once its listener accepts connections.
const READY_LINE: &str = "certgate is serving";
/// Generous, because a debug build on a busy machine can be slow to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// certgate drains open requests for at most 10 s, so this leaves room.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A port that was free a moment ago, for flags that need a fixed port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding an ephemeral port")
        .port()
}

/// The `certgate` binary cargo built beside the running test binary:
/// tests run from `target/<profile>/deps/`, and the binary sits one up.
pub fn certgate_binary() -> std::path::PathBuf {
    let test = std::env::current_exe().expect("the test binary's path");
    let profile = test
        .parent()
        .and_then(Path::parent)
        .expect("a test binary inside target/<profile>/deps");
    let binary = profile.join("certgate");
    assert!(
        binary.exists(),
        "{} is missing: build it with cargo build (cargo test and nextest build it)",
        binary.display()
    );
    binary
}

/// The built `certgate` binary, with none of the caller's `CERTGATE_*` or
/// `VAULT_*` variables: they would override nothing a test passes, but could
/// add a config file, database URL or Vault the test did not choose.
pub fn certgate_command() -> Command {
    without_callers_settings(Command::new(certgate_binary()))
}

/// `command` without the caller's `CERTGATE_*` or `VAULT_*` variables.
fn without_callers_settings(mut command: Command) -> Command {
    command.env("NO_COLOR", "1");
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("CERTGATE_") || name_text.starts_with("VAULT_") {
            command.env_remove(name);
        }
    }
    command
}

/// The flags of `certgate serve` that tests choose.
#[derive(Debug, Clone)]
pub struct ServeArgs {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub http01_port: u16,
    pub resolver: SocketAddr,
    /// Passed as `--config` when set.
    pub config: Option<PathBuf>,
    /// The file-mode creation mask certgate starts with, when the test
    /// chooses one instead of inheriting its own.
    pub umask: Option<u32>,
}

impl ServeArgs {
    /// `--listen` on a free loopback port and `--http01-port` on another
    /// one, where nothing answers unless the test starts something there.
    pub fn new(data_dir: &Path, resolver: SocketAddr, config: Option<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            listen: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
            http01_port: free_port(),
            resolver,
            config,
            umask: None,
        }
    }

    /// The default directory's URL.
    pub fn directory_url(&self) -> String {
        format!("https://{}/acme/directory", self.listen)
    }

    /// The embedded CA's root, which certgate's TLS certificate chains to.
    pub fn root_pem(&self) -> PathBuf {
        self.data_dir.join("ca/root.pem")
    }

    /// `certgate serve` with these flags (and `--config` when set); the
    /// caller adds the environment and the pipes, and spawns it.
    pub fn serve_command(&self) -> Command {
        let mut command = match self.umask {
            None => certgate_command(),
            // The shell sets the mask and then becomes certgate.
            Some(mask) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("umask {mask:03o} && exec \"$0\" \"$@\""))
                    .arg(certgate_binary());
                without_callers_settings(shell)
            }
        };
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(self.listen.to_string())
            .arg("--http01-port")
            .arg(self.http01_port.to_string())
            .arg("--resolver")
            .arg(self.resolver.to_string())
            .args(
                self.config
                    .iter()
                    .flat_map(|c| [std::ffi::OsStr::new("--config"), c.as_os_str()]),
            );
        command
    }
}

/// A running `certgate serve`. Dropping it kills the process, so a failing
/// test never leaves a server behind.
pub struct CertgateProcess {
    child: Child,
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    /// Strings [`CertgateProcess::stop`] checks the whole log for.
    secrets: Vec<String>,
}

impl CertgateProcess {
    /// Starts the binary and returns once it logged that it is serving.
    /// Panics with the captured log if it exits or stays silent instead.
    pub async fn start(args: &ServeArgs) -> Self {
        // The ready line is an INFO event; plain text keeps the log readable.
        Self::start_with(args, &[], &[("RUST_LOG", "info")]).await
    }

    /// [`CertgateProcess::start`] with more flags after `serve`, and
    /// environment variables (`RUST_LOG`, `CERTGATE_*`) set for it.
    pub async fn start_with(args: &ServeArgs, flags: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch(args, flags, env, None, None).await
    }

    /// [`CertgateProcess::start_with`] under an open-file limit of
    /// `(soft, hard)`, as a shell's `ulimit -n` or systemd's `LimitNOFILE=`
    /// would start it.
    pub async fn start_with_file_limit(
        args: &ServeArgs,
        flags: &[&str],
        file_limit: (u64, u64),
    ) -> Self {
        Self::launch(args, flags, &[("RUST_LOG", "info")], None, Some(file_limit)).await
    }

    /// [`CertgateProcess::start`] as the user and group `owner` (uid, gid)
    /// instead of the test's own: root reads and writes every file whatever
    /// its mode, a service user does not.
    pub async fn start_as(args: &ServeArgs, owner: (u32, u32)) -> Self {
        Self::launch(args, &[], &[("RUST_LOG", "info")], Some(owner), None).await
    }

    async fn launch(
        args: &ServeArgs,
        flags: &[&str],
        env: &[(&str, &str)],
        owner: Option<(u32, u32)>,
        file_limit: Option<(u64, u64)>,
    ) -> Self {
        let mut command = args.serve_command();
        if let Some((uid, gid)) = owner {
            command.uid(uid).gid(gid);
        }
        if let Some((soft, hard)) = file_limit {
            let limit = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            // SAFETY: between fork and exec only setrlimit runs, which is
            // async-signal-safe and touches no memory of the parent.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        command
            .args(flags)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("starting the certgate binary");

        // The log is read from both streams: tracing's fmt writer defaults to
        // stdout, while errors before logging starts go to stderr.
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = oneshot::channel();
        let ready_tx = Arc::new(Mutex::new(Some(ready_tx)));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        // Read until EOF, not just until ready: a full pipe would block certgate.
        let readers = vec![
            tokio::spawn(collect_log(stdout, log.clone(), ready_tx.clone())),
            tokio::spawn(collect_log(stderr, log.clone(), ready_tx)),
        ];

        let mut process = Self {
            child,
            log,
            readers,
            secrets: Vec::new(),
        };
        match tokio::time::timeout(START_TIMEOUT, ready_rx).await {
            Ok(Ok(())) => process,
            Ok(Err(_)) => {
                let status = process.child.wait().await;
                panic!(
                    "certgate exited before serving ({status:?})\n--- certgate log ---\n{}",
                    process.log()
                )
            }
            Err(_) => panic!(
                "certgate did not log {READY_LINE:?} within {START_TIMEOUT:?}\n--- certgate log ---\n{}",
                process.log()
            ),
        }
    }

    /// Everything certgate logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Makes [`CertgateProcess::stop`] fail if any of `secrets` (Vault
    /// tokens, secret IDs, HMAC keys) appears anywhere in the log.
    pub fn never_logs(&mut self, secrets: impl IntoIterator<Item = String>) {
        self.secrets.extend(secrets);
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("certgate is still running")
    }

    /// SIGKILL, as a crash or an out-of-memory kill ends certgate: no
    /// handler runs, nothing is flushed. Waits until the process is gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("killing certgate");
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit; then checks that
    /// the log holds none of the secrets given to
    /// [`CertgateProcess::never_logs`].
    pub async fn stop(&mut self) -> ExitStatus {
        let pid = self.child.id().expect("certgate is still running");
        let kill = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .expect("running kill");
        assert!(kill.success(), "kill -TERM {pid} failed: {kill}");
        let status = match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => status.expect("waiting for certgate"),
            Err(_) => panic!(
                "certgate did not stop within {STOP_TIMEOUT:?} of SIGTERM\n--- certgate log ---\n{}",
                self.log()
            ),
        };
        // The pipes are closed now; let the readers take in the last lines.
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
        let log = self.log();
        let logged = self.secrets.iter().filter(|s| log.contains(s.as_str()));
        // How many, not which: the assertion message ends up in a log too.
        assert_eq!(logged.count(), 0, "certgate logged secrets it was given");
        status
    }
}

/// Appends each line of `stream` to `log`, and reports the ready line once
/// (the sender is shared by both streams; it drops when both reach EOF).
async fn collect_log(
    stream: impl AsyncRead + Unpin,
    log: Arc<Mutex<String>>,
    ready: Arc<Mutex<Option<oneshot::Sender<()>>>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let is_ready = line.contains(READY_LINE);
        {
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
        if is_ready {
            if let Some(ready) = ready.lock().unwrap().take() {
                let _ = ready.send(());
            }
        }
    }
}
