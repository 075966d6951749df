//! The files under deploy/ and docs/ are read by other programs (Nomad,
//! Kubernetes, systemd, Docker, Traefik, people following the README), none
//! of which run here. What can be checked without them is checked: every
//! certgate config they hold passes `check-config --offline` with the built
//! binary; the YAML and HCL parse, and the values that must agree across
//! files (certgate's names, the directory URLs) do; the systemd unit
//! verifies; the image is built by the script CI runs; the README's quick
//! start and first certificate are run by CI; the error texts the
//! troubleshooting page quotes are ones certgate's source produces; the
//! certgate commands the README and docs show use flags the binary has;
//! relative links lead to files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::de::{DeserializeOwned, Visitor};
use yaml_rust2::{Yaml, YamlLoader};

use certgate_testkit::process::certgate_command;

const CERTGATE: &str = env!("CARGO_BIN_EXE_certgate");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Files under `dir` (relative to the repository) whose names end in one of `suffixes`.
fn files_under(dir: &str, suffixes: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, suffixes: &[&str], found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, suffixes, found);
            } else if suffixes.iter().any(|s| path.to_string_lossy().ends_with(s)) {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&repo().join(dir), suffixes, &mut found);
    found.sort();
    found
}

fn shown(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The bodies of the fenced code blocks of `language` in a Markdown text.
fn code_blocks(markdown: &str, language: &str) -> Vec<String> {
    enum State {
        Outside,
        /// In a block of another language, skipped.
        Other,
        In(String),
    }
    let mut blocks = Vec::new();
    let mut state = State::Outside;
    for line in markdown.lines() {
        let fence = line.trim_start().strip_prefix("```");
        state = match (state, fence) {
            (State::Outside, Some(info)) if info.trim() == language => State::In(String::new()),
            (State::Outside, Some(_)) => State::Other,
            (State::Other, Some(_)) => State::Outside,
            (State::In(block), Some(_)) => {
                blocks.push(block);
                State::Outside
            }
            (State::In(mut block), None) => {
                block.push_str(line);
                block.push('\n');
                State::In(block)
            }
            (other, None) => other,
        };
    }
    blocks
}

/// The `language` blocks of the Markdown pages under deploy/ and docs/,
/// each with where it is: the page and the block's number there.
fn doc_blocks(language: &str) -> Vec<(String, String)> {
    let pages = files_under("deploy", &[".md"])
        .into_iter()
        .chain(files_under("docs", &[".md"]));
    let mut blocks = Vec::new();
    for page in pages {
        let markdown = std::fs::read_to_string(&page).unwrap();
        for (i, block) in code_blocks(&markdown, language).into_iter().enumerate() {
            blocks.push((
                format!("{} ({language} block {})", shown(&page), i + 1),
                block,
            ));
        }
    }
    blocks
}

/// certgate with a clean environment: no CERTGATE_* or VAULT_* of the
/// machine running the tests adds settings the file does not have.
fn certgate(args: &[&str]) -> Output {
    certgate_command()
        .into_std()
        .args(args)
        .output()
        .expect("running certgate")
}

/// `check-config --offline` on the config file at `path`.
fn check_config_offline(path: &Path) -> Output {
    certgate(&[
        "check-config",
        "--offline",
        "--config",
        path.to_str().unwrap(),
    ])
}

/// Runs `check-config --offline` on the config file at `path`; panics
/// unless it fails with a report containing `problem`.
fn assert_offline_problem(path: &Path, problem: &str) {
    let output = check_config_offline(path);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains(problem), "{report}");
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `check-config --offline` on `config`; panics with its report
/// unless it exits 0 with no problem.
fn check_offline(origin: &str, config: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("certgate.toml");
    std::fs::write(&path, config).unwrap();
    let output = check_config_offline(&path);
    let report = text(&output);
    assert!(
        output.status.success() && !report.contains("PROBLEM"),
        "{origin} does not pass check-config --offline:\n{report}\n--- config ---\n{config}"
    );
}

// ---------------------------------------------------------------------------
// The config files and examples.

/// The names serde accepts for a struct's fields, read from its derived
/// `Deserialize` (a deserializer that only records what is asked of it).
fn field_names<T: DeserializeOwned>() -> BTreeSet<&'static str> {
    struct Recorder<'a>(&'a mut Vec<&'static str>);

    impl<'de> serde::Deserializer<'de> for Recorder<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.extend(fields);
            Err(serde::de::Error::custom("fields recorded"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut names = Vec::new();
    let _ = T::deserialize(Recorder(&mut names));
    assert!(!names.is_empty(), "no fields recorded");
    names.into_iter().collect()
}

/// A value every field of the config structs accepts as empty: none, an
/// empty list, map or table, "", 0 or false.
struct Empty;

impl<'de> serde::Deserializer<'de> for Empty {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_none()
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_seq(serde::de::value::SeqDeserializer::new(
            std::iter::empty::<()>(),
        ))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_map(serde::de::value::MapDeserializer::new(std::iter::empty::<(
            (),
            (),
        )>()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_str("")
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_str("")
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_bool(false)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_u16(0)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_f64(0.0)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u32 u64 u128 f32 char bytes byte_buf unit
        unit_struct newtype_struct tuple tuple_struct enum identifier ignored_any
    }
}

impl serde::de::IntoDeserializer<'_> for Empty {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// The field names of a struct without their aliases: a name given twice is
/// refused as a duplicate under its field's own name, alias or not.
fn canonical_field_names<T: DeserializeOwned>() -> BTreeSet<&'static str> {
    field_names::<T>()
        .into_iter()
        .filter(|name| {
            let twice = serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(
                [(*name, Empty), (*name, Empty)].into_iter(),
            );
            let error = T::deserialize(twice)
                .err()
                .unwrap_or_else(|| panic!("{name} given twice was accepted"))
                .to_string();
            error == format!("duplicate field `{name}`")
        })
        .collect()
}

/// The keys a TOML text sets or shows commented out (`# key = …`), by the
/// table they are under ("" for the top level, "profiles.*" for every profile).
fn keys_by_table(toml_text: &str) -> Vec<(String, String)> {
    let mut table = String::new();
    let mut keys = Vec::new();
    for line in toml_text.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.split_once(']')) {
            table = header.0.trim().to_owned();
            if let Some(profile) = table.strip_prefix("profiles.") {
                if !profile.contains('.') {
                    table = "profiles.*".to_owned();
                }
            }
            continue;
        }
        let setting = line.trim_start_matches('#').trim_start();
        if let Some((key, _)) = setting.split_once('=') {
            let key = key.trim();
            if !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                keys.push((table.clone(), key.to_owned()));
            }
        }
    }
    keys
}

