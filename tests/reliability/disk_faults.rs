//! A full disk and a read-only database file: writes are refused with `503`
//! and `Retry-After`, `/ready` says why, nothing stored is lost, and the
//! next write after the fault clears succeeds without a restart.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::common::{
    assert_unavailable, fresh_client, integrity_check, ready, ready_becomes, try_issue,
};
use certgate_testkit::dns::DnsStub;
use certgate_testkit::http01::Http01Responder;
use certgate_testkit::process::{CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::RawClient;

/// A tmpfs of a few MiB, mounted for the test and unmounted after: a real
/// filesystem that fills up, with no risk to the machine's own disk.
struct SmallFilesystem {
    dir: tempfile::TempDir,
}

impl SmallFilesystem {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .status()
            .expect("running mount");
        assert!(
            mounted.success(),
            "mounting a {size} tmpfs failed ({mounted}): this test needs root, as CI has"
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the filesystem has no byte left; returns it.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            match file.write_all(&chunk).and_then(|()| file.sync_all()) {
                Ok(()) => continue,
                Err(e) if e.raw_os_error() == Some(libc_enospc()) => return filler,
                Err(e) => panic!("filling the filesystem: {e}"),
            }
        }
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// ENOSPC on Linux.
fn libc_enospc() -> i32 {
    28
}

/// A newAccount that must be created (201) or refused as unavailable
/// (503); true when refused.
async fn new_account_refused(template: &RawClient, created: &mut Vec<RawClient>) -> bool {
    let mut client = fresh_client(template);
    let reply = client
        .post(
            &client.url("newAccount"),
            Some(json!({"termsOfServiceAgreed": true})),
        )
        .await;
    if reply.status == 503 {
        assert_unavailable("newAccount on a full disk", &reply);
        return true;
    }
    assert_eq!(reply.status, 201, "newAccount: {:?}", reply.json());
    client.kid = reply.header("location").map(str::to_owned);
    created.push(client);
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_is_refused_with_503_and_heals_when_space_returns() {
    let filesystem = SmallFilesystem::mount("8m");
    let dns = DnsStub::start().await;
    let http01 = Http01Responder::start().await;
    let data_dir = filesystem.path().join("data");
    let mut args = ServeArgs::new(&data_dir, dns.addr(), None);
    args.http01_port = http01.port();
    let mut certgate = CertgateProcess::start(&args).await;
    let base = format!("https://{}", args.listen);
    let template = RawClient::new(
        &format!("{base}/acme/directory"),
        &data_dir.join("ca/root.pem"),
    )
    .await;
    let mut before = fresh_client(&template);
    try_issue(&mut before, &http01, "before.example.test")
        .await
        .expect("issuing before the disk fills");
    assert_eq!(ready(&template, &base).await.0, 200);

    let filler = filesystem.fill();
    let mut created = Vec::new();
    let mut refused = 0;
    for _ in 0..100 {
        if new_account_refused(&template, &mut created).await {
            refused += 1;
            break;
        }
    }
    assert_eq!(refused, 1, "100 accounts were created on a full disk");
    let order = before
        .post(
            &before.url("newOrder"),
            Some(json!({"identifiers": [{"type": "dns", "value": "full.example.test"}]})),
        )
        .await;
    assert_unavailable("newOrder on a full disk", &order);
    let body = ready_becomes(&template, &base, 503).await;
    assert!(
        body.contains("database: not writable (database or disk is full)"),
        "{body}"
    );

    // Space returns: the very next issuance succeeds, with no restart.
    std::fs::remove_file(filler).unwrap();
    try_issue(&mut before, &http01, "after.example.test")
        .await
        .expect("issuing once space is back");
    ready_becomes(&template, &base, 200).await;
    // Nothing answered as created was lost.
    for client in &created {
        let reply = client.post(client.kid.as_deref().unwrap(), None).await;
        assert_eq!(reply.status, 200, "{:?}", reply.json());
    }
    assert!(certgate.stop().await.success());
    assert_eq!(integrity_check(&data_dir).await, "ok");
    let log = certgate.log();
    assert!(!log.contains("transaction depth"), "{log}");
}

/// The owner certgate runs as in the read-only test: `nobody`, since root
/// writes a file whatever its mode.
const SERVICE_USER: (u32, u32) = (65534, 65534);

fn chown_tree(path: &Path, (uid, gid): (u32, u32)) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_database_is_refused_with_503_and_heals_when_writable_again() {
    let dns = DnsStub::start().await;
    let http01 = Http01Responder::start().await;
    let top = tempfile::tempdir().unwrap();
    set_mode(top.path(), 0o755);
    let data_dir = top.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    chown_tree(&data_dir, SERVICE_USER);
    let mut args = ServeArgs::new(&data_dir, dns.addr(), None);
    args.http01_port = http01.port();
    let base = format!("https://{}", args.listen);

    // A first run as the service user makes the database and one account.
    let mut certgate = CertgateProcess::start_as(&args, SERVICE_USER).await;
    let template = RawClient::new(
        &format!("{base}/acme/directory"),
        &data_dir.join("ca/root.pem"),
    )
    .await;
    let mut client = fresh_client(&template);
    try_issue(&mut client, &http01, "first.example.test")
        .await
        .expect("issuing on a writable database");
    assert!(certgate.stop().await.success());

    let database = data_dir.join("certgate.db");
    set_mode(&database, 0o444);
    let mut certgate = CertgateProcess::start_as(&args, SERVICE_USER).await;
    let reply = client
        .post(
            &client.url("newOrder"),
            Some(json!({"identifiers": [{"type": "dns", "value": "ro.example.test"}]})),
        )
        .await;
    assert_unavailable("newOrder on a read-only database", &reply);
    let mut created = Vec::new();
    assert!(
        new_account_refused(&template, &mut created).await,
        "an account was created in a read-only database"
    );
    let body = ready_becomes(&template, &base, 503).await;
    assert!(
        body.contains("database: not writable (attempt to write a readonly database)"),
        "{body}"
    );
    // What was stored before is still served.
    assert_eq!(
        client
            .post(client.kid.as_deref().unwrap(), None)
            .await
            .status,
        200
    );

    // The operator's fix: the database and its side files, which SQLite
    // made with the database's mode when it opened the file read-only.
    for file in ["certgate.db", "certgate.db-wal", "certgate.db-shm"] {
        set_mode(&data_dir.join(file), 0o644);
    }
    if let Err(step) = try_issue(&mut client, &http01, "writable-again.example.test").await {
        panic!(
            "issuing once the file is writable: {step}\n{}",
            certgate.log()
        );
    }
    ready_becomes(&template, &base, 200).await;
    assert!(certgate.stop().await.success());
    assert_eq!(integrity_check(&data_dir).await, "ok");
}
