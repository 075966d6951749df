//! The status page's HTML. Every piece of text that comes from the
//! configuration, the database or Vault goes through [`escape`]; rows carry
//! stable ids, classes and `data-` attributes so that tools can read the page
//! as well as people.

use std::fmt::Write;

use super::html::{escape, time_element};

use crate::domain::readiness::{CheckSubject, Readiness};

/// The page's only stylesheet; its hash is what the Content-Security-Policy
/// allows.
pub const STYLE: &str = "\
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:75em;padding:0 1em;color:#1b1b1b}\
table{border-collapse:collapse;width:100%;margin-bottom:2em}\
th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #ddd;vertical-align:top}\
thead th{border-bottom:2px solid #999}\
.ok .state,.check.ok td,.ready{color:#1a7f37}\
.problem .state,.check.problem td,.not-ready{color:#b42318;font-weight:600}\
.default,.note{color:#666}\
meter{width:10em}\
.renewal-due .not-after{color:#9a6700}\
.overdue .not-after,.ca-warning{color:#b42318;font-weight:600}";

pub struct ProfileRow {
    pub name: String,
    pub is_default: bool,
    pub issuer: String,
    pub description: String,
    pub directory: String,
    pub outcome: Result<String, String>,
}

pub struct CertificateRow {
    pub serial: String,
    pub names: Vec<String>,
    pub profile: String,
    pub not_before: i64,
    pub not_after: i64,
    /// Where its profile suggests renewing (ARI's window, unix seconds).
    pub renewal_window: (i64, i64),
}

pub struct StatusPage {
    pub now: i64,
    pub readiness: std::sync::Arc<Readiness>,
    pub profiles: Vec<ProfileRow>,
    /// `None` where the page is not to list certificates (the public
    /// listener, unless `status-page-certificates` is on).
    pub certificates: Option<Vec<CertificateRow>>,
    /// How many certificates the page lists at most.
    pub limit: i64,
    /// The last CA health check, once there is one.
    pub ca: Option<std::sync::Arc<crate::domain::ca_health::CaReport>>,
}

/// "in 3 days", "in 5 hours", "in 12 minutes": coarse enough to read at a
/// glance, exact at the `<time>` beside it.
fn in_words(seconds: i64) -> String {
    let (count, unit) = match seconds {
        s if s >= 2 * 86_400 => (s / 86_400, "days"),
        s if s >= 2 * 3_600 => (s / 3_600, "hours"),
        s if s >= 120 => (s / 60, "minutes"),
        s => (s.max(0), "seconds"),
    };
    format!("in {count} {unit}")
}

/// Where a certificate stands: before the window its profile suggests for
/// renewal, inside it, or past it (its client should have renewed).
fn stage(row: &CertificateRow, now: i64) -> &'static str {
    let (start, end) = row.renewal_window;
    if now < start {
        "fresh"
    } else if now < end {
        "renewal-due"
    } else {
        "overdue"
    }
}

/// A bar of the lifetime left: a `<meter>` whose value is the fraction of
/// not-before→not-after still ahead. Its `high` and `low` marks are where
/// the renewal window opens and closes, so browsers colour it green before
/// the window, amber inside, red past it.
fn lifetime_bar(row: &CertificateRow, now: i64) -> String {
    let lifetime = (row.not_after - row.not_before).max(1) as f64;
    let left = |at: i64| ((row.not_after - at) as f64 / lifetime).clamp(0.0, 1.0);
    let value = left(now);
    let percent = (value * 100.0).round();
    format!(
        "<meter class=\"lifetime\" min=\"0\" max=\"1\" low=\"{:.3}\" high=\"{:.3}\" optimum=\"1\" \
         value=\"{value:.3}\" title=\"{percent}% of its lifetime left\">{percent}%</meter>",
        left(row.renewal_window.1),
        left(row.renewal_window.0),
    )
}

fn outcome_class<T>(outcome: &Result<T, String>) -> &'static str {
    if outcome.is_ok() {
        "ok"
    } else {
        "problem"
    }
}

fn outcome_text(outcome: &Result<String, String>) -> String {
    match outcome {
        Ok(note) if note.is_empty() => "ok".to_owned(),
        Ok(note) => format!("ok ({})", escape(note)),
        Err(problem) => escape(problem),
    }
}

