//! The database holds every account and order: certgate creates it and the
//! files SQLite keeps beside it readable by its own user only, whatever the
//! umask and even in a data directory an operator made world-readable.

use std::os::unix::fs::PermissionsExt;

use certgate_testkit::dns::DnsStub;
use certgate_testkit::process::{CertgateProcess, ServeArgs};
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
