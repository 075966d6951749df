//! The two pieces of HTML every part of the status page writes: text made
//! safe, and times.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// Text made safe for HTML content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A `<time>` element for unix seconds: RFC 3339 for machines, minutes in
/// UTC for people.
pub fn time_element(unix: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "<time datetime=\"{}\">{}</time>",
            t.format(&Rfc3339).unwrap_or_default(),
            t.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .unwrap_or_default()
        ),
        Err(_) => format!("<time>{unix}</time>"),
    }
}
