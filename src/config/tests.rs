//! How flags, the file and defaults combine into a [`Config`].

use super::*;

#[test]
fn defaults_need_no_input() {
    let config = Config::load(ServeFlags::default()).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8443");
    assert_eq!(config.data_dir, PathBuf::from("certgate-data"));
    assert_eq!(config.database_url, "sqlite://certgate-data/certgate.db");
    assert_eq!(config.ca_dir, PathBuf::from("certgate-data/ca"));
    assert_eq!(config.eab_key_file, PathBuf::from("certgate-data/eab.key"));
    assert_eq!(config.http01_port, 80);
    assert!(config.resolvers.is_empty());
    assert_eq!(config.cert_lifetime, Duration::from_secs(90 * 86_400));
}

#[test]
fn flags_win_over_the_file_and_the_file_over_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("certgate.toml");
    std::fs::write(
        &path,
        "listen = \"0.0.0.0:9443\"\nhttp01_port = 5002\nresolver = [\"10.0.0.53\"]\ncert_lifetime = \"24h\"\n\
         ca_dir = \"/etc/certgate/ca\"\neab_key_file = \"/etc/certgate/eab/eab.key\"\n",
    )
    .unwrap();
    let flags = ServeFlags {
        config: Some(path),
        http01_port: Some(8080),
        ca_dir: Some("/run/ca".into()),
        ..Default::default()
    };
    let config = Config::load(flags).unwrap();
    assert_eq!(config.listen.to_string(), "0.0.0.0:9443");
    assert_eq!(config.http01_port, 8080);
    // Neither follows the data dir once set.
    assert_eq!(config.ca_dir, PathBuf::from("/run/ca"));
    assert_eq!(
        config.eab_key_file,
        PathBuf::from("/etc/certgate/eab/eab.key")
    );
    assert_eq!(config.resolvers, vec!["10.0.0.53:53".parse().unwrap()]);
    assert_eq!(config.cert_lifetime, Duration::from_secs(86_400));
}

#[test]
fn a_file_with_profiles_and_vault() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("certgate.toml");
    std::fs::write(
        &path,
        "default_profile = \"lab\"\n\
         [vault]\naddress = \"https://vault.lab:8200\"\n\
         [vault.auth]\nmethod = \"approle\"\nrole_id = \"r\"\nsecret_id_file = \"/run/s\"\n\
         [profiles.lab]\nissuer = \"vault\"\nmount = \"pki_int\"\nrole = \"lab-internal\"\n\
         [profiles.local]\nissuer = \"local\"\n",
    )
    .unwrap();
    let flags = ServeFlags {
        config: Some(path.clone()),
        ..Default::default()
    };
    let config = Config::load_with_env(flags, &|_| None).unwrap();
    assert_eq!(config.default_profile, "lab");
    assert_eq!(config.profiles.len(), 2);
    assert_eq!(config.vault.unwrap().auth.method(), "approle");

    // Vault needed but not located: the error names what needs it.
    for (file, user) in [
        (
            "[profiles.lab]\nissuer = \"vault\"\nmount = \"pki_int\"\nrole = \"lab\"\n",
            "profile \"lab\" uses Vault",
        ),
        (
            "[inventory]\nvault_mounts = [\"pki_nomad\"]\n",
            "[inventory] vault_mounts (\"pki_nomad\") uses Vault",
        ),
    ] {
        std::fs::write(&path, file).unwrap();
        let flags = ServeFlags {
            config: Some(path.clone()),
            ..Default::default()
        };
        let error = Config::load_with_env(flags, &|_| None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(user) && error.contains("[vault] address or VAULT_ADDR"),
            "{error}"
        );
    }

    // Only local profiles: no [vault] needed, and none is set up.
    std::fs::write(&path, "[profiles.local]\nissuer = \"local\"\n").unwrap();
    let flags = ServeFlags {
        config: Some(path),
        ..Default::default()
    };
    assert!(Config::load_with_env(flags, &|_| None)
        .unwrap()
        .vault
        .is_none());
}

#[test]
fn refuses_unknown_keys_and_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "listn = \"0.0.0.0:1\"\n").unwrap();
    let err = Config::load(ServeFlags {
        config: Some(path),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("listn"), "{err}");

    for flags in [
        ServeFlags {
            cert_lifetime: Some("soon".into()),
            ..Default::default()
        },
        ServeFlags {
            resolvers: vec!["dns.example".into()],
            ..Default::default()
        },
        ServeFlags {
            http01_port: Some(0),
            ..Default::default()
        },
        ServeFlags {
            external_url: Some("http://acme.test".into()),
            ..Default::default()
        },
        ServeFlags {
            tls_names: vec!["bad name".into()],
            ..Default::default()
        },
    ] {
        assert!(Config::load(flags).is_err());
    }
}

#[test]
fn served_names_are_the_external_host_then_tls_names_without_addresses() {
    let tls_names = ["10.0.0.5", "ACME.lab.example.", "nas.lab.example", "::1"].map(String::from);
    assert_eq!(
        served_names(Some("https://acme.lab.example:8443"), &tls_names),
        ["acme.lab.example", "nas.lab.example"]
    );
    assert_eq!(
        served_names(Some("https://10.0.0.5:8443"), &[]),
        Vec::<String>::new()
    );
    assert_eq!(served_names(None, &tls_names[2..3]), ["nas.lab.example"]);
}

#[test]
fn a_postgres_database_and_no_migration_at_start_can_be_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("certgate.toml");
    std::fs::write(
        &path,
        "database_url = \"postgres://certgate@db.lab.example/certgate\"\nmigrate = false\n",
    )
    .unwrap();
    let config = Config::load(ServeFlags {
        config: Some(path),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        config.database_url,
        "postgres://certgate@db.lab.example/certgate"
    );
    assert!(!config.migrate);
    assert!(Config::load(ServeFlags::default()).unwrap().migrate);

    let refused = Config::load(ServeFlags {
        database_url: Some("mysql://certgate:hunter2@db/certgate".into()),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(refused.contains("postgres://"), "{refused}");
    assert!(!refused.contains("hunter2"), "{refused}");
}

#[test]
fn the_work_lease_is_30s_unless_set_between_3s_and_1h() {
    assert_eq!(
        Config::load(ServeFlags::default()).unwrap().work_lease,
        Duration::from_secs(30)
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("certgate.toml");
    std::fs::write(&path, "work_lease = \"2m\"\n").unwrap();
    let from_file = Config::load(ServeFlags {
        config: Some(path.clone()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(from_file.work_lease, Duration::from_secs(120));
    let from_flag = Config::load(ServeFlags {
        config: Some(path),
        work_lease: Some("3s".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(from_flag.work_lease, Duration::from_secs(3));
    for refused in ["2s", "2h", "soon"] {
        let error = Config::load(ServeFlags {
            work_lease: Some(refused.into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("work-lease") || error.contains("soon"),
            "{error}"
        );
    }
}