fn summary(html: &mut String, page: &StatusPage) {
    let (class, text) = if page.readiness.is_ready() {
        ("ready", "Ready")
    } else {
        ("not-ready", "Not ready")
    };
    let _ = write!(
        html,
        "<p id=\"summary\" class=\"{class}\" data-ready=\"{}\">{text}</p>\n\
         <p class=\"note\">certgate {} · {}</p>\n",
        page.readiness.is_ready(),
        escape(env!("CARGO_PKG_VERSION")),
        time_element(page.now),
    );
}

fn profiles(html: &mut String, page: &StatusPage) {
    html.push_str(
        "<h2>Profiles</h2>\n<table id=\"profiles\">\n<thead><tr><th>Profile</th><th>Issuer</th>\
         <th>Description</th><th>ACME directory</th><th>State</th></tr></thead>\n<tbody>\n",
    );
    for row in &page.profiles {
        let name = escape(&row.name);
        let directory = escape(&row.directory);
        let _ = writeln!(
            html,
            "<tr id=\"profile-{name}\" class=\"profile {}\" data-profile=\"{name}\">\
             <td class=\"name\">{name}{}</td><td class=\"issuer\">{}</td>\
             <td class=\"description\">{}</td>\
             <td class=\"directory\"><a href=\"{directory}\">{directory}</a></td>\
             <td class=\"state\">{}</td></tr>",
            outcome_class(&row.outcome),
            if row.is_default {
                " <span class=\"default\">(default, /acme/directory)</span>"
            } else {
                ""
            },
            escape(&row.issuer),
            escape(&row.description),
            outcome_text(&row.outcome),
        );
    }
    html.push_str("</tbody>\n</table>\n");
}

/// The checks that are not a profile's: the database and Vault.
fn checks(html: &mut String, page: &StatusPage) {
    html.push_str("<h2>Database and Vault</h2>\n<table id=\"checks\">\n<tbody>\n");
    let mut vault_checked = false;
    for check in &page.readiness.checks {
        let kind = match check.subject {
            CheckSubject::Database => "database",
            CheckSubject::Vault { .. } => "vault",
            CheckSubject::Profile { .. } => continue,
        };
        vault_checked |= kind == "vault";
        let _ = writeln!(
            html,
            "<tr class=\"check {}\" data-check=\"{kind}\"><th>{}</th><td>{}</td></tr>",
            outcome_class(&check.outcome),
            escape(&check.subject.to_string()),
            outcome_text(&check.outcome),
        );
    }
    if !vault_checked {
        html.push_str(
            "<tr class=\"check\" data-check=\"vault\"><th>vault</th>\
             <td>no profile signs through Vault</td></tr>\n",
        );
    }
    html.push_str("</tbody>\n</table>\n");
}

fn certificates(html: &mut String, page: &StatusPage) {
    let Some(certificates) = &page.certificates else {
        html.push_str(
            "<p id=\"certificates-hidden\" class=\"note\">Certificates are listed by the admin API.</p>\n",
        );
        return;
    };
    html.push_str("<h2>Certificates expiring soonest</h2>\n");
    if certificates.is_empty() {
        html.push_str("<p id=\"no-certificates\">No valid certificates.</p>\n");
        return;
    }
    let _ = write!(
        html,
        "<p class=\"note\">The valid certificates that expire soonest, at most {}.</p>\n\
         <table id=\"certificates\">\n<thead><tr><th>Serial</th><th>Names</th><th>Profile</th>\
         <th>Not after</th><th>Lifetime left</th></tr></thead>\n<tbody>\n",
        page.limit
    );
    for row in certificates {
        let serial = escape(&row.serial);
        let profile = escape(&row.profile);
        let names: Vec<String> = row.names.iter().map(|n| escape(n)).collect();
        let _ = writeln!(
            html,
            "<tr id=\"cert-{serial}\" class=\"certificate {}\" data-serial=\"{serial}\" \
             data-profile=\"{profile}\" data-not-after=\"{}\">\
             <td class=\"serial\"><code>{serial}</code></td>\
             <td class=\"names\">{}</td><td class=\"profile\">{profile}</td>\
             <td class=\"not-after\">{} ({})</td><td class=\"remaining\">{}</td></tr>",
            stage(row, page.now),
            row.not_after,
            names.join(", "),
            time_element(row.not_after),
            in_words(row.not_after - page.now),
            lifetime_bar(row, page.now),
        );
    }
    html.push_str("</tbody>\n</table>\n");
}

