//! The evidence pack in a viewer window, never saved: the server's HTML is held in memory, served
//! to its own window through the `evidence://` scheme, and dropped when that window closes. The
//! viewer window runs no script and has no command permissions.

use std::collections::HashMap;
use std::sync::Mutex;

/// The scheme the viewer windows load from.
pub const SCHEME: &str = "evidence";

/// What the viewer may load: the page's own inline styles and nothing else; no script, no
/// network, no forms.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

/// Evidence packs open in viewer windows, by the key in their address.
#[derive(Default)]
pub struct EvidencePages {
    pages: Mutex<HashMap<String, String>>,
}

impl EvidencePages {
    fn pages(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // A poisoned lock only means a request panicked while holding it; the map is whole.
        self.pages.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `html` for a new viewer window; returns the key of its address.
    pub fn insert(&self, html: String) -> String {
        let key = uuid::Uuid::new_v4().simple().to_string();
        self.pages().insert(key.clone(), html);
        key
    }

    /// Forgets a page (its window closed).
    pub fn remove(&self, key: &str) {
        self.pages().remove(key);
    }

    /// The answer to a request for `path` (`/<key>`) in the evidence scheme.
    pub fn respond(&self, path: &str) -> tauri::http::Response<Vec<u8>> {
        let key = path.trim_start_matches('/');
        let page = self.pages().get(key).cloned();
        let builder = tauri::http::Response::builder()
            .header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            .header("Cache-Control", "no-store");
        let response = match page {
            Some(html) => builder
                .status(200)
                .header("Content-Type", "text/html; charset=utf-8")
                .body(html.into_bytes()),
            None => builder
                .status(404)
                .header("Content-Type", "text/plain; charset=utf-8")
                .body(b"This evidence pack is no longer open.".to_vec()),
        };
        // Only constant, valid header names and values are set above.
        response.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_served_with_a_strict_policy_until_its_window_closes() {
        let pages = EvidencePages::default();
        let key = pages.insert("<h1>Evidence pack</h1>".into());
        let response = pages.respond(&format!("/{key}"));
        assert_eq!(response.status(), 200);
        assert_eq!(response.body(), b"<h1>Evidence pack</h1>");
        assert_eq!(
            response.headers()["Content-Security-Policy"],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(response.headers()["Cache-Control"], "no-store");
        assert!(
            !CONTENT_SECURITY_POLICY.contains("script-src"),
            "default-src 'none' forbids scripts"
        );

        pages.remove(&key);
        assert_eq!(pages.respond(&format!("/{key}")).status(), 404);
        assert_eq!(pages.respond("/someone-elses-key").status(), 404);
    }
}