#[test]
fn the_example_config_names_every_setting_and_is_what_config_example_prints() {
    use certgate::config::inventory::InventoryFile;
    use certgate::config::profiles::ProfileFile;
    use certgate::config::vault::{AuthFile, VaultFile};
    use certgate::config::ServeFlags;

    let example = read("deploy/certgate.example.toml");
    let printed = certgate(&["config", "example"]);
    assert!(printed.status.success(), "{}", text(&printed));
    assert_eq!(String::from_utf8(printed.stdout).unwrap(), example);

    let shown: BTreeSet<(String, String)> = keys_by_table(&example).into_iter().collect();
    let tables: BTreeSet<&str> = shown.iter().map(|(table, _)| table.as_str()).collect();
    let mut missing = Vec::new();
    for (table, fields) in [
        ("", canonical_field_names::<ServeFlags>()),
        ("profiles.*", canonical_field_names::<ProfileFile>()),
        ("vault", canonical_field_names::<VaultFile>()),
        ("vault.auth", canonical_field_names::<AuthFile>()),
        ("inventory", canonical_field_names::<InventoryFile>()),
    ] {
        for field in fields {
            // Tables are shown by their headers, not as keys.
            let as_table = match (table, field) {
                ("", "profiles") => Some("profiles.*"),
                ("", "vault") => Some("vault"),
                ("", "inventory") => Some("inventory"),
                ("vault", "auth") => Some("vault.auth"),
                _ => None,
            };
            let present = match as_table {
                Some(header) => tables.contains(header),
                None => shown.contains(&(table.to_owned(), field.to_owned())),
            };
            if !present {
                missing.push(format!("[{table}] {field}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "deploy/certgate.example.toml does not show: {missing:?}"
    );
    // And every key it shows, commented or not, is one certgate reads there.
    let known = |table: &str| match table {
        "" => field_names::<ServeFlags>(),
        "profiles.*" => field_names::<ProfileFile>(),
        "vault" => field_names::<VaultFile>(),
        "vault.auth" => field_names::<AuthFile>(),
        "inventory" => field_names::<InventoryFile>(),
        other => panic!("deploy/certgate.example.toml has a table [{other}]"),
    };
    for (table, key) in &shown {
        assert!(
            known(table).contains(key.as_str()),
            "deploy/certgate.example.toml shows [{table}] {key}, which certgate does not read"
        );
    }
}

/// The Nomad jobs that run certgate: one allocation on SQLite, and
/// replicas on PostgreSQL.
const NOMAD_JOBS: [&str; 2] = [
    "deploy/nomad/certgate.nomad.hcl",
    "deploy/nomad/certgate-replicated.nomad.hcl",
];
/// The ConfigMaps with certgate's config: one pod on SQLite, and replicas
/// on PostgreSQL.
const KUBERNETES_CONFIGS: [&str; 2] = [
    "deploy/kubernetes/configmap.yaml",
    "deploy/kubernetes/replicated/configmap.yaml",
];

/// The certgate config inside the `template` block of the Nomad job `file`.
fn nomad_certgate_config(file: &str) -> String {
    let job = hcl::parse(&read(file)).unwrap();
    let task = block(&job, &["job", "group", "task"]);
    let template = task
        .body()
        .blocks()
        .find(|b| {
            b.identifier() == "template"
                && attribute_string(b.body(), "destination").as_deref()
                    == Some("local/certgate.toml")
        })
        .expect("a template block writing local/certgate.toml");
    attribute_string(template.body(), "data").expect("the template's data")
}

/// The certgate config in the Kubernetes ConfigMap in `file`.
fn kubernetes_certgate_config(file: &str) -> String {
    let docs = yaml(file);
    docs.iter()
        .find(|d| d["kind"].as_str() == Some("ConfigMap"))
        .and_then(|d| d["data"]["certgate.toml"].as_str())
        .expect("a ConfigMap with data certgate.toml")
        .to_owned()
}

#[test]
fn every_certgate_config_under_deploy_and_docs_passes_check_config_offline() {
    let mut configs: Vec<(String, String)> = files_under("deploy", &[".toml"])
        .iter()
        .map(|path| (shown(path), std::fs::read_to_string(path).unwrap()))
        .collect();
    configs.extend(doc_blocks("toml"));
    for job in NOMAD_JOBS {
        configs.push((format!("{job} (template)"), nomad_certgate_config(job)));
    }
    for file in KUBERNETES_CONFIGS {
        configs.push((
            format!("{file} (certgate.toml)"),
            kubernetes_certgate_config(file),
        ));
    }
    let origins: Vec<&str> = configs.iter().map(|(origin, _)| origin.as_str()).collect();
    for expected in [
        "deploy/certgate.example.toml",
        "deploy/vault/certgate.toml",
        "deploy/systemd/README.md (toml block 1)",
    ] {
        assert!(
            origins.contains(&expected),
            "{expected} not found in {origins:?}"
        );
    }
    for (origin, config) in &configs {
        check_offline(origin, config);
    }
}

#[test]
fn check_config_offline_names_what_is_wrong_and_fails() {
    let broken = read("deploy/certgate.example.toml")
        .replace("mount = \"pki_int\"", "mount = \"pki_int\"\nttl = \"soon\"");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("certgate.toml");
    std::fs::write(&path, broken).unwrap();
    assert_offline_problem(&path, "PROBLEM  configuration: duration \"soon\"");

    // A credential file that is there but empty is a problem; one that is
    // not on this machine is only reported.
    let secret = dir.path().join("secret-id");
    std::fs::write(&secret, "").unwrap();
    let config = read("deploy/certgate.example.toml")
        .replace("/etc/certgate/secret-id", secret.to_str().unwrap());
    std::fs::write(&path, config).unwrap();
    assert_offline_problem(
        &path,
        &format!(
            "PROBLEM  [vault.auth] secret_id_file {} is empty",
            secret.display()
        ),
    );
}

// ---------------------------------------------------------------------------
// YAML and HCL.

fn yaml(relative: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

#[test]
fn every_yaml_file_and_block_parses() {
    let mut parsed = 0;
    for path in files_under("deploy", &[".yaml", ".yml"]) {
        let docs = YamlLoader::load_from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", shown(&path)));
        assert!(!docs.is_empty(), "{} is empty", shown(&path));
        if shown(&path).starts_with("deploy/kubernetes/") {
            for doc in &docs {
                assert!(
                    doc["apiVersion"].as_str().is_some() && doc["kind"].as_str().is_some(),
                    "{}: a document without apiVersion and kind",
                    shown(&path)
                );
            }
        }
        parsed += 1;
    }
    for (origin, block) in doc_blocks("yaml") {
        YamlLoader::load_from_str(&block).unwrap_or_else(|e| panic!("{origin}: {e}\n{block}"));
        parsed += 1;
    }
    assert!(parsed >= 12, "only {parsed} YAML files and blocks found");
}

/// The block reached by following `path` (first match at each level).
fn block<'a>(body: &'a hcl::Body, path: &[&str]) -> &'a hcl::Block {
    let (first, rest) = path.split_first().expect("a non-empty path");
    let found = body
        .blocks()
        .find(|b| b.identifier() == *first)
        .unwrap_or_else(|| panic!("no {first} block"));
    if rest.is_empty() {
        found
    } else {
        block(found.body(), rest)
    }
}

/// A string attribute, quoted or heredoc, without interpolations.
fn attribute_string(body: &hcl::Body, key: &str) -> Option<String> {
    let attribute = body.attributes().find(|a| a.key() == key)?;
    match attribute.expr() {
        hcl::Expression::String(s) => Some(s.clone()),
        hcl::Expression::TemplateExpr(template) => match template.as_ref() {
            hcl::TemplateExpr::Heredoc(heredoc) => Some(heredoc.template.clone()),
            hcl::TemplateExpr::QuotedString(s) => Some(s.clone()),
        },
        _ => None,
    }
}

fn attribute_strings(body: &hcl::Body, key: &str) -> Vec<String> {
    match body.attributes().find(|a| a.key() == key).map(|a| a.expr()) {
        Some(hcl::Expression::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                hcl::Expression::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The names certgate's HTTPS certificate covers under a config, and its port.
fn served_names(config: &str) -> (Vec<String>, u16) {
    let flags: certgate::config::ServeFlags = toml::from_str(config).unwrap();
    let port = flags.listen.map_or(8443, |addr| addr.port());
    let mut names = flags.tls_names;
    names.extend(["localhost".to_owned(), "127.0.0.1".to_owned()]);
    (names, port)
}

/// Checks that `directory` is an ACME directory URL of certgate under
/// `config`: https, a name its certificate covers, and a profile it has.
/// Returns the profile's name (`None` for the default directory).
fn assert_directory_of(directory: &str, config: &str, port: u16, origin: &str) -> Option<String> {
    let url = url::Url::parse(directory).unwrap_or_else(|e| panic!("{origin}: {directory}: {e}"));
    let (names, _) = served_names(config);
    assert_eq!(url.scheme(), "https", "{origin}: {directory}");
    let host = url.host_str().unwrap();
    assert!(
        names.iter().any(|n| n == host),
        "{origin}: {host} is not among certgate's names {names:?}"
    );
    assert_eq!(
        url.port_or_known_default(),
        Some(port),
        "{origin}: {directory}"
    );
    let profile = match url.path() {
        "/acme/directory" => None,
        path => Some(
            path.strip_prefix("/acme/")
                .and_then(|p| p.strip_suffix("/directory"))
                .unwrap_or_else(|| panic!("{origin}: {directory} is not an ACME directory"))
                .to_owned(),
        ),
    };
    let flags: certgate::config::ServeFlags = toml::from_str(config).unwrap();
    if let Some(name) = &profile {
        assert!(
            flags.profiles.contains_key(name),
            "{origin}: no profile {name}"
        );
    }
    profile
}

#[test]
fn the_nomad_jobs_parse_and_traefik_points_at_certgate() {
    for path in files_under("deploy/nomad", &[".hcl"]) {
        hcl::parse(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", shown(&path)));
    }
    for (origin, block) in doc_blocks("hcl") {
        hcl::parse(&block).unwrap_or_else(|e| panic!("{origin}: {e}\n{block}"));
    }

    let certgate = hcl::parse(&read("deploy/nomad/certgate.nomad.hcl")).unwrap();
    let group = block(&certgate, &["job", "group"]);
    let service = block(group.body(), &["service"]);
    let check = block(service.body(), &["check"]);
    for (body, key, expected) in [
        (service.body(), "name", "certgate"),
        (service.body(), "provider", "consul"),
        (check.body(), "path", "/health"),
        (check.body(), "protocol", "https"),
    ] {
        assert_eq!(
            attribute_string(body, key).as_deref(),
            Some(expected),
            "{key}"
        );
    }
    let volume = block(group.body(), &["volume"]);
    let task = block(group.body(), &["task"]);
    let ulimit = block(task.body(), &["config", "ulimit"]);
    let nofile = attribute_string(ulimit.body(), "nofile").unwrap();
    let (soft, hard) = nofile.split_once(':').unwrap();
    let (soft, hard): (u64, u64) = (soft.parse().unwrap(), hard.parse().unwrap());
    assert!(
        soft >= files_needed_by_default() && hard >= soft,
        "nofile = {nofile:?} is below {}",
        files_needed_by_default()
    );
    let mount = block(task.body(), &["volume_mount"]);
    let config_text = nomad_certgate_config(NOMAD_JOBS[0]);
    let config: certgate::config::ServeFlags = toml::from_str(&config_text).unwrap();
    assert_eq!(
        attribute_string(mount.body(), "volume"),
        volume.labels().first().map(|l| l.as_str().to_owned()),
        "the task mounts the group's volume"
    );
    assert_eq!(
        attribute_string(mount.body(), "destination").map(PathBuf::from),
        config.data_dir,
        "the volume is certgate's data_dir"
    );
    // Vault through the workload identity: the file Nomad writes is the one
    // certgate logs in with.
    let identity = block(task.body(), &["identity"]);
    let identity_name = attribute_string(identity.body(), "name").unwrap();
    let auth = config.vault.as_ref().unwrap().auth.clone();
    assert_eq!(auth.method.as_deref(), Some("jwt"));
    assert_eq!(
        auth.jwt_file,
        Some(PathBuf::from(format!("/secrets/nomad_{identity_name}.jwt")))
    );

    let traefik = hcl::parse(&read("deploy/nomad/traefik.nomad.hcl")).unwrap();
    let task = block(&traefik, &["job", "group", "task"]);
    let args = attribute_strings(block(task.body(), &["config"]).body(), "args");
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .unwrap_or_else(|| panic!("traefik.nomad.hcl has no --{name}"))
            .to_owned()
    };
    let (_, port) = served_names(&config_text);
    assert_directory_of(
        &flag("certificatesresolvers.certgate.acme.caserver"),
        &config_text,
        port,
        "traefik.nomad.hcl",
    );
    assert_eq!(
        flag("certificatesresolvers.certgate.acme.dnschallenge.provider"),
        "rfc2136"
    );
    assert_eq!(
        flag("entrypoints.websecure.http.tls.domains[0].main"),
        "*.home"
    );
    let env = block(task.body(), &["env"]);
    let root = attribute_string(env.body(), "LEGO_CA_CERTIFICATES").unwrap();
    let templates: Vec<String> = task
        .body()
        .blocks()
        .filter(|b| b.identifier() == "template")
        .filter_map(|b| attribute_string(b.body(), "destination"))
        .map(|d| format!("/{d}"))
        .collect();
    assert!(
        templates.contains(&root),
        "{root} is not written by a template: {templates:?}"
    );
}

#[test]
fn the_kubernetes_issuer_points_at_the_certgate_it_deploys() {
    let config = kubernetes_certgate_config(KUBERNETES_CONFIGS[0]);
    let issuer_docs = yaml("deploy/kubernetes/clusterissuer.yaml");
    let acme = &issuer_docs[0]["spec"]["acme"];
    let server = acme["server"].as_str().unwrap();
    // The Service maps 443 to certgate's listener.
    let profile = assert_directory_of(server, &config, 443, "clusterissuer.yaml")
        .expect("the issuer names a profile");
    let flags: certgate::config::ServeFlags = toml::from_str(&config).unwrap();
    assert_eq!(flags.profiles[&profile].eab.as_deref(), Some("required"));
    assert!(acme["externalAccountBinding"]["keySecretRef"]["name"]
        .as_str()
        .is_some());

    let service = &yaml("deploy/kubernetes/service.yaml")[0];
    let deployment = &yaml("deploy/kubernetes/deployment.yaml")[0];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let https = container["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str() == Some("https"))
        .unwrap();
    let listen = flags.listen.unwrap();
    assert_eq!(
        https["containerPort"].as_i64(),
        Some(i64::from(listen.port()))
    );
    assert!(service["spec"]["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .any(|p| p["port"].as_i64() == Some(443) && p["targetPort"].as_str() == Some("https")));
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/health")
    );
    let mounts = container["volumeMounts"].as_vec().unwrap();
    assert!(mounts
        .iter()
        .any(|m| m["mountPath"].as_str().map(PathBuf::from) == flags.data_dir));
    assert!(mounts
        .iter()
        .any(|m| m["mountPath"].as_str() == Some("/etc/certgate")));
    assert_eq!(
        container["args"]
            .as_vec()
            .unwrap()
            .last()
            .and_then(|a| a.as_str()),
        Some("/etc/certgate/certgate.toml")
    );

    // The whole kustomization is there.
    let kustomization = &yaml("deploy/kubernetes/kustomization.yaml")[0];
    for resource in kustomization["resources"].as_vec().unwrap() {
        let file = format!("deploy/kubernetes/{}", resource.as_str().unwrap());
        assert!(repo().join(&file).exists(), "{file} is missing");
    }
}

/// A number attribute (`count = 2`, `gid = 65532`).
fn attribute_number(body: &hcl::Body, key: &str) -> Option<u64> {
    match body.attributes().find(|a| a.key() == key)?.expr() {
        hcl::Expression::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// The args of the task's container in the Nomad job `file`.
fn nomad_args(file: &str) -> Vec<String> {
    let job = hcl::parse(&read(file)).unwrap();
    let task = block(&job, &["job", "group", "task"]);
    attribute_strings(block(task.body(), &["config"]).body(), "args")
}

/// The pod template's first container of the Deployment in `file`.
fn kubernetes_container(file: &str) -> Yaml {
    yaml(file)[0]["spec"]["template"]["spec"]["containers"][0].clone()
}

fn yaml_strings(list: &Yaml) -> Vec<String> {
    list.as_vec()
        .unwrap()
        .iter()
        .map(|item| item.as_str().unwrap().to_owned())
        .collect()
}

/// Each command line that starts certgate under deploy/ is `serve` with
/// flags `certgate serve --help` lists, and a config file it can read.
#[test]
fn every_serve_command_line_uses_flags_certgate_knows() {
    let help = text(&certgate(&["serve", "--help"]));
    let mut command_lines: Vec<(String, Vec<String>)> = NOMAD_JOBS
        .iter()
        .map(|job| (job.to_string(), nomad_args(job)))
        .collect();
    for file in [
        "deploy/kubernetes/deployment.yaml",
        "deploy/kubernetes/replicated/deployment.yaml",
    ] {
        let args = yaml_strings(&kubernetes_container(file)["args"]);
        command_lines.push((file.to_owned(), args));
    }
    for (origin, args) in &command_lines {
        assert_eq!(args.first().map(String::as_str), Some("serve"), "{origin}");
        for flag in args.iter().filter(|a| a.starts_with("--")) {
            let name = flag.split('=').next().unwrap();
            assert!(
                help.contains(&format!("{name} <")) || help.contains(&format!("{name}\n")),
                "{origin}: `certgate serve --help` has no {name}"
            );
        }
        assert!(args.contains(&"--config".to_owned()), "{origin}");
    }
}

/// Where a Kubernetes container mounts `path` from (the mount whose
/// folder is `path`): the volume, and whether the mount is read-only.
fn kubernetes_volume_at(deployment: &Yaml, path: &Path) -> (Yaml, bool) {
    let pod = &deployment["spec"]["template"]["spec"];
    let mounts = pod["containers"][0]["volumeMounts"].as_vec().unwrap();
    let mount = mounts
        .iter()
        .find(|m| m["mountPath"].as_str().map(Path::new) == Some(path))
        .unwrap_or_else(|| panic!("nothing is mounted at {}", path.display()));
    let name = mount["name"].as_str().unwrap();
    let volume = pod["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| v["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no volume {name}"))
        .clone();
    (volume, mount["readOnly"].as_bool() == Some(true))
}

#[test]
fn the_replicated_kubernetes_variant_shares_the_database_ca_and_eab_key() {
    let config = kubernetes_certgate_config(KUBERNETES_CONFIGS[1]);
    let flags: certgate::config::ServeFlags = toml::from_str(&config).unwrap();
    assert_eq!(flags.database_url, None, "the URL comes from a Secret");
    let deployment = &yaml("deploy/kubernetes/replicated/deployment.yaml")[0];
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"].as_i64(), Some(2));
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    let database = container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("CERTGATE_DATABASE_URL"))
        .expect("CERTGATE_DATABASE_URL in the container's env");
    assert!(database["valueFrom"]["secretKeyRef"]["name"]
        .as_str()
        .is_some());
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/ready")
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/health")
    );
    let args = yaml_strings(&container["args"]);
    let config_file = Path::new(args.last().unwrap());
    let (volume, read_only) = kubernetes_volume_at(deployment, config_file.parent().unwrap());
    assert!(read_only && volume["configMap"]["name"].as_str().is_some());

    // The CA folder and the folder of eab.key are Secrets, read-only, their
    // files 0440 and read through the pod's fsGroup.
    let ca_dir = flags.ca_dir.unwrap();
    let eab_key_file = flags.eab_key_file.unwrap();
    for folder in [ca_dir.as_path(), eab_key_file.parent().unwrap()] {
        let (volume, read_only) = kubernetes_volume_at(deployment, folder);
        assert!(read_only, "{} is mounted writable", folder.display());
        assert!(volume["secret"]["secretName"].as_str().is_some());
        assert_eq!(volume["secret"]["defaultMode"].as_i64(), Some(0o440));
    }
    assert!(pod["securityContext"]["fsGroup"].as_i64().is_some());
    let (data, _) = kubernetes_volume_at(deployment, flags.data_dir.as_deref().unwrap());
    assert!(
        !data["emptyDir"].is_badvalue(),
        "each pod's data dir is its own"
    );

    // The Service in front selects these pods, on their HTTPS port.
    let pod_labels = &spec["template"]["metadata"]["labels"];
    let service = &yaml("deploy/kubernetes/service.yaml")[0];
    let budget = &yaml("deploy/kubernetes/replicated/poddisruptionbudget.yaml")[0];
    for (selector, origin) in [
        (&service["spec"]["selector"], "service.yaml"),
        (
            &budget["spec"]["selector"]["matchLabels"],
            "poddisruptionbudget.yaml",
        ),
    ] {
        for (key, value) in selector.as_hash().unwrap() {
            assert_eq!(&pod_labels[key.as_str().unwrap()], value, "{origin}");
        }
    }
    let ports: Vec<&str> = container["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for port in service["spec"]["ports"].as_vec().unwrap() {
        assert!(ports.contains(&port["targetPort"].as_str().unwrap()));
    }
}

#[test]
fn the_replicated_nomad_job_shares_the_database_ca_and_eab_key() {
    let file = NOMAD_JOBS[1];
    let job = hcl::parse(&read(file)).unwrap();
    let group = block(&job, &["job", "group"]);
    assert_eq!(attribute_number(group.body(), "count"), Some(2));
    let constraint = block(group.body(), &["constraint"]);
    assert_eq!(
        attribute_string(constraint.body(), "operator").as_deref(),
        Some("distinct_hosts")
    );
    assert!(
        group.body().blocks().all(|b| b.identifier() != "volume"),
        "no shared host volume"
    );

    // Readiness on /ready; liveness on /health, restarting the task.
    let service = block(group.body(), &["service"]);
    let checks: Vec<&hcl::Block> = service
        .body()
        .blocks()
        .filter(|b| b.identifier() == "check")
        .collect();
    let check_on = |path: &str| {
        *checks
            .iter()
            .find(|c| attribute_string(c.body(), "path").as_deref() == Some(path))
            .unwrap_or_else(|| panic!("no check on {path}"))
    };
    check_on("/ready");
    let health = check_on("/health");
    assert!(health
        .body()
        .blocks()
        .any(|b| b.identifier() == "check_restart"));

    // The database URL from a variable, as an environment variable; the CA
    // and eab.key written where the config says, root's and 0440.
    let task = block(group.body(), &["task"]);
    let templates: Vec<&hcl::Block> = task
        .body()
        .blocks()
        .filter(|b| b.identifier() == "template")
        .collect();
    let env = templates
        .iter()
        .find(|t| {
            attribute_string(t.body(), "data").is_some_and(|d| d.contains("CERTGATE_DATABASE_URL="))
        })
        .expect("a template with CERTGATE_DATABASE_URL");
    assert!(env
        .body()
        .attributes()
        .any(|a| a.key() == "env" && matches!(a.expr(), hcl::Expression::Bool(true))));
    let flags: certgate::config::ServeFlags = toml::from_str(&nomad_certgate_config(file)).unwrap();
    assert_eq!(flags.database_url, None, "the URL comes from the variable");
    let ca_dir = flags.ca_dir.unwrap();
    let secrets = ["root.pem", "intermediate.pem", "intermediate.key"]
        .map(|name| ca_dir.join(name))
        .into_iter()
        .chain([flags.eab_key_file.unwrap()]);
    for path in secrets {
        let destination = path.strip_prefix("/").unwrap().to_str().unwrap().to_owned();
        let template = templates
            .iter()
            .find(|t| attribute_string(t.body(), "destination") == Some(destination.clone()))
            .unwrap_or_else(|| panic!("no template writes {}", path.display()));
        assert_eq!(
            attribute_string(template.body(), "perms").as_deref(),
            Some("0440"),
            "{destination}"
        );
        assert_eq!(attribute_number(template.body(), "uid"), Some(0));
        assert!(attribute_number(template.body(), "gid").is_some_and(|gid| gid != 0));
    }
}

#[test]
fn the_traefik_resolvers_point_at_the_example_certgate() {
    let config = read("deploy/certgate.example.toml");
    let (_, port) = served_names(&config);
    for file in [
        "deploy/traefik/traefik-http01.yml",
        "deploy/traefik/traefik-dns01.yml",
    ] {
        let docs = yaml(file);
        let acme = &docs[0]["certificatesResolvers"]["certgate"]["acme"];
        assert_directory_of(acme["caServer"].as_str().unwrap(), &config, port, file);
        let challenges = ["httpChallenge", "dnsChallenge", "tlsChallenge"]
            .iter()
            .filter(|c| !acme[**c].is_badvalue())
            .count();
        assert_eq!(challenges, 1, "{file}: one challenge type");
        assert!(acme["storage"].as_str().is_some(), "{file}: acme.storage");
    }
}

// ---------------------------------------------------------------------------
// systemd and the container image.

/// File descriptors certgate needs with the default connection cap on all
/// three listeners (ACME, admin, metrics).
fn files_needed_by_default() -> u64 {
    let config = certgate::config::Config::load(certgate::config::ServeFlags {
        admin_listen: Some("127.0.0.1:8444".parse().unwrap()),
        admin_token_file: Some("/etc/certgate/admin-token".into()),
        metrics_listen: Some("127.0.0.1:9090".parse().unwrap()),
        ..Default::default()
    })
    .unwrap();
    certgate::app::open_files_needed(&config)
}

/// `Key=value` lines of a systemd unit, in order.
fn unit_settings(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .filter(|l| !l.trim_start().starts_with(['#', ';', '[']))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn the_systemd_unit_verifies_and_runs_the_example_config() {
    let unit = read("deploy/systemd/certgate.service");
    let settings = unit_settings(&unit);
    let setting = |key: &str| {
        settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("certgate.service has no {key}="))
    };
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(setting(key), value, "{key}");
    }
    let file_limit: u64 = setting("LimitNOFILE").parse().unwrap();
    assert!(
        file_limit >= files_needed_by_default(),
        "LimitNOFILE={file_limit} is below {}",
        files_needed_by_default()
    );
    // The data directory systemd makes is the example config's data_dir.
    let example: certgate::config::ServeFlags =
        toml::from_str(&read("deploy/certgate.example.toml")).unwrap();
    assert_eq!(
        example.data_dir,
        Some(Path::new("/var/lib").join(setting("StateDirectory")))
    );

    // systemd-analyze checks every directive; it needs ExecStart's binary to
    // exist, so the copy it reads names the one just built.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("certgate.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/certgate", CERTGATE)).unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze (Debian's systemd package; scripts/test.sh installs it)");
    assert!(
        verify.status.success() && verify.stderr.is_empty() && verify.stdout.is_empty(),
        "systemd-analyze verify:\n{}",
        text(&verify)
    );

    // The check before each start passes with the config the README installs.
    let pre = setting("ExecStartPre");
    let args: Vec<String> = pre
        .split_whitespace()
        .skip(1)
        .map(|a| match a {
            "/etc/certgate/certgate.toml" => repo()
                .join("deploy/certgate.example.toml")
                .display()
                .to_string(),
            other => other.to_owned(),
        })
        .collect();
    assert_eq!(args[..2], ["check-config", "--offline"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = certgate(&args);
    assert!(output.status.success(), "{pre}:\n{}", text(&output));
    assert!(setting("ExecStart").ends_with("serve --config /etc/certgate/certgate.toml"));
}

/// The lines of a shell script that run something (not comments, not echo).
fn commands(script: &str) -> Vec<String> {
    script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("echo "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_image_is_built_by_the_script_ci_runs() {
    let dockerfile = read("deploy/docker/Dockerfile");
    let build_stage: Vec<&str> = dockerfile
        .split("\nFROM ")
        .find(|stage| stage.contains(" AS build"))
        .expect("a build stage")
        .lines()
        .collect();
    let runs: Vec<&&str> = build_stage
        .iter()
        .filter(|l| l.starts_with("RUN "))
        .collect();
    assert_eq!(runs.len(), 1, "one RUN in the build stage: {runs:?}");
    assert!(
        runs[0].starts_with("RUN bash scripts/build-release.sh "),
        "the build stage builds with scripts/build-release.sh: {}",
        runs[0]
    );
    // What the runtime stage ships is what the script built.
    let run_block: String = dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("RUN "))
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("FROM"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(run_block.contains("install -D -m 0755 target/release/certgate /out/certgate"));
    assert!(dockerfile.contains("COPY --from=build /out/certgate /usr/local/bin/certgate"));
    assert!(dockerfile.contains("USER 65532:65532"));
    assert!(dockerfile.contains("VOLUME [\"/var/lib/certgate\"]"));

    let script = read("scripts/build-release.sh");
    assert!(commands(&script)
        .iter()
        .any(|c| c == "cargo build --release --locked --bin certgate"));
    assert!(
        commands(&read("scripts/test.sh")).contains(&"bash scripts/build-release.sh".to_owned()),
        "scripts/test.sh (run by CI) runs scripts/build-release.sh"
    );

    // The builder's Rust is at least the crate's rust-version.
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    let minimum = manifest["package"]["rust-version"].as_str().unwrap();
    let image = build_stage[0]
        .split_whitespace()
        .find(|w| w.contains("rust:"))
        .unwrap_or(build_stage[0]);
    let tag = image.rsplit(':').next().unwrap();
    let version = |v: &str| -> Vec<u32> {
        v.split(['.', '-'])
            .map_while(|part| part.parse().ok())
            .collect()
    };
    assert!(
        version(tag) >= version(minimum),
        "{image} is older than rust-version {minimum}"
    );
}

/// Panics unless each command of `block` (one a line, a trailing `# …`
/// comment aside) is run word for word by .ci/run or scripts/test.sh;
/// returns how many commands it checked.
fn assert_run_by_ci(block: &str, what: &str) -> usize {
    let ci: Vec<String> = commands(&read(".ci/run"))
        .into_iter()
        .chain(commands(&read("scripts/test.sh")))
        .collect();
    let mut checked = 0;
    for line in block.lines() {
        let command = line.split(" #").next().unwrap().trim();
        if command.is_empty() {
            continue;
        }
        // Run as written: the whole command, followed by nothing but the
        // end of the line, a redirection, `)` or `&`.
        let run = ci.iter().any(|c| {
            c.match_indices(command).any(|(at, _)| {
                c[at + command.len()..]
                    .chars()
                    .next()
                    .is_none_or(|next| matches!(next, ' ' | ')' | '&' | '>' | ';'))
            })
        });
        assert!(
            run,
            "{what}'s `{command}` is not run by .ci/run or scripts/test.sh"
        );
        checked += 1;
    }
    checked
}

#[test]
fn every_quick_start_command_is_run_by_ci() {
    let readme = read("README.md");
    let quick_start = code_blocks(&readme, "sh")
        .into_iter()
        .next()
        .expect("the README opens with a sh block");
    assert!(
        readme.find("```sh") < readme.find("\n## "),
        "the first sh block is the quick start, before any section"
    );
    let checked = assert_run_by_ci(&quick_start, "the quick start");
    assert!(checked >= 2, "the quick start has {checked} commands");
}

/// The README's prerequisites name the Rust version Cargo.toml requires.
#[test]
fn the_readme_names_the_rust_version_cargo_requires() {
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    let minimum = manifest["package"]["rust-version"].as_str().unwrap();
    let readme = read("README.md");
    let prerequisites = readme
        .split("\n## ")
        .find(|s| s.starts_with("Prerequisites"))
        .expect("the README has a section \"Prerequisites\"");
    assert!(
        prerequisites.contains(&format!("Rust {minimum} or later")),
        "the README's prerequisites do not say Rust {minimum} or later:\n{prerequisites}"
    );
    assert!(prerequisites.contains("libssl-dev") && prerequisites.contains("pkg-config"));
}

/// The README's first certificate is run by CI against the quick start's
/// server, word for word, as the quick start is.
#[test]
fn every_first_certificate_command_is_run_by_ci() {
    let readme = read("README.md");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("A first certificate"))
        .expect("the README has a section \"A first certificate\"");
    let block = code_blocks(section, "sh")
        .into_iter()
        .next()
        .expect("the first-certificate section has a sh block");
    assert!(
        block.contains("lego ") && block.contains("-d localhost"),
        "the first certificate is lego's, for localhost:\n{block}"
    );
    let checked = assert_run_by_ci(&block, "the first certificate");
    assert!(checked >= 2, "the first certificate has {checked} commands");
    // The quick start's server is the one it runs against: the same
    // directory URL and root file as the server started with no settings.
    assert!(
        block.contains("--server https://127.0.0.1:8443/acme/directory")
            && block.contains("LEGO_CA_CERTIFICATES=certgate-data/ca/root.pem"),
        "{block}"
    );
}

// ---------------------------------------------------------------------------
// Docs.

/// Every string literal in a Rust source text, unescaped.
fn string_literals(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut literals = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            // A char literal ('"', '\'', 'x'); a lifetime ('a) has no closing quote.
            '\'' => {
                if chars.get(i + 1) == Some(&'\\') {
                    i += 2;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if chars.get(i + 2) == Some(&'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            'r' if matches!(chars.get(i + 1), Some('"' | '#'))
                && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')) =>
            {
                let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
                let start = i + 2 + hashes;
                if chars.get(start - 1) != Some(&'"') {
                    i += 1;
                    continue;
                }
                let closing: Vec<char> = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let mut end = start;
                while end + closing.len() <= chars.len()
                    && chars[end..end + closing.len()] != closing[..]
                {
                    end += 1;
                }
                literals.push(chars[start..end].iter().collect());
                i = end + closing.len();
            }
            '"' => {
                let mut literal = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        match chars.get(i + 1) {
                            Some('n') => literal.push('\n'),
                            Some('t') => literal.push('\t'),
                            // A line continuation drops the newline and the indentation.
                            Some('\n') => {
                                i += 2;
                                while i < chars.len() && chars[i].is_whitespace() {
                                    i += 1;
                                }
                                continue;
                            }
                            Some(c) => literal.push(*c),
                            None => {}
                        }
                        i += 2;
                    } else {
                        literal.push(chars[i]);
                        i += 1;
                    }
                }
                literals.push(literal);
                i += 1;
            }
            _ => i += 1,
        }
    }
    literals
}

/// A format string as alternating literal text and placeholders:
/// `"{kind} lookup of {name}"` → `[None, " lookup of ", None]`.
fn format_parts(literal: &str) -> Vec<Option<String>> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut chars = literal.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('{', Some('{')) | ('}', Some('}')) => {
                chars.next();
                text.push(c);
            }
            ('{', _) => {
                for inner in chars.by_ref() {
                    if inner == '}' {
                        break;
                    }
                }
                if !text.is_empty() {
                    parts.push(Some(std::mem::take(&mut text)));
                }
                parts.push(None);
            }
            _ => text.push(c),
        }
    }
    if !text.is_empty() {
        parts.push(Some(text));
    }
    parts
}

/// Whether `quote` is exactly what `parts` produce with some values in the
/// placeholders.
fn produces(parts: &[Option<String>], quote: &str) -> bool {
    match parts.split_first() {
        None => quote.is_empty(),
        Some((Some(text), rest)) => quote
            .strip_prefix(text.as_str())
            .is_some_and(|rest_of_quote| produces(rest, rest_of_quote)),
        Some((None, rest)) => (1..=quote.len())
            .filter(|end| quote.is_char_boundary(*end))
            .any(|end| produces(rest, &quote[end..])),
    }
}

/// A row whose second column starts with `certgate` or `check-config`
/// quotes a text certgate prints: some format string in src/ must produce
/// the whole quote. What stands in a placeholder (a name, an address, a
/// message of Vault's or of the operating system) is not checked.
#[test]
fn each_certgate_message_in_troubleshooting_comes_from_the_source() {
    let mut formats = Vec::new();
    for path in files_under("src", &[".rs"]) {
        for literal in string_literals(&std::fs::read_to_string(&path).unwrap()) {
            let parts = format_parts(&literal);
            let fixed: usize = parts.iter().flatten().map(|t| t.trim().len()).sum();
            // Placeholders with little text around them would match anything.
            if fixed >= 12 {
                formats.push(parts);
            }
        }
    }
    assert!(
        formats.len() > 100,
        "only {} messages read from src/",
        formats.len()
    );

    let page = read("docs/troubleshooting.md");
    let mut checked = 0;
    for row in page.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let printed_by = cells[1].trim();
        if !(printed_by.starts_with("certgate") || printed_by.starts_with("check-config")) {
            continue;
        }
        let quote = cells[0]
            .trim_start_matches("| `")
            .split('`')
            .next()
            .unwrap();
        assert!(
            formats.iter().any(|parts| produces(parts, quote)),
            "docs/troubleshooting.md quotes `{quote}`, which no message in src/ produces"
        );
        checked += 1;
    }
    assert!(
        checked >= 12,
        "only {checked} certgate messages found in the table"
    );
}

/// The certgate command lines in the sh blocks of a Markdown text: lines
/// joined where they end in `\`, split at `|`, `&&` and `;`, comments
/// dropped, each as its words after `certgate` (a leading `$ `, `sudo` and
/// `VAR=value` words skipped).
fn certgate_command_lines(markdown: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for block in code_blocks(markdown, "sh") {
        let joined = block.replace("\\\n", " ");
        for line in joined.lines() {
            let line = line.split(" #").next().unwrap();
            if line.trim_start().starts_with('#') {
                continue;
            }
            for segment in line.split(['|', ';']).flat_map(|s| s.split("&&")) {
                let mut words = segment
                    .split_whitespace()
                    .skip_while(|w| *w == "$" || *w == "sudo" || w.contains('='));
                if words.next() == Some("certgate") {
                    found.push(words.map(str::to_owned).collect());
                }
            }
        }
    }
    found
}

/// Every `certgate …` command in an sh block of the README, docs/ and
/// deploy/ names subcommands and `--flags` the binary has: each flag is
/// in the `--help` of the subcommand it is given to.
#[test]
fn every_certgate_command_in_the_docs_uses_flags_certgate_knows() {
    let mut pages = vec![repo().join("README.md")];
    pages.extend(files_under("docs", &[".md"]));
    pages.extend(files_under("deploy", &[".md"]));
    let mut helps: std::collections::BTreeMap<Vec<String>, Option<String>> = Default::default();
    let mut help_of = |path: &[String]| -> Option<String> {
        helps
            .entry(path.to_vec())
            .or_insert_with(|| {
                let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
                args.push("--help");
                let output = certgate(&args);
                output
                    .status
                    .success()
                    .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
            })
            .clone()
    };
    let mut checked = 0;
    for page in pages {
        let markdown = std::fs::read_to_string(&page).unwrap();
        for words in certgate_command_lines(&markdown) {
            // The subcommand path: the leading words that name a command
            // (`certs list`), up to the first flag or argument.
            let mut path: Vec<String> = Vec::new();
            for word in words.iter().take_while(|w| !w.starts_with('-')) {
                let mut longer = path.clone();
                longer.push(word.clone());
                if help_of(&longer).is_none() {
                    break;
                }
                path = longer;
            }
            assert!(
                !path.is_empty(),
                "{}: `certgate {}` names no command certgate has",
                shown(&page),
                words.join(" ")
            );
            let help = help_of(&path).unwrap();
            assert!(
                !help.contains("\nCommands:"),
                "{}: `certgate {}` stops at `{}`, which needs one of its commands",
                shown(&page),
                words.join(" "),
                path.join(" ")
            );
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                let name = flag.split('=').next().unwrap();
                assert!(
                    name == "--help"
                        || help.contains(&format!("{name} "))
                        || help.contains(&format!("{name}\n")),
                    "{}: `certgate {}` gives {name}, which `certgate {} --help` does not list",
                    shown(&page),
                    words.join(" "),
                    path.join(" ")
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} certgate commands found");
    // The reader itself: continuation lines, pipes, prompts and comments.
    assert_eq!(
        certgate_command_lines(
            "```sh\n$ sudo X=1 certgate certs list \\\n  --json | jq . # --nope\ncurl x | certgate ca verify --fingerprint F\n```\n"
        ),
        [
            vec!["certs", "list", "--json"],
            vec!["ca", "verify", "--fingerprint", "F"]
        ]
    );
}

#[test]
fn relative_links_lead_to_files() {
    let mut pages = vec![repo().join("README.md")];
    pages.extend(files_under("docs", &[".md"]));
    pages.extend(files_under("deploy", &[".md"]));
    let mut links = 0;
    for page in pages {
        let markdown = std::fs::read_to_string(&page).unwrap();
        for (at, _) in markdown.match_indices("](") {
            let target = markdown[at + 2..].split(')').next().unwrap();
            let target = target.split('#').next().unwrap();
            if target.is_empty() || target.contains("://") {
                continue;
            }
            let path = page.parent().unwrap().join(target);
            assert!(
                path.exists(),
                "{}: link to {target}, which does not exist",
                shown(&page)
            );
            links += 1;
        }
    }
    assert!(links >= 10, "only {links} relative links found");
}

#[test]
fn the_test_helpers_read_what_they_should() {
    assert_eq!(
        format_parts("{kind} lookup of {name}: {{x}}"),
        [
            None,
            Some(" lookup of ".to_owned()),
            None,
            Some(": {x}".to_owned())
        ]
    );
    assert!(produces(
        &format_parts("fetching {url} ({name}): {why}"),
        "fetching a (b) (c): d (e)"
    ));
    assert!(!produces(
        &format_parts("fetching {url}: done"),
        "fetching a: done!"
    ));
    assert_eq!(
        string_literals("let c = '\"'; f(\"a \\\"b\\\"\", r#\"c \"d\"\"#); // \"e\"\n"),
        ["a \"b\"", "c \"d\""]
    );
    assert_eq!(
        keys_by_table(
            "a = 1\n# b = 2\n[profiles.x]\nissuer = \"local\"\n[vault.auth]\n#   role = \"r\"\n"
        ),
        [
            ("".to_owned(), "a".to_owned()),
            ("".to_owned(), "b".to_owned()),
            ("profiles.*".to_owned(), "issuer".to_owned()),
            ("vault.auth".to_owned(), "role".to_owned()),
        ]
    );
    assert_eq!(
        code_blocks("```sh\na\n```\n```toml\nb = 1\n```\n", "toml"),
        ["b = 1\n"]
    );
}
