//! What an HTTP-01 failure tells the client. Enough to fix their own setup
//! (the URL, the status code, the address the first request went to, why
//! it could not connect), but nothing that would make certgate a way to read
//! or map other services: a body is quoted only when it was the first
//! answer and looks like an attempt at a key authorization, and what went
//! wrong after a redirect is not told in detail.

use std::error::Error as StdError;

use super::egress::refusal_in;

/// Longest body quoted: a key authorization is a token of 43 characters,
/// '.', and a thumbprint of 43; a little room for a wrong one.
const QUOTABLE_LEN: usize = 128;

/// True when `body` (trailing whitespace aside) is short and made only of
/// the characters of a key authorization: base64url and '.'.
fn looks_like_key_authorization(body: &[u8]) -> bool {
    let text = body.trim_ascii_end();
    !text.is_empty()
        && text.len() <= QUOTABLE_LEN
        && text
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A body for a problem's detail: quoted when it is a first answer that
/// looks like a key authorization, otherwise only its size. `complete` is
/// false when reading stopped at the size limit.
pub(super) fn body(body: &[u8], first_hop: bool, complete: bool) -> String {
    if first_hop && complete && looks_like_key_authorization(body) {
        let text = String::from_utf8_lossy(body.trim_ascii_end());
        return format!("{text:?}");
    }
    let size = match (complete, body.len()) {
        (false, n) => format!("at least {n} bytes"),
        (true, 1) => "1 byte".to_owned(),
        (true, n) => format!("{n} bytes"),
    };
    let quoted = if first_hop {
        "not quoted: not a key authorization"
    } else {
        "not quoted: fetched after a redirect"
    };
    format!("{size} ({quoted})")
}

/// The error and its causes on one line: reqwest's top-level message alone
/// ("error sending request") does not tell a user what to fix.
fn causes(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Why a fetch failed. A refusal by policy is told as is, wherever it
/// happened; a failure of the first request in full ("connection refused");
/// a failure after a redirect only as such, so that redirects cannot be
/// used to learn which internal hosts and ports answer.
pub(super) fn failure(e: &reqwest::Error, first_url: &str) -> String {
    if let Some(refused) = refusal_in(e) {
        return refused.to_string();
    }
    match e.url() {
        Some(url) if url.as_str() != first_url => {
            format!("the redirect to {url} could not be followed to an answer")
        }
        _ => causes(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN_AND_THUMBPRINT: &str =
        "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

    #[test]
    fn a_first_answer_that_looks_like_a_key_authorization_is_quoted() {
        for candidate in [TOKEN_AND_THUMBPRINT, "abc.def", "token.wrong-thumbprint_"] {
            let shown = body(format!("{candidate}\r\n").as_bytes(), true, true);
            assert_eq!(shown, format!("{candidate:?}"));
        }
    }

    #[test]
    fn anything_else_is_only_counted() {
        for (answer, size) in [
            ("<html>secret</html>", 19),
            ("token with spaces", 17),
            ("a.b\nsecond line", 15),
            ("{\"AccessKeyId\":\"x\"}", 19),
        ] {
            let shown = body(answer.as_bytes(), true, true);
            assert_eq!(
                shown,
                format!("{size} bytes (not quoted: not a key authorization)")
            );
        }
        let long = "a".repeat(QUOTABLE_LEN + 1);
        assert!(!body(long.as_bytes(), true, true).contains("aaa"));
        assert!(body(b"", true, true).starts_with("0 bytes"));
        let truncated = body(b"abc.def", true, false);
        assert_eq!(
            truncated,
            "at least 7 bytes (not quoted: not a key authorization)"
        );
    }

    #[test]
    fn nothing_fetched_after_a_redirect_is_quoted() {
        let shown = body(TOKEN_AND_THUMBPRINT.as_bytes(), false, true);
        assert!(!shown.contains(TOKEN_AND_THUMBPRINT), "{shown}");
        assert!(shown.contains("after a redirect"), "{shown}");
        assert_eq!(
            body(b"x", false, true),
            "1 byte (not quoted: fetched after a redirect)"
        );
    }
}
