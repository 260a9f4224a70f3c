//! Secrets as a type: client secrets, tokens and passwords live in [`Secret`], whose `Debug` and
//! `Display` print `***`, so they never reach logs, errors or the lake.
//!
//! A secret is a `Secret` from the moment clap parses it ([`parse_secret`]), so the derived
//! `Debug` of the CLI structs cannot print it. URLs can carry secrets too (a password in the
//! userinfo, a presigned link's signature in the query): whatever convlake prints shows them
//! through [`redact_url`], and HTTP client errors through [`http_error`], which drops the URL
//! reqwest would otherwise put in the message.

use std::fmt;

use url::Url;

/// A string that must never be printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it (an HTTP header, a connection).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the wrapped value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

/// clap's `value_parser` for a secret flag: the value is a [`Secret`] from the start.
pub fn parse_secret(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value))
}

/// A URL fit to print: scheme, host, port and path; no user, password, query or fragment (a
/// query may be a presigned link's signature, userinfo a password). A removed query or fragment
/// is shown as `?…`, so a reader knows the link had one.
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    // These fail only for URLs that cannot have userinfo (cannot-be-a-base): nothing to strip.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let cut = shown.query().is_some() || shown.fragment().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    let mut s = shown.to_string();
    if cut {
        s.push_str("?…");
    }
    s
}

/// [`redact_url`] for text that may not parse as a URL (a relative path, a malformed link):
/// everything from the first `?` or `#` is cut, and so is anything before an `@` in the
/// authority.
pub fn redact_url_str(text: &str) -> String {
    if let Ok(u) = Url::parse(text) {
        return redact_url(&u);
    }
    let (base, cut) = match text.find(['?', '#']) {
        Some(i) => (&text[..i], true),
        None => (text, false),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://{host}{path}"),
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    };
    if cut {
        format!("{base}?…")
    } else {
        base
    }
}

/// The text of an HTTP client error without its URL (reqwest's own message ends in `for url
/// (…)`, the full URL with its query), with its causes ("error sending request" alone says
/// little: the cause says "connection refused" or "invalid peer certificate").
pub fn http_error(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut message = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(e) = cause {
        let text = e.to_string();
        // hyper repeats its cause in its own message at times; say each thing once.
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = e.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn urls_lose_userinfo_query_and_fragment() {
        let u = Url::parse(
            "https://alice:pw@bucket.s3.example:8443/t/c1.json?X-Amz-Signature=abc123#frag",
        )
        .unwrap();
        assert_eq!(redact_url(&u), "https://bucket.s3.example:8443/t/c1.json?…");
        let plain = Url::parse("http://127.0.0.1:9/api").unwrap();
        assert_eq!(redact_url(&plain), "http://127.0.0.1:9/api");
        assert_eq!(
            redact_url_str("/api/v2/x/results?cursor=abc"),
            "/api/v2/x/results?…"
        );
        assert_eq!(
            redact_url_str("postgres://u:pw@h:5432/db?sslmode=require"),
            "postgres://h:5432/db?…"
        );
        // Not a URL the parser accepts, yet the password and the query still go.
        let odd = redact_url_str("http://u:pw@[bad/x?sig=1");
        assert!(!odd.contains("pw") && !odd.contains("sig"), "{odd}");
    }

    #[tokio::test]
    async fn http_errors_do_not_carry_the_url() {
        // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
        let url = "http://127.0.0.1:9/t.json?X-Amz-Signature=deadbeef";
        let e = reqwest::get(url).await.unwrap_err();
        assert!(
            e.to_string().contains("deadbeef"),
            "reqwest's own text has it"
        );
        let text = http_error(e);
        assert!(
            !text.contains("deadbeef") && !text.contains("127.0.0.1"),
            "{text}"
        );
        assert!(text.contains("error sending request"), "{text}");
    }
}
