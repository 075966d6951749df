//! The role name rules, one row per rule and edge, each checked end to end
//! through `sign` with the name as the CSR's common name.

use serde_json::json;

use super::common::*;

/// (role, name, allowed). Roles are defined in `lab_config`.
const CASES: &[(&str, &str, bool)] = &[
    // subdomains: the name must end with "." + domain, case-sensitively
    ("sub", "www.lab.example", true),
    ("sub", "a.b.lab.example", true),
    ("sub", "lab.example", false),
    ("sub", "WWW.lab.example", true),
    ("sub", "www.LAB.example", false),
    ("sub", "evillab.example", false),
    ("sub", "www.lab.example.evil", false),
    // bare domains: equal to the domain, case-insensitively
    ("bare", "lab.example", true),
    ("bare", "LAB.Example", true),
    ("bare", "www.lab.example", false),
    // wildcards: one "*" as the whole leftmost label
    ("sub", "*.lab.example", true),
    ("sub", "*.dev.lab.example", true),
    ("nowild", "*.lab.example", false),
    ("sub", "*.*.lab.example", false),
    ("sub", "w*.lab.example", false),
    ("sub", "www.*.lab.example", false),
    ("bare", "*.lab.example", false),
    // globs: "*" matches any run of characters, dots included
    ("glob", "a.svc.lab.example", true),
    ("glob", "a.b.svc.lab.example", true),
    ("glob", "svc.lab.example", false),
    ("glob", "a.svc.lab.example.org", false),
    // localhost and localdomain, unless the role turns them off
    ("sub", "localhost", true),
    ("sub", "localdomain", true),
    ("nolocal", "localhost", false),
    // enforce_hostnames, checked before allow_any_name
    ("sub", "my_host.lab.example", false),
    ("sub", "-bad.lab.example", false),
    ("anyname", "my_host.example.org", false),
    ("anyname-loose", "my_host.example.org", true),
    ("anyname", "anything.example.org", true),
];

#[tokio::test]
async fn role_name_rules_table() {
    let lab = Lab::start().await;
    let mut failures = Vec::new();
    for &(role, name, allowed) in CASES {
        let reply = lab.sign(role, &csr(name, &[]), json!({})).await;
        let expected_error = format!("common name {name} not allowed by this role");
        let as_expected = if allowed {
            reply.status == 200
        } else {
            reply.status == 400 && reply.error() == expected_error
        };
        if !as_expected {
            failures.push(format!(
                "{role} / {name}: wanted allowed={allowed}, got {} {:?}",
                reply.status, reply.body["errors"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn dns_sans_are_checked_after_the_common_name() {
    let lab = Lab::start().await;
    let both_bad = lab
        .sign("sub", &csr("bad.other.org", &["also.bad.org"]), json!({}))
        .await;
    assert_eq!(
        both_bad.error(),
        "common name bad.other.org not allowed by this role"
    );
    let san_bad = lab
        .sign("sub", &csr("ok.lab.example", &["also.bad.org"]), json!({}))
        .await;
    assert_eq!(san_bad.status, 400);
    assert_eq!(
        san_bad.error(),
        "subject alternate name also.bad.org not allowed by this role"
    );
}

#[tokio::test]
async fn ip_sans_need_only_allow_ip_sans() {
    let lab = Lab::start().await;
    let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let allowed = lab
        .sign(
            "sub",
            &csr_with(&ec_key(), "ip.lab.example", &[], &[ip]),
            json!({}),
        )
        .await;
    assert_eq!(allowed.status, 200, "{:?}", allowed.body);
    assert_eq!(
        view(allowed.data()["certificate"].as_str().unwrap()).ips,
        [ip]
    );

    let refused = lab
        .sign(
            "noip",
            &csr_with(&ec_key(), "ip.lab.example", &[], &[ip]),
            json!({}),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.error(),
        "IP Subject Alternative Names are not allowed in this role, but was provided some via CSR"
    );
}

#[tokio::test]
async fn common_name_is_required_unless_the_role_says_otherwise() {
    let lab = Lab::start().await;
    let required = lab
        .sign("sub", &csr("", &["x.lab.example"]), json!({}))
        .await;
    assert_eq!(required.status, 400);
    assert!(
        required.error().contains("common_name field is required"),
        "{}",
        required.error()
    );

    let optional = lab
        .sign("optional-cn", &csr("", &["x.lab.example"]), json!({}))
        .await;
    assert_eq!(optional.status, 200, "{:?}", optional.body);
    assert_eq!(
        view(optional.data()["certificate"].as_str().unwrap()).dns,
        ["x.lab.example"]
    );
}