/// The whole document.
pub fn page(page: &StatusPage) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>certgate status</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>certgate status</h1>\n"
    );
    summary(&mut html, page);
    super::ca::warnings(&mut html, page.ca.as_deref());
    profiles(&mut html, page);
    checks(&mut html, page);
    super::ca::table(&mut html, page.ca.as_deref());
    certificates(&mut html, page);
    html.push_str("</body>\n</html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ca_health::{CaCertificate, CaReport, CaState, CheckedCa, ShortCa};
    use crate::domain::readiness::Check;

    fn certificate(not_before: i64, not_after: i64) -> CertificateRow {
        let third = (not_after - not_before) / 3;
        CertificateRow {
            serial: "0a1b".into(),
            names: vec!["a.lab.example".into(), "b.lab.example".into()],
            profile: "lab".into(),
            not_before,
            not_after,
            renewal_window: (not_before + 2 * third, not_before + 5 * third / 2),
        }
    }

    #[test]
    fn markup_in_configured_text_is_shown_not_run() {
        let short_ca = CaCertificate {
            subject: "<b>intermediate".into(),
            not_after: 10,
        };
        let page = StatusPage {
            now: 0,
            readiness: std::sync::Arc::new(Readiness {
                checks: vec![Check {
                    subject: CheckSubject::Database,
                    outcome: Err("<b>broken</b>".into()),
                }],
            }),
            profiles: vec![ProfileRow {
                name: "lab".into(),
                is_default: true,
                issuer: "embedded CA".into(),
                description: "<script>alert('x')</script> & \"more\"".into(),
                directory: "https://ca.test/acme/lab/directory".into(),
                outcome: Ok(String::new()),
            }],
            certificates: Some(Vec::new()),
            limit: 50,
            ca: Some(std::sync::Arc::new(CaReport {
                checked_at: 0,
                cas: vec![CheckedCa {
                    name: "pki<i>".into(),
                    state: Ok(CaState {
                        certificates: vec![short_ca.clone()],
                        crl_next_update: Some(-1),
                    }),
                }],
                short: vec![ShortCa {
                    profile: "lab".into(),
                    ca: "pki<i>".into(),
                    certificate: short_ca,
                    lifetime: std::time::Duration::from_secs(86_400),
                }],
            })),
        };
        let html = super::page(&page);
        assert!(!html.contains("<i>"), "{html}");
        assert!(
            html.contains("profile lab: CA certificate &quot;&lt;b&gt;intermediate&quot; of pki&lt;i&gt; expires at 1970-01-01T00:00:10Z"),
            "{html}"
        );
        assert!(
            html.contains("the CRL of pki&lt;i&gt; was due for an update at 1969-12-31T23:59:59Z and is stale"),
            "{html}"
        );
        assert!(html.contains("CRL, next update (stale)"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;")
        );
        assert!(html.contains("data-ready=\"false\""));
        assert!(html.contains("no profile signs through Vault"));
        assert!(html.contains("No valid certificates."));
        assert!(!html.contains("certificates-hidden"));

        let hidden = super::page(&StatusPage {
            certificates: None,
            ..page
        });
        assert!(
            !hidden.contains("Certificates expiring soonest"),
            "{hidden}"
        );
        assert!(hidden.contains("id=\"certificates-hidden\""), "{hidden}");
    }

    #[test]
    fn the_bar_is_the_lifetime_left_marked_at_the_renewal_window() {
        let row = certificate(0, 3000);
        let bar = lifetime_bar(&row, 750);
        assert!(bar.contains("value=\"0.750\""), "{bar}");
        assert!(bar.contains("high=\"0.333\""), "{bar}");
        assert!(bar.contains("low=\"0.167\""), "{bar}");
        assert!(bar.contains(">75%</meter>"), "{bar}");
        assert_eq!(stage(&row, 750), "fresh");
        assert_eq!(stage(&row, 2100), "renewal-due");
        assert_eq!(stage(&row, 2600), "overdue");
    }

    #[test]
    fn time_left_is_said_in_the_largest_fitting_unit() {
        assert_eq!(in_words(3 * 86_400 + 5), "in 3 days");
        assert_eq!(in_words(86_400), "in 24 hours");
        assert_eq!(in_words(3_599), "in 59 minutes");
        assert_eq!(in_words(90), "in 90 seconds");
    }
}
