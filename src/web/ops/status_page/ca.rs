//! The status page's part on the CAs: the warnings of the last CA health
//! check at the top, and each CA's certificates and CRL.

use std::fmt::Write;

use super::html::{escape, time_element};
use crate::domain::ca_health::CaReport;

/// The warnings, as a list under the summary; nothing when there are none.
pub fn warnings(html: &mut String, report: Option<&CaReport>) {
    let warnings = report.map(CaReport::warnings).unwrap_or_default();
    if warnings.is_empty() {
        return;
    }
    html.push_str("<ul id=\"ca-warnings\">\n");
    for warning in warnings {
        let _ = writeln!(html, "<li class=\"ca-warning\">{}</li>", escape(&warning));
    }
    html.push_str("</ul>\n");
}

/// A table of every CA certificate and CRL the last check read.
pub fn table(html: &mut String, report: Option<&CaReport>) {
    html.push_str("<h2>CAs</h2>\n");
    let Some(report) = report else {
        html.push_str("<p id=\"no-ca-check\" class=\"note\">The CAs are being checked.</p>\n");
        return;
    };
    let _ = write!(
        html,
        "<p class=\"note\">Checked {}, and every hour.</p>\n\
         <table id=\"cas\">\n<thead><tr><th>CA</th><th>Certificate</th><th>Not after</th></tr></thead>\n<tbody>\n",
        time_element(report.checked_at)
    );
    for ca in &report.cas {
        let name = escape(&ca.name);
        let state = match &ca.state {
            Ok(state) => state,
            Err(why) => {
                let _ = writeln!(
                    html,
                    "<tr class=\"check problem\" data-ca=\"{name}\"><th>{name}</th>\
                     <td colspan=\"2\">{}</td></tr>",
                    escape(why)
                );
                continue;
            }
        };
        for certificate in &state.certificates {
            let short = report
                .short
                .iter()
                .any(|s| s.ca == ca.name && s.certificate == *certificate);
            let _ = writeln!(
                html,
                "<tr class=\"ca-certificate{}\" data-ca=\"{name}\" data-not-after=\"{}\">\
                 <th>{name}</th><td>{}</td><td class=\"not-after\">{}</td></tr>",
                if short { " overdue" } else { "" },
                certificate.not_after,
                escape(&certificate.subject),
                time_element(certificate.not_after),
            );
        }
        if let Some(next) = state.crl_next_update {
            let stale = state.crl_is_stale(report.checked_at);
            let _ = writeln!(
                html,
                "<tr class=\"crl{}\" data-ca=\"{name}\" data-next-update=\"{next}\">\
                 <th>{name}</th><td>CRL, next update{}</td><td class=\"not-after\">{}</td></tr>",
                if stale { " overdue" } else { "" },
                if stale { " (stale)" } else { "" },
                time_element(next),
            );
        }
    }
    html.push_str("</tbody>\n</table>\n");
}
