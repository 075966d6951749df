//! The database holds every account and order: certgate creates it and the
//! files SQLite keeps beside it readable by its own user only, whatever the
//! umask and even in a data directory an operator made world-readable. The
//! keys it is handed (a CA folder and an EAB key file mounted from a
//! secret) it takes as Kubernetes mounts them, and refuses when any user
//! may read them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use certgate_testkit::dns::DnsStub;
use certgate_testkit::process::{certgate_command, CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::RawClient;

#[tokio::test(flavor = "multi_thread")]
async fn the_database_and_its_side_files_are_0600_under_umask_022() {
    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(data_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let args = ServeArgs {
        umask: Some(0o022),
        ..ServeArgs::new(data_dir.path(), dns.addr(), None)
    };
    let mut certgate = CertgateProcess::start(&args).await;
    // A write, so that the write-ahead log and its index exist.
    RawClient::registered(&args.directory_url(), &args.root_pem()).await;

    let mode = |name: &str| {
        let path = data_dir.path().join(name);
        std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    for name in ["certgate.db", "certgate.db-wal", "certgate.db-shm"] {
        assert_eq!(mode(name), 0o600, "{name} is {:o}", mode(name));
    }
    // Whatever else SQLite made beside it (a rollback journal, say).
    for entry in std::fs::read_dir(data_dir.path()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("certgate.db") {
            assert_eq!(mode(&name), 0o600, "{name} is {:o}", mode(&name));
        }
    }
    // The operator's directory mode is theirs to choose.
    assert_eq!(
        std::fs::metadata(data_dir.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    certgate.stop().await;
}

/// The user and group certgate runs as in the mounted-secret test, as a
/// pod's `runAsUser` and `fsGroup`: not root, which reads any file.
const POD_USER: (u32, u32) = (65534, 65534);

fn chown(path: &Path, (uid, gid): (u32, u32)) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A Kubernetes Secret volume at `mount` holding `files` (name, bytes): a
/// timestamped folder, `..data` linking to it, and each name a symlink to
/// `..data/<name>`; everything root's, the files mode 0440 with the pod's
/// group (`defaultMode: 0440`, `fsGroup`), the folders read-only.
fn secret_volume(mount: &Path, files: &[(&str, Vec<u8>)]) {
    let version = mount.join("..2025_01_01_00_00_00.000000001");
    std::fs::create_dir_all(&version).unwrap();
    for (name, bytes) in files {
        let file = version.join(name);
        std::fs::write(&file, bytes).unwrap();
        chown(&file, (0, POD_USER.1));
        set_mode(&file, 0o440);
        std::os::unix::fs::symlink(format!("..data/{name}"), mount.join(name)).unwrap();
    }
    std::os::unix::fs::symlink(version.file_name().unwrap(), mount.join("..data")).unwrap();
    for folder in [&version, mount] {
        chown(folder, (0, 0));
        set_mode(folder, 0o555);
    }
}

/// `certgate serve` as the pod's user, run to its end: for a start that
/// must fail. Returns what it said on stderr.
async fn failed_start(args: &ServeArgs) -> String {
    let output = args
        .serve_command()
        .uid(POD_USER.0)
        .gid(POD_USER.1)
        .env("RUST_LOG", "info")
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{said}");
    said
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_with_a_ca_and_eab_key_mounted_as_a_kubernetes_secret() {
    let dns = DnsStub::start().await;
    let top = tempfile::tempdir().unwrap();
    set_mode(top.path(), 0o755);
    // The operator makes the CA once, on their own machine.
    let made = top.path().join("made");
    let created = certgate_command()
        .args(["ca", "create", "--ca-dir"])
        .arg(made.join("ca"))
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&created.stdout).into_owned();
    assert!(created.status.success(), "{printed}");
    let fingerprint = printed
        .lines()
        .find_map(|l| l.strip_prefix("root SHA-256  "))
        .unwrap_or_else(|| panic!("no fingerprint in {printed}"))
        .to_owned();
    // Without root.key: serve never reads it, so it can stay offline.
    let read = |name: &str| std::fs::read(made.join("ca").join(name)).unwrap();
    // A key-encryption key as `eab create` writes one: 32 random bytes, base64url.
    let eab_key = {
        use base64::Engine;
        let bytes: [u8; 32] = rand::random();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes) + "\n"
    };
    let ca = top.path().join("ca");
    secret_volume(
        &ca,
        &[
            ("root.pem", read("root.pem")),
            ("intermediate.pem", read("intermediate.pem")),
            ("intermediate.key", read("intermediate.key")),
        ],
    );
    let eab = top.path().join("eab");
    secret_volume(&eab, &[("eab.key", eab_key.into_bytes())]);

    let data_dir = top.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    chown(&data_dir, POD_USER);
    let config = top.path().join("certgate.toml");
    std::fs::write(
        &config,
        format!(
            "ca_dir = {:?}\neab_key_file = {:?}\n",
            ca.display().to_string(),
            eab.join("eab.key").display().to_string()
        ),
    )
    .unwrap();
    set_mode(&config, 0o644);
    let args = ServeArgs::new(&data_dir, dns.addr(), Some(config.clone()));

    let mut certgate = CertgateProcess::start_as(&args, POD_USER).await;
    let root = made.join("ca/root.pem");
    // Its TLS certificate chains to the mounted root, and so do the
    // certificates it signs.
    RawClient::registered(&args.directory_url(), &root).await;
    assert!(certgate
        .log()
        .contains(&ca.join("root.pem").display().to_string()));
    assert!(
        !data_dir.join("ca").exists(),
        "a CA was made in the data dir"
    );
    assert!(certgate.stop().await.success(), "{}", certgate.log());
    // check-config loads both as serve does, and names the root.
    let checked = certgate_command()
        .args(["check-config", "--offline", "--config"])
        .arg(&config)
        .uid(POD_USER.0)
        .gid(POD_USER.1)
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&checked.stdout).into_owned();
    assert!(checked.status.success(), "{report}");
    assert!(report.contains(&fingerprint), "{report}");
    assert!(report.contains("eab_key_file"), "{report}");

    // Kubernetes' default mode lets every user of the pod read a key: refused.
    let version = |mount: &Path| std::fs::read_link(mount.join("..data")).unwrap();
    let key = ca.join(version(&ca)).join("intermediate.key");
    set_mode(&key, 0o444);
    let said = failed_start(&args).await;
    assert!(said.contains("intermediate.key is a private key"), "{said}");
    set_mode(&key, 0o440);
    let eab_file = eab.join(version(&eab)).join("eab.key");
    set_mode(&eab_file, 0o444);
    let said = failed_start(&args).await;
    assert!(said.contains("eab.key is a private key"), "{said}");
}
