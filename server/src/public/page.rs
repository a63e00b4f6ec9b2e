//! The one layout of every public page: plain HTML that works without JavaScript, in the
//! organisation's name, on a desktop or a phone's screen, with a visible focus for keyboards,
//! styled by one inline stylesheet that the Content-Security-Policy allows
//! by its hash (and allows nothing else: no script, no image, no frame, forms only to the page's
//! own origin).

use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::html::escape;

/// The stylesheet of every page.
const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
margin:0;background:#f5f6f8;color:#1d2330;line-height:1.5}\
main{max-width:36rem;margin:2.5rem auto;padding:2rem;background:#fff;border-radius:12px;\
box-shadow:0 1px 3px rgba(0,0,0,.12)}\
h1{font-size:1.5rem;margin:0 0 1rem}h2{font-size:1.1rem;margin:2rem 0 .5rem}\
p{margin:.5rem 0}.from{color:#5a6270;font-size:.9rem;margin-bottom:1.5rem}\
button{font:inherit;font-weight:600;padding:.65rem 1.2rem;border-radius:8px;border:0;\
background:#1f5fd1;color:#fff;cursor:pointer}button.quiet{background:#e8ebf0;color:#1d2330}\
fieldset{border:1px solid #d7dbe2;border-radius:8px;padding:.75rem 1rem;margin:.5rem 0 1rem}\
label{display:block;margin:.4rem 0}label small{display:block;color:#5a6270;margin-left:1.6rem}\
legend{font-weight:600;padding:0 .3rem}.hint{color:#5a6270;font-size:.9rem;margin:.1rem 0 .4rem}\
.off{color:#5a6270;margin:.4rem 0}a{color:#1f5fd1}\
.done{border-left:4px solid #1f8a4c;padding-left:1rem;margin:0 0 1.25rem}.problem{border-left:4px solid #b3261e;\
padding-left:1rem}footer{color:#5a6270;font-size:.8rem;margin-top:2rem}\
:focus-visible{outline:3px solid #1f5fd1;outline-offset:2px}\
input[type=checkbox],input[type=radio]{width:1.15rem;height:1.15rem;margin:0 .5rem 0 0;vertical-align:-.2rem}\
input[type=email],textarea{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;\
border:1px solid #8a93a3;border-radius:6px;margin:.2rem 0 .8rem}\
@media (max-width:40rem){main{margin:0;border-radius:0;box-shadow:none;padding:1.25rem}}";

/// The Content-Security-Policy of every public answer.
pub fn content_security_policy() -> HeaderValue {
    static POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
        let hash = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            Sha256::digest(STYLE.as_bytes()),
        );
        let policy = format!(
            "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        // Base64 and ASCII words only: always a valid header value.
        HeaderValue::from_str(&policy)
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
    });
    POLICY.clone()
}

/// A page: its title and its body's HTML (already escaped where it holds text).
pub struct Page {
    pub status: StatusCode,
    pub title: String,
    pub organisation: Option<String>,
    pub body: String,
}

impl Page {
    pub fn new(title: impl Into<String>, organisation: Option<&str>) -> Self {
        Page {
            status: StatusCode::OK,
            title: title.into(),
            organisation: organisation.map(str::to_owned),
            body: String::new(),
        }
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds a paragraph of `text` (escaped here).
    pub fn paragraph(mut self, text: &str) -> Self {
        let _ = writeln!(self.body, "<p>{}</p>", escape(text));
        self
    }

    /// Adds HTML the caller has built (and escaped).
    pub fn html(mut self, html: &str) -> Self {
        self.body.push_str(html);
        self
    }

    fn render(&self) -> String {
        let title = escape(&self.title);
        let from = match &self.organisation {
            Some(name) => format!("<p class=\"from\">{}</p>\n", escape(name)),
            None => String::new(),
        };
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"robots\" content=\"noindex, nofollow\">\n\
             <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{from}\
             <h1>{title}</h1>\n{}\n<footer>Assent keeps the record of what you choose here.</footer>\n\
             </main>\n</body>\n</html>\n",
            self.body
        )
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let body = self.render();
        (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_the_one_stylesheet_by_its_hash() {
        let policy = content_security_policy();
        let policy = policy.to_str().unwrap();
        assert!(policy.starts_with("default-src 'none'; style-src 'sha256-"));
        let expected = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            Sha256::digest(STYLE.as_bytes()),
        );
        assert!(policy.contains(&expected));
        assert!(!policy.contains("script-src"), "no script is allowed");
    }

    #[test]
    fn text_on_a_page_is_escaped() {
        let page = Page::new("Tom & <Jerry>", Some("Harbour <Heating>"))
            .paragraph("<script>alert(1)</script>")
            .render();
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("Tom &amp; &lt;Jerry&gt;"));
        assert!(page.contains("Harbour &lt;Heating&gt;"));
    }
}
