//! `GET /`: the status page, one self-contained HTML document (its style and script inline,
//! nothing fetched from elsewhere) that polls `/readyz`, `/metrics`, `/shards`,
//! `/endpoints?state=failing` and `/routes` and draws what it reads.
//!
//! The page itself holds no data, so it is served without the token (to a Host that names the
//! admin address, like every other route but the probes): a browser cannot attach a bearer
//! header to the address the operator types. The operator hands the token to the page in the
//! URL's fragment (`/#token=…`, which browsers never send to a server, so it reaches neither
//! the router nor any log) or pastes it; the script keeps it in the tab's session storage,
//! strips it from the address bar and sends it as `Authorization: Bearer` on its own requests,
//! which the API checks as it checks any client's.
//!
//! The headers keep the page from being turned against its user: a Content-Security-Policy
//! that runs only the page's own style and script (by their SHA-256 hashes, computed here
//! from the very text served) and lets it talk only to this address, with Trusted Types
//! required so that no string can become markup; no framing, no sniffing, no referrer, no
//! caching.
use std::sync::OnceLock;

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

const TEMPLATE: &str = include_str!("page/status.html");
const STYLE: &str = include_str!("page/status.css");
const SCRIPT: &str = include_str!("page/status.js");

/// The page and its Content-Security-Policy, made once.
struct Page {
    html: String,
    csp: HeaderValue,
}

fn page() -> &'static Page {
    static PAGE: OnceLock<Page> = OnceLock::new();
    PAGE.get_or_init(|| {
        let html = TEMPLATE
            .replacen("@STYLE@", STYLE, 1)
            .replacen("@SCRIPT@", SCRIPT, 1);
        let csp = policy(STYLE, SCRIPT);
        Page {
            html,
            // The policy is ASCII made here from base64 and fixed words.
            csp: HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static(
                "default-src 'none'; frame-ancestors 'none'",
            )),
        }
    })
}

/// `'sha256-…'` of an inline element's text, as CSP hashes it.
fn hash_source(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

/// Only the page's own style and script run; it may fetch from this address and nothing else.
fn policy(style: &str, script: &str) -> String {
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
         require-trusted-types-for 'script'; trusted-types 'none'",
        hash_source(script),
        hash_source(style)
    )
}

pub async fn status_page() -> Response {
    let page = page();
    let headers: [(HeaderName, HeaderValue); 7] = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (header::CONTENT_SECURITY_POLICY, page.csp.clone()),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    (StatusCode::OK, headers, page.html.clone()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_whole_and_carries_only_its_own_style_and_script() {
        let html = &page().html;
        assert!(!html.contains("@STYLE@") && !html.contains("@SCRIPT@"));
        // The inline texts end where the template's tags end: nothing in them closes early.
        assert!(!STYLE.contains("</style") && !SCRIPT.contains("</script"));
        assert_eq!(html.matches("<script").count(), 1);
        assert_eq!(html.matches("<style").count(), 1);
        // Nothing from elsewhere: no external script, style sheet, image or font.
        for outside in ["src=", "href=\"http", "@import", "url("] {
            assert!(!html.contains(outside), "{outside}");
        }
        assert!(html.contains(&format!("<style>{STYLE}</style>")));
        assert!(html.contains(&format!("<script>{SCRIPT}</script>")));
    }

    #[test]
    fn the_policy_names_the_hashes_of_exactly_what_is_served() {
        // echo -n 'a' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            hash_source("a"),
            "'sha256-ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs='"
        );
        let csp = page().csp.to_str().unwrap().to_string();
        assert!(csp.contains(&format!("script-src {};", hash_source(SCRIPT))));
        assert!(csp.contains(&format!("style-src {};", hash_source(STYLE))));
        for directive in [
            "default-src 'none'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "require-trusted-types-for 'script'",
        ] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
    }
}
